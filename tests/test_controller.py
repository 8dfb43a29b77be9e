"""The controller with a fake view and a fake network client: every UI
decision the window makes, tested without Tk or sockets."""
from __future__ import annotations

import pytest

from chatgui.net import events as ev
from chatgui.app.controller import (ERROR, MENTION, OFFLINE, ONLINE, OTHER, OWN, PRIVATE, SYSTEM, WAITING,
                                    ConnectValues, Controller)
from chatgui.app.hosting import HostingError
from chatgui.app.settings import Settings
from server.protocol import Direct, Joined, Left, Message, Notice, Renamed, ServerError
from tests.fakes import FakeClient, FakeRoom, FakeView
from tests.servertools import wait_until


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


@pytest.fixture
def env():
    FakeClient.instances.clear()
    FakeRoom.started.clear()
    FakeRoom.log.clear()
    view = FakeView()
    saved = []
    opened = []
    clock = Clock()
    c = Controller(view, Settings(), client_factory=FakeClient, host_factory=FakeRoom, clock=clock,
                   open_url=opened.append, save_settings=lambda s: saved.append(s))
    c.saved, c.opened, c.clock_ = saved, opened, clock
    return c, view


def join(c, view, nick="alice", users=("alice", "bob", "carol")):
    """Connect as nick and get welcomed; returns the fake client."""
    c.connect(ConnectValues(host="127.0.0.1", port="30000", nick=nick))
    client = FakeClient.instances[-1]
    c.handle(ev.Connecting("127.0.0.1", 30000, 1))
    c.handle(ev.Connected("127.0.0.1", 30000, nick, tuple(users), False))
    c.handle(ev.Backlog(()))
    c.handle(ev.CaughtUp(0))
    return client


def settle_room(c):
    """Handle what a host-room thread posts (the window's pump does this)."""
    event = c.events.get(timeout=5)
    c.handle(event)
    return event


def msg(id, sender, text, ref=None, ts=1_700_000_000.0):
    return Message(id, ts + id, sender, text, ref)


# -- connecting -----------------------------------------------------------------


def test_begin_shows_the_form_filled_from_the_settings():
    view = FakeView()
    s = Settings(host="10.0.0.5", port=4000, nick="zoe", theme="dark", font_size=14)
    Controller(view, s, client_factory=FakeClient, save_settings=lambda s: None).begin()
    values, error, busy = view.form
    assert view.screen == "connect" and error is None and busy is None
    assert (values.host, values.port, values.nick) == ("10.0.0.5", "4000", "zoe")
    assert view.theme == "dark" and view.font_size == 14


@pytest.mark.parametrize("values, words, field", [
    (ConnectValues(port="abc", nick="al"), "port must be a number", "port"),
    (ConnectValues(port="70000", nick="al"), "from 1 to 65535", "port"),
    (ConnectValues(host=" ", nick="al"), "address of the computer", "host"),
    (ConnectValues(nick=""), "nickname", "nick"),
    (ConnectValues(nick="two words"), "nickname", "nick"),
])
def test_the_form_says_what_is_wrong_and_connects_nothing(env, values, words, field):
    c, view = env
    c.connect(values)
    assert view.screen == "connect" and words in view.form[1] and view.focus == field
    assert not FakeClient.instances


def test_an_empty_nickname_is_asked_for_in_plain_words(env):
    c, view = env
    for nick in ("", "   "):
        c.connect(ConnectValues(nick=nick))
        assert view.form[1] == "Type a nickname." and view.focus == "nick"
    c.connect(ConnectValues(nick="two words"))
    assert view.form[1].startswith("Choose another nickname:")


def test_connect_starts_the_client_remembers_the_choices_and_waits(env):
    c, view = env
    c.connect(ConnectValues(host=" example.lan ", port="4000", nick="alice", password="pw"))
    client = FakeClient.instances[-1]
    assert (client.host, client.port, client.nick, client.password) == ("example.lan", 4000, "alice", "pw")
    assert client.started
    assert view.form[2] == "Connecting to example.lan:4000…"
    s = c.saved[-1]
    assert (s.host, s.port, s.nick) == ("example.lan", 4000, "alice")
    assert not hasattr(s, "password")
    assert view.status == ("connecting to example.lan:4000…", WAITING)


