"""The IRC door over real loopback sockets (--irc-port 0): registration and
nick collisions (two unregistered clients racing too), byte-by-byte
reassembly, the 512-byte rules both ways, UTF-8, the commands, IRCv3
tags, echo-message, chathistory paging (by msgid and by time), the replay
on JOIN, a nick freed when a client vanishes, the password, flood control,
and one namespace with the JSON side."""
from __future__ import annotations

import itertools
import socket
import sys
import threading
import time
import types

import pytest

from server.doors.irc.wire import MAX_BODY, serialise
from server.store import sqlite as store_mod
from tests.irctools import IrcClient, irc, json_client  # noqa: F401 (irc, json_client are fixtures)
from tests.servertools import answer, expect, hello_v2, reset, server_conn, wait_until

pytestmark = pytest.mark.timeout(30)

ALL_CAPS = "server-time message-tags echo-message batch draft/chathistory"


@pytest.fixture
def srv(make_server):
    return make_server(rate_limit=0, irc_port=0)


def test_registration_welcome_005_and_no_room_until_join(irc, srv):
    a = irc()
    a.send("NICK alice")
    a.send("USER alice 0 * :Alice A")
    w = a.expect("001")
    assert w.params[0] == "alice" and w.source == "natter.local"
    a.expect("004")
    tokens = []
    while True:
        msg = a.recv()
        if msg.command != "005":
            break
        tokens += msg.params[1:-1]
    for token in ("CHANTYPES=#", "UTF8ONLY", "CHATHISTORY=200", "PREFIX=(ov)@+", "CHANMODES=b,k,,mU") + tuple(
            t for t in tokens if t.startswith("TARGMAX=")):
        assert token in tokens
    assert msg.command == "422"
    conn = next(c for c in srv.hub.conns if c.nick == "alice")
    assert conn.rooms == {}                     # IRC's convention: no automatic #lobby
    a.send("PING :tok")
    assert a.expect("PONG").params == ("natter.local", "tok")


def test_commands_before_registration_get_451(irc):
    a = irc()
    a.send("JOIN #rust")
    assert a.expect("451").params[0] == "*"


