"""The classic tutorial's own client (tests/tutorial_client.py, copied
unchanged from ../shared/clients/: it takes host and port as arguments),
run as a real program: through the text port its message reaches a JSON
client; pointed at the JSON port it gets a clear error at once, and the
room is unharmed. And the JSON port's answer to a first byte that cannot
begin a JSON object, over a raw socket."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from server import protocol as p
from tests.servertools import chat_works, expect, expect_error, hello_v2, wait_until

pytestmark = pytest.mark.timeout(30)

CLIENT = Path(__file__).with_name("tutorial_client.py")


class Tutorial:
    """The tutorial's client as a process: what it prints goes to a file
    (its reader thread never ends: it is killed by its pid)."""

    def __init__(self, port: int, tmp_path: Path):
        self.out_path = tmp_path / f"tutorial-{port}.txt"
        self._out = open(self.out_path, "wb")
        self.proc = subprocess.Popen([sys.executable, "-u", str(CLIENT), "127.0.0.1", str(port)],
                                     stdin=subprocess.PIPE, stdout=self._out, stderr=subprocess.STDOUT)

    def type(self, line: str) -> None:
        self.proc.stdin.write(line.encode("utf-8") + b"\n")    # input() takes the line; send() drops the newline
        self.proc.stdin.flush()

    def printed(self) -> str:
        return self.out_path.read_text("utf-8", "replace")

    def wait_printed(self, text: str, timeout: float = 10.0) -> str:
        return wait_until(lambda: text in self.printed() and self.printed(), timeout, 0.02,
                          f"{text!r} printed by the tutorial's client")

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.kill(self.proc.pid, signal.SIGKILL)
        self.proc.wait(5)
        self.proc.stdin.close()
        self._out.close()


@pytest.fixture
def tutorial(tmp_path):
    made = []

    def start(port: int) -> Tutorial:
        t = Tutorial(port, tmp_path)
        made.append(t)
        return t
    yield start
    for t in made:
        t.stop()


def test_the_tutorial_client_chats_through_the_text_port(make_server, connect, tutorial):
    srv = make_server(rate_limit=0, text_port=0)
    bob = connect(srv=srv)
    hello_v2(bob, "bob")
    t = tutorial(srv.door_port("text"))
    t.wait_printed("Welcome to Natter, guest-")
    joined = expect(bob, "joined", room="lobby")
    t.type("hello from the tutorial")
    got = expect(bob, "message", text="hello from the tutorial")
    assert got["from"] == joined["nick"]
    bob.send({"type": "say", "text": "hi tutorial"})
    t.wait_printed("<bob> hi tutorial")


def test_the_tutorial_client_on_the_json_port_is_told_at_once(make_server, connect, tutorial):
    srv = make_server(rate_limit=0, text_port=0)
    alice, bob = connect("alice", srv=srv), connect("bob", srv=srv)
    expect(alice, "joined")
    t = tutorial(srv.port)
    start = time.monotonic()
    t.type("hello?")
    out = t.wait_printed(p.BAD_JSON, timeout=5.0)
    assert time.monotonic() - start < 3.0               # at once, not at a timeout
    assert f"connect to port {srv.door_port('text')}" in out
    chat_works(alice, bob)                              # the room is unharmed: nobody saw anything
    assert [f["type"] for f in bob.frames] == ["welcome", "message"]


def test_json_port_first_byte_rule_over_a_raw_socket(make_server, connect):
    srv = make_server(rate_limit=0)                     # no text port: the error names none
    c = connect(srv=srv)
    c.send_raw(b"  hello")                              # no newline, ever
    err = expect_error(c, p.BAD_JSON, timeout=3.0)
    assert "JSON" in err["message"] and "port" not in err["message"].split("'{'")[1]
    c.send_raw(b" world\n")                             # the rest of that first line is skipped
    assert c.hello("late")["nick"] == "late"
    d = connect(srv=srv)
    d.send_raw(b"\r\n  \t")                             # white space first is fine
    d.send_raw(b'{"type":"hello","nick":"ok"}\n')
    assert d.recv()["type"] == "welcome"
