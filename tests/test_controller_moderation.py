"""The controller's moderation (issue 11), with a fake view and a fake
network client: roles and modes per room, what the menus offer to whom,
the sentences of moderated/mode events and of every refusal, edited and
removed lines, the questions list, the settings dialog, the moderation
commands, and the identity."""
from __future__ import annotations

import os
import stat

import pytest

from chatgui.app.controller import ERROR, OWN, SYSTEM, ConnectValues, Controller
from chatgui.app.settings import Settings
from chatgui.app.view import Modes, RoomPowers
from chatgui.net import events as ev
from chatgui.net import identity
from chatgui.net import moderation as mod
from server.protocol import HistoryPage, Left, Message, RoomInfo, Topic
from tests.fakes import FakeClient, FakeView

pytestmark = pytest.mark.timeout(30)

NOW = 1_700_000_000.0
SECRET = "s" * 43


@pytest.fixture
def env():
    FakeClient.instances.clear()
    view = FakeView()
    clock = {"now": NOW + 100}
    c = Controller(view, Settings(), client_factory=FakeClient, save_settings=lambda s: None,
                   identity=SECRET, wall=lambda: clock["now"])
    c.clock_ = clock
    return c, view


def room(name, users=("alice", "bob", "carol"), role="member", roles=None, modes=None, ref=None, last_id=0):
    powers = mod.parse_room_powers({"role": role, "roles": roles or {}, "modes": modes or {}})
    return ev.RoomState(RoomInfo(name, "", tuple(users), last_id, 0, False, ref), powers)


def msg(id, sender, text, room="maths", ref=None, ts=None, **marks):
    if marks:
        return mod.MarkedMessage(id, ts or NOW + id, sender, text, ref, room, **marks)
    return Message(id, ts or NOW + id, sender, text, ref, room)


def start(c, role="member", roles=None, modes=None, nick="alice", admin=False, users=("alice", "bob", "carol"),
          last_id=0):
    c.connect(ConnectValues(host="127.0.0.1", port="30000", nick=nick))
    client = FakeClient.instances[-1]
    c.handle(ev.Connected("127.0.0.1", 30000, nick, users, False, protocol=2, rooms=("maths",), admin=admin))
    c.handle(room("maths", users=users, role=role, roles=roles, modes=modes, last_id=last_id))
    c.handle(ev.CaughtUp(0))
    return client


def labels(items):
    return [i.action for i in items]


# -- roles, modes, powers ------------------------------------------------------------


def test_the_room_frame_gives_our_role_the_modes_and_the_roles_in_the_people_list(env):
    c, view = env
    start(c, role="op", roles={"alice": "op", "bob": "voice", "carol": "bogus"},
          modes={"moderated": True, "slow": 30, "dm": False})
    powers = view.powers["#maths"]
    assert powers == RoomPowers("op", Modes(moderated=True, slow=30, dm=False), {"alice": "op", "bob": "voice"},
                                moderate=True, grant=False, speak=True, why="")
    assert view.roles == {"alice": "op", "bob": "voice"}        # a role the protocol lacks is dropped
    assert view.questions["#maths"] == []                        # ops get the (empty) questions list


def test_a_member_in_a_moderated_room_is_told_why_the_room_is_silent(env):
    c, view = env
    start(c, modes={"moderated": True})
    powers = view.powers["#maths"]
    assert (powers.moderate, powers.speak) == (False, False)
    assert powers.why == "Only ops and people with voice can speak in #maths now (it is moderated)."
    assert "#maths" not in view.questions                        # no questions list for a member


def test_an_admin_is_an_owner_in_every_room(env):
    c, view = env
    start(c, admin=True)
    assert view.powers["#maths"].role == "owner" and view.powers["#maths"].grant
    assert "op" in labels(c.person_menu("#maths", "bob"))


# -- the person menu ----------------------------------------------------------------


