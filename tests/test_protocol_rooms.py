"""Protocol v2 (rooms, paged history, catch-up frames) without sockets.

The frames are those of docs/protocol.md's rooms section; these tests pin
their parsing, their errors (with the frame's ref) and the round trip of
every builder through bytes, with hypothesis for the room-name rules.
"""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server import protocol as p
from tests.frametools import client, server

pytestmark = pytest.mark.timeout(60)




def refused(frame: dict) -> p.ProtocolError:
    with pytest.raises(p.ProtocolError) as info:
        client(frame)
    return info.value


# -- room names ------------------------------------------------------------------


@pytest.mark.parametrize("name", ["lobby", "Maths", "maths-2b", "x" * 32, "クラス", "Ślązak", "_", "9"])
def test_room_names_accepted(name):
    assert p.check_room(name) == name


@pytest.mark.parametrize("name", ["", "x" * 33, "two words", "#maths", "a.b", "pаypal", "bob\u200b",
                                  "\u3164", 7, None, ["lobby"]])
def test_room_names_refused_with_bad_room(name):
    with pytest.raises(p.ProtocolError) as info:
        p.check_room(name)
    assert info.value.code == p.BAD_ROOM
    assert info.value.message.strip()


def test_hash_prefix_is_explained():
    with pytest.raises(p.ProtocolError) as info:
        p.check_room("#maths")
    assert "'maths'" in info.value.message


@pytest.mark.parametrize("a,b", [("Maths", "maths"), ("ＭＡＴＨＳ", "maths"), ("straße", "STRASSE")])
def test_room_keys_fold_like_nicks(a, b):
    assert p.room_key(a) == p.room_key(b)


@given(st.text(max_size=40))
def test_prop_a_room_name_is_accepted_exactly_when_it_would_be_a_nick(raw):
    try:
        nick = p.check_nick(raw)
    except p.ProtocolError:
        nick = None
    try:
        room = p.check_room(raw)
    except p.ProtocolError as e:
        assert e.code == p.BAD_ROOM
        room = None
    if raw.startswith("#"):
        assert room is None
    else:
        assert room == nick


# -- client frames ---------------------------------------------------------------


def test_hello_v2_and_epoch():
    h = client(p.hello_frame("ann", since=9, resume="tok", v=2, epoch="e1"))
    assert (h.v, h.epoch, h.since, h.resume) == (2, "e1", 9, "tok")
    assert client(p.hello_frame("ann")).v == 1
    assert client({"type": "hello", "nick": "ann", "v": 7}).v == p.PROTOCOL_VERSION


@pytest.mark.parametrize("frame", [{"type": "hello", "nick": "a", "v": "2"}, {"type": "hello", "nick": "a", "v": 0},
                                   {"type": "hello", "nick": "a", "v": True},
                                   {"type": "hello", "nick": "a", "epoch": 5},
                                   {"type": "hello", "nick": "a", "epoch": "x" * 65}])
def test_hello_bad_version_or_epoch(frame):
    assert refused(frame).code == p.BAD_FRAME


def test_say_to_a_room_and_default_lobby():
    assert client(p.say_frame("hi", "r1", room="Maths")) == p.Say("hi", "r1", "Maths")
    assert client(p.say_frame("hi")).room == p.LOBBY
    e = refused({"type": "say", "text": "hi", "room": "#x", "ref": "r9"})
    assert (e.code, e.ref) == (p.BAD_ROOM, "r9")


def test_join_part_rooms_topic_read_round_trip():
    assert client(p.join_frame("Maths")) == p.Join("Maths")
    assert client(p.join_frame("Maths", key="k", topic=" Fractions ", ref="j1")) == \
        p.Join("Maths", "k", "Fractions", "j1")
    assert client(p.part_frame("Maths", "p1")) == p.Part("Maths", "p1")
    assert client(p.rooms_request_frame()) == p.ListRooms()
    assert client(p.topic_request_frame("Maths", "", "t1")) == p.SetTopic("Maths", "", "t1")
    assert client(p.read_frame("Maths", 42)) == p.MarkRead("Maths", 42)


