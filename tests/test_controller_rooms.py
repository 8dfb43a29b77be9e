"""The controller's rooms and private conversations, with a fake view and
a fake network client: routing, switching (drafts, people, topics), unread
counts, mentions and the "new messages" marker per room, read markers,
loading older messages, the room commands and their errors, and what is
remembered across a restart."""
from __future__ import annotations

import pytest

from chatgui.app.controller import ERROR, MENTION, OTHER, PRIVATE, SYSTEM, ConnectValues, Controller
from chatgui.app.settings import Settings
from chatgui.app.view import RoomChoice
from chatgui.net import events as ev
from chatgui.net.inbound import NO_ROOMS, NO_ROOMS_MESSAGE
from server import protocol as p
from server.protocol import Direct, HistoryPage, Joined, Left, Message, Renamed, RoomInfo, RoomList, RoomSummary
from server.protocol import Topic
from tests.fakes import FakeClient, FakeView

pytestmark = pytest.mark.timeout(30)

SERVER = "127.0.0.1:30000"


@pytest.fixture
def env():
    FakeClient.instances.clear()
    view = FakeView()
    saved = []
    c = Controller(view, Settings(), client_factory=FakeClient, save_settings=lambda s: saved.append(s))
    c.saved = saved
    return c, view


def room(name, users=("alice", "bob"), topic="", last_id=0, read=0, key=False, ref=None):
    return ev.RoomState(RoomInfo(name, topic, tuple(users), last_id, read, key, ref))


def msg(id, sender, text, room="lobby", ref=None):
    return Message(id, 1_700_000_000.0 + id, sender, text, ref, room)


def welcome(c, rooms=(("lobby", {}),), nick="alice", backlog=(), resumed=False, users=("alice", "bob", "carol")):
    """A v2 welcome: Connected, a RoomState per (name, fields), the backlog, CaughtUp."""
    c.handle(ev.Connecting("127.0.0.1", 30000, 1))
    c.handle(ev.Connected("127.0.0.1", 30000, nick, tuple(users), resumed, protocol=2,
                          rooms=tuple(name for name, _ in rooms)))
    for name, fields in rooms:
        c.handle(room(name, **fields))
    if backlog:
        c.handle(ev.Backlog(tuple(backlog)))
    c.handle(ev.CaughtUp(max([m.id for m in backlog] or [0])))


def start(c, **kw) -> FakeClient:
    c.connect(ConnectValues(host="127.0.0.1", port="30000", nick=kw.pop("nick", "alice")))
    client = FakeClient.instances[-1]
    welcome(c, **kw)
    return client


TWO = (("lobby", dict(users=("alice", "bob", "carol"), topic="Everyone")),
       ("maths", dict(users=("alice", "dave"), topic="Fractions", last_id=10, read=10)))


# -- the list, routing and switching ----------------------------------------------


def test_a_welcome_lists_the_rooms_and_shows_the_first(env):
    c, view = env
    start(c, rooms=TWO)
    assert [(r.id, r.label, r.private) for r in view.rooms] == [("#lobby", "#lobby", False),
                                                                ("#maths", "#maths", False)]
    assert view.active == view.visible == "#lobby"
    assert view.headers["#lobby"] == ("#lobby", "Everyone")
    assert view.users == ["alice", "bob", "carol"]
    assert "You joined as alice. 2 others are online." in view.texts(SYSTEM)[-1]


def test_messages_joins_and_leaves_go_to_their_room(env):
    c, view = env
    start(c, rooms=TWO)
    c.handle(msg(11, "dave", "half of a half", room="maths"))
    c.handle(Joined("erin", "maths"))
    c.handle(Left("dave", "quit", "maths"))
    c.handle(msg(12, "bob", "hello lobby"))
    assert [ln.text for ln in view.room_lines("#maths")] == ["half of a half", "erin joined.", "dave left."]
    assert view.texts()[-1] == "hello lobby"
    assert view.users == ["alice", "bob", "carol"]        # the lobby's people, not maths'
    c.switch_room("#maths", "")
    assert view.users == ["alice", "erin"]
    assert view.headers["#maths"] == ("#maths", "Fractions")


