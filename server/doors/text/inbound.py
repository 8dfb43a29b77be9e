"""Bytes from a plain-text client (nc, telnet, the tutorial's client) ->
what the person typed (no I/O; the time is passed in).

- :class:`TelnetFilter` strips telnet's commands (``IAC`` and what follows:
  option negotiation ``WILL/WONT/DO/DONT x``, subnegotiation ``SB ... IAC
  SE``, the one-byte commands) from the stream, whatever way it is cut into
  reads; ``IAC IAC`` is a data byte 0xFF. Nothing of it is kept or relayed.
- :class:`LineAssembler` makes lines: a line ends at LF, CR LF, CR NUL or
  a bare CR (telnet's ends). Text that arrives without an end counts as a
  line once the sender pauses for :data:`PAUSE` seconds (the tutorial's
  client sends what you type with no newline), so the door calls
  :meth:`LineAssembler.poll` at :attr:`LineAssembler.deadline`. A line over
  ``max_line`` bytes is refused (:class:`TooLong`), not cut, and the rest
  of it is skipped up to its end or the next pause; memory stays bounded.
- :func:`clean` decodes UTF-8 (an invalid byte becomes U+FFFD, so nothing
  typed is silently lost) and strips terminal escape sequences and control
  characters other than tab: they could rewrite the screens of others.
- :func:`parse_line` reads ``/nick NAME``, ``/join NAME [KEY]``, ``/who``,
  ``/quit``; any other line is a message (``//x`` sends ``/x``, ``/me x``
  is Natter's action).

Thread: one connection's (a door's reader), pure apart from its state.
"""
from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from ... import protocol as p

PAUSE = 0.2                 # seconds without bytes after which a partial line is a message
MAX_LINE = 4096             # bytes of one line, its end excluded

IAC, SE, SB, WILL, WONT, DO, DONT = 255, 240, 250, 251, 252, 253, 254
_DATA, _IAC, _OPTION, _SUB, _SUB_IAC = range(5)


class TelnetFilter:
    """Telnet commands out, data through; state carries across reads."""

    __slots__ = ("_state",)

    def __init__(self):
        self._state = _DATA

    def feed(self, data: bytes) -> bytes:
        if self._state == _DATA and IAC not in data:
            return data                              # the usual case: no telnet at all
        out = bytearray()
        state = self._state
        for b in data:
            if state == _DATA:
                if b == IAC:
                    state = _IAC
                else:
                    out.append(b)
            elif state == _IAC:
                if b == IAC:
                    out.append(b)                    # IAC IAC: the data byte 255
                    state = _DATA
                elif b in (WILL, WONT, DO, DONT):
                    state = _OPTION
                elif b == SB:
                    state = _SUB
                else:
                    state = _DATA                    # NOP, GA, AYT, IP...: one byte
            elif state == _OPTION:
                state = _DATA                        # the option's byte
            elif state == _SUB:
                if b == IAC:
                    state = _SUB_IAC
            else:                                    # _SUB_IAC
                state = _SUB if b == IAC else _DATA  # IAC SE ends it (anything else: broken, end it too)
        self._state = state
        return bytes(out)


@dataclass(frozen=True, slots=True)
class TooLong:
    """A line over the limit, refused whole."""
    limit: int

    @property
    def text(self) -> str:
        return f"That line was longer than {self.limit} bytes, so it was not sent; send shorter lines."


