"""Issue 11's frames on the client side, sans I/O: the requests (``forget``,
``mod``, ``mode``, ``delete``, ``edit``, ``release``, ``audit``) and the
server's answers and events as frozen dataclasses (:class:`Moderated`,
:class:`ModeChanged`, :class:`Deleted`, :class:`Edited`, :class:`Audit`,
:class:`Forgotten`), parsed from the frames of DESIGN-11.

:mod:`server.protocol` parses what it knows and hands the rest over as
``Unknown``; :func:`upgrade` turns an event of the server's parser plus
the frame it came from into what the UI needs: a new frame type into its
class here, a message carrying issue 11's fields (``question``,
``released_by``, ``edited_ts``) into a :class:`MarkedMessage` /
:class:`MarkedDirect` (subclasses of the protocol's, so every existing
``isinstance`` check still holds), a ``room`` frame's ``modes`` / ``role``
/ ``roles`` into :class:`RoomPowersInfo`. Everything comes from an
untrusted peer: a malformed frame of a known type raises
:class:`server.protocol.ProtocolError` (the caller skips it and logs),
unknown or ill-typed optional fields fall back to their defaults.

Thread: pure functions and values, any thread.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

from server import protocol as p

# The mod actions (DESIGN-11 section 3) and the mode fields (section 2).
ACTIONS = ("kick", "ban", "unban", "mute", "unmute", "op", "deop", "voice", "devoice")
MODE_FLAGS = ("moderated", "questions", "announce", "dm", "key")
ROLES = ("owner", "op", "voice", "member")
MAX_DURATION = 10 * 365 * 86_400     # a "timed" ban longer than this is a permanent one anyway
MAX_SLOW = 86_400
MAX_AUDIT = 1000                      # entries kept from one audit frame (the server sends 200)
MAX_REASON = 300

# Error codes of issue 11.
NICK_RESERVED, BAD_IDENTITY, FORBIDDEN, BANNED, MUTED = (
    "nick_reserved", "bad_identity", "forbidden", "banned", "muted")
SLOW_MODE, EDIT_WINDOW, NO_IDENTITY, BAD_MOD, NO_SUCH_MESSAGE = (
    "slow_mode", "edit_window", "no_identity", "bad_mod", "no_such_message")

# Request kinds (as the outbox names them); none of them is understood by a
# server without rooms.
KINDS = frozenset({"forget", "mod", "mode", "delete", "edit", "release", "audit"})


# -- requests ---------------------------------------------------------------

def mod_frame(room: str, action: str, nick: str, reason: str | None = None,
              duration: int | None = None, ref: str | None = None) -> dict:
    """Raises ValueError for an action not in :data:`ACTIONS` or a bad duration."""
    if action not in ACTIONS:
        raise ValueError(f"unknown mod action {action!r}")
    f = {"type": "mod", "room": room, "action": action, "nick": nick}
    if reason:
        f["reason"] = reason
    if duration is not None:
        if type(duration) is not int or not 0 < duration <= MAX_DURATION:
            raise ValueError(f"a duration is 1 to {MAX_DURATION} seconds")
        f["duration"] = duration
    if ref:
        f["ref"] = ref
    return f


def mode_frame(room: str, changes: dict, ref: str | None = None) -> dict:
    """``changes``: any of moderated/questions/announce/dm (bool), slow (int
    seconds, 0 off), key (str: sets it, "" clears it). ValueError otherwise."""
    if not changes:
        raise ValueError("a mode frame changes something")
    f = {"type": "mode", "room": room}
    for name, value in changes.items():
        if name in ("moderated", "questions", "announce", "dm"):
            if type(value) is not bool:
                raise ValueError(f"{name} is on or off")
        elif name == "slow":
            if type(value) is not int or not 0 <= value <= MAX_SLOW:
                raise ValueError(f"slow mode is 0 to {MAX_SLOW} seconds")
        elif name == "key":
            if type(value) is not str or len(value) > p.MAX_ROOM_KEY:
                raise ValueError(f"a room key is up to {p.MAX_ROOM_KEY} characters")
        else:
            raise ValueError(f"unknown mode {name!r}")
        f[name] = value
    if ref:
        f["ref"] = ref
    return f


def delete_frame(msg_id: int, reason: str | None = None, ref: str | None = None) -> dict:
    f = {"type": "delete", "id": msg_id}
    if reason:
        f["reason"] = reason
    if ref:
        f["ref"] = ref
    return f


def edit_frame(msg_id: int, text: str, ref: str | None = None) -> dict:
    f = {"type": "edit", "id": msg_id, "text": text}
    if ref:
        f["ref"] = ref
    return f


def release_frame(question_id: int, ref: str | None = None) -> dict:
    f = {"type": "release", "id": question_id}
    if ref:
        f["ref"] = ref
    return f


def audit_frame(room: str, before: int | None = None, ref: str | None = None) -> dict:
    f = {"type": "audit", "room": room}
    if before is not None:
        f["before"] = before
    if ref:
        f["ref"] = ref
    return f


def forget_frame(ref: str | None = None) -> dict:
    f = {"type": "forget"}
    if ref:
        f["ref"] = ref
    return f


# -- what the server sends ------------------------------------------------------

@dataclass(frozen=True, slots=True)
class MarkedMessage(p.Message):
    """A room message with issue 11's marks. ``question``: a member's
    question (only the ops and its author get it); ``released_from``: this
    message is question ``released_from`` released by ``released_by``;
    ``edited_ts``: edited then (history gives the edited text)."""
    question: bool = False
    released_from: int | None = None
    released_by: str | None = None
    edited_ts: float | None = None


@dataclass(frozen=True, slots=True)
class MarkedDirect(p.Direct):
    edited_ts: float | None = None


@dataclass(frozen=True, slots=True)
class Moderated:
    """``moderated``: someone (``by``; None when a timed mute or ban ran
    out) acted on ``nick`` in ``room``. ``until``: when a timed mute or
    ban ends (wall clock), None: until lifted."""
    room: str
    action: str
    nick: str
    by: str | None
    reason: str | None = None
    until: float | None = None
    id: int | None = None
    ts: float | None = None
    ref: str | None = None


@dataclass(frozen=True, slots=True)
class ModeChanged:
    """``mode`` from the server: ``changed`` the fields set (key as a bool),
    ``modes`` all of them now (a :data:`MODE_DEFAULTS`-shaped dict)."""
    room: str
    changed: dict
    modes: dict
    by: str | None
    id: int | None = None
    ts: float | None = None
    ref: str | None = None


@dataclass(frozen=True, slots=True)
class Deleted:
    """Message ``id`` was removed by ``by``: in ``room``, or in the private
    conversation ``with_``. ``seq``: the id of the event that carried the
    deletion (None for a tombstone in a history page)."""
    room: str | None
    with_: str | None
    id: int
    by: str
    seq: int | None = None
    ref: str | None = None


@dataclass(frozen=True, slots=True)
class Edited:
    room: str | None
    with_: str | None
    id: int
    text: str
    edited_ts: float | None
    seq: int | None = None
    ref: str | None = None


@dataclass(frozen=True, slots=True)
class AuditEntry:
    """One line of the trail: a mod action (``until`` for a timed one), a
    ``mode`` change (``modes``: the fields set, as (name, value)), or a
    ``delete`` of ``nick``'s message by someone else."""
    ts: float | None
    by: str | None
    action: str
    nick: str
    reason: str | None
    until: float | None = None
    modes: tuple = ()


