"""Roles and mod actions over real sockets: every role against every action
(a table), kick and ban (the ban holds the identity across a new nick),
timed mutes and bans that expire, the errors, flood control."""
from __future__ import annotations

import itertools
import time

import pytest

from server import protocol as p
from tests.moderationtools import Person, fp, reply, secret, sync, until
from tests.servertools import wait_until

pytestmark = pytest.mark.timeout(60)

RANK = {"member": 0, "voice": 1, "op": 2, "owner": 3}
# The rule of DESIGN-11 section 2, written out on its own: op/deop need the
# owner, the rest an op; nobody acts on an equal or higher rank.
NEED = {"kick": 2, "ban": 2, "mute": 2, "unmute": 2, "voice": 2, "devoice": 2, "op": 3, "deop": 3}

ACTORS = {"adm": "owner", "own": "owner", "op1": "op", "vo1": "voice", "me1": "member", "noid": "member"}
TARGETS = {"own": "owner", "op2": "op", "vo2": "voice", "me2": "member"}
_rooms = itertools.count(1)


@pytest.fixture
def school(make_server):
    srv = make_server(rate_limit=0, admin_identities=(fp("adm"),), max_rooms_per_client=1000)
    people = {n: Person(srv, n, identity=n != "noid")
              for n in ("own", "adm", "op1", "op2", "vo1", "vo2", "me1", "me2", "noid")}
    yield srv, people
    for person in people.values():
        person.close()


def classroom(people) -> str:
    """A new room: own creates it, everyone joins, op1/op2 are ops, vo1/vo2 have a voice."""
    room = f"class{next(_rooms)}"
    people["own"].join(room)
    for n, person in people.items():
        if n != "own":
            person.join(room)
    for action, nick in (("op", "op1"), ("op", "op2"), ("voice", "vo1"), ("voice", "vo2")):
        assert people["own"].mod(room, action, nick)["type"] == "moderated"
    return room


def roles_now(people, room) -> tuple[dict, list]:
    f = people["own"].join(room)          # already in: its room frame again
    return f["roles"], f["users"]


def empty(people, room) -> None:
    for person in people.values():
        person.part(room)                 # reads everything up to its own left (or not_in_room)


@pytest.mark.parametrize("actor", list(ACTORS))
def test_every_role_against_every_action(school, actor):
    srv, people = school
    for action, target in itertools.product(NEED, TARGETS):
        room = classroom(people)
        before = roles_now(people, room)
        assert before[0] == {"adm": "owner", "own": "owner", "op1": "op", "op2": "op", "vo1": "voice",
                             "vo2": "voice"}
        rank, target_rank = RANK[ACTORS[actor]], RANK[TARGETS[target]]
        if actor == target:                  # on oneself: only deop and devoice
            allowed = action in ("deop", "devoice")
        else:
            allowed = rank >= NEED[action] and target_rank < rank
        f = people[actor].mod(room, action, target)
        case = f"{actor} ({ACTORS[actor]}) {action} {target} ({TARGETS[target]})"
        if allowed:
            assert f["type"] == "moderated" and (f["action"], f["nick"], f["by"]) == (action, target, actor), case
            roles, users = roles_now(people, room)
            if action in ("kick", "ban"):
                assert target not in users, case
            elif action in ("op", "voice"):      # a voice never lowers an op
                assert roles[target] == max(action, TARGETS[target], key=RANK.get), case
            elif (action, TARGETS[target]) in (("deop", "op"), ("deop", "owner"), ("devoice", "voice")):
                assert target not in roles, case
            else:                                # a deop of a voice, a devoice of an op: no change
                assert roles == before[0], case
        else:
            assert (f["type"], f.get("code")) == ("error", p.FORBIDDEN), case
            assert f["message"].endswith("."), case
            assert roles_now(people, room) == before, case      # nothing changed
            if action == "mute":
                assert people[target].say(room, "still here")["type"] == "message", case
        empty(people, room)


@pytest.mark.parametrize("actor", list(ACTORS))
def test_unban_needs_an_op(school, actor):
    srv, people = school
    room = classroom(people)
    assert people["own"].mod(room, "ban", "me2")["type"] == "moderated"
    f = people[actor].mod(room, "unban", "me2")
    if RANK[ACTORS[actor]] >= 2:
        assert (f["type"], f["action"], f["nick"]) == ("moderated", "unban", "me2")
        assert people["me2"].join(room)["room"] == room
    else:
        assert f["code"] == p.FORBIDDEN
        assert people["me2"].ask({"type": "join", "room": room})["code"] == p.BANNED


@pytest.mark.parametrize("who, action, ok", [("op1", "deop", True), ("vo1", "devoice", True),
                                              ("op1", "kick", False), ("own", "ban", False),
                                              ("me1", "deop", False), ("op1", "mute", False)])
def test_on_oneself_only_deop_and_devoice(school, who, action, ok):
    srv, people = school
    room = classroom(people)
    f = people[who].mod(room, action, who)
    assert (f["type"] == "moderated") is ok, f
    if ok:
        assert who not in roles_now(people, room)[0]


