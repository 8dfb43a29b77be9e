"""Emoji in the real window under Xvfb: pictures in the conversation and the
input box, the real characters when copied and when sent, escaping of
control and bidi characters next to them, and a flood of them kept cheap.

The network is a fake client (tests/fakes.py): events go in through the
controller's queue as the reader thread would put them, and what the
window sends is what the fake client records."""
from __future__ import annotations

import time

import pytest

from chatgui.tk import emoji_text
from chatgui.net import events as ev
from chatgui.app.controller import ConnectValues
from server.protocol import Message
from tests.fakes import FakeClient
from tests.gui.conftest import wait_until

pytestmark = pytest.mark.gui

GRIN = "\U0001F600"
FR = "\U0001F1EB\U0001F1F7"
FAMILY = "\U0001F469\u200d\U0001F469\u200d\U0001F467"
THUMB = "\U0001F44D\U0001F3FD"


def fake_joined(make_window, **kw):
    """A window joined as alice through a fake client: (window, client)."""
    FakeClient.instances.clear()
    w = make_window(ConnectValues(host="127.0.0.1", port="30000", nick="alice"), client_factory=FakeClient,
                    **kw)
    q = w.controller.events
    q.put(ev.Connecting("127.0.0.1", 30000, 1))
    q.put(ev.Connected("127.0.0.1", 30000, "alice", ("alice", "bob"), False))
    q.put(ev.Backlog(()))
    wait_until(w.root, lambda: w.controller.connected and w.controller.in_chat, what="the window to join")
    return w, FakeClient.instances[-1]


def receive(w, text: str, msg_id: int) -> None:
    """bob's message, as the network client hands it over; waits until shown."""
    before = w.chat.line_count()
    w.controller.events.put(Message(msg_id, time.time(), "bob", text))
    wait_until(w.root, lambda: w.chat.line_count() > before, what=f"message {msg_id} to show")


def line_of(w, needle: str) -> str:
    index = w.chat.text.search(needle, "1.0", stopindex="end")
    assert index, f"{needle!r} is not in the conversation"
    return index.split(".")[0]


def pictures(widget) -> list:
    """(index, characters) of each embedded picture, in order."""
    return [(index, emoji_text.chars_of(name))
            for _k, name, index in widget.dump("1.0", "end", image=True)]


def copied(w, widget, start: str, end: str) -> str:
    widget.tag_remove("sel", "1.0", "end")
    widget.tag_add("sel", start, end)
    w.root.clipboard_clear()
    widget.event_generate("<<Copy>>")
    w.root.update()
    return w.root.clipboard_get()


def focus_input(w):
    w.root.focus_force()
    w.chat.input.focus_force()
    w.root.update()
    return w.chat.input


