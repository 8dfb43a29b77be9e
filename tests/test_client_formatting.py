"""Display helpers: time, safe text, the Tk astral guard, mentions, links,
completion. Pure; no Tk."""
from __future__ import annotations

import re
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatgui.app import formatting as f


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


def _find_urls_reference(text: str) -> list:
    """find_urls as it was before it was made linear: it counted the
    brackets of the whole match again for every trailing one it stripped.
    Kept as the definition the linear one must agree with."""
    out = []
    for m in f._URL_RE.finditer(text):
        start, end = m.span()
        while end > start:
            last = text[end - 1]
            if last in f._TRAILING:
                end -= 1
            elif last in f._PAIRS and text.count(f._PAIRS[last], start, end) < text.count(last, start, end):
                end -= 1
            else:
                break
        url = text[start:end]
        low = url.lower()
        if low in ("www.", "http://", "https://") or low.endswith("://"):
            continue
        if low.startswith("www."):
            url = "http://" + url
        out.append((start, end, url))
    return out


@settings(max_examples=1000, deadline=None)
@given(st.lists(st.sampled_from(["http://", "https://", "www.", "HTTP://", "a", "b", ".", ",", ";", ":", "!",
                                 "?", "'", '"', "*", "(", ")", "[", "]", "{", "}", "/", " ", "@", "w",
                                 "\n"]), max_size=30).map("".join))
def test_find_urls_agrees_with_the_quadratic_reference(text):
    assert f.find_urls(text) == _find_urls_reference(text)


@pytest.mark.timeout(30)
def test_find_urls_is_linear_in_a_run_of_closing_brackets():
    """One valid message of http://a and 65 000 ')': 1.2-3 s with the old
    count-per-bracket loop on this machine, about 20 ms now."""
    worst = "http://a" + ")" * 65_000
    best = min(_timed(f.find_urls, worst) for _ in range(3))
    assert f.find_urls(worst) == [(0, 8, "http://a")]
    assert best < 0.3, f"find_urls took {best:.2f} s on 65 000 ')'"
    mixed = "http://a/" + "(x)]}." * 20_000          # every kind of bracket and punctuation
    assert _timed(f.find_urls, mixed) < 0.3
    assert f.find_urls(mixed) == _find_urls_reference(mixed)


def _timed(fn, arg) -> float:
    t0 = time.perf_counter()
    fn(arg)
    return time.perf_counter() - t0


def test_complete_nicks():
    nicks = ["alice", "Alan", "bob", "ALBERT", "alice"]
    assert f.complete("al", nicks) == ["Alan", "ALBERT", "alice"]
    assert f.complete("@Ali", nicks) == ["alice"]
    assert f.complete("z", nicks) == []
    assert f.complete("", ["b", "a"]) == ["a", "b"]
    assert f.common_prefix(["alice", "Alan", "ALBERT"]) == "al"
    assert f.common_prefix(["bob"]) == "bob"
    assert f.common_prefix([]) == ""
