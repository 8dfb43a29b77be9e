"""Server -> client frames: their builders, the events a client reads, their parsers."""
from __future__ import annotations

from dataclasses import dataclass

from .client_frames import Ping, Pong
from .errors import BAD_FRAME, ProtocolError
from .files import SERVER_PARSERS as _FILE_PARSERS, parse_file
from .framing import _opt
from .names import LOBBY


def message_frame(id: int, ts: float, sender: str, text: str, ref: str | None = None,
                  room: str | None = None) -> dict:
    f = {"type": "message", "id": id, "ts": ts, "from": sender, "text": text}
    if room is not None:
        f["room"] = room
    if ref is not None:
        f["ref"] = ref
    return f


def dm_frame(id: int, ts: float, sender: str, to: str, text: str, ref: str | None = None) -> dict:
    f = {"type": "dm", "id": id, "ts": ts, "from": sender, "to": to, "text": text}
    if ref is not None:
        f["ref"] = ref
    return f


def room_frame(room: str, topic: str, users, last_id: int, read: int, key: bool,
               ref: str | None = None) -> dict:
    return _opt({"type": "room", "room": room, "topic": topic, "users": list(users), "last_id": last_id,
                 "read": read, "key": key}, ref=ref)


def topic_frame(room: str, topic: str, by: str, id: int, ts: float, ref: str | None = None) -> dict:
    return _opt({"type": "topic", "room": room, "topic": topic, "by": by, "id": id, "ts": ts}, ref=ref)


def joined_frame(nick: str, room: str = LOBBY) -> dict:
    return {"type": "joined", "room": room, "nick": nick}


def left_frame(nick: str, reason: str, room: str = LOBBY, ref: str | None = None) -> dict:
    return _opt({"type": "left", "room": room, "nick": nick, "reason": reason}, ref=ref)


def rooms_frame(rooms, ref: str | None = None) -> dict:
    """``rooms``: dicts with room, topic, users (a count), last_id and key (a bool)."""
    return _opt({"type": "rooms", "rooms": list(rooms)}, ref=ref)


def history_frame(messages, more: bool, room: str | None = None, with_: str | None = None,
                  ref: str | None = None) -> dict:
    return _opt({"type": "history", "messages": list(messages), "more": more}, room=room, ref=ref,
                **{"with": with_})


def replay_frame(frames) -> dict:
    return {"type": "replay", "frames": list(frames)}


def caught_up_frame(last_id: int) -> dict:
    return {"type": "caught_up", "last_id": last_id}


REPLAY_MAX_FRAMES = 500            # entries in one replay frame
REPLAY_MAX_BYTES = 1024 * 1024     # and encoded bytes of them


@dataclass(frozen=True, slots=True)
class Message:
    id: int
    ts: float
    sender: str
    text: str
    ref: str | None = None
    room: str = LOBBY
    file: object = None     # a FileInfo when the message announces a file (protocol.files)


@dataclass(frozen=True, slots=True)
class Direct:
    id: int
    ts: float
    sender: str
    to: str
    text: str
    ref: str | None = None
    file: object = None     # a FileInfo when the dm announces a private file


@dataclass(frozen=True, slots=True)
class Welcome:
    nick: str
    users: tuple
    history: tuple       # of Message | Direct, oldest first (v1; empty in v2)
    last_id: int
    session: str | None = None
    missed: int = 0      # messages after `since` too old to replay (v1 servers before rooms)
    epoch: str | None = None   # the identity of the server's history
    reset: bool = False  # the hello's `since` does not belong to this history: start over
    protocol: int = 1
    replay: bool = False  # v2: room frames, replay frames and caught_up follow
    rooms: tuple = ()     # v2: the rooms this connection is in


@dataclass(frozen=True, slots=True)
class Joined:
    nick: str
    room: str = LOBBY


@dataclass(frozen=True, slots=True)
class Left:
    nick: str
    reason: str
    room: str = LOBBY


@dataclass(frozen=True, slots=True)
class Renamed:
    old: str
    new: str


