"""A small blocking JSON-lines client for server tests (real sockets)."""
from __future__ import annotations

import json
import socket
import time


class LineClient:
    """One raw connection to the server. Every wait has a timeout."""

    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = 5.0, rcvbuf: int | None = None):
        self.sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if rcvbuf:
            self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.settimeout(timeout)
        self.sock.connect((host, port))
        self.timeout = timeout
        self._buf = b""
        self._scanned = 0              # bytes of _buf known to hold no newline
        self.frames: list[dict] = []   # everything received, in order

    def send(self, frame: dict) -> None:
        self.sock.sendall(json.dumps(frame).encode() + b"\n")

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def hello(self, nick: str, **extra) -> dict:
        """Say hello and return the welcome (fails the test on anything else)."""
        self.send({"type": "hello", "nick": nick, **extra})
        f = self.recv()
        assert f["type"] == "welcome", f
        return f

    def recv(self, timeout: float | None = None) -> dict:
        """The next frame; raises TimeoutError if none comes in time."""
        deadline = time.monotonic() + (timeout or self.timeout)
        # Linear in the line's length: a multi-megabyte welcome arrives in
        # hundreds of chunks, and each chunk is searched once.
        nl = self._buf.find(b"\n", self._scanned)
        if nl < 0:
            buf = bytearray(self._buf)
            while nl < 0:
                self._scanned = len(buf)
                left = deadline - time.monotonic()
                if left <= 0:
                    self._buf = bytes(buf)
                    raise TimeoutError("no frame from the server")
                self.sock.settimeout(left)
                try:
                    data = self.sock.recv(1 << 20)
                except socket.timeout:
                    self._buf = bytes(buf)
                    raise TimeoutError("no frame from the server") from None
                if not data:
                    self._buf = bytes(buf)
                    raise EOFError("server closed the connection")
                buf += data
                nl = buf.find(b"\n", self._scanned)
            self._buf = bytes(buf)
        line, self._buf = self._buf[:nl], self._buf[nl + 1:]
        self._scanned = 0
        frame = json.loads(line)
        self.frames.append(frame)
        return frame

    def recv_type(self, kind: str, timeout: float | None = None) -> dict:
        """Skip frames until one of this type comes."""
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            f = self.recv(max(0.01, deadline - time.monotonic()))
            if f["type"] == kind:
                return f

    def closed_by_server(self, timeout: float | None = None) -> bool:
        """Read until EOF; True if the server closed, False on timeout."""
        deadline = time.monotonic() + (timeout or self.timeout)
        try:
            while True:
                self.recv(max(0.01, deadline - time.monotonic()))
        except (EOFError, ConnectionResetError):
            return True
        except TimeoutError:
            return False

    def nothing_for(self, secs: float) -> bool:
        try:
            f = self.recv(secs)
        except TimeoutError:
            return True
        raise AssertionError(f"unexpected frame {f}")

    def close(self) -> None:
        try:
            self.sock.close()
        except OSError:
            pass
