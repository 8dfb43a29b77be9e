"""``CHATHISTORY`` arguments (IRCv3 draft/chathistory), parsed (no I/O).

Supported: ``BEFORE``, ``AFTER`` and ``LATEST`` with a ``#room`` or a
nick as target and a ``msgid=`` or ``timestamp=`` reference (``*`` for
``LATEST``); a limit above the server's is lowered to it. ``AROUND``,
``BETWEEN``, ``TARGETS`` and the ``*`` target (all private messages)
are refused with ``FAIL CHATHISTORY`` and a sentence.

Thread: pure.
"""
from __future__ import annotations

from dataclasses import dataclass

from ... import protocol as p
from .names import Refused, is_channel, parse_msgid, parse_time, room_of
from .numerics import fail
from .wire import Message

SUPPORTED = ("BEFORE", "AFTER", "LATEST")
_KNOWN_UNSUPPORTED = ("AROUND", "BETWEEN", "TARGETS")


@dataclass(frozen=True, slots=True)
class HistoryQuery:
    subcommand: str             # BEFORE, AFTER or LATEST
    target: str                 # as the client wrote it (the batch names it)
    room: str | None            # a room's history, or
    nick: str | None            # the private conversation with a nick
    msg_id: int | None = None   # the reference, by message id,
    ts: float | None = None     # or by time; neither: LATEST *
    limit: int = 50


class HistoryFail(Exception):
    """A refused CHATHISTORY: ``FAIL CHATHISTORY code context... :text``."""

    def __init__(self, code: str, context: tuple, text: str):
        super().__init__(text)
        self.code, self.context, self.text = code, context, text

    def message(self, server: str) -> Message:
        return fail(server, "CHATHISTORY", self.code, *self.context, text=self.text)


def parse_chathistory(params: tuple, epoch: str, max_limit: int) -> HistoryQuery:
    """``CHATHISTORY`` parameters -> a :class:`HistoryQuery`, or HistoryFail."""
    if not params:
        raise HistoryFail("NEED_MORE_PARAMS", ("*",), "CHATHISTORY needs a subcommand: BEFORE, AFTER or LATEST")
    sub = params[0].upper()
    if sub in _KNOWN_UNSUPPORTED:
        raise HistoryFail("UNKNOWN_COMMAND", (params[0][:20],),
                          f"CHATHISTORY {sub} is not supported here; use BEFORE, AFTER or LATEST")
    if sub not in SUPPORTED:
        raise HistoryFail("UNKNOWN_COMMAND", (params[0][:20] or "*",), "Unknown command: use BEFORE, AFTER or LATEST")
    if len(params) < 4:
        raise HistoryFail("NEED_MORE_PARAMS", (sub,), f"CHATHISTORY {sub} needs a target, a reference and a limit")
    target, ref, limit_text = params[1], params[2], params[3]
    room = nick = None
    if target == "*":
        raise HistoryFail("INVALID_TARGET", (sub, target),
                          "The '*' target is not supported here: ask for one channel or one nick")
    try:
        if is_channel(target):
            room = room_of(target)
        else:
            nick = p.check_nick(target)
    except (Refused, p.ProtocolError) as e:
        raise HistoryFail("INVALID_TARGET", (sub, target[:64]), getattr(e, "text", None) or e.message) from None
    msg_id = ts = None
    if ref == "*":
        if sub != "LATEST":
            raise HistoryFail("INVALID_PARAMS", (sub, ref), f"CHATHISTORY {sub} needs msgid= or timestamp=, not '*'")
    elif ref.startswith("msgid="):
        msg_id = parse_msgid(ref[len("msgid="):], epoch)
        if msg_id is None:
            raise HistoryFail("INVALID_PARAMS", (sub, ref[:80]),
                              "That msgid is not one of this server's (it may be from an older history)")
    elif ref.startswith("timestamp="):
        try:
            ts = parse_time(ref[len("timestamp="):])
        except ValueError as e:
            raise HistoryFail("INVALID_PARAMS", (sub, ref[:80]), str(e)) from None
    else:
        raise HistoryFail("INVALID_PARAMS", (sub, ref[:80]), "The reference must be msgid=ID, timestamp=TIME or '*'")
    if not (limit_text.isascii() and limit_text.isdigit()) or int(limit_text) < 1:
        raise HistoryFail("INVALID_PARAMS", (sub, limit_text[:20]), "The limit must be a whole number of 1 or more")
    return HistoryQuery(sub, target, room, nick, msg_id, ts, min(int(limit_text), max_limit))