@dataclass(frozen=True, slots=True)
class Audit:
    room: str
    entries: tuple          # of AuditEntry, newest last
    ref: str | None = None
    more: bool = False      # older entries exist: ask before ``oldest``
    oldest: int | None = None   # the first entry's event id


@dataclass(frozen=True, slots=True)
class Forgotten:
    """Our nick's binding to this computer's identity was released."""
    nick: str
    ref: str | None = None


@dataclass(frozen=True, slots=True)
class RoomPowersInfo:
    """What a ``room`` frame says of issue 11: our ``role`` there, the
    ``roles`` of those above member (nick -> role), the ``modes``."""
    role: str = "member"
    roles: tuple = ()       # of (nick, role)
    modes: tuple = ()       # of (name, value), MODE_DEFAULTS' names


MODE_DEFAULTS = {"moderated": False, "questions": False, "announce": False, "slow": 0, "dm": True, "key": False}


def parse_modes(value) -> dict:
    """A ``modes`` object -> a full dict of MODE_DEFAULTS' names; ill-typed
    or unknown fields are ignored (their default stays)."""
    out = dict(MODE_DEFAULTS)
    if type(value) is not dict:
        return out
    for name, default in MODE_DEFAULTS.items():
        v = value.get(name)
        if type(default) is bool and type(v) is bool:
            out[name] = v
        elif name == "slow" and type(v) is int and 0 <= v <= MAX_SLOW:
            out[name] = v
    return out


