"""Rooms over real loopback sockets (protocol v2, DESIGN-10 section 1): join,
part, say in a room, keys, caps, every room error, rooms, topics, history
paging both ways (rooms and private), read markers, rooms kept across
restarts, and the rate buckets of joins and history requests."""
from __future__ import annotations

import sqlite3
import time

import pytest

from tests.netclient import LineClient
from tests.servertools import answer, expect, hello_v2

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def v2(server):
    """v2(nick, srv=None, **hello) -> (LineClient, what its hello got)."""
    made = []

    def make(nick, srv=None, **extra):
        c = LineClient((srv or server).port)
        made.append(c)
        return c, hello_v2(c, nick, **extra)

    yield make
    for c in made:
        c.close()


def join(c, room, **extra) -> dict:
    ref = f"j-{room}-{time.monotonic_ns()}"
    c.send({"type": "join", "room": room, "ref": ref, **extra})
    return answer(c, "room", ref)


def say(c, text, room=None) -> dict:
    ref = f"s-{time.monotonic_ns()}"
    frame = {"type": "say", "text": text, "ref": ref}
    if room is not None:
        frame["room"] = room
    c.send(frame)
    return answer(c, "message", ref)


def refused(c, code, ref) -> dict:
    """The error answering the frame with this ref (frames before it skipped)."""
    err = answer(c, "error", ref)
    assert err["code"] == code and err["message"].strip(), err
    return err


def sync(c) -> None:
    """Everything the server sent c before now has been read (a ping's pong is behind it)."""
    c.send({"type": "ping"})
    c.recv_type("pong")


def test_a_v2_welcome_puts_the_client_in_the_lobby_with_its_room_frame(v2):
    ann, got = v2("ann")
    w = got["welcome"]
    assert w["protocol"] == 2 and w["rooms"] == ["lobby"] and w["history"] == [] and w["users"] == ["ann"]
    assert [r["room"] for r in got["rooms"]] == ["lobby"]
    assert got["rooms"][0] == {"type": "room", "room": "lobby", "topic": "", "users": ["ann"], "last_id": 0,
                               "read": 0, "key": False, "role": "member", "roles": {},
                               "modes": {"moderated": False, "questions": False, "announce": False, "slow": 0,
                                         "dm": True, "key": False}}
    assert got["caught_up"]["last_id"] == 0


def test_join_creates_a_room_tells_everyone_in_it_and_a_second_join_only_repeats_the_room_frame(v2):
    ann, _ = v2("ann")
    bob, _ = v2("bob")
    expect(ann, "joined", nick="bob", room="lobby")
    r = join(ann, "Dev-Team", topic="builds")
    assert r["room"] == "Dev-Team" and r["users"] == ["ann"] and r["topic"] == "builds" and r["key"] is False
    expect(ann, "joined", nick="ann", room="Dev-Team")
    again = join(bob, "dev-team")                      # the same room, ignoring case
    assert again["room"] == "Dev-Team" and again["users"] == ["ann", "bob"] and again["topic"] == "builds"
    expect(bob, "joined", nick="bob", room="Dev-Team")
    expect(ann, "joined", nick="bob", room="Dev-Team")
    third = join(bob, "DEV-TEAM")                      # already in: the room frame, no joined
    assert third["users"] == ["ann", "bob"]
    sync(bob)
    assert ann.nothing_for(0.2)


def test_a_message_in_a_room_reaches_its_members_only_and_say_without_room_goes_to_the_lobby(v2):
    ann, _ = v2("ann")
    bob, _ = v2("bob")
    cat, _ = v2("cat")
    join(ann, "dev")
    join(bob, "dev")
    sync(ann)
    sync(cat)
    m = say(ann, "in dev", room="dev")
    assert m["room"] == "dev"
    assert bob.recv_type("message") == {k: v for k, v in m.items() if k != "ref"}
    assert cat.nothing_for(0.2)                        # not in dev
    m = say(cat, "in the lobby")
    assert m["room"] == "lobby"
    assert expect(ann, "message", id=m["id"])["room"] == "lobby"
    assert expect(bob, "message", id=m["id"])["room"] == "lobby"