def test_welcome_opens_the_chat_with_people_status_and_title(env):
    c, view = env
    c.connect(ConnectValues(host="127.0.0.1", port="30000", nick="alice"))
    c.handle(ev.Connected("127.0.0.1", 30000, "alice", ("alice", "bob", "carol"), False))
    c.handle(ev.Backlog((msg(1, "bob", "from before"),)))
    c.handle(ev.CaughtUp(0))
    assert view.kinds() == [OTHER, SYSTEM]      # the history, then the welcome line
    assert view.screen == "chat"
    assert view.users == ["alice", "bob", "carol"] and view.me == "alice"
    assert view.status == ("connected to 127.0.0.1:30000 as alice", ONLINE)
    assert view.title == "alice @ 127.0.0.1:30000 — Natter"
    assert "2 others are online" in view.texts(SYSTEM)[-1]


def test_a_failed_first_connect_goes_back_to_the_form_with_the_reason(env):
    c, view = env
    c.connect(ConnectValues(host="127.0.0.1", port="1", nick="alice"))
    client = FakeClient.instances[-1]
    c.handle(ev.Connecting("127.0.0.1", 1, 1))
    c.handle(ev.ConnectFailed("refused", "Nothing accepted the connection at 127.0.0.1:1.", None))
    assert view.screen == "connect"
    assert view.form[1] == "Nothing accepted the connection at 127.0.0.1:1." and view.form[2] is None
    assert view.focus == "host"
    assert client.closed and c.client is None
    # Retrying makes a new client.
    c.connect(view.form[0])
    assert len(FakeClient.instances) == 2 and FakeClient.instances[-1].started


# -- sending and receiving -------------------------------------------------------


def test_sending_shows_a_waiting_line_then_the_message_once(env):
    c, view = env
    client = join(c, view)
    c.submit("hello room")
    assert client.sent == [("say", "hello room", "r1")]
    assert view.input == ("", 0)
    line = view.pending["r1"]
    assert line.pending and line.kind == OWN and line.text == "hello room"
    c.handle(msg(1, "alice", "hello room", ref="r1"))
    c.handle(ev.Acked("r1", 1))
    assert view.pending == {}
    own = [ln for ln in view.lines if ln.kind == OWN]
    assert [(ln.who, ln.text, ln.msg_id, ln.pending) for ln in own] == [("alice", "hello room", 1, False)]


def test_an_ack_without_the_echo_still_shows_the_message_once(env):
    c, view = env
    join(c, view)
    c.submit("hi")
    c.handle(ev.Acked("r1", 7))
    c.handle(ev.Acked("r1", 7))
    assert view.texts(OWN) == ["hi"] and view.pending == {}


def test_others_messages_mentions_and_attention(env):
    c, view = env
    join(c, view)
    c.handle(msg(1, "bob", "morning all"))
    assert view.lines[-1].kind == OTHER and view.lines[-1].who == "bob"
    c.handle(msg(2, "bob", "Alice: are you there?"))
    assert view.lines[-1].kind == MENTION
    assert view.bells == 0 and "(" not in view.title        # focused: no bell, no count
    c.focus_changed(False)
    c.handle(msg(3, "carol", "lunch?"))
    assert view.title.startswith("(1) ") and view.bells == 0
    c.handle(msg(4, "carol", "@alice lunch?"))
    assert view.title.startswith("(2) ") and view.bells == 1
    c.handle(msg(5, "alice", "my own words"))      # own messages do not count
    assert view.title.startswith("(2) ")
    c.focus_changed(True)
    assert view.title == "alice @ 127.0.0.1:30000 — Natter"


def test_a_word_containing_the_nick_is_not_a_mention(env):
    c, view = env
    join(c, view, nick="al")
    c.handle(msg(1, "bob", "totally normal"))
    assert view.lines[-1].kind == OTHER


