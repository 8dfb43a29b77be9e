"""The network client against servers the test plays by hand, speaking
protocol v2 (rooms): the catch-up after a welcome (room frames, replay
frames, caught_up), acknowledgements found in a replay, room actions
queued offline and sent again exactly once, coalesced read markers, the
session token kept across a restart, history answers, and an older
server without rooms."""
from __future__ import annotations

import os

import pytest

from chatgui.net import events as ev
from chatgui.net.backoff import Backoff
from chatgui.net.inbound import NO_ROOMS
from chatgui.net.sessions import SessionStore
from server import paths, protocol
from tests.played import played  # noqa: F401 (a fixture)

pytestmark = pytest.mark.timeout(60)

TS = 1_700_000_000.0
QUICK = dict(backoff=Backoff(first=0.0, base=0.05, cap=0.1))


def welcome2(nick="ann", rooms=("lobby",), session="s1", last_id=0, **extra) -> dict:
    return {"type": "welcome", "nick": nick, "users": [nick, "bob"], "history": [], "last_id": last_id,
            "session": session, "protocol": 2, "replay": True, "rooms": list(rooms), "epoch": "e1", **extra}


def room(name, users=("ann", "bob"), topic="", last_id=0, read=0, key=False, ref=None) -> dict:
    return protocol.room_frame(name, topic, users, last_id, read, key, ref)


def msg(id, text, room="lobby", sender="bob", ref=None) -> dict:
    return protocol.message_frame(id, TS + id, sender, text, ref, room)


def until(ae, kind) -> list:
    """Every event up to and including the next one of this type."""
    out = []
    while True:
        e = ae.next()
        out.append(e)
        if isinstance(e, kind):
            return out


def quiet(conn) -> list:
    """The frames the client sent before answering a ping: what it had queued."""
    conn.send({"type": "ping"})
    frames = []
    while True:
        f = conn.recv()
        if f["type"] == "pong":
            return frames
        frames.append(f)


def online(conn, **kw) -> dict:
    """Read the hello, send a v2 welcome and an empty catch-up; returns the hello."""
    hello = conn.recv()
    assert hello["type"] == "hello"
    conn.send(welcome2(**kw))
    for name in kw.get("rooms", ("lobby",)):
        conn.send(room(name))
    conn.send(protocol.caught_up_frame(kw.get("last_id", 0)))
    return hello


def test_a_v2_welcome_is_followed_by_room_states_backlogs_and_caught_up(make_chat_clients, played):
    srv = played()
    a, ae = make_chat_clients(srv.port, "ann", **QUICK)
    conn = srv.accept()
    hello = conn.recv()
    assert hello["v"] == 2 and "since" not in hello and "resume" not in hello
    conn.send(welcome2(rooms=["lobby", "maths"], last_id=7))
    conn.send(room("lobby", users=["ann", "bob"], last_id=4, read=1))
    conn.send(room("maths", users=["ann"], topic="Fractions", last_id=7, read=0))
    conn.send(protocol.replay_frame([msg(1, "one"), msg(2, "two", room="maths"),
                                     protocol.topic_frame("maths", "Fractions", "bob", 3, TS + 3)]))
    conn.send(protocol.replay_frame([msg(2, "two", room="maths"), msg(4, "four"),
                                     {"type": "edited", "id": 1, "text": "a kind this client does not know"}]))
    conn.send(protocol.replay_frame([msg(4, "four")]))          # nothing new: no Backlog for it
    conn.send(protocol.caught_up_frame(7))
    seen = until(ae, ev.CaughtUp)
    assert [type(e).__name__ for e in seen] == ["Connecting", "Connected", "RoomState", "RoomState",
                                                "Backlog", "Backlog", "CaughtUp"]
    con = seen[1]
    assert (con.protocol, con.rooms) == (2, ("lobby", "maths"))
    states = [e.info for e in seen[2:4]]
    assert [(s.room, s.topic, s.users, s.last_id, s.read) for s in states] == [
        ("lobby", "", ("ann", "bob"), 4, 1), ("maths", "Fractions", ("ann",), 7, 0)]
    first, second = seen[4].messages, seen[5].messages
    assert [(type(m).__name__, m.id, m.room) for m in first] == [("Message", 1, "lobby"), ("Message", 2, "maths"),
                                                                 ("Topic", 3, "maths")]
    assert [m.id for m in second] == [4]
    assert seen[6].last_id == 7
    conn.send(msg(8, "live", room="maths"))
    live = ae.wait(protocol.Message)
    assert (live.id, live.text, live.room) == (8, "live", "maths")
    conn.close()
    again = srv.accept()
    hello = again.recv()
    assert (hello["since"], hello["resume"], hello["epoch"], hello["v"]) == (8, "s1", "e1", 2)