@dataclass(frozen=True, slots=True)
class ServerError:
    code: str
    message: str
    ref: str | None = None


@dataclass(frozen=True, slots=True)
class Notice:
    code: str
    text: str


@dataclass(frozen=True, slots=True)
class RoomInfo:
    """A ``room`` frame: the answer to a join, and one per room after a v2 welcome."""
    room: str
    topic: str
    users: tuple
    last_id: int = 0
    read: int = 0
    key: bool = False
    ref: str | None = None


@dataclass(frozen=True, slots=True)
class Topic:
    room: str
    topic: str
    by: str
    id: int | None = None
    ts: float | None = None
    ref: str | None = None


@dataclass(frozen=True, slots=True)
class RoomSummary:
    room: str
    topic: str
    users: int
    last_id: int
    key: bool


@dataclass(frozen=True, slots=True)
class RoomList:
    rooms: tuple            # of RoomSummary
    ref: str | None = None


@dataclass(frozen=True, slots=True)
class HistoryPage:
    room: str | None        # the room paged, or None for a private conversation
    with_: str | None       # the other side of a private conversation
    messages: tuple         # Message | Direct (| Topic), oldest first
    more: bool
    ref: str | None = None


@dataclass(frozen=True, slots=True)
class Replay:
    """Part of a v2 catch-up: events as they were sent live, oldest first."""
    events: tuple


@dataclass(frozen=True, slots=True)
class CaughtUp:
    last_id: int


@dataclass(frozen=True, slots=True)
class Unknown:
    """A frame type this client does not know: newer servers may send it."""
    frame: dict


def _req(f: dict, key: str, kind):
    v = f.get(key)
    if type(v) is not kind and not (kind is float and type(v) is int):
        raise ProtocolError(BAD_FRAME, f"server frame {f.get('type')!r} has no valid {key!r}")
    if kind is float and type(v) is int:
        try:
            return float(v)
        except OverflowError:   # an int too big for a float
            raise ProtocolError(BAD_FRAME, f"server frame {f.get('type')!r} has no valid {key!r}") from None
    return v


def _opt_ref(f: dict):
    ref = f.get("ref")
    return ref if type(ref) is str else None


def _opt_room(f: dict) -> str:
    room = f.get("room")
    return room if type(room) is str else LOBBY


def _str(value) -> str:
    """An optional text field of a server frame: anything but a string counts as empty."""
    return value if type(value) is str else ""


def _parse_message(f: dict):
    file = f.get("file")
    if file is not None:
        file = parse_file(file)
    if f.get("type") == "dm":
        return Direct(_req(f, "id", int), float(_req(f, "ts", float)), _req(f, "from", str),
                      _req(f, "to", str), _req(f, "text", str), _opt_ref(f), file)
    return Message(_req(f, "id", int), float(_req(f, "ts", float)), _req(f, "from", str),
                   _req(f, "text", str), _opt_ref(f), _opt_room(f), file)


def _parse_welcome(f: dict) -> Welcome:
    users = _req(f, "users", list)
    history = _req(f, "history", list)
    if not all(type(u) is str for u in users):
        raise ProtocolError(BAD_FRAME, "welcome 'users' must be strings")
    items = []
    for h in history:
        if type(h) is not dict:
            raise ProtocolError(BAD_FRAME, "welcome 'history' must hold message objects")
        items.append(_parse_message(h))
    session = f.get("session")
    missed = f.get("missed", 0)
    version = f.get("protocol", 1)
    rooms = f.get("rooms", [])
    rooms = tuple(r for r in rooms if type(r) is str) if type(rooms) is list else ()
    epoch = f.get("epoch")
    return Welcome(_req(f, "nick", str), tuple(users), tuple(items), _req(f, "last_id", int),
                   session if type(session) is str else None, missed if type(missed) is int else 0,
                   epoch=epoch if type(epoch) is str else None, reset=f.get("reset") is True,
                   protocol=version if type(version) is int else 1, replay=f.get("replay") is True,
                   rooms=rooms)


