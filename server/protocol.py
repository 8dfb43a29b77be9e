"""Natter wire protocol v1: JSON Lines over TCP, with no I/O.

Both the server and the client import this module. It knows framing,
limits and validation; it knows nothing of sockets, threads or Tk, so every
rule here is tested without a network (see ``docs/protocol.md``).

Bytes go in through :class:`LineDecoder` and :func:`decode_frame`, which
give dicts; :func:`parse_client` and :func:`parse_server` turn those dicts
into frozen event objects or raise :class:`ProtocolError` with a code and a
sentence for a person. Frames go out through :func:`encode` and the small
builders below.

Thread: everything here is pure and safe to call from any thread; a
:class:`LineDecoder` belongs to one reader.
"""
from __future__ import annotations

import bisect
import json
import unicodedata
from dataclasses import dataclass

PROTOCOL_VERSION = 2          # the newest this module speaks; a hello without "v" is v1
LOBBY = "lobby"               # the room that always exists
DEFAULT_PORT = 30000
MAX_LINE = 64 * 1024          # client -> server frame, newline included
MAX_SERVER_LINE = 64 * 1024 * 1024  # server -> client (a welcome carries history)
MAX_NICK = 32
MAX_REF = 64
MAX_PASSWORD = 1024
MAX_EPOCH = 64

# Error codes. The first eleven are the v1 contract; the rest extend it.
BAD_JSON = "bad_json"
BAD_FRAME = "bad_frame"
TOO_LONG = "too_long"
UNKNOWN_TYPE = "unknown_type"
NOT_WELCOMED = "not_welcomed"
NICK_TAKEN = "nick_taken"
BAD_NICK = "bad_nick"
RATE_LIMITED = "rate_limited"
NO_SUCH_USER = "no_such_user"
AUTH_FAILED = "auth_failed"
SERVER_FULL = "server_full"
BAD_TEXT = "bad_text"
ALREADY_WELCOMED = "already_welcomed"
TOO_MANY_ERRORS = "too_many_errors"
TIMEOUT = "timeout"
TOO_SLOW = "too_slow"
TOO_MANY_CONNECTIONS = "too_many_connections"
SHUTDOWN = "shutdown"
TLS_REQUIRED = "tls_required"
# Rooms (v2)
BAD_ROOM = "bad_room"
BAD_KEY = "bad_key"
TOO_MANY_ROOMS = "too_many_rooms"
NOT_IN_ROOM = "not_in_room"

MAX_ROOM = 32
MAX_TOPIC = 300
MAX_ROOM_KEY = 128
HISTORY_PAGE = 50            # a history request's default limit
MAX_HISTORY_PAGE = 200       # and its cap

# Characters a message text may not carry: C0 and C1 controls other than tab
# and newline, and DEL. They can rewrite a terminal or fake a line break.
_ALLOWED_CONTROLS = {"\t", "\n"}


class ProtocolError(Exception):
    """A frame broke the protocol.

    ``code`` is one of the constants above, ``message`` a sentence a person
    can act on. ``ref`` is the offending frame's ``ref`` when it had one, so
    a client can tell which of its messages was refused.
    """

    def __init__(self, code: str, message: str, ref: str | None = None):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.ref = ref

    def frame(self) -> dict:
        return error_frame(self.code, self.message, self.ref)


# --------------------------------------------------------------------------
# Framing


class LineDecoder:
    """Split a byte stream into lines of at most ``max_line`` bytes.

    :meth:`feed` takes any chunk and returns the complete lines it finished
    (without the newline), in order, with a :class:`ProtocolError`
    (``too_long``) in place of each line that was over the limit. An
    over-long line is skipped up to its newline without being buffered, so
    memory stays bounded by ``max_line`` whatever the peer sends. Blank
    lines are dropped (they are harmless keep-alives).

    The work is linear in the bytes fed, however the stream is cut (as
    h11's receive buffer): the partial line waits in a ``bytearray`` that
    only grows at its end, and only the new bytes are searched for
    newlines, since the bytes before them held none.
    """

    __slots__ = ("max_line", "_buf", "_skipping")

    def __init__(self, max_line: int = MAX_LINE):
        if max_line < 2:
            raise ValueError("max_line must be at least 2")
        self.max_line = max_line
        self._buf = bytearray()
        self._skipping = False

    @property
    def pending(self) -> int:
        """Bytes held of a line not yet finished."""
        return len(self._buf)

    def feed(self, data: bytes) -> list:
        if type(data) is not bytes:
            data = bytes(data)
        if self._skipping:
            nl = data.find(b"\n")
            if nl < 0:
                return []
            data = data[nl + 1:]
            self._skipping = False
        buf = self._buf
        last = data.rfind(b"\n")      # scans back from the end: only the new bytes
        if last < 0:
            buf += data                # the partial line grows at its end
            lines = ()
        else:
            if buf:                    # its line ends here: copied once, now
                last += len(buf)
                data = bytes(buf) + data
                buf.clear()
            lines = data[:last].split(b"\n")
            buf += data[last + 1:]
        limit = self.max_line - 1      # the newline counts toward the limit
        out: list = []
        for line in lines:
            if len(line) > limit:
                out.append(_too_long(self.max_line))
            elif line.strip():
                out.append(line)
        if len(buf) > limit:
            out.append(_too_long(self.max_line))
            self._skipping = True
            buf.clear()
        return out


