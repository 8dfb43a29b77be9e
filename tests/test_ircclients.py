"""The real-client harnesses (tests/ircclients.py) proved against a minimal
scripted IRC server: a socket on 127.0.0.1 port 0 that registers the
client, answers JOIN, records PRIVMSG and sends one PRIVMSG back. Each
client registers, joins, sends a line the test reads on the socket, and
shows a line the test sends. The door's own codec (server/doors/irc/wire)
reads and writes the lines."""
from __future__ import annotations

import queue
import socket
import threading

import pytest

from server.doors.irc.wire import LineError, LineReader, Message, parse, serialise
from tests.ircclients import WAIT_TIMEOUT, Irssi, WeeChat

NAME = "scripted.test"


class ScriptedServer:
    """One IRC client at a time, scripted: enough registration for a real
    client (CAP LS with no caps, 001-004, 422; 451 for a JOIN before),
    JOIN with NAMES, PING, QUIT (ERROR and close).
    :attr:`lines` gets every line the client sent; :meth:`send` writes one.
    Runs one thread, ``scripted-irc``, which owns the socket's reads."""

    def __init__(self):
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.2)
        self.port = self.listener.getsockname()[1]
        self.lines: queue.Queue = queue.Queue()
        self.conn: socket.socket | None = None
        self.nick: str | None = None
        self.registered = threading.Event()
        self.joined = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._serve, name="scripted-irc", daemon=True)
        self._thread.start()

    def send(self, msg: Message) -> None:
        self.conn.sendall(serialise(msg))

    def expect(self, command: str, first: str, timeout: float = WAIT_TIMEOUT) -> Message:
        """The next line the client sent with this command and first
        parameter (others are skipped); queue.Empty after ``timeout``."""
        while True:
            msg = self.lines.get(timeout=timeout)
            if msg.command == command and msg.params[:1] == (first,):
                return msg

    def close(self) -> None:
        self._stop.set()
        self._thread.join(5)
        self.listener.close()

    def _serve(self) -> None:
        while not self._stop.is_set():
            try:
                conn, _ = self.listener.accept()
            except socket.timeout:
                continue
            self.conn = conn
            conn.settimeout(0.2)
            reader, user = LineReader(), None
            with conn:
                while not self._stop.is_set():
                    try:
                        data = conn.recv(4096)
                    except socket.timeout:
                        continue
                    except OSError:
                        break
                    if not data:
                        break
                    for line in reader.feed(data):
                        if isinstance(line, LineError):
                            continue
                        msg = parse(line)
                        self.lines.put(msg)
                        user = self._answer(msg, user)

    def _answer(self, msg: Message, user):
        cmd, out = msg.command, []
        if cmd == "QUIT":
            # as a server does: ERROR, then close, so the client need not time out
            try:
                self.conn.sendall(serialise(Message("ERROR", ("Closing link: quit",))))
                self.conn.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass        # the client hung up first: nothing left to close
            return user
        if cmd == "CAP" and msg.params[:1] == ("LS",):
            out.append(Message("CAP", ("*", "LS", ""), NAME))
        elif cmd == "NICK":
            self.nick = msg.params[0]
        elif cmd == "USER":
            user = msg.params[0]
        elif cmd == "PING":
            out.append(Message("PONG", (NAME, msg.params[0] if msg.params else NAME), NAME))
        elif cmd == "JOIN" and not self.registered.is_set():
            # irssi sends "JOIN :" after CAP LS, to learn whether CAP is known
            out.append(Message("451", ("*", "You have not registered"), NAME))
        elif cmd == "JOIN":
            chan = msg.params[0]
            out += [Message("JOIN", (chan,), f"{self.nick}!u@natter"),
                    Message("353", (self.nick, "=", chan, f"{self.nick} bob"), NAME),
                    Message("366", (self.nick, chan, "End of NAMES list"), NAME)]
            self.joined.set()
        if cmd in ("NICK", "USER") and self.nick and user and not self.registered.is_set():
            out += [Message("001", (self.nick, f"Welcome to the scripted server, {self.nick}"), NAME),
                    Message("002", (self.nick, f"Your host is {NAME}"), NAME),
                    Message("003", (self.nick, "This server was created today"), NAME),
                    Message("004", (self.nick, NAME, "scripted-1", "i", "k"), NAME),
                    Message("422", (self.nick, "MOTD File is missing"), NAME)]
            self.registered.set()
        for m in out:
            self.conn.sendall(serialise(m))
        return user


@pytest.fixture
def irc_server():
    srv = ScriptedServer()
    yield srv
    srv.close()


@pytest.mark.timeout(90)
def test_weechat_registers_joins_and_talks_both_ways(irc_server, tmp_path):
    with WeeChat(tmp_path / "weechat", "127.0.0.1", irc_server.port, "wee") as wee:
        assert irc_server.registered.wait(WAIT_TIMEOUT), "WeeChat did not register"
        assert irc_server.nick == "wee"
        wee.wait_log("server", "Welcome to the scripted server, wee")     # WeeChat took the 001
        wee.send("/join #rust", "irc.server.test")
        irc_server.expect("JOIN", "#rust")
        assert irc_server.joined.wait(WAIT_TIMEOUT)
        wee.wait_log("#rust", "Channel #rust: 2 nicks")     # JOIN and NAMES reached its channel buffer
        wee.say("#rust", "hello from weechat, ünïcode ☕")
        msg = irc_server.expect("PRIVMSG", "#rust")
        assert msg.params == ("#rust", "hello from weechat, ünïcode ☕")
        irc_server.send(Message("PRIVMSG", ("#rust", "hi wee, from the test"), "bob!u@natter"))
        log = wee.wait_log("#rust", "hi wee, from the test")
        assert "\tbob\thi wee, from the test" in log
    assert wee.proc is None


@pytest.mark.timeout(90)
def test_irssi_registers_joins_and_talks_both_ways(irc_server, tmp_path):
    with Irssi(tmp_path / "irssi", "127.0.0.1", irc_server.port, "irs") as irs:
        assert irc_server.registered.wait(WAIT_TIMEOUT), "irssi did not register:\n" + irs.screen()
        assert irc_server.nick == "irs"
        irs.wait_screen("Welcome to the scripted server, irs")          # irssi took the 001
        irs.type("/join #rust")
        irc_server.expect("JOIN", "#rust")
        irs.wait_screen("bob")
        irs.type("hello from irssi, ünïcode ☕")
        msg = irc_server.expect("PRIVMSG", "#rust")
        assert msg.params == ("#rust", "hello from irssi, ünïcode ☕")
        irc_server.send(Message("PRIVMSG", ("#rust", "hi irs, from the test"), "bob!u@natter"))
        screen = irs.wait_screen("hi irs, from the test")
        assert any("bob" in line and "hi irs, from the test" in line for line in screen.splitlines())
    assert irs.server_pid is None


def test_a_missing_client_skips_with_the_reason(monkeypatch):
    from tests import ircclients
    monkeypatch.setattr(ircclients.shutil, "which", lambda name: None)
    with pytest.raises(pytest.skip.Exception, match="weechat-headless not installed"):
        ircclients.require("weechat-headless")
