"""The client's moderation (issue 11) over real sockets against the real
server: windows (the controller with a fake view, fed by a real
ChatClient) of a teacher who created a room and of students, each with
its own identity file.
"""
from __future__ import annotations

import secrets
import socket

import pytest

from chatgui.app.view import ERROR, Modes, SYSTEM
from tests.test_rooms_real import windows  # noqa: F401 (a fixture)

pytestmark = pytest.mark.timeout(60)


def me() -> str:
    return secrets.token_urlsafe(32)


def in_room(w, room="maths"):
    w.pump(lambda: w.c.rooms.room(room) is not None and w.c.rooms.room(room).joined, what=f"#{room} joined")
    return w.c.rooms.room(room)


def classroom(make_server, windows, **server):
    """A teacher who made #maths (its owner) and two students in it."""
    srv = make_server(rate_limit=0, **server)
    teacher = windows(srv.port, "teacher", identity=me())
    teacher.pump(lambda: teacher.c.connected, what="the teacher's welcome")
    teacher.c.submit("/join maths")
    in_room(teacher)
    students = []
    for nick in ("ann", "bob"):
        w = windows(srv.port, nick, identity=me())
        w.pump(lambda: w.c.connected, what=f"{nick}'s welcome")
        w.c.submit("/join maths")
        in_room(w)
        students.append(w)
    teacher.pump(lambda: {"ann", "bob"} <= set(teacher.c.rooms.room("maths").people), what="the students")
    return srv, teacher, students


def test_the_creator_is_owner_and_mutes_a_student_through_the_menu(make_server, windows):
    srv, teacher, (ann, bob) = classroom(make_server, windows)
    assert teacher.view.powers["#maths"].role == "owner"
    assert "mute:300" in [i.action for i in teacher.c.person_menu("#maths", "ann")]
    assert [i.action for i in ann.c.person_menu("#maths", "bob")] == ["msg", "mention"]
    teacher.c.person_action("#maths", "ann", "mute:300")
    ann.pump(lambda: "teacher muted you in #maths for 5 minutes. You can read, but not speak."
             in ann.texts("#maths"), what="ann hears she is muted")
    ann.c.switch_room("#maths")
    ann.c.submit("may I?")
    ann.pump(lambda: any(t.startswith("You are muted in #maths for 5 more minutes.")
                         for t in ann.view.texts(ERROR, room="#maths")), what="the refusal as a sentence")
    bob.pump(lambda: "teacher muted ann in #maths for 5 minutes." in bob.texts("#maths"), what="bob sees it")


def test_a_question_reaches_the_teacher_only_and_release_shows_it_to_all(make_server, windows):
    srv, teacher, (ann, bob) = classroom(make_server, windows)
    teacher.c.switch_room("#maths")
    teacher.c.submit("/mode questions on")
    ann.pump(lambda: ann.c.rooms.room("maths").modes.questions, what="the questions mode")
    ann.c.switch_room("#maths")
    ann.c.submit("what is a half of a half?")
    teacher.pump(lambda: teacher.view.questions.get("#maths"), what="the question in the teacher's list")
    q = teacher.view.questions["#maths"][0]
    assert (q.who, q.text) == ("ann", "what is a half of a half?")
    ann.pump(lambda: any(ln.question for ln in ann.view.room_lines("#maths")), what="ann's question marked")
    teacher.c.release_question("#maths", q.id)
    bob.pump(lambda: "what is a half of a half?" in bob.texts("#maths"), what="the released question")
    assert not any(ln.question for ln in bob.view.room_lines("#maths"))
    teacher.pump(lambda: teacher.view.questions["#maths"][0].released_by == "teacher", what="marked released")


