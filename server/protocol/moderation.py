"""Identity and moderation frames (issue 11): their events, parsers and builders.

Client -> server: ``forget``, ``mod``, ``mode``, ``release``, ``delete``,
``edit``, ``audit`` (parsed by :func:`server.protocol.parse_client` through
:data:`PARSERS`), and the ``identity`` / ``admin_password`` fields of
``hello`` (:func:`check_identity`). Server -> client: the builders of
``moderated``, ``mode``, ``deleted``, ``edited``, ``audit`` and
``forgotten`` (docs/protocol.md, section 12). Clients read these frames as
:class:`~server.protocol.Unknown` dicts until ``parse_server`` learns them.

Thread: pure, any thread.
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass

from .errors import BAD_FRAME, ProtocolError
from .framing import _opt
from .names import check_nick, check_room, check_text

# Error codes of issue 11.
NICK_RESERVED = "nick_reserved"
BAD_IDENTITY = "bad_identity"
FORBIDDEN = "forbidden"
BANNED = "banned"
MUTED = "muted"
SLOW_MODE = "slow_mode"
EDIT_WINDOW = "edit_window"
NO_IDENTITY = "no_identity"
BAD_MOD = "bad_mod"
NO_SUCH_MESSAGE = "no_such_message"

MIN_IDENTITY, MAX_IDENTITY = 32, 128
MAX_REASON = 300
MAX_DURATION = 10 * 366 * 86400      # seconds: a timeout of ten years is a ban
MAX_SLOW = 86400
MOD_ACTIONS = ("kick", "ban", "unban", "mute", "unmute", "op", "deop", "voice", "devoice")
MODE_FLAGS = ("moderated", "questions", "announce", "dm")     # booleans; "slow" and "key" beside them
ROLES = ("owner", "op", "voice", "member")


def check_identity(identity) -> str | None:
    """A hello's identity secret: None, or 32..128 printable ASCII characters."""
    if identity is None:
        return None
    if type(identity) is not str or not MIN_IDENTITY <= len(identity) <= MAX_IDENTITY \
            or not all(" " <= c <= "~" for c in identity):
        raise ProtocolError(BAD_IDENTITY, f"'identity' must be {MIN_IDENTITY} to {MAX_IDENTITY} printable ASCII "
                                          "characters (the client's identity file holds one)")
    return identity


def fingerprint(identity: str) -> str:
    """An identity's fingerprint: SHA-256 of its UTF-8 bytes, lowercase hex."""
    return hashlib.sha256(identity.encode("utf-8")).hexdigest()


def is_fingerprint(text) -> bool:
    return type(text) is str and len(text) == 64 and all(c in "0123456789abcdef" for c in text)


def check_reason(reason, field: str = "reason") -> str | None:
    """An optional reason: at most MAX_REASON characters on one line; blank counts as none."""
    if reason is None:
        return None
    if type(reason) is not str:
        raise ProtocolError(BAD_FRAME, f"'{field}' must be a string")
    if len(reason) > MAX_REASON or "\n" in reason:
        raise ProtocolError(BAD_FRAME, f"'{field}' is one line of at most {MAX_REASON} characters")
    if not reason.strip():
        return None
    return check_text(reason, field).strip()


def _check_msg_id(value) -> int:
    if type(value) is not int or value < 1:
        raise ProtocolError(BAD_FRAME, "'id' must be the id of a message (a positive integer)")
    return value


def _check_before(value) -> int | None:
    if value is None:
        return None
    if type(value) is not int or value < 1:
        raise ProtocolError(BAD_FRAME, "'before' must be the 'event' of an audit entry (a positive integer)")
    return value


# -- client events ------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Forget:
    ref: str | None = None


@dataclass(frozen=True, slots=True)
class Mod:
    room: str
    action: str                  # one of MOD_ACTIONS
    nick: str
    reason: str | None = None
    duration: float | None = None   # seconds, for ban and mute
    ref: str | None = None


@dataclass(frozen=True, slots=True)
class SetMode:
    """Only the fields the frame had are not None; ``key``: "" clears it."""
    room: str
    moderated: bool | None = None
    questions: bool | None = None
    announce: bool | None = None
    slow: int | None = None
    dm: bool | None = None
    key: str | None = None
    ref: str | None = None

    def changes(self) -> dict:
        return {k: getattr(self, k) for k in MODE_FLAGS + ("slow", "key") if getattr(self, k) is not None}


@dataclass(frozen=True, slots=True)
class Release:
    id: int
    ref: str | None = None


@dataclass(frozen=True, slots=True)
class Delete:
    id: int
    reason: str | None = None
    ref: str | None = None


@dataclass(frozen=True, slots=True)
class Edit:
    id: int
    text: str
    ref: str | None = None


@dataclass(frozen=True, slots=True)
class Audit:
    room: str
    before: int | None = None   # page: the entries older than this event id
    ref: str | None = None


def _parse_mod(f: dict, ref) -> Mod:
    action = f.get("action")
    if action not in MOD_ACTIONS:
        raise ProtocolError(BAD_MOD, "'action' must be one of " + ", ".join(MOD_ACTIONS))
    if f.get("nick") is None:
        raise ProtocolError(BAD_MOD, f"a '{action}' names the 'nick' it acts on")
    room = check_room(f.get("room"))
    duration = f.get("duration")
    if duration is not None:
        if action not in ("ban", "mute"):
            raise ProtocolError(BAD_MOD, f"only a ban or a mute has a 'duration', not a '{action}'")
        if type(duration) not in (int, float) or not 0 < duration <= MAX_DURATION:
            raise ProtocolError(BAD_MOD, f"'duration' is a number of seconds, 1 to {MAX_DURATION}")
        duration = float(duration)
    return Mod(room, action, check_nick(f.get("nick")), check_reason(f.get("reason")), duration, ref)