def _too_long(limit: int) -> ProtocolError:
    return ProtocolError(TOO_LONG, f"frame is longer than {limit} bytes; it was skipped")


def _reject_constant(name: str):
    raise ValueError(f"{name} is not valid JSON")


_decoder = json.JSONDecoder(parse_constant=_reject_constant)
_encoder = json.JSONEncoder(ensure_ascii=False, separators=(",", ":"), allow_nan=False,
                            check_circular=False)


def decode_frame(line: bytes) -> dict:
    """One line (no newline) -> a dict, or ProtocolError bad_json/bad_frame."""
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as e:
        raise ProtocolError(BAD_JSON, f"frame is not valid UTF-8 (byte {e.start})") from None
    try:
        obj = _decoder.decode(text)
    except RecursionError:
        raise ProtocolError(BAD_JSON, "frame is nested too deeply") from None
    except ValueError as e:
        raise ProtocolError(BAD_JSON, f"frame is not valid JSON ({_first_line(e)})") from None
    if type(obj) is not dict:
        raise ProtocolError(BAD_FRAME, f"a frame must be a JSON object, not {_json_kind(obj)}")
    return obj


def encode(frame: dict) -> bytes:
    """A frame dict -> one UTF-8 JSON line ending in a newline."""
    return (_encoder.encode(frame) + "\n").encode("utf-8")


def _first_line(e: Exception) -> str:
    return str(e).splitlines()[0][:120]


def _json_kind(obj) -> str:
    return {list: "an array", str: "a string", int: "a number", float: "a number",
            bool: "a boolean", type(None): "null"}.get(type(obj), type(obj).__name__)


# --------------------------------------------------------------------------
# Field rules


def check_nick(nick) -> str:
    """Return the nick in NFC form, or raise ProtocolError(bad_nick).

    1 to 32 characters: letters of any script, combining marks after the
    first character, digits, ``_`` and ``-``, and none of Unicode's
    default-ignorable code points (variation selectors, joiners, Hangul
    fillers...), which draw nothing. The letters come from one
    script, or Latin with Chinese, Japanese or Korean (Unicode TR39's
    "highly restrictive" level), so a Cyrillic 'а' cannot pose as a Latin
    'a' inside a nick.
    """
    if type(nick) is not str:
        raise ProtocolError(BAD_NICK, "nick must be a string")
    nick = unicodedata.normalize("NFC", nick)
    if not nick:
        raise ProtocolError(BAD_NICK, "nick is empty")
    if len(nick) > MAX_NICK:
        raise ProtocolError(BAD_NICK, f"nick is longer than {MAX_NICK} characters")
    for i, ch in enumerate(nick):
        if is_default_ignorable(ch):
            raise ProtocolError(BAD_NICK, f"nick may not hold {_describe(ch)}: it is invisible, so the nick "
                                          "would look like another one")
        cat = unicodedata.category(ch)
        if ch in "_-" or cat in ("Lu", "Ll", "Lt", "Lm", "Lo", "Nd"):
            continue
        if cat in ("Mn", "Mc") and i > 0:
            continue
        shown = ch if ch.isprintable() and not ch.isspace() else f"U+{ord(ch):04X}"
        raise ProtocolError(BAD_NICK, f"nick may hold letters, digits, '_' and '-' only, not {shown!r}")
    scripts = {_script(ch) for ch in nick if unicodedata.category(ch)[0] == "L"} - {None}
    if len(scripts) > 1:
        others = scripts - _CJK
        if not (scripts & _CJK and others <= {"LATIN"}):
            names = " and ".join(sorted(w.title() for w in scripts))
            raise ProtocolError(BAD_NICK, f"nick mixes {names} letters, which can imitate another nick; "
                                          "use one alphabet")
    return nick


