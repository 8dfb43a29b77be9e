"""Issue 2 behaviours over real loopback sockets: hello/welcome, say and its
ack, private messages, nicks, ping, bye. One server per test (port 0)."""
from __future__ import annotations

import pytest

from server import protocol as p
from tests.servertools import chat_works, expect, expect_error, ping_works

pytestmark = pytest.mark.timeout(30)


# --------------------------------------------------------------------------
# hello / welcome


def test_welcome_lists_users_history_and_last_id(connect, server):
    alice = connect("alice")
    assert alice.welcome["users"] == ["alice"] and alice.welcome["history"] == []
    assert alice.welcome["last_id"] == 0
    ids = [chat_works(alice, text=f"m{i}") for i in range(3)]
    bob = connect("Bob")
    w = bob.welcome
    assert w["nick"] == "Bob"
    assert w["users"] == ["alice", "Bob"]           # sorted ignoring case, self included
    assert [(m["id"], m["from"], m["text"]) for m in w["history"]] == [(i, "alice", f"m{n}")
                                                                      for n, i in enumerate(ids)]
    assert all(m["type"] == "message" and isinstance(m["ts"], (int, float)) for m in w["history"])
    assert all("ref" not in m for m in w["history"])  # a new session is not the sender's
    assert w["last_id"] == ids[-1]
    # Extensions: a resume token, the protocol version and the limits.
    assert isinstance(w["session"], str) and len(w["session"]) >= 16
    assert w["protocol"] == p.PROTOCOL_VERSION
    assert w["limits"] == {"max_line": server.config.max_line, "rate": 0, "burst": server.config.rate_burst}
    assert "missed" not in w


def test_welcome_carries_the_last_100_messages(connect):
    alice = connect("alice")
    for i in range(130):
        alice.send({"type": "say", "text": f"n{i}"})
    for i in range(130):
        expect(alice, "message", text=f"n{i}")
    bob = connect("bob")
    hist = bob.welcome["history"]
    assert [m["text"] for m in hist] == [f"n{i}" for i in range(30, 130)]
    assert [m["id"] for m in hist] == sorted(m["id"] for m in hist)
    assert bob.welcome["last_id"] == hist[-1]["id"]


def test_joined_goes_to_the_others_and_not_to_the_newcomer(connect):
    alice = connect("alice")
    bob = connect("bob")
    expect(alice, "joined", nick="bob")
    carol = connect("carol")
    expect(alice, "joined", nick="carol")
    expect(bob, "joined", nick="carol")
    assert carol.nothing_for(0.2)


def test_every_user_in_the_welcome_is_online(connect):
    names = ["ann", "Ben", "cat", "Dee"]
    clients = [connect(n) for n in names]
    last = connect("zed")
    assert last.welcome["users"] == sorted(names + ["zed"], key=str.casefold)
    clients[1].send({"type": "bye"})
    expect(last, "left", nick="Ben", reason="quit")
    late = connect("yan")
    assert "Ben" not in late.welcome["users"] and "yan" in late.welcome["users"]


# --------------------------------------------------------------------------
# say and its acknowledgement


def test_say_ack_by_ref_only_to_the_sender(connect):
    alice, bob, carol = connect("alice"), connect("bob"), connect("carol")
    expect(alice, "joined", nick="bob")
    expect(alice, "joined", nick="carol")
    expect(bob, "joined", nick="carol")
    alice.send({"type": "say", "text": "hi all", "ref": "r-1"})
    mine = expect(alice, "message", text="hi all", ref="r-1")
    for other in (bob, carol):
        theirs = expect(other, "message", text="hi all", id=mine["id"])
        assert "ref" not in theirs and theirs["from"] == "alice" and theirs["ts"] == mine["ts"]
    assert set(mine) == {"type", "id", "ts", "from", "text", "room", "ref"}


def test_say_without_ref_has_no_ref_anywhere(connect):
    alice, bob = connect("alice"), connect("bob")
    expect(alice, "joined")
    alice.send({"type": "say", "text": "plain"})
    assert "ref" not in expect(alice, "message", text="plain")
    assert "ref" not in expect(bob, "message", text="plain")


