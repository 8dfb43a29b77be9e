"""Presence across the nodes of a deployment, against a real redis-server (docs/scaling.md).

``joined``, ``left`` and ``renamed`` done on one node reach the room's
members on the others, in one server's shapes, and take no id of the log; a
``room`` frame and the ``rooms`` listing count every node's members; a node
SIGKILLed loses its clients from the lists within its key's lifetime, except
those that resumed on another node meanwhile.
"""
from __future__ import annotations

import time

import pytest

from server.store.redis import NODE_TTL_MS
from tests.netclient import LineClient
from tests.redistools import NodeProcess, stream
from tests.servertools import wait_until
from tests.test_scaleout import read_until, welcomed

IDENTITY = "i" * 40


def presence(frames, kind: str, nick: str | None = None) -> list[dict]:
    return [f for f in frames if f["type"] == kind and (nick is None or nick in (f.get("nick"), f.get("old")))]


def wait_for(client: LineClient, kind: str, timeout: float = 15, **fields) -> dict:
    """The first frame (already read or to come) of this type with these fields."""
    def found(frames):
        return next((f for f in frames if f["type"] == kind and all(f.get(k) == v for k, v in fields.items())),
                    None)
    read_until(client, found, timeout)
    return found(client.frames)


def room_frame(client: LineClient, room: str) -> dict:
    """The room's state as the node answers a join of it again (or a first join)."""
    ref = f"r{time.monotonic_ns()}"
    client.send({"type": "join", "room": room, "ref": ref})
    return wait_for(client, "room", ref=ref)


def listing(client: LineClient) -> dict:
    ref = f"l{time.monotonic_ns()}"
    client.send({"type": "rooms", "ref": ref})
    return {r["room"]: r["users"] for r in wait_for(client, "rooms", ref=ref)["rooms"]}


def redis_db(url: str):
    import redis
    return redis.Redis.from_url(url)


@pytest.mark.timeout(60)
def test_joined_left_and_renamed_reach_the_room_on_three_nodes(make_node, redis_server):
    one, two, three = make_node(), make_node(), make_node()
    ann = welcomed(one.port, "ann")
    bob = welcomed(two.port, "bob")
    assert wait_for(ann, "joined", nick="bob") == {"type": "joined", "room": "lobby", "nick": "bob"}
    carl = welcomed(three.port, "carl")
    for c in (ann, bob):
        assert wait_for(c, "joined", nick="carl") == {"type": "joined", "room": "lobby", "nick": "carl"}

    ann.send({"type": "join", "room": "Maths", "ref": "j1"})
    wait_for(ann, "room", ref="j1")
    bob.send({"type": "join", "room": "maths", "ref": "j2"})
    bob.send({"type": "say", "room": "maths", "text": "hi maths", "ref": "s1"})
    wait_for(ann, "message", text="hi maths")
    mine = [f for f in ann.frames if f.get("room") == "Maths" and f["type"] in ("joined", "message")]
    # joined before the joiner's first message, as with one server
    assert [f["type"] for f in mine] == ["joined", "joined", "message"]
    assert mine[1] == {"type": "joined", "room": "Maths", "nick": "bob"}

    carl.send({"type": "nick", "nick": "Carlos", "ref": "n1"})
    wait_for(carl, "renamed", ref="n1")
    for c in (ann, bob):
        assert wait_for(c, "renamed", old="carl") == {"type": "renamed", "old": "carl", "new": "Carlos"}

    bob.send({"type": "part", "room": "Maths", "ref": "p1"})
    wait_for(bob, "left", ref="p1")
    assert wait_for(ann, "left", nick="bob") == {"type": "left", "room": "Maths", "nick": "bob", "reason": "part"}

    carl.send({"type": "bye"})
    for c in (ann, bob):
        assert wait_for(c, "left", nick="Carlos") == {"type": "left", "room": "lobby", "nick": "Carlos",
                                                      "reason": "quit"}
    # Each frame once, none about another room, none to carl's room-mates twice.
    assert len(presence(ann.frames, "joined", "bob")) == 2 and len(presence(ann.frames, "renamed")) == 1
    assert not [f for f in carl.frames if f.get("room") == "Maths"]      # carl was never in it
    # Presence took no id: the log holds the one message, id 1.
    assert [(e["id"], e["kind"]) for e in stream(redis_server.url)] == [(1, "message")]
    assert int(redis_db(redis_server.url).get("natter:seq")) == 1


