"""A raw IRC client for the door's tests (real loopback sockets; every wait
has a timeout), parsed with the door's own codec (server/doors/irc/wire)."""
from __future__ import annotations

import socket
import time

from server.doors.irc.wire import LineReader, Message, parse


class IrcClient:
    """One raw connection to the IRC door. :meth:`expect` skips lines
    until one matches, and fails the test when none comes in time."""

    def __init__(self, port: int, host: str = "127.0.0.1", timeout: float = 10.0):
        self.sock = socket.create_connection((host, port), timeout)
        self.timeout = timeout
        self._reader = LineReader()
        self._pending: list = []
        self.seen: list = []            # every Message received, in order

    def send(self, line: str) -> None:
        self.sock.sendall(line.encode("utf-8") + b"\r\n")

    def send_raw(self, data: bytes) -> None:
        self.sock.sendall(data)

    def recv(self, timeout: float | None = None) -> Message:
        deadline = time.monotonic() + (timeout or self.timeout)
        while not self._pending:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError("no line from the server")
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                raise TimeoutError("no line from the server") from None
            if not data:
                raise EOFError("server closed the connection")
            self._pending += [parse(line) for line in self._reader.feed(data)]
        msg = self._pending.pop(0)
        self.seen.append(msg)
        return msg

    def expect(self, command: str, *params: str, timeout: float | None = None) -> Message:
        """The next line with this command whose first params are these."""
        deadline = time.monotonic() + (timeout or self.timeout)
        skipped = []
        while True:
            try:
                msg = self.recv(max(0.01, deadline - time.monotonic()))
            except TimeoutError:
                raise AssertionError(f"no {command} {params} within the timeout; got {skipped[-20:]}") from None
            if msg.command == command and msg.params[:len(params)] == params:
                return msg
            skipped.append(msg)

    def register(self, nick: str, caps: str = "", password: str | None = None) -> Message:
        """CAP (if caps), PASS, NICK, USER; returns the 001."""
        if caps:
            self.send("CAP LS 302")
        if password is not None:
            self.send(f"PASS {password}")
        self.send(f"NICK {nick}")
        self.send(f"USER {nick} 0 * :{nick}")
        if caps:
            self.send(f"CAP REQ :{caps}")
            self.expect("CAP", nick, "ACK")
            self.send("CAP END")
        welcome = self.expect("001")
        self.expect("422")                  # the end of the welcome: no MOTD
        return welcome

    def close(self) -> None:
        self.sock.close()