def test_text_with_newlines_unicode_and_json_escapes_arrives_intact(connect):
    alice, bob = connect("alice"), connect("bob")
    expect(alice, "joined")
    text = 'line1\nline2\ttab "quoted" \\ back é 日本 😀 \u2028 \u202e'
    alice.send({"type": "say", "text": text})
    assert expect(bob, "message")["text"] == text
    assert expect(alice, "message")["text"] == text


def test_ids_strictly_increase_and_are_shared_by_messages_and_dms(connect):
    alice, bob = connect("alice"), connect("bob")
    expect(alice, "joined")
    seen = []
    for i in range(10):
        if i % 3 == 0:
            alice.send({"type": "dm", "to": "bob", "text": f"d{i}"})
            seen.append(expect(alice, "dm")["id"])
            expect(bob, "dm")
        else:
            alice.send({"type": "say", "text": f"s{i}"})
            seen.append(expect(alice, "message")["id"])
            expect(bob, "message")
    assert seen == sorted(set(seen)) and seen[0] >= 1


# --------------------------------------------------------------------------
# private messages


def test_dm_goes_to_both_ends_only(connect):
    alice, bob, carol = connect("alice"), connect("bob"), connect("carol")
    expect(alice, "joined", nick="bob")
    expect(alice, "joined", nick="carol")
    expect(bob, "joined", nick="carol")
    alice.send({"type": "dm", "to": "bob", "text": "psst", "ref": "d1"})
    mine = expect(alice, "dm", to="bob", ref="d1")
    theirs = expect(bob, "dm", id=mine["id"])
    assert theirs == {"type": "dm", "id": mine["id"], "ts": mine["ts"], "from": "alice", "to": "bob",
                      "text": "psst"}
    assert carol.nothing_for(0.2)
    chat_works(carol, alice, bob)   # carol's next frame was the check, not the dm


def test_dm_target_is_matched_ignoring_case_and_width(connect):
    alice, bob = connect("alice"), connect("Bob")
    expect(alice, "joined")
    for to in ("BOB", "bob", "ｂｏｂ"):
        alice.send({"type": "dm", "to": to, "text": "x"})
        assert expect(alice, "dm")["to"] == "Bob"   # the nick as its owner spells it
        assert expect(bob, "dm")["to"] == "Bob"


def test_dm_to_self_arrives_once(connect):
    alice = connect("alice")
    alice.send({"type": "dm", "to": "alice", "text": "note to self", "ref": "me"})
    expect(alice, "dm", to="alice", ref="me")
    assert alice.nothing_for(0.2)


def test_dm_to_nobody_is_no_such_user_and_not_held_against_you(connect, server):
    alice, bob = connect("alice"), connect("bob")
    expect(alice, "joined")
    for i in range(server.config.max_errors + 2):   # not a protocol error: never disconnects
        alice.send({"type": "dm", "to": "ghost", "text": "boo", "ref": f"g{i}"})
        expect_error(alice, p.NO_SUCH_USER, ref=f"g{i}")
    alice.send({"type": "dm", "to": "", "text": "boo"})
    expect_error(alice, p.NO_SUCH_USER)
    chat_works(alice, bob)
    assert bob.welcome["last_id"] == 0


# --------------------------------------------------------------------------
# nicks


def test_nick_change_is_announced_and_acked(connect):
    alice, bob = connect("alice"), connect("bob")
    expect(alice, "joined")
    alice.send({"type": "nick", "nick": "Alicia", "ref": "n1"})
    assert expect(alice, "renamed", old="alice", new="Alicia")["ref"] == "n1"
    assert "ref" not in expect(bob, "renamed", old="alice", new="Alicia")
    alice.send({"type": "say", "text": "new me"})
    assert expect(bob, "message")["from"] == "Alicia"
    expect(alice, "message")
    carol = connect("alice")                       # the old nick is free again
    assert sorted(carol.welcome["users"]) == sorted(["Alicia", "bob", "alice"])
    expect(alice, "joined", nick="alice")
    bob.send({"type": "dm", "to": "alicia", "text": "hey"})
    assert expect(alice, "dm")["to"] == "Alicia"