def test_private_messages_both_ways_in_their_own_conversation(env):
    c, view = env
    client = join(c, view)
    c.focus_changed(False)
    c.handle(Direct(1, 1.7e9, "bob", "alice", "psst"))
    (line,) = view.room_lines("@bob")
    assert (line.kind, line.who, line.text) == (PRIVATE, "bob → you", "psst")
    assert view.visible == "#lobby"                    # a message does not switch conversations
    assert [r.id for r in view.rooms] == ["#lobby", "@bob"]   # listed after the rooms
    bob = view.entry("@bob")
    assert (bob.label, bob.unread, bob.mention, bob.private) == ("bob", 1, True, True)
    assert view.bells == 1 and view.title.startswith("(1) ")
    c.submit("/msg bob hi there")
    assert client.sent[-1] == ("dm", ("bob", "hi there"), "r1")
    assert view.visible == "@bob" and view.headers["@bob"] == ("bob", "Private conversation with bob")
    assert view.pending_room["r1"] == "@bob"
    assert view.pending["r1"].kind == PRIVATE and view.pending["r1"].who == "you → bob"
    c.handle(Direct(2, 1.7e9, "alice", "bob", "hi there", "r1"))
    line = view.lines[-1]
    assert (line.kind, line.who, line.text) == (PRIVATE, "you → bob", "hi there")
    assert view.pending == {} and view.bells == 1
    c.submit("and plain text here goes to bob")
    assert client.sent[-1] == ("dm", ("bob", "and plain text here goes to bob"), "r2")
    assert view.room_lines("#lobby")[-1].kind == SYSTEM     # nothing private in the room


def test_double_click_on_a_person_starts_a_private_message(env):
    c, view = env
    join(c, view)
    c.user_activated("bob")
    assert view.input == ("/msg bob ", 9)


def test_me_is_sent_as_an_action_and_shown_as_one(env):
    c, view = env
    client = join(c, view)
    c.submit("/me waves")
    assert client.sent[-1] == ("say", "/me waves", "r1")
    assert view.pending["r1"].action and view.pending["r1"].text == "waves"
    c.handle(msg(1, "bob", "/me dances"))
    assert view.lines[-1].action and view.lines[-1].text == "dances" and view.lines[-1].who == "bob"


# -- commands ------------------------------------------------------------------------


def test_nick_change_updates_status_title_people_and_settings(env):
    c, view = env
    client = join(c, view)
    c.submit("/nick alicia")
    assert client.sent[-1] == ("nick", "alicia", "r1")
    c.handle(Renamed("alice", "alicia"))
    c.handle(ev.Acked("r1", None))
    assert view.texts(SYSTEM)[-1] == "You are now known as alicia."
    assert view.status == ("connected to 127.0.0.1:30000 as alicia", ONLINE)
    assert "alicia @" in view.title and "alicia" in view.users and "alice" not in view.users
    assert c.saved[-1].nick == "alicia"
    c.handle(Renamed("bob", "robert"))
    assert view.texts(SYSTEM)[-1] == "bob is now known as robert."
    assert "robert" in view.users and "bob" not in view.users


def test_nick_taken_is_an_error_line(env):
    c, view = env
    join(c, view)
    c.submit("/nick bob")
    c.handle(ev.Refused("r1", "nick_taken", "The nick 'bob' is in use."))
    assert view.lines[-1].kind == ERROR and "in use" in view.lines[-1].text


def test_who_clear_help_quit(env):
    c, view = env
    join(c, view)
    c.submit("/who")
    assert view.texts(SYSTEM)[-1] == "Online (3): alice, bob, carol"
    c.submit("/help")
    assert "/msg NICK text\tsend a private message" in view.texts(SYSTEM)[-1] and view.lines[-1].table
    c.submit("/clear")
    assert view.lines == []
    c.submit("/quit")
    assert view.quit_called


def test_an_unknown_command_is_explained_not_sent_and_kept_for_fixing(env):
    c, view = env
    client = join(c, view)
    view.input = ("/mgs bob hi", None)
    c.submit("/mgs bob hi")
    assert client.sent == []
    assert view.lines[-1].kind == ERROR and "/mgs" in view.lines[-1].text and "/msg" in view.lines[-1].text
    assert view.input == ("/mgs bob hi", None)     # not cleared


def test_a_refused_message_becomes_an_error_and_leaves_nothing_waiting(env):
    c, view = env
    join(c, view)
    c.submit("x" * 10)
    c.handle(ev.Refused("r1", "too_long", "Too long to send."))
    assert view.pending == {}
    assert view.lines[-1].kind == ERROR and view.lines[-1].text.startswith("Not sent: too long to send")


def test_people_come_and_go(env):
    c, view = env
    join(c, view)
    c.handle(Joined("dave"))
    assert view.users == ["alice", "bob", "carol", "dave"] and view.texts(SYSTEM)[-1] == "dave joined."
    c.handle(Left("bob", "quit"))
    assert "bob" not in view.users and view.texts(SYSTEM)[-1] == "bob left."
    c.handle(Left("carol", "timed out"))
    assert view.texts(SYSTEM)[-1] == "carol left (timed out)."


