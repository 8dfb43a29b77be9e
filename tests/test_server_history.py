"""History over real sockets: since/resume replays, private messages kept
to their sessions, SQLite on disk before the fan-out, ids across restarts."""
from __future__ import annotations

import sqlite3
import time

import pytest

from server import hub as hub_mod
from server import protocol as p
from tests.historytools import add_session, damage_middle, make_history, poke_from_outside, session_ids
from tests.netclient import LineClient
from tests.servertools import chat_works, expect, expect_error, messages, wait_until

pytestmark = pytest.mark.timeout(30)


def stored(db: str) -> list[tuple]:
    """Rows in the history file, read by a separate SQLite connection."""
    con = sqlite3.connect(db)
    try:
        return con.execute("SELECT id, sender, recipient, text FROM messages ORDER BY id").fetchall()
    finally:
        con.close()


def test_message_is_on_disk_before_anyone_sees_it(make_server, tmp_path):
    db = str(tmp_path / "h.db")
    srv = make_server(db=db, rate_limit=0)
    alice = LineClient(srv.port)
    alice.hello("alice")
    try:
        for i in range(5):
            alice.send({"type": "say", "text": f"t{i}", "ref": f"r{i}"})
            ack = expect(alice, "message", ref=f"r{i}")
            assert (ack["id"], "alice", None, f"t{i}") in stored(db)
        alice.send({"type": "dm", "to": "alice", "text": "private"})
        ack = expect(alice, "dm")
        assert (ack["id"], "alice", "alice", "private") in stored(db)
    finally:
        alice.close()


def test_since_replays_every_message_after_the_id(connect):
    alice = connect("alice")
    for i in range(150):
        alice.send({"type": "say", "text": f"n{i}"})
    ids = [m["id"] for m in messages(alice, 150)]
    bob = connect()
    w = bob.hello("bob", since=ids[9])
    assert [m["id"] for m in w["history"]] == ids[10:]       # more than the 100 of a plain welcome
    assert [m["text"] for m in w["history"]] == [f"n{i}" for i in range(10, 150)]
    assert w["last_id"] == ids[-1] and "missed" not in w
    carol = connect()
    assert carol.hello("carol", since=ids[-1])["history"] == []
    dave = connect()
    assert len(dave.hello("dave", since=0)["history"]) == 150
    eve = connect()                    # beyond the last id: not this history's since (see test_history_store)
    w = eve.hello("eve", since=10 ** 9)
    assert w["reset"] is True and [m["id"] for m in w["history"]] == ids[-100:]


def test_since_replays_dms_only_to_their_sessions_and_refs_to_the_sender(connect):
    alice, bob = connect("alice"), connect("bob")
    expect(alice, "joined")
    a_token, b_token = alice.welcome["session"], bob.welcome["session"]
    assert a_token != b_token
    alice.send({"type": "say", "text": "public", "ref": "pa"})
    public = expect(alice, "message", ref="pa")["id"]
    expect(bob, "message")
    bob.send({"type": "dm", "to": "alice", "text": "b->a", "ref": "pb"})
    b2a = expect(bob, "dm", ref="pb")["id"]
    expect(alice, "dm")
    alice.send({"type": "dm", "to": "bob", "text": "a->b", "ref": "pc"})
    a2b = expect(alice, "dm", ref="pc")["id"]
    expect(bob, "dm")
    alice.send({"type": "bye"})
    bob.send({"type": "bye"})
    assert alice.closed_by_server(3) and bob.closed_by_server(3)

    # A stranger (no resume token) sees the room, not the private messages, and no refs.
    carol = connect()
    w = carol.hello("carol", since=0)
    assert [(m["type"], m["id"]) for m in w["history"]] == [("message", public)]
    assert "ref" not in w["history"][0]
    # A plain welcome (no since) never carries private messages either.
    dan = connect("dan")
    assert [m["id"] for m in dan.welcome["history"]] == [public]

    # Alice resumes: both dms, and her own refs come back so she knows they arrived.
    a2 = connect()
    w = a2.hello("alice", since=0, resume=a_token)
    assert w["session"] == a_token
    got = {m["id"]: m for m in w["history"]}
    assert list(got) == [public, b2a, a2b]
    assert got[public]["ref"] == "pa" and "ref" not in got[b2a] and got[a2b]["ref"] == "pc"
    assert got[b2a]["from"] == "bob" and got[b2a]["to"] == "alice" and got[b2a]["type"] == "dm"

    # Bob resumes under another nick: the session is what counts; he gets his ref only.
    b2 = connect()
    w = b2.hello("robert", since=0, resume=b_token)
    got = {m["id"]: m for m in w["history"]}
    assert list(got) == [public, b2a, a2b]
    assert "ref" not in got[public] and got[b2a]["ref"] == "pb" and "ref" not in got[a2b]


