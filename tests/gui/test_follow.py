"""The conversation follows new messages in the real window: if you were
at the bottom you stay there, whatever changes the layout (a long
history on joining, the input box growing and shrinking, Ctrl+plus, the
status line changing height); if you scrolled up you stay where you are
and a "N new messages ↓" button takes you down. The input box grows with
the display lines of what is typed, up to five, then scrolls."""
from __future__ import annotations

import pytest

from chatgui.tk.chatpane import MAX_INPUT_LINES
from chatgui.app.controller import ConnectValues
from chatgui.net.client import ChatClient
from chatgui.net.backoff import Backoff
from chatgui.app.settings import Settings
from tests.gui.conftest import wait_until
from tests.netclient import LineClient

pytestmark = pytest.mark.gui


def bottom_visible(w) -> bool:
    """The last line of the conversation is on screen, all of it."""
    t = w.chat.text
    info = t.dlineinfo("end-1c")
    return info is not None and info[1] + info[3] <= t.winfo_height()


def line_visible(w, needle: str) -> bool:
    t = w.chat.text
    index = t.search(needle, "end", stopindex="1.0", backwards=True)
    assert index, f"{needle!r} is not in the conversation"
    return t.bbox(index) is not None


def settle(w) -> None:
    """Let every pending layout, redraw and pump tick run."""
    for _ in range(3):
        w.root.update_idletasks()
        wait_until(w.root, lambda: w.controller.events.empty())
    w.root.update()


def talk(srv, n: int, prefix: str = "history") -> LineClient:
    bob = LineClient(srv.port)
    bob.hello("bob")
    for i in range(n):
        bob.send({"type": "say", "text": f"{prefix} {i}", "ref": f"h{i}"})
        while bob.recv_type("message").get("ref") != f"h{i}":
            pass
    return bob


def joined(make_window, srv, **kw):
    w = make_window(ConnectValues(host="127.0.0.1", port=str(srv.port), nick="alice"),
                    Settings(geometry="700x420"), **kw)
    wait_until(w.root, lambda: w.controller.connected and "You joined as" in w.chat.text.get("1.0", "end"),
               what="the welcome")
    settle(w)
    return w


def say_and_see(w, bob, text: str) -> None:
    bob.send({"type": "say", "text": text})
    wait_until(w.root, lambda: text in w.chat.text.get("1.0", "end"), what=text)
    settle(w)


def test_joining_a_long_history_opens_at_the_bottom(make_server, make_window):
    srv = make_server(rate_limit=0)
    bob = talk(srv, 60)
    w = joined(make_window, srv)
    assert bottom_visible(w) and line_visible(w, "You joined as alice")
    assert line_visible(w, "history 59") and not line_visible(w, "history 0")
    say_and_see(w, bob, "and now live")
    assert bottom_visible(w) and line_visible(w, "and now live")


def test_a_message_of_several_lines_keeps_the_bottom_in_view(make_server, make_window):
    srv = make_server(rate_limit=0)
    bob = talk(srv, 60)
    w = joined(make_window, srv)
    inp = w.chat.input
    inp.focus_force()
    w.root.update()
    inp.insert("end", "first line")
    for i in range(3):                       # the box grows a line with each
        inp.event_generate("<Shift-Return>")
        inp.insert("end", f"line {i + 2}")
    settle(w)
    assert int(inp.cget("height")) == 4
    assert bottom_visible(w), "the input box grew and hid the newest lines"
    inp.event_generate("<Return>")           # sent: the box shrinks back
    wait_until(w.root, lambda: not w.controller.pending, what="the ack")
    settle(w)
    assert int(inp.cget("height")) == 1 and bottom_visible(w)
    say_and_see(w, bob, "after the long one")
    assert bottom_visible(w) and line_visible(w, "after the long one")


def test_ctrl_plus_keeps_the_bottom_in_view(make_server, make_window):
    srv = make_server(rate_limit=0)
    bob = talk(srv, 60)
    w = joined(make_window, srv)
    w.chat.input.focus_force()
    w.root.update()
    for _ in range(3):
        w.chat.input.event_generate("<Control-plus>")
    settle(w)
    assert bottom_visible(w), "Ctrl+plus left the view above the newest lines"
    say_and_see(w, bob, "bigger now")
    assert bottom_visible(w) and line_visible(w, "bigger now")
    w.chat.input.event_generate("<Control-0>")
    settle(w)
    assert bottom_visible(w)


def test_a_server_outage_keeps_the_bottom_in_view(make_server, make_window, tmp_path):
    """The status line gains its "Retry now" button (and loses it again)."""
    db = str(tmp_path / "room.db")
    srv = make_server(db=db, rate_limit=0)
    port = srv.port
    bob = talk(srv, 60)
    bob.close()

    def quick_client(host, port, nick, *, events, password=None, **kw):
        # ``kw``: what the controller adds (the identity, TLS choices).
        return ChatClient(host, port, nick, events=events, password=password,
                          backoff=Backoff(first=5, base=5, cap=5), **kw)
    w = joined(make_window, srv, client_factory=quick_client)
    srv.shutdown()
    wait_until(w.root, lambda: w.chat.action_button.winfo_ismapped(), timeout=10, what="Retry now")
    settle(w)
    assert bottom_visible(w) and line_visible(w, "Disconnected")
    make_server(db=db, port=port, rate_limit=0)
    w.chat.action_button.invoke()            # Retry now
    wait_until(w.root, lambda: w.controller.connected, timeout=10, what="the reconnect")
    settle(w)
    assert not w.chat.action_button.winfo_ismapped()
    assert bottom_visible(w) and line_visible(w, "Reconnected")


