"""Bad input over real sockets: each kind gets a clear error frame, the
offender's connection keeps working (until too many errors), and nobody
else notices anything."""
from __future__ import annotations

import random
import socket
import time

import pytest

from server import protocol as p
from tests.servertools import chat_works, expect, expect_error, reset, server_conn, wait_until

pytestmark = pytest.mark.timeout(30)

BAD_LINES = [
    (b"not json\n", p.BAD_JSON),
    (b"{\"type\":\"say\",\"text\":\"x\"\n", p.BAD_JSON),          # unclosed
    (b"{'type':'ping'}\n", p.BAD_JSON),
    (b'{"type":"ping"}{"type":"ping"}\n', p.BAD_JSON),
    (b'{"type":"say","text":NaN}\n', p.BAD_JSON),
    (b'{"type":"say","text":"\xff\xfe"}\n', p.BAD_JSON),         # invalid UTF-8
    (b'{"type":"say","text":"\xed\xa0\x80"}\n', p.BAD_JSON),     # an encoded surrogate
    (b"[" * 50_000 + b"\n", p.BAD_JSON),                         # nested too deeply
    (b'{"type":"hello","nick":"a","since":' + b"9" * 5000 + b"}\n", p.BAD_JSON),
    (b"[1,2,3]\n", p.BAD_FRAME),
    (b'"hello"\n', p.BAD_FRAME),
    (b"42\n", p.BAD_FRAME),
    (b"null\n", p.BAD_FRAME),
    (b'{"text":"no type"}\n', p.BAD_FRAME),
    (b'{"type":7}\n', p.BAD_FRAME),
    (b'{"type":"shout","text":"x"}\n', p.UNKNOWN_TYPE),
    (b'{"type":"welcome"}\n', p.UNKNOWN_TYPE),                  # a server frame from a client
    (b'{"type":"say"}\n', p.BAD_FRAME),
    (b'{"type":"say","text":5}\n', p.BAD_FRAME),
    (b'{"type":"say","text":"x","ref":""}\n', p.BAD_FRAME),
    (b'{"type":"say","text":"x","ref":12}\n', p.BAD_FRAME),
    (b'{"type":"say","text":"   "}\n', p.BAD_TEXT),
    (b'{"type":"say","text":"a\\u0000b"}\n', p.BAD_TEXT),
    (b'{"type":"say","text":"\\u001b[2J"}\n', p.BAD_TEXT),
    (b'{"type":"say","text":"\\ud800"}\n', p.BAD_TEXT),          # a lone surrogate escape
    (b'{"type":"dm","text":"x"}\n', p.BAD_FRAME),
    (b'{"type":"dm","to":["bob"],"text":"x"}\n', p.BAD_FRAME),
    (b'{"type":"dm","to":"bob"}\n', p.BAD_FRAME),
    (b'{"type":"nick"}\n', p.BAD_NICK),
    (b'{"type":"nick","nick":"has space"}\n', p.BAD_NICK),
    (b'{"type":"hello","nick":"a","since":-5}\n', p.BAD_FRAME),
    (b'{"type":"hello","nick":"a","since":"7"}\n', p.BAD_FRAME),
    (b'{"type":"hello","nick":"a","password":["pw"]}\n', p.BAD_FRAME),
    (b'{"type":"hello","nick":"a","password":"\\ud800"}\n', p.BAD_FRAME),   # cannot be UTF-8
    (b'{"type":"hello","nick":"a","resume":"\\udfff"}\n', p.BAD_FRAME),
    (b'{"type":"hello","nick":"a","resume":5}\n', p.BAD_FRAME),
]
IDS = [f"{i}-{code}" for i, (_, code) in enumerate(BAD_LINES)]


@pytest.mark.parametrize("line,code", BAD_LINES, ids=IDS)
def test_bad_line_from_a_welcomed_client(connect, line, code):
    alice, bob = connect("alice"), connect("bob")
    expect(alice, "joined")
    bob.send_raw(line)
    assert expect_error(bob, code)["code"] == code
    chat_works(bob, alice)                  # bob still works; alice saw nothing in between
    chat_works(alice, bob)
    assert [f["type"] for f in alice.frames] == ["welcome", "joined", "message", "message"]


