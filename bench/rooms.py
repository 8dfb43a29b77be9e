#!/usr/bin/env python3
"""Rooms benchmark of the Natter server (issue 10): two measurements, one table each.

From the repository root:

    python3 bench/rooms.py                       # both, a few minutes (most of it building the files)
    python3 bench/rooms.py --join-messages 100000 --catchup-messages 20000    # a quick run

1. Join a big room. A history file holds N messages (default 1 000 000)
   in the room ``big`` (and two more files N / 10 and 1 000, for comparison). A
   server process opens it; then 20 fresh v2 clients one after another say
   hello, wait for ``caught_up``, and time ``join big`` -> the ``room``
   frame, and the ``history`` request (the newest 50) sent on it -> the
   page. It reports the median and the worst of each, the server's start
   time, and its resident memory (VmRSS) before and after the joins, for
   both files: the hub's memory should not grow with the history.
2. Catch up. A history file holds M messages (default 100 000) in the
   lobby, missed by one session. A server process with its sockets'
   SO_SNDBUF at 256 KiB (set on the listener, which Linux copies to
   accepted sockets) serves that session's v2 ``hello`` with ``since``
   0; the client checks that every id arrives once and in order, that it
   is not dropped, and times hello -> ``caught_up``.

Servers run as child processes (``--serve``, with the project's ``.venv``
Python when there is one) on 127.0.0.1 ports picked by the OS; files live
in a temporary folder that is removed afterwards.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

TEXT = "a line of chat as long as a typical one, give or take {i}"
JOINS = 20


def project_python() -> str:
    py = os.path.join(ROOT, ".venv", "bin", "python")
    return py if os.path.exists(py) else sys.executable


def build(path: str, n: int, room: str, session: bool = False) -> str | None:
    """A history file of n messages in ``room`` (created); returns a
    session's token that was in the room and saw none of them, if asked."""
    from server.store import RoomRecord
    from server.store.sqlite import SqliteStore
    h = SqliteStore(path, sync="off")
    try:
        token = None
        if room != "lobby":
            h.create_room(RoomRecord(room, room, created=time.time()))
        if session:
            sid, token = h.new_session()
            h.join_room(sid, room, 0)
        for i in range(n):
            h.add_message(f"user{i % 50}", TEXT.format(i=i), room)
            if i % 50_000 == 49_999:
                h.commit()
        h.commit()
    finally:
        h.close()
    return token


# -- the server, in a child process -------------------------------------------

def serve(db: str, sndbuf: int) -> None:
    """--serve: run a server on db; print its port and start time; stop when stdin closes."""
    from server.app import ChatServer
    from server.config import ServerConfig
    t0 = time.monotonic()
    srv = ChatServer(ServerConfig(host="127.0.0.1", port=0, db=db, discovery=False, rate_limit=0)).start()
    started = time.monotonic() - t0
    if sndbuf:
        srv.listener.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, sndbuf)
    print(json.dumps({"port": srv.port, "start_s": started}), flush=True)
    sys.stdin.read()
    srv.shutdown()


class Server:
    def __init__(self, db: str, sndbuf: int = 0):
        self.proc = subprocess.Popen([project_python(), os.path.abspath(__file__), "--serve", db, str(sndbuf)],
                                     cwd=ROOT, stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        info = json.loads(self.proc.stdout.readline())
        self.port, self.start_s = info["port"], info["start_s"]

    def rss_kib(self) -> int:
        with open(f"/proc/{self.proc.pid}/status") as f:
            for line in f:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
        return 0

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=30)
        self.proc.stdout.close()


