"""Delete, edit and audit over real sockets: tombstones live, in catch-up and
in history; the deleted text gone from the SQLite files; the edit window;
private messages; the audit trail."""
from __future__ import annotations

import time

import pytest

from server import protocol as p
from tests.moderationtools import Person, reply, secret, sync, until
from tests.netclient import LineClient
from tests.servertools import hello_v2, wait_until

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def room(make_server):
    srv = make_server(rate_limit=0)
    people = {n: Person(srv, n) for n in ("teacher", "ann", "bob")}
    for n in ("teacher", "ann", "bob"):
        people[n].join("maths")
    for person in people.values():
        sync(person.c)
    yield srv, people
    for person in people.values():
        person.close()


def files(srv) -> bytes:
    data = b""
    for suffix in ("", "-wal"):
        try:
            with open(srv.config.db + suffix, "rb") as f:
                data += f.read()
        except FileNotFoundError:
            pass
    return data


def test_the_author_deletes_and_the_text_leaves_the_file(room):
    srv, ppl = room
    secret_text = "the-answer-is-forty-two-" * 3
    m = ppl["ann"].say("maths", secret_text)
    ppl["ann"].say("maths", "an unrelated line")
    wait_until(lambda: secret_text.encode() in files(srv), what="the message on disk")
    d = ppl["ann"].ask({"type": "delete", "id": m["id"]})
    assert {k: d[k] for k in ("type", "room", "id", "by")} == {"type": "deleted", "room": "maths", "id": m["id"],
                                                               "by": "ann"}
    assert d["seq"] > m["id"]
    for n in ("teacher", "bob"):
        got = until(ppl[n].c, lambda x: x["type"] == "deleted")
        assert (got["id"], got["seq"]) == (m["id"], d["seq"]) and "ref" not in got
    data = files(srv)
    assert secret_text.encode() not in data and b"forty-two" not in data
    assert b"an unrelated line" in data
    page = reply(ppl["bob"].c, {"type": "history", "room": "maths"})
    assert page["messages"][0] == {"type": "deleted", "room": "maths", "id": m["id"], "by": "ann"}
    assert page["messages"][1]["text"] == "an unrelated line" and len(page["messages"]) == 2   # no delete row


def test_a_catch_up_carries_the_tombstone_and_the_deletion(room):
    srv, ppl = room
    m = ppl["ann"].say("maths", "oops, my phone number")
    token = ppl["bob"].welcome["session"]
    ppl["bob"].close()
    wait_until(lambda: "bob" not in srv.hub.chat.nicks, what="bob to be gone")
    d = ppl["ann"].ask({"type": "delete", "id": m["id"]})
    c = LineClient(srv.port)
    got = hello_v2(c, "bob", identity=secret("bob"), resume=token, since=m["id"] - 1)
    frames = [f for f in got["replay"] if f.get("room") == "maths"]
    assert frames == [{"type": "deleted", "room": "maths", "id": m["id"], "by": "ann"},
                      {"type": "deleted", "room": "maths", "id": m["id"], "by": "ann", "seq": d["seq"]}]
    assert "oops" not in str(got)
    c.close()


def test_who_may_delete_and_when(room):
    srv, ppl = room
    now = time.time()
    srv.hub.chat.clock = lambda: now
    m = ppl["ann"].say("maths", "a message")
    e = ppl["bob"].ask({"type": "delete", "id": m["id"]})
    assert e["code"] == p.FORBIDDEN and "author" in e["message"]
    srv.hub.chat.clock = lambda: now + 601
    e = ppl["ann"].ask({"type": "delete", "id": m["id"]})
    assert e["code"] == p.EDIT_WINDOW and "600 s" in e["message"]
    d = ppl["teacher"].ask({"type": "delete", "id": m["id"], "reason": "off topic"})    # an op: any time
    assert (d["type"], d["by"]) == ("deleted", "teacher")
    assert ppl["teacher"].ask({"type": "delete", "id": m["id"]})["code"] == p.NO_SUCH_MESSAGE   # gone
    assert ppl["teacher"].ask({"type": "delete", "id": 10**9})["code"] == p.NO_SUCH_MESSAGE
    assert ppl["teacher"].ask({"type": "delete", "id": "x"})["code"] == p.BAD_FRAME
    ppl["bob"].part("maths")
    m2 = ppl["ann"].say("maths", "bob is away")
    assert ppl["bob"].ask({"type": "delete", "id": m2["id"]})["code"] == p.NOT_IN_ROOM


