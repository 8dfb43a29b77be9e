"""Message text across the door, both ways (no I/O).

Out (Natter -> IRC): a message may hold newlines and be longer than an IRC
line can carry, so :func:`split_text` cuts it into lines that each fit a
byte budget, at character boundaries (never inside a character, and not
inside a grapheme, :func:`may_cut_before`, unless one grapheme alone is
longer than the budget), preferring a space in the second half. ``/me waves`` (Natter's action convention, see
``chatgui/app/commands.py``) becomes CTCP ``ACTION`` (:func:`to_irc`).

In (IRC -> Natter): :func:`from_irc` turns CTCP ``ACTION`` into ``/me``,
removes mIRC formatting codes (bold, colours...: Natter shows plain text,
and the server refuses control characters), and returns other CTCP
requests apart, since nobody on the Natter side can answer them.

Thread: pure functions.
"""
from __future__ import annotations

import bisect
import re
import unicodedata
from dataclasses import dataclass

ACTION_PREFIX = "/me "        # Natter's action convention (chatgui.app.commands.ACTION_PREFIX)
CTCP = "\x01"
_ACTION_OVERHEAD = len(b"\x01ACTION \x01")

# mIRC formatting: colours (\x03 with up to two digits, a comma and two
# more; \x04 with hex RRGGBB), then the one-byte toggles.
_FORMATTING = re.compile(r"\x03(?:\d{1,2}(?:,\d{1,2})?)?|\x04(?:[0-9A-Fa-f]{6}(?:,[0-9A-Fa-f]{6})?)?"
                         r"|[\x02\x0f\x11\x16\x1d\x1e\x1f]")


@dataclass(frozen=True, slots=True)
class CtcpRequest:
    """A CTCP request other than ACTION (VERSION, PING, ...)."""
    command: str
    args: str


def split_text(text: str, budget: int) -> list:
    """``text`` as IRC line texts of at most ``budget`` UTF-8 bytes each, one
    or more per line of ``text``; blank lines are left out. Joined back
    (pieces of one line with nothing between them) they give each line."""
    if budget < 4:
        raise ValueError("an IRC text budget must hold at least one character (4 bytes)")
    out = []
    for line in text.split("\n"):
        if line.strip():
            out.extend(_split_line(line, budget))
    return out


def _split_line(line: str, budget: int) -> list:
    offs = [0]                                   # offs[i]: UTF-8 bytes before character i
    for ch in line:
        offs.append(offs[-1] + _utf8_len(ch))
    n, pieces, start = len(line), [], 0
    while offs[n] - offs[start] > budget:
        end = bisect.bisect_right(offs, offs[start] + budget) - 1   # the most characters that fit
        cut = end
        while cut > start and not may_cut_before(line, cut):
            cut -= 1
        if cut == start:
            cut = end          # one grapheme longer than the budget: it has to be cut
        else:
            space = line.rfind(" ", start, cut)
            while space >= 0 and offs[space + 1] - offs[start] >= budget // 2:
                if may_cut_before(line, space + 1):
                    cut = space + 1              # the space stays with the first piece
                    break
                space = line.rfind(" ", start, space)
        pieces.append(line[start:cut])
        start = cut
    pieces.append(line[start:])
    return pieces


def _utf8_len(ch: str) -> int:
    cp = ord(ch)
    return 1 if cp < 0x80 else 2 if cp < 0x800 else 3 if cp < 0x10000 else 4


_ZWJ = "\u200d"


def may_cut_before(line: str, i: int) -> bool:
    """Whether a line may be cut before character ``i`` without parting a
    grapheme: not before a combining mark (Unicode categories Mn, Mc, Me:
    accents, vowel signs, variation selectors), a zero-width joiner or an
    emoji skin-tone modifier, and not after a joiner. (A subset of
    UAX #29's rules: it keeps the marks with their letter and emoji
    sequences whole, which is what a reader notices.)"""
    ch = line[i]
    if ch == _ZWJ or line[i - 1] == _ZWJ or "\U0001F3FB" <= ch <= "\U0001F3FF":
        return False
    return unicodedata.category(ch)[0] != "M"


def to_irc(text: str, budget: int) -> list:
    """Natter text -> the texts of the PRIVMSG lines that carry it."""
    if text.startswith(ACTION_PREFIX) and text[len(ACTION_PREFIX):].strip():
        body = text[len(ACTION_PREFIX):]
        return [f"\x01ACTION {piece}\x01" for piece in split_text(body, budget - _ACTION_OVERHEAD)]
    return split_text(text, budget)


def from_irc(text: str):
    """IRC PRIVMSG/NOTICE text -> Natter text (a str), or a
    :class:`CtcpRequest` for a CTCP request other than ACTION. The str may
    be blank (a line of formatting codes only): the caller answers 412."""
    if text.startswith(CTCP):
        inner = text[1:]
        if inner.endswith(CTCP):
            inner = inner[:-1]
        command, _, args = inner.partition(" ")
        if command.upper() != "ACTION":
            return CtcpRequest(strip_formatting(command.upper()), strip_formatting(args))
        body = strip_formatting(args)
        return ACTION_PREFIX + body if body.strip() else ""
    return strip_formatting(text)


def strip_formatting(text: str) -> str:
    if not any(ch < " " for ch in text):
        return text
    return _FORMATTING.sub("", text)
