"""Room modes over real sockets: moderated, announce, slow (retry_after),
private messages off, the key, questions and their release (live, in
catch-up and in history), and modes kept across a restart."""
from __future__ import annotations

import time

import pytest

from server import protocol as p
from tests.moderationtools import Person, reply, sync, until
from tests.servertools import hello_v2

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def lesson(make_server):
    """teacher owns maths; helper is an op, vee has a voice, ann and bob are members."""
    srv = make_server(rate_limit=0)
    people = {n: Person(srv, n) for n in ("teacher", "helper", "vee", "ann", "bob")}
    people["teacher"].join("maths")
    for n in ("helper", "vee", "ann", "bob"):
        people[n].join("maths")
    people["teacher"].mod("maths", "op", "helper")
    people["teacher"].mod("maths", "voice", "vee")
    for person in people.values():
        sync(person.c)
    yield srv, people
    for person in people.values():
        person.close()


def test_a_mode_change_is_told_to_the_room_with_all_the_modes(lesson):
    srv, ppl = lesson
    f = ppl["teacher"].mode("maths", moderated=True)
    assert {k: f[k] for k in ("type", "room", "moderated", "by")} == \
        {"type": "mode", "room": "maths", "moderated": True, "by": "teacher"}
    assert f["modes"] == {"moderated": True, "questions": False, "announce": False, "slow": 0, "dm": True,
                          "key": False}
    assert type(f["id"]) is int and "slow" not in f
    m = until(ppl["ann"].c, lambda x: x["type"] == "mode")
    assert m["id"] == f["id"] and "ref" not in m
    assert ppl["bob"].join("maths")["modes"]["moderated"] is True


def test_moderated_lets_only_voice_and_up_speak(lesson):
    srv, ppl = lesson
    ppl["helper"].mode("maths", moderated=True)
    e = ppl["ann"].say("maths", "may I?")
    assert (e["type"], e["code"]) == ("error", p.FORBIDDEN) and "moderated" in e["message"]
    for n in ("vee", "helper", "teacher"):
        assert ppl[n].say("maths", f"{n} speaks")["type"] == "message"
    ppl["teacher"].mod("maths", "voice", "ann")
    assert ppl["ann"].say("maths", "now I may")["type"] == "message"


def test_announce_lets_only_ops_speak_and_hides_joins_and_leaves(lesson, make_server):
    srv, ppl = lesson
    ppl["teacher"].mode("maths", announce=True)
    assert ppl["vee"].say("maths", "x")["code"] == p.FORBIDDEN
    assert ppl["helper"].say("maths", "notice")["type"] == "message"
    for person in ppl.values():
        sync(person.c)
    cid = Person(srv, "cid")
    assert cid.join("maths")["room"] == "maths"
    joined = until(cid.c, lambda x: x["type"] == "joined")
    assert joined["nick"] == "cid"                                      # its own
    assert until(ppl["teacher"].c, lambda x: x["type"] == "joined")["nick"] == "cid"   # the ops see it
    cid.part("maths")
    assert until(ppl["helper"].c, lambda x: x["type"] == "left")["nick"] == "cid"
    sync(ppl["ann"].c)
    assert not [f for f in ppl["ann"].c.frames if f["type"] in ("joined", "left") and f.get("nick") == "cid"
                and f["room"] == "maths"]
    assert [f["room"] for f in ppl["ann"].c.frames if f["type"] == "joined" and f["nick"] == "cid"] == ["lobby"]


def test_slow_mode_allows_one_message_per_member_per_period(lesson):
    srv, ppl = lesson
    now = time.time()
    srv.hub.chat.clock = lambda: now
    ppl["teacher"].mode("maths", slow=30)
    assert ppl["ann"].say("maths", "first")["type"] == "message"
    e = ppl["ann"].say("maths", "second")
    assert (e["code"], e["retry_after"], e["room"]) == (p.SLOW_MODE, 30, "maths")
    assert "wait 30 s" in e["message"]
    srv.hub.chat.clock = lambda: now + 20
    assert ppl["ann"].say("maths", "third")["retry_after"] == 10
    assert ppl["bob"].say("maths", "bob's own")["type"] == "message"     # per member
    assert ppl["vee"].say("maths", "v1")["type"] == ppl["vee"].say("maths", "v2")["type"] == "message"
    srv.hub.chat.clock = lambda: now + 31
    assert ppl["ann"].say("maths", "fourth")["type"] == "message"


def test_private_messages_off_between_members_ops_exempt(lesson):
    srv, ppl = lesson
    ppl["teacher"].mode("maths", dm=False)
    e = ppl["ann"].ask({"type": "dm", "to": "bob", "text": "psst"})
    assert (e["code"], e["message"]) == (p.FORBIDDEN, "Private messages between members of #maths are off.")
    assert ppl["ann"].ask({"type": "dm", "to": "teacher", "text": "help"})["type"] == "dm"
    assert ppl["helper"].ask({"type": "dm", "to": "bob", "text": "ok?"})["type"] == "dm"
    ppl["bob"].part("maths")
    assert ppl["ann"].ask({"type": "dm", "to": "bob", "text": "outside"})["type"] == "dm"   # no room shared


