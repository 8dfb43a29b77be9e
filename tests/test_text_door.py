"""The plain-text door's codec with no sockets and the time injected:
telnet stripped across reads, lines and the pause rule, control
characters, commands, and the ``HH:MM <nick> text`` output
(server/doors/text/)."""
from __future__ import annotations

import time

import pytest
from hypothesis import given, settings, strategies as st

from server import protocol as p
from server.doors.text.inbound import (IAC, PAUSE, LineAssembler, Quit, Refused, TelnetFilter, TooLong, Who,
                                       clean, parse_line)
from server.doors.text.outbound import TextView, encode, guest_nick, to_bytes, welcome_line, who_line

NOW = 1000.0
TS = 1764601200.0                       # 15:00 UTC


def _gm(ts):
    return time.gmtime(TS + 60 if ts is None else ts)      # "now" is 15:01


# -- telnet --------------------------------------------------------------------

NEGOTIATION = [
    bytes([IAC, 253, 1]), bytes([IAC, 251, 3]), bytes([IAC, 252, 34]), bytes([IAC, 254, 31]),   # DO/WILL/WONT/DONT
    bytes([IAC, 250, 24, 0]) + b"xterm-256color" + bytes([IAC, 240]),                            # SB TTYPE IS ... SE
    bytes([IAC, 250, 31, 0, 80, IAC, IAC, 24, IAC, 240]),                                        # SB NAWS, 255 escaped
    bytes([IAC, 241]), bytes([IAC, 249]), bytes([IAC, 246]), bytes([IAC, 244]),                  # NOP, GA, AYT, IP
]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.one_of(st.binary(max_size=12).map(lambda b: b.replace(bytes([IAC]), b"")),
                          st.sampled_from(NEGOTIATION)), max_size=12), st.data())
def test_telnet_is_stripped_whatever_the_reads(parts, data):
    stream = b"".join(parts)
    want = b"".join(x for x in parts if IAC not in x)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=10)))
    f, got = TelnetFilter(), b""
    for a, b in zip([0] + cuts, cuts + [len(stream)]):
        got += f.feed(stream[a:b])
    assert got == want


def test_iac_iac_is_the_data_byte_255():
    assert TelnetFilter().feed(bytes([65, IAC, IAC, 66])) == bytes([65, 255, 66])


def test_a_telnet_session_gives_its_lines_only():
    asm = LineAssembler()
    out = asm.feed(bytes([IAC, 253, 1, IAC, 251, 31]) + b"hel", NOW)
    out += asm.feed(b"lo\r", NOW + 0.01) + asm.feed(b"\0second\r\n", NOW + 0.02)
    assert out == [b"hello", b"second"]


# -- lines and the pause ----------------------------------------------------

@settings(max_examples=200, deadline=None)
@given(st.lists(st.text(st.characters(blacklist_characters="\r\n\0", blacklist_categories=("Cs",)),
                        min_size=1, max_size=30).filter(str.strip), min_size=1, max_size=8),
       st.sampled_from([b"\n", b"\r\n", b"\r\0", b"\r"]), st.data())
def test_lines_come_whole_from_any_reads(lines, end, data):
    stream = b"".join(x.encode() + end for x in lines)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=15)))
    asm, got = LineAssembler(), []
    for a, b in zip([0] + cuts, cuts + [len(stream)]):
        got += asm.feed(stream[a:b], NOW)                 # no pause between reads
    got += asm.poll(NOW + 1)
    assert got == [x.encode() for x in lines]


def test_text_without_newline_is_a_message_after_a_pause():
    asm = LineAssembler()
    assert asm.feed(b"hi from the tut", NOW) == [] and asm.deadline == NOW + PAUSE
    assert asm.feed(b"orial", NOW + 0.1) == [] and asm.deadline == pytest.approx(NOW + 0.1 + PAUSE)
    assert asm.poll(NOW + 0.25) == []                        # 150 ms since the last byte: still typing
    assert asm.poll(NOW + 0.31) == [b"hi from the tutorial"]
    assert asm.deadline is None and asm.poll(NOW + 5) == []
    assert asm.feed(b"second", NOW + 6) == [] and asm.poll(NOW + 6.2) == [b"second"]


def test_an_over_long_line_is_refused_whole_and_the_next_one_is_taken():
    asm = LineAssembler(max_line=10)
    out = asm.feed(b"0123456789", NOW) + asm.feed(b"abc", NOW) + asm.feed(b"def\nok\n", NOW)
    assert out == [TooLong(10), b"ok"]
    assert "longer than 10 bytes" in TooLong(10).text
    out = asm.feed(b"x" * 25, NOW)                          # no newline: skipped until a pause
    assert out == [TooLong(10)] and asm.poll(NOW + 1) == []
    assert asm.feed(b"after\n", NOW + 2) == [b"after"]


# -- cleaning -----------------------------------------------------------------

