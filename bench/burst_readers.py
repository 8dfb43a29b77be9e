#!/usr/bin/env python3
"""Do readers that keep up survive a room-wide burst? (issue 9, point 21)

From the repository root:

    python3 bench/burst_readers.py [--senders 40] [--burst 5] [--size 60000]

Starts this checkout's server in-process on a loopback port, on default
flags (flood control on), with a 32 KiB send buffer per accepted socket so
the server's own queues hold the burst rather than the kernel. Five
bystanders and every sender read at full speed on threads; then every
sender posts its burst at once. Prints what each bystander got, how many
readers were dropped, and the hub's delivery counters.
"""
from __future__ import annotations

import argparse
import logging
import os
import socket
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from server import protocol as p  # noqa: E402
from server.app import ChatServer  # noqa: E402
from server.config import ServerConfig  # noqa: E402

SMALL = 32 * 1024


class Reader(threading.Thread):
    """Reads one socket at full speed, counting message lines, until EOF."""

    def __init__(self, port: int, nick: str):
        super().__init__(daemon=True, name=f"read-{nick}")
        self.sock = socket.socket()
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, SMALL)
        self.sock.connect(("127.0.0.1", port))
        self.sock.sendall(p.encode({"type": "hello", "nick": nick}))
        self.messages = 0
        self.eof = False
        self.start()

    def run(self):
        tail = b""
        try:
            while True:
                chunk = self.sock.recv(1 << 20)
                if not chunk:
                    break
                *lines, tail = (tail + chunk).split(b"\n")
                self.messages += sum(line.startswith(b'{"type":"message"') for line in lines)
        except OSError:
            pass
        self.eof = True


def main() -> int:
    logging.basicConfig(level=logging.ERROR)   # one line per dropped reader would drown the result
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--senders", type=int, default=40)
    ap.add_argument("--burst", type=int, default=5, help="messages each sender posts at once")
    ap.add_argument("--size", type=int, default=60_000, help="characters per message")
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        srv = ChatServer(ServerConfig(host="127.0.0.1", port=0, db=os.path.join(tmp, "h.db"))).start()
        try:
            srv.listener.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SMALL)
            bystanders = [Reader(srv.port, f"by{i}") for i in range(5)]
            senders = [Reader(srv.port, f"s{i}") for i in range(a.senders)]
            deadline = time.monotonic() + 30
            while len(srv.hub.room) < len(bystanders) + len(senders) and time.monotonic() < deadline:
                time.sleep(0.01)
            payload = b"".join(p.encode({"type": "say", "text": "x" * a.size}) for _ in range(a.burst))
            t0 = time.monotonic()
            for r in senders:
                threading.Thread(target=r.sock.sendall, args=(payload,), daemon=True).start()
            total = a.senders * a.burst
            everyone = bystanders + senders
            while not all(r.messages >= total or r.eof for r in everyone) and time.monotonic() - t0 < 120:
                time.sleep(0.05)
            took = time.monotonic() - t0
            print(f"{a.senders} senders x {a.burst} x {a.size} chars, load average "
                  f"{os.getloadavg()[0]:.1f}: {took:.2f} s; bystanders got {[r.messages for r in bystanders]} "
                  f"of {total}; dropped: {sum(r.eof for r in bystanders)} of 5 bystanders, "
                  f"{sum(r.eof for r in senders)} of {a.senders} senders")
            print("hub:", srv.hub.stats)
            for r in everyone:
                r.sock.close()
        finally:
            srv.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