def test_the_key_mode_sets_and_clears_the_rooms_key(lesson, make_server):
    srv, ppl = lesson
    f = ppl["teacher"].mode("maths", key="s3cret")
    assert f["key"] is True and f["modes"]["key"] is True
    cid = Person(srv, "cid")
    assert cid.ask({"type": "join", "room": "maths"})["code"] == p.BAD_KEY
    assert cid.join("maths", key="s3cret")["key"] is True
    assert ppl["teacher"].mode("maths", key="")["key"] is False
    assert Person(srv, "dee").join("maths")["room"] == "maths"


def test_modes_need_an_op_and_valid_fields(lesson):
    srv, ppl = lesson
    e = ppl["vee"].mode("maths", moderated=True)
    assert e["code"] == p.FORBIDDEN and "op" in e["message"]
    assert ppl["teacher"].mode("maths")["code"] == p.BAD_FRAME
    assert ppl["teacher"].mode("maths", slow=86401)["code"] == p.BAD_FRAME
    assert ppl["teacher"].mode("maths", moderated="yes")["code"] == p.BAD_FRAME
    assert ppl["ann"].join("maths")["modes"]["moderated"] is False      # nothing changed


def test_modes_and_roles_survive_a_restart(make_server, tmp_path):
    db = str(tmp_path / "modes.db")
    srv = make_server(rate_limit=0, db=db)
    t = Person(srv, "teacher")
    t.join("maths")
    t.mode("maths", questions=True, slow=5)
    t.close()
    srv.shutdown()
    srv2 = make_server(rate_limit=0, db=db)
    f = Person(srv2, "ann").join("maths")
    assert (f["modes"]["questions"], f["modes"]["slow"], f["roles"]) == (True, 5, {})
    assert Person(srv2, "teacher").join("maths")["role"] == "owner"


def test_questions_go_to_the_ops_and_the_author_until_released(lesson):
    srv, ppl = lesson
    ppl["teacher"].mode("maths", questions=True)
    for person in ppl.values():
        sync(person.c)
    q = ppl["ann"].say("maths", "what is 7 x 8?")
    assert q["type"] == "message" and q["question"] is True
    for n in ("teacher", "helper"):
        got = until(ppl[n].c, lambda x: x["type"] == "message")
        assert (got["id"], got["question"], got["from"]) == (q["id"], True, "ann") and "ref" not in got
    for n in ("bob", "vee"):
        sync(ppl[n].c)
        assert not [f for f in ppl[n].c.frames if f.get("id") == q["id"]], n
    assert ppl["teacher"].say("maths", "an op speaks freely").get("question") is None
    e = ppl["bob"].ask({"type": "release", "id": q["id"]})
    assert e["code"] in (p.NO_SUCH_MESSAGE, p.FORBIDDEN)       # bob cannot even see it
    r = ppl["helper"].ask({"type": "release", "id": q["id"]})
    assert (r["type"], r["from"], r["text"], r["released_by"], r["question"]) == \
        ("message", "ann", "what is 7 x 8?", "helper", q["id"])
    assert r["id"] > q["id"]
    for n in ("bob", "ann", "vee", "teacher"):
        got = until(ppl[n].c, lambda x: x["type"] == "message" and x.get("released_by"))
        assert got["id"] == r["id"] and got["question"] == q["id"]
    # History: the question for the ops and its author only; the release for all.
    for n, sees in (("bob", False), ("ann", True), ("helper", True)):
        page = reply(ppl[n].c, {"type": "history", "room": "maths"})
        ids = [m["id"] for m in page["messages"]]
        assert (q["id"] in ids) is sees and r["id"] in ids, n
    assert ppl["teacher"].ask({"type": "release", "id": r["id"]})["code"] == p.NO_SUCH_MESSAGE   # not a question


def test_questions_in_a_catch_up_only_for_those_who_may_see_them(lesson, make_server):
    srv, ppl = lesson
    ppl["teacher"].mode("maths", questions=True)
    since = ppl["teacher"].say("maths", "start")["id"]
    q = ppl["ann"].say("maths", "a question")
    tokens = {n: ppl[n].welcome["session"] for n in ("bob", "helper", "ann")}
    for n in tokens:
        ppl[n].close()
    from tests.netclient import LineClient
    from tests.moderationtools import secret
    from tests.servertools import wait_until
    wait_until(lambda: not any(n in srv.hub.chat.nicks for n in tokens), what="them to be gone")
    for n, token in tokens.items():
        c = LineClient(srv.port)
        got = hello_v2(c, n, identity=secret(n), resume=token, since=since)
        ids = [f.get("id") for f in got["replay"]]
        assert (q["id"] in ids) is (n != "bob"), (n, got["replay"])
        c.close()