def parse_room_powers(frame: dict) -> RoomPowersInfo:
    role = frame.get("role")
    roles = frame.get("roles")
    pairs = ()
    if type(roles) is dict:
        pairs = tuple((n, r) for n, r in roles.items() if type(n) is str and r in ROLES)
    return RoomPowersInfo(role if role in ROLES else "member", pairs, tuple(parse_modes(frame.get("modes")).items()))


def _ref(frame: dict) -> str | None:
    ref = frame.get("ref")
    return ref if type(ref) is str else None


def _bad(frame: dict, what: str) -> p.ProtocolError:
    return p.ProtocolError(p.BAD_FRAME, f"server frame {str(frame.get('type'))[:20]!r} has no valid {what}")


def _int(frame: dict, key: str, required: bool = True) -> int | None:
    v = frame.get(key)
    if type(v) is int and v >= 0:
        return v
    if v is None and not required:
        return None
    raise _bad(frame, repr(key))


def _ts(frame: dict, key: str) -> float | None:
    """An optional wall-clock time: finite, not negative; anything else is None."""
    v = frame.get(key)
    if type(v) in (int, float) and not isinstance(v, bool):
        try:
            v = float(v)
        except OverflowError:
            return None
        if math.isfinite(v) and v >= 0:
            return v
    return None


def _opt_str(frame: dict, key: str, limit: int = MAX_REASON) -> str | None:
    v = frame.get(key)
    return v[:limit] if type(v) is str and v else None


def _where(frame: dict) -> tuple:
    room, with_ = frame.get("room"), frame.get("with")
    if type(room) is not str and type(with_) is not str:
        raise _bad(frame, "'room' or 'with'")
    return (room if type(room) is str else None, with_ if type(with_) is str and type(room) is not str else None)


def _parse_moderated(f: dict) -> Moderated:
    action = f.get("action")
    if action not in ACTIONS:
        raise _bad(f, "'action'")
    room, nick = f.get("room"), f.get("nick")
    if type(room) is not str or type(nick) is not str:
        raise _bad(f, "'room' and 'nick'")
    by = f.get("by")
    if by is not None and type(by) is not str:
        raise _bad(f, "'by'")
    return Moderated(room, action, nick, by, _opt_str(f, "reason"), _ts(f, "until"), _int(f, "id", False),
                     _ts(f, "ts"), _ref(f))


def _parse_mode(f: dict) -> ModeChanged:
    room = f.get("room")
    if type(room) is not str:
        raise _bad(f, "'room'")
    if "modes" in f and type(f["modes"]) is not dict:
        raise _bad(f, "'modes'")
    changed = {}
    for name, default in MODE_DEFAULTS.items():
        if name in f:
            v = f[name]
            if name == "key" and type(v) is str:
                v = bool(v)         # a key as text is never shown: only whether there is one
            ok = (type(v) is bool) if type(default) is bool else (type(v) is int and 0 <= v <= MAX_SLOW)
            if not ok:
                raise _bad(f, repr(name))
            changed[name] = v
    modes = parse_modes(f.get("modes"))
    if "modes" not in f:
        modes = None            # the caller merges the changes into what it knew
    by = f.get("by")
    return ModeChanged(room, changed, modes, by if type(by) is str else None, _int(f, "id", False),
                       _ts(f, "ts"), _ref(f))


