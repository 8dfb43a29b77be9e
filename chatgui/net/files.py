"""Files on the client side (issue 12), sans I/O: the lines of a transfer
connection and what the client decides about a file a peer announced.

The frames themselves (``upload``, ``upload_ready``, ``put``, ``get``,
``put_ok``, ``blob``, the ``file`` object of a message, as
:class:`server.protocol.FileInfo`) are :mod:`server.protocol`'s; this
module adds what only a client needs: the one-line answers of a transfer
connection, whether a file might be run by the system (the card says so),
a peer's name as a safe file name, refusals in words (sizes in words are
:func:`server.protocol.human_size`, shared with the doors).
Everything about a file comes from an untrusted peer: a name is only a
label (never a path), a size is checked against what arrives, the sha256
once the bytes are in.

Thread: pure functions and values, any thread.
"""
from __future__ import annotations

import base64
import binascii
import mimetypes
import os
import re

from server import protocol as p

FILE_TOO_LARGE, QUOTA_FULL, BAD_FILE, NO_SUCH_FILE = p.FILE_TOO_LARGE, p.QUOTA_FULL, p.BAD_FILE, p.NO_SUCH_FILE
FORBIDDEN = p.FORBIDDEN          # issue 11's code, also a file's
MAX_NAME = 255                   # characters of a file name kept
MAX_REPLY_LINE = 64 * 1024       # the one line a transfer connection answers with

# Kinds of file an operating system may run when it is double-clicked: the
# card says so (Natter itself never opens or runs anything it received).
_RUNNABLE = frozenset("""
    exe com bat cmd msi msp scr pif cpl ps1 psm1 vbs vbe js jse wsf wsh hta jar lnk reg app command
    sh bash zsh csh ksh run bin appimage deb rpm apk dmg pkg py pyw pl rb php elf so dll desktop
    """.split())
_RUNNABLE_MIME = ("application/x-executable", "application/x-msdownload", "application/x-msdos-program",
                  "application/x-sh", "application/x-shellscript", "application/vnd.microsoft.portable-executable",
                  "application/x-elf", "application/java-archive", "application/x-msi")
# The images shown inline (what Pillow is allowed to decode: chatgui.app.images).
IMAGE_MIMES = frozenset({"image/png", "image/jpeg", "image/gif", "image/webp"})


def put_line(file_id: str, token: str, offset: int) -> bytes:
    return p.encode(p.put_frame(file_id, token, offset))


def get_line(file_id: str, offset: int, session: str) -> bytes:
    return p.encode(p.get_frame(file_id, session, offset))


def parse_reply(line: bytes):
    """The first line a transfer connection answers with -> ``Blob``,
    ``PutOk`` or ``ServerError`` (of :mod:`server.protocol`); ProtocolError
    when it is none of these."""
    reply = p.parse_server(p.decode_frame(line))
    if type(reply) not in (p.Blob, p.PutOk, p.ServerError):
        raise p.ProtocolError(p.BAD_FRAME, f"a transfer answer of type {type(reply).__name__}")
    return reply


def thumb_bytes(info) -> bytes | None:
    """The PNG bytes of a FileInfo's thumbnail (not decoded as an image:
    :mod:`chatgui.app.images` does that, off the Tk thread), None without one."""
    if not info.thumb:
        return None
    try:
        return base64.b64decode(info.thumb, validate=True)
    except (binascii.Error, ValueError):
        return None


def is_image(info) -> bool:
    """One of the formats shown inline."""
    return info.mime in IMAGE_MIMES


# -- about files ------------------------------------------------------------

def guess_mime(name: str) -> str:
    mime, _ = mimetypes.guess_type(name, strict=False)
    return mime or "application/octet-stream"


def is_runnable(name: str, mime: str = "") -> bool:
    """A file the operating system might run when opened (by its name or type)."""
    ext = os.path.splitext(name.rstrip(". "))[1].lower().lstrip(".")
    return ext in _RUNNABLE or mime in _RUNNABLE_MIME


def safe_filename(name: str) -> str:
    """A name from a peer as a plain file name in a folder we chose: no
    folders, no device names, no leading dots, no control characters."""
    base = re.split(r"[\\/]", str(name))[-1]
    base = "".join(ch for ch in base if ch.isprintable() and ch not in '<>:"|?*')
    base = base.strip().lstrip(".").strip() or "file"
    stem = base.split(".")[0].upper()
    if stem in {"CON", "PRN", "AUX", "NUL"} or re.fullmatch(r"(COM|LPT)[0-9]", stem):
        base = "_" + base
    return base[:MAX_NAME]


def refusal_words(code: str, message: str) -> str:
    """The server's refusal of a file, in words a person can act on."""
    words = {FILE_TOO_LARGE: "the file is larger than this server takes",
             QUOTA_FULL: "the server's space for files is full",
             BAD_FILE: "the server received something other than the file (size or checksum differ)",
             NO_SUCH_FILE: "the server no longer has this file (it was deleted or expired)",
             FORBIDDEN: "you may not see or send this file here"}.get(code)
    if words and message:
        return f"{words} ({message.rstrip('.')})"
    return words or message or code