@pytest.mark.parametrize("frame,code", [
    ({"type": "join"}, p.BAD_ROOM),
    ({"type": "join", "room": "a b"}, p.BAD_ROOM),
    ({"type": "join", "room": "x", "key": ""}, p.BAD_FRAME),
    ({"type": "join", "room": "x", "key": 5}, p.BAD_FRAME),
    ({"type": "join", "room": "x", "key": "k" * 129}, p.BAD_FRAME),
    ({"type": "join", "room": "x", "topic": "a\nb"}, p.BAD_TEXT),
    ({"type": "part", "room": None}, p.BAD_ROOM),
    ({"type": "topic", "room": "x"}, p.BAD_FRAME),
    ({"type": "topic", "room": "x", "topic": "t" * 301}, p.BAD_TEXT),
    ({"type": "topic", "room": "x", "topic": "a\x1bb"}, p.BAD_TEXT),
    ({"type": "read", "room": "x"}, p.BAD_FRAME),
    ({"type": "read", "room": "x", "upto": -1}, p.BAD_FRAME),
    ({"type": "read", "room": "x", "upto": 1.5}, p.BAD_FRAME),
])
def test_room_frames_refused(frame, code):
    assert refused(frame).code == code


def test_errors_of_room_frames_carry_the_ref():
    e = refused({"type": "join", "room": "#nope", "ref": "j7"})
    assert (e.code, e.ref) == (p.BAD_ROOM, "j7")
    e = refused({"type": "topic", "room": "x", "topic": 3, "ref": "t7"})
    assert (e.code, e.ref) == (p.BAD_FRAME, "t7")


def test_history_requests():
    assert client(p.history_request_frame(room="Maths")) == p.HistoryRequest("Maths")
    assert client(p.history_request_frame(room="Maths", before=100, limit=20, ref="h")) == \
        p.HistoryRequest("Maths", None, 100, None, 20, "h")
    assert client(p.history_request_frame(with_="Bob", after=5)) == p.HistoryRequest(None, "Bob", None, 5)
    assert client(p.history_request_frame(room="Maths", limit=10_000)).limit == p.MAX_HISTORY_PAGE


@pytest.mark.parametrize("frame", [
    {"type": "history"},
    {"type": "history", "room": "x", "with": "bob"},
    {"type": "history", "room": "x", "before": 1, "after": 2},
    {"type": "history", "room": "x", "limit": 0},
    {"type": "history", "room": "x", "limit": "5"},
    {"type": "history", "room": "x", "before": -3},
    {"type": "history", "with": 3},
])
def test_history_requests_refused(frame):
    assert refused(frame).code == p.BAD_FRAME


def test_history_with_a_bad_nick_or_room():
    assert refused({"type": "history", "with": "a b"}).code == p.BAD_NICK
    assert refused({"type": "history", "room": "a b"}).code == p.BAD_ROOM


# -- server frames ---------------------------------------------------------------


def test_welcome_v2_fields():
    w = server({"type": "welcome", "nick": "ann", "users": ["ann"], "history": [], "last_id": 4,
                "session": "s", "protocol": 2, "replay": True, "rooms": ["lobby", "Maths", 3],
                "epoch": "e", "reset": True})
    assert (w.protocol, w.replay, w.rooms, w.epoch, w.reset) == (2, True, ("lobby", "Maths"), "e", True)
    v1 = server({"type": "welcome", "nick": "ann", "users": [], "history": [], "last_id": 0})
    assert (v1.protocol, v1.replay, v1.rooms, v1.epoch, v1.reset) == (1, False, (), None, False)