def test_part_tells_the_room_and_the_parter_and_parting_the_lobby_is_allowed(v2):
    ann, _ = v2("ann")
    bob, _ = v2("bob")
    join(ann, "dev")
    join(bob, "dev")
    sync(ann)
    bob.send({"type": "part", "room": "dev", "ref": "p1"})
    mine = answer(bob, "left", "p1")
    assert mine["room"] == "dev" and mine["nick"] == "bob" and mine["reason"] == "part"
    left = ann.recv_type("left")
    assert left["room"] == "dev" and left["nick"] == "bob" and "ref" not in left
    bob.send({"type": "say", "room": "dev", "text": "still here?", "ref": "s1"})
    refused(bob, "not_in_room", "s1")
    bob.send({"type": "part", "room": "lobby", "ref": "p2"})
    assert answer(bob, "left", "p2")["room"] == "lobby"
    assert ann.recv_type("left")["room"] == "lobby"
    m = say(ann, "bob is gone")                        # bob is in no room now: nothing reaches it
    assert m["room"] == "lobby"
    sync(bob)
    assert not [f for f in bob.frames if f.get("id") == m["id"]]


@pytest.mark.parametrize("frame", [
    {"type": "part", "room": "nowhere"},
    {"type": "say", "room": "nowhere", "text": "hi"},
    {"type": "topic", "room": "nowhere", "topic": "t"},
    {"type": "history", "room": "nowhere"},
    {"type": "read", "room": "nowhere", "upto": 1},
])
def test_a_room_frame_for_a_room_one_is_not_in_is_not_in_room(v2, frame):
    ann, _ = v2("ann")
    bob, _ = v2("bob")
    join(bob, "nowhere")                              # it exists, ann is just not in it
    ann.send(dict(frame, ref="x") if frame["type"] != "read" else frame)
    err = ann.recv_type("error")
    assert err["code"] == "not_in_room" and "nowhere" in err["message"] and "join" in err["message"]
    if frame["type"] != "read":
        assert err["ref"] == "x"


@pytest.mark.parametrize("name", ["", "two words", "x" * 33, "#dev", "a\u200bb", 7])
def test_a_bad_room_name_is_bad_room_with_a_sentence(v2, name):
    ann, _ = v2("ann")
    ann.send({"type": "join", "room": name, "ref": "b"})
    err = refused(ann, "bad_room", "b")
    assert len(err["message"]) > 10


def test_a_room_with_a_key_needs_it_and_keeps_only_a_salted_hash(server, v2, tmp_path):
    ann, _ = v2("ann")
    bob, _ = v2("bob")
    join(ann, "secret", key="open sesame")
    join(ann, "vault", key="open sesame")
    bob.send({"type": "join", "room": "secret", "ref": "k0"})
    assert "no key" in refused(bob, "bad_key", "k0")["message"]
    bob.send({"type": "join", "room": "secret", "key": "guess", "ref": "k1"})
    assert "wrong key" in refused(bob, "bad_key", "k1")["message"]
    assert join(bob, "SECRET", key="open sesame")["key"] is True
    bob.send({"type": "rooms", "ref": "r"})
    listed = {r["room"]: r["key"] for r in answer(bob, "rooms", "r")["rooms"]}
    assert listed == {"lobby": False, "secret": True, "vault": True}
    con = sqlite3.connect(server.config.db)
    try:
        hashes = dict(con.execute("SELECT key, key_hash FROM rooms WHERE key_hash IS NOT NULL"))
    finally:
        con.close()
    assert set(hashes) == {"secret", "vault"}
    assert hashes["secret"] != hashes["vault"]           # salted: the same key, two hashes
    assert all(h.startswith("sha256$") and "sesame" not in h for h in hashes.values())


