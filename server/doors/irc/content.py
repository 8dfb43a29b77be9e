"""Message text across the door, both ways (no I/O).

Out (Natter -> IRC): a message may hold newlines and be longer than an IRC
line can carry, so :func:`split_text` cuts it into lines that each fit a
byte budget, at UTF-8 character boundaries (never inside a character, and
not before a combining mark when it can help it), preferring a space near
the end. ``/me waves`` (Natter's action convention, see
``chatgui/app/commands.py``) becomes CTCP ``ACTION`` (:func:`to_irc`).

In (IRC -> Natter): :func:`from_irc` turns CTCP ``ACTION`` into ``/me``,
removes mIRC formatting codes (bold, colours...: Natter shows plain text,
and the server refuses control characters), and returns other CTCP
requests apart, since nobody on the Natter side can answer them.

Thread: pure functions.
"""
from __future__ import annotations

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
    data = line.encode("utf-8")
    pieces = []
    start = 0
    while len(data) - start > budget:
        end = start + budget
        while (data[end] & 0xC0) == 0x80:          # inside a character: back to its first byte
            end -= 1
        end = _before_marks(data, start, end)
        space = data.rfind(b" ", start + budget // 2, end)
        if space >= 0:
            end = space + 1                        # the space stays with the first piece
        pieces.append(data[start:end].decode("utf-8"))
        start = end
    pieces.append(data[start:].decode("utf-8"))
    return pieces


def _before_marks(data: bytes, start: int, end: int) -> int:
    """Move a cut at ``end`` back before combining marks that follow it,
    so a mark stays with its letter, unless that would empty the piece."""
    cut = end
    while cut > start:
        ch = data[cut:cut + 4].decode("utf-8", "ignore")[:1]
        if not ch or not unicodedata.combining(ch):
            return cut
        cut -= 1
        while cut > start and (data[cut] & 0xC0) == 0x80:
            cut -= 1
    return end


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