class LineAssembler:
    """Bytes (with ``now``, a monotonic time) -> lines as bytes, or
    :class:`TooLong`. Any cutting of the stream into reads gives the same
    lines, provided no pause falls inside a line."""

    def __init__(self, max_line: int = MAX_LINE, pause: float = PAUSE):
        self.max_line, self.pause = max_line, pause
        self._telnet = TelnetFilter()
        self._buf = bytearray()
        self._last = 0.0               # when the partial line last grew
        self._skipping = False         # inside an over-long line
        self._after_cr = False         # a LF or NUL right after CR belongs to that end

    @property
    def deadline(self) -> float | None:
        """When :meth:`poll` would turn the partial line into a line (None: nothing waits)."""
        return self._last + self.pause if (self._buf or self._skipping) else None

    def feed(self, data: bytes, now: float) -> list:
        data = self._telnet.feed(data)
        if not data:
            return []
        out: list = []
        start = 0
        if self._after_cr and data[:1] in (b"\n", b"\0"):
            start = 1
        self._after_cr = False
        for m in _LINE_END.finditer(data, start):
            self._take(data[start:m.start()], out, end=True)
            start = m.end()
            if m.group() == b"\r" and start == len(data):
                self._after_cr = True              # its LF may come in the next read
        self._take(data[start:], out, end=False)
        if self._buf or self._skipping:
            self._last = now
        return out

    def poll(self, now: float) -> list:
        """The partial line, if the sender has paused since it last grew."""
        deadline = self.deadline
        if deadline is None or now < deadline:
            return []
        if self._skipping:
            self._skipping = False
            return []
        line = bytes(self._buf)
        self._buf.clear()
        return [line] if line.strip() else []

    def _take(self, chunk: bytes, out: list, end: bool) -> None:
        if self._skipping:
            if end:
                self._skipping = False
            return
        if len(self._buf) + len(chunk) > self.max_line:
            self._buf.clear()
            out.append(TooLong(self.max_line))
            self._skipping = not end
            return
        self._buf += chunk
        if end:
            line = bytes(self._buf)
            self._buf.clear()
            if line.strip():
                out.append(line)


_LINE_END = re.compile(rb"\r\n|\r\0|\r|\n")


# ESC sequences a terminal acts on: CSI (ESC [ ... final), OSC (ESC ] ... BEL or ESC \),
# and two-byte ones (ESC x). Their 8-bit forms are C1 controls, stripped below.
_ESCAPES = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)?|\x1b[ -~]?")


def clean(raw: bytes) -> str:
    """A line as bytes -> its text, decoded, with escape sequences and
    control characters (other than tab) removed, trailing blanks trimmed."""
    text = raw.decode("utf-8", "replace")
    if text.isprintable():
        return text.rstrip()
    text = _ESCAPES.sub("", text)
    return "".join(ch for ch in text if ch == "\t" or unicodedata.category(ch) != "Cc").rstrip()


# -- commands ------------------------------------------------------------------

@dataclass(frozen=True, slots=True)
class Who:
    """``/who``: the people in the current room (the door answers from its view)."""


@dataclass(frozen=True, slots=True)
class Quit:
    """``/quit``: the door says goodbye and closes."""


@dataclass(frozen=True, slots=True)
class Refused:
    """A command that cannot be done as typed: ``text`` says why and how."""
    text: str


HELP = "/nick NAME to change your name, /join NAME to change room, /who to see who is here, /quit to leave"


def parse_line(line: str, room: str):
    """A cleaned line typed in ``room`` -> a core event (:class:`~server.protocol.Say`,
    :class:`~server.protocol.ChangeNick`, :class:`~server.protocol.Join`), a door
    command (:class:`Who`, :class:`Quit`), :class:`Refused`, or None for a blank line."""
    if not line.strip():
        return None
    if not line.startswith("/") or line.startswith("//"):
        return p.Say(line[1:] if line.startswith("//") else line, room=room)
    command, _, rest = line[1:].partition(" ")
    command, args = command.lower(), rest.split()
    if command == "me":
        return p.Say(line, room=room) if args else Refused("/me needs something you do: /me waves")
    if command == "nick":
        if len(args) != 1:
            return Refused("Use /nick NAME, with one name (letters, digits, '_' and '-').")
        try:
            return p.ChangeNick(p.check_nick(args[0]))
        except p.ProtocolError as e:
            return Refused(f"That name cannot be used: {e.message}.")
    if command == "join":
        if not 1 <= len(args) <= 2:
            return Refused("Use /join NAME, or /join NAME KEY for a room with a key.")
        try:
            name = p.check_room(args[0][1:] if args[0].startswith("#") else args[0])
        except p.ProtocolError as e:
            return Refused(f"That room name cannot be used: {e.message}.")
        return p.Join(name, args[1] if len(args) == 2 else None)
    if command in ("who", "names"):
        return Who()
    if command in ("quit", "exit"):
        return Quit()
    return Refused(f"There is no /{command[:20]} here. Commands: {HELP}; //text sends a line that starts with '/'.")