def test_switching_keeps_each_rooms_draft(env):
    c, view = env
    start(c, rooms=TWO)
    c.switch_room("#maths", "half typed in the lobby")
    assert view.visible == "#maths" and view.input == ("", 0) and view.active == "#maths"
    c.switch_room("#lobby", "and this in maths")
    assert view.visible == "#lobby" and view.input[0] == "half typed in the lobby"
    c.switch_room(c.next_room(+1), "lobby again")
    assert view.visible == "#maths" and view.input[0] == "and this in maths"
    c.switch_room("#nowhere", "ignored")                  # an id the list does not have
    assert view.visible == "#maths"


def test_next_room_wraps_and_room_at_counts_from_one(env):
    c, view = env
    start(c, rooms=TWO)
    c.handle(Direct(11, 1.7e9, "bob", "alice", "hi"))
    assert [r.id for r in view.rooms] == ["#lobby", "#maths", "@bob"]
    assert c.next_room(-1) == "@bob" and c.next_room(+1) == "#maths"
    assert (c.room_at(1), c.room_at(3), c.room_at(4), c.room_at(0)) == ("#lobby", "@bob", None, None)


def test_connection_notices_go_to_the_room_on_screen(env):
    c, view = env
    start(c, rooms=TWO)
    c.switch_room("#maths", "")
    c.handle(ev.Disconnected("The connection was lost.", 1.0))
    assert view.room_lines("#maths")[-1].text == "Disconnected: the connection was lost."
    assert view.room_lines("#lobby")[-1].text.startswith("You joined")


# -- unread counts, mentions, the marker -----------------------------------------


def test_unread_counts_and_mentions_per_room_and_in_the_title(env):
    c, view = env
    start(c, rooms=TWO)
    c.handle(msg(11, "dave", "anyone?", room="maths"))
    c.handle(msg(12, "dave", "alice: look", room="maths"))
    c.handle(msg(13, "bob", "in the lobby"))            # on screen, focused: not unread
    assert (view.entry("#maths").unread, view.entry("#maths").mention) == (2, True)
    assert view.entry("#lobby").unread == 0
    assert view.title.startswith("(2) ")
    assert view.bells == 1                               # the mention, in a room not on screen
    assert view.room_lines("#maths")[-1].kind == MENTION
    c.switch_room("#maths", "")
    assert (view.entry("#maths").unread, view.entry("#maths").mention) == (0, False)
    assert not view.title.startswith("(")
    c.focus_changed(False)
    c.handle(msg(14, "dave", "still there?", room="maths"))
    assert view.entry("#maths").unread == 1 and view.title.startswith("(1) ")
    c.focus_changed(True)
    assert view.entry("#maths").unread == 0


def test_own_messages_never_count(env):
    c, view = env
    start(c, rooms=TWO)
    c.handle(msg(11, "alice", "from my other window", room="maths"))
    assert view.entry("#maths").unread == 0 and view.markers == {}


def test_the_new_messages_marker_sits_where_reading_stopped(env):
    c, view = env
    start(c, rooms=TWO)
    c.handle(msg(11, "dave", "one", room="maths"))
    c.handle(msg(12, "dave", "two", room="maths"))
    assert view.markers == {"#maths": 11}                # above the first unread, not moved by the second
    c.switch_room("#maths", "")
    c.seen_bottom("#maths")
    c.handle(msg(13, "dave", "three", room="maths"))     # looking at it: no new run
    c.seen_bottom("#maths")
    assert view.markers == {"#maths": 11}
    c.switch_room("#lobby", "")
    c.handle(msg(14, "dave", "four", room="maths"))      # a new run after everything was read
    assert view.markers == {"#maths": 14}


def test_unread_counts_come_from_the_room_frame_on_a_reconnect(env):
    c, view = env
    client = start(c, rooms=TWO)
    c.handle(ev.Disconnected("The connection was lost.", 1.0))
    c.handle(ev.Connected("127.0.0.1", 30000, "alice", ("alice",), True, protocol=2, rooms=("lobby", "maths")))
    c.handle(room("lobby"))
    c.handle(room("maths", users=("alice", "dave"), last_id=16, read=12))
    c.handle(ev.Backlog((msg(11, "dave", "read on another device", room="maths"),
                         msg(12, "dave", "that one too", room="maths"),
                         msg(15, "dave", "new", room="maths"), msg(16, "dave", "newer", room="maths"))))
    c.handle(ev.CaughtUp(16))
    assert view.entry("#maths").unread == 2              # above the server's read marker (12) only
    assert view.markers["#maths"] == 15
    assert view.room_lines("#maths")[-1].text == "That was what you missed while away (4 messages)."
    assert client.of("read") == []


