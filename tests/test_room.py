"""Room: the per-pass queue of frames, without sockets."""
from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from server.core.room import Room


def sealed(room: Room) -> dict:
    """member -> its bytes of the pass (a list of parts joined)."""
    return {m: (b"".join(d) if type(d) is list else d) for m, d, _ in room.seal()}


def test_members_share_one_blob():
    room = Room("lobby")
    a, b, c = object(), object(), object()
    for m in (a, b, c):
        room.add(m)
    room.broadcast(b"1\n")
    room.broadcast(b"2\n")
    out = sealed(room)
    assert out[a] == b"1\n2\n"
    assert out[a] is out[b] is out[c], "everyone with nothing special shares one object"
    assert not room.busy and sealed(room) == {}


def test_sender_gets_its_ref_copy_in_place_and_unicasts_keep_their_position():
    room = Room("lobby")
    a, b = object(), object()
    room.add(a)
    room.add(b)
    room.broadcast(b"1\n")
    room.broadcast(b"2\n", sender=a, sender_data=b"2+ref\n")
    room.unicast(a, b"err\n")
    room.broadcast(b"3\n")
    out = sealed(room)
    assert out[a] == b"1\n2+ref\nerr\n3\n"
    assert out[b] == b"1\n2\n3\n"


def test_a_member_who_joins_mid_pass_gets_only_what_follows():
    room = Room("lobby")
    a, late = object(), object()
    room.add(a)
    room.broadcast(b"before\n")
    room.add(late)
    room.broadcast(b"after\n")
    out = sealed(room)
    assert out[a] == b"before\nafter\n" and out[late] == b"after\n"
    room.broadcast(b"next\n")
    assert sealed(room)[late] == b"next\n", "from the next pass on, it is an ordinary member"


def test_a_leaver_gets_its_own_frames_not_the_others_broadcasts():
    room = Room("lobby")
    a, b = object(), object()
    room.add(a)
    room.add(b)
    room.broadcast(b"other\n")
    room.broadcast(b"mine\n", sender=a, sender_data=b"mine+ref\n")
    room.unicast(a, b"bye-error\n")
    assert room.remove(a) == b"mine+ref\nbye-error\n"
    assert a not in room
    assert sealed(room) == {b: b"other\nmine\n"}


def test_discard_forgets_the_pass():
    room = Room("lobby")
    a, late = object(), object()
    room.add(a)
    room.broadcast(b"unsaved\n")
    room.add(late)
    room.discard()
    assert not room.busy and sealed(room) == {}
    room.broadcast(b"x\n")
    assert sealed(room) == {a: b"x\n", late: b"x\n"}


def test_in_a_big_pass_personal_shares_are_views_of_the_one_blob(monkeypatch):
    from server.core import room as room_mod
    monkeypatch.setattr(room_mod, "VIEW_MIN", 0)
    room = Room("lobby")
    a, b = object(), object()
    room.add(a)
    room.add(b)
    room.broadcast(b"1\n")
    room.broadcast(b"2\n", sender=a, sender_data=b"2+ref\n")
    room.unicast(a, b"err\n")
    room.broadcast(b"3\n")
    raw = {m: (d, shared) for m, d, shared in room.seal()}
    blob, shared = raw[b]
    assert shared and blob == b"1\n2\n3\n"
    parts, shared = raw[a]
    assert not shared and b"".join(parts) == b"1\n2+ref\nerr\n3\n"
    views = [x for x in parts if type(x) is memoryview]
    assert views and all(v.obj is blob for v in views), "no copy of the shared frames"


@given(st.lists(st.tuples(st.sampled_from(["add", "say", "ack", "uni"]), st.integers(0, 3)), max_size=30))
def test_views_and_copies_give_the_same_bytes(ops):
    from server.core import room as room_mod
    results = []
    for view_min in (0, 1 << 30):
        old, room_mod.VIEW_MIN = room_mod.VIEW_MIN, view_min
        try:
            room = Room("lobby")
            people = [object() for _ in range(4)]
            room.add(people[0])
            for n, (op, who) in enumerate(ops):
                m = people[who]
                if op == "add" and m not in room:
                    room.add(m)
                elif op == "say":
                    room.broadcast(b"m%d\n" % n)
                elif op == "ack":
                    room.broadcast(b"m%d\n" % n, sender=m, sender_data=b"m%d+ref\n" % n)
                elif op == "uni" and m in room:
                    room.unicast(m, b"u%d\n" % n)
            results.append({people.index(k): v for k, v in sealed(room).items()})
        finally:
            room_mod.VIEW_MIN = old
    assert results[0] == results[1]