@pytest.mark.timeout(60)
def test_a_room_frame_and_the_rooms_listing_count_every_node(make_node):
    one, two, three = make_node(), make_node(), make_node()
    ann = welcomed(one.port, "ann", identity=IDENTITY)
    ann.send({"type": "join", "room": "Maths", "ref": "j"})
    assert wait_for(ann, "room", ref="j")["role"] == "owner"
    ann.send({"type": "join", "room": "Art", "ref": "a"})
    wait_for(ann, "room", ref="a")
    bob = welcomed(two.port, "bob")
    wait_for(ann, "joined", nick="bob")
    maths = room_frame(bob, "maths")
    assert maths["users"] == ["ann", "bob"]
    carl = welcomed(three.port, "carl")
    wait_for(bob, "joined", nick="carl")
    assert listing(carl) == {"Art": 1, "lobby": 3, "Maths": 2}      # rooms made on node one too
    # A node started now learns who is where from Redis (its first read).
    four = make_node()
    dan = LineClient(four.port, timeout=10)
    w = dan.hello("dan", v=2)
    assert w["users"] == ["ann", "bob", "carl", "dan"]
    dan.recv_type("caught_up")
    wait_until(lambda: len(four.hub.chat.rooms["lobby"].remote) == 3, timeout=10, what="node four's first read")
    maths = room_frame(dan, "Maths")
    assert maths["users"] == ["ann", "bob", "dan"]
    # The roles of members on other nodes too (node four read them at its start;
    # a role given after a node started reaches it with "moderation state across nodes").
    assert maths["roles"] == {"ann": "owner"}
    assert listing(dan) == {"Art": 1, "lobby": 4, "Maths": 3}
    for c in (ann, bob, carl):
        wait_for(c, "joined", nick="dan", room="lobby")


def _other_nodes(url: str, *mine) -> list[str]:
    ids = [k.decode().rpartition(":")[2] for k in redis_db(url).keys("natter:node:*")]
    return [i for i in ids if i not in {n.history.node for n in mine}]


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_a_sigkilled_node_s_clients_leave_every_room_within_its_key_s_lifetime(tmp_path, redis_server, make_node):
    one = make_node()
    doomed = NodeProcess(str(tmp_path / "doomed"), redis_server.url)
    try:
        ann = welcomed(one.port, "ann")
        ann.send({"type": "join", "room": "Maths", "ref": "j"})
        wait_for(ann, "room", ref="j")
        bob = welcomed(doomed.port, "bob")
        bob.send({"type": "join", "room": "Maths", "ref": "j"})
        wait_for(ann, "joined", nick="bob", room="Maths")
        assert room_frame(ann, "Maths")["users"] == ["ann", "bob"]
        doomed.kill()                   # without a word
        start = time.monotonic()
        limit = NODE_TTL_MS / 1000 + 5
        for room in ("lobby", "Maths"):
            assert wait_for(ann, "left", timeout=limit, nick="bob", room=room)["reason"] == "connection lost"
        assert time.monotonic() - start < limit
        assert room_frame(ann, "Maths")["users"] == ["ann"]
        assert listing(ann) == {"lobby": 1, "Maths": 1}
        assert LineClient(one.port).hello("carl", v=2)["users"] == ["ann", "carl"]
        assert not redis_db(redis_server.url).keys("natter:members:*") or \
            all(k.decode().endswith(one.history.node) for k in redis_db(redis_server.url).keys("natter:members:*"))
    finally:
        doomed.kill()


@pytest.mark.slow
@pytest.mark.timeout(90)
def test_a_client_that_resumed_elsewhere_is_not_announced_gone_with_its_dead_node(tmp_path, redis_server,
                                                                                 make_node):
    one, two = make_node(), make_node()
    doomed = NodeProcess(str(tmp_path / "doomed"), redis_server.url)
    try:
        ann = welcomed(one.port, "ann")
        bob = LineClient(doomed.port, timeout=10)
        token = bob.hello("bob", v=2)["session"]
        bob.recv_type("caught_up")
        wait_for(ann, "joined", nick="bob")
        dead = _other_nodes(redis_server.url, one, two)
        assert len(dead) == 1
        doomed.kill()
        back = LineClient(two.port, timeout=10)
        back.hello("bob", v=2, resume=token, since=0)        # on another node, at once
        back.recv_type("caught_up")
        # As one server shows a resume: left (reconnected), then joined.
        read_until(ann, lambda fr: len(presence(fr, "joined", "bob")) == 2)
        moved = [f for f in presence(ann.frames, "left", "bob") + presence(ann.frames, "joined", "bob")]
        assert {"type": "left", "room": "lobby", "nick": "bob", "reason": "reconnected"} in moved
        # The dead node is buried (node one's reader saw its key go)...
        wait_until(lambda: dead[0] not in one.history.reader.presence.nodes, timeout=NODE_TTL_MS / 1000 + 5,
                   interval=0.1, what="node one to see the dead node go")
        # ...and everything of it is out before this message (it comes after, in order):
        back.send({"type": "say", "text": "still here", "ref": "s"})
        wait_for(ann, "message", text="still here")
        assert not [f for f in ann.frames if f["type"] == "left" and f.get("reason") == "connection lost"]
        assert room_frame(ann, "lobby")["users"] == ["ann", "bob"]
        assert listing(ann) == {"lobby": 2}
    finally:
        doomed.kill()


