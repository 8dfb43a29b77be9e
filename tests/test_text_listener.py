"""The plain-text door over real loopback sockets (--text-port 0): the
welcome line with a guest nick, lobby, HH:MM <nick> text both ways with a
JSON client, the 200 ms pause rule (text with no newline), telnet's IAC
stripped, /nick /join /who /quit, the password asked first, the line
limit, and a client that vanishes."""
from __future__ import annotations

import re
import socket
import time

import pytest

from server.doors.text.inbound import MAX_LINE
from tests.servertools import answer, expect, hello_v2, messages, reset

pytestmark = pytest.mark.timeout(30)

LINE = re.compile(r"^\d\d:\d\d <(?P<nick>[^>]+)> (?P<text>.*)$")


class TextClient:
    """nc, as a socket: bytes out, CR LF lines in."""

    def __init__(self, port: int, timeout: float = 10.0):
        self.sock = socket.create_connection(("127.0.0.1", port), timeout)
        self.timeout = timeout
        self.buf = b""
        self.lines: list[str] = []

    def send(self, data: bytes) -> None:
        self.sock.sendall(data)

    def line(self, timeout: float | None = None) -> str:
        deadline = time.monotonic() + (timeout or self.timeout)
        while b"\r\n" not in self.buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no line; have {self.buf!r}")
            self.sock.settimeout(left)
            try:
                data = self.sock.recv(4096)
            except socket.timeout:
                raise TimeoutError(f"no line; have {self.buf!r}") from None
            if not data:
                raise EOFError("closed")
            self.buf += data
        line, self.buf = self.buf.split(b"\r\n", 1)
        text = line.decode("utf-8")
        self.lines.append(text)
        return text

    def until(self, pattern: str, timeout: float | None = None) -> str:
        deadline = time.monotonic() + (timeout or self.timeout)
        while True:
            line = self.line(max(0.01, deadline - time.monotonic()))
            if re.search(pattern, line):
                return line

    def close(self) -> None:
        self.sock.close()


@pytest.fixture
def srv(make_server):
    return make_server(rate_limit=0, text_port=0)


@pytest.fixture
def text(srv):
    made = []

    def make(**kw) -> TextClient:
        c = TextClient(srv.door_port("text"), **kw)
        made.append(c)
        return c
    yield make
    for c in made:
        c.close()


def _welcomed(c: TextClient) -> str:
    first = c.line()
    m = re.match(r"Welcome to Natter, (guest-\d+)! You are in #lobby", first)
    assert m, first
    assert "/nick NAME" in first and "/join NAME" in first and "/who" in first and "/quit" in first
    c.until(r"^In #lobby: ")
    return m.group(1)


def test_welcome_guest_nick_lobby_and_chat_both_ways(text, connect, srv):
    bob = connect(srv=srv)
    hello_v2(bob, "bob")
    t = text()
    guest = _welcomed(t)
    assert expect(bob, "joined", room="lobby")["nick"] == guest
    t.send(b"hello from nc\n")
    m = LINE.match(t.until(r"hello from nc"))
    assert m.group("nick") == guest                     # the sender's own line too, as the tutorial's room
    assert expect(bob, "message", text="hello from nc")["from"] == guest
    bob.send({"type": "say", "text": "hi text", "ref": "b1"})
    m = LINE.match(t.until(r"hi text"))
    assert m.group("nick") == "bob" and m.group("text") == "hi text"


def test_no_newline_counts_after_a_pause(text, connect, srv):
    bob = connect(srv=srv)
    hello_v2(bob, "bob")
    t = text()
    _welcomed(t)
    expect(bob, "joined")
    t.send(b"typed without newline")          # the tutorial's client: a bare send()
    start = time.monotonic()
    assert expect(bob, "message")["text"] == "typed without newline"
    assert time.monotonic() - start >= 0.15   # after the pause, not before


def test_telnet_negotiation_is_stripped(text, connect, srv):
    bob = connect(srv=srv)
    hello_v2(bob, "bob")
    t = text()
    _welcomed(t)
    expect(bob, "joined")
    t.send(b"\xff\xfd\x01\xff\xfb\x1f\xff\xfa\x1f\x00\x50\x00\x18\xff\xf0he\xff\xf1llo\r\n")
    assert expect(bob, "message")["text"] == "hello"