def test_the_server_and_each_connection_have_a_room_cap(make_server):
    srv = make_server(rate_limit=0, max_rooms=4, max_rooms_per_client=2)
    ann, bob = LineClient(srv.port), LineClient(srv.port)
    try:
        hello_v2(ann, "ann")
        hello_v2(bob, "bob")
        join(ann, "one")                               # ann: lobby + one = 2, its cap
        ann.send({"type": "join", "room": "two", "ref": "c1"})
        assert "part one" in refused(ann, "too_many_rooms", "c1")["message"]
        bob.send({"type": "part", "room": "lobby", "ref": "p"})
        answer(bob, "left", "p")
        join(bob, "two")
        join(bob, "three")                             # the server: lobby one two three = 4, its cap
        bob.send({"type": "part", "room": "two", "ref": "p2"})
        answer(bob, "left", "p2")
        bob.send({"type": "join", "room": "four", "ref": "c2"})
        assert "4 rooms" in refused(bob, "too_many_rooms", "c2")["message"]
        assert join(bob, "one")["users"] == ["ann", "bob"]   # an existing room is fine
        bob.send({"type": "rooms", "ref": "r"})
        assert [r["room"] for r in answer(bob, "rooms", "r")["rooms"]] == ["lobby", "one", "three", "two"]
    finally:
        ann.close()
        bob.close()


def test_rooms_lists_every_room_sorted_with_counts_topics_and_last_ids(v2):
    ann, _ = v2("ann")
    bob, _ = v2("bob")
    join(ann, "beta", topic="second")
    join(ann, "Alpha")
    join(bob, "alpha")
    m = say(ann, "hi alpha", room="Alpha")
    ann.send({"type": "part", "room": "beta", "ref": "p"})
    answer(ann, "left", "p")
    ann.send({"type": "rooms", "ref": "r"})
    rooms = answer(ann, "rooms", "r")["rooms"]
    assert rooms == [
        {"room": "Alpha", "topic": "", "users": 2, "last_id": m["id"], "key": False},
        {"room": "beta", "topic": "second", "users": 0, "last_id": 0, "key": False},   # empty: kept
        {"room": "lobby", "topic": "", "users": 2, "last_id": 0, "key": False},
    ]


def test_a_topic_is_a_stored_event_sent_to_the_room_and_shown_in_room_frames(v2):
    ann, _ = v2("ann")
    bob, _ = v2("bob")
    cat, _ = v2("cat")
    join(ann, "dev")
    join(bob, "dev")
    sync(ann)
    sync(cat)
    ann.send({"type": "topic", "room": "dev", "topic": "release friday", "ref": "t1"})
    mine = answer(ann, "topic", "t1")
    assert mine["room"] == "dev" and mine["by"] == "ann" and mine["topic"] == "release friday"
    assert isinstance(mine["id"], int) and isinstance(mine["ts"], float)
    theirs = bob.recv_type("topic")
    assert theirs == {k: v for k, v in mine.items() if k != "ref"}
    assert cat.nothing_for(0.2)
    assert join(cat, "dev")["topic"] == "release friday"
    m = say(ann, "after the topic", room="dev")
    assert m["id"] > mine["id"]                         # one sequence of ids
    ann.send({"type": "topic", "room": "dev", "topic": "", "ref": "t2"})
    assert answer(ann, "topic", "t2")["topic"] == ""    # "" clears it
    ann.send({"type": "topic", "room": "dev", "topic": "x" * 301, "ref": "t3"})
    refused(ann, "bad_text", "t3")


def test_a_v1_client_gets_no_room_frames_only_its_lobby_and_an_error_naming_v2(server, v2):
    old = LineClient(server.port)
    try:
        w = old.hello("oldie")
        assert "replay" not in w and "rooms" not in w
        ann, _ = v2("ann")
        expect(old, "joined", nick="ann")
        join(ann, "dev")
        ann.send({"type": "topic", "room": "lobby", "topic": "v1 does not see this", "ref": "t"})
        answer(ann, "topic", "t")
        say(ann, "in dev", room="dev")
        m = say(ann, "in the lobby")
        got = old.recv()
        assert got["type"] == "message" and got["id"] == m["id"]      # no topic, nothing of dev before it
        old.send({"type": "join", "room": "dev", "ref": "j"})
        err = refused(old, "unknown_type", "j")
        assert '"v":2' in err["message"]
    finally:
        old.close()


