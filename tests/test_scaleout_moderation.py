"""Moderation across the nodes of a deployment (docs/scaling.md): a ban,
mute, role, kick or mode made on one node is enforced on every node at
once, without a restart, and a ``mod`` names a member connected to another
node. Real sockets, nodes in this process sharing one real redis-server.

A node applies an event when its reader hands it over; the tests wait for
that (a frame the event sends, or the node's ``last_id`` reaching the
event's id), with deadlines.
"""
from __future__ import annotations

import json
import time

import pytest

from server import protocol as p
from server.core.moderation_state import ModerationState
from tests.moderationtools import Person, fp, secret, until
from tests.servertools import wait_until

pytestmark = pytest.mark.timeout(60)


def applied(event_id: int, *nodes) -> None:
    """Every node's hub has applied the log up to event_id."""
    wait_until(lambda: all(n.history.last_id >= event_id for n in nodes), timeout=10,
               what=f"the nodes to apply id {event_id}")


def moderated(person: Person, action: str, nick: str | None = None) -> dict:
    return until(person.c, lambda f: f["type"] == "moderated" and f["action"] == action
                 and (nick is None or f["nick"] == nick), timeout=10)


def gone(node, nick: str) -> None:
    wait_until(lambda: p.nick_key(nick) not in node.hub.chat.nicks and node.history.online_holder(
        p.nick_key(nick)) is None, timeout=10, what=f"{nick} to leave")


def mod_events(url: str, room: str) -> list[dict]:
    """The extra of every moderated event of room in the stream, in order."""
    import redis
    db = redis.Redis.from_url(url)
    try:
        out = []
        for _id, fields in db.xrange("natter:log"):
            f = {k.decode(): v.decode() for k, v in fields.items()}
            if f.get("kind") == "moderated" and f.get("room") == room:
                out.append(json.loads(f["extra"]))
        return out
    finally:
        db.close()


@pytest.fixture
def three(make_node):
    nodes = [make_node() for _ in range(3)]
    people: list[Person] = []

    def person(node, nick, **kw) -> Person:
        people.append(Person(node, nick, **kw))
        return people[-1]
    yield nodes, person
    for x in people:
        x.close()


def test_a_ban_on_one_node_takes_the_member_out_on_another_and_keeps_it_out_everywhere(three):
    (a, b, c), person = three
    teacher, bob, ann = person(a, "teacher"), person(b, "bob"), person(c, "ann")
    teacher.join("maths")
    bob.join("maths")
    ann.join("maths")
    f = teacher.mod("maths", "ban", "bob", reason="spam")       # bob is on node b
    assert (f["type"], f["action"], f["nick"], f["by"], f["reason"]) == ("moderated", "ban", "bob", "teacher", "spam")
    assert moderated(bob, "ban")["id"] == f["id"]
    left = until(bob.c, lambda x: x["type"] == "left")
    assert left == {"type": "left", "room": "maths", "nick": "bob", "reason": "ban", "by": "teacher", "note": "spam"}
    assert moderated(ann, "ban")["id"] == f["id"]
    assert bob.say("maths", "still here?")["code"] == p.NOT_IN_ROOM
    e = bob.ask({"type": "join", "room": "maths"})
    assert (e["code"], e["reason"]) == (p.BANNED, "spam")      # on b, at once
    bob.close()
    gone(b, "bob")
    applied(f["id"], c)
    bobby = person(c, "bobby", identity=secret("bob"))          # a new nick on node c: the identity is banned
    assert bobby.ask({"type": "join", "room": "maths"})["code"] == p.BANNED
    assert bobby.join("other")["room"] == "other"


def test_a_ban_on_one_node_keeps_out_a_member_without_identity_on_another(three):
    (a, b, _c), person = three
    teacher, noid = person(a, "teacher"), person(b, "noid", identity=False)
    teacher.join("maths")
    noid.join("maths")
    assert teacher.mod("maths", "ban", "noid")["type"] == "moderated"
    assert until(noid.c, lambda x: x["type"] == "left")["reason"] == "ban"
    assert noid.ask({"type": "join", "room": "maths"})["code"] == p.BANNED


def test_a_node_started_later_keeps_the_ban_and_the_roles(three, make_node):
    (a, b, _c), person = three
    own, opal, bob = person(a, "own"), person(b, "opal"), person(b, "bob")
    for x in (own, opal, bob):
        x.join("maths")
    own.mod("maths", "op", "opal")
    f = own.mod("maths", "ban", "bob")
    applied(f["id"], a, b)
    bob.close()
    opal.close()
    gone(b, "bob")
    gone(b, "opal")
    late = make_node()
    assert person(late, "bob").ask({"type": "join", "room": "maths"})["code"] == p.BANNED
    assert person(late, "opal").join("maths")["role"] == "op"


