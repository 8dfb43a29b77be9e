"""Framing: JSON lines in and out, with limits (no I/O).

:class:`LineDecoder` splits a byte stream into lines, :func:`decode_frame`
turns one line into a dict, :func:`encode` a dict into one line.
"""
from __future__ import annotations

import json

from .errors import BAD_FRAME, BAD_JSON, TOO_LONG, ProtocolError

PROTOCOL_VERSION = 2          # the newest this module speaks; a hello without "v" is v1
DEFAULT_PORT = 30000
MAX_LINE = 64 * 1024          # client -> server frame, newline included
MAX_SERVER_LINE = 64 * 1024 * 1024  # server -> client (a welcome carries history)


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
# The same encoder's C part, made once: JSONEncoder.encode builds it anew on
# every call, a third of the cost of a small frame. None without the C module.
_c_encode = json.encoder.c_make_encoder and json.encoder.c_make_encoder(
    None, _encoder.default, json.encoder.encode_basestring, None, ":", ",", False, False, False)


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
    if _c_encode is not None:
        return ("".join(_c_encode(frame, 0)) + "\n").encode("utf-8")
    return (_encoder.encode(frame) + "\n").encode("utf-8")


def _first_line(e: Exception) -> str:
    return str(e).splitlines()[0][:120]


def _json_kind(obj) -> str:
    return {list: "an array", str: "a string", int: "a number", float: "a number",
            bool: "a boolean", type(None): "null"}.get(type(obj), type(obj).__name__)



def _opt(f: dict, **fields) -> dict:
    """f with the fields that are not None."""
    for k, v in fields.items():
        if v is not None:
            f[k] = v
    return f