def _parse_room(f: dict) -> RoomInfo:
    users = _req(f, "users", list)
    if not all(type(u) is str for u in users):
        raise ProtocolError(BAD_FRAME, "room 'users' must be strings")
    return RoomInfo(_req(f, "room", str), _str(f.get("topic")), tuple(users), _opt_int(f, "last_id"),
                    _opt_int(f, "read"), f.get("key") is True, _opt_ref(f))


def _parse_topic_frame(f: dict) -> Topic:
    ts = f.get("ts")
    return Topic(_req(f, "room", str), _str(f.get("topic")), _str(f.get("by")),
                 f.get("id") if type(f.get("id")) is int else None,
                 float(_req(f, "ts", float)) if ts is not None else None, _opt_ref(f))


def _parse_rooms_frame(f: dict) -> RoomList:
    out = []
    for r in _req(f, "rooms", list):
        if type(r) is not dict or type(r.get("room")) is not str:
            raise ProtocolError(BAD_FRAME, "rooms 'rooms' must hold objects with a 'room' name")
        out.append(RoomSummary(r["room"], _str(r.get("topic")), _opt_int(r, "users"), _opt_int(r, "last_id"),
                               r.get("key") is True))
    return RoomList(tuple(out), _opt_ref(f))


def _events(items, what: str) -> tuple:
    """Stored events inside a history or replay frame. Entries of kinds this
    client does not know come back as Unknown; malformed known ones raise."""
    if type(items) is not list:
        raise ProtocolError(BAD_FRAME, f"{what} must be a list")
    out = []
    for item in items:
        if type(item) is not dict:
            raise ProtocolError(BAD_FRAME, f"{what} must hold frame objects")
        kind = item.get("type")
        if kind in ("message", "dm"):
            out.append(_parse_message(item))
        elif kind == "topic":
            out.append(_parse_topic_frame(item))
        else:
            out.append(Unknown(item))
    return tuple(out)


def _parse_history_frame(f: dict) -> HistoryPage:
    room, with_ = f.get("room"), f.get("with")
    if type(room) is not str and type(with_) is not str:
        raise ProtocolError(BAD_FRAME, "a history frame names its 'room' or 'with'")
    return HistoryPage(room if type(room) is str else None, with_ if type(with_) is str else None,
                       _events(_req(f, "messages", list), "history 'messages'"), f.get("more") is True,
                       _opt_ref(f))


def _opt_int(f: dict, key: str) -> int:
    v = f.get(key)
    return v if type(v) is int and v >= 0 else 0


_SERVER_PARSERS = {
    "welcome": _parse_welcome,
    "message": _parse_message,
    "dm": _parse_message,
    "joined": lambda f: Joined(_req(f, "nick", str), _opt_room(f)),
    "left": lambda f: Left(_req(f, "nick", str), _str(f.get("reason")), _opt_room(f)),
    "renamed": lambda f: Renamed(_req(f, "old", str), _req(f, "new", str)),
    "pong": lambda f: Pong(),
    "ping": lambda f: Ping(),
    "error": lambda f: ServerError(_req(f, "code", str), _str(f.get("message")), _opt_ref(f)),
    "notice": lambda f: Notice(_str(f.get("code")), _req(f, "text", str)),
    "room": _parse_room,
    "topic": _parse_topic_frame,
    "rooms": _parse_rooms_frame,
    "history": _parse_history_frame,
    "replay": lambda f: Replay(_events(_req(f, "frames", list), "replay 'frames'")),
    "caught_up": lambda f: CaughtUp(_req(f, "last_id", int)),
    **_FILE_PARSERS,
}


def parse_server(frame: dict):
    """A decoded server frame -> an event object; unknown types -> Unknown."""
    kind = frame.get("type")
    parser = _SERVER_PARSERS.get(kind) if type(kind) is str else None
    if parser is None:
        return Unknown(frame)
    return parser(frame)