def test_a_message_shows_its_emoji_as_pictures_and_copies_as_characters(make_window):
    w, _client = fake_joined(make_window)
    body = f"look {GRIN} {FR} {FAMILY} alice \u202e{GRIN}\x1bend"
    receive(w, body, 1)
    row = line_of(w, "look")
    shown = pictures(w.chat.text)
    assert [chars for _i, chars in shown] == [GRIN, FR, FAMILY, GRIN]
    assert all(index.startswith(row + ".") for index, _c in shown)
    assert len(w.chat.text.image_names()) == 4
    # Tk holds no astral character, and the bidi and control characters are
    # still escaped, right next to the picture.
    text = w.chat.text.get(f"{row}.0", f"{row}.end")
    assert all(ord(c) <= 0xFFFF for c in text)
    assert text.endswith("look    alice \\u202e\\x1bend")
    # The pictures carry the line's tags: this one mentions alice.
    for index, _chars in shown:
        assert {"line", "mention"} <= set(w.chat.text.tag_names(index))
    # They are drawn (not blank squares) at the height of a line of text.
    images = w.chat.emoji_images
    wait_until(w.root, lambda: images.pending() == 0, what="the pictures to be drawn")
    size = images.size
    assert size == w.fonts.body.metrics("linespace")
    photo = images.photo("1F600")
    assert (photo.width(), photo.height()) == (size, size)
    assert not photo.transparency_get(size // 2, size // 2)
    # Copying gives the characters, escapes as shown, from any part of the line.
    expected = f"look {GRIN} {FR} {FAMILY} alice \\u202e{GRIN}\\x1bend"
    assert copied(w, w.chat.text, f"{row}.0", f"{row}.end").endswith(f"bob\t{expected}")
    assert copied(w, w.chat.text, shown[1][0], f"{shown[2][0]}+1c") == f"{FR} {FAMILY}"


def test_links_and_pictures_together(make_window):
    opened = []
    w, _client = fake_joined(make_window, open_url=opened.append)
    receive(w, f"see https://example.org/{GRIN} {GRIN}", 1)
    row = line_of(w, "see https")
    (link_pic, _), (plain_pic, _) = pictures(w.chat.text)
    assert "link" in w.chat.text.tag_names(link_pic)
    assert "link" not in w.chat.text.tag_names(plain_pic)
    w.chat.text.see("end")
    w.root.update()
    x, y, _, h = w.chat.text.bbox(w.chat.text.search("example.org", f"{row}.0"))
    for event in ("<Motion>", "<ButtonPress-1>", "<ButtonRelease-1>"):
        w.chat.text.event_generate(event, x=x + 2, y=y + h // 2)
    assert opened == [f"https://example.org/{GRIN}"]


def test_the_input_box_turns_a_pasted_emoji_into_a_picture_and_sends_the_characters(make_window):
    w, client = fake_joined(make_window)
    inp = focus_input(w)
    typed = f"hi {GRIN}{FR} {FAMILY}!"
    w.root.clipboard_clear()
    w.root.clipboard_append(typed)
    inp.event_generate("<<Paste>>")
    w.root.update()
    assert [chars for _i, chars in pictures(inp)] == [GRIN, FR, FAMILY]
    assert all(ord(c) <= 0xFFFF for c in inp.get("1.0", "end-1c"))      # no UTF-16 halves left
    assert w.chat.get_input() == typed and w.chat.cursor() == len(typed)
    inp.event_generate("<Return>")
    w.root.update()
    assert client.sent[-1][:2] == ("say", typed)
    assert w.chat.get_input() == ""
    # The line waiting to be sent shows pictures too, and goes with them
    # when the server's copy (by ref) takes its place.
    assert [chars for _i, chars in pictures(w.chat.text)] == [GRIN, FR, FAMILY]
    w.controller.events.put(Message(7, time.time(), "alice", typed, client.sent[-1][2]))
    wait_until(w.root, lambda: not w.controller.pending, what="the ack")
    assert [chars for _i, chars in pictures(w.chat.text)] == [GRIN, FR, FAMILY]
    assert "pending" not in w.chat.text.tag_names(pictures(w.chat.text)[0][0])
    # Up recalls it with its pictures.
    inp.event_generate("<Up>")
    w.root.update()
    assert w.chat.get_input() == typed
    assert [chars for _i, chars in pictures(inp)] == [GRIN, FR, FAMILY]
    # Copy from the input box gives the characters too.
    assert copied(w, inp, "1.0", "end-1c") == typed


def test_emoji_typed_piece_by_piece_join_into_one_picture_that_edits_as_one_character(make_window):
    w, client = fake_joined(make_window)
    inp = focus_input(w)
    for ch in FR + THUMB:               # as an input method commits them, one code point at a time
        inp.insert("insert", ch)
        w.root.update()
    assert [chars for _i, chars in pictures(inp)] == [FR, THUMB]
    assert w.chat.get_input() == FR + THUMB and w.chat.cursor() == 4
    inp.event_generate("<BackSpace>")
    w.root.update()
    assert w.chat.get_input() == FR
    inp.event_generate("<Left>")
    w.root.update()
    assert w.chat.cursor() == 0
    inp.event_generate("<KeyPress>", keysym="a")
    inp.event_generate("<End>")
    inp.event_generate("<KeyPress>", keysym="b")
    w.root.update()
    assert w.chat.get_input() == f"a{FR}b"
    # Pasted in the middle: the picture goes there and the cursor after it.
    inp.event_generate("<Home>")
    inp.event_generate("<Right>")
    w.root.clipboard_clear()
    w.root.clipboard_append(GRIN)
    inp.event_generate("<<Paste>>")
    w.root.update()
    assert w.chat.get_input() == f"a{GRIN}{FR}b" and w.chat.cursor() == 2
    assert [chars for _i, chars in pictures(inp)] == [GRIN, FR]
    inp.event_generate("<Return>")
    w.root.update()
    assert client.sent[-1][:2] == ("say", f"a{GRIN}{FR}b")


def test_tab_completes_a_nick_after_an_emoji(make_window):
    w, _client = fake_joined(make_window)
    inp = focus_input(w)
    inp.insert("insert", f"{FAMILY} hi b")
    w.root.update()
    assert w.chat.cursor() == len(FAMILY) + 5
    inp.event_generate("<Tab>")
    w.root.update()
    assert w.chat.get_input() == f"{FAMILY} hi bob "
    assert w.chat.cursor() == len(f"{FAMILY} hi bob ")
    assert [chars for _i, chars in pictures(inp)] == [FAMILY]


def test_pictures_follow_the_font_size(make_window):
    w, _client = fake_joined(make_window)
    receive(w, f"big {GRIN}", 1)
    images = w.chat.emoji_images
    before = images.size
    inp = focus_input(w)
    inp.event_generate("<Control-plus>")
    inp.event_generate("<Control-plus>")
    wait_until(w.root, lambda: images.pending() == 0)
    after = w.fonts.body.metrics("linespace")
    assert after > before and images.size == after
    assert images.photo("1F600").width() == after


def test_a_flood_of_emoji_stays_cheap_and_loses_no_text(make_window):
    w, _client = fake_joined(make_window)
    many = "".join(chr(c) for c in range(0x1F400, 0x1F400 + 400))       # 400 different animals and things
    receive(w, "flood " + many, 1)
    row = line_of(w, "flood")
    shown = pictures(w.chat.text)
    assert len(shown) == emoji_text.MAX_PICTURES
    # The rest is shown by name, as without pictures.
    assert ":" in w.chat.text.get(shown[-1][0], f"{row}.end")
    wait_until(w.root, lambda: w.chat.emoji_images.pending() == 0, timeout=20,
               what="the pictures to be drawn, a budget per turn")
    assert all(ord(c) <= 0xFFFF for c in w.chat.text.get("1.0", "end"))


def test_pictures_not_drawn_yet_stop_with_their_widget(make_window):
    """Drawing is scheduled on the widget; destroying it cancels what is
    left, so nothing runs against a widget that is gone."""
    import tkinter as tk
    w, _client = fake_joined(make_window)
    text = tk.Text(w.root)
    images = emoji_text.EmojiImages(text, w.fonts.body)
    images._spent = emoji_text.DRAW_BUDGET                 # this turn's budget is spent
    for stem in ("1F400", "1F401", "1F402"):
        images.photo(stem)
    assert images.pending() == 3 and images._after is not None
    text.destroy()
    assert images.pending() == 0 and images._after is None
    w.root.update()
    assert not w.errors