def test_the_people_list_shows_everyone_offline_while_disconnected(env):
    c, view = env
    join(c, view)
    assert view.online is True
    c.handle(ev.Disconnected("The connection was lost.", 2.0))
    assert view.online is False and view.users == ["alice", "bob", "carol"]
    c.handle(ev.Connecting("127.0.0.1", 30000, 1))
    c.handle(ev.Connected("127.0.0.1", 30000, "alice", ("alice", "bob"), True))
    assert view.online is True and view.users == ["alice", "bob"]
    c.handle(ev.Disconnected("The server closed the connection.", None))
    c.handle(ev.Closed())
    assert view.online is False


def test_server_notices_and_errors(env):
    c, view = env
    join(c, view)
    c.handle(Notice("shutdown", "The server is shutting down."))
    assert view.lines[-1].kind == SYSTEM and view.lines[-1].text == "Server: The server is shutting down."
    c.handle(ServerError("rate_limited", "You are sending faster than 2 messages a second."))
    assert view.lines[-1].kind == ERROR and "faster" in view.lines[-1].text


def test_history_gone_is_said_in_a_sentence_not_a_silent_gap(env):
    c, view = env
    join(c, view)
    c.handle(ServerError("history_gone", "The messages up to id 30 are no longer kept on this server; "
                                         "you get the history from there on."))
    line = view.lines[-1]
    assert line.kind == ERROR and "no longer kept" in line.text and "cannot be shown" in line.text


# -- input box -----------------------------------------------------------------------------


def test_up_and_down_recall_what_was_sent_and_give_back_the_draft(env):
    c, view = env
    join(c, view)
    for text in ("one", "two", "/who"):
        c.submit(text)
    c.recall(-1, "draft")
    assert view.input[0] == "/who"
    c.recall(-1, "/who")
    c.recall(-1, "two")
    assert view.input[0] == "one"
    c.recall(-1, "one")                     # stays at the oldest
    assert view.input[0] == "one"
    c.recall(+1, "one")
    assert view.input[0] == "two"
    c.recall(+1, "two")
    c.recall(+1, "/who")
    assert view.input[0] == "draft"


def test_tab_completes_a_nick_and_cycles(env):
    c, view = env
    join(c, view, users=("alice", "bob", "Barbara", "carol"))
    c.complete("b", 1)
    assert view.input == ("Barbara: ", 9)
    c.complete("Barbara: ", 9)             # Tab again: the next one
    assert view.input == ("bob: ", 5)
    c.complete("thanks ca", 9)
    assert view.input == ("thanks carol ", 13)
    c.complete("hi al and x", 5)            # own nick is not offered
    assert view.input == ("thanks carol ", 13)
    c.complete("ask c later", 5)
    assert view.input == ("ask carol later", 9)


# -- reconnecting ---------------------------------------------------------------------------


def test_status_counts_down_while_reconnecting(env):
    c, view = env
    join(c, view)
    c.handle(ev.Disconnected("The server closed the connection.", 3.0))
    assert view.texts(SYSTEM)[-1] == "Disconnected: the server closed the connection."
    assert view.status == ("reconnecting in 3 s", WAITING)
    c.clock_.now += 1.5
    c.tick()
    assert view.status == ("reconnecting in 2 s", WAITING)
    c.handle(ev.Connecting("127.0.0.1", 30000, 1))
    assert view.status == ("reconnecting to 127.0.0.1:30000…", WAITING)
    c.handle(ev.ConnectFailed("refused", "Nothing accepted the connection.", 4.0))
    c.handle(ev.ConnectFailed("refused", "Nothing accepted the connection.", 8.0))
    assert [t for t in view.texts(SYSTEM) if t.startswith("Not back")] == \
        ["Not back yet: nothing accepted the connection."]                  # said once, not per attempt
    assert view.texts(ERROR) == []
    assert view.status == ("reconnecting in 8 s", WAITING) and view.action == "Retry now"
    c.retry()
    assert c.client.retries == 1
    c.handle(ev.Connected("127.0.0.1", 30000, "alice", ("alice", "bob"), True))
    assert view.status == ("connected to 127.0.0.1:30000 as alice", ONLINE) and view.action is None
    assert view.users == ["alice", "bob"]


