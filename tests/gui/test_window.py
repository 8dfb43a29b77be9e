"""The real window on a real Tk under Xvfb, against real servers on
loopback: typing and sending, receiving, private messages, renames, the
server restarting under the window, hosting a room from the connect form,
hostile text, and closing without leaving threads behind."""
from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time

import pytest

from chatgui.net import events as ev
from chatgui.app.controller import ConnectValues
from chatgui.net.client import ChatClient
from chatgui.net.backoff import Backoff
from chatgui.app.settings import Settings
from server import paths
from server.protocol import Joined, Message, Notice, Renamed
from tests.gui.conftest import wait_until
from tests.netclient import LineClient

pytestmark = pytest.mark.gui

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def values(port: int, nick: str = "alice") -> ConnectValues:
    return ConnectValues(host="127.0.0.1", port=str(port), nick=nick)


def conversation(w) -> str:
    return w.chat.text.get("1.0", "end-1c")


def tags_at(w, needle: str) -> set:
    index = w.chat.text.search(needle, "1.0", stopindex="end")
    assert index, f"{needle!r} is not in the conversation"
    return set(w.chat.text.tag_names(index))


_KEYSYMS = {" ": "space", "/": "slash", "-": "minus", ".": "period", ",": "comma"}


def type_and_enter(w, text: str) -> None:
    """Type into the input box as key presses (simple characters) or
    inserts (the rest), then press Enter."""
    inp = w.chat.input
    w.root.focus_force()
    inp.focus_force()
    w.root.update()
    for ch in text:
        if ch in _KEYSYMS or (ch.isascii() and ch.isalnum() and not ch.isupper()):
            inp.event_generate("<KeyPress>", keysym=_KEYSYMS.get(ch, ch))
        else:
            inp.insert("insert", ch)
    assert w.chat.get_input() == text
    inp.event_generate("<Return>")
    w.root.update()