_CJK = frozenset({"HAN", "HIRAGANA", "KATAKANA", "HANGUL", "BOPOMOFO"})

# Default_Ignorable_Code_Point (Unicode DerivedCoreProperties.txt, 15.1),
# inclusive ranges. It holds the four Hangul fillers (U+115F, U+1160,
# U+3164, U+FFA0), which are letters (Lo) that draw as blank space.
_IGNORABLE = (
    (0x00AD, 0x00AD), (0x034F, 0x034F), (0x061C, 0x061C), (0x115F, 0x1160), (0x17B4, 0x17B5),
    (0x180B, 0x180F), (0x200B, 0x200F), (0x202A, 0x202E), (0x2060, 0x206F), (0x3164, 0x3164),
    (0xFE00, 0xFE0F), (0xFEFF, 0xFEFF), (0xFFA0, 0xFFA0), (0xFFF0, 0xFFF8), (0x1BCA0, 0x1BCA3),
    (0x1D173, 0x1D17A), (0xE0000, 0xE0FFF),
)
_IGNORABLE_STARTS = tuple(lo for lo, _ in _IGNORABLE)


def is_default_ignorable(ch: str) -> bool:
    """True for a Default_Ignorable_Code_Point: a character that renders as
    nothing when a font has no glyph for it."""
    cp = ord(ch)
    i = bisect.bisect_right(_IGNORABLE_STARTS, cp) - 1
    return i >= 0 and cp <= _IGNORABLE[i][1]


def _describe(ch: str) -> str:
    name = unicodedata.name(ch, "")
    return f"U+{ord(ch):04X} ({name})" if name else f"U+{ord(ch):04X}"


def _script(ch: str) -> str | None:
    """The script of a letter (None: a letter of no script), from its Unicode name (after NFKC, so
    fullwidth and mathematical forms count as the letter they imitate)."""
    base = unicodedata.normalize("NFKC", ch)[:1] or ch
    try:
        word = unicodedata.name(base).split(" ", 1)[0]
    except ValueError:
        return "UNKNOWN"
    if word in ("CJK", "IDEOGRAPHIC", "MASU"):   # 々 and 〆 are in everyday Japanese names (佐々木)
        return "HAN"
    if word in ("MODIFIER", "COMBINING", "SPACE"):
        return None   # script-neutral (Unicode's Common/Inherited): the ʻokina of Hawaiʻi, halfwidth ﾞ
    if word.startswith("KATAKANA") or word.startswith("HIRAGANA"):
        return word.split("-", 1)[0]
    return word


def check_room(room) -> str:
    """Return a room name in NFC form, or raise ProtocolError(bad_room).

    The same characters and one-script rule as nicks (:func:`check_nick`),
    1 to 32 characters, with no leading '#' (the window shows one; the wire
    carries the bare name).
    """
    if type(room) is not str:
        raise ProtocolError(BAD_ROOM, "'room' must be a room name (a string)")
    if room.startswith("#"):
        raise ProtocolError(BAD_ROOM, f"room names are sent without the '#': use {room.lstrip('#')[:40]!r}")
    try:
        return check_nick(room)
    except ProtocolError as e:
        raise ProtocolError(BAD_ROOM, e.message.replace("nick", "room name", 1)) from None


def room_key(room: str) -> str:
    """The identity of a room name: names with equal keys are one room (as :func:`nick_key`)."""
    return nick_key(room)


def nick_key(nick: str) -> str:
    """The identity of a nick: nicks with equal keys collide.

    NFKC folds look-alike compatibility forms (fullwidth letters, ligatures,
    superscripts) and casefold folds case, so 'Ｂｏｂ', 'BOB' and 'bob' are
    one nick.
    """
    return unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", nick).casefold())