def test_commands_nick_join_who_quit(text, connect, srv):
    bob = connect(srv=srv)
    hello_v2(bob, "bob")
    bob.send({"type": "join", "room": "rust", "ref": "r"})
    answer(bob, "room", "r")
    expect(bob, "joined", nick="bob")
    t = text()
    guest = _welcomed(t)
    expect(bob, "joined", room="lobby", nick=guest)
    t.send(b"/nick nelly\r\n")
    expect(bob, "renamed", old=guest, new="nelly")
    assert "You are now nelly" in t.until("nelly")
    t.send(b"/nick bob\r\n")
    assert "!!" in t.until(r"in use")
    t.send(b"/join #rust\r\n")
    t.until(r"You are in #rust")
    assert "bob" in t.until(r"^In #rust: ") and "nelly" in t.lines[-1]
    assert expect(bob, "joined", room="rust")["nick"] == "nelly"
    expect(bob, "left", room="lobby", nick="nelly")        # one room at a time: it left lobby
    t.send(b"in rust\r\n")
    assert expect(bob, "message", room="rust", text="in rust")["from"] == "nelly"
    t.send(b"/who\r\n")
    assert t.until(r"^In #rust: ").endswith("(2 people).")
    t.send(b"/frob\r\n")
    assert "!! There is no /frob" in t.until(r"/frob")
    t.send(b"/quit\r\n")
    t.until("Bye.")
    assert expect(bob, "left", room="rust")["nick"] == "nelly"
    assert guest != "nelly"


def test_password_asked_first(make_server, connect):
    srv = make_server(rate_limit=0, text_port=0, password="hunter2", auth_delay=0.01)
    t = TextClient(srv.door_port("text"))
    try:
        assert "password" in t.line().lower()
        t.send(b"wrong\r\n")
        assert "Wrong password" in t.line()
        t.send(b"hunter2\r\n")
        _welcomed(t)
    finally:
        t.close()


def test_line_limit_control_characters_and_a_vanished_client(text, connect, srv):
    bob = connect(srv=srv)
    hello_v2(bob, "bob")
    t = text()
    guest = _welcomed(t)
    expect(bob, "joined")
    t.send(b"x" * (MAX_LINE + 10) + b"\r\n")
    assert "!!" in t.until(r"longer than")
    t.send(b"\x1b[2Jclean\x07 text\r\n")
    assert expect(bob, "message")["text"] == "clean text"
    reset(t)
    assert expect(bob, "left")["nick"] == guest


def test_a_connection_with_a_descriptor_past_select_s_limit_works(text, connect, srv):
    """A busy server has descriptors past FD_SETSIZE (1024): its readers
    wait with poll(), not select(), which refuses them."""
    import resource
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    need = 1200
    if soft < need:
        if hard != resource.RLIM_INFINITY and hard < need:
            pytest.skip(f"the open-files limit is {hard}: a descriptor past 1024 cannot be made here")
        resource.setrlimit(resource.RLIMIT_NOFILE, (need, hard))
    filler = [socket.socket() for _ in range(1100)]     # this process is the server's: its next ones are past 1024
    try:
        bob = connect(srv=srv)
        hello_v2(bob, "bob")
        t = text()
        guest = _welcomed(t)
        assert expect(bob, "joined", room="lobby")["nick"] == guest
        assert max(s.fileno() for s in filler) > 1024
        t.send(b"typed on a high descriptor\n")
        assert expect(bob, "message", text="typed on a high descriptor")["from"] == guest
        t.send(b"no newline")                           # the pause rule waits with a timeout
        assert expect(bob, "message", text="no newline")["from"] == guest
    finally:
        for s in filler:
            s.close()


def test_flood_control_delays_a_burst_and_drops_nothing(make_server, connect):
    srv = make_server(rate_limit=5, rate_burst=2, text_port=0)
    bob = connect(srv=srv)
    hello_v2(bob, "bob")
    t = TextClient(srv.door_port("text"))
    try:
        guest = _welcomed(t)
        expect(bob, "joined", nick=guest)
        burst = [f"line {i}" for i in range(8)]
        start = time.monotonic()
        t.send("".join(x + "\n" for x in burst).encode())         # one write: the lines come at once
        got = messages(bob, len(burst))
        took = time.monotonic() - start
        assert [f["text"] for f in got] == burst and {f["from"] for f in got} == {guest}   # all, in order
        assert took >= 0.8          # paced: 2 at once, then 5 a second (1.2 s for the other 6)
        assert "!!" in t.until(r"delayed, not dropped")                  # the sender is told once
    finally:
        t.close()