def test_a_member_gets_only_message_and_mention_in_the_person_menu(env):
    c, view = env
    start(c)
    assert labels(c.person_menu("#maths", "bob")) == ["msg", "mention"]
    assert labels(c.person_menu("#maths", "alice")) == []        # ourselves


def test_an_op_can_kick_mute_ban_and_voice_but_not_make_ops_nor_touch_other_ops(env):
    c, view = env
    start(c, role="op", roles={"alice": "op", "carol": "op"})
    items = c.person_menu("#maths", "bob")
    assert labels(items) == ["msg", "mention", "kick", "mute:300", "mute:3600", "mute:86400", "ban", "voice"]
    assert [i.label for i in items][3:6] == ["Mute for 5 minutes", "Mute for 1 hour", "Mute for a day"]
    assert items[2].separator_before
    assert labels(c.person_menu("#maths", "carol")) == ["msg", "mention"]    # an equal rank


def test_an_owner_can_make_and_unmake_ops(env):
    c, view = env
    start(c, role="owner", roles={"alice": "owner", "carol": "op", "bob": "voice"})
    assert labels(c.person_menu("#maths", "carol"))[-1] == "deop"
    assert labels(c.person_menu("#maths", "bob"))[-2:] == ["op", "devoice"]


def test_choosing_mute_for_5_minutes_sends_the_mod_frame(env):
    c, view = env
    client = start(c, role="op")
    c.person_action("#maths", "bob", "mute:300")
    c.person_action("#maths", "bob", "kick")
    assert [a for a, _ in client.of("mod")] == [("maths", "mute", "bob", None, 300),
                                                ("maths", "kick", "bob", None, None)]
    c.person_action("#maths", "bob", "msg")
    assert view.input[0] == "/msg bob "
    c.person_action("#maths", "bob", "mention")
    assert view.input[0] == "bob: "
    c.person_action("#maths", "bob", "rm -rf")                  # not an action: nothing sent
    assert len(client.of("mod")) == 2


def test_a_muted_person_offers_unmute_instead(env):
    c, view = env
    start(c, role="op")
    c.handle(mod.Moderated("maths", "mute", "bob", "alice", None, NOW + 400, 5, NOW + 100))
    assert "unmute" in labels(c.person_menu("#maths", "bob"))
    assert "mute:300" not in labels(c.person_menu("#maths", "bob"))


# -- moderated and mode events -----------------------------------------------------------


def test_being_muted_says_for_how_long_and_the_room_knows_we_cannot_speak(env):
    c, view = env
    start(c)
    c.handle(mod.Moderated("maths", "mute", "alice", "teacher", "talking", NOW + 400, 5, NOW + 100))
    assert view.texts(SYSTEM)[-1] == "teacher muted you in #maths for 5 minutes: talking You can read, but not speak."
    c.clock_["now"] = NOW + 160
    c.handle(mod.Moderated("maths", "voice", "bob", "teacher", None, None, 6, NOW + 160))
    assert view.powers["#maths"].why == "You are muted in #maths for 4 more minutes."
    assert not view.powers["#maths"].speak
    c.handle(mod.Moderated("maths", "unmute", "alice", None, "expired", None, 7, NOW + 400))
    assert view.texts(SYSTEM)[-1] == "You can speak in #maths again (the mute has expired)."
    assert view.powers["#maths"].speak


def test_kick_ban_op_and_voice_lines_and_roles(env):
    c, view = env
    start(c)
    c.handle(mod.Moderated("maths", "voice", "bob", "teacher", None, None, 5, NOW))
    c.handle(mod.Moderated("maths", "op", "alice", "teacher", None, None, 6, NOW))
    c.handle(mod.Moderated("maths", "ban", "carol", "teacher", "rude", NOW + 3600, 7, NOW))
    c.handle(Left("carol", "ban", "maths"))
    c.handle(mod.Moderated("maths", "unban", "carol", None, "expired", None, 8, NOW))
    assert view.texts(SYSTEM)[-4:] == ["teacher gave bob voice in #maths.", "teacher made you an op of #maths.",
                                       "teacher banned carol from #maths for 1 hour: rude",
                                       "The ban on carol in #maths has expired."]
    assert view.powers["#maths"].role == "op" and view.powers["#maths"].moderate
    assert view.roles == {"alice": "op", "bob": "voice"}
    assert view.users == ["alice", "bob"]