class Lines:
    """A blocking client reading JSON lines, every wait bounded."""

    def __init__(self, port: int, timeout: float = 60.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.buf = b""

    def send(self, frame: dict) -> None:
        self.sock.sendall(json.dumps(frame).encode() + b"\n")

    def line(self) -> bytes:
        while b"\n" not in self.buf:
            data = self.sock.recv(1 << 20)
            if not data:
                raise EOFError("the server closed the connection")
            self.buf += data
        line, self.buf = self.buf.split(b"\n", 1)
        return line

    def until(self, kind: str) -> dict:
        marker = b'"type": "%s"' % kind.encode()
        compact = b'"type":"%s"' % kind.encode()
        while True:
            line = self.line()
            if marker in line[:40] or compact in line[:40]:
                return json.loads(line)
            if b'"type":"error"' in line[:40] or b'"type": "error"' in line[:40]:
                raise RuntimeError(line[:300].decode(errors="replace"))

    def close(self) -> None:
        self.sock.close()


# -- 1. join a big room ---------------------------------------------------------

def measure_join(db: str) -> dict:
    srv = Server(db)
    try:
        rss_before = srv.rss_kib()
        rooms, pages = [], []
        for i in range(JOINS):
            c = Lines(srv.port)
            c.send({"type": "hello", "nick": f"joiner{i}", "v": 2})
            c.until("caught_up")
            t0 = time.perf_counter()
            c.send({"type": "join", "room": "big", "ref": "j"})
            room = c.until("room")
            t1 = time.perf_counter()
            c.send({"type": "history", "room": "big", "limit": 50, "ref": "h"})
            page = c.until("history")
            t2 = time.perf_counter()
            assert len(page["messages"]) == 50 and page["more"] and room["last_id"] == page["messages"][-1]["id"]
            rooms.append((t1 - t0) * 1000)
            pages.append((t2 - t0) * 1000)
            c.close()
        rss_after = srv.rss_kib()
    finally:
        srv.close()
    return {"start_s": srv.start_s, "room_ms_median": statistics.median(rooms), "room_ms_max": max(rooms),
            "page_ms_median": statistics.median(pages), "page_ms_max": max(pages),
            "rss_before_kib": rss_before, "rss_after_kib": rss_after}


# -- 2. catch up ----------------------------------------------------------------

def measure_catchup(db: str, token: str, n: int, sndbuf: int) -> dict:
    srv = Server(db, sndbuf)
    try:
        c = Lines(srv.port, timeout=120)
        t0 = time.perf_counter()
        c.send({"type": "hello", "nick": "away", "v": 2, "resume": token, "since": 0})
        last, count, frames, biggest = 0, 0, 0, 0
        while True:
            line = c.line()
            if line.startswith(b'{"type":"replay"'):
                frames += 1
                biggest = max(biggest, len(line) + 1)
                for entry in json.loads(line)["frames"]:
                    if entry["id"] <= last:
                        raise AssertionError(f"id {entry['id']} after {last}: out of order or twice")
                    last = entry["id"]
                    count += 1
            elif line.startswith(b'{"type":"caught_up"'):
                break
            elif line.startswith(b'{"type":"error"'):
                raise AssertionError(f"dropped: {line[:200]!r}")
        took = time.perf_counter() - t0
        c.send({"type": "ping"})
        c.until("pong")                  # still connected
        rss = srv.rss_kib()
        c.close()
    finally:
        srv.close()
    return {"messages": n, "received": count, "in_order_once": count == n, "replay_frames": frames,
            "biggest_frame_kib": biggest / 1024, "seconds": took, "per_s": count / took, "rss_kib": rss}


def loadavg() -> str:
    with open("/proc/loadavg") as f:
        return " ".join(f.read().split()[:3])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="bench/rooms.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("--join-messages", type=int, default=1_000_000)
    ap.add_argument("--catchup-messages", type=int, default=100_000)
    ap.add_argument("--sndbuf", type=int, default=256 * 1024, help="the server's SO_SNDBUF for the catch-up")
    ap.add_argument("--serve", nargs=2, metavar=("DB", "SNDBUF"), help=argparse.SUPPRESS)
    a = ap.parse_args(argv)
    if a.serve:
        serve(a.serve[0], int(a.serve[1]))
        return 0
    tmp = tempfile.mkdtemp(prefix="natter-rooms-bench-")
    try:
        print(f"Load average before: {loadavg()}.", flush=True)
        t = time.monotonic()
        big, middle, small = (os.path.join(tmp, f"{n}.db") for n in ("big", "middle", "small"))
        build(big, a.join_messages, "big")
        build(middle, a.join_messages // 10, "big")
        build(small, 1000, "big")
        print(f"(built the join files in {time.monotonic() - t:.0f} s; "
              f"{os.path.getsize(big) / 2 ** 20:.0f} MiB)", flush=True)
        print("\n| history of the room | server start s | room frame ms (median / max) "
              "| first page ms (median / max) | hub RSS MiB before -> after 20 joins |\n|---|---|---|---|---|")
        for label, path in ((f"{a.join_messages:,}", big), (f"{a.join_messages // 10:,}", middle), ("1,000", small)):
            r = measure_join(path)
            print(f"| {label} | {r['start_s']:.2f} | {r['room_ms_median']:.1f} / {r['room_ms_max']:.1f} "
                  f"| {r['page_ms_median']:.1f} / {r['page_ms_max']:.1f} "
                  f"| {r['rss_before_kib'] / 1024:.1f} -> {r['rss_after_kib'] / 1024:.1f} |", flush=True)
        for path in (big, middle, small):
            os.remove(path)
        path = os.path.join(tmp, "away.db")
        token = build(path, a.catchup_messages, "lobby", session=True)
        r = measure_catchup(path, token, a.catchup_messages, a.sndbuf)
        print(f"\n| missed | server SO_SNDBUF | received | every id once, in order | replay frames "
              f"| biggest frame KiB | seconds | messages/s | server RSS MiB |\n|---|---|---|---|---|---|---|---|---|\n"
              f"| {r['messages']:,} | {a.sndbuf // 1024} KiB | {r['received']:,} | {r['in_order_once']} "
              f"| {r['replay_frames']} | {r['biggest_frame_kib']:.0f} | {r['seconds']:.2f} | {r['per_s']:,.0f} "
              f"| {r['rss_kib'] / 1024:.1f} |")
        print(f"\nLoad average after: {loadavg()}.")
        return 0 if r["in_order_once"] else 1
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