def test_resume_with_an_unknown_token_is_a_new_session(connect):
    alice, bob = connect("alice"), connect("bob")
    expect(alice, "joined")
    bob.send({"type": "dm", "to": "alice", "text": "secret"})
    expect(alice, "dm")
    expect(bob, "dm")
    c = connect()
    w = c.hello("mallory", since=0, resume="not-a-real-token")
    assert w["history"] == [] and w["session"] != "not-a-real-token"
    assert w["session"] not in (alice.welcome["session"], bob.welcome["session"])


def test_resume_while_the_old_connection_is_alive_replaces_it(connect):
    alice, bob = connect("alice"), connect("bob")
    expect(alice, "joined")
    token = alice.welcome["session"]
    a2 = connect()
    w = a2.hello("ALICE", resume=token, since=0)
    assert w["nick"] == "ALICE" and w["users"] == ["ALICE", "bob"]
    expect_error(alice, "replaced")
    assert alice.closed_by_server(3)
    expect(bob, "left", nick="alice", reason="reconnected")
    expect(bob, "joined", nick="ALICE")
    chat_works(a2, bob)


def test_someone_else_cannot_take_a_nick_with_a_wrong_token(connect):
    alice = connect("alice")
    c = connect()
    c.send({"type": "hello", "nick": "alice", "resume": "guess"})
    assert "alice" in expect_error(c, p.NICK_TAKEN)["message"]
    chat_works(alice)


def test_a_v1_since_gets_the_oldest_missed_in_its_welcome_then_the_rest_and_never_missed(make_server):
    """v1: the welcome holds the oldest missed messages that fit in 1 MiB,
    the rest follows as plain frames before anything live; a reconnect from
    the last id seen in the welcome gets the next part: nothing skipped."""
    srv = make_server(rate_limit=0)
    alice, bob = LineClient(srv.port), LineClient(srv.port)
    try:
        token = alice.hello("alice")["session"]
        bob.hello("bob")
        expect(alice, "joined", nick="bob")
        for i in range(30):
            alice.send({"type": "say", "text": f"{i:02d}" + "x" * 60_000})
            if i % 10 == 0:
                bob.send({"type": "dm", "to": "alice", "text": f"dm {i}"})
        sent = [f["id"] for f in alice.frames[-0:] if f["type"] in ("message", "dm")]
        while len(sent) < 33:
            f = alice.recv()
            if f["type"] in ("message", "dm"):
                sent.append(f["id"])
        alice.close()
        back = LineClient(srv.port, timeout=10)
        w = back.hello("alice", since=0, resume=token)
        first = [m["id"] for m in w["history"]]
        assert "missed" not in w and len(p.encode(w)) <= 1024 * 1024 + 4096
        assert first == sent[:len(first)] and 10 < len(first) < len(sent)
        assert any(m["type"] == "dm" for m in w["history"])      # its private messages, in id order
        rest = []
        while len(rest) < len(sent) - len(first):
            f = back.recv()
            assert f["type"] in ("message", "dm"), f
            rest.append(f["id"])
        assert first + rest == sent
        sent.append(chat_works(back))                            # then live
        back.close()
        again = LineClient(srv.port, timeout=10)                 # from the last id its welcome showed
        w = again.hello("alice", since=first[-1], resume=token)
        assert [m["id"] for m in w["history"]] == sent[len(first):len(first) + len(w["history"])]
        again.close()
    finally:
        alice.close()
        bob.close()