def test_being_removed_from_a_room_says_why_in_the_conversation_we_land_in(env):
    c, view = env
    start(c)
    c.handle(room("physics", users=("alice", "teacher")))
    c.switch_room("#physics", "")
    c.handle(mod.Moderated("physics", "ban", "alice", "teacher", "cheating", NOW + 100 + 86_400, 9, NOW + 100))
    c.handle(Left("alice", "ban", "physics"))
    assert "#physics" in view.forgotten and view.visible == "#maths"
    assert view.texts(ERROR, room="#maths")[-1] == "teacher banned you from #physics for 1 day: cheating"


def test_a_mode_change_says_what_it_means_and_updates_the_modes(env):
    c, view = env
    start(c)
    modes = dict(mod.MODE_DEFAULTS, questions=True, slow=20)
    c.handle(mod.ModeChanged("maths", {"questions": True, "slow": 20}, modes, "teacher", 9, NOW))
    assert view.texts(SYSTEM)[-2:] == [
        "teacher turned on questions in #maths: members' messages go to the ops first, who release them.",
        "teacher turned on slow mode in #maths: one message every 20 seconds per member."]
    assert view.powers["#maths"].modes == Modes(questions=True, slow=20)
    c.handle(mod.ModeChanged("maths", {"slow": 0}, None, "teacher", 10, NOW))    # no "modes": merged
    assert view.powers["#maths"].modes == Modes(questions=True, slow=0)


def test_moderation_events_in_a_catch_up_are_shown_too(env):
    c, view = env
    start(c)
    c.handle(ev.Backlog((msg(3, "bob", "hi"),
                         mod.Moderated("maths", "mute", "bob", "teacher", None, None, 4, NOW),
                         mod.Deleted("maths", None, 3, "teacher", 5))))
    assert view.line_of("#maths", 3).text == "message removed by teacher"
    assert "teacher muted bob in #maths." in view.texts(room="#maths")


# -- refusals as sentences ------------------------------------------------------------


@pytest.mark.parametrize("code, fields, modes, words", [
    ("muted", dict(until=NOW + 340), {}, "You are muted in #maths for 4 more minutes."),
    ("muted", {}, {}, "You are muted in #maths until an op unmutes you."),
    ("slow_mode", dict(retry_after=11.2), {"slow": 30}, "Slow mode in #maths: you can send again in 12 seconds."),
    ("forbidden", {}, {"moderated": True},
     "Only ops and people with voice can speak in #maths now (it is moderated): ask an op for voice."),
    ("forbidden", {}, {"announce": True}, "Only the ops can speak in #maths: it is for announcements."),
    ("banned", dict(until=NOW + 100 + 7200), {}, "You are banned from #maths for 2 more hours."),
])
def test_a_refused_message_says_why_in_a_sentence(env, code, fields, modes, words):
    c, view = env
    client = start(c, modes=modes)
    c.submit("can I say this?")
    ref = client.of("say")[-1][1]
    c.handle(ev.Refused(ref, code, "server words", **fields))
    assert view.texts(ERROR)[-1] == f"{words} Not sent: “can I say this?”"
    assert not view.pending