@pytest.mark.timeout(60)
def test_a_resume_on_another_node_replaces_the_old_connection_there(make_node):
    one, two, three = make_node(), make_node(), make_node()
    bob = LineClient(one.port, timeout=10)
    token = bob.hello("bob", v=2)["session"]
    bob.recv_type("caught_up")
    carl = welcomed(three.port, "carl")
    wait_until(lambda: "bob" in one.hub.chat.nicks and len(three.hub.chat.rooms["lobby"].remote) == 1,
               what="carl to see bob")
    back = LineClient(two.port, timeout=10)
    back.hello("bob", v=2, resume=token)
    back.recv_type("caught_up")
    assert wait_for(bob, "error", code="replaced")
    assert bob.closed_by_server()
    wait_for(carl, "left", nick="bob", reason="reconnected")
    wait_for(carl, "joined", nick="bob")
    wait_until(lambda: "bob" not in one.hub.chat.nicks, what="node one to let the old bob go")
    # Node one's left of the old connection came after: stale, not shown, bob stays listed.
    back.send({"type": "say", "text": "moved", "ref": "m"})
    wait_for(carl, "message", text="moved")
    assert len(presence(carl.frames, "left", "bob")) == 1
    assert room_frame(carl, "lobby")["users"] == ["bob", "carl"]


# -- without Redis: the order of presence among the log's events -------------------

class _Recorder:
    """What FeedRules.on_logged calls, recorded in order."""
    on_logged = None        # set below

    def __init__(self):
        self.calls = []
        self.store = self

    def _deliver(self, e):
        self.calls.append(("event", e.id))

    def advance(self, upto):
        pass

    def on_shared(self, item):
        self.calls.append(("presence", item.frame["nick"]))


def test_presence_is_delivered_after_the_events_up_to_its_at():
    from server.core.events import Logged, Presence
    from server.core.feed import FeedRules
    from server.store import Event
    _Recorder.on_logged = FeedRules.on_logged
    r = _Recorder()

    def said(i):
        return Event(i, 0.0, "lobby", "x", None, "t", None, None)

    def came(nick, at):
        return Presence("n2", at, {"type": "joined", "room": "lobby", "nick": nick}, ("lobby",), 1, None, False)
    batch = Logged([said(5), said(6), said(7)], [came("a", 4), came("b", 5), came("c", 5), came("d", 7)])
    r.on_logged(batch)
    assert r.calls == [("presence", "a"), ("event", 5), ("presence", "b"), ("presence", "c"), ("event", 6),
                       ("event", 7), ("presence", "d")]
    assert batch.applied.is_set()


def test_the_reader_holds_presence_until_the_log_s_reader_has_passed_its_at():
    from server.core.events import NodeGone
    from server.store.redis_presence import PresenceReader

    class Db:
        def register_script(self, src):
            return None
    reader = PresenceReader(Db(), "me", 0)

    def entry(k, node, at, nick):
        data = ('{"frame":{"type":"joined","room":"lobby","nick":"%s"},"rooms":["lobby"],"session":%d,'
                '"fp":null,"admin":false,"routed":true}' % (nick, k))
        return (f"0-{k}".encode(), {b"node": node.encode(), b"at": str(at).encode(), b"data": data.encode()})
    reader.take([entry(1, "n2", 3, "a"), entry(2, "me", 3, "mine"), entry(3, "n3", 9, "b")], 3)
    assert reader.after == 3 and reader.nodes == {"n2", "n3"}
    assert reader.streams() == {}                    # the log alone until they are out
    assert [h.frame["nick"] for h in reader.due(3)] == ["a"]       # its own are not handed on
    reader.held.append(NodeGone(max(h.at for h in reader.held), "n3"))
    assert reader.due(8) == []
    assert [type(h).__name__ for h in reader.due(9)] == ["Presence", "NodeGone"]
    assert reader.streams() == {"natter:presence": "0-3"}


def test_the_reader_skips_a_presence_entry_it_cannot_read_and_reads_on():
    from server.store.redis_presence import PresenceReader

    class Db:
        def register_script(self, src):
            return None
    reader = PresenceReader(Db(), "me", 0)
    good = ('{"frame":{"type":"joined","room":"lobby","nick":"a"},"rooms":["lobby"],"session":2,'
            '"fp":null,"admin":false,"routed":true}')
    reader.take([(b"0-1", {b"node": b"n2", b"at": b"1", b"data": b'{"frame":{}}'}),
                 (b"0-2", {b"node": b"n2", b"at": b"1", b"data": good.encode()})], 1)
    assert reader.after == 2 and [h.frame["nick"] for h in reader.due(1)] == ["a"]