def _parse_deleted(f: dict) -> Deleted:
    room, with_ = _where(f)
    by = f.get("by")
    if type(by) is not str:
        raise _bad(f, "'by'")
    return Deleted(room, with_, _int(f, "id"), by, _int(f, "seq", False), _ref(f))


def _parse_edited(f: dict) -> Edited:
    room, with_ = _where(f)
    text = f.get("text")
    if type(text) is not str:
        raise _bad(f, "'text'")
    return Edited(room, with_, _int(f, "id"), text, _ts(f, "edited_ts"), _int(f, "seq", False), _ref(f))


def _parse_audit(f: dict) -> Audit:
    room, entries = f.get("room"), f.get("entries")
    if type(room) is not str or type(entries) is not list:
        raise _bad(f, "'room' and 'entries'")
    out = []
    first = entries[0].get("event") if entries and type(entries[0]) is dict else None
    for e in entries[-MAX_AUDIT:]:
        if type(e) is not dict or type(e.get("action")) is not str:
            continue            # one odd entry does not cost the whole trail
        nick = e.get("nick")
        by = e.get("by")
        modes = e.get("modes")
        modes = tuple((k, v) for k, v in modes.items() if k in MODE_DEFAULTS and type(v) in (bool, int, str)) \
            if type(modes) is dict else ()
        out.append(AuditEntry(_ts(e, "ts"), by if type(by) is str else None, e["action"][:40],
                              nick if type(nick) is str else "", _opt_str(e, "reason"), _ts(e, "until"), modes))
    return Audit(room, tuple(out), _ref(f), more=f.get("more") is True,
                 oldest=first if type(first) is int and first > 0 else None)


def _parse_forgotten(f: dict) -> Forgotten:
    nick = f.get("nick")
    if type(nick) is not str:
        raise _bad(f, "'nick'")
    return Forgotten(nick, _ref(f))


_PARSERS = {
    "moderated": _parse_moderated,
    "mode": _parse_mode,
    "deleted": _parse_deleted,
    "edited": _parse_edited,
    "audit": _parse_audit,
    "forgotten": _parse_forgotten,
}
# Stored events that may come inside replay frames and history pages.
STORED = frozenset({"moderated", "mode", "deleted", "edited"})


def upgrade(event, frame: dict):
    """The event the UI gets for ``event`` (what :func:`server.protocol.parse_server`
    or its replay/history parsing made of ``frame``). Raises ProtocolError
    for a malformed issue-11 frame."""
    kind = type(event)
    if kind is p.Unknown:
        parser = _PARSERS.get(frame.get("type")) if type(frame.get("type")) is str else None
        return parser(frame) if parser is not None else event
    if kind is p.Message:
        question = frame.get("question")
        released_by = frame.get("released_by")
        marks = dict(question=question is True,
                     released_from=question if type(question) is int and question >= 0 else None,
                     released_by=released_by if type(released_by) is str else None,
                     edited_ts=_ts(frame, "edited_ts"))
        if marks["released_from"] is None:
            marks["released_by"] = None
        if any(marks.values()):
            return MarkedMessage(event.id, event.ts, event.sender, event.text, event.ref, event.room, **marks)
        return event
    if kind is p.Direct:
        edited = _ts(frame, "edited_ts")
        if edited is not None:
            return MarkedDirect(event.id, event.ts, event.sender, event.to, event.text, event.ref, edited)
        return event
    return event


def upgrade_all(events, frames, log) -> tuple:
    """Upgrade the events of a replay or history frame (``frames`` the raw
    list they were parsed from, one for one); a malformed entry is dropped
    alone, logged, so one bad tombstone does not cost a whole catch-up."""
    out = []
    for event, frame in zip(events, frames):
        try:
            out.append(upgrade(event, frame))
        except p.ProtocolError as e:
            log.warning("bad entry in a %s frame skipped: %s", "replay or history", e.message)
    return tuple(out)