def test_typed_while_offline_waits_then_shows_once_with_what_was_missed(env):
    c, view = env
    client = join(c, view)
    c.handle(msg(1, "bob", "before"))
    c.handle(ev.Disconnected("The connection was lost.", 1.0))
    c.submit("typed offline")
    assert view.pending["r1"].pending and view.pending["r1"].text == "typed offline"
    c.handle(ev.Connected("127.0.0.1", 30000, "alice", ("alice", "bob"), True))
    c.handle(ev.Backlog((msg(2, "bob", "while you were away"), msg(3, "alice", "typed offline", ref="r1"))))
    c.handle(ev.CaughtUp(0))
    c.handle(ev.Acked("r1", 3))
    assert view.pending == {}
    assert view.texts().count("typed offline") == 1
    assert view.texts().count("while you were away") == 1
    assert view.texts(SYSTEM)[-1] == "That was what you missed while away (2 messages)."
    assert client.sent == [("say", "typed offline", "r1")]


def test_a_replayed_message_is_shown_once(env):
    c, view = env
    join(c, view)
    c.handle(msg(1, "bob", "once"))
    c.handle(ev.Backlog((msg(1, "bob", "once"), msg(2, "bob", "twice?"))))
    c.handle(ev.CaughtUp(0))
    assert view.texts().count("once") == 1 and view.texts().count("twice?") == 1


def test_the_servers_last_words_are_not_repeated_and_a_final_failure_is_an_error(env):
    c, view = env
    join(c, view)
    c.handle(Notice("shutdown", "The server is shutting down."))
    c.handle(ev.Disconnected("The server is shutting down.", 0.5))
    assert view.texts(SYSTEM)[-2:] == ["Server: The server is shutting down.", "Disconnected."]
    c.handle(ev.ConnectFailed("auth_failed", "Wrong room password: check it with whoever runs the room.", None))
    assert view.lines[-1].kind == ERROR and view.lines[-1].text.startswith("Wrong room password")
    assert view.status == ("offline", OFFLINE) and view.action == "Reconnect"


def test_after_the_client_gives_up_reconnect_starts_a_new_one(env):
    c, view = env
    first = join(c, view)
    c.handle(ev.Disconnected("You connected again from elsewhere.", None))
    c.handle(ev.Closed("replaced"))
    assert view.status == ("offline", OFFLINE) and view.screen == "chat" and view.action == "Reconnect"
    c.retry()
    second = FakeClient.instances[-1]
    assert second is not first and second.started and (second.host, second.port, second.nick) == \
        ("127.0.0.1", 30000, "alice")
    assert first.closed


# -- safety ----------------------------------------------------------------------------------


def test_nothing_a_peer_sends_passes_for_a_notice_or_reaches_tk_raw(env):
    c, view = env
    join(c, view)
    c.handle(msg(1, "mallory", "hi\n10:00 • bob left.\u202e evil \x1b[2J\ud800"))
    line = view.lines[-1]
    assert line.kind == OTHER and line.who == "mallory"
    assert "\u202e" not in line.text and "\\u202e" in line.text
    assert "\x1b" not in line.text and "\ud800" not in line.text
    c.handle(Joined("x\u202ey"))
    assert "\u202e" not in view.texts(SYSTEM)[-1]
    assert all("\u202e" not in u for u in view.users)


def test_characters_outside_the_bmp_are_replaced_for_tk_8_6(env):
    c, view = env
    join(c, view)
    c.handle(msg(1, "bob", "party \U0001F389 time"))
    assert all(ord(ch) <= 0xFFFF for ch in view.lines[-1].text)
    assert "party" in view.lines[-1].text


def test_links_are_found_and_opened(env):
    c, view = env
    join(c, view)
    c.handle(msg(1, "bob", "see https://example.org/docs, or www.python.org."))
    line = view.lines[-1]
    assert [line.text[s:e] for s, e, _ in line.links] == ["https://example.org/docs", "www.python.org"]
    c.link_clicked("www.python.org")
    c.link_clicked("javascript:alert(1)")
    assert c.opened == ["http://www.python.org"]


# -- comfort, hosting, closing --------------------------------------------------------------


def test_font_size_and_theme_are_applied_and_saved(env):
    c, view = env
    c.zoom(+1)
    assert view.font_size == 12 and c.saved[-1].font_size == 12
    for _ in range(40):
        c.zoom(+1)
    assert view.font_size == 28
    c.zoom(0)
    assert view.font_size == 11
    c.toggle_theme()
    assert view.theme == "dark" and c.saved[-1].theme == "dark"