def test_caught_up_messages_in_the_room_on_screen_get_the_marker_but_no_count(env):
    c, view = env
    c.focused = True
    start(c, rooms=(("lobby", dict(last_id=12, read=10)),),
          backlog=(msg(9, "bob", "read before"), msg(10, "bob", "read too"),
                   msg(11, "bob", "missed one"), msg(12, "bob", "missed two")))
    assert view.markers == {"#lobby": 11}                # where reading stopped, on screen
    assert view.entry("#lobby").unread == 0               # looked at: nothing counted
    c.handle(msg(13, "bob", "live"))                      # seen as it comes: the line stays
    assert view.markers == {"#lobby": 11}


def test_read_markers_are_sent_once_per_new_bottom_and_again_if_the_server_missed_one(env):
    c, view = env
    client = start(c, rooms=TWO)
    c.switch_room("#maths", "")
    c.handle(msg(11, "dave", "a", room="maths"))
    c.handle(msg(12, "dave", "b", room="maths"))
    for _ in range(3):
        c.seen_bottom("#maths")
    assert client.of("read") == [(("maths", 12), None)]
    c.handle(msg(13, "alice", "mine", room="maths"))
    c.seen_bottom("#maths")
    assert client.of("read")[-1] == (("maths", 13), None) and len(client.of("read")) == 2
    c.seen_bottom("#nowhere")                            # unknown ids are ignored
    # The server comes back with an older marker (our last read frame was lost): sent again.
    c.handle(ev.Disconnected("The connection was lost.", 1.0))
    c.handle(ev.Connected("127.0.0.1", 30000, "alice", ("alice",), True, protocol=2, rooms=("lobby", "maths")))
    c.handle(room("maths", last_id=13, read=12))
    assert client.of("read")[-1] == (("maths", 13), None)


def test_a_private_message_is_always_a_mention(env):
    c, view = env
    start(c, rooms=TWO)
    c.handle(Direct(11, 1.7e9, "bob", "alice", "psst"))
    c.handle(Direct(12, 1.7e9, "Bob", "alice", "the same bob"))
    assert [r.id for r in view.rooms][-1] == "@bob" and len(view.rooms) == 3
    e = view.entry("@bob")
    assert (e.unread, e.mention, e.private) == (2, True, True)
    assert [ln.kind for ln in view.room_lines("@bob")] == [PRIVATE, PRIVATE]


# -- older messages -----------------------------------------------------------------


def test_loading_older_messages_page_by_page_until_the_start(env):
    c, view = env
    client = start(c, rooms=(("lobby", dict(last_id=60)),), backlog=[msg(i, "bob", f"m{i}") for i in (50, 55, 60)])
    c.load_older("#lobby")
    c.load_older("#lobby")                               # one request at a time
    (args, ref), = client.of("history")
    assert args == dict(room="lobby", with_=None, before=50, after=None, limit=50)
    c.handle(HistoryPage("lobby", None, (msg(30, "bob", "m30"), msg(40, "carol", "m40")), True, ref))
    c.handle(ev.Acked(ref, None))
    room_, lines, more = view.prepends[-1]
    assert (room_, [ln.text for ln in lines], more) == ("#lobby", ["m30", "m40"], True)
    assert view.texts(OTHER)[:3] == ["m30", "m40", "m50"]
    c.load_older("#lobby")
    args, ref = client.of("history")[-1]
    assert args["before"] == 30
    c.handle(HistoryPage("lobby", None, (msg(10, "bob", "m10"), msg(30, "bob", "m30")), False, ref))
    assert [ln.text for ln in view.prepends[-1][1]] == ["m10"]        # m30 is shown already
    assert view.prepends[-1][2] is False and "#lobby" in view.starts
    c.load_older("#lobby")
    assert len(client.of("history")) == 2                # the start was reached: nothing more to ask