def joined_window(make_window, port: int, nick: str = "alice", **kw):
    w = make_window(values(port, nick), **kw)
    wait_until(w.root, lambda: w.controller.connected, what="the window to join")
    return w


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_type_and_send_then_receive_from_another_client(make_server, make_window):
    srv = make_server(rate_limit=0)
    bob = LineClient(srv.port)
    bob.hello("bob")
    opened = []
    w = joined_window(make_window, srv.port, open_url=opened.append)
    assert w.chat.status_label.cget("text") == f"connected to 127.0.0.1:{srv.port} as alice"
    assert w.root.title() == f"alice @ 127.0.0.1:{srv.port} — Natter"
    wait_until(w.root, lambda: w.chat.users == ["alice", "bob"])
    type_and_enter(w, "hello bob")
    frame = bob.recv_type("message")
    assert (frame["from"], frame["text"]) == ("alice", "hello bob")
    wait_until(w.root, lambda: "hello bob" in conversation(w) and not w.controller.pending)
    assert conversation(w).count("hello bob") == 1
    assert w.chat.get_input() == ""
    assert "who_own" in tags_at(w, "alice\thello bob")

    bob.send({"type": "say", "text": "hi alice, look at https://example.org"})
    wait_until(w.root, lambda: "hi alice" in conversation(w))
    assert "mention" in tags_at(w, "hi alice")
    assert "link" in tags_at(w, "https://example.org")
    w.chat.text.see("end")
    w.root.update()
    x, y, _, h = w.chat.text.bbox(w.chat.text.search("example.org", "1.0"))
    for event in ("<Motion>", "<ButtonPress-1>", "<ButtonRelease-1>"):   # Motion sets "current"
        w.chat.text.event_generate(event, x=x + 2, y=y + h // 2)
    assert opened == ["https://example.org"]
    bob.send({"type": "say", "text": "just chatting"})
    wait_until(w.root, lambda: "just chatting" in conversation(w))
    assert not {"mention", "system", "private"} & tags_at(w, "just chatting")


def test_private_message_by_double_click_and_back(make_server, make_window):
    srv = make_server(rate_limit=0)
    bob = LineClient(srv.port)
    bob.hello("bob")
    w = joined_window(make_window, srv.port)
    wait_until(w.root, lambda: "bob" in w.chat.users)
    people = w.chat.people
    x, y, _, h = w.chat.person_bbox("bob")
    for _ in range(2):      # Tk makes a double-click of two quick clicks
        people.event_generate("<ButtonPress-1>", x=x + 4, y=y + h // 2)
        people.event_generate("<ButtonRelease-1>", x=x + 4, y=y + h // 2)
    assert w.chat.get_input() == "/msg bob "
    w.chat.input.insert("end", "just between us")
    w.chat.input.event_generate("<Return>")
    w.root.update()
    frame = bob.recv_type("dm")
    assert (frame["from"], frame["to"], frame["text"]) == ("alice", "bob", "just between us")
    wait_until(w.root, lambda: "just between us" in conversation(w) and not w.controller.pending)
    assert "private" in tags_at(w, "just between us")
    bob.send({"type": "dm", "to": "alice", "text": "sure thing"})
    wait_until(w.root, lambda: "sure thing" in conversation(w))
    assert "private" in tags_at(w, "sure thing")
    assert "bob → you" in conversation(w)


def test_nick_change(make_server, make_window):
    srv = make_server(rate_limit=0)
    bob = LineClient(srv.port)
    bob.hello("bob")
    w = joined_window(make_window, srv.port)
    type_and_enter(w, "/nick alicia")
    frame = bob.recv_type("renamed")
    assert (frame["old"], frame["new"]) == ("alice", "alicia")
    wait_until(w.root, lambda: w.chat.status_label.cget("text").endswith("as alicia"))
    labels = [w.chat.people.item(row, "text") for row in w.chat.people.get_children()]
    assert "●  alicia  (you)" in labels
    assert "You are now known as alicia." in conversation(w)
    assert w.root.title().startswith("alicia @")


def test_server_restart_under_the_window(make_server, make_window, tmp_path):
    """The window reconnects by itself, shows what it missed once, and
    delivers what was typed while the server was away exactly once."""
    db = str(tmp_path / "room.db")
    srv = make_server(db=db, rate_limit=0)
    port = srv.port

    def quick_client(host, port, nick, *, events, password=None, **kw):
        # ``kw``: what the controller adds (the identity, TLS choices).
        return ChatClient(host, port, nick, events=events, password=password,
                          backoff=Backoff(first=0.2, base=0.2, cap=0.4), **kw)

    w = joined_window(make_window, port, client_factory=quick_client)
    type_and_enter(w, "before the restart")
    wait_until(w.root, lambda: "before the restart" in conversation(w) and not w.controller.pending)

    srv.shutdown()
    wait_until(w.root, lambda: w.chat.status_label.cget("text").startswith("reconnecting"),
               what="the window to notice")
    type_and_enter(w, "typed while away")
    assert "pending" in tags_at(w, "typed while away")

    # Someone posts while the window cannot reach the room: the same
    # history, served for a moment on a port the window does not know.
    other = make_server(db=db, rate_limit=0)
    bob = LineClient(other.port)
    bob.hello("bob")
    bob.send({"type": "say", "text": "you missed this"})
    bob.recv_type("message")
    bob.close()
    other.shutdown()

    make_server(db=db, port=port, rate_limit=0)
    wait_until(w.root, lambda: w.controller.connected and not w.controller.pending, timeout=10,
               what="the window to reconnect and deliver")
    wait_until(w.root, lambda: "you missed this" in conversation(w))
    text = conversation(w)
    assert text.count("you missed this") == 1
    assert text.count("typed while away") == 1
    assert text.count("before the restart") == 1
    assert "That was what you missed while away" in text
    assert "pending" not in tags_at(w, "typed while away")
    assert w.chat.status_label.cget("text") == f"connected to 127.0.0.1:{port} as alice"
    carol = LineClient(port)
    history = [m["text"] for m in carol.hello("carol")["history"]]
    assert history.count("typed while away") == 1 and history.count("you missed this") == 1
    carol.close()


def test_host_a_room_from_the_connect_window(make_window):
    port = free_port()
    w = make_window(None, Settings(nick="", port=port))
    form = w.form
    assert form.winfo_ismapped() and not w.chat.winfo_ismapped()
    form.nick.set("hosty")
    form.host_room.set(True)
    w.root.update()
    assert "disabled" in form.host_entry.state() and form.button.cget("text") == "Host and join"
    form.submit()
    wait_until(w.root, lambda: w.controller.connected, what="the hosted room to welcome us")
    assert w.chat.winfo_ismapped()
    # Said once the catch-up that follows a protocol-2 welcome is over.
    wait_until(w.root, lambda: "You are hosting this room on port" in conversation(w), what="the hosting line")
    assert os.path.exists(os.path.join(paths.data_dir(), "rooms", f"room-{port}.db"))
    assert not os.path.exists(paths.default_db())      # the room's own history, not the server's file
    guest = LineClient(port)
    assert "hosty" in guest.hello("guest")["users"]
    guest.close()
    w.quit()
    w.controller.shutdown(timeout=5)
    with pytest.raises(ConnectionRefusedError):
        socket.create_connection(("127.0.0.1", port), timeout=2).close()


def test_a_refused_connection_is_explained_on_the_form_with_a_retry(make_window):
    port = free_port()
    w = make_window(values(port))
    wait_until(w.root, lambda: w.form.error_label.cget("text"), what="an error on the form")
    assert "Nothing accepted the connection" in w.form.error_label.cget("text")
    assert w.form.button.cget("text") == "Try again"
    assert "disabled" not in w.form.button.state()


def test_hostile_text_neither_crashes_nor_spoofs(make_server, make_window):
    srv = make_server(rate_limit=0)
    bob = LineClient(srv.port)
    bob.hello("bob")
    w = joined_window(make_window, srv.port)
    nasty = [
        "party \U0001F389 thumbs \U0001F44D\U0001F3FD flag \U0001F1EB\U0001F1F7 \U0001D400",
        "bidi \u202eevil\u202c and \u2066isolate\u2069 and zero\u200bwidth e\u0301",
        "first line\n12:00\t•\tmallory left.",
        "x" * 5000,
        "\u0645\u0631\u062d\u0628\u0627 \u05e9\u05dc\u05d5\u05dd",
    ]
    for text in nasty:
        bob.send({"type": "say", "text": text})
    wait_until(w.root, lambda: "\u05e9\u05dc\u05d5\u05dd" in conversation(w), what="the last message")
    text = conversation(w)
    assert "party" in text and "\u202e" not in text and "\\u202e" in text
    tags = tags_at(w, "mallory left.")
    assert "cont" in tags and "system" not in tags and "sysmark" not in tags
    # A hostile or broken server: what the protocol would never let a peer send.
    q = w.controller.events
    q.put(Message(999_001, time.time(), "bob", "nul\x00 esc\x1b[2J lone\ud800 c1\x85 del\x7f"))
    q.put(Message(999_002, 1e300, "b\ud83d\x1b", "bad time, bad nick"))
    q.put(Joined("\ud83d\u202eevil"))
    q.put(Renamed("bob", "b\x07ob"))
    q.put(Notice("x", "\x1b]0;title\x07"))
    q.put(ev.Disconnected("\ud800", 0.5))
    wait_until(w.root, lambda: "bad time" in conversation(w) and "title" in conversation(w))
    text = conversation(w)
    assert "\x1b" not in text and "\x00" not in text and "\\x1b" in text
    assert w.root.title()
    # still responsive: send after all that
    type_and_enter(w, "still here")
    wait_until(w.root, lambda: "still here" in conversation(w))


def test_closing_leaves_no_thread_behind(make_window):
    before = set(threading.enumerate())
    port = free_port()
    w = make_window(ConnectValues(port=str(port), nick="solo", host_room=True))
    wait_until(w.root, lambda: w.controller.connected)
    assert len(set(threading.enumerate()) - before) >= 4      # net-reader/writer, acceptor, hub...
    w.chat.input.focus_force()
    w.root.update()
    w.chat.input.event_generate("<Control-q>")
    assert w.closed
    assert w.controller.shutdown(timeout=5)
    deadline = time.monotonic() + 5
    while set(threading.enumerate()) - before and time.monotonic() < deadline:
        time.sleep(0.02)
    assert not {t.name for t in set(threading.enumerate()) - before}


def test_font_size_keys_and_theme(make_server, make_window):
    srv = make_server(rate_limit=0)
    w = joined_window(make_window, srv.port)
    size = w.fonts.size
    w.chat.input.focus_force()
    w.root.update()
    w.chat.input.event_generate("<Control-plus>")
    w.chat.input.event_generate("<Control-equal>")
    assert w.fonts.size == size + 2
    w.chat.input.event_generate("<Control-minus>")
    assert w.fonts.size == size + 1
    w.chat.theme_button.invoke()
    assert w.pal.name == "dark" and w.chat.text.cget("background") == w.pal.bg
    from chatgui.app import settings
    saved = settings.load()
    assert (saved.font_size, saved.theme) == (size + 1, "dark")


def test_waiting_lines_stay_at_the_bottom_until_removed(make_window):
    from chatgui.app.controller import Line
    w = make_window(None)
    w.show_chat()
    w.append(Line("other", "10:00", "bob", "one"))
    w.add_pending("r1", Line("own", "10:00", "me", "waiting one", pending=True))
    w.add_pending("r2", Line("own", "10:00", "me", "waiting two", pending=True))
    w.append(Line("other", "10:01", "bob", "two"))
    text = conversation(w)
    assert text.index("one") < text.index("two") < text.index("waiting one") < text.index("waiting two")
    assert w.chat.line_count() == 2
    w.remove_pending("r1")
    w.append(Line("own", "10:02", "me", "sent one"))
    text = conversation(w)
    assert "waiting one" not in text
    assert text.index("two") < text.index("sent one") < text.index("waiting two")
    w.clear()
    assert conversation(w) == "10:00\tme\twaiting two   waiting to send\n"


def test_a_join_storm_repaints_the_people_list_once_per_batch(make_window):
    """A server restart under 1000 people brings 1000 joins at once."""
    w = make_window(None)
    w.controller.in_chat = w.controller.connected = True
    w.show_chat()
    q = w.controller.events
    for i in range(1000):
        q.put(Joined(f"user{i:04d}"))
    t0 = time.monotonic()
    wait_until(w.root, lambda: q.empty() and len(w.chat.people.get_children()) == 1000, timeout=20)
    assert time.monotonic() - t0 < 5     # 0.3 s here; 4.6 s when each join redrew the list
    assert w.chat.people_label.cget("text") == "ONLINE — 1000"


def test_scrollback_is_capped(make_window):
    from chatgui.tk.conversation import SCROLLBACK, TRIM_SLACK
    w = make_window(None)
    w.controller.in_chat = True
    w.show_chat()
    q = w.controller.events
    for i in range(SCROLLBACK + TRIM_SLACK + 500):
        q.put(Message(i + 1, 1.7e9, "bob", f"line {i}"))
    wait_until(w.root, lambda: q.empty(), timeout=30)
    assert w.chat.line_count() <= SCROLLBACK + TRIM_SLACK
    assert f"line {SCROLLBACK + TRIM_SLACK + 499}" in conversation(w)
    assert "line 0\n" not in conversation(w)


# Not "xdotool windowclose": that is XDestroyWindow from another client,
# which no window manager does, and Tk 8.6 then sometimes dies of an X
# error (BadWindow on X_UnmapWindow, exit 1) before Python can act.
@pytest.mark.parametrize("how", ["ctrl+q", "close button"])
def test_the_program_joins_types_and_exits_0_when_closed(make_server, display, tmp_path, how):
    """What the packaging test does to the executable, done to the source:
    start with --host/--port/--nick, type with xdotool, close, exit 0."""
    srv = make_server(rate_limit=0)
    bob = LineClient(srv.port, timeout=15)
    bob.hello("bob")
    env = dict(os.environ, DISPLAY=display, NATTER_HOME=str(tmp_path / "home"))
    proc = subprocess.Popen([sys.executable, "-m", "chatgui", "--host", "127.0.0.1", "--port",
                             str(srv.port), "--nick", "carl"], cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        assert bob.recv_type("joined")["nick"] == "carl"
        win = _xdotool(env, "search", "--sync", "--onlyvisible", "--name", "carl @").split()[0]
        _xdotool(env, "windowfocus", "--sync", win)
        _xdotool(env, "type", "--delay", "5", f"hello from xdotool, {how}")
        _xdotool(env, "key", "Return")
        frame = bob.recv_type("message")
        assert (frame["from"], frame["text"]) == ("carl", f"hello from xdotool, {how}")
        if how == "ctrl+q":
            _xdotool(env, "key", "ctrl+q")
        else:                   # WM_DELETE_WINDOW, as a window manager sends it
            from tests.packaging_support import close_window
            close_window(display, int(win))
        code = proc.wait(15)
        assert code == 0, proc.stderr.read().decode(errors="replace")
        assert bob.recv_type("left")["nick"] == "carl"
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        out, err = proc.communicate()
    assert b"Traceback" not in err, err.decode(errors="replace")


def _xdotool(env, *args) -> str:
    return subprocess.run(["xdotool", *args], env=env, check=True, capture_output=True, text=True,
                          timeout=15).stdout


def test_unfocused_window_counts_unread_in_its_title(make_server, make_window):
    """Real X focus moves to another application's window and back."""
    import tkinter as tk
    srv = make_server(rate_limit=0)
    bob = LineClient(srv.port)
    bob.hello("bob")
    w = joined_window(make_window, srv.port)
    w.root.focus_force()
    wait_until(w.root, lambda: w.root.focus_get() is not None, what="focus")
    other = tk.Tk()          # another "application" (its own interpreter) takes the focus
    try:
        other.geometry("200x100+600+400")
        other.update()
        other.focus_force()
        other.update()
        wait_until(w.root, lambda: not w.controller.focused, what="the window to notice it lost focus")
        bob.send({"type": "say", "text": "anyone?"})
        bob.send({"type": "say", "text": "alice: ping"})
        wait_until(w.root, lambda: w.root.title().startswith("(2) "), what="the unread count")
    finally:
        other.destroy()
    w.root.focus_force()
    wait_until(w.root, lambda: w.controller.focused and not w.root.title().startswith("("),
               what="the count to clear")


def test_callback_errors_are_logged_kept_and_the_pump_goes_on(make_window, caplog):
    w = make_window(None)
    w.controller.in_chat = True
    w.show_chat()
    w.root.after(0, lambda: 1 / 0)

    class Message:            # an event the controller will choke on
        pass
    w.controller.events.put(Message())
    w.controller.events.put(Joined("after-the-bad-one"))
    wait_until(w.root, lambda: "after-the-bad-one joined." in conversation(w), what="the pump to go on")
    assert len(w.errors) == 2
    assert any("ZeroDivisionError" in e for e in w.errors) and any("AttributeError" in e for e in w.errors)
    assert "error in a Tk callback" in caplog.text
    w.errors.clear()          # expected here; any other test fails on them


def test_a_batch_opens_the_conversation_for_writing_once_and_leaves_it_read_only(make_window):
    """A pump batch of many lines makes the read-only text writable once
    (Text.configure costs more than a line's insert), and the text is
    read-only again after the batch, and after any change outside one."""
    from chatgui.app.view import OTHER, Line
    w = make_window(None)
    w.controller.in_chat = w.controller.connected = True
    w.show_chat()
    w.root.update()
    t = w.chat.text
    states = []
    configure = t.configure

    def counting(*a, **kw):
        if "state" in kw:
            states.append(kw["state"])
        return configure(*a, **kw)
    t.configure = counting
    w.pump.budget = 10.0            # the whole batch in one tick, however loaded the machine
    for i in range(150):
        w.controller.events.put(Joined(f"user{i:03d}"))
    assert w.pump.drain_now() == 150
    assert states == ["normal", "disabled"]
    assert str(t.cget("state")) == "disabled" and "user149 joined." in conversation(w)
    states.clear()
    w.append(Line(OTHER, "10:00", "bob", "outside a batch", msg_id=7))
    assert w.chat.current.update_line(7, Line(OTHER, "10:00", "bob", "edited outside a batch", msg_id=7))
    assert states == ["normal", "disabled"] * 3     # the append, the update's delete and insert
    assert str(t.cget("state")) == "disabled" and "edited outside a batch" in conversation(w)
    states.clear()
    assert w.pump.drain_now() == 0                  # an empty batch changes nothing
    assert states == [] and str(t.cget("state")) == "disabled"


def test_a_failing_before_batch_is_reported_and_the_batch_still_runs(make_window):
    import queue
    from chatgui.tk.pump import Pump
    w = make_window(None)
    q, seen, calls = queue.Queue(), [], []

    def boom():
        calls.append("before")
        raise RuntimeError("before_batch failed")
    pump = Pump(w.root, q, seen.append, before_batch=boom, after_batch=lambda n: calls.append(("after", n)))
    q.put("a")
    q.put("b")
    assert pump.drain_now() == 2
    assert seen == ["a", "b"] and calls == ["before", ("after", 2)]
    assert len(w.errors) == 1 and "before_batch failed" in w.errors[0]
    w.errors.clear()


def test_encryption_first_visit_then_a_changed_certificate_trusted_after_comparing(make_server, make_window,
                                                                                   tmp_path):
    from server import tls
    db = str(tmp_path / "room.db")
    srv = make_server(tls=True, rate_limit=0, db=db)
    port = srv.port
    secure = ConnectValues(host="127.0.0.1", port=str(port), nick="alice", tls=True)
    w = make_window(secure)
    # A first visit: the form shows the fingerprint to compare; nothing was sent yet.
    wait_until(w.root, lambda: w.form.trust_button.winfo_ismapped(), what="the first-visit question")
    assert srv.fingerprint in w.form.error_label.cget("text")
    assert w.form.trust_button.cget("text") == "I compared it: trust and join"
    assert not w.controller.connected
    w.form.trust_button.invoke()
    wait_until(w.root, lambda: w.controller.connected, what="an encrypted welcome")
    assert w.chat.status_label.cget("text").endswith("· encrypted")
    w.quit()
    w.controller.shutdown(timeout=5)
    srv.shutdown()

    cert, key = tls.ensure_certificate(str(tmp_path / "another"))
    srv2 = make_server(tls=True, cert=cert, key=key, port=port, rate_limit=0, db=db)
    assert srv2.fingerprint != srv.fingerprint
    w2 = make_window(secure)
    wait_until(w2.root, lambda: w2.form.trust_button.winfo_ismapped(), what="the warning")
    warning = w2.form.error_label.cget("text")
    assert "has changed" in warning and srv.fingerprint in warning and srv2.fingerprint in warning
    assert w2.form.trust_button.cget("text") == "I compared it: trust the new certificate"
    assert not w2.controller.connected
    w2.form.trust_button.invoke()
    wait_until(w2.root, lambda: w2.controller.connected, what="the trusted connection")
    assert w2.chat.winfo_ismapped() and w2.chat.status_label.cget("text").endswith("· encrypted")
    assert w2.controller.fingerprint == srv2.fingerprint


def test_a_long_warning_never_hides_the_forms_buttons(make_window):
    w = make_window(None, Settings(nick="alice", geometry="600x400"))
    w.controller._show_form("Warning: " + "a long explanation of what happened. " * 12, trust="AB12 CD34")
    button = w.form.button

    def fits():
        bottom = button.winfo_rooty() + button.winfo_height()
        return button.winfo_ismapped() and bottom <= w.root.winfo_rooty() + w.root.winfo_height()
    wait_until(w.root, fits, what="the window to grow to the form")
    assert w.form.trust_button.winfo_ismapped()


def test_quit_typed_in_the_input_box_closes_without_a_tk_error(make_window, caplog, capfd):
    """/quit destroyed the window inside the Return handler, which then
    touched the input box (a TclError in Python) and let Tk's own Text
    binding insert a newline into it (a Tcl background error on stderr)."""
    port = free_port()
    w = make_window(ConnectValues(port=str(port), nick="solo", host_room=True))
    wait_until(w.root, lambda: w.controller.connected, what="the hosted room")
    type_and_enter(w, "/quit")
    assert w.closed
    wait_until(w.root, lambda: True)         # let anything scheduled run
    assert w.errors == []
    assert "invalid command name" not in caplog.text
    assert "invalid command name" not in capfd.readouterr().err


def test_tcl_background_errors_are_kept_like_callback_errors(make_window):
    """Errors raised by Tcl scripts (not Python callbacks) reach w.errors,
    so the fixture fails a test on them too."""
    w = make_window(None)
    w.root.tk.eval("after 0 {error {a Tcl script failed}}")
    wait_until(w.root, lambda: w.errors, what="the background error")
    assert "a Tcl script failed" in w.errors[0]
    w.errors.clear()          # expected here


def test_the_form_takes_several_addresses_and_the_second_answers(make_server, make_window):
    srv = make_server()
    dead = free_port()
    w = make_window(None, Settings(nick="", port=srv.port))
    form = w.form
    hints = [c.cget("text") for c in form.card.winfo_children() if c.winfo_class() == "TLabel"]
    assert "Several servers? Separate them with commas." in hints
    form.nick.set("multi")
    form.host.set("127.0.0.1,,x")
    form.submit()
    wait_until(w.root, lambda: "Address 2 of 3 is empty" in form.error_label.cget("text"),
               what="the bad entry named on the form")
    form.host.set(f"127.0.0.1:{dead}, 127.0.0.1")
    form.submit()
    wait_until(w.root, lambda: w.controller.connected, what="the second address to welcome us")
    assert w.controller.address == f"127.0.0.1:{srv.port}"
    assert w.controller.settings.host == f"127.0.0.1:{dead}, 127.0.0.1"     # remembered as typed
    assert w.controller.settings.recent[0] == f"127.0.0.1:{dead}, 127.0.0.1:{srv.port}"
    w.quit()
    w.controller.shutdown(timeout=5)