def test_host_a_room_starts_it_joins_it_and_shutdown_stops_it(env):
    c, view = env
    c.connect(ConnectValues(host="ignored", port="4567", nick="alice", password="pw", host_room=True))
    assert not FakeClient.instances, "the chat started before the room was up"
    assert view.form[2] == "Starting the room on port 4567…"
    assert type(settle_room(c)).__name__ == "RoomStarted"
    room = FakeRoom.started[-1]
    assert room.start_thread == "host-room-start"
    client = FakeClient.instances[-1]
    assert view.form[2] == "Connecting to 127.0.0.1:4567…"
    assert (room.requested_port, room.password, room.lan) == (4567, "pw", False)
    assert room.admin_fingerprint == c.identity_fingerprint and len(room.admin_fingerprint) == 64   # the host: its room's admin
    assert (client.host, client.port, client.password) == ("127.0.0.1", 4567, "pw")
    assert c.saved[-1].host_room and c.saved[-1].host != "ignored"
    c.handle(ev.Connected("127.0.0.1", 4567, "alice", ("alice",), False))
    c.handle(ev.Backlog(()))
    c.handle(ev.CaughtUp(0))
    assert "hosting this room on port 4567" in view.texts(SYSTEM)[0]
    assert "Nobody else is here yet" in view.texts(SYSTEM)[-1]
    c.shutdown(timeout=1)
    assert client.closed and room.stopped


def test_a_room_that_cannot_start_is_explained_on_the_form(env):
    c, view = env

    class Busy(FakeRoom):
        def start(self):
            raise HostingError("Port 4567 is already in use on this computer.")

    c.host_factory = Busy
    c.connect(ConnectValues(port="4567", nick="alice", host_room=True))
    assert view.form[2] and not view.form[1]         # busy while it starts
    assert type(settle_room(c)).__name__ == "RoomFailed"
    assert view.screen == "connect" and "already in use" in view.form[1] and view.form[2] is None
    assert view.focus == "port"
    assert not FakeClient.instances
    c.host_factory = FakeRoom                        # the form works again: try another port
    c.connect(ConnectValues(port="4568", nick="alice", host_room=True))
    settle_room(c)
    assert FakeClient.instances[-1].port == 4568


def test_closing_disconnects_without_waiting(env):
    c, view = env
    client = join(c, view)
    c.close(geometry="800x600")
    assert client.closed and c.saved[-1].geometry == "800x600"
    c.close()   # idempotent
    c.handle(ev.Disconnected("closed", None))
    assert not any("Disconnected" in t for t in view.texts(SYSTEM))


# -- encryption ----------------------------------------------------------------------------


def test_an_encrypted_first_visit_shows_the_fingerprint_to_compare(env):
    c, view = env
    c.connect(ConnectValues(host="10.0.0.2", port="30000", nick="alice", tls=True))
    client = FakeClient.instances[-1]
    assert client.tls and client.accept_fingerprint is None and c.saved[-1].tls
    c.handle(ev.Connected("10.0.0.2", 30000, "alice", ("alice",), False, "3F2A 9B1C", True))
    c.handle(ev.Backlog(()))
    c.handle(ev.CaughtUp(0))
    assert any("3F2A 9B1C" in t and "Compare it" in t for t in view.texts(SYSTEM))
    assert view.status == ("connected to 10.0.0.2:30000 as alice · encrypted", ONLINE)


def test_a_first_visit_shows_the_fingerprint_on_the_form_and_joins_once_trusted(env):
    c, view = env
    c.connect(ConnectValues(host="10.0.0.2", port="30000", nick="alice", password="pw", tls=True))
    first = FakeClient.instances[-1]
    c.handle(ev.Connecting("10.0.0.2", 30000, 1))
    c.handle(ev.ConnectFailed("tls_new", "First encrypted connection to 10.0.0.2:30000: nothing was sent "
                                         "to it yet. Its certificate fingerprint is 3F2A 9B1C.", None,
                              fingerprint="3F2A 9B1C"))
    assert view.screen == "connect" and "3F2A 9B1C" in view.form[1] and first.closed
    assert view.trust == "3F2A 9B1C" and view.trust_label == "I compared it: trust and join"
    assert view.status == ("offline", OFFLINE)
    c.trust_certificate()
    second = FakeClient.instances[-1]
    assert second is not first and second.tls and second.accept_fingerprint == "3F2A 9B1C"
    assert (second.host, second.port, second.nick, second.password) == ("10.0.0.2", 30000, "alice", "pw")
    assert view.form[2].startswith("Connecting to")
    c.handle(ev.Connected("10.0.0.2", 30000, "alice", ("alice",), False, "3F2A 9B1C", False))
    c.handle(ev.Backlog(()))
    c.handle(ev.CaughtUp(0))
    assert view.screen == "chat" and view.status[1] == ONLINE
    assert any("You joined as alice" in t for t in view.texts(SYSTEM))