def test_a_ban_refuses_the_join_and_a_switched_off_dm_says_why(env):
    c, view = env
    client = start(c)
    c.submit("/join physics")
    ref = client.of("join")[-1][1]
    c.handle(ev.Refused(ref, "banned", "You are banned.", until=NOW + 100 + 1800))
    assert view.texts(ERROR)[-1] == "You are banned from #physics for 30 more minutes."
    c.submit("/msg bob psst")
    ref = client.of("dm")[-1][1]
    c.handle(ev.Refused(ref, "forbidden", "Private messages between members are off in #maths."))
    assert view.texts(ERROR, room="@bob")[-1] == (
        "bob cannot get private messages from you now: private messages between members are switched off "
        "in a room you share (private messages between members are off in #maths). Not sent: “psst”")


@pytest.mark.parametrize("code, words", [
    ("forbidden", "You cannot remove bob from #maths: only ops can."),
    ("not_in_room", "bob is not in #maths."),
    ("no_identity", "bob cannot get a role: their app sends no identity (an older version?), so the role "
                    "could not stay with them."),
    ("unknown_type", "This server does not know moderation (it runs an older version of Natter)."),
])
def test_a_refused_mod_action_says_why(env, code, words):
    c, view = env
    client = start(c, role="op")
    c.submit("/kick bob")
    ref = client.of("mod")[-1][1]
    c.handle(ev.Refused(ref, code, "Only ops can." if code == "forbidden" else "x"))
    assert view.texts(ERROR)[-1] == words


def test_refused_edit_delete_release_and_audit_have_their_own_sentences(env):
    c, view = env
    client = start(c)
    c.handle(msg(3, "alice", "my typo"))
    c.submit("/edit fixed")
    c.handle(ev.Refused(client.of("edit")[-1][1], "edit_window", "too late"))
    c.submit("/delete 2")
    c.handle(ev.Refused(client.of("delete")[-1][1], "no_such_message", "no"))
    c.submit("/release 9")
    c.handle(ev.Refused(client.of("release")[-1][1], "forbidden", "no"))
    c.submit("/audit")
    c.handle(ev.Refused(client.of("audit")[-1][1], "forbidden", "no"))
    assert view.texts(ERROR)[-4:] == [
        "Too late to edit that message: messages can be edited for 10 minutes after sending.",
        "There is no message 2 to remove (it may be gone already).",
        "Only the ops of #maths can release questions.",
        "Only the ops of #maths can read its moderation trail."]


# -- edited and removed lines ------------------------------------------------------------


def test_an_edit_updates_the_line_in_place_and_a_deletion_leaves_a_tombstone(env):
    c, view = env
    start(c)
    c.handle(msg(3, "bob", "teh answer"))
    c.handle(msg(4, "carol", "spam http://x.example"))
    c.handle(mod.Edited("maths", None, 3, "the answer", NOW + 10, 5))
    c.handle(mod.Deleted("maths", None, 4, "teacher", 6))
    c.handle(mod.Deleted("maths", None, 99, "teacher", 7))        # not shown: nothing to update
    line3, line4 = view.line_of("#maths", 3), view.line_of("#maths", 4)
    assert (line3.text, line3.edited, line3.who) == ("the answer", True, "bob")
    assert (line4.text, line4.removed, line4.links) == ("message removed by teacher", True, ())
    assert [u[1] for u in view.updates] == [3, 4]
    assert "spam" not in " ".join(view.texts(room="#maths"))
    assert c.message_menu("#maths", 4) == []                     # nothing to do with a tombstone


def test_a_catch_up_tombstone_of_a_message_never_seen_shows_once(env):
    c, view = env
    start(c)
    c.handle(ev.Backlog((mod.Deleted("maths", None, 3, "teacher"), mod.Deleted("maths", None, 3, "teacher", 9))))
    assert [(ln.msg_id, ln.text, ln.removed) for ln in view.room_lines("#maths") if ln.msg_id] == \
        [(3, "message removed by teacher", True)]