def test_scrolled_up_stays_put_and_the_button_takes_you_down(make_server, make_window):
    srv = make_server(rate_limit=0)
    bob = talk(srv, 60)
    w = joined(make_window, srv)
    t = w.chat.text
    x, y = t.winfo_width() // 2, t.winfo_height() // 2
    for _ in range(6):                       # the mouse wheel, as X sends it
        t.event_generate("<Button-4>", x=x, y=y)
    settle(w)
    assert not bottom_visible(w)
    top = t.index("@0,0")
    assert not w.chat.new_button.winfo_ismapped()
    say_and_see(w, bob, "while you read")
    say_and_see(w, bob, "and another")
    assert t.index("@0,0") == top and not bottom_visible(w)
    assert w.chat.new_button.winfo_ismapped()
    assert w.chat.new_button.cget("text") == "2 new messages ↓"
    w.chat.input.focus_force()               # a layout change does not move you either
    w.chat.input.event_generate("<Control-plus>")
    settle(w)
    assert not bottom_visible(w)
    w.chat.new_button.invoke()
    settle(w)
    assert bottom_visible(w) and line_visible(w, "and another")
    assert not w.chat.new_button.winfo_ismapped()
    say_and_see(w, bob, "following again")
    assert bottom_visible(w)
    # Scrolling back down by hand also follows again, and hides the button.
    for _ in range(6):
        t.event_generate("<Button-4>", x=x, y=y)
    say_and_see(w, bob, "one more")
    assert w.chat.new_button.winfo_ismapped()
    for _ in range(40):
        t.event_generate("<Button-5>", x=x, y=y)
    settle(w)
    assert not w.chat.new_button.winfo_ismapped()
    say_and_see(w, bob, "the last")
    assert bottom_visible(w) and line_visible(w, "the last")


def test_the_input_box_grows_with_wrapped_text_up_to_its_cap(make_window):
    w = make_window(None, Settings(geometry="700x420"))
    w.show_chat()
    inp = w.chat.input
    wait_until(w.root, lambda: inp.winfo_ismapped())
    words = "word0"                          # one line, about two and a half boxes wide
    while w.fonts.body.measure(words) < 2.5 * inp.winfo_width():
        words += f" word{len(words.split())}"
    w.chat.set_input(words)
    settle(w)
    height = int(inp.cget("height"))
    assert 1 < height < MAX_INPUT_LINES
    assert inp.bbox("1.0") is not None and inp.bbox("end-2c") is not None, "not all of it is visible"
    w.chat.set_input(" ".join(f"word{i}" for i in range(400)))
    settle(w)
    assert int(inp.cget("height")) == MAX_INPUT_LINES
    assert inp.bbox("end-2c") is not None          # scrolled to where the cursor is
    w.chat.set_input("short")
    settle(w)
    assert int(inp.cget("height")) == 1
    # Typing it key by key grows it too (the <<Modified>> path).
    inp.focus_force()
    w.root.update()
    inp.insert("end", " " + words)
    settle(w)
    assert int(inp.cget("height")) == height and inp.bbox("1.0") is not None


def test_ctrl_a_selects_all_in_the_input_box(make_window):
    w = make_window(None)
    w.show_chat()
    inp = w.chat.input
    w.chat.set_input("select all of this", cursor=3)
    inp.focus_force()
    w.root.update()
    inp.event_generate("<Control-a>")
    assert inp.get("sel.first", "sel.last") == "select all of this"


def test_keys_that_reach_the_window_before_its_focus_widget_go_to_the_input_box(make_window):
    """Under X, Tk gives a window that just got the focus to its focus
    widget some 100 ms later; keys typed meanwhile reach the window itself
    and were lost (the packaged client's typing test lost the first word)."""
    w = make_window(None)
    w.show_chat()
    w.chat.set_input("")
    w.root.focus_force()
    w.root.update()
    for key in ("h", "i", "space", "exclam"):
        w.root.event_generate("<KeyPress>", keysym=key)
    w.root.update()
    assert w.chat.get_input() == "hi !"
    # Keys of other widgets are theirs: typing in the topic or a dialog is not copied.
    w.chat.input.focus_force()
    w.root.update()
    w.chat.input.event_generate("<KeyPress>", keysym="x")
    w.root.update()
    assert w.chat.get_input() == "hi !x"
    w.root.event_generate("<Control-KeyPress>", keysym="b")   # not printable text: left alone
    w.root.update()
    assert w.chat.get_input() == "hi !x"