def _parse_mode(f: dict, ref) -> SetMode:
    room = check_room(f.get("room"))
    fields = {}
    for name in MODE_FLAGS:
        v = f.get(name)
        if v is not None:
            if type(v) is not bool:
                raise ProtocolError(BAD_FRAME, f"'{name}' must be true or false")
            fields[name] = v
    slow = f.get("slow")
    if slow is not None:
        if type(slow) is not int or not 0 <= slow <= MAX_SLOW:
            raise ProtocolError(BAD_FRAME, f"'slow' must be a whole number of seconds, 0 to {MAX_SLOW}")
        fields["slow"] = slow
    key = f.get("key")
    if key is not None:
        from .client_frames import MAX_ROOM_KEY, _is_unicode
        if type(key) is not str or len(key) > MAX_ROOM_KEY or not _is_unicode(key):
            raise ProtocolError(BAD_FRAME, f"'key' must be a string of at most {MAX_ROOM_KEY} characters "
                                           "(\"\" clears it)")
        fields["key"] = key
    if not fields:
        raise ProtocolError(BAD_FRAME, "a mode frame sets at least one of moderated, questions, announce, slow, "
                                       "dm, key")
    return SetMode(room, ref=ref, **fields)


PARSERS = {
    "forget": lambda f, ref: Forget(ref),
    "mod": _parse_mod,
    "mode": _parse_mode,
    "release": lambda f, ref: Release(_check_msg_id(f.get("id")), ref),
    "delete": lambda f, ref: Delete(_check_msg_id(f.get("id")), check_reason(f.get("reason")), ref),
    "edit": lambda f, ref: Edit(_check_msg_id(f.get("id")), check_text(f.get("text")), ref),
    "audit": lambda f, ref: Audit(check_room(f.get("room")), _check_before(f.get("before")), ref),
}
"""type -> parse(frame, ref): client_frames wraps each so its errors carry the ref."""


# -- client frame builders -----------------------------------------------------


def forget_frame(ref: str | None = None) -> dict:
    return _opt({"type": "forget"}, ref=ref)


def mod_frame(room: str, action: str, nick: str, reason: str | None = None, duration: float | None = None,
              ref: str | None = None) -> dict:
    return _opt({"type": "mod", "room": room, "action": action, "nick": nick}, reason=reason, duration=duration,
                ref=ref)


def mode_request_frame(room: str, ref: str | None = None, **modes) -> dict:
    """``modes``: any of moderated, questions, announce, dm (bools), slow (seconds), key (str, "" clears)."""
    return _opt({"type": "mode", "room": room, **{k: v for k, v in modes.items() if v is not None}}, ref=ref)


def release_frame(id: int, ref: str | None = None) -> dict:
    return _opt({"type": "release", "id": id}, ref=ref)


def delete_frame(id: int, reason: str | None = None, ref: str | None = None) -> dict:
    return _opt({"type": "delete", "id": id}, reason=reason, ref=ref)


def edit_frame(id: int, text: str, ref: str | None = None) -> dict:
    return _opt({"type": "edit", "id": id, "text": text}, ref=ref)


def audit_request_frame(room: str, before: int | None = None, ref: str | None = None) -> dict:
    return _opt({"type": "audit", "room": room}, before=before, ref=ref)


# -- server frame builders -----------------------------------------------------


def moderated_frame(room: str, action: str, nick: str, by: str | None, reason: str | None, until: float | None,
                    id: int, ts: float) -> dict:
    return {"type": "moderated", "room": room, "action": action, "nick": nick, "by": by, "reason": reason,
            "until": until, "id": id, "ts": ts}


def removed_frame(room: str, nick: str, why: str, by: str, note: str | None) -> dict:
    """The ``left`` of a kicked or banned member (``why``: kick or ban)."""
    return {"type": "left", "room": room, "nick": nick, "reason": why, "by": by, "note": note}


def mode_frame(room: str, changed: dict, modes: dict, by: str, id: int, ts: float) -> dict:
    """``changed``: the fields set (``key`` as a bool); ``modes``: all of them now."""
    return {"type": "mode", "room": room, **changed, "modes": dict(modes), "by": by, "id": id, "ts": ts}


def deleted_frame(id: int, by: str, room: str | None = None, with_: str | None = None,
                  seq: int | None = None) -> dict:
    return _opt({"type": "deleted"}, room=room, **{"with": with_}, id=id, by=by, seq=seq)


def edited_frame(id: int, text: str, edited_ts: float, room: str | None = None, with_: str | None = None,
                 seq: int | None = None) -> dict:
    return _opt({"type": "edited"}, room=room, **{"with": with_}, id=id, text=text, edited_ts=edited_ts, seq=seq)


def audit_frame(room: str, entries, more: bool = False, ref: str | None = None) -> dict:
    """``entries`` oldest first; ``more``: older ones exist (ask ``before`` the first's ``event``)."""
    return _opt({"type": "audit", "room": room, "entries": list(entries), "more": more}, ref=ref)


def forgotten_frame(nick: str, ref: str | None = None) -> dict:
    return _opt({"type": "forgotten", "nick": nick}, ref=ref)