def test_a_connection_lost_in_the_middle_of_a_replay_resumes_from_the_last_replayed_id(make_chat_clients,
                                                                                       played):
    srv = played()
    a, ae = make_chat_clients(srv.port, "ann", **QUICK)
    conn = srv.accept()
    online(conn)
    conn.close()
    ae.wait(ev.Disconnected)
    conn = srv.accept()
    assert conn.recv()["since"] == 0              # the first catch-up ended at 0
    conn.send(welcome2(last_id=1000))
    conn.send(room("lobby", last_id=1000))
    conn.send(protocol.replay_frame([msg(i, f"m{i}") for i in (1, 2, 3)]))
    assert [m.id for m in ae.wait(ev.Backlog).messages] == [1, 2, 3]
    conn.close()                                  # no caught_up: the replay was cut short
    ae.wait(ev.Disconnected)
    conn = srv.accept()
    hello = conn.recv()
    assert hello["since"] == 3, "the welcome's last_id (1000) was not all delivered"
    conn.send(welcome2(last_id=1000))
    conn.send(protocol.replay_frame([msg(3, "m3"), msg(4, "m4")]))
    conn.send(protocol.caught_up_frame(1000))
    assert [m.id for m in ae.wait(ev.Backlog).messages] == [4]
    ae.wait(ev.CaughtUp)
    conn.close()
    conn = srv.accept()
    assert conn.recv()["since"] == 1000


def test_our_messages_found_in_a_replay_are_acknowledged_and_not_sent_again(make_chat_clients, played):
    srv = played()
    a, ae = make_chat_clients(srv.port, "ann", **QUICK)
    conn = srv.accept()
    online(conn)
    ae.wait(ev.CaughtUp)
    r1 = a.say("got through before the drop")
    said = conn.recv()
    assert said == {"type": "say", "text": "got through before the drop", "ref": r1}
    conn.close()                                  # the echo never came back on that connection
    ae.wait(ev.Disconnected)
    r2 = a.say("typed while away", room="maths")
    conn = srv.accept()
    hello = conn.recv()
    conn.send(welcome2(rooms=["lobby", "maths"], last_id=5))
    conn.send(room("lobby"))
    conn.send(room("maths"))
    assert quiet(conn) == [], "nothing is sent again before the replay has shown what the server has"
    conn.send(protocol.replay_frame([msg(5, "got through before the drop", sender="ann", ref=r1)]))
    conn.send(protocol.caught_up_frame(5))
    seen = until(ae, ev.CaughtUp)
    assert [type(e).__name__ for e in seen[-3:]] == ["Backlog", "Acked", "CaughtUp"]
    assert seen[-2] == ev.Acked(r1, 5)
    assert conn.recv() == {"type": "say", "text": "typed while away", "ref": r2, "room": "maths"}
    assert quiet(conn) == [], "the acknowledged one is not sent again"
    assert hello["since"] == 0


