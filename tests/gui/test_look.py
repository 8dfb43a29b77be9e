"""What the window looks like where the layout used to go wrong: the key
hints in a narrow window, the people list while offline, the form's card
width, Ctrl+A in the form, the /help table and the hosting history line."""
from __future__ import annotations

import pytest

from chatgui.app.settings import Settings
from tests.gui.conftest import wait_until

pytestmark = pytest.mark.gui


def _right(widget) -> int:
    return widget.winfo_rootx() + widget.winfo_width()


@pytest.mark.parametrize("geometry", ["560x400", "700x400", "1000x500"])
def test_the_key_hints_never_run_into_the_status(make_window, geometry):
    w = make_window(None, Settings(geometry=geometry))
    w.show_chat()
    chat = w.chat
    chat.set_status("reconnecting to 192.168.100.200:30000 in 12 s", "waiting", "Retry now")
    w.root.update_idletasks()
    wait_until(w.root, lambda: chat.status.winfo_width() > 100)
    w.root.update()
    hint = chat.hint_label
    if hint.winfo_ismapped():
        assert hint.winfo_rootx() >= _right(chat.action_button), (hint.cget("text"), geometry)
        assert _right(hint) <= _right(chat.status)
    assert _right(chat.action_button) <= _right(chat.status)
    if geometry == "1000x500":
        assert hint.winfo_ismapped() and "Shift+Enter" in hint.cget("text")
    chat.set_status("connected to 127.0.0.1:30000 as alice", "online")
    w.root.update()
    assert hint.winfo_ismapped()      # room again once the button has gone


def test_the_people_list_greys_everyone_and_says_offline(make_window):
    w = make_window(None)
    w.show_chat()
    chat = w.chat
    chat.set_users(["alice", "bob"], "alice", online=True)
    w.root.update()
    assert chat.people_label.cget("text") == "ONLINE — 2"
    assert "offline" not in chat.people.item("1", "tags")
    chat.set_users(["alice", "bob"], "alice", online=False)
    w.root.update()
    assert chat.people_label.cget("text") == "OFFLINE"
    rows = chat.people.get_children()
    assert [chat.people.item(r, "text") for r in rows] == ["○  alice  (you)", "○  bob"]
    assert all(list(chat.people.item(r, "tags")) == ["offline"] for r in rows)
    assert str(chat.people.tag_configure("offline", "foreground")) == w.pal.muted


def test_help_lines_its_columns_up(make_window):
    """The conversation's font is proportional: the descriptions start at
    one x, whatever the width of the usage before them."""
    w = make_window(None, Settings(geometry="1000x600"))
    w.controller.in_chat = True
    w.show_chat()
    w.controller.submit("/help")
    w.pump.drain_now()
    wait_until(w.root, lambda: "Commands:" in w.chat.text.get("1.0", "end"))
    t = w.chat.text
    t.see("1.0")
    w.root.update()
    from chatgui.app.commands import COMMANDS
    starts, codes = set(), set()
    for usage, what in COMMANDS.values():
        row = t.search(usage + "\t", "1.0", stopindex="end")
        assert row, usage
        t.see(row)              # the table may be taller than the window
        w.root.update()
        codes.add(t.bbox(row)[0])
        starts.add(t.bbox(f"{row}+{len(usage) + 1}c")[0])
        assert "code" in t.tag_names(row)
    assert w.fonts.mono.metrics("fixed") == 1           # the usages are in a fixed-width font
    assert len(codes) == 1, codes
    assert len(starts) == 1, starts
    w.chat.input.focus_force()
    w.chat.input.event_generate("<Control-plus>")       # still lined up at another size
    w.root.update()
    starts = set()
    for usage, _ in COMMANDS.values():
        row = t.search(usage + "\t", "1.0", stopindex="end")
        t.see(row)
        w.root.update()
        starts.add(t.bbox(f"{row}+{len(usage) + 1}c")[0])
    assert len(starts) == 1, starts


def test_the_forms_card_keeps_its_width_when_an_error_appears(make_window):
    w = make_window(None, Settings(nick="alice", geometry="1000x700"))
    card = w.form.card
    wait_until(w.root, lambda: card.winfo_width() > 100)
    w.root.update()
    width = card.winfo_width()
    w.controller._show_form("Warning: " + "a long explanation of what happened. " * 8)
    w.root.update_idletasks()
    w.root.update()
    assert w.form.error_label.winfo_height() > 3 * w.fonts.ui.metrics("linespace")    # it wrapped
    assert card.winfo_width() == width
    w.controller._show_form(None)
    w.root.update()
    assert card.winfo_width() == width
    w.form.host_room.set(True)                  # the history line, a long path in a test's home
    w.root.update_idletasks()
    w.root.update()
    assert w.form.note_label.winfo_ismapped() and card.winfo_width() == width


def test_ctrl_a_selects_all_of_a_form_field(make_window):
    w = make_window(None, Settings(nick="alice", host="192.168.1.20"))
    entry = w.form.host_entry
    entry.focus_force()
    entry.selection_clear()
    entry.icursor(3)
    w.root.update()
    entry.event_generate("<Control-a>")
    assert entry.selection_present() and entry.selection_get() == "192.168.1.20"
    assert entry.index("insert") == len("192.168.1.20")


def test_the_form_says_which_history_a_hosted_room_will_use(make_window):
    from chatgui.app.hosting import room_history_path, shown_path
    w = make_window(None, Settings(nick="alice", port=30000))
    form = w.form
    w.root.update()
    assert not form.note_label.winfo_ismapped()
    form.host_room.set(True)
    w.root.update()
    assert form.note_label.winfo_ismapped()
    assert form.note_label.cget("text") == f"History of the room on port 30000: {shown_path(room_history_path(30000))}"
    form.port.set("4567")
    w.root.update()
    assert form.note_label.cget("text").endswith("room-4567.db")
    # It sits under the hosting checkboxes.
    assert form.note_label.winfo_rooty() > form.lan_check.winfo_rooty()


def test_the_forms_card_is_as_wide_when_it_opens_with_hosting_ticked(make_window):
    widths = []
    for hosting in (False, True):
        w = make_window(None, Settings(nick="alice", geometry="1000x700", host_room=hosting))
        wait_until(w.root, lambda: w.form.card.winfo_width() > 100)
        w.root.update_idletasks()
        w.root.update()
        assert bool(w.form.note_label.winfo_ismapped()) is hosting
        widths.append(w.form.card.winfo_width())
    assert widths[0] == widths[1], widths
