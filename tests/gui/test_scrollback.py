"""Paging far back through a long history in the real window, against a
real server over loopback (issue 16): the conversation keeps a bounded
number of lines (it drops its newest lines while paging back, its oldest
while paging forward), the message ids it shows stay contiguous, live
messages that come while the newest lines are not loaded are counted on
the "N new messages ↓" button, and paging forward (or the button) brings
the conversation back to its live end, where live messages are drawn
again."""
from __future__ import annotations

import pytest

from chatgui.app.controller import ConnectValues
from chatgui.app.conversations import HISTORY_PAGE
from chatgui.app.settings import Settings
from chatgui.tk.conversation import TRIM_SLACK
from server.store.sqlite import SqliteStore
from tests.gui.conftest import wait_until
from tests.historytools import fill
from tests.netclient import LineClient

pytestmark = [pytest.mark.gui, pytest.mark.timeout(240)]

HISTORY = 3000
CAP = 300
# The cap, the slack kept below or above the view, a page, the lines on screen.
BOUND = CAP + TRIM_SLACK + HISTORY_PAGE + 40


def settle(w) -> None:
    for _ in range(3):
        w.root.update_idletasks()
        wait_until(w.root, lambda: w.controller.events.empty())
    w.root.update()


def long_room(make_server, make_window, tmp_path):
    db = str(tmp_path / "long.db")
    h = SqliteStore(db)
    fill(h, HISTORY, text="line {i}")
    h.close()
    srv = make_server(db=db, rate_limit=0)
    w = make_window(ConnectValues(host="127.0.0.1", port=str(srv.port), nick="alice"),
                    Settings(geometry="700x420"))
    w.chat.set_scrollback(CAP)
    wait_until(w.root, lambda: w.controller.connected and w.chat.current is not None
               and w.chat.current.ids and w.chat.current.ids[-1] == HISTORY, timeout=20,
               what="the newest messages")
    settle(w)
    return srv, w, w.chat.current


def check(conv) -> None:
    ids = list(conv.ids)
    assert ids == list(range(ids[0], ids[-1] + 1)), "the ids shown have a gap or are out of order"
    assert conv.line_count() <= BOUND, conv.line_count()
    # No tag per line: Tk 8.6's delete walks every tag the Text has, so
    # their number must not grow with the lines (it cost 10 ms a page).
    assert len(conv.text.tag_names()) < 60, len(conv.text.tag_names())
    assert all(conv.message_at(f"m{i}") == i for i in (ids[0], ids[len(ids) // 2], ids[-1]))


def page_back(w, conv, pages: int) -> None:
    for _ in range(pages):
        oldest = conv.ids[0]
        conv._on_scrollbar("moveto", "0.0")        # what dragging the thumb to the top calls
        wait_until(w.root, lambda: conv.ids[0] < oldest, timeout=10, what="an older page")
        settle(w)
        check(conv)


def page_forward(w, conv) -> int:
    pages = 0
    while not conv.live:
        newest = conv.ids[-1]
        conv._on_scrollbar("moveto", "1.0")
        wait_until(w.root, lambda: conv.ids[-1] > newest or conv.live, timeout=10, what="a newer page")
        settle(w)
        check(conv)
        pages += 1
        assert pages < 200
    return pages


def say(bob: LineClient, text: str, ref: str) -> int:
    bob.send({"type": "say", "text": text, "ref": ref})
    while True:
        m = bob.recv_type("message")
        if m.get("ref") == ref:
            return m["id"]


def test_paging_far_back_and_forward_again_keeps_the_lines_bounded_and_contiguous(make_server, make_window,
                                                                                   tmp_path):
    srv, w, conv = long_room(make_server, make_window, tmp_path)
    page_back(w, conv, 30)
    assert conv.ids[0] <= HISTORY - 30 * HISTORY_PAGE
    assert not conv.live and conv.ids[-1] < HISTORY - 1000     # the newest lines went
    bob = LineClient(srv.port)
    bob.hello("bob")
    live = [say(bob, f"live {i}", f"l{i}") for i in range(3)]
    wait_until(w.root, lambda: conv.new_button.winfo_ismapped(), what="the new messages button")
    # The three, and the notice that bob joined (notices are not in the
    # history: they still go at the bottom of what is loaded).
    assert conv.new_button.cget("text") == "4 new messages ↓"
    assert "live 0" not in conv.text.get("1.0", "end")          # not drawn: they come by paging
    assert page_forward(w, conv) >= 20
    assert conv.ids[-1] == live[-1]
    conv._on_scrollbar("moveto", "1.0")
    settle(w)
    assert conv.at_bottom()
    last = say(bob, "after the end", "end")
    wait_until(w.root, lambda: conv.ids and conv.ids[-1] == last, what="a live message at the live end")
    settle(w)
    check(conv)
    assert "after the end" in conv.text.get("1.0", "end")
    bob.close()


def test_the_button_takes_a_far_back_conversation_to_its_live_end(make_server, make_window, tmp_path):
    srv, w, conv = long_room(make_server, make_window, tmp_path)
    page_back(w, conv, 12)
    assert not conv.live
    bob = LineClient(srv.port)
    bob.hello("bob")
    last = say(bob, "while away", "a")
    wait_until(w.root, lambda: conv.new_button.winfo_ismapped(), what="the new messages button")
    conv.new_button.invoke()
    wait_until(w.root, lambda: conv.live and conv.ids and conv.ids[-1] == last, timeout=10,
               what="the newest page again")
    settle(w)
    check(conv)
    assert conv.at_bottom() and not conv.new_button.winfo_ismapped()
    bob.close()