def test_room_actions_queued_offline_are_sent_once_and_again_only_if_unanswered(make_chat_clients, played):
    srv = played()
    a, ae = make_chat_clients(srv.port, "ann", start=False, **QUICK)
    refs = [a.join("maths", key="k1", topic="Fractions"), a.part("old"), a.topic("maths", "Decimals"),
            a.history(room="maths", before=10, limit=5), a.rooms(), a.say("hi maths", room="maths")]
    a.start()
    conn = srv.accept()
    online(conn)
    frames = [conn.recv() for _ in refs]
    assert frames == [
        {"type": "join", "room": "maths", "key": "k1", "topic": "Fractions", "ref": refs[0]},
        {"type": "part", "room": "old", "ref": refs[1]},
        {"type": "topic", "room": "maths", "topic": "Decimals", "ref": refs[2]},
        {"type": "history", "room": "maths", "before": 10, "limit": 5, "ref": refs[3]},
        {"type": "rooms", "ref": refs[4]},
        {"type": "say", "text": "hi maths", "ref": refs[5], "room": "maths"},
    ]
    # The server answers the join, the history request and the say, then the connection drops.
    conn.send(room("maths", topic="Fractions", ref=refs[0]))
    conn.send(protocol.history_frame([msg(8, "eight", room="maths")], True, room="maths", ref=refs[3]))
    conn.send(msg(11, "hi maths", room="maths", sender="ann", ref=refs[5]))
    got = [ae.wait(lambda e: isinstance(e, ev.Acked) and e.ref == r) for r in (refs[0], refs[3], refs[5])]
    assert got == [ev.Acked(refs[0], None), ev.Acked(refs[3], None), ev.Acked(refs[5], 11)]
    state = next(e for e in ae.seen if isinstance(e, ev.RoomState) and e.info.ref is not None)
    assert (state.info.ref, state.info.room, state.info.topic) == (refs[0], "maths", "Fractions")
    page = next(e for e in ae.seen if isinstance(e, protocol.HistoryPage))
    assert (page.room, page.more, [m.text for m in page.messages]) == ("maths", True, ["eight"])
    conn.close()
    ae.wait(ev.Disconnected)
    conn = srv.accept()
    online(conn, rooms=("lobby", "maths"))
    frames = [conn.recv() for _ in range(3)]
    assert [f["ref"] for f in frames] == [refs[1], refs[2], refs[4]], "only the unanswered ones, in order"
    conn.send(protocol.left_frame("ann", "part", "old", ref=refs[1]))
    conn.send(protocol.topic_frame("maths", "Decimals", "ann", 12, TS + 12, ref=refs[2]))
    conn.send(protocol.rooms_frame([{"room": "lobby", "topic": "", "users": 2, "last_id": 12, "key": False},
                                    {"room": "maths", "topic": "Decimals", "users": 1, "last_id": 12,
                                     "key": True}], ref=refs[4]))
    got = [ae.wait(lambda e: isinstance(e, ev.Acked) and e.ref == r) for r in (refs[1], refs[2], refs[4])]
    assert got == [ev.Acked(refs[1], None), ev.Acked(refs[2], 12), ev.Acked(refs[4], None)]
    left = next(e for e in ae.seen if isinstance(e, protocol.Left))
    assert (left.nick, left.room, left.reason) == ("ann", "old", "part")
    topic = next(e for e in ae.seen if isinstance(e, protocol.Topic))
    assert (topic.room, topic.topic, topic.by, topic.id) == ("maths", "Decimals", "ann", 12)
    listing = next(e for e in ae.seen if isinstance(e, protocol.RoomList))
    assert [(r.room, r.users, r.key) for r in listing.rooms] == [("lobby", 2, False), ("maths", 1, True)]
    assert a.pending() == 0
    conn.close()
    ae.wait(ev.Disconnected)
    conn = srv.accept()
    online(conn, rooms=("lobby", "maths"), last_id=12)
    assert quiet(conn) == [], "everything was answered: nothing is sent a third time"


def test_read_markers_are_coalesced_to_the_highest_per_room(make_chat_clients, played):
    srv = played()
    a, ae = make_chat_clients(srv.port, "ann", start=False, **QUICK)
    for room_, upto in (("maths", 5), ("Maths", 9), ("maths", 7), ("lobby", 3)):
        a.read(room_, upto)
    a.read("#bad name", 4)                          # ignored, logged
    a.start()
    conn = srv.accept()
    online(conn, rooms=("lobby", "maths"))
    reads = quiet(conn)
    assert sorted((protocol.room_key(f["room"]), f["upto"]) for f in reads) == [("lobby", 3), ("maths", 9)]
    assert all(f["type"] == "read" and set(f) == {"type", "room", "upto"} for f in reads)
    a.read("maths", 8)
    a.read("maths", 12)
    a.read("maths", 11)
    assert quiet(conn) == [{"type": "read", "room": "maths", "upto": 12}]
    with pytest.raises(ValueError):
        a.read("maths", -1)


def test_the_session_token_is_kept_per_server_and_nick_and_resumed_after_a_restart(make_chat_clients, played):
    srv = played()
    a, ae = make_chat_clients(srv.port, "ann")
    conn = srv.accept()
    hello = online(conn, session="tok-ann", rooms=("lobby", "maths"))
    assert "resume" not in hello
    ae.wait(ev.CaughtUp)
    path = os.path.join(paths.config_dir(), "sessions.json")
    assert SessionStore().get("127.0.0.1", srv.port, "ANN") == "tok-ann"
    if os.name == "posix":
        assert os.stat(path).st_mode & 0o777 == 0o600
    a.close(timeout=3)
    b, be = make_chat_clients(srv.port, "ann")       # the app started again
    conn = srv.accept()
    hello = conn.recv()
    assert hello["resume"] == "tok-ann" and "since" not in hello
    conn.send(welcome2(session="tok-ann", rooms=["lobby", "maths"]))
    conn.send(protocol.caught_up_frame(0))
    assert be.wait(ev.Connected).resumed
    c, ce = make_chat_clients(srv.port, "carol")     # another nick: its own session
    assert "resume" not in srv.accept().recv()
    d, de = make_chat_clients(srv.port, "ann", keep_session=False)
    assert "resume" not in srv.accept().recv()


