"""IRC lines with no sockets: parsing and serialising with tags, reassembly
from any chunking, the 512-byte rules, UTF-8, and message text split for
each recipient's budget (server/doors/irc/wire.py, content.py)."""
from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings, strategies as st

from server.doors.irc import wire
from server.doors.irc.content import CtcpRequest, from_irc, may_cut_before, split_text, to_irc
from server.doors.irc.outbound import message_lines
from server.doors.irc.wire import LineError, LineReader, Message, parse, serialise

# -- strategies --------------------------------------------------------------

_word_chars = st.characters(blacklist_characters=" \r\n\0", blacklist_categories=("Cs",))
middle_params = st.text(_word_chars, min_size=1, max_size=12).filter(lambda s: not s.startswith(":"))
last_params = st.text(st.characters(blacklist_characters="\r\n\0", blacklist_categories=("Cs",)), max_size=40)
tag_keys = st.from_regex(r"\+?[a-z][a-z0-9/.\-]{0,10}", fullmatch=True)
tag_values = st.text(st.characters(blacklist_characters="\0", blacklist_categories=("Cs",)), max_size=20)
commands = st.one_of(st.from_regex(r"[A-Z]{1,10}", fullmatch=True), st.from_regex(r"[0-9]{3}", fullmatch=True))


@st.composite
def messages(draw):
    params = draw(st.lists(middle_params, max_size=5))
    if draw(st.booleans()):
        params.append(draw(last_params))
    source = draw(st.one_of(st.none(), middle_params))
    tags = draw(st.dictionaries(tag_keys, tag_values, max_size=4))
    return Message(draw(commands), tuple(params), source, tags)


# -- parse / serialise --------------------------------------------------------

def test_parse_a_line_with_tags_source_and_trailing():
    m = parse(rb"@time=2026-12-01T15:00:00.000Z;msgid=e.7;+draft/x=a\sb\:c\\ :bob!u@natter PRIVMSG #rust :hi  there")
    assert m.command == "PRIVMSG" and m.source == "bob!u@natter"
    assert m.params == ("#rust", "hi  there")
    assert m.tags == {"time": "2026-12-01T15:00:00.000Z", "msgid": "e.7", "+draft/x": "a b;c\\"}


def test_parse_reads_the_usual_client_forms():
    assert parse(b"nick  alice") == Message("NICK", ("alice",))
    assert parse(b"USER u 0 * :Alice Liddell\r") == Message("USER", ("u", "0", "*", "Alice Liddell"))
    assert parse(b"PRIVMSG #a ::-)").params == ("#a", ":-)")
    assert parse(b"@a;b= PING x").tags == {"a": "", "b": ""}
    assert parse(b"PRIVMSG #a :").params == ("#a", "")


def test_unescape_drops_unknown_and_trailing_backslashes():
    assert wire.unescape_tag("a\\bc\\") == "abc"
    assert wire.unescape_tag("\\s\\:\\r\\n\\\\") == " ;\r\n\\"


@settings(max_examples=300, deadline=None)
@given(messages())
def test_round_trip(msg):
    line = serialise(msg)
    assert line.endswith(b"\r\n") and b"\r" not in line[:-2] and b"\n" not in line[:-2]
    assert parse(line[:-2]) == msg


@settings(max_examples=200, deadline=None)
@given(st.lists(messages(), min_size=1, max_size=8), st.data())
def test_any_chunking_reassembles_the_same_lines(msgs, data):
    stream = b"".join(serialise(m) for m in msgs)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(stream)), max_size=20)))
    reader, got = LineReader(), []
    for a, b in zip([0] + cuts, cuts + [len(stream)]):
        got += reader.feed(stream[a:b])
    assert [parse(x) for x in got] == msgs
    assert reader.pending == 0


def test_reader_takes_bare_lf_and_skips_blank_lines():
    assert LineReader().feed(b"PING a\n\r\n\nPING b\r\n") == [b"PING a", b"PING b"]


@pytest.mark.parametrize("msg", [
    Message("PRIVMSG", ("#a", "x\ny")),
    Message("PRIVMSG", ("a b", "x")),
    Message("PRIVMSG", (":a", "x")),
    Message("PRIVMSG", ("", "x")),
    Message("@x", ("a",)),                      # would read back as a line of tags
    Message("PRIV MSG", ("a",)),
    Message("PRIVMSG", ("#a", "x" * 510)),
    Message("PING", ("a",), tags={"k": "v" * 9000}),
])
def test_serialise_refuses_what_the_wire_cannot_carry(msg):
    with pytest.raises(ValueError):
        serialise(msg)


# -- the 512-byte rules -----------------------------------------------------

def _line(body_len: int, tags: bytes = b"") -> bytes:
    head = b"PRIVMSG #a :"
    return tags + head + b"x" * (body_len - len(head) - 2)   # body_len counts CR LF


def test_a_body_of_512_bytes_is_taken_and_513_gets_417():
    assert parse(_line(512)).command == "PRIVMSG"
    with pytest.raises(LineError) as e:
        parse(_line(513))
    assert e.value.numeric == "417" and e.value.command == "PRIVMSG"


def test_tags_do_not_count_toward_512_but_have_their_own_limits():
    tags = b"@+a=" + b"v" * 4091 + b" "          # 4094 bytes of tag data
    assert parse(_line(512, tags)).tags["+a"] == "v" * 4091
    with pytest.raises(LineError) as e:
        parse(_line(100, b"@+a=" + b"v" * 4092 + b" "))
    assert e.value.numeric == "417"


