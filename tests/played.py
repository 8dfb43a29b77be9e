"""A server the test plays by hand on a loopback port: the test reads each
frame the client sends and writes each frame the server sends."""
from __future__ import annotations

import json
import socket

import pytest

from server import protocol


class Played:
    """One accepted connection: the test reads the client's frames and
    writes the server's."""

    def __init__(self, sock: socket.socket):
        self.sock = sock
        self.sock.settimeout(10)
        self._buf = b""

    def recv(self) -> dict:
        while b"\n" not in self._buf:
            data = self.sock.recv(65536)
            if not data:
                raise EOFError("the client closed the connection")
            self._buf += data
        line, self._buf = self._buf.split(b"\n", 1)
        return json.loads(line)

    def recv_type(self, kind: str) -> tuple[dict, list]:
        """The next frame of this type, and the frames skipped before it."""
        skipped = []
        while True:
            f = self.recv()
            if f["type"] == kind:
                return f, skipped
            skipped.append(f)

    def send(self, frame: dict) -> None:
        self.sock.sendall(protocol.encode(frame))

    def close(self) -> None:
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()


class PlayedServer:
    """A loopback port whose connections the test plays (see Played)."""

    def __init__(self, rcvbuf: int | None = None):
        self.lsock = socket.create_server(("127.0.0.1", 0))
        if rcvbuf:          # inherited by accepted sockets: a server that reads little
            self.lsock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.lsock.settimeout(10)
        self.port = self.lsock.getsockname()[1]
        self.conns: list = []

    def accept(self) -> Played:
        conn = Played(self.lsock.accept()[0])
        self.conns.append(conn)
        return conn

    def close(self) -> None:
        for c in self.conns:
            c.close()
        self.lsock.close()


@pytest.fixture
def played():
    made = []

    def make(**kw) -> PlayedServer:
        s = PlayedServer(**kw)
        made.append(s)
        return s
    yield make
    for s in made:
        s.close()