@pytest.mark.parametrize("line,code", BAD_LINES, ids=IDS)
def test_bad_line_before_hello_then_hello_works(connect, line, code):
    alice = connect("alice")
    c = connect()
    c.send_raw(line)
    if line.lstrip()[:1] != b"{":
        code = p.BAD_JSON       # a first byte that cannot begin an object is answered at once (issue 13)
    assert expect_error(c, code)["code"] == code
    assert c.hello("late")["nick"] == "late"
    expect(alice, "joined", nick="late")
    chat_works(alice, c)


def test_error_for_a_refused_say_carries_its_ref(connect):
    alice = connect("alice")
    alice.send({"type": "say", "text": "", "ref": "empty-1"})
    assert expect_error(alice, p.BAD_TEXT)["ref"] == "empty-1"
    alice.send({"type": "dm", "to": "alice", "text": "\x07", "ref": "bell"})
    assert expect_error(alice, p.BAD_TEXT)["ref"] == "bell"


def test_unknown_keys_are_ignored(connect):
    alice, bob = connect("alice"), connect("bob")
    expect(alice, "joined")
    alice.send({"type": "say", "text": "hi", "colour": "red", "id": 999, "from": "bob"})
    m = expect(bob, "message", text="hi")
    assert m["from"] == "alice" and m["id"] != 999 and "colour" not in m
    expect(alice, "message")


def test_crlf_line_endings_and_blank_lines_work(connect):
    alice, bob = connect("alice"), connect("bob")
    expect(alice, "joined")
    alice.send_raw(b'\r\n\n   \n{"type":"say","text":"crlf"}\r\n\r\n')
    expect(bob, "message", text="crlf")
    expect(alice, "message", text="crlf")
    assert alice.nothing_for(0.2)          # blank lines are not errors


def test_frame_split_into_single_bytes_and_utf8_cut_in_half(server, connect):
    """One byte per TCP segment, and per read on the server: TCP_NODELAY
    sends each at once, and the next waits until the server's reader has
    taken the last (its last_seen moves on every recv that returns data)."""
    alice, bob = connect("alice"), connect("bob")
    expect(alice, "joined")
    alice.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    conn = server_conn(server, alice)
    data = p.encode({"type": "say", "text": "é日😀 split"})
    for i in range(len(data)):
        before = conn.last_seen
        alice.send_raw(data[i:i + 1])
        wait_until(lambda: conn.last_seen != before, what=f"the server to read byte {i}")
    assert expect(bob, "message")["text"] == "é日😀 split"
    assert expect(alice, "message")["text"] == "é日😀 split"


def test_many_frames_in_one_write(connect):
    alice, bob = connect("alice"), connect("bob")
    expect(alice, "joined")
    alice.send_raw(b"".join(p.encode({"type": "say", "text": f"g{i}"}) for i in range(50)))
    assert [expect(bob, "message")["text"] for _ in range(50)] == [f"g{i}" for i in range(50)]


def test_line_over_max_line_then_the_connection_still_works(make_server):
    from tests.netclient import LineClient
    srv = make_server(rate_limit=0, max_line=1024)
    alice, bob = LineClient(srv.port), LineClient(srv.port)
    try:
        alice.hello("alice")
        bob.hello("bob")
        expect(alice, "joined")
        fits = p.encode({"type": "say", "text": "x" * (1024 - 30)})
        assert len(fits) == 1024 - 30 + len(b'{"type":"say","text":""}\n') and len(fits) <= 1024
        alice.send_raw(fits)
        assert len(expect(bob, "message")["text"]) == 1024 - 30
        expect(alice, "message")
        too_long = p.encode({"type": "say", "text": "y" * 1024})
        alice.send_raw(too_long)
        e = expect_error(alice, p.TOO_LONG)
        assert "1024" in e["message"]
        chat_works(alice, bob)
        assert alice.welcome if hasattr(alice, "welcome") else True
        w = LineClient(srv.port)
        assert w.hello("w")["limits"]["max_line"] == 1024
        w.close()
    finally:
        alice.close()
        bob.close()