def test_a_kick_tells_the_room_and_takes_the_member_out(make_server):
    srv = make_server(rate_limit=0)
    teacher, bob, ann = (Person(srv, n) for n in ("teacher", "bob", "ann"))
    teacher.join("maths")
    bob.join("maths")
    ann.join("maths")
    f = teacher.mod("maths", "kick", "bob", reason="shouting")
    assert {k: f[k] for k in ("room", "action", "nick", "by", "reason", "until")} == \
        {"room": "maths", "action": "kick", "nick": "bob", "by": "teacher", "reason": "shouting", "until": None}
    assert type(f["id"]) is int and type(f["ts"]) is float
    for person in (bob, ann):
        m = until(person.c, lambda x: x["type"] == "moderated")
        assert m["id"] == f["id"] and "ref" not in m
        left = until(person.c, lambda x: x["type"] == "left")
        assert left == {"type": "left", "room": "maths", "nick": "bob", "reason": "kick", "by": "teacher",
                        "note": "shouting"}
    assert bob.say("maths", "hello?")["code"] == p.NOT_IN_ROOM
    assert bob.join("maths")["room"] == "maths"          # a kick is not a ban


def test_a_ban_holds_the_identity_across_a_new_nick(make_server):
    srv = make_server(rate_limit=0)
    teacher, bob = Person(srv, "teacher"), Person(srv, "bob")
    teacher.join("maths")
    bob.join("maths")
    f = teacher.mod("maths", "ban", "bob", reason="spam")
    assert (f["action"], f["until"]) == ("ban", None)
    assert until(bob.c, lambda x: x["type"] == "left")["reason"] == "ban"
    bob.close()
    wait_until(lambda: "bob" not in srv.hub.chat.nicks, what="bob to be gone")
    bobby = Person(srv, "bobby", identity=secret("bob"))
    e = bobby.ask({"type": "join", "room": "maths"})
    assert (e["type"], e["code"], e["room"], e["reason"], e["until"]) == ("error", p.BANNED, "maths", "spam", None)
    assert "banned from #maths" in e["message"]
    assert bobby.join("other")["room"] == "other"          # one room's ban only


def test_a_ban_without_identity_holds_the_nick(make_server):
    srv = make_server(rate_limit=0)
    teacher, bob = Person(srv, "teacher"), Person(srv, "bob", identity=False)
    teacher.join("maths")
    bob.join("maths")
    teacher.mod("maths", "ban", "bob")
    until(bob.c, lambda x: x["type"] == "left")
    assert bob.ask({"type": "join", "room": "maths"})["code"] == p.BANNED


def test_a_ban_survives_a_restart_and_the_resumed_session_is_kept_out(make_server, tmp_path):
    db = str(tmp_path / "bans.db")
    srv = make_server(rate_limit=0, db=db)
    teacher, bob = Person(srv, "teacher"), Person(srv, "bob")
    teacher.join("maths")
    bob.join("maths")
    teacher.mod("maths", "ban", "bob")
    teacher.close()
    bob.close()
    srv.shutdown()
    srv2 = make_server(rate_limit=0, db=db)
    bob = Person(srv2, "bob")
    assert bob.ask({"type": "join", "room": "maths"})["code"] == p.BANNED
    teacher = Person(srv2, "teacher")
    assert teacher.join("maths")["role"] == "owner"       # roles survive too


def test_a_timed_mute_expires_and_the_room_is_told(make_server):
    srv = make_server(rate_limit=0)
    teacher, bob = Person(srv, "teacher"), Person(srv, "bob")
    teacher.join("maths")
    bob.join("maths")
    now = time.time()
    srv.hub.chat.clock = lambda: now
    f = teacher.mod("maths", "mute", "bob", duration=300)
    assert f["until"] == pytest.approx(now + 300, abs=0.01)
    e = bob.say("maths", "let me speak")
    assert (e["code"], e["until"]) == (p.MUTED, f["until"])
    assert e["message"] == "You are muted in #maths for 5 more minutes."
    srv.hub.chat.clock = lambda: now + 301            # the hub's timer notices on its own
    m = until(teacher.c, lambda x: x["type"] == "moderated" and x["action"] == "unmute")
    assert (m["nick"], m["by"], m["reason"]) == ("bob", None, "expired")
    assert until(bob.c, lambda x: x["type"] == "moderated")["id"] == m["id"]
    assert bob.say("maths", "thanks")["type"] == "message"


def test_a_timed_ban_expires_on_use_too(make_server):
    srv = make_server(rate_limit=0)
    teacher, bob = Person(srv, "teacher"), Person(srv, "bob")
    teacher.join("maths")
    bob.join("maths")
    now = time.time()
    srv.hub.chat.clock = lambda: now
    teacher.mod("maths", "ban", "bob", duration=60)
    until(bob.c, lambda x: x["type"] == "left")
    e = bob.ask({"type": "join", "room": "maths"})
    assert e["code"] == p.BANNED and "for 60 more seconds" in e["message"]
    srv.hub.chat.clock = lambda: now + 61
    assert bob.join("maths")["room"] == "maths"
    m = until(teacher.c, lambda x: x["type"] == "moderated" and x["action"] == "unban")
    assert m["reason"] == "expired"


