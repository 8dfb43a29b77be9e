"""Moderation in the real window under Xvfb against the real server.

A teacher's window (the real controller and network client, this test's
own identity file) creates #maths, so it owns it; a student (a protocol-2
LineClient with an identity of its own) joins. The teacher mutes the
student through the person menu and the server refuses the student's next
message; with questions on, the student's question reaches the teacher's
questions list only, and Release sends it to the whole room."""
from __future__ import annotations

import secrets

import pytest

from chatgui.app.view import ConnectValues
from tests.gui.conftest import wait_until
from tests.gui.test_moderation import right_click_person, type_and_send
from tests.netclient import LineClient

pytestmark = [pytest.mark.gui, pytest.mark.timeout(60)]


def classroom(make_window, make_server):
    """(window of the teacher in #maths, its owner; the student in #maths; a bystander in #maths)."""
    srv = make_server(rate_limit=0)
    w = make_window(ConnectValues(host="127.0.0.1", port=str(srv.port), nick="teacher"))
    wait_until(w.root, lambda: w.controller.in_chat, timeout=15, what="the teacher's welcome")
    type_and_send(w, "/join maths")
    wait_until(w.root, lambda: w.chat.current is not None and w.chat.current.room == "#maths",
               timeout=10, what="the teacher in #maths")
    people = []
    for nick in ("sam", "pat"):
        c = LineClient(srv.port)
        c.send({"type": "hello", "nick": nick, "v": 2, "identity": secrets.token_urlsafe(32)})
        c.recv_type("caught_up")
        c.send({"type": "join", "room": "maths"})
        assert c.recv_type("room")["role"] == "member"
        people.append(c)
    wait_until(w.root, lambda: {"sam", "pat"} <= set(w.chat.users), what="the students in the people list")
    return w, people[0], people[1]


def test_the_owner_mutes_a_student_through_the_menu_and_the_server_refuses_the_student(make_window, make_server):
    w, sam, pat = classroom(make_window, make_server)
    right_click_person(w, "sam")
    w.chat.menu.invoke("Mute for 5 minutes")
    muted = sam.recv_type("moderated")
    assert (muted["room"], muted["action"], muted["nick"], muted["by"]) == ("maths", "mute", "sam", "teacher")
    assert muted["until"] is not None
    sam.send({"type": "say", "room": "maths", "text": "can I still talk?", "ref": "s1"})
    refused = sam.recv_type("error")
    assert refused["code"] == "muted" and refused.get("ref") == "s1"
    pat.send({"type": "say", "room": "maths", "text": "pat is not muted", "ref": "p1"})
    assert sam.recv_type("message")["text"] == "pat is not muted"     # sam never said it
    wait_until(w.root, lambda: w.chat.text.search("pat is not muted", "1.0", stopindex="end") != "",
               what="pat's message in the teacher's window")
    assert w.chat.text.search("can I still talk?", "1.0", stopindex="end") == ""


def test_a_question_reaches_the_teacher_only_and_release_sends_it_to_the_room(make_window, make_server):
    w, sam, pat = classroom(make_window, make_server)
    type_and_send(w, "/mode questions on")
    assert sam.recv_type("mode")["questions"] is True
    assert pat.recv_type("mode")["questions"] is True
    sam.send({"type": "say", "room": "maths", "text": "is 1 a prime?", "ref": "q1"})
    assert sam.recv_type("message")["question"] is True       # the author's own copy
    panel = w.chat.questions_panel
    wait_until(w.root, lambda: panel.winfo_ismapped() and panel.tree.get_children(), what="the questions list")
    assert [panel.tree.item(r, "text") for r in panel.tree.get_children()] == ["is 1 a prime?"]
    pat.send({"type": "ping"})
    before = []
    while (f := pat.recv())["type"] != "pong":
        before.append(f)
    assert not [f for f in before if f["type"] == "message"], "a member saw the question before its release"
    panel.release_button.invoke()
    released = pat.recv_type("message")
    assert released["from"] == "sam"
    assert released["text"] == "is 1 a prime?" and released["released_by"] == "teacher"
    wait_until(w.root, lambda: panel.title.cget("text") == "QUESTIONS — 0 waiting", what="the question released")
