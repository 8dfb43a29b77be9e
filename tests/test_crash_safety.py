"""Crash safety: nothing acknowledged is lost when the server is killed -9.

A real server process is killed in the middle of a burst, restarted on the
same port and history file, and every client resumes with ``since`` and its
session: each acknowledged message is in the history, and each client ends
up with every message exactly once, in order.
"""
from __future__ import annotations

import os
import signal
import socket
import sqlite3
import subprocess
import sys
import threading
import time

import pytest

from tests.netclient import LineClient

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int, db: str) -> subprocess.Popen:
    proc = subprocess.Popen([sys.executable, "-m", "server", "--port", str(port), "--db", db,
                             "--rate-limit", "0", "--log-level", "warning"], cwd=ROOT,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    line = proc.stdout.readline()
    assert "listening" in line, line
    return proc


class Sender:
    """One client: sends a burst with refs while a thread records what comes back."""

    def __init__(self, port: int, nick: str):
        self.nick = nick
        self.client = LineClient(port, timeout=10)
        w = self.client.hello(nick)
        self.session = w["session"]
        self.seen: list[int] = [m["id"] for m in w["history"]]
        self.acked: dict[str, int] = {}
        self.reader = threading.Thread(target=self._read, name=f"test-reader-{nick}", daemon=True)
        self.reader.start()

    def _read(self) -> None:
        try:
            while True:
                f = self.client.recv(30)
                if f["type"] == "message":
                    self.seen.append(f["id"])
                    if f.get("ref"):
                        self.acked[f["ref"]] = f["id"]
        except (EOFError, OSError, TimeoutError, ValueError):
            return

    def burst(self, count: int) -> None:
        data = b"".join(f'{{"type":"say","text":"{self.nick} {i}","ref":"{self.nick}-{i}"}}\n'.encode()
                        for i in range(count))
        try:
            self.client.send_raw(data)
        except OSError:
            pass   # the server died under us: that is the point


@pytest.mark.timeout(60)
def test_acknowledged_messages_survive_kill_9_and_everyone_resumes_exactly_once(tmp_path):
    port, db = free_port(), str(tmp_path / "history.db")
    proc = start_server(port, db)
    try:
        senders = [Sender(port, f"s{i}") for i in range(4)]
        burst = [threading.Thread(target=s.burst, args=(15000,)) for s in senders]
        for t in burst:
            t.start()
        deadline = time.monotonic() + 20
        while sum(len(s.acked) for s in senders) < 100 and time.monotonic() < deadline:
            time.sleep(0.002)
        proc.send_signal(signal.SIGKILL)     # mid-burst, no goodbye
        proc.wait(10)
        for t in burst:
            t.join(10)
        for s in senders:
            s.reader.join(10)
            s.client.close()
        acked = {ref: i for s in senders for ref, i in s.acked.items()}
        assert len(acked) >= 100, "the kill should land after some acknowledgements"

        stored = dict(sqlite3.connect(db).execute("SELECT id, ref FROM messages WHERE recipient IS NULL"))
        for ref, msg_id in acked.items():
            assert stored.get(msg_id) == ref, f"acknowledged {ref} (id {msg_id}) was lost"
        assert len(stored) < 4 * 15000, "the kill should land before the burst finished"

        proc = start_server(port, db)
        all_ids = sorted(stored)
        for s in senders:
            again = LineClient(port, timeout=10)
            last = max(s.seen) if s.seen else 0
            w = again.hello(s.nick, since=last, resume=s.session)
            replay = [m["id"] for m in w["history"]]
            assert s.seen + replay == all_ids, f"{s.nick}: missed or duplicated messages"
            assert sorted(set(s.seen)) == s.seen, "ids arrived out of order"
            # Its own messages come back with their refs: it need not resend them.
            own = {m["ref"] for m in w["history"] if m.get("ref")}
            assert all(r.startswith(s.nick + "-") for r in own)
            again.close()
    finally:
        proc.kill()
        proc.wait(10)