def test_a_changed_certificate_stops_and_can_be_trusted_after_comparing(env):
    c, view = env
    first = join(c, view)
    c.handle(ev.Disconnected("The connection was lost.", 0.5))
    c.handle(ev.ConnectFailed("tls_changed", "Warning: the certificate of 127.0.0.1:30000 has changed.", None,
                              fingerprint="AAAA BBBB", pinned="CCCC DDDD"))
    assert view.screen == "connect" and view.form[1].startswith("Warning: the certificate")
    assert view.trust == "AAAA BBBB" and view.trust_label is None and first.closed   # the form's own label
    c.trust_certificate()
    second = FakeClient.instances[-1]
    assert second is not first and second.tls and second.accept_fingerprint == "AAAA BBBB"
    assert view.form[2].startswith("Connecting to")
    c.handle(ev.Connected("127.0.0.1", 30000, "alice", ("alice",), False, "AAAA BBBB", False))
    assert view.screen == "chat" and "Connected again as alice." in view.texts(SYSTEM)
    c.trust_certificate()                       # nothing offered any more: nothing happens
    assert FakeClient.instances[-1] is second


def test_an_encrypted_hosted_room_is_trusted_by_its_own_fingerprint(env):
    c, view = env
    c.connect(ConnectValues(port="4567", nick="alice", host_room=True, tls=True))
    settle_room(c)
    room, client = FakeRoom.started[-1], FakeClient.instances[-1]
    assert room.tls and client.accept_fingerprint == room.fingerprint == "AB12 CD34"
    c.handle(ev.Connected("127.0.0.1", 4567, "alice", ("alice",), False, "AB12 CD34", True))
    assert not any("First visit" in t for t in view.texts(SYSTEM))


def test_changed_hosting_choices_stop_the_old_room_before_the_new_one_starts_off_the_tk_thread(env):
    c, view = env
    c.connect(ConnectValues(port="4567", nick="alice", host_room=True))
    settle_room(c)
    first, client = FakeRoom.started[-1], FakeClient.instances[-1]
    # Back on the form (a failed attempt, say), the same port with TLS now.
    c.connect(ConnectValues(port="4567", nick="alice", host_room=True, tls=True))
    assert client.closed and c.client is None and c.hosted is None
    assert view.form[2].startswith("Starting the room")
    settle_room(c)
    second = FakeRoom.started[-1]
    assert second is not first and second.tls
    assert first.stopped and first.stop_thread == "host-room-start"     # not the Tk thread
    assert FakeRoom.log == [("start", 4567), ("stop", 4567), ("start", 4567)]
    assert FakeClient.instances[-1].accept_fingerprint == "AB12 CD34"
    # The same choices again: the running room is joined, nothing restarts.
    c.connect(ConnectValues(port="4567", nick="alice", host_room=True, tls=True))
    assert FakeRoom.log[-1] == ("start", 4567) and len(FakeRoom.started) == 2
    assert FakeClient.instances[-1].port == 4567


def test_unticking_hosting_stops_the_room_in_the_background_and_joins_at_once(env):
    c, view = env
    c.connect(ConnectValues(port="4567", nick="alice", host_room=True))
    settle_room(c)
    room = FakeRoom.started[-1]
    c.connect(ConnectValues(host="10.0.0.9", port="30000", nick="alice"))
    assert FakeClient.instances[-1].host == "10.0.0.9"          # not waiting for the stop
    wait_until(lambda: room.stopped, what="the room to stop")
    assert room.stop_thread == "host-room-stop"


def test_shutdown_waits_for_a_room_still_starting_and_stops_it(env):
    import threading
    c, view = env
    release = threading.Event()

    class Slow(FakeRoom):           # a first TLS certificate on a slow machine
        def start(self):
            release.wait(5)
            return super().start()

    c.host_factory = Slow
    c.connect(ConnectValues(port="4567", nick="alice", host_room=True, tls=True))
    assert not FakeClient.instances and view.form[2].startswith("Starting the room")
    threading.Timer(0.1, release.set).start()
    c.shutdown(timeout=5)
    room = FakeRoom.started[-1]
    assert room.stopped and not FakeClient.instances