def test_renamed_goes_once_to_everyone_sharing_a_room_and_to_the_renamer(v2):
    ann, _ = v2("ann")
    bob, _ = v2("bob")
    cat, _ = v2("cat")
    for c in (ann, bob):
        join(c, "one")
        join(c, "two")
    for c in (ann, bob):
        c.send({"type": "part", "room": "lobby", "ref": "p"})
        answer(c, "left", "p")
    sync(cat)
    cat.frames.clear()
    ann.send({"type": "nick", "nick": "anna", "ref": "n"})
    assert answer(ann, "renamed", "n")["new"] == "anna"
    sync(bob)
    assert [f for f in bob.frames if f["type"] == "renamed"] == [{"type": "renamed", "old": "ann", "new": "anna"}]
    sync(cat)
    assert not [f for f in cat.frames if f["type"] == "renamed"]   # shares no room with ann


def _fill_room(c, room, n):
    """n messages in room from c; their ids."""
    ids = []
    for i in range(n):
        c.send({"type": "say", "room": room, "text": f"{room} {i}"})
    while len(ids) < n:
        f = c.recv_type("message")
        if f["room"] == room:
            ids.append(f["id"])
    return ids


def _page(c, ref, **ask):
    c.send({"type": "history", "ref": ref, **ask})
    return answer(c, "history", ref)


def test_history_pages_a_room_backwards_and_forwards_with_more_and_the_cap(v2):
    ann, _ = v2("ann")
    join(ann, "dev")
    ids = _fill_room(ann, "dev", 250)
    _fill_room(ann, "lobby", 5)                       # other rooms' messages are not in dev's pages
    page = _page(ann, "h0", room="dev")                # newest, default limit 50
    assert [m["id"] for m in page["messages"]] == ids[-50:] and page["more"] is True and page["room"] == "dev"
    assert all(m["room"] == "dev" and m["type"] == "message" for m in page["messages"])
    seen = []
    before = None
    while True:                                        # back to the start, 70 at a time
        ask = {"room": "dev", "limit": 70}
        if before is not None:
            ask["before"] = before
        page = _page(ann, f"b{before}", **ask)
        seen = [m["id"] for m in page["messages"]] + seen
        if not page["more"]:
            break
        before = page["messages"][0]["id"]
    assert seen == ids
    page = _page(ann, "cap", room="dev", limit=1000)   # clamped to 200
    assert len(page["messages"]) == 200 and page["more"] is True
    forward, after = [], 0
    while True:
        page = _page(ann, f"a{after}", room="dev", after=after, limit=100)
        forward += [m["id"] for m in page["messages"]]
        if not page["more"]:
            break
        after = page["messages"][-1]["id"]
    assert forward == ids
    last = _page(ann, "end", room="dev", after=ids[-1])
    assert last["messages"] == [] and last["more"] is False
    ann.send({"type": "history", "room": "dev", "before": 5, "after": 1, "ref": "both"})
    refused(ann, "bad_frame", "both")


def test_history_with_a_nick_pages_the_private_conversation_of_this_session_both_ways(v2):
    ann, got = v2("ann")
    bob, _ = v2("bob")
    cat, _ = v2("cat")
    sent = []
    for i in range(30):
        a, b = (ann, "bob") if i % 2 else (bob, "ann")
        a.send({"type": "dm", "to": b, "text": f"private {i}", "ref": f"d{i}"})
        sent.append(answer(a, "dm", f"d{i}")["id"])
    cat.send({"type": "dm", "to": "ann", "text": "not in ann-bob", "ref": "c"})
    answer(cat, "dm", "c")
    page = _page(ann, "p1", **{"with": "Bob", "limit": 20})
    assert [m["id"] for m in page["messages"]] == sent[-20:] and page["more"] is True and page["with"] == "Bob"
    assert all(m["type"] == "dm" for m in page["messages"])
    older = _page(ann, "p2", **{"with": "bob", "before": page["messages"][0]["id"]})
    assert [m["id"] for m in older["messages"]] == sent[:10] and older["more"] is False
    newer = _page(bob, "p3", **{"with": "ann", "after": sent[4], "limit": 10})
    assert [m["id"] for m in newer["messages"]] == sent[5:15] and newer["more"] is True
    assert [m["id"] for m in _page(cat, "p4", **{"with": "bob"})["messages"]] == []   # not cat's
    # The sender's own refs come back in its pages (it knows they arrived).
    mine = [m for m in _page(ann, "p5", **{"with": "bob", "limit": 200})["messages"] if m["from"] == "ann"]
    assert mine and all(m.get("ref", "").startswith("d") for m in mine)