def test_unmute_and_unban_by_an_op(make_server):
    srv = make_server(rate_limit=0)
    teacher, bob = Person(srv, "teacher"), Person(srv, "bob")
    teacher.join("maths")
    bob.join("maths")
    teacher.mod("maths", "mute", "bob")
    assert bob.say("maths", "x")["code"] == p.MUTED
    assert teacher.mod("maths", "unmute", "bob")["action"] == "unmute"
    assert bob.say("maths", "y")["type"] == "message"
    teacher.mod("maths", "ban", "bob")
    f = teacher.mod("maths", "unban", "bob")                # bob is not in the room: allowed for unban
    assert (f["action"], f["nick"]) == ("unban", "bob")
    assert bob.join("maths")["room"] == "maths"


def test_the_errors_of_mod(make_server):
    srv = make_server(rate_limit=0)
    teacher, noid = Person(srv, "teacher"), Person(srv, "noid", identity=False)
    teacher.join("maths")
    noid.join("maths")
    f = teacher.mod("maths", "kick", "ghost")
    assert (f["code"], f["message"]) == (p.NOT_IN_ROOM, "ghost is not in #maths.")
    f = teacher.mod("maths", "op", "noid")
    assert f["code"] == p.NO_IDENTITY and "no identity" in f["message"]
    assert teacher.mod("maths", "voice", "noid")["code"] == p.NO_IDENTITY
    assert teacher.mod("maths", "mute", "noid")["type"] == "moderated"    # a member without identity can be muted
    f = teacher.mod("maths", "zap", "noid")
    assert f["code"] == p.BAD_MOD and "kick" in f["message"]
    assert teacher.ask({"type": "mod", "room": "maths", "action": "kick"})["code"] == p.BAD_MOD
    assert teacher.mod("maths", "unban", "nobody")["code"] == p.BAD_MOD
    assert teacher.mod("maths", "kick", "noid", duration=5)["code"] == p.BAD_MOD
    assert teacher.mod("elsewhere", "kick", "noid")["code"] == p.NOT_IN_ROOM
    sync(noid.c)


def test_a_room_frame_names_the_roles_and_the_joiners_own(make_server):
    srv = make_server(rate_limit=0)
    teacher, helper, bob = Person(srv, "teacher"), Person(srv, "helper"), Person(srv, "bob")
    assert teacher.join("maths")["role"] == "owner"
    helper.join("maths")
    teacher.mod("maths", "op", "helper")
    f = bob.join("maths")
    assert (f["role"], f["roles"], f["users"]) == ("member", {"helper": "op", "teacher": "owner"},
                                                   ["bob", "helper", "teacher"])
    assert bob.join("lobby")["roles"] == {}                # the lobby has no owner but the admins


def test_a_flood_of_mod_actions_is_slowed_like_messages(make_server):
    srv = make_server(rate_limit=2, rate_burst=2)
    teacher = Person(srv, "teacher")
    teacher.join("maths")
    start = time.monotonic()
    for _ in range(6):
        teacher.c.send({"type": "mod", "room": "maths", "action": "kick", "nick": "ghost"})
    frames = []
    while sum(f.get("code") == p.NOT_IN_ROOM for f in frames) < 6:
        frames.append(teacher.c.recv())
    notices = [f for f in frames if f.get("code") == p.RATE_LIMITED]
    assert len(notices) == 1 and "delayed, not dropped" in notices[0]["message"]
    assert time.monotonic() - start >= 1.0     # the join and 6 mods, a burst of 2 then 2 a second


def test_a_resumed_session_does_not_bring_a_banned_member_back(make_server):
    from tests.netclient import LineClient
    from tests.servertools import hello_v2
    srv = make_server(rate_limit=0)
    teacher = Person(srv, "teacher")
    teacher.join("maths")
    bob = Person(srv, "bob")                 # bob's first session: in maths and art
    bob.join("maths")
    bob.join("art")
    token = bob.welcome["session"]
    bob.close()
    wait_until(lambda: "bob" not in srv.hub.chat.nicks, what="bob to be gone")
    again = Person(srv, "bob")               # the same identity, a new session, banned there
    again.join("maths")
    teacher.mod("maths", "ban", "bob")
    until(again.c, lambda x: x["type"] == "left" and x["nick"] == "bob")
    again.close()
    wait_until(lambda: "bob" not in srv.hub.chat.nicks, what="bob to be gone")
    c = LineClient(srv.port)
    got = hello_v2(c, "bob", identity=secret("bob"), resume=token)
    assert got["welcome"]["rooms"] == ["lobby", "art"]       # not maths, which the old session was in
    c.close()