def test_nick_change_of_case_only_is_allowed(connect):
    alice, bob = connect("alice"), connect("bob")
    expect(alice, "joined")
    alice.send({"type": "nick", "nick": "ALICE"})
    assert expect(alice, "renamed")["new"] == "ALICE"
    assert expect(bob, "renamed") == {"type": "renamed", "old": "alice", "new": "ALICE"}


def test_nick_change_to_the_same_nick_is_acked_to_the_sender_only(connect):
    alice, bob = connect("alice"), connect("bob")
    expect(alice, "joined")
    alice.send({"type": "nick", "nick": "alice", "ref": "same"})
    expect(alice, "renamed", old="alice", new="alice", ref="same")   # its acknowledgement
    alice.send({"type": "nick", "nick": "alice"})                     # no ref: nothing to answer
    chat_works(alice, bob)           # bob saw no renamed; nothing else came first
    assert [f["type"] for f in alice.frames] == ["welcome", "joined", "renamed", "message"]


@pytest.mark.parametrize("wanted", ["bob", "BOB", "bOb", "ｂｏｂ", "Ｂｏｂ"])
def test_nick_change_to_a_taken_nick(connect, wanted):
    alice, bob = connect("alice"), connect("bob")
    expect(alice, "joined")
    alice.send({"type": "nick", "nick": wanted, "ref": "n2"})
    e = expect_error(alice, p.NICK_TAKEN, ref="n2")
    assert "bob" in e["message"]
    chat_works(alice, bob)
    assert bob.nothing_for(0.1)


@pytest.mark.parametrize("wanted", ["ALICE", "Alice", "ａｌｉｃｅ", "ＡＬＩＣＥ"])
def test_hello_with_a_taken_nick_leaves_the_connection_open(connect, wanted):
    alice = connect("alice")
    c = connect()
    c.send({"type": "hello", "nick": wanted})
    expect_error(c, p.NICK_TAKEN)
    w = c.hello("carol")
    assert w["users"] == ["alice", "carol"]
    expect(alice, "joined", nick="carol")


def test_hello_nick_taken_many_times_is_not_a_protocol_error(connect, server):
    connect("alice")
    c = connect()
    for _ in range(server.config.max_errors + 2):
        c.send({"type": "hello", "nick": "Alice"})
        expect_error(c, p.NICK_TAKEN)
    assert c.hello("alice2")["nick"] == "alice2"


def test_hello_with_a_bad_nick_can_try_again(connect):
    alice = connect("alice")
    c = connect()
    for bad in ["", "a b", "x" * 33, "semi;colon", 42, None]:
        c.send({"type": "hello", "nick": bad})
        expect_error(c, p.BAD_NICK)
    c.hello("good")
    expect(alice, "joined", nick="good")
    assert not any(f["type"] == "joined" and f["nick"] != "good" for f in alice.frames)


def test_nick_change_with_a_bad_nick(connect):
    alice, bob = connect("alice"), connect("bob")
    expect(alice, "joined")
    alice.send({"type": "nick", "nick": "no spaces", "ref": "n3"})
    expect_error(alice, p.BAD_NICK, ref="n3")
    chat_works(alice, bob)
    assert not any(f["type"] == "renamed" for f in bob.frames)


def test_unicode_nicks_work_end_to_end(connect):
    a, b = connect("Zoë"), connect("名前")
    expect(a, "joined", nick="名前")
    b.send({"type": "dm", "to": "ZOË", "text": "こんにちは"})
    assert expect(a, "dm")["from"] == "名前"
    c = connect("e\u0301t\u00e9")              # NFC on the way in
    assert c.welcome["nick"] == "\u00e9t\u00e9"


# --------------------------------------------------------------------------
# before the welcome