def test_a_megabyte_without_newline(connect):
    alice, bob = connect("alice"), connect("bob")
    expect(alice, "joined")
    bob.send_raw(b"A" * (1 << 20))
    expect_error(bob, p.TOO_LONG)           # told at once, while the line goes on
    bob.send_raw(b"B" * (1 << 20) + b'"}\n')
    chat_works(bob, alice)
    chat_works(alice, bob)
    assert [f.get("code") for f in bob.frames if f["type"] == "error"] == [p.TOO_LONG]   # once, not per chunk


def test_binary_garbage_without_newline_is_one_error(connect):
    alice, bob = connect("alice"), connect("bob")
    expect(alice, "joined")
    garbage = bytes(b for b in random.Random(7).randbytes(3000) if b != 10)
    bob.send_raw(garbage + b"\n")
    assert "UTF-8" in expect_error(bob, p.BAD_JSON)["message"] or garbage.isascii()
    chat_works(bob, alice)


def test_binary_garbage_with_newlines_disconnects_the_sender_only(connect, server):
    alice, bob, mallory = connect("alice"), connect("bob"), connect("mallory")
    expect(alice, "joined", nick="bob")
    expect(alice, "joined", nick="mallory")
    expect(bob, "joined", nick="mallory")
    rnd = random.Random(11)
    garbage = b"\n".join(bytes(b for b in rnd.randbytes(200) if b not in (10, 32, 9, 13)) for _ in range(40))
    try:
        mallory.send_raw(garbage + b"\n")
    except OSError:
        pass                                # the server may hang up while we still write
    codes = []
    try:
        while True:
            f = mallory.recv(3)
            codes.append(f["code"])
    except (EOFError, ConnectionResetError):
        pass
    assert codes[:server.config.max_errors] == [p.BAD_JSON] * server.config.max_errors
    assert codes[server.config.max_errors] == p.TOO_MANY_ERRORS
    expect(alice, "left", nick="mallory", reason="too many protocol errors")
    expect(bob, "left", nick="mallory", reason="too many protocol errors")
    chat_works(alice, bob)


def test_repeated_protocol_errors_disconnect_the_offender(connect, server):
    alice, bob = connect("alice"), connect("bob")
    expect(alice, "joined")
    n = server.config.max_errors
    for i in range(n - 1):
        bob.send_raw(b"oops\n")
        expect_error(bob, p.BAD_JSON)
    chat_works(bob, alice)                  # still in after n - 1 errors
    bob.send_raw(b"oops\n")
    expect_error(bob, p.BAD_JSON)
    e = expect_error(bob, p.TOO_MANY_ERRORS)
    assert str(n) in e["message"]
    assert bob.closed_by_server(4)
    expect(alice, "left", nick="bob", reason="too many protocol errors")
    chat_works(alice)


def test_repeated_errors_before_hello_disconnect_too(connect, server):
    alice = connect("alice")
    c = connect()
    for _ in range(server.config.max_errors):
        c.send({"type": "say", "text": "early"})
    codes = [expect(c, "error")["code"] for _ in range(server.config.max_errors + 1)]
    assert codes == [p.NOT_WELCOMED] * server.config.max_errors + [p.TOO_MANY_ERRORS]
    assert c.closed_by_server(4)
    assert alice.nothing_for(0.2)


def test_garbage_after_too_many_errors_is_ignored_and_the_socket_closes(connect, server):
    c = connect()
    try:
        for _ in range(200):
            c.send_raw(b"x\n")
    except OSError:
        pass
    assert c.closed_by_server(6)
    errors = [f for f in c.frames if f["type"] == "error"]
    assert len(errors) == server.config.max_errors + 1 and errors[-1]["code"] == p.TOO_MANY_ERRORS