@pytest.mark.parametrize("raw, text", [
    (b"plain text  ", "plain text"),
    (b"\x1b[31mred\x1b[0m \x1b]0;title\x07ok", "red ok"),
    (b"bell\x07 back\x08space\x7f del", "bell backspace del"),
    (b"tab\tstays", "tab\tstays"),
    (b"caf\xe9", "caf\ufffd"),
    ("c1 \u009b31m gone".encode(), "c1 31m gone"),
    ("na\u00efve \u2603".encode(), "na\u00efve \u2603"),
])
def test_clean_strips_controls_and_escapes(raw, text):
    assert clean(raw) == text


@given(st.binary(max_size=60))
def test_clean_never_lets_a_control_through(raw):
    out = clean(raw)
    assert all(ch == "\t" or ch >= " " and not ("\x7f" <= ch <= "\x9f") for ch in out)


# -- commands -----------------------------------------------------------------

def test_commands_and_messages():
    assert parse_line("hello all", "lobby") == p.Say("hello all", room="lobby")
    assert parse_line("//etc/hosts is a path", "rust") == p.Say("/etc/hosts is a path", room="rust")
    assert parse_line("/me waves", "rust") == p.Say("/me waves", room="rust")
    assert parse_line("/nick Alice", "lobby") == p.ChangeNick("Alice")
    assert parse_line("/join #rust", "lobby") == p.Join("rust")
    assert parse_line("/JOIN rust s3cret", "lobby") == p.Join("rust", "s3cret")
    assert parse_line("/who", "lobby") == Who() and parse_line("/quit", "lobby") == Quit()
    assert parse_line("   ", "lobby") is None


@pytest.mark.parametrize("line, words", [
    ("/nick", "Use /nick NAME"),
    ("/nick bob[away]", "That name cannot be used: nick may hold letters"),
    ("/join", "Use /join NAME"),
    ("/join a.b", "That room name cannot be used"),
    ("/msg bob hi", "There is no /msg here. Commands: /nick NAME"),
    ("/me", "/me needs something you do"),
])
def test_refusals_say_how_to_do_it(line, words):
    out = parse_line(line, "lobby")
    assert isinstance(out, Refused) and words in out.text


# -- output --------------------------------------------------------------------

def _view(**kw):
    return TextView(nick="guest-7", users={"guest-7": "guest-7", "bob": "bob"}, clock=_gm, **kw)


def test_welcome_names_the_guest_nick_and_the_commands():
    line = welcome_line(guest_nick(7))
    assert line.startswith("Welcome to Natter, guest-7! You are in #lobby")
    for c in ("/nick NAME", "/join NAME", "/who", "/quit"):
        assert c in line
    assert b"\n" not in to_bytes([line])[:-2]


def test_messages_are_hhmm_nick_text_own_included():
    v = _view()
    assert encode(p.message_frame(1, TS, "bob", "hi", room="lobby"), v) == (["15:00 <bob> hi"], [])
    assert encode(p.message_frame(2, TS + 120, "guest-7", "me too", room="lobby"), v)[0] == \
        ["15:02 <guest-7> me too"]
    assert encode(p.message_frame(3, TS, "bob", "/me waves", room="lobby"), v)[0] == ["15:00 * bob waves"]
    assert encode(p.message_frame(4, TS, "bob", "two\nlines", room="lobby"), v)[0] == \
        ["15:00 <bob> two", "15:00 <bob> lines"]
    assert encode(p.message_frame(5, TS, "bob", "elsewhere", room="rust"), v) == ([], [])
    assert encode(p.dm_frame(6, TS, "bob", "guest-7", "psst"), v)[0] == ["15:00 *bob* psst"]


def test_room_events_and_who():
    v = _view()
    assert encode(p.joined_frame("carol", "lobby"), v)[0] == ["15:01 -- carol joined #lobby"]
    assert who_line(v) == "In #lobby: bob, carol, guest-7 (3 people)."
    assert encode(p.left_frame("bob", "part", "lobby"), v)[0] == ["15:01 -- bob left #lobby"]
    assert encode({"type": "renamed", "old": "guest-7", "new": "Alice"}, v)[0] == ["15:01 -- You are now Alice"]
    assert v.nick == "Alice" and who_line(v) == "In #lobby: Alice, carol (2 people)."
    assert encode(p.error_frame(p.NICK_TAKEN, "bob is taken; try another."), v)[0] == \
        ["15:01 !! bob is taken; try another."]


def test_joining_another_room_leaves_the_one_before():
    v = _view()
    lines, events = encode(p.room_frame("rust", "Rust chat", ["guest-7", "ann"], 0, 0, False), v)
    assert events == [p.Part("lobby")] and v.room == "rust"
    assert lines == ["15:01 -- You are in #rust (Rust chat)", "In #rust: ann, guest-7 (2 people)."]
    assert encode(p.message_frame(9, TS, "bob", "lobby talk", room="lobby"), v) == ([], [])


def test_output_is_crlf_and_safe():
    assert to_bytes(["15:00 <bob> a\x1b]0;pwned\x07b", "x"]) == b"15:00 <bob> a]0;pwnedb\r\nx\r\n"