def test_hosting_saves_the_address_it_joins_so_a_bad_one_is_not_shown_next_time(env):
    c, view = env
    c.connect(ConnectValues(host="192.0.2.99", port="30000", nick="alice"))
    c.handle(ev.ConnectFailed("timeout", "No answer from 192.0.2.99:30000 within 10 s.", None))
    assert c.saved[-1].host == "192.0.2.99"          # a failed join is remembered...
    c.connect(ConnectValues(host="192.0.2.99", port="30001", nick="alice", host_room=True))
    s = c.saved[-1]
    assert (s.host, s.port, s.host_room) == ("127.0.0.1", 30001, True)   # ...and hosting too
    view2 = FakeView()
    Controller(view2, s, client_factory=FakeClient, save_settings=lambda s: None).begin()
    assert view2.form[0].host == "127.0.0.1" and view2.form[0].host_room


def test_the_form_says_which_history_a_hosted_room_keeps(env, monkeypatch, tmp_path):
    from chatgui.app import hosting
    c, view = env
    monkeypatch.setenv("NATTER_HOME", str(tmp_path))
    assert c.history_note("30000") == f"History of the room on port 30000: {tmp_path}/data/rooms/room-30000.db"
    assert c.history_note(" 4567 ").endswith("room-4567.db")
    assert c.history_note("abc") == c.history_note("0") == "Each port is a room with a history of its own."
    monkeypatch.setenv("HOME", str(tmp_path))
    assert hosting.shown_path(hosting.room_history_path(5)) == "~/data/rooms/room-5.db"
    assert hosting.HostedRoom(5).db == hosting.room_history_path(5) != hosting.HostedRoom(6).db


# -- the window's words --------------------------------------------------------------------


def _policy_sentences():
    """Every sentence of the network layer that names a command-line flag."""
    import ssl
    from chatgui.net import failures as policy
    out = [policy.classify_os_error(ConnectionRefusedError(), "10.0.0.2", 30000, 10)[1],
           policy.classify_refusal(getattr(policy.protocol, "TLS_REQUIRED", "tls_required"), "", "al", False)[1],
           policy.classify_tls_error(ssl.SSLEOFError(), b"", "10.0.0.2", 30000)[1],
           policy.classify_tls_error(ssl.SSLError(1, "wrong version number"), b"\x15", "10.0.0.2", 30000)[1],
           "Connected to 10.0.0.2:30000, but the encryption (TLS) handshake did not finish within 10 s: "
           "is that a Natter server started with --tls?",     # chatgui.net.client's handshake timeout
           "Could not host an encrypted room: cannot make a TLS certificate: install the Python package "
           "'cryptography' or the 'openssl' command, or pass --cert and --key. Untick "
           "\"Encrypted connection (TLS)\" to host it unencrypted."]
    assert all("--" in s for s in out), out
    return out


@pytest.mark.parametrize("sentence", _policy_sentences())
def test_the_window_names_its_own_controls_not_command_line_flags(sentence):
    from chatgui.app.controller import for_window
    from chatgui.app.view import LAN_LABEL, TLS_LABEL
    shown = for_window(sentence)
    assert "--" not in shown, shown
    assert f"\"{LAN_LABEL}\"" in shown or f"\"{TLS_LABEL}\"" in shown, shown
    assert shown[0].isupper() and shown.rstrip().endswith((".", "?"))


def test_a_refused_connection_on_the_form_points_at_the_lan_checkbox(env):
    from chatgui.net import failures as policy
    from chatgui.app.view import LAN_LABEL
    c, view = env
    c.connect(ConnectValues(host="10.0.0.2", port="30000", nick="alice"))
    kind, message = policy.classify_os_error(ConnectionRefusedError(), "10.0.0.2", 30000, 10)
    c.handle(ev.ConnectFailed(kind, message, None))
    assert view.form[1].startswith("Nothing accepted the connection at 10.0.0.2:30000.")
    assert f"\"{LAN_LABEL}\"" in view.form[1] and "--host" not in view.form[1]


def test_the_hosting_notice_names_the_checkbox_by_its_label_and_where_it_is():
    from chatgui.app.hosting import HostedRoom
    from chatgui.app.view import HOST_LABEL, LAN_LABEL
    text = HostedRoom(4567).describe()
    assert f"\"{LAN_LABEL}\"" in text and f"under \"{HOST_LABEL}\"" in text and "start it again" in text
    assert "let others on the network join\"" not in text