def check_text(text, field: str = "text") -> str:
    """Return text if it is a non-blank string with no forbidden controls."""
    if type(text) is not str:
        raise ProtocolError(BAD_FRAME, f"'{field}' must be a string")
    if not text.strip():
        raise ProtocolError(BAD_TEXT, f"'{field}' is empty")
    if not text.isprintable():
        for ch in text:
            if ch.isprintable() or ch in _ALLOWED_CONTROLS or ch == " ":
                continue
            cat = unicodedata.category(ch)
            if cat == "Cs":
                raise ProtocolError(BAD_TEXT, f"'{field}' holds a lone surrogate; it is not valid Unicode")
            if cat == "Cc":
                raise ProtocolError(BAD_TEXT, f"'{field}' holds control character U+{ord(ch):04X}; "
                                              "only tab and newline are allowed")
            # Other non-printables (format characters, separators, private
            # use, unassigned) are text: the client shows them safely.
    return text


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


# --------------------------------------------------------------------------
# Client -> server


@dataclass(frozen=True, slots=True)
class Hello:
    nick: str
    since: int | None = None
    password: str | None = None
    resume: str | None = None
    v: int = 1                   # 2: rooms and paged catch-up (docs/protocol.md)
    epoch: str | None = None     # the history epoch the client's `since` belongs to


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
    return Hello(check_nick(f.get("nick")), _check_id(f.get("since"), "since"), password, resume,
                 min(v, PROTOCOL_VERSION), epoch)


def _is_unicode(s: str) -> bool:
    """False for a str holding a lone surrogate (JSON "\\ud800" gives one):
    it cannot be encoded to UTF-8, so it cannot be hashed or compared."""
    try:
        s.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


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


def check_topic(topic) -> str:
    """A topic: a string of at most MAX_TOPIC characters, one line, no
    control characters; "" clears the topic."""
    if type(topic) is not str:
        raise ProtocolError(BAD_FRAME, "'topic' must be a string")
    if len(topic) > MAX_TOPIC:
        raise ProtocolError(BAD_TEXT, f"a topic is at most {MAX_TOPIC} characters")
    if "\n" in topic or "\t" in topic:
        raise ProtocolError(BAD_TEXT, "a topic is one line: no newline or tab")
    if topic.strip():
        check_text(topic, "topic")
    return topic.strip()


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
}
CLIENT_TYPES = frozenset(_CLIENT_PARSERS)


def parse_client(frame: dict):
    """A decoded client frame -> Hello | Say | SendDirect | ChangeNick |
    Ping | Pong | Bye | Join | Part | ListRooms | SetTopic | HistoryRequest |
    MarkRead, or ProtocolError. Unknown keys are ignored."""
    kind = frame.get("type")
    if type(kind) is not str:
        raise ProtocolError(BAD_FRAME, "frame has no 'type' string")
    parser = _CLIENT_PARSERS.get(kind)
    if parser is None:
        raise ProtocolError(UNKNOWN_TYPE, f"unknown frame type {kind[:40]!r}; expected one of "
                                          + ", ".join(sorted(CLIENT_TYPES)))
    return parser(frame)


def hello_frame(nick: str, since: int | None = None, password: str | None = None,
                resume: str | None = None, epoch: str | None = None, *, v: int | None = None) -> dict:
    """``epoch``: the welcome's epoch that ``since`` was counted in; ``v``: 2 for rooms."""
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


def _opt(f: dict, **fields) -> dict:
    """f with the fields that are not None."""
    for k, v in fields.items():
        if v is not None:
            f[k] = v
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


# --------------------------------------------------------------------------
# Server -> client


def error_frame(code: str, message: str, ref: str | None = None) -> dict:
    f = {"type": "error", "code": code, "message": message}
    if ref is not None:
        f["ref"] = ref
    return f


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


@dataclass(frozen=True, slots=True)
class Direct:
    id: int
    ts: float
    sender: str
    to: str
    text: str
    ref: str | None = None


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
    if f.get("type") == "dm":
        return Direct(_req(f, "id", int), float(_req(f, "ts", float)), _req(f, "from", str),
                      _req(f, "to", str), _req(f, "text", str), _opt_ref(f))
    return Message(_req(f, "id", int), float(_req(f, "ts", float)), _req(f, "from", str),
                   _req(f, "text", str), _opt_ref(f), _opt_room(f))


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
}


def parse_server(frame: dict):
    """A decoded server frame -> an event object; unknown types -> Unknown."""
    kind = frame.get("type")
    parser = _SERVER_PARSERS.get(kind) if type(kind) is str else None
    if parser is None:
        return Unknown(frame)
    return parser(frame)
