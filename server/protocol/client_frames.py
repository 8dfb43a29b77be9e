"""Client -> server frames: the events a client sends, their parsers and builders."""
from __future__ import annotations

from dataclasses import dataclass

from .errors import BAD_FRAME, UNKNOWN_TYPE, ProtocolError
from .framing import PROTOCOL_VERSION, _opt
from .files import PARSERS as _FILE_PARSERS
from .moderation import PARSERS as _MODERATION_PARSERS, check_identity
from .names import LOBBY, check_nick, check_room, check_text, check_topic, is_unicode as _is_unicode

MAX_REF = 64
MAX_PASSWORD = 1024
MAX_EPOCH = 64
MAX_ROOM_KEY = 128
HISTORY_PAGE = 50            # a history request's default limit
MAX_HISTORY_PAGE = 200       # and its cap


def _check_ref(ref) -> str | None:
    if ref is None:
        return None
    if type(ref) is not str or not (0 < len(ref) <= MAX_REF) or not ref.isprintable():
        raise ProtocolError(BAD_FRAME, f"'ref' must be a printable string of 1 to {MAX_REF} characters")
    return ref


def _check_id(value, field: str) -> int | None:
    if value is None:
        return None
    if type(value) is not int or value < 0:
        raise ProtocolError(BAD_FRAME, f"'{field}' must be a non-negative integer")
    return value



@dataclass(frozen=True, slots=True)
class Hello:
    nick: str
    since: int | None = None
    password: str | None = None
    resume: str | None = None
    v: int = 1                   # 2: rooms and paged catch-up (docs/protocol.md)
    epoch: str | None = None     # the history epoch the client's `since` belongs to
    identity: str | None = None  # the client's identity secret (protocol.moderation)
    admin_password: str | None = None
    admin: bool = False          # set by the door once admin_password checked out; never by a parser


@dataclass(frozen=True, slots=True)
class Say:
    text: str
    ref: str | None = None
    room: str = LOBBY


@dataclass(frozen=True, slots=True)
class SendDirect:
    to: str
    text: str
    ref: str | None = None


@dataclass(frozen=True, slots=True)
class ChangeNick:
    nick: str
    ref: str | None = None


@dataclass(frozen=True, slots=True)
class Ping:
    pass


@dataclass(frozen=True, slots=True)
class Pong:
    pass


@dataclass(frozen=True, slots=True)
class Bye:
    pass


def _parse_hello(f: dict) -> Hello:
    password = f.get("password")
    if password is not None and (type(password) is not str or len(password) > MAX_PASSWORD
                                 or not _is_unicode(password)):
        raise ProtocolError(BAD_FRAME, f"'password' must be a valid Unicode string of at most {MAX_PASSWORD} "
                                       "characters")
    resume = f.get("resume")
    if resume is not None and (type(resume) is not str or not 0 < len(resume) <= 128 or not _is_unicode(resume)):
        raise ProtocolError(BAD_FRAME, "'resume' must be the session string a welcome gave")
    v = f.get("v", 1)
    if v is None:
        v = 1
    if type(v) is not int or v < 1:
        raise ProtocolError(BAD_FRAME, "'v' must be a protocol version number (1 or 2)")
    epoch = f.get("epoch")
    if epoch is not None and (type(epoch) is not str or not 0 < len(epoch) <= MAX_EPOCH or not epoch.isprintable()):
        raise ProtocolError(BAD_FRAME, "'epoch' must be the epoch string a welcome gave")
    admin_password = f.get("admin_password")
    if admin_password is not None and (type(admin_password) is not str or len(admin_password) > MAX_PASSWORD
                                       or not _is_unicode(admin_password)):
        raise ProtocolError(BAD_FRAME, f"'admin_password' must be a valid Unicode string of at most "
                                       f"{MAX_PASSWORD} characters")
    return Hello(check_nick(f.get("nick")), _check_id(f.get("since"), "since"), password, resume,
                 min(v, PROTOCOL_VERSION), epoch, check_identity(f.get("identity")), admin_password)