def test_nick_collision_with_json_and_irc_and_the_race(irc, json_client, srv):
    json_client("bob")
    a = irc()
    a.send("NICK bob")
    a.send("USER x 0 * :x")
    assert "in use" in a.expect("433").params[-1]
    a.send("NICK alice")
    a.expect("001")
    # Two unregistered clients race for one nick: the core settles it, first come first served.
    c1, c2 = irc(), irc()
    for c in (c1, c2):
        c.send("NICK carol")
    barrier = threading.Barrier(2)

    def user(c):
        barrier.wait()
        c.send("USER carol 0 * :carol")
    threads = [threading.Thread(target=user, args=(c,)) for c in (c1, c2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    results = {}
    for c in (c1, c2):
        while c not in results:
            m = c.recv()
            if m.command in ("001", "433"):
                results[c] = m.command
    assert sorted(results.values()) == ["001", "433"]
    loser = c1 if results[c1] == "433" else c2
    loser.send("NICK carol2")                   # picks another: the next NICK registers it
    assert loser.expect("001").params[0] == "carol2"
    assert {"bob", "alice", "carol", "carol2"} <= set(srv.hub.chat.nicks)


def test_nick_valid_on_irc_only_gets_432_with_a_sentence(irc):
    a = irc()
    a.send("NICK [away]")
    m = a.expect("432")
    assert "Natter" in m.params[-1]
    a.send("NICK ok_nick")
    a.send("USER u 0 * :u")
    a.expect("001")


def test_byte_by_byte_reassembly(srv, irc):
    """One byte per TCP segment (TCP_NODELAY) and per read on the server:
    the next byte waits until the door's reader has taken the last."""
    a = irc()
    a.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    conn = server_conn(srv, a)
    for b in b"NICK alice\r\nUSER alice 0 * :Alice\r\nPING :x\r\n":
        before = conn.last_seen
        a.send_raw(bytes([b]))
        wait_until(lambda: conn.last_seen != before, what="the door to read the byte")
    a.expect("001")
    assert a.expect("PONG").params[-1] == "x"


def test_512_byte_rules_both_ways(irc, json_client):
    bob = json_client("bob", "rust")
    a = irc("alice", ALL_CAPS)
    a.send("JOIN #rust")
    a.expect("366")
    body = "PRIVMSG #rust :" + "x" * (MAX_BODY - 2 - len("PRIVMSG #rust :") + 1)     # one byte over
    a.send(body)
    assert a.expect("417").params[0] == "alice"
    a.send("PRIVMSG #rust :" + "y" * (MAX_BODY - 2 - len("PRIVMSG #rust :")))       # exactly 512
    expect(bob, "joined")
    assert expect(bob, "message")["text"] == "y" * (MAX_BODY - 2 - len("PRIVMSG #rust :"))
    # A long message from the JSON side, with multi-byte characters, split for IRC.
    text = "é" * 300 + " " + "😀" * 200 + "a\u0301" * 50
    bob.send({"type": "say", "room": "rust", "text": text})
    pieces = []
    while "".join(pieces) != text:
        m = a.expect("PRIVMSG", "#rust")
        if m.source.startswith("alice!"):
            continue                            # its own line, echoed
        assert m.source.startswith("bob!")
        assert len(serialise(m.__class__(m.command, m.params, m.source))) <= MAX_BODY
        pieces.append(m.params[1])
        assert len("".join(pieces)) <= len(text)
    assert all(not p.startswith("\u0301") for p in pieces)     # never inside a grapheme


def test_invalid_utf8_refused_and_not_relayed(irc, json_client):
    bob = json_client("bob", "rust")
    a = irc("alice")
    a.send("JOIN #rust")
    a.expect("366")
    a.send_raw(b"PRIVMSG #rust :caf\xe9\r\n")
    m = a.expect("FAIL")
    assert m.params[:2] == ("PRIVMSG", "INVALID_UTF8")
    a.send("PRIVMSG #rust :café")
    expect(bob, "joined")
    assert expect(bob, "message")["text"] == "café"        # the next frame: nothing was relayed before


def test_messages_both_ways_dm_tags_echo(irc, json_client):
    bob = json_client("bob", "rust")
    a = irc("alice", ALL_CAPS)
    a.send("JOIN #rust")
    names = a.expect("353")
    assert set(names.params[-1].split()) == {"alice", "bob"}
    a.send("PRIVMSG #rust :hello json")
    echo = a.expect("PRIVMSG", "#rust")                    # echo-message: the acknowledgement
    expect(bob, "joined", nick="alice")
    got = expect(bob, "message", text="hello json", **{"from": "alice"})
    assert echo.tags["msgid"].endswith(f".{got['id']}") and echo.tags["time"].endswith("Z")
    bob.send({"type": "say", "room": "rust", "text": "hello irc"})
    expect(bob, "message", text="hello irc")
    m = a.expect("PRIVMSG", "#rust")
    assert m.params[1] == "hello irc" and m.source == "bob!u@natter" and "time" in m.tags
    a.send("PRIVMSG bob :psst")
    assert expect(bob, "dm")["text"] == "psst"
    bob.send({"type": "dm", "to": "alice", "text": "back"})
    m = a.expect("PRIVMSG", "alice")
    assert m.params[1] == "back" and m.source.startswith("bob!")
    a.send("PRIVMSG nobody :x")
    assert a.expect("401").params[1] == "nobody"
    a.send("PRIVMSG #elsewhere :x")
    assert a.expect("404").params[1] == "#elsewhere"


def test_join_keys_topic_names_who_whois_list_part_nick(irc, json_client):
    bob = json_client("bob")
    a = irc("alice")
    a.send("JOIN #vault sesame")
    a.expect("366", "alice", "#vault")
    c = irc("carol")
    c.send("JOIN #vault")
    assert c.expect("475").params[1] == "#vault"
    c.send("JOIN #vault wrong")
    c.expect("475")
    c.send("JOIN #vault sesame")
    c.expect("366")
    a.expect("JOIN", "#vault")
    a.send("TOPIC #vault :the plans")
    assert c.expect("TOPIC").params == ("#vault", "the plans")
    c.send("TOPIC #vault")
    assert c.expect("332").params[-1] == "the plans"
    c.send("NAMES #vault")
    assert set(c.expect("353").params[-1].split()) == {"alice", "carol"}
    c.send("WHO #vault")
    assert {c.expect("352").params[5], c.expect("352").params[5]} == {"alice", "carol"}
    c.expect("315")
    c.send("WHOIS bob")
    assert c.expect("311").params[1] == "bob"
    c.expect("318")
    c.send("WHOIS ghost")
    c.expect("401")
    c.send("LIST")
    entries = {}
    while True:
        m = c.recv()
        if m.command == "322":
            entries[m.params[1]] = m.params
        if m.command == "323":
            break
    assert entries["#vault"][2] == "2" and entries["#vault"][3].startswith("[+k]")
    assert "#lobby" in entries
    c.send("MODE #vault")
    assert c.expect("324").params[-1] == "+k"
    c.send("MODE #vault +o alice")
    assert "owner" in c.expect("482").params[-1]         # the core's sentence: only the owner may op
    c.send("NICK carla")
    assert a.expect("NICK").params == ("carla",) and c.expect("NICK").source.startswith("carol!")
    c.send("PART #vault")
    assert a.expect("PART", "#vault").source.startswith("carla!")
    c.expect("PART", "#vault")
    c.send("MOTD")
    c.expect("422")
    c.send("FROB")
    assert c.expect("421").params[1] == "FROB"
    bob.send({"type": "join", "room": "vault", "key": "sesame", "ref": "v"})
    assert a.expect("JOIN", "#vault").source.startswith("bob!")


def test_join_replay_with_time_for_clients_without_chathistory(irc, json_client):
    bob = json_client("bob", "rust")
    for i in range(3):
        bob.send({"type": "say", "room": "rust", "text": f"old {i}", "ref": f"o{i}"})
        expect(bob, "message", ref=f"o{i}")
    a = irc("alice", "server-time")                 # irssi and HexChat: no chathistory
    a.send("JOIN #rust")
    a.expect("366")
    got = [a.expect("PRIVMSG", "#rust") for _ in range(3)]
    assert [m.params[1] for m in got] == ["old 0", "old 1", "old 2"]
    assert all(m.tags["time"].endswith("Z") for m in got)


def test_chathistory_paging_by_msgid_and_time(irc, json_client, monkeypatch):
    # The store's clock only, a second a call: each message has a time of its own.
    clock = itertools.count(int(time.time()))
    monkeypatch.setattr(store_mod, "time", types.SimpleNamespace(time=lambda: float(next(clock))))
    bob = json_client("bob", "rust")
    ids = []
    for i in range(7):
        bob.send({"type": "say", "room": "rust", "text": f"m{i}", "ref": f"r{i}"})
        ids.append(expect(bob, "message", ref=f"r{i}"))
    a = irc("alice", ALL_CAPS)
    a.send("JOIN #rust")
    a.expect("366")

    batch = a.batch
    a.send("CHATHISTORY LATEST #rust * 3")
    newest = batch()
    assert [m.params[1] for m in newest] == ["m4", "m5", "m6"]
    a.send(f"CHATHISTORY BEFORE #rust msgid={newest[0].tags['msgid']} 3")
    assert [m.params[1] for m in batch()] == ["m1", "m2", "m3"]
    a.send(f"CHATHISTORY AFTER #rust msgid={newest[0].tags['msgid']} 10")
    assert [m.params[1] for m in batch()] == ["m5", "m6"]
    a.send(f"CHATHISTORY BEFORE #rust timestamp={newest[0].tags['time']} 2")
    assert [m.params[1] for m in batch()] == ["m2", "m3"]
    a.send(f"CHATHISTORY AFTER #rust timestamp={newest[1].tags['time']} 5")
    assert [m.params[1] for m in batch()] == ["m6"]
    a.send("CHATHISTORY AROUND #rust * 3")
    assert a.expect("FAIL").params[:2] == ("CHATHISTORY", "UNKNOWN_COMMAND")


def test_a_vanished_client_leaves_at_once_and_its_nick_is_free(irc, json_client, srv):
    bob = json_client("bob", "rust")
    a = irc("alice")
    a.send("JOIN #rust")
    a.expect("366")
    expect(bob, "joined", nick="alice")
    reset(a)                                    # no QUIT: an RST
    assert expect(bob, "left", nick="alice")["room"] == "rust"
    b = irc()
    b.send("NICK alice")
    b.send("USER alice 0 * :alice")
    b.expect("001")


def test_quit_is_seen_as_quit(irc, json_client):
    bob = json_client("bob", "rust")
    a = irc("alice")
    a.send("JOIN #rust")
    a.expect("366")
    expect(bob, "joined", nick="alice")
    a.send("QUIT :bye")
    assert a.expect("ERROR")
    assert expect(bob, "left", nick="alice")["reason"] == "quit"


def test_server_password(make_server):
    srv = make_server(rate_limit=0, irc_port=0, password="hunter2", auth_delay=0.01)
    port = srv.door_port("irc")
    bad = IrcClient(port)
    try:
        bad.send("NICK alice")
        bad.send("USER alice 0 * :a")
        assert bad.expect("464")
        bad.expect("ERROR")
    finally:
        bad.close()
    good = IrcClient(port)
    try:
        good.register("alice", password="hunter2")
    finally:
        good.close()


def test_flood_control_slows_an_irc_client(make_server):
    srv = make_server(rate_limit=5, rate_burst=2, irc_port=0)
    a = IrcClient(srv.door_port("irc"))
    try:
        a.register("alice", "echo-message")
        a.send("JOIN #rust")
        a.expect("366")
        for i in range(6):
            a.send(f"PRIVMSG #rust :m{i}")
        echoed, fails = [], []
        while len(echoed) < 6 or not fails:            # in whatever order the pacing gives them
            m = a.recv()
            if m.command == "PRIVMSG":
                echoed.append(m.params[1])
            elif m.command == "FAIL":
                fails.append(m.params[1])
        assert fails == ["RATE_LIMITED"] and echoed == [f"m{i}" for i in range(6)]   # delayed, none dropped
    finally:
        a.close()


def test_irc_over_tls(make_server):
    import ssl
    srv = make_server(rate_limit=0, tls=True, irc_tls_port=0)
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    a = IrcClient(srv.door_port("irc-tls"))
    a.sock = ctx.wrap_socket(a.sock)
    try:
        a.register("alice", "server-time")
        a.send("JOIN #secure")
        assert a.expect("366").params[1] == "#secure"
    finally:
        a.close()


def test_nothing_an_irc_client_sends_breaks_the_server(irc, json_client, srv, caplog):
    """Random lines of every command with odd parameters (controls, long
    words, other scripts, empty ones), before and after registration:
    every one is answered or ignored, and the server and others go on."""
    import random
    rnd = random.Random(13)
    words = ["#", "#rust", "#a,#b,#c,#d,#e", "0", "*", ":", "::x", "bob", "nobody", "msgid=x.1", "timestamp=nope",
             "LATEST", "BEFORE", "AROUND", "+o", "-k", "b", "\x01VERSION\x01", "\x01ACTION waves\x01", "é" * 40,
             "日本語", "\x02bold\x0f", "x" * 200, "-1", "99999999999", "LS", "REQ", "END", "302", "PLAIN", "+"]
    commands = ["NICK", "USER", "PASS", "CAP", "AUTHENTICATE", "JOIN", "PART", "PRIVMSG", "NOTICE", "TOPIC",
                "NAMES", "WHO", "WHOIS", "LIST", "MODE", "KICK", "MOTD", "CHATHISTORY", "PING", "PONG", "FROB"]
    bob = json_client("bob", "rust")
    clients = [irc(), irc("alice", ALL_CAPS)]
    for c in clients:
        for _ in range(250):
            params = [rnd.choice(words) for _ in range(rnd.randrange(0, 5))]
            line = " ".join([rnd.choice(commands)] + params[:-1] + ([":" + params[-1]] if params else []))
            c.send_raw(line.encode("utf-8")[:510] + b"\r\n")
        c.send("PING :alive")
        c.expect("PONG", "natter.local", "alive", timeout=10)
    bob.send({"type": "say", "room": "rust", "text": "after the storm", "ref": "z"})
    answer(bob, "message", "z")
    other = json_client("carol", "rust")
    other.send({"type": "say", "room": "rust", "text": "still fine", "ref": "c"})
    answer(other, "message", "c")
    assert srv.hub.failure is None and srv.hub.thread.is_alive()
    assert not [r.getMessage() for r in caplog.records if r.levelname in ("ERROR", "CRITICAL")]


def test_the_door_options():
    from server.config import from_args
    cfg = from_args([])
    assert cfg.irc_port is None and cfg.irc_tls_port is None and cfg.text_port is None   # off by default
    cfg = from_args(["--irc-port", "6667", "--text-port", "0", "--irc-server-name", "chat.lan"])
    assert (cfg.irc_port, cfg.text_port, cfg.irc_server_name) == (6667, 0, "chat.lan")
    assert from_args(["--tls", "--irc-tls-port", "6697"]).irc_tls_port == 6697
    for bad in (["--irc-tls-port", "6697"], ["--irc-server-name", "has space"], ["--irc-port", "70000"]):
        with pytest.raises(SystemExit):
            from_args(bad)


def test_door_ports_are_named_at_start(make_server):
    srv = make_server(irc_port=0, text_port=0)
    text = srv.describe()
    assert f"IRC on 127.0.0.1:{srv.door_port('irc')}" in text
    assert f"plain text (nc, telnet) on 127.0.0.1:{srv.door_port('text')}" in text
    assert srv.door_port("irc-tls") is None


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="relies on Linux copying SO_SNDBUF from the listener")
def test_an_irc_client_that_stops_reading_is_dropped_alone(make_server, connect):
    """The slow-reader policy applies to IRC clients: one that reads
    nothing is dropped as too slow after --slow-timeout, and the room goes on."""
    srv = make_server(rate_limit=0, irc_port=0, slow_timeout=0.5)
    bob = connect(srv=srv)
    hello_v2(bob, "bob")
    bob.send({"type": "join", "room": "rust", "ref": "j"})
    answer(bob, "room", "j")
    expect(bob, "joined", nick="bob")
    listener = srv.doors["irc"]
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)   # the stalled one's server side
    stall = socket.socket()
    stall.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stall.settimeout(10)
    stall.connect(("127.0.0.1", srv.door_port("irc")))
    stall.sendall(b"NICK stall\r\nUSER s 0 * :s\r\nJOIN #rust\r\n")
    expect(bob, "joined", nick="stall", timeout=10)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 1 << 20)
    text = "z" * 2000
    deadline = time.monotonic() + 20
    left = None
    while left is None and time.monotonic() < deadline:
        bob.send({"type": "say", "room": "rust", "text": text})
        while True:
            f = bob.recv()
            if f["type"] == "left":
                left = f
                break
            if f["type"] == "message":
                break
    assert left is not None and left["nick"] == "stall" and left["reason"] == "too slow"
    bob.send({"type": "say", "room": "rust", "text": "still here", "ref": "s"})
    answer(bob, "message", "s")
    stall.close()
