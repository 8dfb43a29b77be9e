"""Room: the per-pass queue of frames, without sockets."""
from __future__ import annotations

from server.room import Room


def sealed(room: Room) -> dict:
    return dict(room.seal())


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
