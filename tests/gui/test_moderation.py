"""Moderation in the real window under Xvfb, with the real controller and
the real network client, against a server the test plays by hand on a
loopback port (tests/played.py): what the menus, the questions list and
the room settings send is read off the wire as frames, and what the
server answers (DESIGN-11's frames) shows in the window.

An op mutes a member through the person menu; a member's question shows
in the op's list and Release sends ``release``; an own message is edited
and another's deleted through the message menu, and the lines change in
place; a member's menus have no moderation entries and the window shows
no op controls; the room settings dialog sends one ``mode`` frame."""
from __future__ import annotations

import time

import pytest

from chatgui.app.view import ConnectValues
from chatgui.tk.conversation import EDITED_NOTE, QUESTION_NOTE
from server import protocol
from tests.gui.conftest import wait_until
from tests.played import played  # noqa: F401 (a fixture)

pytestmark = [pytest.mark.gui, pytest.mark.timeout(60)]

MODES = {"moderated": False, "questions": False, "announce": False, "slow": 0, "dm": True, "key": False}


def welcome(nick: str, users) -> dict:
    return {"type": "welcome", "nick": nick, "users": list(users), "history": [], "last_id": 0,
            "session": "s1", "protocol": 2, "replay": True, "rooms": ["maths"], "epoch": "e1",
            "fingerprint": "ab" * 32, "admin": False}


def room_frame(users, role: str, roles: dict, **modes) -> dict:
    f = protocol.room_frame("maths", "Fractions", users, 0, 0, False)
    f.update(role=role, roles=roles, modes={**MODES, **modes})
    return f


def joined(make_window, played, nick="ann", role="op", roles=None, users=("ann", "bob", "carol"), **modes):
    """A window joined to #maths on a played server as ``nick`` with ``role``:
    (window, the connection the test plays, the hello it got)."""
    srv = played()
    w = make_window(ConnectValues(host="127.0.0.1", port=str(srv.port), nick=nick))
    conn = srv.accept()
    hello, _ = conn.recv_type("hello")
    conn.send(welcome(nick, users))
    conn.send(room_frame(users, role, {nick: role} if roles is None else roles, **modes))
    conn.send(protocol.caught_up_frame(0))
    wait_until(w.root, lambda: w.controller.in_chat and w.chat.users == list(users)
               and w.chat.current is not None and w.chat.current.room == "#maths",
               timeout=10, what="the window to show #maths with its people")
    return w, conn, hello


def settle(w) -> None:
    for _ in range(3):
        w.root.update_idletasks()
        w.pump.drain_now()
        w.root.update()


def say(conn, w, msg_id: int, sender: str, text: str, **extra) -> None:
    """A message of ``sender`` in #maths, as the server sends it; waits until shown."""
    conn.send({**protocol.message_frame(msg_id, time.time(), sender, text, room="maths"), **extra})
    wait_until(w.root, lambda: w.chat.text.search(text, "1.0", stopindex="end") != "",
               what=f"message {msg_id} to show")


