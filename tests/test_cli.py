"""The terminal mode as a real subprocess, driven through pipes, against the
in-process server."""
from __future__ import annotations

import os
import queue
import re
import subprocess
import sys
import threading
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
STAMP = r"\[\d\d:\d\d\] "


def cli_cmd(port: int, nick: str, *extra: str) -> list:
    """The real entry point: ``python -m chatgui --cli`` routes to chatgui.cli.main."""
    return [sys.executable, "-m", "chatgui", "--cli", "--host", "127.0.0.1", "--port", str(port),
            "--nick", nick, *extra]


def _env() -> dict:
    env = dict(os.environ)
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    env["PYTHONUNBUFFERED"] = "1"
    env.pop("NATTER_PASSWORD", None)
    return env


def _next_from(client, nick: str) -> dict:
    while True:
        m = client.recv_type("message")
        if m["from"] == nick:
            return m


def run_cli(port: int, nick: str, stdin: str, *extra: str, timeout: float = 30):
    return subprocess.run(cli_cmd(port, nick, *extra), input=stdin, capture_output=True, text=True,
                          encoding="utf-8", timeout=timeout, cwd=ROOT, env=_env())


class Cli:
    """A running terminal client: write lines, wait for lines on stdout/stderr."""

    def __init__(self, port: int, nick: str, *extra: str):
        self.proc = subprocess.Popen(cli_cmd(port, nick, *extra), stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                                     encoding="utf-8", cwd=ROOT, env=_env())
        self.out: queue.Queue = queue.Queue()
        self.err: queue.Queue = queue.Queue()
        self.out_lines: list = []
        self.err_lines: list = []
        for stream, q in ((self.proc.stdout, self.out), (self.proc.stderr, self.err)):
            threading.Thread(target=self._pump, args=(stream, q), daemon=True).start()

    @staticmethod
    def _pump(stream, q):
        for line in stream:
            q.put(line.rstrip("\n"))
        q.put(None)

    def send(self, line: str) -> None:
        self.proc.stdin.write(line + "\n")
        self.proc.stdin.flush()

    def expect(self, pattern: str, stream: str = "out", timeout: float = 10) -> str:
        q, seen = (self.out, self.out_lines) if stream == "out" else (self.err, self.err_lines)
        deadline = time.monotonic() + timeout
        while True:
            try:
                line = q.get(timeout=max(0.01, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no line matching {pattern!r} on std{stream}; saw {seen}") from None
            if line is None:
                raise AssertionError(f"std{stream} ended before {pattern!r}; saw {seen}")
            seen.append(line)
            if re.search(pattern, line):
                return line

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
        self.proc.wait(5)
        for s in (self.proc.stdin, self.proc.stdout, self.proc.stderr):
            try:
                s.close()
            except OSError:
                pass


@pytest.fixture
def cli():
    made = []

    def make(port, nick, *extra):
        c = Cli(port, nick, *extra)
        made.append(c)
        return c
    yield make
    for c in made:
        c.close()


def test_piped_line_is_posted_and_the_client_exits_zero(server, connect):
    bob = connect("bob")
    r = run_cli(server.port, "ci", "build finished\n")
    assert r.returncode == 0, r.stderr
    m = bob.recv_type("message")
    assert (m["from"], m["text"]) == ("ci", "build finished")
    assert re.search(STAMP + r"<ci> build finished$", r.stdout, re.M)


def test_several_piped_lines_and_commands_arrive_once_in_order(server, connect):
    bob = connect("bob")
    r = run_cli(server.port, "ci", "one\n/me deploys\n/msg bob private note\n//literal slash\n/bogus\ntwo\n")
    assert r.returncode == 0, r.stderr
    got = [bob.recv_type("message")["text"] for _ in range(4)]
    assert got == ["one", "/me deploys", "/literal slash", "two"]
    dms = [f for f in bob.frames if f["type"] == "dm"]
    assert [(d["from"], d["text"]) for d in dms] == [("ci", "private note")]
    assert "Unknown command /bogus" in r.stderr
    assert bob.recv_type("left") == {"type": "left", "room": "lobby", "nick": "ci", "reason": "quit"}   # a clean bye
    assert bob.nothing_for(0.3)


def test_room_is_printed_with_timestamps_and_made_safe(server, connect, cli):
    c = cli(server.port, "ann")
    c.expect(r"connected to 127\.0\.0\.1:\d+ as ann", stream="err")
    bob = connect("bob")
    c.expect(STAMP + r"-- bob joined$")
    bob.send({"type": "say", "text": "hello ann"})
    c.expect(STAMP + r"<bob> hello ann$")
    bob.send({"type": "say", "text": "/me waves"})
    c.expect(STAMP + r"\* bob waves$")
    bob.send({"type": "dm", "to": "ann", "text": "just for you"})
    c.expect(STAMP + r"\[private\] <bob> just for you$")
    # bidi override and a second line cannot pose as a notice
    bob.send({"type": "say", "text": "\u202etfel nna --\n-- carol left"})
    line = c.expect(STAMP + r"<bob> ")
    assert "\u202e" not in line and "\\u202e" in line
    follow = c.expect(r"\| -- carol left$")
    assert follow.startswith(" ")
    c.send("hi bob")
    assert _next_from(bob, "ann")["text"] == "hi bob"
    c.expect(STAMP + r"<ann> hi bob$")
    c.send("/who")
    c.expect(r"-- 2 online: ann, bob")
    c.send("/nick anna")
    c.expect(STAMP + r"-- ann is now known as anna$")
    c.send("/quit")
    assert c.proc.wait(10) == 0


def test_end_of_input_exits_zero_after_everything_is_acknowledged(server, connect, cli):
    bob = connect("bob")
    c = cli(server.port, "ann")
    for i in range(20):
        c.send(f"line {i}")
    c.proc.stdin.close()
    assert c.proc.wait(15) == 0
    texts = [_next_from(bob, "ann")["text"] for _ in range(20)]
    assert texts == [f"line {i}" for i in range(20)]


def test_no_server_exits_nonzero_with_a_clear_reason(tmp_path):
    import socket
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    r = run_cli(port, "ci", "never sent\n")
    assert r.returncode == 1
    assert "cannot connect" in r.stderr and "Nothing accepted the connection" in r.stderr
    assert r.stdout == ""


def test_nick_taken_and_wrong_password_exit_nonzero(make_server, connect):
    srv = make_server(password="pw", rate_limit=0)
    r = run_cli(srv.port, "ci", "x\n", "--password", "nope")
    assert r.returncode == 1 and "Wrong room password" in r.stderr
    from tests.netclient import LineClient
    holder = LineClient(srv.port)
    holder.hello("ci", password="pw")
    try:
        r = run_cli(srv.port, "ci", "x\n", "--password", "pw")
        assert r.returncode == 1 and "pick another" in r.stderr
    finally:
        holder.close()


def test_refused_message_makes_the_exit_status_nonzero(server):
    r = run_cli(server.port, "ci", "/msg nobody hello\n")
    assert r.returncode == 1
    assert "Nobody called 'nobody' is online" in r.stderr


def test_lines_piped_before_the_welcome_wait_for_it(server, connect):
    bob = connect("bob")
    r = run_cli(server.port, "ci", "/who\nhello\n/quit\nafter the quit\n")
    assert r.returncode == 0, r.stderr
    assert "not connected yet" not in r.stderr
    assert re.search(r"^-- 2 online: bob, ci$", r.stdout, re.M)
    assert bob.recv_type("message")["text"] == "hello"
    assert bob.recv_type("left")["nick"] == "ci"
    assert [f["text"] for f in bob.frames if f["type"] == "message"] == ["hello"]


def test_a_piped_run_prints_no_history_unless_asked(server, connect):
    bob = connect("bob")
    bob.send({"type": "say", "text": "old news"})
    bob.recv_type("message")
    plain = run_cli(server.port, "ci", "")
    assert plain.returncode == 0, plain.stderr
    assert "old news" not in plain.stdout
    asked = run_cli(server.port, "ci", "", "--history")
    assert asked.returncode == 0, asked.stderr
    assert re.search(STAMP + r"<bob> old news$", asked.stdout, re.M)
    off = run_cli(server.port, "ci", "", "--no-history")
    assert off.returncode == 0 and "old news" not in off.stdout
    both = run_cli(server.port, "ci", "", "--history", "--no-history")
    assert both.returncode == 2 and "not allowed with" in both.stderr


def test_bad_arguments_exit_2():
    r = subprocess.run([sys.executable, "-m", "chatgui.cli", "--port", "1"], capture_output=True, text=True,
                       timeout=30, cwd=ROOT, env=_env())
    assert r.returncode == 2 and "--nick" in r.stderr


# -- TLS -------------------------------------------------------------------------

FP_LINE = r"^--     (?:[0-9A-F]{4} ){15}[0-9A-F]{4}$"


def test_tls_first_use_in_a_pipe_sends_nothing_and_says_how_to_trust_it(make_server):
    from chatgui.net.pins import PinStore
    from tests.chatclients import until_pong
    from tests.test_client_tls import PasswordSpy, settle
    from tests.test_tls import TlsLineClient
    srv = make_server(tls=True, password="pw", rate_limit=0)
    spy = PasswordSpy()
    srv.check_password = spy            # connections take it at accept time
    bob = TlsLineClient(srv.port)
    bob.hello("bob", password="pw")
    r = run_cli(srv.port, "ci", "must not arrive\n", "--tls", "--quiet", "--password", "pw")
    assert r.returncode == 1 and r.stdout == ""
    # shown even with --quiet: it is the one chance to compare
    assert "First encrypted connection to 127.0.0.1:" in r.stderr and "nothing was sent" in r.stderr
    assert re.search(FP_LINE, r.stderr, re.M).group().split("--")[1].strip() == srv.fingerprint
    assert f'--trust-fingerprint "{srv.fingerprint}"' in r.stderr
    assert "not sent: 1 line typed before the connection" in r.stderr
    # The server never saw its hello: no password checked, nobody joined.
    probe = settle(srv, srv.port, live=1, password="pw")
    assert spy.seen == ["pw", "pw"], "only bob's and the probe's hellos may reach the server"
    assert not [f for f in until_pong(bob) if f.get("nick") == "ci" or f["type"] == "message"]
    assert PinStore().get("127.0.0.1", srv.port) is None

    ok = run_cli(srv.port, "ci", "after comparing\n", "--trust-fingerprint", srv.fingerprint, "--password", "pw")
    assert ok.returncode == 0, ok.stderr
    assert _next_from(bob, "ci")["text"] == "after comparing"
    assert PinStore().get("127.0.0.1", srv.port) == srv.fingerprint
    again = run_cli(srv.port, "ci", "again\n", "--tls", "--password", "pw")
    assert again.returncode == 0, again.stderr
    assert _next_from(bob, "ci")["text"] == "again"
    assert "First encrypted" not in again.stderr and srv.fingerprint not in again.stderr
    assert re.search(r"connected to 127\.0\.0\.1:\d+ as ci \(3 online, encrypted\)", again.stderr)
    bob.close()
    probe.close()


class PtyReader:
    """Everything a child wrote to its terminal (the master side of a pty),
    read on a thread; :meth:`expect` waits for a pattern."""

    def __init__(self, master: int):
        self.master = master
        self.text = ""
        self._cv = threading.Condition()
        threading.Thread(target=self._read, name="test-pty", daemon=True).start()

    def _read(self):
        while True:
            try:
                data = os.read(self.master, 4096)
            except OSError:         # EIO: the child closed its side
                data = b""
            with self._cv:
                if not data:
                    self.text += "\0"      # the end
                    self._cv.notify_all()
                    return
                self.text += data.decode("utf-8", "replace")
                self._cv.notify_all()

    def expect(self, pattern: str, timeout: float = 15) -> None:
        deadline = time.monotonic() + timeout
        with self._cv:
            while not re.search(pattern, self.text, re.M):
                left = deadline - time.monotonic()
                if left <= 0 or self.text.endswith("\0"):
                    raise AssertionError(f"no {pattern!r} on the terminal; it shows {self.text!r}")
                self._cv.wait(left)


def test_tls_first_use_at_a_terminal_asks_and_joins_on_yes(make_server):
    import pty
    from chatgui.net.pins import PinStore
    from tests.chatclients import until_pong
    from tests.test_client_tls import settle
    from tests.test_tls import TlsLineClient
    srv = make_server(tls=True, rate_limit=0)
    bob = TlsLineClient(srv.port)
    bob.hello("bob")
    bob.send({"type": "say", "text": "from before you joined"})
    bob.recv_type("message")
    master, slave = pty.openpty()
    proc = subprocess.Popen(cli_cmd(srv.port, "ann", "--tls"), stdin=slave, stdout=slave, stderr=slave,
                            cwd=ROOT, env=_env())
    os.close(slave)
    term = PtyReader(master)
    try:
        term.expect(r"Trust this certificate and join\? \[y/N\] $")
        assert srv.fingerprint in term.text and "nothing was sent" in term.text
        probe = settle(srv, srv.port, live=1)       # ann's connection has ended, unannounced
        assert not [f for f in until_pong(bob) if f.get("nick") == "ann"]
        os.write(master, b"y\n")                    # read by the cli-stdin thread: an answer
        term.expect(r"connected to 127\.0\.0\.1:\d+ as ann \(3 online, encrypted\)")
        term.expect(STAMP + r"<bob> from before you joined\r?$")     # a terminal shows the history
        os.write(master, b"hello from the terminal\n")
        assert _next_from(bob, "ann")["text"] == "hello from the terminal"
        assert [f["text"] for f in bob.frames if f["type"] == "message" and f["from"] == "ann"] == \
            ["hello from the terminal"], "the answer must not be sent as a message"
        assert PinStore().get("127.0.0.1", srv.port) == srv.fingerprint
        os.write(master, b"/quit\n")
        assert proc.wait(15) == 0
        probe.close()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        os.close(master)
        bob.close()


def test_tls_first_use_at_a_terminal_answered_no_sends_nothing(make_server):
    import pty
    from tests.test_client_tls import PasswordSpy
    srv = make_server(tls=True, password="pw", rate_limit=0)
    spy = PasswordSpy()
    srv.check_password = spy
    master, slave = pty.openpty()
    proc = subprocess.Popen(cli_cmd(srv.port, "ann", "--tls", "--password", "pw"), stdin=slave,
                            stdout=slave, stderr=slave, cwd=ROOT, env=_env())
    os.close(slave)
    term = PtyReader(master)
    try:
        term.expect(r"Trust this certificate and join\? \[y/N\] $")
        os.write(master, b"\n")                     # the default: no
        assert proc.wait(15) == 1
        term.expect(r"not connected: the certificate was not trusted, and nothing was sent")
        assert spy.seen == []
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        os.close(master)


def test_tls_changed_certificate_exits_1_and_trust_fingerprint_accepts_it(make_server, tmp_path):
    from server import tls
    from tests.chatclients import until_pong
    from tests.test_client_tls import settle
    from tests.test_tls import TlsLineClient
    db = str(tmp_path / "c.db")
    srv = make_server(tls=True, rate_limit=0, db=db)
    port, old = srv.port, srv.fingerprint
    assert run_cli(port, "ci", "first\n", "--trust-fingerprint", old).returncode == 0   # compared on first use
    srv.shutdown()
    cert, key = tls.ensure_certificate(str(tmp_path / "other"))
    srv2 = make_server(tls=True, port=port, cert=cert, key=key, rate_limit=0, db=db)
    bob = TlsLineClient(port)
    bob.hello("bob")

    r = run_cli(port, "ci", "must not arrive\n", "--tls")
    assert r.returncode == 1
    assert "has changed" in r.stderr and old in r.stderr and srv2.fingerprint in r.stderr
    assert f'--trust-fingerprint "{srv2.fingerprint}"' in r.stderr
    assert r.stdout == ""

    wrong = run_cli(port, "ci", "x\n", "--trust-fingerprint", old)
    assert wrong.returncode == 1 and "not the one you said to trust" in wrong.stderr
    probe = settle(srv2, port, live=1)
    assert not [f for f in until_pong(bob) if f.get("nick") == "ci"], "a refused client reached the room"

    ok = run_cli(port, "ci", "after comparing\n", "--trust-fingerprint", srv2.fingerprint.lower())
    assert ok.returncode == 0, ok.stderr
    assert _next_from(bob, "ci")["text"] == "after comparing"
    later = run_cli(port, "ci", "pinned now\n", "--tls")
    assert later.returncode == 0, later.stderr
    assert _next_from(bob, "ci")["text"] == "pinned now"
    bob.close()
    probe.close()


def test_tls_layer_mismatches_and_a_bad_fingerprint_argument(make_server):
    plain = make_server(rate_limit=0)
    r = run_cli(plain.port, "ci", "x\n", "--tls")
    assert r.returncode == 1 and "does not use encryption" in r.stderr
    secure = make_server(tls=True, rate_limit=0)
    r = run_cli(secure.port, "ci", "x\n")
    assert r.returncode == 1 and "requires encryption" in r.stderr and "--tls" in r.stderr
    r = run_cli(secure.port, "ci", "x\n", "--trust-fingerprint", "3F2A 9B1C")
    assert r.returncode == 2 and "64 hexadecimal digits" in r.stderr