def test_a_role_for_a_member_without_identity_on_another_node_is_refused(three):
    (a, b, _c), person = three
    teacher, noid = person(a, "teacher"), person(b, "noid", identity=False)
    teacher.join("maths")
    noid.join("maths")
    assert teacher.mod("maths", "op", "noid")["code"] == p.NO_IDENTITY   # the registry says it has none
    assert teacher.mod("maths", "mute", "noid")["type"] == "moderated"
    moderated(noid, "mute")                          # node b has applied it
    assert noid.say("maths", "x")["code"] == p.MUTED


def test_a_mute_on_one_node_silences_the_member_on_another_until_unmuted(three):
    (a, b, c), person = three
    teacher, bob = person(a, "teacher"), person(b, "bob")
    teacher.join("maths")
    bob.join("maths")
    f = teacher.mod("maths", "mute", "bob", duration=600)
    assert moderated(bob, "mute")["until"] == f["until"]
    e = bob.say("maths", "let me speak")
    assert (e["code"], e["until"]) == (p.MUTED, f["until"])
    assert "muted in #maths" in e["message"]
    g = teacher.mod("maths", "unmute", "bob")
    assert moderated(bob, "unmute")["id"] == g["id"]
    assert bob.say("maths", "thanks")["type"] == "message"
    applied(g["id"], a, b, c)
    assert all(not n.hub.chat.mod_of("maths").mutes for n in (a, b, c))


def test_a_role_given_on_one_node_lets_that_person_moderate_on_another(three):
    (a, b, c), person = three
    own, opal, carl = person(a, "own"), person(b, "opal"), person(c, "carl")
    own.join("maths")
    opal.join("maths")
    carl.join("maths")
    f = own.mod("maths", "op", "opal")
    assert (f["type"], f["action"]) == ("moderated", "op")
    moderated(opal, "op")
    assert opal.join("maths")["role"] == "op"           # its room frame on b says so
    k = opal.mod("maths", "kick", "carl", reason="noise")  # an op made on a, acting on b, on a member on c
    assert (k["type"], k["by"]) == ("moderated", "opal")
    assert moderated(carl, "kick")["id"] == k["id"]
    left = until(carl.c, lambda x: x["type"] == "left")
    assert (left["reason"], left["by"], left["note"]) == ("kick", "opal", "noise")
    assert carl.join("maths")["room"] == "maths"         # a kick is not a ban
    assert opal.mod("maths", "kick", "own")["code"] == p.FORBIDDEN   # the owner's rank is known on b too
    d = own.mod("maths", "deop", "opal")
    moderated(opal, "deop")
    assert opal.join("maths")["role"] == "member"
    assert opal.mod("maths", "kick", "carl")["code"] == p.FORBIDDEN
    applied(d["id"], a, b, c)
    assert all(fp("opal") not in n.hub.chat.mod_of("maths").roles for n in (a, b, c))


def test_modes_set_on_one_node_are_enforced_on_another(three):
    (a, b, c), person = three
    teacher, bob, carl = person(a, "teacher"), person(b, "bob"), person(c, "carl")
    teacher.join("maths")
    bob.join("maths")
    m = teacher.mode("maths", moderated=True)
    assert (m["type"], m["modes"]["moderated"]) == ("mode", True)
    assert until(bob.c, lambda x: x["type"] == "mode")["id"] == m["id"]
    e = bob.say("maths", "may I?")
    assert e["code"] == p.FORBIDDEN and "moderated" in e["message"]
    teacher.mod("maths", "voice", "bob")
    moderated(bob, "voice")
    assert bob.say("maths", "now I may")["type"] == "message"
    k = teacher.mode("maths", key="sesame")
    applied(k["id"], c)
    assert carl.ask({"type": "join", "room": "maths"})["code"] == p.BAD_KEY
    assert carl.join("maths", key="sesame")["modes"]["moderated"] is True
    assert carl.say("maths", "hi")["code"] == p.FORBIDDEN
    off = teacher.mode("maths", moderated=False, key="")
    applied(off["id"], c)
    assert carl.say("maths", "hi")["type"] == "message"


def test_private_messages_off_in_a_room_hold_across_nodes(three):
    (a, b, c), person = three
    teacher, bob, ann = person(a, "teacher"), person(b, "bob"), person(c, "ann")
    for x in (teacher, bob, ann):
        x.join("maths")
    m = teacher.mode("maths", dm=False)
    applied(m["id"], b)
    e = bob.ask({"type": "dm", "to": "ann", "text": "psst"})
    assert e["code"] == p.FORBIDDEN and "Private messages" in e["message"]
    assert bob.ask({"type": "dm", "to": "teacher", "text": "a question"})["type"] == "dm"   # to an op: allowed


