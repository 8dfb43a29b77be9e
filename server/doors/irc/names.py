"""Names across the door: nicks, ``#room`` channels, message ids and times.

- Nicks are one namespace with the JSON side, so an IRC nick must pass
  both IRC's syntax (modern IRC: no space, ``,*?!@``, no leading ``$:#&@+``)
  and Natter's :func:`~server.protocol.check_nick` (letters, digits, ``_``
  and ``-``, one script). Every Natter nick is a valid IRC nick, so only a
  nick an IRC client picks can fail one side: :func:`check_irc_nick` says
  which rule in a sentence, for a 432.
- A channel ``#name`` is the room ``name``; the wire of the JSON side
  carries the bare name (:func:`room_of`, :func:`channel_of`).
- ``msgid`` is the server's numeric message id prefixed with the history's
  epoch (``EPOCH.ID``; a second line of a split message ``EPOCH.ID.2``), so
  it is unique across restarts and across a replaced history, as the IRCv3
  message-ids spec asks of a counter (:func:`msgid`, :func:`parse_msgid`).
- ``time`` tags are UTC ``YYYY-MM-DDThh:mm:ss.sssZ`` (:func:`format_time`,
  :func:`parse_time`).

Thread: pure functions.
"""
from __future__ import annotations

import datetime
import re
import time

from ... import protocol as p

CHANNEL_PREFIX = "#"
_IRC_FORBIDDEN = set(" ,*?!@\r\n\0")
_IRC_NO_START = set("$:#&@+%~")
# What an IRC nick may hold that a Natter nick may not: named in the sentence.
_IRC_SPECIALS = set("[]\\`^{}|.")


class Refused(Exception):
    """A nick or channel refused: ``text`` is the sentence for the numeric."""

    def __init__(self, text: str):
        super().__init__(text)
        self.text = text


def check_irc_nick(nick: str) -> str:
    """The nick as Natter keeps it (NFC), or Refused with a sentence
    naming the rule it breaks (for 432)."""
    if not nick:
        raise Refused("No nickname given")
    bad = sorted({ch for ch in nick if ch in _IRC_FORBIDDEN})
    if bad:
        raise Refused(f"IRC nicks may not hold {_chars(bad)}")
    if nick[0] in _IRC_NO_START:
        raise Refused(f"IRC nicks may not start with {nick[0]!r}")
    try:
        return p.check_nick(nick)
    except p.ProtocolError as e:
        specials = sorted({ch for ch in nick if ch in _IRC_SPECIALS})
        if specials:
            raise Refused(f"{_chars(specials)} {'is' if len(specials) == 1 else 'are'} fine on IRC but not here: nicks are shared with "
                          "Natter's window, where they hold letters, digits, '_' and '-' only") from None
        raise Refused(f"{_sentence(e.message)}; nicks here are shared with Natter's window") from None


def _chars(chars) -> str:
    return " ".join(repr(c) for c in chars)


def _sentence(text: str) -> str:
    return text[:1].upper() + text[1:]


def room_of(channel: str) -> str:
    """``#name`` -> the room name (NFC), or Refused with a sentence (for
    403/479)."""
    if not channel.startswith(CHANNEL_PREFIX):
        raise Refused(f"Channels here start with '#': try #{channel.lstrip('&!+')[:32]}")
    name = channel[1:]
    try:
        return p.check_room(name)
    except p.ProtocolError as e:
        raise Refused(_sentence(e.message)) from None


def channel_of(room: str) -> str:
    return CHANNEL_PREFIX + room


def is_channel(target: str) -> bool:
    return target[:1] in ("#", "&", "!", "+")


def msgid(epoch: str, msg_id: int, part: int = 1) -> str:
    """The ``msgid`` tag of stored message ``msg_id`` (its ``part``-th IRC line)."""
    return f"{epoch}.{msg_id}" if part == 1 else f"{epoch}.{msg_id}.{part}"


def parse_msgid(value: str, epoch: str) -> int | None:
    """The stored id a ``msgid`` of this history names, or None (another
    history's, or not one of ours)."""
    prefix = epoch + "."
    if not value.startswith(prefix):
        return None
    rest = value[len(prefix):].split(".")
    if not 1 <= len(rest) <= 2 or not all(part.isascii() and part.isdigit() for part in rest):
        return None
    return int(rest[0])


_TIME = re.compile(r"(\d{4})-(\d\d)-(\d\d)T(\d\d):(\d\d):(\d\d)(?:\.(\d{1,9}))?Z\Z")


def format_time(ts: float) -> str:
    """A server-time value: UTC with milliseconds."""
    ms = int(round(ts * 1000))
    secs, ms = divmod(ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs)) + f".{ms:03d}Z"


def parse_time(value: str) -> float:
    """A server-time value -> seconds since the epoch; ValueError if it is
    not ``YYYY-MM-DDThh:mm:ss[.sss]Z``."""
    m = _TIME.match(value)
    if not m:
        raise ValueError(f"not a time of the form YYYY-MM-DDThh:mm:ss.sssZ: {value[:40]!r}")
    try:
        when = datetime.datetime(*(int(g) for g in m.groups()[:6]), tzinfo=datetime.timezone.utc)
    except ValueError:
        raise ValueError(f"not a real time: {value[:40]!r}") from None
    frac = m.group(7) or "0"
    return when.timestamp() + int(frac) / 10 ** len(frac)


def hostmask(nick: str, host: str = "natter") -> str:
    """The source of a person's lines: ``nick!u@natter``. Natter does not
    tell IRC clients anyone's address."""
    return f"{nick}!u@{host}"
