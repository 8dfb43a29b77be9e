#!/usr/bin/env python3
"""Does a big file transfer slow the chat? Chat latency with and without one.

From the repository root:

    python3 bench/files.py                  # 100 chatting clients, 100 MB up and down, twice each
    python3 bench/files.py --rounds 1 --secs 5 --size-mb 20     # a quicker look

Each round runs the same chat scenario on a fresh server (``bench/fanout.py``'s
``Server``: ``python -m server --host 127.0.0.1 --rate-limit 0 ...``) with
the Python load generator of ``bench/loadgen.py``: ``--clients`` clients in
the lobby, ``--senders`` of them sending ``--rate`` messages a second in all
for ``--secs`` seconds; latency is from the time a message was due to its
arrival at each client. Three runs per round, interleaved so the machine's
load hits them alike:

- ``none``: the chat alone;
- ``transfer``: the same, while one client uploads a file of ``--size-mb``
  MB (random bytes) on a second connection and downloads it again, over
  and over until the chat run ends (the server's default ``--upload-rate``,
  20 MiB/s for one session; a download is not capped);
- ``uncapped``: the same with ``--upload-rate 0``: the upload as fast as
  loopback takes it, the worst case.

The target (issue 12) is the chat's p99 with a transfer within 2x of
without. Each download is compared with the bytes sent, and counted.
"""
from __future__ import annotations

import argparse
import hashlib
import json
import os
import socket
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

import fanout  # noqa: E402  (bench/ is not a package; it runs as a script)

from server import protocol as p  # noqa: E402


def _line(sock: socket.socket, buf: bytearray) -> dict:
    while b"\n" not in buf:
        data = sock.recv(65536)
        if not data:
            raise EOFError("the server closed the connection")
        buf += data
    i = buf.index(b"\n")
    line = bytes(buf[:i])
    del buf[:i + 1]
    return json.loads(line)


def transfers(data: bytes, digest: str):
    """The ``during`` job for fanout.run_python: upload then download ``data``
    until told to stop; records the bytes moved and the failures in the row."""
    def run(srv, finished, row):
        errors = row["transfer_errors"] = []
        try:
            move(srv, finished, row, errors)
        except Exception as e:
            errors.append(f"{type(e).__name__}: {e}")
        if not row.get("transfer_mb"):
            errors.append("no transfer finished during the chat run")

    def move(srv, finished, row, errors):
        moved = rounds = 0
        chat = socket.create_connection(("127.0.0.1", srv.port), timeout=60)
        buf = bytearray()
        chat.sendall(p.encode(p.hello_frame("mover", v=2)))
        session = None
        while True:
            f = _line(chat, buf)
            if f["type"] == "welcome":
                session = f["session"]
            if f["type"] == "caught_up":
                break
        body = bytearray(len(data))
        view_in = memoryview(body)
        started = time.monotonic()
        while not finished.is_set():
            chat.sendall(p.encode(p.upload_frame(f"big{rounds}.bin", len(data), digest, room="lobby",
                                                 ref=f"u{rounds}")))
            while True:
                f = _line(chat, buf)
                if f.get("ref") == f"u{rounds}":
                    break
            if f["type"] != "upload_ready":
                errors.append(f)
                break
            with socket.create_connection(("127.0.0.1", srv.port), timeout=60) as up:
                up.sendall(p.encode(p.put_frame(f["file"], f["token"], 0)))
                view = memoryview(data)
                for i in range(0, len(view), 1 << 20):
                    up.sendall(view[i:i + (1 << 20)])
                answer = _line(up, bytearray())
            if answer["type"] != "put_ok":
                errors.append(answer)
                break
            moved += len(data)
            with socket.create_connection(("127.0.0.1", srv.port), timeout=60) as down:
                down.sendall(p.encode(p.get_frame(answer["file"], session)))
                rest = bytearray()
                blob = _line(down, rest)
                body[:len(rest)] = rest
                got = len(rest)
                while got < blob["size"]:
                    n = down.recv_into(view_in[got:], min(1 << 20, len(body) - got))
                    if not n:
                        break
                    got += n
            # A comparison (memcmp), not a hash: cheap, so the mover takes
            # little of the CPU the chat and the server share.
            if got != len(data) or body != data:
                errors.append(f"download {rounds}: {got} bytes, not the bytes sent")
                break
            moved += got
            rounds += 1
        row["transfer_mb"] = moved / 1e6
        row["transfer_mb_s"] = moved / 1e6 / max(1e-9, time.monotonic() - started)
        chat.close()
    return run


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="bench/files.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=100)
    ap.add_argument("--senders", type=int, default=20)
    ap.add_argument("--rate", type=float, default=100.0, help="chat messages a second, all senders together")
    ap.add_argument("--secs", type=float, default=15.0)
    ap.add_argument("--size-mb", type=int, default=100)
    ap.add_argument("--rounds", type=int, default=2)
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    ap.add_argument("--json", metavar="FILE")
    a = ap.parse_args(argv)
    fanout.raise_fd_limit()
    data = os.urandom(a.size_mb * 1000 * 1000)
    digest = hashlib.sha256(data).hexdigest()
    spec = dict(clients=a.clients, senders=a.senders, mode="rate", rate=a.rate, secs=a.secs, rooms=1)
    runs = [("none", (), None), ("transfer", (), transfers(data, digest)),
            ("uncapped", ("--upload-rate", "0"), transfers(data, digest))]
    print(f"Machine: {fanout.machine()}. Load average before: {fanout.loadavg()}.", flush=True)
    rows = []
    for r in range(a.rounds):
        for name, args, during in runs:
            print(f"round {r + 1}: {name} ...", file=sys.stderr, flush=True)
            row = fanout.run_python(name, spec, "project", max(1, a.workers), server_args=args, during=during)
            row["loadavg"] = fanout.loadavg()
            rows.append(row)
            print(json.dumps({k: v for k, v in row.items() if k != "failures"}), file=sys.stderr, flush=True)
    print()
    print("| run | clients | chat msg/s | delivered/expected | p50 ms | p99 ms | max ms | transfer MB moved | MB/s "
          "| load avg after |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for row in rows:
        if "error" in row:
            print(f"| {row['scenario']} | error: {row['error']} |")
            continue
        print(f"| {row['scenario']} | {row['ok_clients']} | {a.rate:g} | {row['delivered']}/{row['expected']} | "
              f"{row['p50_ms']:.1f} | {row['p99_ms']:.1f} | {row['max_ms']:.1f} | "
              f"{row.get('transfer_mb', 0):.0f} | {row.get('transfer_mb_s', 0):.0f} | {row['loadavg']} |")
    for name in ("transfer", "uncapped"):
        base = [x["p99_ms"] for x in rows if x["scenario"] == "none" and "p99_ms" in x]
        with_ = [x["p99_ms"] for x in rows if x["scenario"] == name and "p99_ms" in x]
        if base and with_:
            print(f"\np99 {name} / none (medians of the rounds): "
                  f"{sorted(with_)[len(with_) // 2] / max(1e-9, sorted(base)[len(base) // 2]):.2f}x")
    errors = [e for x in rows for e in x.get("transfer_errors", [])]
    if errors:
        print(f"\ntransfer errors: {errors[:5]}")
    if a.json:
        with open(a.json, "w") as f:
            json.dump(rows, f, indent=1)
    return 1 if errors or any("error" in x or x.get("lost") for x in rows) else 0


if __name__ == "__main__":
    sys.exit(main())