def test_an_unban_on_one_node_lets_the_member_back_on_every_node(three):
    (a, b, c), person = three
    teacher, bob = person(a, "teacher"), person(b, "bob")
    teacher.join("maths")
    bob.join("maths")
    teacher.mod("maths", "ban", "bob")
    until(bob.c, lambda x: x["type"] == "left")
    assert bob.ask({"type": "join", "room": "maths"})["code"] == p.BANNED
    u = teacher.mod("maths", "unban", "bob")            # bob is in no room: unban names the ban's nick
    assert (u["type"], u["action"]) == ("moderated", "unban")
    applied(u["id"], b, c)
    assert bob.join("maths")["room"] == "maths"          # on b
    bob.close()
    gone(b, "bob")
    assert person(c, "bob").join("maths")["room"] == "maths"   # and on c


def test_a_mod_names_a_member_on_another_node_but_not_one_outside_the_room(three):
    (a, b, c), person = three
    teacher, bob = person(a, "teacher"), person(b, "bob")
    dan = person(c, "dan")                               # online, in no room of the teacher's
    teacher.join("maths")
    bob.join("maths")
    assert dan.join("other")["room"] == "other"
    for nick in ("dan", "ghost"):
        f = teacher.mod("maths", "kick", nick)
        assert (f["code"], f["message"]) == (p.NOT_IN_ROOM, f"{nick} is not in #maths.")
    f = teacher.mod("maths", "kick", "bob")
    assert f["type"] == "moderated"
    until(bob.c, lambda x: x["type"] == "left")
    assert teacher.mod("maths", "kick", "bob")["code"] == p.NOT_IN_ROOM     # out now, on every node's record


def test_a_member_banned_on_its_own_node_gets_the_moderated_frame_too(three):
    (a, _b, _c), person = three
    teacher, bob = person(a, "teacher"), person(a, "bob")
    teacher.join("maths")
    bob.join("maths")
    f = teacher.mod("maths", "ban", "bob", reason="spam")
    assert until(bob.c, lambda x: x["type"] == "left")["reason"] == "ban"    # at once, on its node
    m = moderated(bob, "ban")                                                 # then from the log
    assert (m["id"], m["reason"], "ref" in m) == (f["id"], "spam", False)


def test_the_origin_does_not_apply_its_own_kick_again_when_it_reads_it_back(three):
    (a, b, _c), person = three
    teacher, bob = person(a, "teacher"), person(a, "bob")
    teacher.join("maths")
    bob.join("maths")
    f = teacher.mod("maths", "kick", "bob")
    until(bob.c, lambda x: x["type"] == "left")
    assert bob.join("maths")["room"] == "maths"          # back at once, perhaps before node a read the kick back
    s = bob.say("maths", "back")                         # its ack comes from the log, after the kick
    assert s["type"] == "message" and s["id"] > f["id"]
    assert bob.say("maths", "still in")["type"] == "message"
    assert p.nick_key("bob") in {x.key for x in a.hub.chat.rooms["maths"].people}


def test_two_actions_with_one_ref_are_both_carried_out(three):
    """A door may use one ref for many actions (IRC's ``KICK #room``): the
    second is not taken for a retry of the first."""
    (a, b, _c), person = three
    teacher, bob = person(a, "teacher"), person(b, "bob")
    teacher.join("maths")
    for n in (1, 2):
        bob.join("maths")
        teacher.c.send({"type": "mod", "room": "maths", "action": "kick", "nick": "bob", "ref": "KICK #maths"})
        f = until(teacher.c, lambda x: x.get("ref") == "KICK #maths")
        assert (f["type"], f["action"]) == ("moderated", "kick"), n
        until(bob.c, lambda x: x["type"] == "left")
    teacher.c.send({"type": "mode", "room": "maths", "moderated": True, "ref": "MODE #maths"})
    assert until(teacher.c, lambda x: x.get("ref") == "MODE #maths")["modes"]["moderated"] is True
    teacher.c.send({"type": "mode", "room": "maths", "moderated": False, "ref": "MODE #maths"})
    assert until(teacher.c, lambda x: x.get("ref") == "MODE #maths")["modes"]["moderated"] is False


def test_the_audit_trail_is_the_same_on_every_node(three):
    (a, b, c), person = three
    own, op_b, op_c, bob = person(a, "own"), person(b, "opb"), person(c, "opc"), person(b, "bob")
    for x in (own, op_b, op_c, bob):
        x.join("maths")
    own.mod("maths", "op", "opb")
    own.mod("maths", "op", "opc")
    moderated(op_b, "op", "opb")
    moderated(op_c, "op", "opc")
    assert op_b.mod("maths", "mute", "bob", reason="loud")["type"] == "moderated"   # on b
    assert op_c.mod("maths", "unmute", "bob")["type"] == "moderated"                # on c, of b's member
    last = op_c.mode("maths", slow=5)
    applied(last["id"], a, b, c)
    trails = [x.ask({"type": "audit", "room": "maths"})["entries"] for x in (own, op_b, op_c)]
    assert trails[0] == trails[1] == trails[2]
    assert [(e["action"], e["by"], e["nick"]) for e in trails[0]] == [
        ("op", "own", "opb"), ("op", "own", "opc"), ("mute", "opb", "bob"), ("unmute", "opc", "bob"),
        ("mode", "opc", None)]


