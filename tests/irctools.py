"""A raw IRC client for the door's tests (real loopback sockets; every wait
has a timeout), parsed with the door's own codec (server/doors/irc/wire),
and the fixtures that make them: ``irc`` (IRC clients on a server's door)
and ``json_client`` (a window client in some rooms). Both take the test
module's ``srv`` fixture unless given a server; import them into a test
module to use them."""
from __future__ import annotations

import itertools
import socket
import time

import pytest

from server.doors.irc.wire import LineReader, Message, parse
from tests.servertools import answer, expect, hello_v2

_tokens = itertools.count(1)


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

    def sync(self) -> list:
        """PING the door and wait for its PONG: everything the server sent
        in answer to the lines before it has come. Returns those lines."""
        token = f"sync{next(_tokens)}"
        self.send(f"PING :{token}")
        got = []
        while True:
            msg = self.recv()
            if msg.command == "PONG" and msg.params[-1] == token:
                return got
            got.append(msg)

    def join(self, channel: str, key: str | None = None) -> Message:
        """JOIN and wait for its end of NAMES (366); a refusal fails the test."""
        self.send(f"JOIN {channel}" + (f" {key}" if key is not None else ""))
        while True:
            msg = self.expect("366")
            if msg.params[1] == channel:
                return msg

    def names(self, channel: str) -> list:
        """The nicks (with their prefixes) of the next NAMES reply for
        channel: its 353 lines up to its 366. Sends nothing: after a JOIN,
        or send NAMES first."""
        out = []
        while True:
            msg = self.recv()
            if msg.command == "353" and msg.params[2] == channel:
                out += msg.params[-1].split()
            if msg.command == "366" and msg.params[1] == channel:
                return out

    def batch(self) -> list:
        """The lines of the next BATCH (each must carry its label)."""
        start = self.expect("BATCH")
        label = start.params[0][1:]
        lines = []
        while True:
            msg = self.recv()
            if msg.command == "BATCH" and msg.params[0] == "-" + label:
                return lines
            assert msg.tags.get("batch") == label, msg
            lines.append(msg)

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def irc(request):
    """irc(nick=None, caps="", srv=None, **register) -> an IrcClient on the
    IRC door of srv (the module's ``srv`` fixture unless given), registered
    when given a nick (``register``'s password too). All closed after the test."""
    made = []

    def make(nick: str | None = None, caps: str = "", srv=None, **kw) -> IrcClient:
        srv = srv or request.getfixturevalue("srv")
        c = IrcClient(srv.door_port("irc"))
        made.append(c)
        if nick is not None:
            c.register(nick, caps, **kw)
        return c

    yield make
    for c in made:
        c.close()


@pytest.fixture
def json_client(request, connect):
    """json_client(nick, *rooms, srv=None) -> a window-protocol (v2) client
    of srv (the module's ``srv`` fixture unless given) in lobby and these
    rooms, its own joined frames read."""
    def make(nick: str, *rooms: str, srv=None):
        c = connect(srv=srv or request.getfixturevalue("srv"))
        hello_v2(c, nick)
        for room in rooms:
            c.send({"type": "join", "room": room, "ref": "j" + room})
            answer(c, "room", "j" + room)
            expect(c, "joined", nick=nick)
        return c
    return make