def test_client_that_vanishes_mid_frame(connect):
    alice, bob = connect("alice"), connect("bob")
    expect(alice, "joined")
    bob.send_raw(b'{"type":"say","text":"half a fr')
    time.sleep(0.05)
    bob.close()
    expect(alice, "left", nick="bob", reason="connection closed")
    chat_works(alice)
    assert not any(f["type"] == "message" and "half" in f.get("text", "") for f in alice.frames)


def test_client_that_resets_mid_frame(connect):
    alice, bob = connect("alice"), connect("bob")
    expect(alice, "joined")
    bob.send_raw(b'{"type":"say","text":"\xc3')                 # cut inside a UTF-8 character too
    time.sleep(0.05)
    reset(bob)
    f = expect(alice, "left", nick="bob")
    assert f["reason"] in ("connection lost", "connection closed")
    chat_works(alice)


def test_never_says_hello_times_out(make_server):
    from tests.netclient import LineClient
    srv = make_server(rate_limit=0, handshake_timeout=0.3)
    alice = LineClient(srv.port)
    quiet = LineClient(srv.port)
    try:
        alice.hello("alice")
        t = time.monotonic()
        e = expect_error(quiet, p.TIMEOUT, timeout=4)
        assert "hello" in e["message"]
        assert quiet.closed_by_server(4)
        assert time.monotonic() - t < 8
        half = LineClient(srv.port)              # a partial hello is no hello
        half.send_raw(b'{"type":"hel')
        expect_error(half, p.TIMEOUT, timeout=4)
        half.close()
        chat_works(alice)                       # alice (welcomed) is not timed out
    finally:
        alice.close()
        quiet.close()


def test_bad_hello_does_not_stop_the_handshake_clock(make_server):
    from tests.netclient import LineClient
    srv = make_server(rate_limit=0, handshake_timeout=0.3)
    c = LineClient(srv.port)
    try:
        c.send({"type": "hello", "nick": "bad nick"})
        expect_error(c, p.BAD_NICK)
        expect_error(c, p.TIMEOUT, timeout=4)
        assert c.closed_by_server(4)
    finally:
        c.close()


def test_bad_input_is_logged_with_the_peer(make_server, caplog):
    import logging
    from tests.netclient import LineClient
    from tests.servertools import wait_until
    caplog.set_level(logging.DEBUG, logger="natter.server")
    srv = make_server(rate_limit=0, max_line=1024, handshake_timeout=0.3)
    c = LineClient(srv.port)
    quiet = LineClient(srv.port)
    try:
        port = c.sock.getsockname()[1]
        c.send_raw(b"not json\n" + b"x" * 2000 + b"\n" + b'{"type":"nope"}\n')
        for code in (p.BAD_JSON, p.TOO_LONG, p.UNKNOWN_TYPE):
            expect_error(c, code)
        expect_error(quiet, p.TIMEOUT, timeout=5)

        def logged(*words):
            return [r for r in caplog.records if all(w in r.getMessage() for w in words)]
        assert wait_until(lambda: logged(f":{port}", p.BAD_JSON))
        assert logged(f":{port}", p.TOO_LONG) and logged(f":{port}", p.UNKNOWN_TYPE)
        assert wait_until(lambda: logged(f":{quiet.sock.getsockname()[1]}", "no hello"))
    finally:
        c.close()
        quiet.close()


def test_a_server_bug_on_one_frame_costs_only_that_client(make_server, monkeypatch):
    from server.core.chat import Chat
    from tests.netclient import LineClient

    def broken(self, conn, item):
        raise RuntimeError("simulated bug")
    monkeypatch.setitem(Chat.handlers, p.Ping, broken)
    srv = make_server(rate_limit=0)
    alice, bob = LineClient(srv.port), LineClient(srv.port)
    try:
        alice.hello("alice")
        bob.hello("bob")
        expect(alice, "joined")
        bob.send({"type": "ping"})
        assert expect_error(bob, "server_error")["message"]
        assert bob.closed_by_server(4)
        assert expect(alice, "left", nick="bob")["reason"] == "server error"
        chat_works(alice)
        assert not srv.hub.finished.is_set()
    finally:
        alice.close()
        bob.close()