def test_a_history_error_stops_loading_with_a_sentence(env):
    c, view = env
    client = start(c, rooms=(("lobby", dict(last_id=5)),), backlog=[msg(5, "bob", "m5")])
    c.load_older("#lobby")
    ref = client.of("history")[-1][1]
    c.handle(ev.Refused(ref, p.NOT_IN_ROOM, "You are not in lobby."))
    assert view.lines[-1].kind == ERROR and view.lines[-1].text.startswith("Older messages cannot be loaded")
    c.load_older("#lobby")
    assert len(client.of("history")) == 1


def test_private_history_pages_with_the_other_person(env):
    c, view = env
    client = start(c, rooms=TWO)
    c.handle(Direct(20, 1.7e9, "bob", "alice", "hi"))
    c.load_older("@bob")
    args, ref = client.of("history")[-1]
    assert args == dict(room=None, with_="bob", before=20, after=None, limit=50)
    c.handle(HistoryPage(None, "bob", (Direct(3, 1.6e9, "alice", "bob", "long ago"),), False, ref))
    assert [(ln.who, ln.text) for ln in view.room_lines("@bob")] == [("you → bob", "long ago"),
                                                                    ("bob → you", "hi")]


def test_a_server_without_rooms_has_one_lobby_and_no_history_requests(env):
    c, view = env
    c.connect(ConnectValues(host="127.0.0.1", port="30000", nick="alice"))
    client = FakeClient.instances[-1]
    c.handle(ev.Connected("127.0.0.1", 30000, "alice", ("alice", "bob"), False))   # protocol 1
    c.handle(ev.Backlog((msg(1, "bob", "from before"),)))
    c.handle(ev.CaughtUp(1))
    assert [r.id for r in view.rooms] == ["#lobby"] and view.users == ["alice", "bob"]
    c.load_older("#lobby")
    c.submit("/join maths")
    c.submit("/rooms")
    assert client.of("history") == [] and client.of("join") == [] and client.of("rooms") == []
    assert view.texts(ERROR) == [
        "This server has only one room (it runs an older version of Natter): /join, /part, /topic and "
        "/rooms need a newer server."] * 2
    c.submit("hello")
    assert client.sent[-1] == ("say", "hello", "r1") and client.said_in["r1"] == "lobby"


# -- commands ----------------------------------------------------------------------


def test_join_switches_to_the_room_and_loads_its_newest_messages(env):
    c, view = env
    client = start(c, rooms=TWO[:1])
    c.submit("/join #Physics")
    (args, ref), = client.of("join")
    assert args == ("Physics", None) and view.texts(SYSTEM)[-1] == "Joining #Physics…"
    c.handle(room("Physics", users=("alice", "erin"), topic="Forces", last_id=30, ref=ref))
    c.handle(Joined("alice", "Physics"))
    c.handle(ev.Acked(ref, None))
    assert view.visible == "#physics" and view.headers["#physics"] == ("#Physics", "Forces")
    assert view.users == ["alice", "erin"]
    hargs, href = client.of("history")[-1]
    assert hargs == dict(room="Physics", with_=None, before=None, after=None, limit=50)
    c.handle(msg(31, "erin", "live, before the page", room="Physics"))
    c.handle(HistoryPage("Physics", None, (msg(29, "erin", "older"), msg(30, "erin", "newest")), True, href))
    assert [ln.text for ln in view.room_lines("#physics")] == ["older", "newest", "live, before the page"]
    assert c.saved[-1].rooms[SERVER]["rooms"] == ["lobby", "Physics"]
    c.submit("/join physics")                            # in it already: just go there
    assert len(client.of("join")) == 1


def test_part_leaves_forgets_the_room_and_shows_another(env):
    c, view = env
    client = start(c, rooms=TWO)
    c.switch_room("#maths", "")
    c.submit("/part")
    (name, ref), = client.of("part")
    assert name == "maths"
    c.handle(Left("alice", "part", "maths"))
    c.handle(ev.Acked(ref, None))
    assert view.forgotten == ["#maths"] and [r.id for r in view.rooms] == ["#lobby"]
    assert view.visible == "#lobby" and view.texts(SYSTEM)[-1] == "You left #maths."
    assert c.saved[-1].rooms[SERVER]["rooms"] == ["lobby"]