def test_a_rename_files_the_token_under_the_new_nick(make_chat_clients, played):
    srv = played()
    a, ae = make_chat_clients(srv.port, "ann")
    conn = srv.accept()
    online(conn, session="tok-1")
    ae.wait(ev.CaughtUp)
    ref = a.set_nick("anna")
    assert conn.recv()["nick"] == "anna"
    conn.send({"type": "renamed", "old": "ann", "new": "anna", "ref": ref})
    ae.wait(ev.Acked)
    store = SessionStore()
    from tests.servertools import wait_until
    wait_until(lambda: store.get("127.0.0.1", srv.port, "anna") == "tok-1", what="the token under the new nick")
    assert store.get("127.0.0.1", srv.port, "ann") is None


def test_history_answers_and_refusals(make_chat_clients, played):
    srv = played()
    a, ae = make_chat_clients(srv.port, "ann")
    conn = srv.accept()
    online(conn, rooms=("lobby", "maths"))
    ae.wait(ev.CaughtUp)
    ref = a.history(room="maths", after=3, limit=2)
    assert conn.recv() == {"type": "history", "room": "maths", "after": 3, "limit": 2, "ref": ref}
    conn.send(protocol.history_frame([msg(4, "four", room="maths"), msg(6, "six", room="maths")], False,
                                     room="maths", ref=ref))
    page = ae.wait(protocol.HistoryPage)
    assert ([m.id for m in page.messages], page.more, page.ref) == ([4, 6], False, ref)
    assert ae.next() == ev.Acked(ref, None)
    dref = a.history(with_="Bob", before=50)
    assert conn.recv() == {"type": "history", "with": "Bob", "before": 50, "ref": dref}
    conn.send(protocol.history_frame([protocol.dm_frame(9, TS, "Bob", "ann", "psst")], True, with_="Bob",
                                     ref=dref))
    page = ae.wait(protocol.HistoryPage)
    assert (page.room, page.with_, type(page.messages[0])) == (None, "Bob", protocol.Direct)
    eref = a.history(room="physics")
    conn.recv()
    conn.send(protocol.error_frame(protocol.NOT_IN_ROOM, "You are not in physics.", eref))
    assert ae.wait(ev.Refused) == ev.Refused(eref, protocol.NOT_IN_ROOM, "You are not in physics.")
    # A page is an answer: its ids do not move where a resume starts from.
    conn.close()
    ae.wait(ev.Disconnected)
    conn = srv.accept()
    assert conn.recv()["since"] == 0
    with pytest.raises(ValueError):
        a.history(room="maths", with_="bob")
    with pytest.raises(ValueError):
        a.history(room="maths", before=1, after=2)
    bad = a.history(room="#maths")
    assert ae.wait(ev.Refused).ref == bad


def test_a_server_without_rooms_still_works_and_room_actions_are_refused_here(make_chat_clients, played):
    srv = played()
    a, ae = make_chat_clients(srv.port, "ann", start=False)
    early = a.join("maths")                       # queued before we know what the server is
    a.start()
    conn = srv.accept()
    hello = conn.recv()
    assert hello["v"] == 2
    # Today's server: "protocol" 2 in its welcome but no "replay": the v1 catch-up.
    conn.send({"type": "welcome", "nick": "ann", "users": ["ann"], "history": [msg(1, "old")], "last_id": 1,
               "session": "s1", "protocol": 2})
    seen = until(ae, ev.CaughtUp)
    assert [type(e).__name__ for e in seen] == ["Connecting", "Connected", "Backlog", "Refused", "CaughtUp"]
    assert seen[1].protocol == 1 and seen[2].messages[0].room == "lobby"
    assert seen[3].ref == early and seen[3].code == NO_ROOMS
    assert ae.seen and a.pending() == 0
    for refused in (a.join("maths"), a.rooms(), a.say("x", room="maths"), a.history(room="lobby")):
        assert ae.wait(ev.Refused) == ev.Refused(refused, NO_ROOMS, ae.seen[-1].message)
    a.read("lobby", 1)
    ref = a.say("hello lobby")
    assert quiet(conn) == [{"type": "say", "text": "hello lobby", "ref": ref}]    # no room, no read