def test_read_markers_only_move_forward_and_come_back_in_room_frames_on_resume(server, v2):
    ann, got = v2("ann")
    token = got["welcome"]["session"]
    join(ann, "dev")
    ids = _fill_room(ann, "dev", 10)
    ann.send({"type": "read", "room": "dev", "upto": ids[6]})
    ann.send({"type": "read", "room": "dev", "upto": ids[2]})     # back: ignored
    sync(ann)
    assert join(ann, "dev")["read"] == ids[6]
    ann.send({"type": "read", "room": "dev", "upto": 10 ** 9})    # beyond the last id: clamped
    sync(ann)
    assert join(ann, "dev")["read"] == ids[-1]
    ann.close()
    again, back = v2("ann", resume=token)
    assert back["welcome"]["rooms"] == ["lobby", "dev"]
    assert {r["room"]: (r["read"], r["last_id"]) for r in back["rooms"]} == {"lobby": (0, 0),
                                                                             "dev": (ids[-1], ids[-1])}


def test_rooms_and_a_session_s_rooms_survive_a_restart(make_server, tmp_path):
    db = str(tmp_path / "kept.db")
    srv = make_server(rate_limit=0, db=db)
    ann = LineClient(srv.port)
    got = hello_v2(ann, "ann")
    token = got["welcome"]["session"]
    join(ann, "dev", key="k", topic="kept")
    join(ann, "ops")
    ann.send({"type": "part", "room": "lobby", "ref": "p"})
    answer(ann, "left", "p")
    m = say(ann, "before the restart", room="dev")
    ann.send({"type": "read", "room": "dev", "upto": m["id"]})
    sync(ann)
    ann.close()
    srv.shutdown()
    srv = make_server(rate_limit=0, db=db)
    back = LineClient(srv.port)
    try:
        got = hello_v2(back, "ann", resume=token)
        assert got["welcome"]["rooms"] == ["dev", "ops"]
        dev = got["rooms"][0]
        assert dev["topic"] == "kept" and dev["key"] is True and dev["read"] == m["id"] and dev["last_id"] == m["id"]
        # No since: the last messages of its rooms, then live.
        assert [f["id"] for f in got["replay"] if f["type"] == "message"] == [m["id"]]
        other = LineClient(srv.port)
        hello_v2(other, "bob")
        other.send({"type": "join", "room": "dev", "ref": "x"})
        refused(other, "bad_key", "x")
        other.close()
    finally:
        back.close()


def test_join_part_and_topic_cost_a_message_token_and_history_has_a_bigger_bucket(make_server):
    srv = make_server(rate_limit=1, rate_burst=2)
    ann = LineClient(srv.port, timeout=10)
    try:
        hello_v2(ann, "ann")
        start = time.monotonic()
        for i in range(30):                            # 30 pages at once: within the history burst
            ann.send({"type": "history", "room": "lobby", "ref": f"h{i}"})
        for i in range(30):
            answer(ann, "history", f"h{i}")
        assert time.monotonic() - start < 1.5
        assert not [f for f in ann.frames if f["type"] == "error"]
        for i in range(4):                             # joins: the message bucket (burst 2, 1 a second)
            ann.send({"type": "join", "room": f"r{i}", "ref": f"j{i}"})
        answer(ann, "room", "j3", timeout=10)          # slowed, not dropped
        assert time.monotonic() - start >= 1.0
        assert [f["ref"] for f in ann.frames if f["type"] == "room" and "ref" in f] == ["j0", "j1", "j2", "j3"]
        notices = [f for f in ann.frames if f["type"] == "error"]
        assert [f["code"] for f in notices] == ["rate_limited"] and "delayed, not dropped" in notices[0]["message"]
    finally:
        ann.close()
