"""The plain-text door's hub-thread half: one client's nick, room and encoder.

:class:`TextSession` takes what the reader posted: ``("start",)`` when the
client connects (the password prompt first if the server has one, else
its hello as a guest nick in lobby), ``("password", ok)``, ``("line",
text)`` (a cleaned line: :func:`~.inbound.parse_line` makes it a core event
or a door command), ``("too_long", sentence)``. It is the connection's
encoder too: the core's frames become ``HH:MM <nick> text`` lines
(:mod:`.outbound`), in order with the door's own lines (``Out.raw``).

A text client cannot answer the core's idle ping, so the door answers for
it (the reader's silence is a person reading, not a dead peer; a peer that
is gone is found when its socket fails or stops taking bytes).

Thread: the hub thread.
"""
from __future__ import annotations

import itertools

from ... import protocol as p
from ...core.events import DoorHello
from ...core.fanout import RAW, Out
from . import outbound
from .inbound import Quit, Refused, Who, parse_line
from .outbound import PASSWORD_PROMPT, TextView, guest_nick, to_bytes, welcome_line

_guests = itertools.count(1)    # guest-1, guest-2...: the hub thread's alone


class TextSession:
    def __init__(self, conn, password_required: bool):
        self.conn = conn
        self.password_required = password_required
        self.view = TextView(nick="")
        self._said = itertools.count(1)     # each say its own ref: a repeated ref is a retry (--redis)

    # -- the encoder (server.core.fanout) ------------------------------------

    per_client = True       # it keeps this client's state: each frame encoded once (fanout)

    def lines_only(self, kinds) -> bool:
        return False

    def encode(self, out: Out) -> bytes:
        if out.kind == RAW:
            return out.line
        frame, view = out.frame, self.view
        if out.kind == "welcome":
            view.nick = frame["nick"]
            return to_bytes([welcome_line(view.nick, view.room)])
        if out.kind == "ping":
            self._post(p.Pong())
            return b""
        if out.kind == "error" and frame.get("code") == p.NICK_TAKEN and frame.get("ref") == "GUEST":
            self._post(self._hello())       # that guest number is someone's nick: the next one
            return b""
        lines, events = outbound.encode(frame, view)
        if events:
            self._post(*events)
        return to_bytes(lines)

    def _post(self, *events) -> None:
        self.conn.hub.post(self.conn, list(events), wait=False)

    @staticmethod
    def _hello() -> DoorHello:
        return DoorHello(guest_nick(next(_guests)), (p.LOBBY,), None, "GUEST")

    # -- input (what the reader posted) ---------------------------------------

    def on_input(self, chat, data: tuple) -> None:
        kind = data[0]
        if kind == "start":
            if self.password_required:
                return self._say(chat, PASSWORD_PROMPT)
            return self._core(chat, self._hello())
        if kind == "password":
            if data[1]:
                return self._core(chat, self._hello())
            return self._say(chat, "!! Wrong password. " + PASSWORD_PROMPT)
        if kind == "too_long":
            return self._say(chat, "!! " + data[1])
        event = parse_line(data[1], self.view.room)
        if event is None:
            return
        if isinstance(event, Who):
            return self._say(chat, outbound.who_line(self.view))
        if isinstance(event, Quit):
            self._say(chat, "Bye.")
            return self._core(chat, p.Bye())
        if isinstance(event, Refused):
            return self._say(chat, "!! " + event.text)
        if isinstance(event, p.Say):
            try:
                event = p.Say(p.check_text(event.text), f"text {next(self._said)}", event.room)
            except p.ProtocolError as e:
                return self._say(chat, "!! " + e.message)
        self._core(chat, event)

    def _say(self, chat, line: str) -> None:
        chat.fanout.unicast(self.conn, Out.raw(to_bytes([line])))

    def _core(self, chat, event) -> None:
        chat.handlers[type(event)](chat, self.conn, event)