def test_history_and_sessions_survive_a_restart_and_ids_keep_growing(make_server, tmp_path):
    db = str(tmp_path / "h.db")
    srv = make_server(db=db, rate_limit=0)
    a, b = LineClient(srv.port), LineClient(srv.port)
    token = a.hello("alice")["session"]
    b.hello("bob")
    expect(a, "joined", nick="bob")
    a.send({"type": "say", "text": "one", "ref": "r1"})
    one = expect(a, "message")["id"]
    expect(b, "message", id=one)
    b.send({"type": "dm", "to": "alice", "text": "two"})
    two = expect(b, "dm")["id"]
    a.close()
    b.close()
    srv.shutdown()
    assert [r[0] for r in stored(db)] == [one, two]

    srv2 = make_server(db=db, rate_limit=0)
    c = LineClient(srv2.port)
    try:
        w = c.hello("alice", since=0, resume=token)
        assert [(m["id"], m["text"]) for m in w["history"]] == [(one, "one"), (two, "two")]
        assert w["history"][0]["ref"] == "r1" and w["last_id"] == two
        c.send({"type": "say", "text": "three"})
        three = expect(c, "message")["id"]
        assert three > two > one
    finally:
        c.close()
    srv2.shutdown()

    srv3 = make_server(db=db, rate_limit=0)     # a third life: still no id reused
    d = LineClient(srv3.port)
    try:
        w = d.hello("dora")
        assert [m["id"] for m in w["history"]] == [one, three] and w["last_id"] == three
        d.send({"type": "say", "text": "four"})
        assert expect(d, "message")["id"] > three
    finally:
        d.close()
    assert sorted(set(r[0] for r in stored(db))) == [r[0] for r in stored(db)]


@pytest.mark.timeout(60)
def test_welcome_has_100_room_messages_even_after_many_dms(connect, server):
    alice, bob = connect("alice"), connect("bob")
    expect(alice, "joined")
    for i in range(120):
        alice.send({"type": "say", "text": f"room{i}"})
    messages(bob, 120)
    n = 2100                          # more than the in-memory ring holds
    alice.send_raw(b"".join(p.encode({"type": "dm", "to": "bob", "text": f"d{i}"}) for i in range(n)))
    got = 0
    while got < n:
        if bob.recv()["type"] == "dm":
            got += 1
    carol = connect("carol")
    assert [m["text"] for m in carol.welcome["history"]] == [f"room{i}" for i in range(20, 120)]
    # since=0 now reaches past the in-memory ring: the replay is read from disk.
    dave = connect()
    hist = dave.hello("dave", since=0)["history"]
    assert [m["text"] for m in hist] == [f"room{i}" for i in range(120)]        # no one else's dms
    b2 = connect()
    hist = b2.hello("bob2", since=0, resume=bob.welcome["session"])["history"]
    assert [m["text"] for m in hist] == [f"room{i}" for i in range(120)] + [f"d{i}" for i in range(n)]
    assert [m["id"] for m in hist] == sorted(m["id"] for m in hist)
    a2 = connect()
    hist = a2.hello("alice2", since=hist[-1]["id"] - 5, resume=alice.welcome["session"])["history"]
    assert [m["text"] for m in hist] == [f"d{i}" for i in range(n - 5, n)]


# --------------------------------------------------------------------------
# The epoch: a since from another history starts over


def test_the_welcome_names_the_history_by_its_epoch(make_server, tmp_path):
    db = str(tmp_path / "h.db")
    srv = make_server(db=db, rate_limit=0)
    a = LineClient(srv.port)
    w = a.hello("ann")
    assert w["epoch"] == srv.history.epoch and "reset" not in w
    a.close()
    srv.shutdown()
    srv2 = make_server(db=db, rate_limit=0)       # the same file: the same epoch
    b = LineClient(srv2.port)
    try:
        assert b.hello("bob")["epoch"] == w["epoch"]
    finally:
        b.close()


