"""A pass's fan-out (server.core.fanout), without sockets: who gets which
frames, in which order, sharing which blob."""
from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from server.core import fanout as fanout_mod
from server.core.fanout import Out, Pass
from server.core.rooms import Room
from server.doors.jsonl import JSONL, JSONL_V1
from server.store import RoomRecord


class Client:
    """What the fan-out reads of a client."""

    def __init__(self, name: str, v: int = 2):
        self.name = name
        self.encoder = JSONL if v >= 2 else JSONL_V1
        self.cursor = None      # catching up when set
        self.held = None        # welcome not out yet when a list

    def __repr__(self):
        return self.name


def room(name: str = "lobby") -> Room:
    return Room(RoomRecord(name.lower(), name))


def msg(n: int, room_name: str = "lobby", ref: str | None = None) -> Out:
    frame = {"type": "message", "id": n, "from": "x", "text": f"m{n}", "room": room_name}
    out = Out.of(frame, n)
    return out.with_ref(ref) if ref else out


def note(text: str, kind: str = "joined") -> Out:
    return Out.of({"type": kind, "nick": text})


def sealed(fan: Pass) -> dict:
    """client -> its bytes of the pass (a list of parts joined)."""
    return {c: (b"".join(d) if type(d) is list else d) for c, d, _ in fan.seal()}


def texts(data: bytes) -> list:
    import json
    return [json.loads(line).get("text") or json.loads(line).get("nick") for line in data.splitlines()]


def test_members_share_one_blob():
    fan, lobby = Pass(), room()
    a, b, c = Client("a"), Client("b"), Client("c")
    for m in (a, b, c):
        fan.join(lobby, m)
    fan.broadcast(msg(1), [lobby])
    fan.broadcast(msg(2), [lobby])
    out = sealed(fan)
    assert texts(out[a]) == ["m1", "m2"]
    assert out[a] is out[b] is out[c], "everyone with nothing special shares one object"
    assert not fan.busy and sealed(fan) == {}


def test_sender_gets_its_ref_copy_in_place_and_unicasts_keep_their_position():
    fan, lobby = Pass(), room()
    a, b = Client("a"), Client("b")
    fan.join(lobby, a)
    fan.join(lobby, b)
    fan.broadcast(msg(1), [lobby])
    two = msg(2)
    fan.broadcast(two, [lobby], a, two.with_ref("r"))
    fan.unicast(a, note("err", "error"))
    fan.broadcast(msg(3), [lobby])
    out = sealed(fan)
    assert texts(out[a]) == ["m1", "m2", "err", "m3"] and b'"ref":"r"' in out[a]
    assert texts(out[b]) == ["m1", "m2", "m3"] and b"ref" not in out[b]


def test_a_member_who_joins_mid_pass_gets_only_what_follows():
    fan, lobby = Pass(), room()
    a, late = Client("a"), Client("late")
    fan.join(lobby, a)
    fan.broadcast(msg(1), [lobby])
    fan.join(lobby, late)
    fan.broadcast(msg(2), [lobby])
    out = sealed(fan)
    assert texts(out[a]) == ["m1", "m2"] and texts(out[late]) == ["m2"]
    fan.broadcast(msg(3), [lobby])
    out = sealed(fan)
    assert out[late] is out[a], "from the next pass on, it is an ordinary member"


def test_a_member_who_parts_mid_pass_gets_what_came_before_and_its_own_frames():
    fan, lobby = Pass(), room()
    a, b = Client("a"), Client("b")
    fan.join(lobby, a)
    fan.join(lobby, b)
    fan.broadcast(msg(1), [lobby])
    fan.part(lobby, a)
    fan.unicast(a, note("a", "left"))
    fan.broadcast(msg(2), [lobby])
    out = sealed(fan)
    assert texts(out[a]) == ["m1", "a"] and texts(out[b]) == ["m1", "m2"]


def test_a_member_who_joins_and_parts_in_one_pass_gets_what_came_between():
    fan, lobby, other = Pass(), room(), room("other")
    a, brief = Client("a"), Client("brief")
    fan.join(lobby, a)
    fan.join(other, a)
    fan.broadcast(msg(1), [lobby])
    fan.join(lobby, brief)
    fan.join(other, brief)
    fan.broadcast(msg(2), [lobby])
    fan.broadcast(msg(3, "other"), [other])
    fan.part(lobby, brief)
    fan.broadcast(msg(4), [lobby])
    fan.part(other, brief)
    fan.broadcast(msg(5, "other"), [other])
    out = sealed(fan)
    assert texts(out[brief]) == ["m2", "m3"]
    assert texts(out[a]) == ["m1", "m2", "m3", "m4", "m5"]