def _parse_say(f: dict) -> Say:
    ref = _check_ref(f.get("ref"))
    try:
        room = f.get("room")
        return Say(check_text(f.get("text")), ref, LOBBY if room is None else check_room(room))
    except ProtocolError as e:
        raise ProtocolError(e.code, e.message, ref) from None


def _parse_dm(f: dict) -> SendDirect:
    ref = _check_ref(f.get("ref"))
    try:
        to = f.get("to")
        if type(to) is not str:
            raise ProtocolError(BAD_FRAME, "'to' must be the nick of the person to write to")
        return SendDirect(to, check_text(f.get("text")), ref)
    except ProtocolError as e:
        raise ProtocolError(e.code, e.message, ref) from None


def _parse_nick(f: dict) -> ChangeNick:
    ref = _check_ref(f.get("ref"))
    try:
        return ChangeNick(check_nick(f.get("nick")), ref)
    except ProtocolError as e:
        raise ProtocolError(e.code, e.message, ref) from None


@dataclass(frozen=True, slots=True)
class Join:
    room: str
    key: str | None = None
    topic: str | None = None     # used only when the join creates the room
    ref: str | None = None


@dataclass(frozen=True, slots=True)
class Part:
    room: str
    ref: str | None = None


@dataclass(frozen=True, slots=True)
class ListRooms:
    ref: str | None = None


@dataclass(frozen=True, slots=True)
class SetTopic:
    room: str
    topic: str                   # "" clears it
    ref: str | None = None


@dataclass(frozen=True, slots=True)
class HistoryRequest:
    """A page of a room's history (``room``) or of the private conversation
    with a nick (``with_``); ``before`` / ``after`` an id, or neither for
    the newest page; ``limit`` already clamped to 1..MAX_HISTORY_PAGE."""
    room: str | None = None
    with_: str | None = None
    before: int | None = None
    after: int | None = None
    limit: int = HISTORY_PAGE
    ref: str | None = None


@dataclass(frozen=True, slots=True)
class MarkRead:
    room: str
    upto: int



def _check_key(key) -> str | None:
    if key is None:
        return None
    if type(key) is not str or not 0 < len(key) <= MAX_ROOM_KEY or not _is_unicode(key):
        raise ProtocolError(BAD_FRAME, f"'key' must be a string of 1 to {MAX_ROOM_KEY} characters")
    return key


def _with_ref(parse):
    """Wrap a parser so its errors carry the frame's ref."""
    def parser(f: dict):
        ref = _check_ref(f.get("ref"))
        try:
            return parse(f, ref)
        except ProtocolError as e:
            raise ProtocolError(e.code, e.message, ref) from None
    return parser


@_with_ref
def _parse_join(f: dict, ref):
    topic = f.get("topic")
    return Join(check_room(f.get("room")), _check_key(f.get("key")),
                None if topic is None else check_topic(topic), ref)


@_with_ref
def _parse_part(f: dict, ref):
    return Part(check_room(f.get("room")), ref)


@_with_ref
def _parse_rooms(f: dict, ref):
    return ListRooms(ref)


@_with_ref
def _parse_topic(f: dict, ref):
    return SetTopic(check_room(f.get("room")), check_topic(f.get("topic")), ref)


@_with_ref
def _parse_history(f: dict, ref):
    room, with_ = f.get("room"), f.get("with")
    if (room is None) == (with_ is None):
        raise ProtocolError(BAD_FRAME, "a history request names a 'room' or a nick to page 'with', not both")
    before, after = _check_id(f.get("before"), "before"), _check_id(f.get("after"), "after")
    if before is not None and after is not None:
        raise ProtocolError(BAD_FRAME, "a history request pages 'before' an id or 'after' one, not both")
    limit = f.get("limit", HISTORY_PAGE)
    if limit is None:
        limit = HISTORY_PAGE
    if type(limit) is not int or limit < 1:
        raise ProtocolError(BAD_FRAME, "'limit' must be a positive integer")
    if room is not None:
        room = check_room(room)
    elif type(with_) is not str:
        raise ProtocolError(BAD_FRAME, "'with' must be the nick of the other side of the conversation")
    else:
        with_ = check_nick(with_)
    return HistoryRequest(room, with_, before, after, min(limit, MAX_HISTORY_PAGE), ref)