def test_a_since_with_an_old_epoch_gets_the_recent_history_and_reset(make_server, tmp_path):
    """The file was truncated to nothing: ids start from 1 again. A client
    back with since=5000 would wait for 5000 new messages; it starts over."""
    db = str(tmp_path / "h.db")
    srv = make_server(db=db, rate_limit=0)
    a = LineClient(srv.port)
    old_epoch = a.hello("ann")["epoch"]
    a.close()
    srv.shutdown()
    with open(db, "r+b") as f:
        f.truncate(0)
    srv2 = make_server(db=db, rate_limit=0)
    a = LineClient(srv2.port)
    b = LineClient(srv2.port)
    c = LineClient(srv2.port)
    try:
        w = a.hello("ann")
        assert w["epoch"] != old_epoch and w["last_id"] == 0
        for i in range(3):
            a.send({"type": "say", "text": f"new {i}"})
        ids = [m["id"] for m in messages(a, 3)]
        assert ids == [1, 2, 3]
        w = b.hello("bob", since=5000, epoch=old_epoch)
        assert w["reset"] is True and w["epoch"] == srv2.history.epoch
        assert [(m["id"], m["text"]) for m in w["history"]] == [(1, "new 0"), (2, "new 1"), (3, "new 2")]
        assert "missed" not in w
        # An old epoch resets even when the since looks plausible in the new history.
        w = c.hello("carol", since=1, epoch=old_epoch)
        assert w["reset"] is True and [m["id"] for m in w["history"]] == [1, 2, 3]
    finally:
        for x in (a, b, c):
            x.close()


def test_a_since_beyond_the_last_id_gets_the_recent_history_and_reset(connect, server):
    alice = connect("alice")
    for i in range(5):
        alice.send({"type": "say", "text": f"m{i}"})
    ids = [m["id"] for m in messages(alice, 5)]
    epoch = alice.welcome["epoch"]
    for extra in ({}, {"epoch": epoch}):      # with the right epoch, or none (an older client)
        c = connect()
        w = c.hello(f"late{len(extra)}", since=ids[-1] + 1, **extra)
        assert w["reset"] is True and [m["id"] for m in w["history"]] == ids
    # The same epoch and a since it has reached: a replay, no reset.
    c = connect()
    w = c.hello("dave", since=ids[1], epoch=epoch)
    assert "reset" not in w and [m["id"] for m in w["history"]] == ids[2:]
    # No since: a plain welcome, whatever the epoch.
    c = connect()
    w = c.hello("eve", epoch="another")
    assert "reset" not in w and [m["id"] for m in w["history"]] == ids


def test_a_replay_that_finds_the_file_damaged_stops_the_server_with_a_sentence(make_server, tmp_path):
    db = str(tmp_path / "h.db")
    make_history(db, 5000)
    srv = make_server(db=db, rate_limit=0)
    a, b = LineClient(srv.port), LineClient(srv.port)
    try:
        a.hello("ann")
        damage_middle(db)
        poke_from_outside(db)
        b.send({"type": "hello", "nick": "bob", "since": 0})
        for c in (a, b):
            assert c.recv_type("notice")["code"] == p.SHUTDOWN
        assert srv.hub.finished.wait(10)
        assert srv.failure.startswith(f"the history file {db} is damaged")
    finally:
        a.close()
        b.close()


# --------------------------------------------------------------------------
# Sessions expire


def test_the_hub_expires_unused_sessions_but_not_those_online(make_server, tmp_path, monkeypatch):
    monkeypatch.setattr(hub_mod, "SESSION_PRUNE_EVERY", 0.2)    # a day, in the test
    db = str(tmp_path / "h.db")
    srv = make_server(db=db, rate_limit=0)
    online = LineClient(srv.port)
    try:
        token = online.hello("ann")["session"]
        sid = srv.history.find_session(token)
        long_ago = time.time() - 60 * 86400
        con = sqlite3.connect(db)
        con.execute("UPDATE sessions SET last_used = ? WHERE id = ?", (long_ago, sid))
        con.commit()
        con.close()
        add_session(db, sid + 100, "forgotten", long_ago)
        wait_until(lambda: sid + 100 not in session_ids(db), timeout=10,
                   what="the hub to expire the old session")
        assert sid in session_ids(db)                  # online, so in use
        online.close()
        again = LineClient(srv.port)
        w = again.hello("ann", resume=token, since=0)
        assert w["session"] == token                   # still resumable
        again.close()
    finally:
        online.close()
