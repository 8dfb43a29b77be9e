"""IRC lines in and out: parsing, serialising, limits and reassembly (no I/O).

The grammar is RFC 1459/2812 as modern IRC reads it, with IRCv3 message
tags::

    ['@' tags SPACE] [':' source SPACE] command [params] CRLF

- A line is at most 512 bytes *without* its tags, CR LF included (so 510
  bytes of source, command and parameters); the tags part (the '@' and the
  space after it included) is at most 8191 bytes, and a client's own tag
  data at most 4094. A longer line from a client is refused with 417
  (:class:`LineError`), never truncated.
- A line ends with CR LF or a bare LF; blank lines are ignored.
- Text is UTF-8 (the server says ``UTF8ONLY``): a line that is not is
  refused (:class:`LineError` with ``fail="INVALID_UTF8"``) and not relayed.
- Tag values are escaped as the message-tags spec says (:func:`escape_tag`,
  :func:`unescape_tag`); an empty value and a missing one are the same, and
  both read back as ``""``.

:class:`LineReader` reassembles lines from any chunking of the byte stream
with the protocol's linear :class:`~server.protocol.LineDecoder`, so the
work is linear in the bytes fed and memory is bounded by one line.

Thread: pure functions; a :class:`LineReader` belongs to one reader.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field

from ... import protocol as p

MAX_BODY = 512            # bytes of source, command, params and CR LF
MAX_TAGS = 8191           # bytes of '@', the tags and the space after them
MAX_CLIENT_TAG_DATA = 4094  # bytes of tag data a client may send (no '@', no space)
MAX_LINE = MAX_TAGS + MAX_BODY

# Their last parameter is text: always written as a trailing one, as
# servers do, for clients that split a line at " :" rather than parse it.
_TEXT_COMMANDS = frozenset({"PRIVMSG", "NOTICE", "TOPIC"})
_COMMAND = re.compile(r"[A-Za-z]+|[0-9]{3}")
_ESCAPES = {";": "\\:", " ": "\\s", "\\": "\\\\", "\r": "\\r", "\n": "\\n"}
_UNESCAPES = {":": ";", "s": " ", "\\": "\\", "r": "\r", "n": "\n"}


class LineError(Exception):
    """A client's line that cannot be taken: ``numeric`` (e.g. "417") or
    ``fail`` (a standard-replies code such as "INVALID_UTF8") says how to
    answer, ``command`` is the line's command when it could be read, and
    ``text`` is the sentence for the person."""

    def __init__(self, text: str, *, numeric: str | None = None, fail: str | None = None,
                 command: str = "*"):
        super().__init__(text)
        self.text = text
        self.numeric = numeric
        self.fail = fail
        self.command = command


def too_long(command: str = "*") -> LineError:
    return LineError("Input line was too long", numeric="417", command=command)


@dataclass(frozen=True, slots=True)
class Message:
    """One IRC line. ``command`` is upper case (or a three-digit numeric);
    ``tags`` maps a key to its unescaped value ("" for none)."""
    command: str
    params: tuple = ()
    source: str | None = None
    tags: dict = field(default_factory=dict)

    @property
    def text(self) -> str:
        """The last parameter ("" if there is none)."""
        return self.params[-1] if self.params else ""


def escape_tag(value: str) -> str:
    """A tag value as the wire carries it."""
    if not any(ch in value for ch in _ESCAPES):
        return value
    return "".join(_ESCAPES.get(ch, ch) for ch in value)


def unescape_tag(raw: str) -> str:
    """The value of an escaped tag: ``\\:`` is ';', ``\\s`` a space... A
    backslash before any other character is dropped, and so is a lone one
    at the end (as the spec says)."""
    if "\\" not in raw:
        return raw
    out = []
    i, n = 0, len(raw)
    while i < n:
        ch = raw[i]
        if ch == "\\":
            if i + 1 < n:
                nxt = raw[i + 1]
                out.append(_UNESCAPES.get(nxt, nxt))
            i += 2
        else:
            out.append(ch)
            i += 1
    return "".join(out)


def parse_tags(data: str) -> dict:
    """``a=b;c;+d=e`` -> {"a": "b", "c": "", "+d": "e"}; the last of a
    repeated key wins, empty keys are skipped."""
    tags: dict = {}
    for item in data.split(";"):
        key, _, value = item.partition("=")
        if key:
            tags[key] = unescape_tag(value)
    return tags


def parse(line: bytes) -> Message:
    """One line (without its CR LF) -> a :class:`Message`, or :class:`LineError`.

    Refused: a body (all but the tags) over 510 bytes, a tags part over
    8191 bytes or over 4094 bytes of tag data (417); invalid UTF-8
    (``INVALID_UTF8``); a line with no command.
    """
    line = line.rstrip(b"\r")
    tag_data = b""
    body = line
    if line[:1] == b"@":
        space = line.find(b" ")
        if space < 0:
            raise LineError("A line of tags needs a command after them", fail="INVALID_PARAMS")
        tag_data, body = line[1:space], line[space + 1:]
        if space + 1 > MAX_TAGS or len(tag_data) > MAX_CLIENT_TAG_DATA:
            raise too_long(_peek_command(body))
    body = body.lstrip(b" ")
    if len(body) > MAX_BODY - 2:
        raise too_long(_peek_command(body))
    try:
        text = body.decode("utf-8")
        tag_text = tag_data.decode("utf-8")
    except UnicodeDecodeError:
        raise LineError("Message rejected: your IRC software must use UTF-8 on this server",
                        fail="INVALID_UTF8", command=_peek_command(body)) from None
    source = None
    if text.startswith(":"):
        source, _, text = text[1:].partition(" ")
        text = text.lstrip(" ")
    command, _, rest = text.partition(" ")
    if not command:
        raise LineError("A line needs a command", fail="INVALID_PARAMS")
    params = []
    while rest:
        rest = rest.lstrip(" ")
        if not rest:
            break
        if rest[0] == ":":
            params.append(rest[1:])
            break
        param, _, rest = rest.partition(" ")
        params.append(param)
    return Message(command.upper(), tuple(params), source or None, parse_tags(tag_text) if tag_text else {})


def _peek_command(body: bytes) -> str:
    """The command of a line that could not be parsed, for the error (or "*")."""
    words = body.lstrip(b" ").split(b" ", 2)
    word = words[1] if words[0].startswith(b":") and len(words) > 1 else words[0]
    try:
        word = word.decode("ascii")
    except UnicodeDecodeError:
        return "*"
    return word.upper() if word.isalnum() and len(word) <= 32 else "*"


def serialise(msg: Message) -> bytes:
    """A :class:`Message` -> one line with CR LF. Raises ValueError for what
    the wire cannot carry: CR, LF or NUL anywhere, a command that is not
    letters or three digits, a space or a leading ':' in a parameter other
    than the last, an empty middle parameter, a body over 512 bytes (see
    :func:`fit`) or tags over 8191."""
    body = serialise_body(msg)
    if len(body) + 2 > MAX_BODY:
        raise ValueError(f"IRC line of {len(body) + 2} bytes is over {MAX_BODY}: {body[:60]!r}...")
    if not msg.tags:
        return body + b"\r\n"
    tags = serialise_tags(msg.tags)
    if len(tags) + 2 > MAX_TAGS:
        raise ValueError(f"IRC tags of {len(tags) + 2} bytes are over {MAX_TAGS}")
    return b"@" + tags + b" " + body + b"\r\n"


def serialise_tags(tags: dict) -> bytes:
    parts = []
    for key, value in tags.items():
        if not key or any(ch in key for ch in " ;=\r\n\0"):
            raise ValueError(f"bad tag key {key!r}")
        if "\0" in value:
            raise ValueError(f"tag {key!r} holds a NUL")
        parts.append(f"{key}={escape_tag(value)}" if value else key)
    return ";".join(parts).encode("utf-8")


def serialise_body(msg: Message) -> bytes:
    """Source, command and parameters, without tags or CR LF."""
    out = []
    if msg.source:
        _check_word(msg.source, "source")
        out.append(":" + msg.source)
    if not _COMMAND.fullmatch(msg.command):
        raise ValueError(f"bad IRC command {msg.command!r}: letters or three digits")
    out.append(msg.command)
    params = msg.params
    for i, param in enumerate(params):
        if type(param) is not str:
            raise ValueError(f"IRC parameter {param!r} is not a string")
        if any(ch in param for ch in "\r\n\0"):
            raise ValueError(f"IRC parameter holds CR, LF or NUL: {param[:40]!r}")
        if i == len(params) - 1:
            text = msg.command in _TEXT_COMMANDS and len(params) > 1
            out.append(":" + param if (text or not param or " " in param or param[0] == ":") else param)
        else:
            _check_word(param, "middle parameter")
            out.append(param)
    return " ".join(out).encode("utf-8")


def middle(text: str, limit: int = 64) -> str:
    """``text`` made safe as a middle parameter of a reply (a numeric's
    nick or channel echoed back, a FAIL's context): no spaces, no leading
    ':', not empty, at most ``limit`` bytes. What a client sent may be
    none of these, and an unserialisable reply must not end its connection."""
    text = "".join("_" if ch in " \r\n\0" else ch for ch in text).lstrip(":")
    text = truncate_utf8(text.encode("utf-8"), limit).decode("utf-8")
    return text or "*"


def _check_word(word: str, what: str) -> None:
    if not word or word[0] == ":" or any(ch in word for ch in " \r\n\0"):
        raise ValueError(f"bad IRC {what} {word!r}")


def fit(msg: Message) -> Message:
    """The message with its last parameter shortened, at a UTF-8 character
    boundary, so that its body fits in 512 bytes (topics and other texts
    that IRC cannot carry whole)."""
    over = len(serialise_body(msg)) + 2 - MAX_BODY
    if over <= 0:
        return msg
    last = msg.params[-1].encode("utf-8")
    cut = truncate_utf8(last, max(0, len(last) - over))
    return Message(msg.command, msg.params[:-1] + (cut.decode("utf-8"),), msg.source, msg.tags)


def truncate_utf8(data: bytes, limit: int) -> bytes:
    """The longest prefix of UTF-8 ``data`` of at most ``limit`` bytes that
    ends on a character boundary."""
    if len(data) <= limit:
        return data
    end = limit
    while end > 0 and (data[end] & 0xC0) == 0x80:   # a continuation byte: inside a character
        end -= 1
    return data[:end]


class LineReader:
    """Bytes from a client -> its lines (bytes without CR LF), or a
    :class:`LineError` (417) in place of a line longer than tags and body
    together may be. Any chunking gives the same lines as one feed."""

    __slots__ = ("_decoder",)

    def __init__(self):
        self._decoder = p.LineDecoder(MAX_LINE)   # CR LF included, as the limits count them

    @property
    def pending(self) -> int:
        return self._decoder.pending

    def feed(self, data: bytes) -> list:
        out = []
        for item in self._decoder.feed(data):
            if isinstance(item, p.ProtocolError):
                out.append(too_long())
            else:
                item = item.rstrip(b"\r")
                if item.strip():
                    out.append(item)
        return out