def test_a_crowd_that_leaves_in_one_pass_each_gets_what_came_before_it_left():
    fan, lobby = Pass(), room()
    crowd = [Client(f"c{i}") for i in range(300)]
    for c in crowd:
        fan.join(lobby, c)
    for i, c in enumerate(crowd):
        fan.part(lobby, c)
        fan.broadcast(note(c.name, "left"), [lobby])
    out = sealed(fan)
    assert crowd[0] not in out, "it left before anything was sent"
    for i in (1, 150, 299):
        assert texts(out[crowd[i]]) == [c.name for c in crowd[:i]]
    for c in crowd[:10]:
        fan.join(lobby, c)
    fan.broadcast(msg(1), [lobby])
    for c in crowd[:5]:
        fan.part(lobby, c)
        fan.forget(c)           # its socket is closed: nothing of the pass is built for it
    assert set(sealed(fan)) == set(crowd[5:10])


def test_a_leaver_that_is_forgotten_gets_nothing_more():
    fan, lobby = Pass(), room()
    a, b = Client("a"), Client("b")
    fan.join(lobby, a)
    fan.join(lobby, b)
    fan.broadcast(msg(1), [lobby])
    fan.unicast(a, note("bye", "error"))
    fan.part(lobby, a)
    fan.forget(a)
    assert sealed(fan) == {b: msg(1).line}


def test_two_rooms_in_one_pass_reach_a_member_of_both_in_id_order():
    """Ids strictly increase in every client's stream, across rooms too: a
    resume from the last id seen misses nothing."""
    fan, lobby, dev = Pass(), room("lobby"), room("dev")
    both, only_dev, only_lobby = Client("both"), Client("dev"), Client("lobby")
    for c in (both, only_lobby):
        fan.join(lobby, c)
    for c in (both, only_dev):
        fan.join(dev, c)
    fan.broadcast(msg(1, "lobby"), [lobby])
    fan.broadcast(msg(2, "dev"), [dev])
    fan.broadcast(msg(3, "lobby"), [lobby])
    fan.broadcast(note("renamed"), [lobby, dev])        # to both rooms: once each
    fan.broadcast(msg(4, "dev"), [dev])
    out = sealed(fan)
    assert texts(out[both]) == ["m1", "m2", "m3", "renamed", "m4"]
    assert texts(out[only_lobby]) == ["m1", "m3", "renamed"]
    assert texts(out[only_dev]) == ["m2", "renamed", "m4"]


def test_members_of_the_same_rooms_share_a_blob_per_set_of_rooms():
    fan, rooms = Pass(), [room(f"r{i}") for i in range(3)]
    clients = [[Client(f"c{i}.{j}") for j in range(4)] for i in range(3)]
    for r, people in zip(rooms, clients):
        for c in people:
            fan.join(r, c)
    for n, r in enumerate(rooms):
        fan.broadcast(msg(n, r.name), [r])
    out = sealed(fan)
    for people in clients:
        assert all(out[c] is out[people[0]] for c in people)
    assert len({id(out[people[0]]) for people in clients}) == 3


def test_a_client_catching_up_gets_frames_without_an_id_directly_and_none_with_one():
    fan, lobby = Pass(), room()
    live, waiting = Client("live"), Client("waiting")
    fan.join(lobby, live)
    waiting.cursor = object()
    lobby.waiting.add(waiting)
    fan.broadcast(note("carol"), [lobby])
    fan.broadcast(msg(1), [lobby])
    fan.unicast(waiting, msg(2))                        # a dm to it: its cursor brings it
    fan.unicast(waiting, note("pong", "pong"))
    out = sealed(fan)
    assert texts(out[live]) == ["carol", "m1"]
    assert texts(out[waiting]) == ["carol", "pong"]     # joined, then its pong


def test_frames_for_a_client_whose_welcome_is_not_out_wait_for_it():
    fan, lobby = Pass(), room()
    newcomer = Client("new")
    newcomer.held = []
    fan.unicast(newcomer, msg(5))
    fan.broadcast(msg(6), [lobby])                      # not in the fan-out yet: its welcome has it
    assert sealed(fan) == {}
    assert [o.id for o in newcomer.held] == [5]


def test_a_v1_client_is_not_sent_topics_and_shares_the_blob_when_there_are_none():
    fan, lobby = Pass(), room()
    v1, v2 = Client("v1", v=1), Client("v2")
    fan.join(lobby, v1)
    fan.join(lobby, v2)
    fan.broadcast(msg(1), [lobby])
    out = sealed(fan)
    assert out[v1] is out[v2]
    fan.broadcast(msg(2), [lobby])
    fan.broadcast(Out.of({"type": "topic", "room": "lobby", "topic": "t", "by": "x", "id": 3, "ts": 1.0}, 3),
                  [lobby])
    out = sealed(fan)
    assert texts(out[v1]) == ["m2"] and len(out[v2].splitlines()) == 2


def test_discard_forgets_the_pass():
    fan, lobby = Pass(), room()
    a, late = Client("a"), Client("late")
    fan.join(lobby, a)
    fan.broadcast(msg(1), [lobby])
    fan.join(lobby, late)
    fan.discard()
    assert not fan.busy and sealed(fan) == {}
    fan.broadcast(msg(2), [lobby])
    out = sealed(fan)
    assert out[a] is out[late] and texts(out[a]) == ["m2"]


