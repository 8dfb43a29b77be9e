"""Command parsing: what the user typed -> what to do. No I/O."""
from __future__ import annotations

import dataclasses

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from chatgui.app import commands as c
from server import protocol


@pytest.mark.parametrize("line, expected", [
    ("hello", c.Say("hello")),
    ("hello world  \n", c.Say("hello world")),
    ("  indented", c.Say("  indented")),
    ("two\nlines", c.Say("two\nlines")),
    ("", c.Empty()),
    ("   \n ", c.Empty()),
    ("//etc/passwd is a file", c.Say("/etc/passwd is a file")),
    ("//", c.Say("/")),
    ("/me waves", c.Action("waves")),
    ("/ME  waves  hard ", c.Action("waves  hard")),
    ("/action dances", c.Action("dances")),
    ("/msg bob hi there", c.Direct("bob", "hi there")),
    ("/msg @bob  hi", c.Direct("bob", "hi")),
    ("/m bob hi", c.Direct("bob", "hi")),
    ("/msg bob first\nsecond", c.Direct("bob", "first\nsecond")),
    ("/nick Zoë", c.Nick("Zoë")),
    ("/nick   new_name ", c.Nick("new_name")),
    ("/who", c.Who()),
    ("/names", c.Who()),
    ("/clear", c.Clear()),
    ("/quit", c.Quit()),
    ("/exit", c.Quit()),
    ("/QUIT", c.Quit()),
])
def test_parse(line, expected):
    assert c.parse(line) == expected


def test_action_goes_on_the_wire_as_a_say_the_server_accepts():
    cmd = c.parse("/me waves")
    assert cmd.wire == "/me waves"
    assert protocol.check_text(cmd.wire) == "/me waves"
    assert c.action_body(cmd.wire) == "waves"
    assert c.action_body("/me ") is None and c.action_body("/meow") is None
    assert c.action_body("hello") is None


@pytest.mark.parametrize("line, words", [
    ("/foo", ["Unknown command /foo", "/help", "//foo"]),
    ("/mgs bob hi", ["Did you mean /msg?"]),
    ("/nik bob", ["Did you mean /nick?"]),
    ("/", ["/help", "//"]),
    ("/msg", ["Who to?", "Usage: /msg NICK text"]),
    ("/msg bob", ["What do you want to tell bob?"]),
    ("/msg bob    ", ["What do you want to tell bob?"]),
    ("/me", ["Usage: /me"]),
    ("/nick", ["Give the new nick", "Usage: /nick NEW"]),
    ("/nick two words", ["cannot contain spaces"]),
    ("/nick bad!", ["Cannot use that nick", "'!'"]),
    ("/nick " + "x" * 40, ["longer than 32"]),
])
def test_invalid_commands_are_explained_and_not_sent(line, words):
    cmd = c.parse(line)
    assert type(cmd) is c.Invalid
    for w in words:
        assert w in cmd.message


def test_help_lists_every_command_and_helps_with_one():
    cmd = c.parse("/help")
    assert type(cmd) is c.Help
    for name in ("/nick", "/me", "/msg", "/who", "/clear", "/help", "/quit", "//"):
        assert name in cmd.text
    assert c.parse("/help msg").text.startswith("/msg NICK text")
    assert c.parse("/help /quit").text.startswith("/quit")
    assert c.parse("/help nonsense").text == c.help_text()


def test_help_as_a_table_has_one_row_per_command_and_a_true_example():
    cmd = c.parse("/help")
    head, *rows, foot = cmd.table.split("\n")
    assert head == "Commands:" and foot.startswith("Anything else you type")
    assert [r.split("\t")[0] for r in rows] == [usage for usage, _ in c.COMMANDS.values()]
    assert all(r.count("\t") == 1 for r in rows)
    assert "you waves" not in cmd.text + cmd.table       # the example was ungrammatical
    assert "\u00a0alice waves" in c.COMMANDS["me"][1]
    assert c.parse("/help me").table == "Help for /me:\n/me action\t" + c.COMMANDS["me"][1]