def test_history_shows_tombstones_in_place_and_edited_messages_as_edited(env):
    c, view = env
    start(c, last_id=3)
    c.load_older("#maths")
    hist = next(a for a in FakeClient.instances[-1].of("history"))
    c.handle(HistoryPage("maths", None, (msg(1, "bob", "first"), mod.Deleted("maths", None, 2, "alice"),
                                         msg(3, "bob", "fixed", edited_ts=NOW + 5)), False, hist[1]))
    texts = [(ln.text, ln.removed, ln.edited) for ln in view.room_lines("#maths") if ln.msg_id]
    assert texts == [("first", False, False), ("message removed by you", True, False), ("fixed", False, True)]


# -- questions -----------------------------------------------------------------------------


def test_a_question_goes_to_the_ops_list_and_release_sends_release(env):
    c, view = env
    client = start(c, role="op", modes={"questions": True})
    c.handle(msg(7, "bob", "what is a half of a half?", question=True))
    assert [(q.id, q.who, q.text, q.released_by) for q in view.questions["#maths"]] == \
        [(7, "bob", "what is a half of a half?", None)]
    assert view.line_of("#maths", 7) is None                     # in the list, not among the lines
    c.release_question("#maths", 7)
    assert [a for a, _ in client.of("release")] == [7]
    c.handle(msg(8, "bob", "what is a half of a half?", released_from=7, released_by="alice"))
    assert view.questions["#maths"][0].released_by == "alice"
    assert view.line_of("#maths", 8).text == "what is a half of a half?"
    c.submit("/release")
    assert view.texts(ERROR)[-1] == "No question waits in #maths."


def test_our_own_question_is_marked_and_its_release_takes_its_place(env):
    c, view = env
    client = start(c, modes={"questions": True})
    c.submit("may I ask?")
    ref = client.of("say")[-1][1]
    c.handle(msg(7, "alice", "may I ask?", ref=ref, question=True))
    assert view.line_of("#maths", 7).question and view.line_of("#maths", 7).kind == OWN
    assert not view.pending
    c.handle(msg(8, "alice", "may I ask?", released_from=7, released_by="teacher"))
    assert view.line_of("#maths", 7) is None
    assert not view.line_of("#maths", 8).question
    assert [ln.msg_id for ln in view.room_lines("#maths") if ln.msg_id] == [8]


# -- the message menu -----------------------------------------------------------------------


def test_the_message_menu_offers_edit_and_delete_only_where_allowed(env):
    c, view = env
    start(c)
    c.handle(msg(3, "alice", "mine", ts=NOW + 50))
    c.handle(msg(4, "bob", "theirs"))
    c.handle(msg(5, "alice", "old mine", ts=NOW - 1000))
    assert labels(c.message_menu("#maths", 3)) == ["reply", "copy", "edit", "delete"]
    assert labels(c.message_menu("#maths", 4)) == ["reply", "copy"]
    assert labels(c.message_menu("#maths", 5)) == ["reply", "copy"]      # past the edit window
    c.message_action("#maths", 3, "edit")
    assert view.input[0] == "/edit #3 mine"
    c.message_action("#maths", 4, "copy")
    assert view.clipboard == "theirs"
    c.message_action("#maths", 4, "reply")
    assert view.input[0] == "> bob: theirs\n"


def test_an_op_may_delete_anyones_message_from_the_menu(env):
    c, view = env
    client = start(c, role="op")
    c.handle(msg(4, "bob", "theirs"))
    assert labels(c.message_menu("#maths", 4)) == ["reply", "copy", "delete"]
    c.message_action("#maths", 4, "delete")
    assert [a for a, _ in client.of("delete")] == [(4, None)]


# -- commands --------------------------------------------------------------------------------