def test_parting_the_last_room_keeps_it_on_screen_and_says_what_to_do(env):
    c, view = env
    client = start(c, rooms=TWO[:1])
    c.submit("/part lobby")
    ref = client.of("part")[-1][1]
    c.handle(ev.Refused(ref, p.NOT_IN_ROOM, "You are not in lobby."))     # out already: the same
    assert view.forgotten == [] and view.visible == "#lobby"
    assert view.texts(SYSTEM)[-1].startswith("You left #lobby. Type /join NAME")
    c.submit("still here?")
    assert view.texts(ERROR)[-1].startswith("You are not in #lobby any more: /join lobby")
    assert client.of("say") == []


def test_closing_a_private_conversation(env):
    c, view = env
    client = start(c, rooms=TWO)
    c.submit("/msg bob hi")
    assert view.visible == "@bob"
    c.submit("/part")
    assert client.of("part") == [] and view.forgotten == ["@bob"] and view.visible == "#maths"


def test_topic_shows_sets_and_follows_changes(env):
    c, view = env
    client = start(c, rooms=TWO)
    c.submit("/topic")
    assert view.texts(SYSTEM)[-1] == "Topic of #lobby: Everyone. Set it with /topic text."
    c.submit("/topic Quiz at noon")
    (args, ref), = client.of("topic")
    assert args == ("lobby", "Quiz at noon")
    c.handle(Topic("lobby", "Quiz at noon", "alice", 11, 1.7e9, ref))
    c.handle(ev.Acked(ref, 11))
    assert view.headers["#lobby"] == ("#lobby", "Quiz at noon")
    assert view.texts(SYSTEM)[-1] == "alice set the topic: Quiz at noon"
    c.handle(Topic("maths", "", "dave", 12, 1.7e9))
    assert view.room_lines("#maths")[-1].text == "dave cleared the topic."
    assert view.headers["#lobby"] == ("#lobby", "Quiz at noon")      # not on screen: header unchanged
    c.submit("/topic -")
    assert client.of("topic")[-1][0] == ("lobby", "")


def test_rooms_opens_the_browser_with_member_counts_and_key_marks(env):
    c, view = env
    client = start(c, rooms=TWO)
    c.submit("/rooms")
    (_, ref), = client.of("rooms")
    c.handle(RoomList((RoomSummary("lobby", "Everyone", 3, 10, False), RoomSummary("maths", "", 2, 9, False),
                       RoomSummary("staff", "Private", 2, 4, True)), ref))
    assert view.browsers == [[RoomChoice("lobby", "Everyone", 3, False, True),
                              RoomChoice("maths", "", 2, False, True),
                              RoomChoice("staff", "Private", 2, True, False)]]
    c.join_room("staff", "s3cret")
    assert client.of("join")[-1][0] == ("staff", "s3cret")


# -- errors, as sentences ---------------------------------------------------------------


def test_a_wrong_or_missing_key_asks_again_through_the_browser(env):
    c, view = env
    client = start(c, rooms=TWO)
    c.submit("/join staff")
    ref = client.of("join")[-1][1]
    c.handle(ev.Refused(ref, p.BAD_KEY, "That room needs a key."))
    assert view.texts(ERROR)[-1] == ("#staff needs its key (a password) to join. "
                                     "Type it in the list of rooms that opens now.")
    (_, lref), = client.of("rooms")
    c.handle(RoomList((RoomSummary("lobby", "", 3, 10, False), RoomSummary("staff", "", 2, 4, True)), lref))
    assert view.browsers[-1] == [RoomChoice("staff", "", 2, True, False)]
    c.join_room("staff", "wrong")
    c.handle(ev.Refused(client.of("join")[-1][1], p.BAD_KEY, "Wrong key."))
    assert view.texts(ERROR)[-1].startswith("#staff needs its key (a password) to join, and the one given is not it.")


@pytest.mark.parametrize("code, words", [
    (p.TOO_MANY_ROOMS, "Could not join #maths2: you are in as many rooms as the server allows, or it holds as "
                       "many as it can (at most 100 rooms each). Leave one with /part and try again."),
    (p.BAD_ROOM, "There can be no room #maths2: that name is reserved."),
])
def test_join_refusals_are_sentences(env, code, words):
    c, view = env
    client = start(c, rooms=TWO)
    c.submit("/join maths2")
    c.handle(ev.Refused(client.of("join")[-1][1], code, {p.TOO_MANY_ROOMS: "At most 100 rooms each.",
                                                          p.BAD_ROOM: "That name is reserved."}[code]))
    assert view.texts(ERROR)[-1] == words
    assert "#maths2" not in [r.id for r in view.rooms]