def test_reader_answers_417_for_a_line_longer_than_any_and_keeps_the_next():
    reader = LineReader()
    out = reader.feed(b"PRIVMSG #a :" + b"x" * 9000)
    out += reader.feed(b"y" * 100 + b"\r\nPING ok\r\n")
    assert isinstance(out[0], LineError) and out[0].numeric == "417"
    assert out[1:] == [b"PING ok"]


def test_invalid_utf8_is_refused_with_fail():
    for line in (b"PRIVMSG #a :caf\xe9", b"@+x=\xff PRIVMSG #a :ok", b"PRIVMSG #\xc3 :x"):
        with pytest.raises(LineError) as e:
            parse(line)
        assert e.value.fail == "INVALID_UTF8" and e.value.command == "PRIVMSG"
        assert "UTF-8" in e.value.text


def test_fit_cuts_the_last_parameter_at_a_character_boundary():
    msg = wire.fit(Message("TOPIC", ("#a", "é" * 400), "bob!u@natter"))
    body = wire.serialise_body(msg)
    assert len(body) + 2 <= 512 and len(body) + 2 >= 510
    assert set(msg.params[1]) == {"é"}


@given(st.text(max_size=80), st.integers(1, 80))
def test_middle_is_always_a_safe_middle_parameter(text, limit):
    out = wire.middle(text, limit)
    assert out and not out.startswith(":") and not any(c in out for c in " \r\n\0")
    assert len(out.encode("utf-8")) <= max(limit, 1)
    serialise(Message("NOTICE", (out, "x")))


# -- message text ---------------------------------------------------------

def _grapheme_breaks_ok(pieces: list) -> bool:
    """An independent statement of the rule: a piece after the first may
    start inside a grapheme only if the piece before it held no place to
    cut at all (one grapheme longer than the budget)."""
    for prev, nxt in zip(pieces, pieces[1:]):
        whole = prev + nxt
        first, after_zwj = nxt[0], prev[-1] == "\u200d"
        extends = unicodedata.category(first).startswith("M") or first == "\u200d" or after_zwj \
            or 0x1F3FB <= ord(first) <= 0x1F3FF
        if extends and any(may_cut_before(whole, i) for i in range(1, len(prev))):
            return False
    return True


_text_chars = st.one_of(
    st.characters(blacklist_characters="\n", blacklist_categories=("Cs",)),
    st.sampled_from(["\u0301", "\u0308", "\u093f", "\ufe0f", "\u200d", "\U0001F3FD", "👩", " ", "e"]),
)


@settings(max_examples=400, deadline=None)
@given(st.text(_text_chars, min_size=1, max_size=300), st.integers(4, 120))
def test_split_fits_the_budget_at_character_and_grapheme_boundaries(line, budget):
    pieces = split_text(line, budget)
    if not line.strip():
        assert pieces == []
        return
    assert "".join(pieces) == line
    assert all(0 < len(x.encode("utf-8")) <= budget for x in pieces)
    assert _grapheme_breaks_ok(pieces)


def test_split_keeps_marks_and_emoji_sequences_with_their_letter():
    assert split_text("e\u0301" * 6, 7) == ["e\u0301e\u0301"] * 3           # 3 bytes each: never e | ́
    assert split_text("x \u2764\ufe0f", 6) == ["x ", "\u2764\ufe0f"]        # not "x ❤" | VS16 (ccc 0)
    assert split_text("ab \u0915\u093f", 7) == ["ab ", "\u0915\u093f"]      # Devanagari vowel sign, Mc
    family = "\U0001F469\u200d\U0001F469\u200d\U0001F467"                   # 18 bytes, one grapheme
    pieces = split_text("ab " + family, 10)
    assert pieces[0] == "ab " and "".join(pieces[1:]) == family   # cut inside only when it must be


def test_split_prefers_a_space_and_leaves_out_blank_lines():
    assert split_text("hello world this is a test", 12) == ["hello world ", "this is a ", "test"]
    assert split_text("one\n\n  \ntwo", 50) == ["one", "two"]


def test_a_long_message_fits_each_recipients_own_budget():
    text = "Grüße, " + "naïve café ☕ " * 120
    longest = {}
    for to in ("b", "a-much-longer-nick-of-32-chars-x"):
        frame = {"type": "dm", "id": 9, "ts": 1.5, "from": "alice", "to": to, "text": text}
        lines = message_lines(frame, (True, True), "ep", target=to)
        budget = 510 - len(f":alice!u@natter PRIVMSG {to} :".encode())
        assert len(lines) > 1 and "".join(m.params[1] for m in lines) == text
        for m in lines:
            assert len(wire.serialise_body(m)) + 2 <= 512
            assert len(m.params[1].encode()) <= budget
            parse(serialise(m)[:-2])
        assert [m.tags["msgid"] for m in lines[:2]] == ["ep.9", "ep.9.2"]
        assert lines[0].tags["time"] == "1970-01-01T00:00:01.500Z"
        longest[to] = max(len(m.params[1].encode()) for m in lines)
    # the short nick's lines carry more than the long nick's budget allows
    assert longest["b"] > 510 - len(":alice!u@natter PRIVMSG a-much-longer-nick-of-32-chars-x :")


def test_actions_and_formatting_cross_the_door():
    assert to_irc("/me waves", 400) == ["\x01ACTION waves\x01"]
    assert from_irc("\x01ACTION waves\x01") == "/me waves"
    assert from_irc("\x02bold\x02 \x0304,12red\x03 plain\x1f") == "bold red plain"
    assert from_irc("\x01VERSION\x01") == CtcpRequest("VERSION", "")
    assert from_irc("\x03\x02") == ""