def test_an_edit_and_a_removal_update_the_lines_and_history_keeps_only_the_tombstone(make_server, windows):
    srv, teacher, (ann, bob) = classroom(make_server, windows)
    ann.c.switch_room("#maths")
    ann.c.submit("teh answer is 1/4")
    bob.pump(lambda: "teh answer is 1/4" in bob.texts("#maths"), what="the message")
    ann.pump(lambda: ann.c._last_own(ann.c.rooms.room("maths")) is not None, what="ann's own copy")
    ann.c.submit("/edit the answer is 1/4")
    bob.pump(lambda: any(ln.edited and ln.text == "the answer is 1/4" for ln in bob.view.room_lines("#maths")),
             what="the edit in place")
    msg_id = next(ln.msg_id for ln in bob.view.room_lines("#maths") if ln.edited)
    teacher.pump(lambda: msg_id in teacher.c.rooms.room("maths").shown, what="the message at the teacher's")
    assert "delete" in [i.action for i in teacher.c.message_menu("#maths", msg_id)]
    teacher.c.message_action("#maths", msg_id, "delete")
    bob.pump(lambda: any(ln.removed and ln.text == "message removed by teacher"
                         for ln in bob.view.room_lines("#maths")), what="the tombstone")
    late = windows(srv.port, "carol", identity=me())
    late.pump(lambda: late.c.connected, what="carol's welcome")
    late.c.submit("/join maths")
    late.pump(lambda: any(ln.removed for ln in late.view.room_lines("#maths")), what="the tombstone in history")
    assert "the answer is 1/4" not in " ".join(late.texts("#maths"))


def test_a_reserved_nick_is_refused_to_another_computer_until_forgotten(make_server, windows):
    srv = make_server(rate_limit=0)
    mine = me()
    first = windows(srv.port, "ann", identity=mine, keep_session=False)
    first.pump(lambda: first.c.connected, what="the first welcome")
    first.close()                                   # offline: the nick stays bound to it
    # Another computer: its own identity and no session of the first to resume.
    other = windows(srv.port, "ann", identity=me(), keep_session=False)
    other.pump(lambda: other.view.form is not None and "reserved" in (other.view.form[1] or ""),
               what="nick_reserved on the form")
    assert other.view.focus == "nick"
    back = windows(srv.port, "ann", identity=mine, keep_session=False)
    back.pump(lambda: back.c.connected, what="the owner of the nick back")
    back.c.submit("/forget")
    back.pump(lambda: any("no longer reserved" in t for t in back.view.texts(SYSTEM)), what="forgotten")
    back.close()
    again = windows(srv.port, "ann", identity=me(), keep_session=False)
    again.pump(lambda: again.c.connected, what="the nick free again")


def test_an_op_reads_the_audit_trail_and_a_student_may_not(make_server, windows):
    srv, teacher, (ann, bob) = classroom(make_server, windows)
    teacher.c.switch_room("#maths")
    teacher.c.submit("/mute bob 1h chatting")
    teacher.c.submit("/mode moderated on")
    ann.pump(lambda: ann.c.rooms.room("maths").modes == Modes(moderated=True), what="moderated")
    teacher.c.submit("/audit")
    teacher.pump(lambda: any(t.startswith("Moderation of #maths") for t in teacher.texts("#maths")),
                 what="the audit trail")
    trail = next(t for t in teacher.texts("#maths") if t.startswith("Moderation of #maths"))
    assert "teacher mute bob: chatting" in trail
    ann.c.switch_room("#maths")
    ann.c.submit("/audit")
    ann.pump(lambda: "Only the ops of #maths can read its moderation trail." in ann.view.texts(ERROR, room="#maths"),
             what="the refusal")
    assert not ann.view.powers["#maths"].speak


def test_since_counts_the_seq_of_edits_so_a_reconnect_replays_nothing_twice(make_server, windows):
    srv, teacher, (ann, bob) = classroom(make_server, windows)
    ann.c.switch_room("#maths")
    ann.c.submit("first")
    bob.pump(lambda: "first" in bob.texts("#maths"), what="the message")
    ann.pump(lambda: ann.c._last_own(ann.c.rooms.room("maths")) is not None, what="ann's own copy")
    ann.c.submit("/edit first!")
    bob.pump(lambda: "first!" in bob.texts("#maths"), what="the edit")
    shown = [ln.msg_id for ln in bob.view.room_lines("#maths") if ln.msg_id]
    updates = len(bob.view.updates)
    bob.c.client._transport.shutdown(socket.SHUT_RDWR)      # drop the connection; the client resumes
    bob.pump(lambda: any(t in ("Reconnected.", "Connected again as bob.")
                         for room in bob.view.convos.values() for t in (ln.text for ln in room)),
             what="the reconnect")
    bob.pump(lambda: not bob.c._catching_up, what="the catch-up")
    assert len(bob.view.updates) == updates
    assert [ln.msg_id for ln in bob.view.room_lines("#maths") if ln.msg_id] == shown   # none shown twice