def test_the_moderation_commands_send_their_frames(env):
    c, view = env
    client = start(c, role="owner")
    c.handle(msg(3, "alice", "typo", ts=NOW + 90))
    for line in ("/kick bob off topic", "/ban carol 1d", "/mute bob 5m", "/op bob", "/devoice bob",
                 "/mode moderated on slow 30", "/delete", "/edit fixed", "/release 12", "/audit", "/forget"):
        c.submit(line)
    assert [a for a, _ in client.of("mod")] == [("maths", "kick", "bob", "off topic", None),
                                                ("maths", "ban", "carol", None, 86_400),
                                                ("maths", "mute", "bob", None, 300),
                                                ("maths", "op", "bob", None, None),
                                                ("maths", "devoice", "bob", None, None)]
    assert [a for a, _ in client.of("mode")] == [("maths", {"moderated": True, "slow": 30})]
    assert [a for a, _ in client.of("delete")] == [(3, None)]
    assert [a for a, _ in client.of("edit")] == [(3, "fixed")]
    assert [a for a, _ in client.of("release")] == [12]
    assert [a for a, _ in client.of("audit")] == ["maths"]
    assert len(client.of("forget")) == 1
    assert not view.texts(ERROR)


def test_mode_without_arguments_shows_the_modes(env):
    c, view = env
    start(c, modes={"moderated": True, "slow": 10, "dm": False})
    c.submit("/mode")
    assert view.texts(SYSTEM)[-1] == ("Modes of #maths: moderated, slow 10 s, no private messages between "
                                      "members. Ops set them with /mode NAME VALUE (/help mode).")


def test_the_audit_trail_and_forgotten_are_shown(env):
    c, view = env
    client = start(c, role="op")
    c.submit("/audit")
    ref = client.of("audit")[-1][1]
    c.handle(mod.Audit("maths", (mod.AuditEntry(NOW, "alice", "mute", "bob", "noise"),
                                 mod.AuditEntry(NOW + 60, None, "unmute", "bob", "expired"),
                                 mod.AuditEntry(NOW + 70, "alice", "mode", "", None, None,
                                                (("moderated", True), ("slow", 30))),
                                 mod.AuditEntry(NOW + 80, "alice", "delete", "bob", None)), ref))
    text = view.texts(SYSTEM)[-1].split("\n")
    assert text[0] == "Moderation of #maths, oldest first (4):"
    assert text[1].endswith("alice mute bob: noise") and "(expired) unmute bob" in text[2]
    assert text[3].endswith("alice set the modes moderated true, slow 30")
    assert text[4].endswith("alice removed a message of bob")
    c.handle(mod.Forgotten("alice"))
    assert view.texts(SYSTEM)[-1].startswith("The nick alice is no longer reserved for this computer")


def test_audit_more_pages_the_older_entries(env):
    c, view = env
    client = start(c, role="op")
    c.submit("/audit more")
    assert view.texts(ERROR)[-1].startswith("Nothing older to show: type /audit first")
    c.submit("/audit")
    ref = client.of("audit")[-1][1]
    c.handle(mod.Audit("maths", (mod.AuditEntry(NOW, "alice", "mute", "bob", "noise"),), ref, more=True, oldest=41))
    assert view.texts(SYSTEM)[-1].split("\n")[-1] == "There are older entries: /audit more shows them."
    c.submit("/audit more")
    assert client.of("audit")[-1][0] == ("maths", 41)
    ref = client.of("audit")[-1][1]
    c.handle(mod.Audit("maths", (mod.AuditEntry(NOW - 60, "alice", "kick", "eve", None),), ref))
    assert "older entries" not in view.texts(SYSTEM)[-1]
    c.submit("/audit more")
    assert view.texts(ERROR)[-1].startswith("Nothing older to show")
    c.submit("/audit yesterday")
    assert "Usage: /audit [more]" in view.texts(ERROR)[-1]


def test_help_lists_the_moderation_commands(env):
    c, view = env
    start(c)
    c.submit("/help")
    table = view.lines[-1].text
    for usage in ("/kick NICK [reason]", "/ban NICK [time] [reason]", "/mute NICK [time] [reason]", "/op NICK",
                  "/voice NICK", "/mode [NAME VALUE ...]", "/delete [ID] [reason]", "/edit [#ID] text",
                  "/release [ID]", "/forget", "/audit [more]"):
        assert usage + "\t" in table