@pytest.mark.timeout(60)
def test_a_node_taken_for_dead_shares_its_clients_again_when_its_key_is_back(make_node, redis_server):
    """Redis away (or the node standing still) longer than the node key's
    lifetime: the others bury the node and tell their clients; its reader
    finds its key gone when it renews it, and its clients join again there."""
    one, two = make_node(), make_node()
    ann = welcomed(one.port, "ann")
    bob = welcomed(two.port, "bob")
    wait_for(ann, "joined", nick="bob")
    db = redis_db(redis_server.url)
    deadline = time.monotonic() + 20
    while not presence(bob.frames, "left", "ann"):        # until node two looked while it was gone
        assert time.monotonic() < deadline, "node two never saw node one's key go"
        db.delete(one.history.node_key)
        try:
            bob.recv(0.05)
        except TimeoutError:
            pass
    gone = presence(bob.frames, "left", "ann")[0]
    assert gone["reason"] == "connection lost"
    after = bob.frames.index(gone)
    read_until(bob, lambda fr: presence(fr[after:], "joined", "ann"))
    assert presence(bob.frames[after:], "joined", "ann")[0] == {"type": "joined", "room": "lobby", "nick": "ann"}
    # The loop's last delete may have come after node one had renewed its
    # key: node two then buries it once more and node one comes back again.
    # What counts is where it settles: ann in the lobby, on both nodes' word.
    deadline = time.monotonic() + 20
    while (users := room_frame(bob, "lobby")["users"]) != ["ann", "bob"]:
        assert time.monotonic() < deadline, f"node two's lobby stayed {users}"
        read_until(bob, lambda fr: [f["type"] for f in fr if f["type"] in ("joined", "left")
                                    and f.get("nick") == "ann"][-1:] == ["joined"], 15)
    assert users == ["ann", "bob"]


@pytest.mark.timeout(60)
def test_a_reader_behind_the_trimmed_presence_stream_reads_the_members_instead(make_node, redis_server):
    from server.core.events import Members
    from server.store.redis_presence import PresenceReader
    one = make_node()
    ann = welcomed(one.port, "ann")
    ann.send({"type": "join", "room": "Maths", "ref": "j"})
    wait_for(ann, "room", ref="j")
    db = redis_db(redis_server.url)
    reader = PresenceReader(db, "elsewhere", 0)
    entries = db.xrange("natter:presence")
    reader.take(entries[1:], 0)                     # 0-1 is missing: as if trimmed
    snapshot, = reader.held
    assert type(snapshot) is Members and reader.after == len(entries)
    assert snapshot.members == ((one.history.node, "ann", 1, None, False, ("lobby", "maths")),)


@pytest.mark.timeout(60)
def test_a_kick_s_left_reaches_the_room_on_another_node(make_node):
    one, two = make_node(), make_node()
    ann = welcomed(one.port, "ann", identity=IDENTITY)
    ann.send({"type": "join", "room": "Maths", "ref": "j"})
    wait_for(ann, "room", ref="j")
    bob = welcomed(one.port, "bob")
    bob.send({"type": "join", "room": "Maths", "ref": "j"})
    wait_for(ann, "joined", nick="bob", room="Maths")
    carl = welcomed(two.port, "carl")
    carl.send({"type": "join", "room": "Maths", "ref": "j"})
    assert wait_for(carl, "room", ref="j")["users"] == ["ann", "bob", "carl"]
    ann.send({"type": "mod", "room": "Maths", "action": "kick", "nick": "bob", "reason": "noise", "ref": "k"})
    left = wait_for(carl, "left", nick="bob")
    assert left == {"type": "left", "room": "Maths", "nick": "bob", "reason": "kick", "by": "ann", "note": "noise"}
    assert room_frame(carl, "Maths")["users"] == ["ann", "carl"]
    assert listing(carl)["Maths"] == 2 and listing(carl)["lobby"] == 3       # bob is still in the lobby


@pytest.mark.timeout(60)
def test_a_node_stopped_politely_loses_its_clients_from_the_others_lists_at_once(make_node):
    one, two = make_node(), make_node()
    ann = welcomed(one.port, "ann")
    bob = welcomed(two.port, "bob")
    wait_for(ann, "joined", nick="bob")
    start = time.monotonic()
    two.shutdown()
    assert wait_for(ann, "left", timeout=10, nick="bob")["reason"] == "connection lost"
    assert time.monotonic() - start < 5
    assert room_frame(ann, "lobby")["users"] == ["ann"]
    assert bob
