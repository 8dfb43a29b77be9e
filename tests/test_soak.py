"""Soak: clients join, chat and drop at random against a real server
process for a bounded time; afterwards no thread or file descriptor has
leaked and no message was lost.

NATTER_SOAK_SECONDS lengthens the run (default 12 s in the suite).
"""
from __future__ import annotations

import os
import random
import socket
import sqlite3
import struct
import subprocess
import sys
import threading
import time

import pytest

from tests.netclient import LineClient

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SECONDS = float(os.environ.get("NATTER_SOAK_SECONDS", "12"))


def counts(pid: int) -> tuple[int, int]:
    return len(os.listdir(f"/proc/{pid}/task")), len(os.listdir(f"/proc/{pid}/fd"))


class Churner(threading.Thread):
    """Joins, chats, leaves in a random way, again and again until told."""

    def __init__(self, port: int, index: int, stop: threading.Event, seed: int):
        super().__init__(name=f"churner-{index}", daemon=True)
        self.port, self.index, self.stop = port, index, stop
        self.rng = random.Random(seed)
        self.acked: dict[str, int] = {}
        self.sent = 0
        self.rounds = 0
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            while not self.stop.is_set():
                self.rounds += 1
                self.one_round()
        except BaseException as e:      # reported by the test
            self.error = e

    def one_round(self) -> None:
        c = LineClient(self.port, timeout=10)
        try:
            c.hello(f"c{self.index}r{self.rounds}")
            for _ in range(self.rng.randint(1, 15)):
                ref = f"{self.index}-{self.rounds}-{self.sent}"
                self.sent += 1
                c.send({"type": "say", "text": f"soak {ref}", "ref": ref})
                while True:
                    f = c.recv()
                    if f["type"] == "message" and f.get("ref") == ref:
                        self.acked[ref] = f["id"]
                        break
            how = self.rng.choice(["bye", "close", "reset", "half", "midframe"])
            if how == "bye":
                c.send({"type": "bye"})
                c.closed_by_server(5)
            elif how == "reset":
                c.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            elif how == "half":
                c.sock.shutdown(socket.SHUT_WR)
            elif how == "midframe":
                c.send_raw(b'{"type":"say","text":"never fini')
        finally:
            c.close()


@pytest.mark.timeout(SECONDS + 60)
def test_soak_no_leak_no_loss(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    db = str(tmp_path / "h.db")
    proc = subprocess.Popen([sys.executable, "-m", "server", "--port", str(port), "--db", db,
                             "--rate-limit", "0", "--log-level", "error"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        assert "listening" in proc.stdout.readline()
        monitor = LineClient(port, timeout=15)
        monitor.hello("monitor")
        seen: list[int] = []
        monitor_done = threading.Event()

        def watch():
            try:
                while not monitor_done.is_set():
                    try:
                        f = monitor.recv(0.5)
                    except TimeoutError:
                        continue
                    if f["type"] == "message":
                        seen.append(f["id"])
            except (EOFError, OSError):
                pass

        watcher = threading.Thread(target=watch, name="monitor", daemon=True)
        watcher.start()
        time.sleep(0.3)
        base_threads, base_fds = counts(proc.pid)

        stop = threading.Event()
        churners = [Churner(port, i, stop, seed=1000 + i) for i in range(24)]
        for c in churners:
            c.start()
        time.sleep(SECONDS)
        stop.set()
        for c in churners:
            c.join(30)
        assert not any(c.is_alive() for c in churners)
        for c in churners:
            assert c.error is None, f"{c.name}: {c.error!r}"
        acked = {ref: i for c in churners for ref, i in c.acked.items()}
        rounds = sum(c.rounds for c in churners)
        print(f"soak: {rounds} connections, {len(acked)} messages acknowledged")
        assert rounds > 50 and len(acked) > 200, "the soak did too little"

        # Everything acknowledged reached the monitor, in order, once.
        deadline = time.monotonic() + 10
        while len(seen) < len(acked) and time.monotonic() < deadline:
            time.sleep(0.05)
        monitor_done.set()
        watcher.join(5)
        assert seen == sorted(set(seen)), "the monitor got a message twice or out of order"
        assert set(acked.values()) <= set(seen), "an acknowledged message never reached the monitor"
        stored = [r[0] for r in sqlite3.connect(db).execute(
            "SELECT id FROM messages WHERE recipient IS NULL ORDER BY id")]
        assert stored == seen, "the monitor's stream differs from the history on disk"

        # Every churner is gone: the server is back to its threads and fds.
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline:
            threads, fds = counts(proc.pid)
            if threads <= base_threads and fds <= base_fds:
                break
            time.sleep(0.1)
        threads, fds = counts(proc.pid)
        assert threads <= base_threads, f"threads leaked: {base_threads} -> {threads}"
        assert fds <= base_fds, f"file descriptors leaked: {base_fds} -> {fds}"
        monitor.close()
    finally:
        proc.terminate()
        assert proc.wait(15) == 0