def test_saying_in_a_room_the_server_says_we_are_not_in(env):
    c, view = env
    client = start(c, rooms=TWO)
    c.switch_room("#maths", "")
    c.submit("x = 1/2")
    (text, ref), = client.of("say")
    assert client.said_in[ref] == "maths" and view.pending_room[ref] == "#maths"
    c.handle(ev.Refused(ref, p.NOT_IN_ROOM, "You are not in maths."))
    assert view.pending == {}
    assert view.texts(ERROR)[-1] == "Not sent: you are not in #maths; /join maths to talk there (“x = 1/2”)"


def test_bad_room_names_and_topics_are_explained_before_anything_is_sent(env):
    c, view = env
    client = start(c, rooms=TWO)
    c.submit("/join two.words")
    c.submit("/topic " + "x" * 301)
    c.switch_room(c.room_at(1), "")
    c.handle(Direct(11, 1.7e9, "bob", "alice", "hi"))
    c.switch_room("@bob", "")
    c.submit("/topic private chat")
    assert [t.split(":")[0] for t in view.texts(ERROR, room="#lobby")] == ["'two.words' cannot be a room name",
                                                                          "That topic cannot be used"]
    assert view.texts(ERROR)[-1] == "A private conversation has no topic."
    assert client.of("join") == client.of("topic") == []


def test_refusals_from_a_client_that_found_no_rooms(env):
    c, view = env
    client = start(c, rooms=TWO)
    c.submit("/join maths2")
    c.handle(ev.Refused(client.of("join")[-1][1], NO_ROOMS, NO_ROOMS_MESSAGE))
    assert view.texts(ERROR)[-1].startswith("This server has only one room")


# -- renames, private conversations, remembering -----------------------------------------


def test_a_rename_moves_the_private_conversation_and_the_people(env):
    c, view = env
    start(c, rooms=TWO)
    c.handle(Direct(11, 1.7e9, "bob", "alice", "hi"))
    c.handle(Renamed("bob", "robert"))
    assert view.entry("@bob").label == "robert"
    assert view.users == ["alice", "carol", "robert"]
    assert view.texts(SYSTEM)[-1] == "bob is now known as robert."
    assert view.room_lines("@bob")[-1].text == "bob is now known as robert."
    c.handle(Direct(12, 1.7e9, "robert", "alice", "it's me"))
    assert [r.id for r in view.rooms] == ["#lobby", "#maths", "@bob"]
    assert view.room_lines("@bob")[-1].text == "it's me"


def test_a_restart_lists_remembered_conversations_and_rejoins_what_the_server_forgot(env):
    c, view = env
    remembered = {SERVER: {"rooms": ["lobby", "maths", "physics"], "private": ["bob"]}}
    c.settings = Settings(nick="alice", rooms={k: dict(v) for k, v in remembered.items()})
    client = start(c, rooms=(("lobby", {}), ("maths", {})))          # physics was not restored
    assert [args for args, _ in client.of("join")] == [("physics", None)]
    assert [r.id for r in view.rooms] == ["#lobby", "#maths", "@bob"]
    hargs, href = client.of("history")[-1]                 # the private conversation's newest page
    assert hargs == dict(room=None, with_="bob", before=None, after=None, limit=50)
    c.handle(HistoryPage(None, "bob", (Direct(4, 1.6e9, "bob", "alice", "from last week"),), True, href))
    assert view.room_lines("@bob")[0].text == "from last week"
    c.handle(room("physics", last_id=0, ref=client.of("join")[-1][1]))
    assert view.visible == "#lobby"                        # a re-join does not switch rooms
    assert [r.id for r in view.rooms] == ["#lobby", "#maths", "#physics", "@bob"]
    assert c.settings.rooms[SERVER] == remembered[SERVER]


def test_a_rejoin_refused_for_a_key_forgets_the_room_until_joined_again(env):
    c, view = env
    c.settings = Settings(nick="alice", rooms={SERVER: {"rooms": ["lobby", "staff"], "private": []}})
    client = start(c, rooms=(("lobby", {}),))
    ref = client.of("join")[-1][1]
    c.handle(ev.Refused(ref, p.BAD_KEY, "That room needs a key."))
    assert c.saved[-1].rooms[SERVER]["rooms"] == ["lobby"]
    assert view.texts(ERROR)[-1].startswith("#staff needs its key")