# -- the settings dialog ----------------------------------------------------------------------


def test_room_settings_are_for_ops_and_apply_sends_only_what_changed(env):
    c, view = env
    client = start(c, modes={"slow": 5})
    c.room_settings("#maths")
    assert view.texts(ERROR)[-1] == "Only the ops of #maths can change its settings."
    c.handle(mod.Moderated("maths", "op", "alice", "teacher", None, None, 5, NOW))
    c.room_settings("#maths")
    shown = view.settings_shown[-1]
    assert (shown.room, shown.title, shown.modes) == ("#maths", "#maths", Modes(slow=5))
    c.apply_room_settings("#maths", Modes(moderated=True, slow=5), "Fractions", key="s3cret")
    assert [a for a, _ in client.of("mode")] == [("maths", {"moderated": True, "key": "s3cret"})]
    assert [a for a, _ in client.of("topic")] == [("maths", "Fractions")]
    c.apply_room_settings("#maths", Modes(slow=5), "Fractions")      # nothing changed but the topic (not yet known)
    assert len(client.of("mode")) == 1


def test_saving_the_settings_keeps_a_topic_the_window_shows_with_stand_ins(env):
    c, view = env
    client = start(c, role="op")
    c.handle(Topic("maths", "Fractions \U0001F600", "teacher", 3, NOW))
    c.room_settings("#maths")
    shown = view.settings_shown[-1].topic
    assert shown != "Fractions \U0001F600"               # the window's stand-in for the emoji
    c.apply_room_settings("#maths", Modes(moderated=True), shown + " ")
    assert client.of("topic") == []                       # not "changed" to the stand-in
    c.room_settings("#maths")
    c.apply_room_settings("#maths", Modes(moderated=True), "Decimals")
    assert [a for a, _ in client.of("topic")] == [("maths", "Decimals")]


# -- identity ---------------------------------------------------------------------------------


def test_the_identity_file_is_made_once_0600_and_given_to_the_client_and_the_settings(tmp_path):
    FakeClient.instances.clear()
    view = FakeView()
    c = Controller(view, Settings(), client_factory=FakeClient, save_settings=lambda s: None)
    path = identity.identity_path()
    assert path.startswith(os.environ["NATTER_HOME"])
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    secret = open(path).read().strip()
    assert identity.valid_secret(secret)
    c.begin()
    assert view.identity == identity.fingerprint(secret) == c.identity_fingerprint
    c.connect(ConnectValues(host="127.0.0.1", port="30000", nick="alice"))
    assert FakeClient.instances[-1].identity == secret
    again = Controller(FakeView(), Settings(), client_factory=FakeClient, save_settings=lambda s: None)
    assert again.identity == secret                               # reused, not made anew


def test_a_damaged_identity_file_is_kept_and_said_in_words():
    path = identity.identity_path()
    os.makedirs(os.path.dirname(path), exist_ok=True)
    with open(path, "w") as f:
        f.write("short\n")
    FakeClient.instances.clear()
    view = FakeView()
    c = Controller(view, Settings(), client_factory=FakeClient, save_settings=lambda s: None)
    assert c.identity is None
    c.connect(ConnectValues(host="127.0.0.1", port="30000", nick="alice"))
    assert FakeClient.instances[-1].identity is None
    c.handle(ev.Connected("127.0.0.1", 30000, "alice", ("alice",), False, protocol=2))
    assert f"identity file {path} is damaged" in view.texts(ERROR)[-1]
    assert open(path).read() == "short\n"                         # not overwritten


def test_a_reserved_nick_sends_the_user_back_to_the_nick_field(env):
    c, view = env
    c.connect(ConnectValues(host="127.0.0.1", port="30000", nick="alice"))
    words = ("The nick alice is reserved by another computer; choose another, or use /forget on the computer "
             "that holds it.")
    c.handle(ev.ConnectFailed("nick_reserved", words, None))
    assert view.form[1] == words and view.focus == "nick"
