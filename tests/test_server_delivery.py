"""Delivery: what a client is owed reaches it (issue 9, points 21 and 24)."""
from __future__ import annotations

import json
import socket

import pytest

from server import protocol as p
from tests.netclient import LineClient
from tests.servertools import messages

pytestmark = pytest.mark.timeout(30)


def read_to_eof(sock: socket.socket, timeout: float = 10.0) -> list[dict]:
    sock.settimeout(timeout)
    data = bytearray()
    while True:
        chunk = sock.recv(1 << 16)
        if not chunk:
            break
        data += chunk
    return [json.loads(line) for line in bytes(data).split(b"\n") if line]


def test_a_half_closed_client_gets_its_welcome_and_every_ack(make_server):
    # As `printf '...' | nc -N host port`: send, shut the write side, read to the end.
    srv = make_server(rate_limit=0)
    watcher = LineClient(srv.port)
    watcher.hello("watcher")
    for attempt in range(10):
        s = socket.create_connection(("127.0.0.1", srv.port), timeout=10)
        frames = [{"type": "hello", "nick": f"pipe{attempt}"}]
        frames += [{"type": "say", "text": f"line {i}", "ref": f"r{i}"} for i in range(20)]
        s.sendall(b"".join(p.encode(f) for f in frames))
        s.shutdown(socket.SHUT_WR)
        got = read_to_eof(s)
        s.close()
        assert got and got[0]["type"] == "welcome", (attempt, got[:2])
        acks = [f for f in got if f["type"] == "message" and f.get("ref")]
        assert [f["ref"] for f in acks] == [f"r{i}" for i in range(20)], (attempt, len(acks))
        seen = messages(watcher, 20)
        assert [m["text"] for m in seen] == [f"line {i}" for i in range(20)]
        assert [m["id"] for m in seen] == [a["id"] for a in acks]
    watcher.close()