def test_text_is_cleaned_of_what_the_server_refuses():
    cmd = c.parse("red \x1b[31mtext\x07\r\nnext\rline\ttab\x85")
    assert cmd == c.Say("red [31mtext\nnext\nline\ttab")
    assert protocol.check_text(cmd.text)


# Every command parse() can return: the frozen dataclasses of chatgui.app.commands.
COMMAND_TYPES = tuple(v for v in vars(c).values()
                      if isinstance(v, type) and dataclasses.is_dataclass(v) and v.__module__ == c.__name__)


@settings(max_examples=300, deadline=None)
@given(st.text(max_size=80))
@example("/EDIT 0")           # found by hypothesis when the list of types had none of issue 11's
@example("/kick bob too loud")
@example("/delete 12 spam")
def test_anything_typed_parses_and_what_is_sent_is_valid(line):
    cmd = c.parse(line)
    assert type(cmd) in COMMAND_TYPES
    if type(cmd) in (c.Join, c.Part) and cmd.room is not None:
        assert protocol.check_room(cmd.room) == cmd.room
    if type(cmd) is c.Topic and cmd.text:
        assert protocol.check_topic(cmd.text) == cmd.text
    if type(cmd) in (c.Say, c.Direct):
        assert protocol.check_text(cmd.text)
    if type(cmd) is c.Action:
        assert protocol.check_text(cmd.wire)
    if type(cmd) is c.Nick:
        assert protocol.check_nick(cmd.nick) == cmd.nick
    if type(cmd) is c.Edit:
        assert protocol.check_text(cmd.text)
    if type(cmd) is c.Mod:
        assert protocol.check_nick(cmd.nick) == cmd.nick
    if type(cmd) in (c.Delete, c.Edit) and cmd.msg_id is not None:
        assert type(cmd.msg_id) is int and cmd.msg_id >= 0
    if type(cmd) is c.Invalid:
        assert cmd.message
    if not c.clean_text(line).startswith("/"):
        assert type(cmd) in (c.Say, c.Empty)   # plain text is never a command


def test_surrogate_halves_from_tk_are_joined():
    # Tk 8.6 hands an emoji to Python as two UTF-16 halves.
    assert c.parse("hi \ud83d\ude00") == c.Say("hi \U0001F600")
    assert c.parse("/msg bob \ud83d\udc4d") == c.Direct("bob", "\U0001F44D")
    assert c.join_surrogates("lone \ud83d half") == "lone \ufffd half"
    assert c.join_surrogates("plain") == "plain"


@pytest.mark.parametrize("line, cmd", [
    ("/join maths", c.Join("maths")),
    ("/join #Maths s3cret", c.Join("Maths", "s3cret")),
    ("/j physics", c.Join("physics")),
    ("/part", c.Part()),
    ("/leave #maths", c.Part("maths")),
    ("/topic", c.Topic()),
    ("/topic -", c.Topic("")),
    ("/topic  Quiz at noon ", c.Topic("Quiz at noon")),
    ("/rooms", c.Rooms()),
    ("/LIST", c.Rooms()),
])
def test_room_commands(line, cmd):
    assert c.parse(line) == cmd


@pytest.mark.parametrize("line, words", [
    ("/join", "Which room? Give its name. Usage: /join NAME [key]"),
    ("/join a b c", "A room name cannot contain spaces."),
    ("/join a.b", "'a.b' cannot be a room name: it may hold letters, digits, '_' and '-' only, not '.'."),
    ("/join " + "x" * 33, "cannot be a room name: it is longer than 32 characters."),
    ("/part a b", "A room name cannot contain spaces."),
    ("/topic " + "t" * 301, "That topic cannot be used: a topic is at most 300 characters."),
])
def test_room_commands_explain_what_is_wrong(line, words):
    cmd = c.parse(line)
    assert type(cmd) is c.Invalid and words in cmd.message


def test_help_lists_the_room_commands():
    text = c.help_text()
    for usage in ("/join NAME [key]", "/part [NAME]", "/topic [text]", "/rooms"):
        assert usage in text
    assert c.help_text("join").startswith("/join NAME [key]: join the room NAME")