def test_rooms_the_server_restored_are_remembered(env):
    c, view = env
    start(c, rooms=TWO)
    assert c.saved[-1].rooms[SERVER] == {"rooms": ["lobby", "maths"]}


def test_reconnect_with_a_new_client_forgets_the_old_ones_requests(env):
    c, view = env
    first = start(c, rooms=(("lobby", dict(last_id=9)),), backlog=[msg(9, "bob", "m9")])
    c.load_older("#lobby")
    assert len(first.of("history")) == 1
    c.handle(ev.Disconnected("The server closed the connection.", None))
    c.handle(ev.Closed())
    c.retry()                                       # Reconnect: a new client
    second = FakeClient.instances[-1]
    assert second is not first
    welcome(c, rooms=(("lobby", dict(last_id=9)),), resumed=True)
    c.load_older("#lobby")
    (args, _), = second.of("history")
    assert args["before"] == 9


def test_an_empty_private_history_is_not_asked_for_again_on_every_reconnect(env):
    c, view = env
    c.settings = Settings(nick="alice", rooms={SERVER: {"rooms": ["lobby"], "private": ["bob"]}})
    client = start(c)
    (_, ref), = client.of("history")
    c.handle(HistoryPage(None, "bob", (), False, ref))
    assert "@bob" in view.starts
    c.handle(ev.Disconnected("The connection was lost.", 1.0))
    welcome(c, resumed=True)
    assert len(client.of("history")) == 1


def test_seen_bottom_is_ignored_while_the_window_has_no_focus(env):
    c, view = env
    client = start(c, rooms=TWO)
    c.focus_changed(False)
    c.handle(msg(11, "bob", "while away"))
    c.seen_bottom("#lobby")
    assert client.of("read") == [] and view.entry("#lobby").unread == 1
    c.focus_changed(True)
    c.seen_bottom("#lobby")
    assert client.of("read") == [(("lobby", 11), None)]


def test_after_the_window_trims_old_lines_paging_goes_on_from_the_oldest_still_shown(env):
    c, view = env
    client = start(c, rooms=(("lobby", dict(last_id=40)),),
                   backlog=[msg(i, "bob", f"m{i}") for i in range(10, 41, 10)])
    c.load_older("#lobby")
    ref = client.of("history")[-1][1]
    c.handle(HistoryPage("lobby", None, (msg(5, "bob", "m5"),), False, ref))
    assert "#lobby" in view.starts
    c.trimmed("#lobby", 30)                         # the window dropped m5, m10, m20
    c.load_older("#lobby")
    args, ref = client.of("history")[-1]
    assert args["before"] == 30
    c.handle(HistoryPage("lobby", None, (msg(10, "bob", "m10"), msg(20, "bob", "m20")), True, ref))
    assert [ln.text for ln in view.prepends[-1][1]] == ["m10", "m20"]    # shown again, not taken for repeats


# -- paging forward after the window dropped its newest lines (issue 16) ----------


def far_back(c, view, client):
    """The lobby holds m50..m60 live, then the window drops everything after m52."""
    c.dropped_newest("#lobby", 52)
    model = c.rooms.get("#lobby")
    assert model.newest == 52 and not model.live
    return model


def ids_of(view, room="#lobby"):
    return [ln.msg_id for ln in view.room_lines(room) if ln.msg_id is not None]


def test_live_messages_are_counted_not_drawn_while_the_live_end_is_not_loaded(env):
    c, view = env
    client = start(c, rooms=(("lobby", dict(last_id=60, read=60)),), backlog=[msg(i, "bob", f"m{i}") for i in range(50, 61)])
    far_back(c, view, client)
    c.focus_changed(False)
    before = list(view.lines)
    c.handle(msg(61, "bob", "live one"))
    c.handle(msg(62, "carol", "alice, look"))
    assert view.lines == before                          # not appended
    assert view.below == {"#lobby": 2}                   # counted on the button
    assert c.rooms.get("#lobby").unread == 2 and c.rooms.get("#lobby").mention
    assert view.markers["#lobby"] == 61


