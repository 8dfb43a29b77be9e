"""The window's rooms, driven through the View methods with a controller
that records what the window calls on it: the room list (counts, mention
marks, the active room, clicks with the draft), the room keys, one
scrollback and scroll position per conversation, following the bottom per
room, older lines put on top without moving the view and asked for once
per arrival at the top, the "new messages" rule, reading the bottom, the
topic in the header, and the rooms browser."""
from __future__ import annotations

import pytest

from chatgui.app.controller import Controller
from chatgui.app.settings import Settings
from chatgui.app.view import OTHER, RoomChoice, RoomEntry, Line
from chatgui.tk.conversation import BEGINNING, UNREAD_LABEL
from chatgui.tk.room_browser import NO_LOCK
from tests.gui.conftest import wait_until

pytestmark = pytest.mark.gui

ROOMS = [RoomEntry("#lobby", "#lobby"), RoomEntry("#maths", "#maths", unread=3),
         RoomEntry("#release", "#release", unread=12, mention=True),
         RoomEntry("#a-room-with-a-name-far-too-long-for-the-side", "#a-room-with-a-name-far-too-long-for-the-side"),
         RoomEntry("@carol", "carol", unread=1, mention=True, private=True),
         RoomEntry("@dave", "dave", private=True)]


class Recorder(Controller):
    """The real controller, except that what the window calls for rooms is
    recorded (``calls``) instead of done."""

    def __init__(self, *a, **kw):
        super().__init__(*a, **kw)
        self.calls: list[tuple] = []

    def switch_room(self, room_id, draft):
        self.calls.append(("switch_room", room_id, draft))

    def next_room(self, step):
        self.calls.append(("next_room", step))
        return f"#step{step:+d}"

    def room_at(self, n):
        self.calls.append(("room_at", n))
        return f"#at{n}" if n < 9 else None      # no ninth room

    def load_older(self, room_id):
        self.calls.append(("load_older", room_id))

    def seen_bottom(self, room_id):
        self.calls.append(("seen_bottom", room_id))

    def join_room(self, name, key=None):
        self.calls.append(("join_room", name, key))

    def browse_rooms(self):
        self.calls.append(("browse_rooms",))

    def trimmed(self, room_id, oldest_id):
        self.calls.append(("trimmed", room_id, oldest_id))

    def called(self, name):
        return [c[1:] for c in self.calls if c[0] == name]


def line(i: int, room: str = "", text: str | None = None) -> Line:
    return Line(OTHER, f"12:{i % 60:02d}", "bob", text or f"{room} message {i}", who_key="bob", msg_id=i)


def settle(w) -> None:
    for _ in range(3):
        w.root.update_idletasks()
        w.pump.drain_now()
        w.root.update()


def window(make_window, geometry="800x480", **kw):
    w = make_window(None, Settings(geometry=geometry), controller_class=Recorder, **kw)
    w.show_chat()
    wait_until(w.root, lambda: w.chat.winfo_ismapped())
    return w


def fill(w, room: str, first: int, n: int) -> None:
    for i in range(first, first + n):
        w.append(line(i, room), room)
    settle(w)


def top_line(w) -> str:
    t = w.chat.text
    return t.get("@0,0 linestart", "@0,0 lineend")


def bottom_visible(w) -> bool:
    t = w.chat.text
    info = t.dlineinfo("end-1c")
    return info is not None and info[1] + info[3] <= t.winfo_height()