def test_the_owner_of_a_room_made_on_one_node_is_its_owner_on_another(three):
    (a, b, _c), person = three
    own = person(a, "own")
    own.join("late")                                     # made after b started
    own.close()
    gone(a, "own")
    again = person(b, "own")
    f = again.join("late")
    assert f["role"] == "owner"
    assert again.mode("late", slow=3)["type"] == "mode"


@pytest.mark.timeout(90)
def test_a_timed_mute_expires_once_for_the_deployment(three, redis_server):
    nodes, person = three
    a, b, _c = nodes
    teacher, bob = person(a, "teacher"), person(b, "bob")
    teacher.join("maths")
    bob.join("maths")
    now = time.time()
    for n in nodes:
        n.hub.chat.clock = lambda: now
    f = teacher.mod("maths", "mute", "bob", duration=300)
    applied(f["id"], *nodes)
    assert bob.say("maths", "x")["code"] == p.MUTED
    for n in nodes:                                      # every node's timer finds it expired
        n.hub.chat.clock = lambda: now + 301
    m = moderated(bob, "unmute")
    assert (m["by"], m["reason"]) == (None, "expired")
    applied(m["id"], *nodes)
    wait_until(lambda: all(not n.hub.chat.mod_of("maths").mutes for n in nodes), what="every node to lift it")
    assert bob.say("maths", "thanks")["type"] == "message"
    assert [e["action"] for e in mod_events(redis_server.url, "maths")] == ["mute", "unmute"]


def test_an_expiry_appended_by_two_nodes_is_one_event(make_node, redis_server):
    from server.core.moderation import SERVER_SESSION
    one, two = make_node(), make_node()
    extra = {"action": "unmute", "nick": "bob", "by": None, "reason": "expired", "until": None, "who": "x"}
    ref = "unmute:maths:x:123.0"
    first = one.history.add_event("moderated", "maths", "", "expired", SERVER_SESSION, extra, ref=ref)[0]
    second = two.history.add_event("moderated", "maths", "", "expired", SERVER_SESSION, extra, ref=ref)[0]
    assert first == second
    assert len(mod_events(redis_server.url, "maths")) == 1


# -- the order of applying (no network) -------------------------------------------


class _Room:
    def __init__(self, key):
        self.key, self.name, self.people = key, key, {}
        self.record = type("R", (), {"key_hash": None})()


class _State(ModerationState):
    """ModerationState alone, with nothing connected."""

    def __init__(self):
        self.mod, self.by_session = {}, {}


def _ban(w, until=None):
    return {"action": "ban", "nick": "bob", "by": "t", "reason": None, "until": until, "who": w, "session": 7}


def test_applying_events_twice_or_out_of_order_ends_in_the_streams_order():
    room = _Room("maths")
    stream = [(10, _ban("fp1")), (11, {"action": "unban", "nick": "bob", "who": "fp1"}),
              (12, {"action": "op", "nick": "ann", "fp": "fp2", "role": "op"}), (13, _ban("fp1", 99.0)),
              (14, {"action": "deop", "nick": "ann", "fp": "fp2", "role": None})]
    in_order = _State()
    for i, extra in stream:
        in_order.apply_moderated(room, i, extra)
    # The origin applied 13 and 14 first, then read everything back; and 11 came twice.
    shuffled = _State()
    for i, extra in [stream[3], stream[4]] + stream + [stream[1]]:
        shuffled.apply_moderated(room, i, extra)
    for s in (in_order, shuffled):
        state = s.mod_of("maths")
        assert state.bans["fp1"].until == 99.0 and state.roles == {}
    modes = _State()
    modes.apply_mode(room, 21, {"slow": 5}, None)                   # its own, before reading 20
    modes.apply_mode(room, 20, {"moderated": True, "slow": 0}, None)
    modes.apply_mode(room, 21, {"slow": 5}, None)
    assert (modes.mod_of("maths").modes["moderated"], modes.mod_of("maths").modes["slow"]) == (True, 5)


def test_an_event_without_what_applying_needs_changes_nothing():
    room, s = _Room("maths"), _State()
    s.apply_moderated(room, 5, {"action": "ban", "nick": "bob", "by": "t", "reason": None, "until": None})
    assert s.mod_of("maths").bans == {}
