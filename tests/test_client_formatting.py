"""Display helpers: time, safe text, the Tk astral guard, mentions, links,
completion. Pure; no Tk."""
from __future__ import annotations

import re
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatgui import formatting as f


def test_timestamp_is_local_hh_mm():
    ts = time.mktime((2024, 5, 17, 9, 5, 30, 0, 0, -1))
    assert f.timestamp(ts) == "09:05"
    assert re.fullmatch(r"\d\d:\d\d", f.timestamp())


def test_control_characters_are_shown_escaped():
    assert f.safe_text("a\x1b[31mred\x1b[0m") == "a\\x1b[31mred\\x1b[0m"
    assert f.safe_text("over\rwrite") == "over\\x0dwrite"
    assert f.safe_text("bell\x07 del\x7f csi\x9b nel\x85") == "bell\\x07 del\\x7f csi\\x9b nel\\x85"
    assert f.safe_text("tab\tand\nnewline stay") == "tab\tand\nnewline stay"


@pytest.mark.parametrize("ch", [chr(c) for c in list(range(0x202A, 0x202F)) + list(range(0x2066, 0x206A))])
def test_bidi_controls_are_neutralised(ch):
    shown = f.safe_text(f"abc{ch}def")
    assert ch not in shown
    assert shown == f"abc\\u{ord(ch):04x}def"


def test_a_message_cannot_pose_as_a_notice_with_bidi_or_separators():
    # RLO makes "tfel bob --" read as "-- bob left" in a bidi renderer.
    shown = f.safe_text("\u202etfel bob --")
    assert "\u202e" not in shown and shown.startswith("\\u202e")
    assert "\u2028" not in f.safe_text("x\u2028-- fake notice")
    assert f.safe_text("lone \ud800 surrogate") == "lone \\ud800 surrogate"


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_safe_text_output_is_always_safe_and_idempotent(text):
    shown = f.safe_text(text)
    for ch in shown:
        o = ord(ch)
        assert ch in "\t\n" or not (o < 0x20 or 0x7F <= o <= 0x9F)
        assert not (0x202A <= o <= 0x202E or 0x2066 <= o <= 0x2069 or 0xD800 <= o <= 0xDFFF)
    assert f.safe_text(shown) == shown
    shown.encode("utf-8")   # no lone surrogates left: printable on any UTF-8 terminal


def test_tk_safe_replaces_astral_characters_readably():
    assert f.tk_safe("hi \U0001F600") == "hi :grinning face:"
    assert f.tk_safe("\U0001F1EB\U0001F1F7 flag") == "[FR] flag"
    assert f.tk_safe("\U0001F44D\U0001F3FD") == ":thumbs up sign:"   # skin tone dropped
    assert f.tk_safe("\U0001D400") == "A"                            # mathematical bold A
    assert f.tk_safe("\U0010FFFF") == "\ufffd"
    assert f.tk_safe("caf\u00e9 \u4e2d\u6587 \u2603") == "caf\u00e9 \u4e2d\u6587 \u2603"  # BMP untouched
    assert f.tk_safe("\U0001F600\x1b", astral_ok=True) == "\U0001F600\\x1b"


@settings(max_examples=300, deadline=None)
@given(st.text())
def test_tk_safe_leaves_only_bmp_characters(text):
    shown = f.tk_safe(text)
    assert all(ord(ch) <= 0xFFFF for ch in shown)
    assert f.tk_safe(shown) == shown


def test_astral_supported_by_tk_version():
    assert not f.astral_supported(8.6)
    assert not f.astral_supported("8.6.13")
    assert f.astral_supported("8.7a5")
    assert f.astral_supported(9.0)
    assert not f.astral_supported("garbage")


@pytest.mark.parametrize("text, nick, hit", [
    ("hey bob", "bob", True),
    ("Hey BOB!", "bob", True),
    ("@bob: look", "bob", True),
    ("bob's idea", "bob", True),
    ("bobby", "bob", False),
    ("kebob", "bob", False),
    ("bob_2 is here", "bob", False),
    ("bob-x is here", "bob", False),
    ("ask Zoë", "zoë", True),
    ("ask \uff22\uff2f\uff22", "bob", True),     # fullwidth look-alike
    ("nothing", "", False),
])
def test_mentions_are_whole_word_and_case_insensitive(text, nick, hit):
    assert f.mentions(text, nick) is hit


def test_mention_spans_for_highlighting():
    assert f.mention_spans("Bob, bob-x and bob.", "bob") == [(0, 3), (15, 18)]
    assert f.mention_spans("a+b?", "a+b") == [(0, 3)]   # nick is literal, not a regex


@pytest.mark.parametrize("text, urls", [
    ("see https://example.org/x?a=1&b=2.", ["https://example.org/x?a=1&b=2"]),
    ("(http://example.org/wiki/Foo_(bar))", ["http://example.org/wiki/Foo_(bar)"]),
    ("go to www.example.com, now", ["http://www.example.com"]),
    ("two: http://a.io and HTTPS://B.io/p!", ["http://a.io", "HTTPS://B.io/p"]),
    ("javascript:alert(1) file:///etc/passwd ftp://x", []),
    ("bare http:// alone", []),
    ("mail me@www.example.com", []),
])
def test_find_urls(text, urls):
    found = f.find_urls(text)
    assert [u for _, _, u in found] == urls
    for start, end, url in found:
        assert url.endswith(text[start:end])


def test_complete_nicks():
    nicks = ["alice", "Alan", "bob", "ALBERT", "alice"]
    assert f.complete("al", nicks) == ["Alan", "ALBERT", "alice"]
    assert f.complete("@Ali", nicks) == ["alice"]
    assert f.complete("z", nicks) == []
    assert f.complete("", ["b", "a"]) == ["a", "b"]
    assert f.common_prefix(["alice", "Alan", "ALBERT"]) == "al"
    assert f.common_prefix(["bob"]) == "bob"
    assert f.common_prefix([]) == ""