def test_in_a_big_pass_personal_shares_are_views_of_the_one_blob(monkeypatch):
    monkeypatch.setattr(fanout_mod, "VIEW_MIN", 0)
    fan, lobby = Pass(), room()
    a, b = Client("a"), Client("b")
    fan.join(lobby, a)
    fan.join(lobby, b)
    fan.broadcast(msg(1), [lobby])
    two = msg(2)
    fan.broadcast(two, [lobby], a, two.with_ref("r"))
    fan.unicast(a, note("err", "error"))
    fan.broadcast(msg(3), [lobby])
    raw = {c: (d, shared) for c, d, shared in fan.seal()}
    blob, shared = raw[b]
    assert shared and texts(blob) == ["m1", "m2", "m3"]
    parts, shared = raw[a]
    assert not shared and texts(b"".join(parts)) == ["m1", "m2", "err", "m3"]
    views = [x for x in parts if type(x) is memoryview]
    assert views and all(v.obj is blob for v in views), "no copy of the shared frames"


ops = st.lists(st.tuples(st.sampled_from(["join", "part", "say", "ack", "uni", "rename"]), st.integers(0, 3),
                         st.integers(0, 2)), max_size=40)


def model(opsl):
    """What each client must get: for every broadcast, everyone in one of its
    rooms at that moment, once, in order; the sender its own copy; unicasts
    where they were queued."""
    members = {r: {0} for r in range(3)}
    got = {c: [] for c in range(4)}
    for n, (op, who, r) in enumerate(opsl):
        if op == "join":
            members[r].add(who)
        elif op == "part":
            members[r].discard(who)
        elif op in ("say", "ack"):
            for c in sorted(members[r] | ({who} if op == "ack" else set())):   # the sender gets its copy
                got[c].append(f"m{n}+" if op == "ack" and c == who else f"m{n}")
        elif op == "uni":
            got[who].append(f"u{n}")
        elif op == "rename":
            rooms = [x for x in range(3) if who in members[x]]
            for c in sorted(set().union({who}, *(members[x] for x in rooms))):
                got[c].append(f"n{n}")
    return {c: v for c, v in got.items() if v}


def run(opsl):
    fan, rooms = Pass(), [room(f"r{i}") for i in range(3)]
    people = [Client(f"c{i}") for i in range(4)]
    for r in rooms:
        fan.join(r, people[0])
    for n, (op, who, r) in enumerate(opsl):
        c, rm = people[who], rooms[r]
        if op == "join" and c not in rm.members:
            fan.join(rm, c)
        elif op == "part":
            fan.part(rm, c)
        elif op == "say":
            fan.broadcast(Out.of({"type": "message", "id": n, "text": f"m{n}"}, n), [rm])
        elif op == "ack":
            out = Out.of({"type": "message", "id": n, "text": f"m{n}"}, n)
            fan.broadcast(out, [rm], c, Out.of({"type": "message", "id": n, "text": f"m{n}+"}, n))
        elif op == "uni":
            fan.unicast(c, Out.of({"type": "pong", "text": f"u{n}"}))
        elif op == "rename":
            mine = [x for x in rooms if c in x.members]
            fan.broadcast(Out.of({"type": "renamed", "text": f"n{n}"}), mine, c,
                          Out.of({"type": "renamed", "text": f"n{n}"}))
    return {people.index(c): texts(d) for c, d in sealed(fan).items()}


@given(ops)
def test_prop_every_client_gets_exactly_its_frames_in_order_views_or_copies(opsl):
    expected = model(opsl)
    for view_min in (0, 1 << 30):
        old, fanout_mod.VIEW_MIN = fanout_mod.VIEW_MIN, view_min
        try:
            assert run(opsl) == expected
        finally:
            fanout_mod.VIEW_MIN = old


class Counting:
    """A door's encoder (one client's, with state): counts what it encodes."""
    per_client = True

    def __init__(self):
        self.seen = []

    def lines_only(self, kinds) -> bool:
        return False

    def encode(self, out: Out) -> bytes:
        self.seen.append(out.frame.get("text") or out.frame.get("nick"))
        return out.line


def test_a_door_encoder_sees_each_frame_once_with_its_own_frames_in_the_pass():
    fan, lobby = Pass(), room()
    a, b = Client("a"), Client("b")
    a.encoder = Counting()
    for m in (a, b):
        fan.join(lobby, m)
    fan.broadcast(msg(1), [lobby])
    two = msg(2)
    fan.broadcast(two, [lobby], a, two.with_ref("r"))     # a's own acknowledgement in the pass
    fan.broadcast(msg(3), [lobby])
    out = sealed(fan)
    assert texts(out[a]) == ["m1", "m2", "m3"] and texts(out[b]) == ["m1", "m2", "m3"]
    assert a.encoder.seen == ["m1", "m2", "m3"]           # once each, in order: no blob beside its share