@pytest.mark.parametrize("frame", [
    {"type": "say", "text": "early", "ref": "e1"},
    {"type": "dm", "to": "alice", "text": "early", "ref": "e1"},
    {"type": "nick", "nick": "early", "ref": "e1"},
    {"type": "ping"},
])
def test_nothing_is_accepted_before_the_welcome(connect, frame):
    alice = connect("alice")
    c = connect()
    c.send(frame)
    e = expect_error(c, p.NOT_WELCOMED)
    assert e.get("ref") == frame.get("ref")
    assert "hello" in e["message"]
    w = c.hello("late")
    assert w["history"] == [] and w["last_id"] == 0   # the early say was not stored
    expect(alice, "joined", nick="late")
    chat_works(alice, c)


def test_pong_before_the_welcome_is_silently_ignored(connect):
    c = connect()
    c.send({"type": "pong"})
    assert c.nothing_for(0.2)
    c.hello("ponger")


def test_second_hello_is_already_welcomed(connect):
    alice, bob = connect("alice"), connect("bob")
    expect(alice, "joined")
    alice.send({"type": "hello", "nick": "other"})
    expect_error(alice, p.ALREADY_WELCOMED)
    chat_works(alice, bob)
    assert bob.nothing_for(0.1)


# --------------------------------------------------------------------------
# ping, bye, leaving


def test_ping_pong(connect):
    alice = connect("alice")
    for _ in range(3):
        ping_works(alice)
    assert alice.frames[1:] == [{"type": "pong"}] * 3


def test_bye_tells_the_others_and_closes(connect):
    alice, bob = connect("alice"), connect("bob")
    expect(alice, "joined")
    bob.send({"type": "bye"})
    assert expect(alice, "left", nick="bob") == {"type": "left", "room": "lobby", "nick": "bob", "reason": "quit"}
    assert bob.closed_by_server(3)
    c = connect("bob")                  # the nick is free again
    assert c.welcome["users"] == ["alice", "bob"]


def test_bye_before_hello_just_closes(connect):
    alice = connect("alice")
    c = connect()
    c.send({"type": "bye"})
    assert c.closed_by_server(3)
    assert alice.nothing_for(0.2)


def test_disconnect_without_bye_is_connection_closed(connect):
    alice, bob = connect("alice"), connect("bob")
    expect(alice, "joined")
    bob.close()
    assert expect(alice, "left", nick="bob")["reason"] == "connection closed"
    chat_works(alice)


# --------------------------------------------------------------------------
# IPv6 loopback


def test_ipv6_loopback_server_and_client(make_server):
    import socket
    srv = make_server(rate_limit=0, host="::1")
    assert srv.address[0] == "::1"
    assert "[::1]:" in srv.describe() and "this computer only" in srv.describe()
    s = socket.create_connection(("::1", srv.port), timeout=5)
    try:
        s.sendall(p.encode({"type": "hello", "nick": "six"}))
        buf = b""
        while not buf.endswith(b"\n"):
            data = s.recv(65536)
            assert data, "closed"
            buf += data
        w = p.decode_frame(buf[:-1])
        assert w["type"] == "welcome" and w["users"] == ["six"]
        conn = next(iter(srv.hub.conns))
        assert conn.ip == "::1" and conn.peer.startswith("[::1]:")
    finally:
        s.close()


def test_pipelined_hello_say_ping_bye_in_one_write(connect):
    alice = connect("alice")
    c = connect()
    c.send_raw(b"".join(p.encode(f) for f in (
        {"type": "hello", "nick": "fast"}, {"type": "say", "text": "hi", "ref": "h1"},
        {"type": "dm", "to": "alice", "text": "psst"}, {"type": "ping"}, {"type": "bye"})))
    kinds = [expect(c, k)["type"] for k in ("welcome", "message", "dm", "pong")]
    assert kinds == ["welcome", "message", "dm", "pong"] and c.frames[1]["ref"] == "h1"
    assert c.closed_by_server(3)
    assert [expect(alice, k)["type"] for k in ("joined", "message", "dm", "left")] == [
        "joined", "message", "dm", "left"]
    assert alice.frames[-1]["reason"] == "quit"
