"""Files and pictures (issue 12): the offer, the transfer lines, the ``file`` object.

On the chat connection a client offers a file with ``upload`` (parsed by
:func:`server.protocol.parse_client` through :data:`PARSERS`) and the
server answers ``upload_ready``. The bytes travel on a *second connection
to the same port*: its first line is ``put`` or ``get`` (the same parser
table), answered by one line, ``put_ok`` or ``blob`` (or an error), and raw
bytes. A finished upload is announced as a ``message`` (or ``dm``) carrying
a ``file`` object (:func:`file_object`, read back by :func:`parse_file`).
See docs/protocol.md, section 13.

Nothing here decodes a thumbnail: it is checked to be base64 text that
starts like a PNG, no longer than :data:`MAX_THUMB_B64`; the client that
shows it decodes it with its own limits.

Thread: pure, any thread.
"""
from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import BAD_FRAME, ProtocolError
from .framing import _opt
from .names import LOBBY, check_nick, check_room, is_unicode

# Error codes of issue 12 (``forbidden`` is issue 11's, in .moderation).
FILE_TOO_LARGE = "file_too_large"
QUOTA_FULL = "quota_full"
BAD_FILE = "bad_file"
NO_SUCH_FILE = "no_such_file"

MAX_FILE_NAME = 255                  # characters of a file's name (metadata only)
MAX_MIME = 127
MAX_THUMB = 32 * 1024                # bytes of the thumbnail's PNG
MAX_THUMB_B64 = 4 * ((MAX_THUMB + 2) // 3)   # ... as base64 text
DEFAULT_MAX_FILE_SIZE = 100 * 1024 * 1024
MAX_FILE_SIZE = 1 << 50              # what a frame may say at all; servers cap far lower
DEFAULT_MIME = "application/octet-stream"
PNG_B64_START = "iVBORw0KGgo"        # base64 of the PNG signature: checked without decoding

_FID = re.compile(r"[A-Za-z0-9_-]{1,64}\Z")
_HEX64 = re.compile(r"[0-9a-fA-F]{64}\Z")
_MIME = re.compile(r"[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,62}/[A-Za-z0-9][A-Za-z0-9!#$&^_.+-]{0,62}\Z")
_B64 = re.compile(r"[A-Za-z0-9+/]*={0,2}\Z")
_MAX_TOKEN = 128


# -- checks -------------------------------------------------------------------


def check_file_id(value, field: str = "file") -> str:
    if type(value) is not str or not _FID.match(value):
        raise ProtocolError(BAD_FRAME, f"'{field}' must be a file id as upload_ready gave it")
    return value


def check_file_name(name) -> str:
    """A file's name: 1 to 255 characters, no control characters. It is
    only metadata: a name like ``../../etc/passwd`` is harmless (stored
    files are named by id)."""
    if type(name) is not str or not 0 < len(name) <= MAX_FILE_NAME or not name.strip():
        raise ProtocolError(BAD_FRAME, f"'name' must be a file name of 1 to {MAX_FILE_NAME} characters")
    if not name.isprintable() or not is_unicode(name):
        raise ProtocolError(BAD_FRAME, "'name' must not hold control characters (a newline, a tab...)")
    return name


def check_sha256(value) -> str:
    if type(value) is not str or not _HEX64.match(value):
        raise ProtocolError(BAD_FRAME, "'sha256' must be the file's SHA-256 as 64 hex digits")
    return value.lower()


def check_mime(value) -> str:
    if value is None:
        return DEFAULT_MIME
    if type(value) is not str or not _MIME.match(value):
        raise ProtocolError(BAD_FRAME, "'mime' must be a media type such as image/png or application/pdf")
    return value.lower()


def check_size(value, field: str = "size") -> int:
    if type(value) is not int or not 0 <= value <= MAX_FILE_SIZE:
        raise ProtocolError(BAD_FRAME, f"'{field}' must be a number of bytes (a non-negative integer)")
    return value


def check_thumb(value) -> str | None:
    """An optional thumbnail: base64 of a PNG of at most MAX_THUMB bytes (not decoded)."""
    if value is None:
        return None
    if type(value) is not str or len(value) > MAX_THUMB_B64:
        raise ProtocolError(BAD_FRAME, f"'thumb' must be a PNG of at most {MAX_THUMB // 1024} KiB, as base64")
    if len(value) % 4 or not value.startswith(PNG_B64_START) or not _B64.match(value):
        raise ProtocolError(BAD_FRAME, "'thumb' must be a PNG image as base64 text")
    return value


def _check_token(value, field: str, what: str) -> str:
    if type(value) is not str or not 0 < len(value) <= _MAX_TOKEN or not value.isascii() \
            or not value.isprintable():
        raise ProtocolError(BAD_FRAME, f"'{field}' must be {what}")
    return value


# -- client events --------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Upload:
    """An offer, on the chat connection: to a ``room`` or, with ``to``, to one person."""
    name: str
    size: int
    sha256: str                  # lowercase hex
    mime: str = DEFAULT_MIME
    room: str | None = LOBBY     # None when ``to`` is set
    to: str | None = None
    thumb: str | None = None
    ref: str | None = None


@dataclass(frozen=True, slots=True)
class Put:
    """The first line of an upload's own connection; ``size - offset`` raw bytes follow."""
    file: str
    token: str
    offset: int = 0


@dataclass(frozen=True, slots=True)
class Get:
    """The first line of a download's own connection; ``resume`` is a welcome's session token."""
    file: str
    resume: str
    offset: int = 0


def _parse_upload(f: dict, ref) -> Upload:
    room, to = f.get("room"), f.get("to")
    if room is not None and to is not None:
        raise ProtocolError(BAD_FRAME, "an upload goes to a 'room' or 'to' one person, not both")
    if to is not None:
        if type(to) is not str:
            raise ProtocolError(BAD_FRAME, "'to' must be the nick of the person to send the file to")
        target = dict(room=None, to=check_nick(to))
    else:
        target = dict(room=LOBBY if room is None else check_room(room))
    return Upload(check_file_name(f.get("name")), check_size(f.get("size")), check_sha256(f.get("sha256")),
                  check_mime(f.get("mime")), thumb=check_thumb(f.get("thumb")), ref=ref, **target)


def _offset(f: dict) -> int:
    offset = f.get("offset")
    return 0 if offset is None else check_size(offset, "offset")


def _parse_put(f: dict, ref) -> Put:
    return Put(check_file_id(f.get("file")), _check_token(f.get("token"), "token", "the token upload_ready gave"),
               _offset(f))


def _parse_get(f: dict, ref) -> Get:
    return Get(check_file_id(f.get("file")),
               _check_token(f.get("resume"), "resume", "the session string of your welcome"), _offset(f))


PARSERS = {
    "upload": _parse_upload,
    "put": _parse_put,
    "get": _parse_get,
}
"""type -> parse(frame, ref): client_frames wraps each so its errors carry the ref."""
TRANSFER_TYPES = frozenset({"put", "get"})   # the first line of a transfer connection


# -- client frame builders ------------------------------------------------------


def upload_frame(name: str, size: int, sha256: str, mime: str | None = None, room: str | None = None,
                 to: str | None = None, thumb: str | None = None, ref: str | None = None) -> dict:
    return _opt({"type": "upload", "name": name, "size": size, "sha256": sha256}, mime=mime, room=room, to=to,
                thumb=thumb, ref=ref)


def put_frame(file: str, token: str, offset: int = 0) -> dict:
    return {"type": "put", "file": file, "token": token, "offset": offset}


def get_frame(file: str, resume: str, offset: int = 0) -> dict:
    return {"type": "get", "file": file, "offset": offset, "resume": resume}


# -- server frames ----------------------------------------------------------------


def upload_ready_frame(file: str, token: str, offset: int, ref: str | None = None) -> dict:
    return _opt({"type": "upload_ready", "file": file, "token": token, "offset": offset}, ref=ref)


def put_ok_frame(file: str) -> dict:
    return {"type": "put_ok", "file": file}


def blob_frame(file: str, size: int) -> dict:
    """``size``: the bytes that follow this line (the file's size minus the offset asked)."""
    return {"type": "blob", "file": file, "size": size}


def human_size(n: int) -> str:
    """1536 -> "1.5 KiB": a size for people."""
    if n < 1024:
        return f"{n} bytes"
    for unit in ("KiB", "MiB", "GiB", "TiB"):
        n /= 1024
        if n < 1024 or unit == "TiB":
            return f"{n:.1f} {unit}"


def file_line(file: dict) -> str:
    """A file message as one line of text, for clients that show only text
    (the IRC and plain-text doors): its name, size and how to fetch it."""
    name = str(file.get("name", ""))
    size = file.get("size")
    size = human_size(size) if type(size) is int else "?"
    if file.get("expired"):
        return f"[file] {name} ({size}): expired, no longer stored"
    mime = file.get("mime", DEFAULT_MIME)
    return f"[file] {name} ({size}, {mime}): fetch it in a Natter window (file {file.get('id')})"


def shown_text(frame: dict) -> str:
    """What a text-only client is shown of a message or dm frame: its text,
    or for a file the line of :func:`file_line` (the IRC and text doors)."""
    file = frame.get("file")
    if type(file) is dict:
        return file_line(file)
    return frame["text"]


def file_object(id: str, name: str, size: int, mime: str, sha256: str, thumb: str | None = None,
                expired: bool = False) -> dict:
    """The ``file`` of a message or dm. ``expired``: the bytes were dropped to
    make room (``--files-quota``); the message stays."""
    f = {"id": id, "name": name, "size": size, "mime": mime, "sha256": sha256}
    if thumb is not None:
        f["thumb"] = thumb
    if expired:
        f["expired"] = True
    return f


@dataclass(frozen=True, slots=True)
class FileInfo:
    id: str
    name: str
    size: int
    mime: str
    sha256: str
    thumb: str | None = None
    expired: bool = False


@dataclass(frozen=True, slots=True)
class UploadReady:
    file: str
    token: str
    offset: int
    ref: str | None = None


@dataclass(frozen=True, slots=True)
class PutOk:
    file: str


@dataclass(frozen=True, slots=True)
class Blob:
    file: str
    size: int


def parse_file(obj) -> FileInfo:
    """A server's ``file`` object -> FileInfo, or ProtocolError bad_frame."""
    if type(obj) is not dict:
        raise ProtocolError(BAD_FRAME, "a message's 'file' must be an object")
    return FileInfo(check_file_id(obj.get("id"), "file id"), check_file_name(obj.get("name")),
                    check_size(obj.get("size")), check_mime(obj.get("mime")), check_sha256(obj.get("sha256")),
                    check_thumb(obj.get("thumb")), obj.get("expired") is True)


def _ready(f: dict) -> UploadReady:
    ref = f.get("ref")
    return UploadReady(check_file_id(f.get("file")), _check_token(f.get("token"), "token", "a token"),
                       check_size(f.get("offset"), "offset"), ref if type(ref) is str else None)


SERVER_PARSERS = {
    "upload_ready": _ready,
    "put_ok": lambda f: PutOk(check_file_id(f.get("file"))),
    "blob": lambda f: Blob(check_file_id(f.get("file")), check_size(f.get("size"))),
}
"""type -> parse(frame) for server_frames' table."""