def test_room_scoped_frames_carry_their_room():
    assert server(p.message_frame(5, 1.0, "ann", "hi", room="Maths")).room == "Maths"
    assert server(p.message_frame(5, 1.0, "ann", "hi")).room == p.LOBBY     # a v1 server's frame
    assert server(p.joined_frame("bob", "Maths")) == p.Joined("bob", "Maths")
    assert server(p.left_frame("bob", "part", "Maths", ref="p1")) == p.Left("bob", "part", "Maths")
    assert server({"type": "left", "nick": "bob", "reason": 5}) == p.Left("bob", "", p.LOBBY)


def test_room_info_and_topic():
    info = server(p.room_frame("Maths", "Fractions", ["ann", "bob"], 40, 38, True, ref="j1"))
    assert info == p.RoomInfo("Maths", "Fractions", ("ann", "bob"), 40, 38, True, "j1")
    t = server(p.topic_frame("Maths", "Decimals", "ann", 41, 2.5, ref="t1"))
    assert t == p.Topic("Maths", "Decimals", "ann", 41, 2.5, "t1")


def test_rooms_list_frame():
    frame = p.rooms_frame([{"room": "lobby", "topic": "", "users": 3, "last_id": 9, "key": False},
                           {"room": "Maths", "topic": "x", "users": 0, "last_id": 0, "key": True}], ref="r")
    rl = server(frame)
    assert rl.ref == "r" and [r.room for r in rl.rooms] == ["lobby", "Maths"]
    assert rl.rooms[1] == p.RoomSummary("Maths", "x", 0, 0, True)


def test_history_page_and_replay_and_caught_up():
    msgs = [p.message_frame(1, 1.0, "ann", "a", room="Maths"), p.dm_frame(2, 2.0, "ann", "bob", "b"),
            p.topic_frame("Maths", "t", "ann", 3, 3.0)]
    page = server(p.history_frame(msgs, True, room="Maths", ref="h1"))
    assert page.room == "Maths" and page.with_ is None and page.more and page.ref == "h1"
    assert [type(m) for m in page.messages] == [p.Message, p.Direct, p.Topic]
    dm_page = server(p.history_frame([], False, with_="bob"))
    assert (dm_page.room, dm_page.with_, dm_page.messages, dm_page.more) == (None, "bob", (), False)
    rep = server(p.replay_frame(msgs + [{"type": "edited", "id": 1, "text": "x"}]))
    assert [type(e) for e in rep.events] == [p.Message, p.Direct, p.Topic, p.Unknown]
    assert server(p.caught_up_frame(3)) == p.CaughtUp(3)


@pytest.mark.parametrize("frame", [
    {"type": "room", "users": []},
    {"type": "room", "room": "x", "users": [1]},
    {"type": "rooms", "rooms": [{"topic": "x"}]},
    {"type": "rooms", "rooms": "x"},
    {"type": "history", "messages": []},
    {"type": "history", "room": "x", "messages": [{"type": "message", "id": "1"}]},
    {"type": "history", "room": "x", "messages": [3]},
    {"type": "replay", "frames": {}},
    {"type": "caught_up"},
    {"type": "topic", "topic": "x"},
])
def test_bad_server_frames_are_bad_frame(frame):
    with pytest.raises(p.ProtocolError) as info:
        p.parse_server(frame)
    assert info.value.code == p.BAD_FRAME


@given(st.dictionaries(st.sampled_from(["type", "room", "users", "topic", "last_id", "read", "key", "rooms",
                                        "messages", "more", "frames", "with", "by", "id", "ts", "ref"]),
                       st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False)
                                    | st.text(max_size=5),
                                    lambda kids: st.lists(kids, max_size=3)
                                    | st.dictionaries(st.text(max_size=5), kids, max_size=3), max_leaves=8)))
def test_prop_any_v2_server_frame_parses_or_is_bad_frame(frame):
    frame["type"] = frame.get("type") if frame.get("type") in (None, 3) else \
        ["room", "rooms", "history", "replay", "caught_up", "topic"][len(frame) % 6]
    try:
        p.parse_server(frame)
    except p.ProtocolError as e:
        assert e.code == p.BAD_FRAME