def test_edit_within_the_window_and_not_after(room):
    srv, ppl = room
    now = time.time()
    srv.hub.chat.clock = lambda: now
    m = ppl["ann"].say("maths", "2 + 2 = 5")
    e = ppl["ann"].ask({"type": "edit", "id": m["id"], "text": "2 + 2 = 4"})
    assert {k: e[k] for k in ("type", "room", "id", "text")} == {"type": "edited", "room": "maths", "id": m["id"],
                                                                 "text": "2 + 2 = 4"}
    assert e["seq"] > m["id"] and type(e["edited_ts"]) is float
    got = until(ppl["bob"].c, lambda x: x["type"] == "edited")
    assert (got["text"], got["seq"]) == ("2 + 2 = 4", e["seq"])
    page = reply(ppl["bob"].c, {"type": "history", "room": "maths"})
    assert [(x["id"], x["text"], x["edited_ts"]) for x in page["messages"]] == [(m["id"], "2 + 2 = 4",
                                                                                 e["edited_ts"])]
    assert ppl["bob"].ask({"type": "edit", "id": m["id"], "text": "mine now"})["code"] == p.FORBIDDEN
    assert ppl["teacher"].ask({"type": "edit", "id": m["id"], "text": "ops neither"})["code"] == p.FORBIDDEN
    srv.hub.chat.clock = lambda: now + 601
    assert ppl["ann"].ask({"type": "edit", "id": m["id"], "text": "too late"})["code"] == p.EDIT_WINDOW
    assert ppl["ann"].ask({"type": "edit", "id": m["id"], "text": " "})["code"] == p.BAD_TEXT


def test_an_edited_then_deleted_message_leaves_no_text_behind(room):
    srv, ppl = room
    m = ppl["ann"].say("maths", "first-version-text")
    ppl["ann"].ask({"type": "edit", "id": m["id"], "text": "second-version-text"})
    ppl["ann"].ask({"type": "delete", "id": m["id"]})
    data = files(srv)
    assert b"first-version-text" not in data and b"second-version-text" not in data


def test_a_private_message_edited_and_deleted_by_its_author(room):
    srv, ppl = room
    d = ppl["ann"].ask({"type": "dm", "to": "bob", "text": "meet at 5"})
    e = ppl["ann"].ask({"type": "edit", "id": d["id"], "text": "meet at 6"})
    assert (e["type"], e["with"], e["text"]) == ("edited", "bob", "meet at 6") and "room" not in e
    got = until(ppl["bob"].c, lambda x: x["type"] == "edited")
    assert (got["with"], got["id"]) == ("ann", d["id"])
    assert ppl["bob"].ask({"type": "delete", "id": d["id"]})["code"] == p.FORBIDDEN
    assert ppl["teacher"].ask({"type": "delete", "id": d["id"]})["code"] == p.NO_SUCH_MESSAGE   # not theirs
    x = ppl["ann"].ask({"type": "delete", "id": d["id"]})
    assert (x["type"], x["with"], x["by"]) == ("deleted", "bob", "ann")
    assert until(ppl["bob"].c, lambda f: f["type"] == "deleted")["with"] == "ann"
    page = reply(ppl["bob"].c, {"type": "history", "with": "ann"})
    assert page["messages"] == [{"type": "deleted", "with": "ann", "id": d["id"], "by": "ann"}]


def test_the_audit_trail_for_ops(room):
    srv, ppl = room
    t = ppl["teacher"]
    m1 = ppl["ann"].say("maths", "rude words")
    m2 = ppl["ann"].say("maths", "typo")
    ppl["ann"].ask({"type": "delete", "id": m2["id"]})             # by its author: not in the audit
    t.ask({"type": "delete", "id": m1["id"], "reason": "rude"})
    t.mod("maths", "mute", "bob", duration=60, reason="noise")
    t.mode("maths", slow=10)
    t.mod("maths", "kick", "ann", reason="again")
    a = t.ask({"type": "audit", "room": "maths"})
    assert a["type"] == "audit" and a["room"] == "maths"
    rows = [(x["by"], x["action"], x["nick"], x["reason"]) for x in a["entries"]]
    assert rows == [("teacher", "delete", "ann", "rude"), ("teacher", "mute", "bob", "noise"),
                    ("teacher", "mode", None, None), ("teacher", "kick", "ann", "again")]
    assert a["entries"][2]["modes"] == {"slow": 10}
    assert all(type(x["ts"]) is float for x in a["entries"])
    e = ppl["bob"].ask({"type": "audit", "room": "maths"})
    assert e["code"] == p.FORBIDDEN


def test_the_audit_keeps_the_last_200(room):
    srv, ppl = room
    t = ppl["teacher"]
    for i in range(205):
        t.c.send({"type": "mode", "room": "maths", "slow": i})
    a = t.ask({"type": "audit", "room": "maths"})
    assert [x["modes"]["slow"] for x in a["entries"]] == list(range(5, 205)) and a["more"] is True
    ids = [x["event"] for x in a["entries"]]
    assert ids == sorted(ids) and len(set(ids)) == 200
    older = t.ask({"type": "audit", "room": "maths", "before": ids[0]})    # every action is kept and read
    assert [x["modes"]["slow"] for x in older["entries"]] == list(range(5)) and older["more"] is False
    assert older["entries"][-1]["event"] < ids[0]
    bad = t.ask({"type": "audit", "room": "maths", "before": "yesterday"})
    assert bad["code"] == p.BAD_FRAME and "'before'" in bad["message"]