def test_paging_forward_one_request_at_a_time_until_the_live_end(env):
    c, view = env
    client = start(c, rooms=(("lobby", dict(last_id=60)),), backlog=[msg(i, "bob", f"m{i}") for i in range(50, 61)])
    view.convos["#lobby"] = [ln for ln in view.convos["#lobby"] if ln.msg_id is None or ln.msg_id <= 52]
    far_back(c, view, client)
    c.load_newer("#lobby")
    c.load_newer("#lobby")                               # one request at a time...
    c.load_older("#lobby")                               # ...either way
    (args, ref), = client.of("history")[-1:]
    assert len([a for a, _ in client.of("history") if a["after"] is not None]) == 1
    assert args == dict(room="lobby", with_=None, before=None, after=52, limit=50)
    c.handle(msg(61, "bob", "m61"))                      # live meanwhile: in history, not drawn
    c.handle(HistoryPage("lobby", None, tuple(msg(i, "bob", f"m{i}") for i in range(53, 57)), True, ref))
    c.handle(ev.Acked(ref, None))
    assert view.extends[-1][0] == "#lobby" and view.extends[-1][2] is False
    assert ids_of(view) == list(range(50, 57))
    assert not c.rooms.get("#lobby").live
    c.load_newer("#lobby")
    args, ref = client.of("history")[-1]
    assert args["after"] == 56
    # The last page overlaps what is shown (57 came twice): no duplicates.
    c.handle(HistoryPage("lobby", None, tuple(msg(i, "bob", f"m{i}") for i in (56, 57, 58, 59, 60, 61)), False, ref))
    assert view.extends[-1][2] is True and c.rooms.get("#lobby").live
    assert ids_of(view) == list(range(50, 62))
    c.load_newer("#lobby")                               # live: nothing newer to ask
    assert client.of("history")[-1][1] == ref
    c.handle(msg(62, "bob", "m62"))                      # appended again
    assert ids_of(view) == list(range(50, 63))


def test_a_newer_page_does_not_count_again_what_was_counted_live(env):
    c, view = env
    client = start(c, rooms=(("lobby", dict(last_id=60)),), backlog=[msg(i, "bob", f"m{i}") for i in range(50, 61)])
    far_back(c, view, client)
    c.focus_changed(False)
    c.handle(msg(61, "bob", "m61"))
    assert c.rooms.get("#lobby").unread == 1
    c.load_newer("#lobby")
    ref = client.of("history")[-1][1]
    c.handle(HistoryPage("lobby", None, tuple(msg(i, "bob", f"m{i}") for i in range(53, 62)), False, ref))
    assert c.rooms.get("#lobby").unread == 1


def test_the_button_starts_over_from_the_newest_page_and_forgets_a_page_in_flight(env):
    c, view = env
    client = start(c, rooms=(("lobby", dict(last_id=60)),), backlog=[msg(i, "bob", f"m{i}") for i in range(50, 61)])
    far_back(c, view, client)
    c.load_newer("#lobby")
    stale = client.of("history")[-1][1]
    c.to_live("#lobby")
    assert view.room_lines("#lobby") == [] and c.rooms.get("#lobby").live
    args, ref = client.of("history")[-1]
    assert args == dict(room="lobby", with_=None, before=None, after=None, limit=50)
    c.handle(HistoryPage("lobby", None, (msg(53, "bob", "m53"),), True, stale))     # too late: ignored
    assert view.extends == [] and view.room_lines("#lobby") == []
    c.handle(msg(61, "bob", "m61"))                      # live again: drawn
    c.handle(HistoryPage("lobby", None, tuple(msg(i, "bob", f"m{i}") for i in range(12, 62)), True, ref))
    assert ids_of(view) == list(range(12, 62))
    c.to_live("#lobby")                                  # at the live end already: nothing
    assert client.of("history")[-1][1] == ref


def test_our_own_message_takes_a_far_back_conversation_to_its_live_end(env):
    c, view = env
    client = start(c, rooms=(("lobby", dict(last_id=60)),), backlog=[msg(i, "bob", f"m{i}") for i in range(50, 61)])
    far_back(c, view, client)
    c.handle(msg(61, "alice", "mine"))
    assert c.rooms.get("#lobby").live and view.room_lines("#lobby") == []
    assert client.of("history")[-1][0]["after"] is None and client.of("history")[-1][0]["before"] is None
