"""The moderation widgets of the real window under Xvfb, driven through the
View methods with a controller that records what the window calls on it
(the real controller with a fake network is in test_moderation.py): lines
replaced in place by id, right-clicks on a person and on a message line,
the questions list and its Release button, the room settings dialog, the
settings dialog's fingerprint, roles in the people list, and what an op
sees that a member does not."""
from __future__ import annotations

import pytest

from chatgui.app.controller import Controller
from chatgui.app.settings import Settings
from chatgui.app.view import (MEMBER, MODE_LABELS, OP, OTHER, OWNER, SYSTEM, VOICE, Line, MenuItem, Modes,
                              Question, RoomPowers, RoomSettings)
from chatgui.tk.conversation import EDITED_NOTE
from chatgui.tk.settings_dialog import NO_IDENTITY
from tests.gui.conftest import wait_until

pytestmark = pytest.mark.gui

FP = "3f" * 32


class Recorder(Controller):
    """The real controller, except that what the moderation widgets call is
    recorded (``calls``) and the menus offer ``person_items`` /
    ``message_items``."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.calls: list[tuple] = []
        self.person_items = [MenuItem("msg", "Private message"), MenuItem("mention", "Mention"),
                             MenuItem("mute:300", "Mute for 5 minutes", separator_before=True)]
        self.message_items = [MenuItem("reply", "Reply"), MenuItem("copy", "Copy")]

    def _record(self, *call):
        self.calls.append(call)

    def person_menu(self, room_id, nick):
        self._record("person_menu", room_id, nick)
        return self.person_items

    def person_action(self, room_id, nick, action):
        self._record("person_action", room_id, nick, action)

    def message_menu(self, room_id, msg_id):
        self._record("message_menu", room_id, msg_id)
        return self.message_items

    def message_action(self, room_id, msg_id, action):
        self._record("message_action", room_id, msg_id, action)

    def room_settings(self, room_id):
        self._record("room_settings", room_id)

    def apply_room_settings(self, room_id, modes, topic, key=None):
        self._record("apply_room_settings", room_id, modes, topic, key)

    def release_question(self, room_id, question_id):
        self._record("release_question", room_id, question_id)

    def seen_bottom(self, room_id):
        pass

    def load_older(self, room_id):
        pass

    def called(self, name):
        return [c[1:] for c in self.calls if c[0] == name]


def window(make_window, geometry="820x520"):
    w = make_window(None, Settings(geometry=geometry), controller_class=Recorder)
    w.show_chat()
    w.show_room("#maths", "#maths", "")
    wait_until(w.root, lambda: w.chat.winfo_ismapped())
    return w


def msg(i: int, text: str | None = None, **kw) -> Line:
    return Line(OTHER, "10:00", "bob", text or f"message {i}", who_key="bob", msg_id=i, **kw)


def settle(w) -> None:
    for _ in range(3):
        w.root.update_idletasks()
        w.pump.drain_now()
        w.root.update()


def conversation(w) -> str:
    return w.chat.text.get("1.0", "end-1c")


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
    x, y, _w, h = w.chat.person_bbox(nick)
    tree.event_generate("<Button-3>", x=x + 10, y=y + h // 2, rootx=tree.winfo_rootx() + x,
                        rooty=tree.winfo_rooty() + y)
    w.root.update()


def test_an_edited_and_a_removed_line_change_in_place_and_keep_their_place(make_window):
    w = window(make_window)
    for i in range(1, 4):
        w.append(msg(i), "#maths")
    w.append(Line(SYSTEM, "10:00", "", "carol joined"), "#maths")
    settle(w)
    before = conversation(w).splitlines()
    w.update_line("#maths", 2, msg(2, "message 2, fixed", edited=True))
    lines = conversation(w).splitlines()
    assert lines[1] == "10:00\tbob\tmessage 2, fixed" + EDITED_NOTE
    assert lines[0] == before[0] and lines[2:] == before[2:]
    assert w.chat.current.ids == type(w.chat.current.ids)([1, 2, 3])
    assert w.chat.current.message_at("2.5") == 2 and w.chat.current.message_at("4.5") is None
    w.update_line("#maths", 2, msg(2, "message removed by alice", removed=True))
    lines = conversation(w).splitlines()
    assert lines[1] == "10:00\tbob\tmessage removed by alice"
    assert "fixed" not in conversation(w) and len(lines) == 4
    t = w.chat.text
    assert "removed" in t.tag_names("2.12")
    # A message not shown there changes nothing; nor does another room.
    w.update_line("#maths", 99, msg(99, "never shown"))
    w.update_line("#other", 1, msg(1, "elsewhere"))
    assert conversation(w).splitlines() == lines
    # New lines still go after the last one (the "pend" mark kept its place).
    w.update_line("#maths", 3, msg(3, "last, edited", edited=True))
    w.append(msg(4), "#maths")
    assert conversation(w).splitlines()[-2:] == ["10:00\t•\tcarol joined", "10:00\tbob\tmessage 4"]


def test_a_message_of_several_lines_is_found_and_replaced_whole_between_others(make_window):
    """A line's range is its mark and the text lines it spans (no tag per
    message): a message with newlines, between a system line and another
    message, is found on each of its lines and replaced whole, longer or
    shorter, and its neighbours stay as they were."""
    w = window(make_window)
    w.append(msg(1), "#maths")
    w.append(msg(2, "first\nsecond\nthird"), "#maths")
    w.append(Line(SYSTEM, "10:00", "", "carol joined"), "#maths")
    w.append(msg(3), "#maths")
    settle(w)
    conv = w.chat.current
    assert [conv.message_at(f"{row}.5") for row in range(1, 7)] == [1, 2, 2, 2, None, 3]
    w.update_line("#maths", 2, msg(2, "one line now", edited=True))
    assert conversation(w).splitlines() == ["10:00\tbob\tmessage 1", "10:00\tbob\tone line now" + EDITED_NOTE,
                                            "10:00\t•\tcarol joined", "10:00\tbob\tmessage 3"]
    assert [conv.message_at(f"{row}.5") for row in range(1, 5)] == [1, 2, None, 3]
    w.update_line("#maths", 2, msg(2, "a\nb\nc\nd"))
    assert conversation(w).splitlines()[1:6] == ["10:00\tbob\ta", "b", "c", "d", "10:00\t•\tcarol joined"]
    assert [conv.message_at(f"{row}.0") for row in range(1, 8)] == [1, 2, 2, 2, 2, None, 3]
    w.update_line("#maths", 3, msg(3, "the last, edited", edited=True))
    assert conversation(w).splitlines()[-1] == "10:00\tbob\tthe last, edited" + EDITED_NOTE
    assert conv.message_at("end") is None and list(conv.ids) == [1, 2, 3]


def test_an_edit_above_or_at_the_top_of_the_view_does_not_move_what_is_read(make_window):
    w = window(make_window)
    for i in range(1, 121):
        w.append(msg(i), "#maths")
    settle(w)
    t, conv = w.chat.text, w.chat.current
    t.yview_moveto(0.5)
    t.yview_scroll(5, "pixels")              # the top line part cut off, as a wheel leaves it
    conv._on_user_scroll()                   # the user scrolled there
    settle(w)
    top_id = conv.message_at("@0,0")
    y = t.dlineinfo("@0,0")[1]
    assert top_id > 10 and y < 0 and not w.chat.at_bottom()
    # A long edit far above the view makes its line wrap onto several.
    w.update_line("#maths", 3, msg(3, "long words " * 60, edited=True))
    settle(w)
    assert (conv.message_at("@0,0"), t.dlineinfo("@0,0")[1]) == (top_id, y)
    # The message at the very top of the view changes: it stays there, at the same height.
    w.update_line("#maths", top_id, msg(top_id, "long words " * 60, edited=True))
    settle(w)
    assert (conv.message_at("@0,0"), t.dlineinfo("@0,0")[1]) == (top_id, y)
    assert not w.chat.at_bottom()


def test_a_right_click_on_a_message_opens_its_menu_and_a_system_line_none(make_window):
    w = window(make_window)
    w.append(msg(7, "the seventh"), "#maths")
    w.append(Line(SYSTEM, "10:00", "", "carol joined"), "#maths")
    settle(w)
    right_click_text(w, "seventh")
    assert w.controller.called("message_menu") == [("#maths", 7)]
    assert w.chat.menu.labels == ["Reply", "Copy"]
    w.chat.menu.invoke("Copy")
    assert w.controller.called("message_action") == [("#maths", 7, "copy")]
    assert w.chat.menu.labels == []             # chosen: the menu is down
    right_click_text(w, "carol joined")
    assert w.controller.called("message_menu") == [("#maths", 7)]
    # A message the controller offers nothing for: no menu opens.
    w.controller.message_items = []
    right_click_text(w, "seventh")
    assert w.chat.menu.labels == []


def test_a_right_click_on_a_person_opens_the_person_menu_for_this_room(make_window):
    w = window(make_window)
    w.set_users(["alice", "bob"], "alice", roles={"alice": OP})
    settle(w)
    right_click_person(w, "bob")
    assert w.controller.called("person_menu") == [("#maths", "bob")]
    menu = w.chat.menu.menu
    assert w.chat.menu.labels == ["Private message", "Mention", "Mute for 5 minutes"]
    assert [menu.type(i) for i in range(menu.index("end") + 1)] == ["command", "command", "separator", "command"]
    w.chat.menu.invoke("Mute for 5 minutes")
    assert w.controller.called("person_action") == [("#maths", "bob", "mute:300")]
    assert w.chat.people.selection() == (str(w.chat.users.index("bob")),)
    with pytest.raises(KeyError):
        w.chat.menu.invoke("Kick")          # closed after the choice


def test_the_people_list_marks_roles(make_window):
    w = window(make_window)
    w.set_users(["alice", "bob", "carol", "dave"], "alice", roles={"alice": OWNER, "bob": OP, "carol": VOICE})
    settle(w)
    labels = [w.chat.people.item(r, "text") for r in w.chat.people.get_children()]
    assert labels == ["●  @alice  (owner, you)", "●  @bob", "●  +carol", "●  dave"]


def test_an_op_gets_room_settings_and_a_member_who_may_not_speak_is_told_why(make_window):
    w = window(make_window)
    w.show_room("#maths", "#maths", "")
    settle(w)
    assert not w.chat.room_settings_button.winfo_ismapped()
    w.set_powers("#maths", RoomPowers(role=OP, moderate=True))
    settle(w)
    assert w.chat.room_settings_button.winfo_ismapped()
    w.chat.room_settings_button.invoke()
    assert w.controller.called("room_settings") == [("#maths",)]
    # Another room where we are a member: no button there; back: it is there again.
    w.show_room("#art", "#art", "")
    w.set_powers("#art", RoomPowers(role=MEMBER, speak=False, modes=Modes(announce=True),
                                    why="Only the ops speak in #art (announcements)."))
    settle(w)
    assert not w.chat.room_settings_button.winfo_ismapped()
    assert w.chat.placeholder.cget("text") == "Only the ops speak in #art (announcements)."
    w.show_room("#maths", "#maths", "")
    settle(w)
    assert w.chat.room_settings_button.winfo_ismapped()
    assert w.chat.placeholder.cget("text").startswith("Message #maths")


def test_the_questions_list_releases_the_chosen_question(make_window):
    w = window(make_window)
    panel = w.chat.questions_panel
    assert not panel.winfo_ismapped()
    w.set_questions("#maths", [Question(11, "bob", "what is a prime?", "10:01"),
                               Question(12, "carol", "is 1 a prime?\nreally?", "10:02")])
    settle(w)
    assert panel.winfo_ismapped()
    assert panel.title.cget("text") == "QUESTIONS — 2 waiting"
    assert [panel.tree.item(r, "text") for r in panel.tree.get_children()] == ["what is a prime?",
                                                                               "is 1 a prime? really?"]
    panel.release_button.invoke()               # the oldest is chosen by itself
    panel.select(12)
    panel.release_button.invoke()
    assert w.controller.called("release_question") == [("#maths", 11), ("#maths", 12)]
    # 11 released: greyed, no Release for it; 12 stays chosen.
    w.set_questions("#maths", [Question(11, "bob", "what is a prime?", "10:01", released_by="alice"),
                               Question(12, "carol", "is 1 a prime?", "10:02")])
    settle(w)
    assert panel.title.cget("text") == "QUESTIONS — 1 waiting"
    assert panel.chosen().id == 12
    assert "released" in panel.tree.item("11", "tags")
    assert "released by alice" in panel.tree.item("11", "values")[0]
    panel.select(11)
    assert panel.release_button.instate(["disabled"])
    panel.release_button.invoke()
    assert len(w.controller.called("release_question")) == 2
    # Another room has no questions: the list goes; back, it comes back.
    w.show_room("#art", "#art", "")
    settle(w)
    assert not panel.winfo_ismapped()
    w.show_room("#maths", "#maths", "")
    settle(w)
    assert panel.winfo_ismapped()
    w.set_questions("#maths", [])
    settle(w)
    assert not panel.winfo_ismapped()


def test_the_room_settings_dialog_shows_the_modes_and_saves_what_was_chosen(make_window):
    w = window(make_window)
    w.show_room_settings(RoomSettings("#maths", "#maths", Modes(moderated=True, slow=0, dm=True, key=True),
                                      "Fractions today"))
    settle(w)
    d = w.room_settings
    assert d.alive
    labels = {f: d.checks[f].cget("text") for f in ("moderated", "questions", "announce", "slow", "dm")}
    assert labels == MODE_LABELS
    assert labels["moderated"] == "Only I and helpers can speak"
    assert labels["questions"] == "Questions go to me first"
    assert d.vars["moderated"].get() and not d.vars["questions"].get() and d.vars["dm"].get()
    assert d.slow_entry.instate(["disabled"]) and d.topic.get() == "Fractions today"
    # Slow mode with a bad number: a sentence, nothing sent, the dialog stays.
    d.checks["slow"].invoke()
    d.slow.set("ten")
    d.save_button.invoke()
    assert "whole number of seconds from 1 to 86400" in d.note.cget("text")
    assert w.controller.called("apply_room_settings") == [] and d.alive
    d.slow.set("20")
    d.checks["questions"].invoke()
    d.checks["dm"].invoke()
    d.topic.set("  Fractions, part 2 ")
    d.save_button.invoke()
    assert w.controller.called("apply_room_settings") == [
        ("#maths", Modes(moderated=True, questions=True, slow=20, dm=False, key=True), "Fractions, part 2", None)]
    assert not d.alive
    # The key: a new one, or none.
    w.show_room_settings(RoomSettings("#maths", "#maths", Modes(key=True), ""))
    w.room_settings.key.set("s3cret")
    w.room_settings.save_button.invoke()
    w.show_room_settings(RoomSettings("#maths", "#maths", Modes(key=True), ""))
    w.room_settings.checks["no_key"].invoke()
    assert w.room_settings.key_entry.instate(["disabled"])
    w.room_settings.save_button.invoke()
    assert [c[3] for c in w.controller.called("apply_room_settings")[1:]] == ["s3cret", ""]
    # Cancel sends nothing.
    w.show_room_settings(RoomSettings("#maths", "#maths", Modes(), ""))
    w.room_settings.checks["announce"].invoke()
    w.room_settings.cancel_button.invoke()
    assert len(w.controller.called("apply_room_settings")) == 3 and not w.room_settings.alive


def test_the_settings_show_the_fingerprint_to_copy(make_window):
    w = window(make_window)
    w.set_identity(FP)
    w.chat.settings_button.invoke()
    d = w.settings_dialog
    assert d.value.get() == FP and str(d.field.cget("state")) == "readonly"
    w.root.clipboard_clear()
    d.copy_button.invoke()
    assert w.root.clipboard_get() == FP and d.copied.cget("text") == "Copied."
    # Selectable in its field, all of it, as the operator types it.
    d.field.selection_range(0, "end")
    assert d.field.selection_get() == FP
    d.close_button.invoke()
    assert not d.alive
    # Before there is an identity: said so, nothing to copy; it shows once it comes.
    w.fingerprint = None
    w.chat.settings_button.invoke()
    d = w.settings_dialog
    assert d.value.get() == NO_IDENTITY and d.copy_button.instate(["disabled"])
    w.set_identity(FP)
    assert d.value.get() == FP and d.copy_button.instate(["!disabled"])