def wheel(w, up: bool, times: int = 1) -> None:
    t = w.chat.text
    for _ in range(times):
        t.event_generate("<Button-4>" if up else "<Button-5>", x=t.winfo_width() // 2, y=t.winfo_height() // 2)
    w.root.update()


def wheel_to_top(w) -> None:
    for _ in range(200):
        if w.chat.text.yview()[0] <= 0.0:
            return
        wheel(w, up=True)
    raise AssertionError("the wheel never reached the top")


def test_the_room_list_shows_counts_marks_and_the_active_room(make_window):
    w = window(make_window)
    rooms = w.chat.rooms
    w.set_rooms(ROOMS, "#maths")
    w.root.update()
    assert rooms.shown("#lobby") == ("#lobby", "", ("read",))
    assert rooms.shown("#maths")[:2] == ("#maths", "3")
    assert rooms.shown("#release") == ("#release", "@12", ("mention",))
    assert rooms.shown("@carol") == ("carol", "@1", ("mention",))
    assert rooms.shown("@dave") == ("dave", "", ("read",))
    label = rooms.shown("#a-room-with-a-name-far-too-long-for-the-side")[0]
    assert label.startswith("#a-room") and label.endswith("…")
    # Rooms first, then a heading, then the private conversations.
    texts = [rooms.tree.item(r, "text") for r in rooms.tree.get_children()]
    assert texts.index("PRIVATE") == 4 and texts[5:] == ["carol", "dave"]
    assert rooms.tree.selection() == (rooms.row_of("#maths"),)
    # A click asks the controller, with the draft; the selection waits for it.
    w.chat.set_input("half a thought")
    bbox = rooms.tree.bbox(rooms.row_of("@carol"))
    rooms.tree.event_generate("<Button-1>", x=bbox[0] + 10, y=bbox[1] + bbox[3] // 2)
    assert w.controller.called("switch_room") == [("@carol", "half a thought")]
    assert rooms.tree.selection() == (rooms.row_of("#maths"),)
    heading = next(r for r in rooms.tree.get_children() if rooms.tree.item(r, "text") == "PRIVATE")
    bbox = rooms.tree.bbox(heading)
    rooms.tree.event_generate("<Button-1>", x=bbox[0] + 10, y=bbox[1] + bbox[3] // 2)
    assert len(w.controller.called("switch_room")) == 1          # the heading is no room
    w.set_rooms([RoomEntry("#lobby", "#lobby"), RoomEntry("#maths", "#maths")], "#lobby")
    w.root.update()
    assert rooms.tree.selection() == (rooms.row_of("#lobby"),)
    assert rooms.shown("#maths") == ("#maths", "", ("read",))
    assert "PRIVATE" not in [rooms.tree.item(r, "text") for r in rooms.tree.get_children()]
    rooms.browse_button.invoke()
    assert w.controller.called("browse_rooms") == [()]


def test_ctrl_page_keys_and_alt_digits_ask_for_rooms(make_window):
    """The controller names the room (next_room, room_at); the window
    switches to it with the draft."""
    w = window(make_window)
    inp = w.chat.input
    w.chat.set_input("draft")
    inp.focus_force()
    w.root.update()
    inp.event_generate("<Control-Next>")
    inp.event_generate("<Control-Prior>")
    for n in (1, 5, 9):
        inp.event_generate("<Alt-Key>", keysym=str(n))
    assert w.controller.called("next_room") == [(1,), (-1,)]
    assert w.controller.called("room_at") == [(1,), (5,), (9,)]
    assert w.controller.called("switch_room") == [("#step+1", "draft"), ("#step-1", "draft"),
                                                  ("#at1", "draft"), ("#at5", "draft")]
    assert w.chat.get_input() == "draft"     # no digit typed into the box
    # From the conversation too (it takes the focus when clicked).
    w.chat.text.focus_force()
    w.root.update()
    w.chat.text.event_generate("<Control-Next>")
    assert w.controller.called("next_room")[-1] == (1,)


def test_each_conversation_keeps_its_lines_and_scroll_position(make_window):
    w = window(make_window)
    w.show_room("#a", "#a", "")
    fill(w, "#a", 1, 60)
    wheel(w, up=True, times=8)
    settle(w)
    assert not w.chat.at_bottom() and not bottom_visible(w)
    a_top = top_line(w)
    w.show_room("#b", "#b", "")
    fill(w, "#b", 101, 60)
    assert "#b message 160" in w.chat.text.get("1.0", "end") and "#a message" not in w.chat.text.get("1.0", "end")
    assert bottom_visible(w) and w.chat.at_bottom()
    # Lines for a hidden room go there; the visible one (room None) is #b.
    w.append(line(61, "#a"), "#a")
    w.append(line(62, "#a"), "#a")
    w.append(line(161, "", "to whichever is visible"))
    settle(w)
    assert "to whichever is visible" in w.chat.text.get("1.0", "end") and bottom_visible(w)
    w.show_room("#a", "#a", "")
    settle(w)
    assert top_line(w) == a_top, "switching moved #a's view"
    assert w.chat.new_button.winfo_ismapped() and w.chat.new_button.cget("text") == "2 new messages ↓"
    assert "to whichever is visible" not in w.chat.text.get("1.0", "end")
    w.show_room("#b", "#b", "")
    settle(w)
    assert bottom_visible(w) and "message 160" in w.chat.text.get("1.0", "end")
    # Waiting lines, per room; the ack removes them wherever they are.
    w.add_pending("r1", Line("own", "12:00", "me", "waiting in #a", pending=True), "#a")
    w.add_pending("r2", Line("own", "12:00", "me", "waiting here", pending=True))
    assert "waiting here" in w.chat.text.get("1.0", "end")
    a = w.chat.conversations["#a"]
    assert "waiting in #a" in a.text.get("1.0", "end")
    w.remove_pending("r1")
    assert "waiting in #a" not in a.text.get("1.0", "end")
    # Clearing one room leaves the other, and its waiting line.
    w.clear("#b")
    assert w.chat.text.get("1.0", "end-1c") == "12:00\tme\twaiting here   waiting to send\n"
    assert a.line_count() == 62
    w.forget_room("#a")
    assert "#a" not in w.chat.conversations and a.winfo_exists() == 0
    w.show_room("#a", "#a", "")
    assert w.chat.line_count() == 0                  # a new, empty conversation


def test_a_hidden_room_that_followed_its_bottom_shows_its_newest_lines(make_window):
    """Issue 9's following, per room: while hidden it goes on following."""
    w = window(make_window)
    w.show_room("#a", "#a", "")
    fill(w, "#a", 1, 10)
    w.show_room("#b", "#b", "")
    fill(w, "#b", 101, 5)
    fill(w, "#a", 11, 80)                   # #a grows well past its view while hidden
    w.chat.input.focus_force()              # and the font grows meanwhile
    w.chat.input.event_generate("<Control-plus>")
    settle(w)
    w.show_room("#a", "#a", "")
    settle(w)
    assert bottom_visible(w) and w.chat.at_bottom()
    assert w.chat.text.bbox(w.chat.text.search("#a message 90", "1.0")) is not None
    assert not w.chat.new_button.winfo_ismapped()


def test_older_lines_go_on_top_without_moving_the_view(make_window):
    w = window(make_window)
    w.show_room("#a", "#a", "")
    fill(w, "#a", 1000, 60)
    w.controller.calls.clear()
    wheel_to_top(w)
    settle(w)
    assert w.controller.called("load_older") == [("#a",)]
    wheel(w, up=True, times=5)              # waiting at the top: asked once only
    settle(w)
    assert w.controller.called("load_older") == [("#a",)]
    before, first = top_line(w), w.chat.text.dlineinfo("@0,0")[1]
    w.prepend("#a", [line(i, "#a") for i in range(960, 1000)], True)
    settle(w)
    assert top_line(w) == before and w.chat.text.dlineinfo("@0,0")[1] == first
    assert w.chat.text.get("1.0", "1.0 lineend").endswith("#a message 960")
    assert w.chat.line_count() == 100
    # A wrapped line half off the top stays half off the top.
    w.prepend("#a", [line(950, "#a", "older " * 200)], True)
    settle(w)
    assert top_line(w) == before and w.chat.text.dlineinfo("@0,0")[1] == first
    # Up to the top again: asked again; then the beginning, and no more asking.
    wheel_to_top(w)
    settle(w)
    assert w.controller.called("load_older") == [("#a",), ("#a",)]
    before = top_line(w)
    w.prepend("#a", [line(i, "#a") for i in range(900, 910)], False)
    settle(w)
    assert top_line(w) == before
    assert w.chat.text.get("1.0", "1.0 lineend") == BEGINNING
    wheel_to_top(w)
    wheel(w, up=True, times=3)
    assert w.controller.called("load_older") == [("#a",), ("#a",)]


def test_the_top_is_reached_by_the_scrollbar_and_keys_too(make_window):
    w = window(make_window)
    w.show_room("#a", "#a", "")
    fill(w, "#a", 1, 60)
    w.controller.calls.clear()
    w.chat.current.scroll.set(0.5, 0.6)
    w.chat.current._on_scrollbar("moveto", "0.0")   # what dragging the thumb to the top calls
    settle(w)
    assert w.controller.called("load_older") == [("#a",)]
    w.chat.current._on_scrollbar("moveto", "0.5")
    settle(w)
    t = w.chat.text
    t.focus_force()
    w.root.update()
    t.event_generate("<Control-Home>")
    t.event_generate("<KeyPress>", keysym="Prior")
    settle(w)
    assert t.yview()[0] == 0.0
    assert w.controller.called("load_older") == [("#a",), ("#a",)]
    # Another room asks for itself; a hidden one never does.
    w.show_room("#b", "#b", "")
    fill(w, "#b", 100, 3)                   # fits: the wheel up at the top asks
    wheel(w, up=True)
    assert w.controller.called("load_older")[-1] == ("#b",)
    assert len(w.controller.called("load_older")) == 3


def test_a_short_room_prepended_keeps_its_lines_in_view(make_window):
    """All of it fitted: the older lines come above, what was shown stays on screen."""
    w = window(make_window)
    w.show_room("#a", "#a", "")
    fill(w, "#a", 50, 3)
    w.prepend("#a", [line(i, "#a") for i in range(1, 50)], True)
    settle(w)
    t = w.chat.text
    for i in (50, 51, 52):
        assert t.bbox(t.search(f"#a message {i}", "1.0")) is not None
    assert bottom_visible(w) and w.chat.at_bottom()


def test_the_unread_rule_stands_above_its_message(make_window):
    w = window(make_window)
    w.show_room("#a", "#a", "")
    fill(w, "#a", 1, 40)
    conv = w.chat.current
    t = w.chat.text
    w.set_unread_marker("#a", 30)
    settle(w)
    rule = conv.unread_rule_index()
    row = int(rule.split(".")[0])
    assert t.get(f"{row + 1}.0", f"{row + 1}.0 lineend").endswith("#a message 30")
    assert t.get(f"{row - 1}.0", f"{row - 1}.0 lineend").endswith("#a message 29")
    assert t.window_names() and conv._rule.winfo_ismapped()
    assert UNREAD_LABEL in [conv._rule.itemcget(i, "text") for i in conv._rule.find_all()
                            if conv._rule.type(i) == "text"]
    w.set_unread_marker("#a", 35)
    assert t.get(f"{int(conv.unread_rule_index().split('.')[0]) + 1}.0", "end").startswith("12:35")
    assert len(t.tag_ranges("rule")) == 2          # one rule, not two
    w.set_unread_marker("#a", None)
    assert conv.unread_rule_index() is None and not t.window_names()
    assert w.chat.line_count() == 40
    # For a message not here yet: drawn when it comes, at the top or the bottom.
    w.set_unread_marker("#a", 41)
    assert conv.unread_rule_index() is None
    fill(w, "#a", 41, 2)
    assert t.get(f"{int(conv.unread_rule_index().split('.')[0]) + 1}.0", "end").startswith("12:41")
    w.set_unread_marker("#a", -5)
    w.prepend("#a", [line(-6, "#a"), line(-5, "#a")], True)
    assert conv.unread_rule_index() == "2.0"
    # Older lines go above the rule; the rule stays above its message.
    w.prepend("#a", [line(-7, "#a")], True)
    assert conv.unread_rule_index() == "3.0"


def test_reaching_the_bottom_is_reported(make_window):
    w = window(make_window)
    w.show_room("#a", "#a", "")
    fill(w, "#a", 1, 60)
    assert ("#a",) in w.controller.called("seen_bottom")      # new lines at the bottom, seen
    wheel(w, up=True, times=8)
    settle(w)
    w.controller.calls.clear()
    fill(w, "#a", 61, 2)                    # arriving below the view: not seen
    assert w.controller.called("seen_bottom") == []
    wheel(w, up=False, times=80)
    settle(w)
    assert w.controller.called("seen_bottom") == [("#a",)]
    wheel(w, up=True, times=8)
    w.chat.new_button.invoke() if w.chat.new_button.winfo_ismapped() else w.chat.current.to_bottom()
    assert w.controller.called("seen_bottom") == [("#a",), ("#a",)]
    # Switching: to a room at its bottom reports it; to one scrolled up does not.
    wheel(w, up=True, times=8)
    settle(w)
    w.show_room("#b", "#b", "")
    fill(w, "#b", 100, 5)
    w.controller.calls.clear()
    w.show_room("#a", "#a", "")
    settle(w)
    assert w.controller.called("seen_bottom") == []
    w.show_room("#b", "#b", "")
    settle(w)
    assert w.controller.called("seen_bottom") == [("#b",)]
    # A hidden room's new lines are not seen; nor the visible one's while
    # the window has no focus (the window sets this on FocusOut).
    w.controller.calls.clear()
    fill(w, "#a", 63, 3)
    assert w.controller.called("seen_bottom") == []
    w.chat.focused = False
    fill(w, "#b", 105, 3)
    assert w.controller.called("seen_bottom") == [] and w.chat.at_bottom()
    w.chat.focused = True
    fill(w, "#b", 108, 1)
    assert w.controller.called("seen_bottom") == [("#b",)]


def test_the_header_shows_the_title_and_the_topic_elided(make_window):
    w = window(make_window, geometry="700x420")
    chat = w.chat
    topic = "Homework help for group B: " + "the exercises of chapter seven and how to read them " * 4
    w.show_room("#maths", "#maths", topic)
    w.root.update_idletasks()
    w.root.update()
    assert chat.room_label.cget("text") == "#maths"
    shown = chat.topic_label.cget("text")
    assert shown.endswith("…") and topic.startswith(shown[:-1])
    assert chat.topic_label.winfo_reqwidth() <= chat.topic_label.winfo_width() + 2
    assert chat.topic_label.winfo_rootx() + chat.topic_label.winfo_width() <= chat.address_label.winfo_rootx()
    chat.topic_label.event_generate("<Button-1>")
    w.root.update()
    assert chat.topic_tip.showing and chat.topic_tip.label.cget("text") == topic
    chat.topic_label.event_generate("<Button-1>")
    assert not chat.topic_tip.showing
    assert chat.placeholder.cget("text").startswith("Message #maths")
    w.root.geometry("1400x420")             # wider: more of it shows
    wait_until(w.root, lambda: len(chat.topic_label.cget("text")) > len(shown), what="a longer topic")
    w.show_room("@carol", "carol", "")
    w.root.update()
    assert chat.room_label.cget("text") == "carol" and chat.topic_label.cget("text") == ""
    chat.topic_label.event_generate("<Button-1>")
    assert not chat.topic_tip.showing        # nothing to show


CHOICES = [RoomChoice("lobby", "Welcome", 14, False, True),
           RoomChoice("maths", "Homework help, group B", 5, False, False),
           RoomChoice("secret", "Planning the party", 3, True, False),
           RoomChoice("vault", "", 2, True, True)]


def test_the_rooms_browser_joins_with_a_key_and_creates(make_window):
    w = window(make_window, emoji_ok=False)         # the lock as words
    w.show_room_browser(CHOICES)
    b = w.browser
    wait_until(w.root, lambda: b.top.winfo_ismapped(), what="the browser")
    rows = [b.tree.item(r) for r in b.tree.get_children()]
    assert [r["text"] for r in rows] == ["#lobby", "#maths", "#secret" + NO_LOCK, "#vault" + NO_LOCK]
    assert [r["values"] for r in rows] == [["Welcome", 14, "joined"], ["Homework help, group B", 5, ""],
                                           ["Planning the party", 3, ""], ["", 2, "joined"]]
    # A room without a key: Join at once.
    b.select("maths")
    assert not b.key_row.winfo_ismapped() and b.join_button.cget("text") == "Join"
    b.join_button.invoke()
    assert w.controller.called("join_room") == [("maths", None)]
    assert not b.alive
    # A room with a key: the key first.
    w.show_room_browser(CHOICES)
    b = w.browser
    b.select("secret")
    w.root.update()
    assert b.key_row.winfo_ismapped() and b.key_label.cget("text") == "Key for #secret"
    b.join_button.invoke()
    assert "needs a key" in b.note.cget("text") and len(w.controller.called("join_room")) == 1
    b.key.set("s3cret")
    b.key_entry.event_generate("<Return>")
    assert w.controller.called("join_room")[-1] == ("secret", "s3cret") and not b.alive
    # Ours already (even with a key): open it, no key asked.
    w.show_room_browser(CHOICES)
    b = w.browser
    b.select("vault")
    w.root.update()
    assert not b.key_row.winfo_ismapped() and b.join_button.cget("text") == "Open"
    b.join_button.invoke()
    assert w.controller.called("join_room")[-1] == ("vault", None)
    # Create: a name (with or without its #), a key if wanted; empty says so.
    w.show_room_browser(CHOICES)
    b = w.browser
    b.create_button.invoke()
    assert "name of the room" in b.note.cget("text") and b.alive
    b.new_name.set("#physics")
    b.new_key.set("k")
    b.create_button.invoke()
    assert w.controller.called("join_room")[-1] == ("physics", "k") and not b.alive
    # Asked again while open: the same window, the new list, the choice kept.
    w.show_room_browser(CHOICES)
    b = w.browser
    b.select("secret")
    w.show_room_browser(CHOICES[:3] + [RoomChoice("new", "fresh", 1, False, False)])
    assert w.browser is b and b.chosen().name == "secret" and len(b.tree.get_children()) == 4
    b.tree.focus_force()
    w.root.update()
    b.tree.event_generate("<Escape>")
    assert not b.alive
    assert len(w.controller.called("join_room")) == 4


def test_the_browser_draws_a_lock_picture_when_emoji_are_pictures(make_window):
    from chatgui.app import emoji
    if not emoji.available():
        pytest.skip("the emoji artwork is not installed here")
    w = window(make_window, emoji_ok=True)
    w.show_room_browser(CHOICES)
    b = w.browser
    row = b.tree.get_children()[2]
    assert b.tree.item(row, "text") == "#secret" and b.tree.item(row, "image")
    assert not b.tree.item(b.tree.get_children()[1], "image")


def test_many_rooms_in_a_low_window_leave_the_people_list_room(make_window):
    w = window(make_window, geometry="560x380")
    rooms = w.chat.rooms
    w.set_rooms([RoomEntry(f"#room{i}", f"#room{i}") for i in range(14)], "#room13")
    w.set_users([f"user{i}" for i in range(8)], "user0")
    settle(w)
    side = w.chat.side.winfo_height()
    assert rooms.tree.winfo_height() <= side // 2
    assert w.chat.people.winfo_ismapped() and w.chat.people.winfo_height() >= 2 * 24
    assert rooms.scroll.winfo_ismapped()                 # more rooms than rows
    assert rooms.tree.bbox(rooms.row_of("#room13"))      # the active one is in view
    w.root.geometry("560x900")
    wait_until(w.root, lambda: int(rooms.tree.cget("height")) == 9, what="more rows in a taller window")
    w.set_rooms([RoomEntry(f"#room{i}", f"#room{i}") for i in range(3)], "#room0")
    settle(w)
    assert int(rooms.tree.cget("height")) == 3 and not rooms.scroll.winfo_ismapped()


@pytest.mark.timeout(120)
def test_trimming_drops_the_oldest_and_says_which_is_left(make_window):
    from chatgui.tk.conversation import SCROLLBACK, TRIM_SLACK
    w = window(make_window)
    w.show_room("#a", "#a", "")
    conv = w.chat.current
    t = conv.text
    w.prepend("#a", [], False)                  # the beginning line, then more than fit
    n = SCROLLBACK + TRIM_SLACK + 50
    for i in range(1, n + 1):
        w.append(line(i, "#a"), "#a")
    settle(w)
    assert conv.line_count() <= SCROLLBACK
    first = conv.ids[0]
    assert t.get("1.0", "1.0 lineend").endswith(f"#a message {first}")      # the beginning went too
    assert f"m{first - 1}" not in t.mark_names() and f"m{first}" in t.mark_names()
    assert conv.oldest_id() == first and conv.ids[-1] == n and len(conv.ids) == n - first + 1
    assert w.controller.called("trimmed") == [("#a", first)]
    # Older ones can be asked for again, from there.
    w.controller.calls.clear()
    conv._on_scrollbar("moveto", "0.0")         # the thumb dragged to the top
    assert w.controller.called("load_older") == [("#a",)]
    # Scrolled up, only lines well above the view go: what is read stays put.
    wheel(w, up=False, times=6)                 # reading near the top
    settle(w)
    before = top_line(w)
    for i in range(n + 1, n + TRIM_SLACK + 50):
        w.append(line(i, "#a"), "#a")
    settle(w)
    assert top_line(w) == before and not w.chat.at_bottom()
    assert conv.ids[0] == first and conv.line_count() > SCROLLBACK + TRIM_SLACK
    assert w.controller.called("trimmed") == []
    # Further down, the lines well above the view go.
    conv._on_scrollbar("moveto", "0.5")
    settle(w)
    before = top_line(w)
    w.append(line(n + TRIM_SLACK + 50, "#a"), "#a")
    settle(w)
    assert top_line(w) == before and conv.ids[0] > first and conv.line_count() <= SCROLLBACK
    assert w.controller.called("trimmed") == [("#a", conv.ids[0])]