def right_click_text(w, needle: str) -> None:
    t = w.chat.text
    index = t.search(needle, "1.0", stopindex="end")
    assert index, f"{needle!r} is not shown"
    t.see(index)
    w.root.update()
    x, y, _w, h = t.bbox(index)
    t.event_generate("<Button-3>", x=x + 2, y=y + h // 2, rootx=t.winfo_rootx() + x, rooty=t.winfo_rooty() + y)
    w.root.update()


def right_click_person(w, nick: str) -> None:
    tree = w.chat.people
    settle(w)
    x, y, _w, h = w.chat.person_bbox(nick)
    tree.event_generate("<Button-3>", x=x + 10, y=y + h // 2, rootx=tree.winfo_rootx() + x,
                        rooty=tree.winfo_rooty() + y)
    w.root.update()


def line_with(w, needle: str) -> str:
    t = w.chat.text
    index = t.search(needle, "1.0", stopindex="end")
    return t.get(f"{index} linestart", f"{index} lineend") if index else ""


def type_and_send(w, text: str) -> None:
    w.chat.set_input(text)
    w.chat.send_button.invoke()


def test_an_op_mutes_a_member_through_the_person_menu(make_window, played):
    w, conn, hello = joined(make_window, played)
    assert len(hello.get("identity", "")) >= 32          # the hello carries this computer's identity
    labels = [w.chat.people.item(r, "text") for r in w.chat.people.get_children()]
    assert labels[0] == "●  @ann  (you)"
    right_click_person(w, "bob")
    assert "Mute for 5 minutes" in w.chat.menu.labels
    assert {"Mute for 1 hour", "Mute for a day", "Remove from the room", "Ban from the room",
            "Give voice"} <= set(w.chat.menu.labels)
    assert "Make op" not in w.chat.menu.labels            # only an owner makes ops
    w.chat.menu.invoke("Mute for 5 minutes")
    frame, _ = conn.recv_type("mod")
    assert {k: frame[k] for k in ("room", "action", "nick", "duration")} == {
        "room": "maths", "action": "mute", "nick": "bob", "duration": 300}
    until = time.time() + 300
    conn.send({"type": "moderated", "room": "maths", "action": "mute", "nick": "bob", "by": "ann",
               "reason": None, "until": until, "id": 9, "ts": time.time(), "ref": frame.get("ref")})
    wait_until(w.root, lambda: "bob" in w.chat.text.get("1.0", "end") and "mute" in w.chat.text.get("1.0", "end"),
               what="the mute to be said in the room")
    # Muted now: the menu offers Unmute instead.
    right_click_person(w, "bob")
    assert "Unmute" in w.chat.menu.labels and "Mute for 5 minutes" not in w.chat.menu.labels
    w.chat.menu.close()


def test_a_question_shows_in_the_ops_list_and_release_sends_release(make_window, played):
    w, conn, _ = joined(make_window, played, questions=True)
    panel = w.chat.questions_panel
    conn.send({**protocol.message_frame(5, time.time(), "bob", "is 1 a prime?", room="maths"), "question": True})
    wait_until(w.root, lambda: panel.winfo_ismapped() and panel.tree.get_children(), what="the questions list")
    assert [panel.tree.item(r, "text") for r in panel.tree.get_children()] == ["is 1 a prime?"]
    assert panel.chosen().id == 5 and panel.title.cget("text") == "QUESTIONS — 1 waiting"
    panel.release_button.invoke()
    frame, _ = conn.recv_type("release")
    assert frame["id"] == 5
    conn.send({**protocol.message_frame(6, time.time(), "bob", "is 1 a prime?", room="maths"),
               "released_by": "ann", "question": 5})
    wait_until(w.root, lambda: panel.title.cget("text") == "QUESTIONS — 0 waiting", what="the question released")
    assert "released" in panel.tree.item("5", "tags")
    assert panel.release_button.instate(["disabled"])
    assert line_with(w, "is 1 a prime?").split("\t")[1:] == ["bob", "is 1 a prime?"]


def test_a_members_own_question_is_marked_and_they_get_no_list(make_window, played):
    w, conn, _ = joined(make_window, played, nick="bob", role="member", roles={"ann": "op"},
                        users=("ann", "bob"), questions=True)
    say(conn, w, 5, "bob", "is 1 a prime?", question=True)
    settle(w)
    assert line_with(w, "is 1 a prime?").endswith(QUESTION_NOTE)
    assert not w.chat.questions_panel.winfo_ismapped()


def test_edit_and_delete_through_the_message_menu_change_the_lines_in_place(make_window, played):
    w, conn, _ = joined(make_window, played)
    say(conn, w, 3, "ann", "two plus two is five")
    say(conn, w, 4, "bob", "something rude")
    say(conn, w, 5, "carol", "after them")
    # Our own message: edit puts it in the input box, Enter sends the edit.
    right_click_text(w, "two plus two")
    assert {"Reply with a quote", "Copy text", "Edit", "Delete"} <= set(w.chat.menu.labels)
    w.chat.menu.invoke("Edit")
    assert w.chat.get_input() == "/edit #3 two plus two is five"
    type_and_send(w, "/edit #3 two plus two is four")
    frame, _ = conn.recv_type("edit")
    assert (frame["id"], frame["text"]) == (3, "two plus two is four")
    conn.send({"type": "edited", "room": "maths", "id": 3, "text": "two plus two is four",
               "edited_ts": time.time(), "seq": 6})
    wait_until(w.root, lambda: line_with(w, "two plus two is four").endswith(EDITED_NOTE), what="the edit")
    # Someone else's, as an op: delete.
    right_click_text(w, "something rude")
    assert "Delete" in w.chat.menu.labels and "Edit" not in w.chat.menu.labels
    w.chat.menu.invoke("Delete")
    frame, _ = conn.recv_type("delete")
    assert frame["id"] == 4
    conn.send({"type": "deleted", "room": "maths", "id": 4, "by": "ann", "seq": 7})
    wait_until(w.root, lambda: "something rude" not in w.chat.text.get("1.0", "end"), what="the tombstone")
    texts = [ln.split("\t")[-1] for ln in w.chat.text.get("1.0", "end-1c").splitlines()]
    order = [t for t in texts if t.startswith(("two plus", "message removed", "after them"))]
    assert order == ["two plus two is four" + EDITED_NOTE, "message removed by you", "after them"]
    # Copy gives the text; a removed message has no menu any more.
    right_click_text(w, "after them")
    w.chat.menu.invoke("Copy text")
    assert w.root.clipboard_get() == "after them"
    right_click_text(w, "message removed")
    assert w.chat.menu.labels == []


def test_a_member_gets_no_moderation_entries_nor_op_controls(make_window, played):
    w, conn, _ = joined(make_window, played, nick="bob", role="member", roles={"ann": "op"}, users=("ann", "bob"))
    labels = [w.chat.people.item(r, "text") for r in w.chat.people.get_children()]
    assert labels == ["●  @ann", "●  bob  (you)"]
    right_click_person(w, "ann")
    assert w.chat.menu.labels == ["Private message", "Mention"]
    w.chat.menu.invoke("Mention")
    assert w.chat.get_input() == "ann: "
    say(conn, w, 3, "ann", "welcome to maths")
    right_click_text(w, "welcome to maths")
    assert w.chat.menu.labels == ["Reply with a quote", "Copy text"]
    w.chat.menu.close()
    settle(w)
    assert not w.chat.room_settings_button.winfo_ismapped()
    assert not w.chat.questions_panel.winfo_ismapped()


def test_the_room_settings_dialog_sends_one_mode_frame(make_window, played):
    w, conn, _ = joined(make_window, played)
    settle(w)
    assert w.chat.room_settings_button.winfo_ismapped()
    w.chat.room_settings_button.invoke()
    d = w.room_settings
    assert d is not None and d.alive and d.topic.get() == "Fractions"
    d.checks["questions"].invoke()
    d.checks["dm"].invoke()
    d.checks["slow"].invoke()
    d.slow.set("15")
    d.save_button.invoke()
    frame, _ = conn.recv_type("mode")
    assert {k: v for k, v in frame.items() if k not in ("type", "ref")} == {
        "room": "maths", "questions": True, "dm": False, "slow": 15}
    conn.send({"type": "mode", "room": "maths", "questions": True, "dm": False, "slow": 15,
               "modes": {**MODES, "questions": True, "dm": False, "slow": 15}, "by": "ann", "id": 8,
               "ts": time.time(), "ref": frame.get("ref")})
    wait_until(w.root, lambda: w.chat.powers["#maths"].modes.questions, what="the new modes")
    w.chat.room_settings_button.invoke()
    d = w.room_settings
    assert d.vars["questions"].get() and not d.vars["dm"].get() and d.slow.get() == "15"
    d.close()