def _parse_read(f: dict) -> MarkRead:
    upto = _check_id(f.get("upto"), "upto")
    if upto is None:
        raise ProtocolError(BAD_FRAME, "'upto' must be the id of the last message read")
    return MarkRead(check_room(f.get("room")), upto)


_CLIENT_PARSERS = {
    "hello": _parse_hello,
    "say": _parse_say,
    "dm": _parse_dm,
    "nick": _parse_nick,
    "ping": lambda f: Ping(),
    "pong": lambda f: Pong(),
    "bye": lambda f: Bye(),
    "join": _parse_join,
    "part": _parse_part,
    "rooms": _parse_rooms,
    "topic": _parse_topic,
    "history": _parse_history,
    "read": _parse_read,
    **{kind: _with_ref(parse) for kind, parse in _MODERATION_PARSERS.items()},
    **{kind: _with_ref(parse) for kind, parse in _FILE_PARSERS.items()},
}
CLIENT_TYPES = frozenset(_CLIENT_PARSERS)


def parse_client(frame: dict):
    """A decoded client frame -> Hello | Say | SendDirect | ChangeNick |
    Ping | Pong | Bye | Join | Part | ListRooms | SetTopic | HistoryRequest |
    MarkRead | Forget | Mod | SetMode | Release | Delete | Edit | Audit |
    Upload | Put | Get, or ProtocolError. Unknown keys are ignored."""
    kind = frame.get("type")
    if type(kind) is not str:
        raise ProtocolError(BAD_FRAME, "frame has no 'type' string")
    parser = _CLIENT_PARSERS.get(kind)
    if parser is None:
        raise ProtocolError(UNKNOWN_TYPE, f"unknown frame type {kind[:40]!r}; expected one of "
                                          + ", ".join(sorted(CLIENT_TYPES)))
    return parser(frame)


def hello_frame(nick: str, since: int | None = None, password: str | None = None,
                resume: str | None = None, epoch: str | None = None, *, v: int | None = None,
                identity: str | None = None, admin_password: str | None = None) -> dict:
    """``epoch``: the welcome's epoch that ``since`` was counted in; ``v``: 2 for rooms;
    ``identity``: the client's identity secret (never to an untrusted TLS certificate)."""
    f = {"type": "hello", "nick": nick}
    if v is not None:
        f["v"] = v
    if since is not None:
        f["since"] = since
    if password is not None:
        f["password"] = password
    if resume is not None:
        f["resume"] = resume
    if epoch is not None:
        f["epoch"] = epoch
    if identity is not None:
        f["identity"] = identity
    if admin_password is not None:
        f["admin_password"] = admin_password
    return f


def say_frame(text: str, ref: str | None = None, room: str | None = None) -> dict:
    f = {"type": "say", "text": text}
    if ref:
        f["ref"] = ref
    if room is not None:
        f["room"] = room
    return f


def dm_request_frame(to: str, text: str, ref: str | None = None) -> dict:
    f = {"type": "dm", "to": to, "text": text}
    if ref:
        f["ref"] = ref
    return f




def join_frame(room: str, key: str | None = None, topic: str | None = None, ref: str | None = None) -> dict:
    return _opt({"type": "join", "room": room}, key=key, topic=topic, ref=ref)


def part_frame(room: str, ref: str | None = None) -> dict:
    return _opt({"type": "part", "room": room}, ref=ref)


def rooms_request_frame(ref: str | None = None) -> dict:
    return _opt({"type": "rooms"}, ref=ref)


def topic_request_frame(room: str, topic: str, ref: str | None = None) -> dict:
    return _opt({"type": "topic", "room": room, "topic": topic}, ref=ref)


def history_request_frame(room: str | None = None, with_: str | None = None, before: int | None = None,
                          after: int | None = None, limit: int | None = None, ref: str | None = None) -> dict:
    return _opt({"type": "history"}, room=room, before=before, after=after, limit=limit, ref=ref,
                **{"with": with_})


def read_frame(room: str, upto: int) -> dict:
    return {"type": "read", "room": room, "upto": upto}

