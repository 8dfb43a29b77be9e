"""The core's frames -> lines for a plain-text client (no I/O).

Messages arrive as the tutorial's room showed them, ``HH:MM <nick> text``
in the server's local time (the sender's own included); an action as
``HH:MM * nick waves``; a private message as ``HH:MM *bob* text`` (yours
as ``HH:MM -> *bob* text``); what happens in the room as
``HH:MM -- bob joined #rust``; errors as ``HH:MM !! sentence``. Each line
of a multi-line message gets the same prefix. Lines end with CR LF
(telnet needs it; nc and the tutorial's client print it as it comes),
and control characters other than tab are stripped on the way out too.

:class:`TextView` is what the door knows, from the frames alone: its nick,
the one room it talks in, and who is there (for ``/who``). A text client
is in one room at a time: when the core answers a ``/join`` with the new
room's ``room`` frame, :func:`encode` gives back a ``Part`` of the old one.

Thread: the hub thread (a view belongs to one connection).
"""
from __future__ import annotations

import time
import unicodedata
from dataclasses import dataclass, field

from ... import protocol as p
from .inbound import HELP

ACTION_PREFIX = "/me "      # Natter's action convention (chatgui.app.commands.ACTION_PREFIX)


def guest_nick(n: int) -> str:
    """The nick a text client starts with: ``guest-7``."""
    return f"guest-{n}"


def welcome_line(nick: str, room: str = p.LOBBY) -> str:
    """The one line a text client gets on connect."""
    return (f"Welcome to Natter, {nick}! You are in #{room}: type a line and press Enter to talk. "
            f"{HELP}.")


PASSWORD_PROMPT = "This server has a password: type it and press Enter."


@dataclass
class TextView:
    nick: str
    room: str = p.LOBBY
    users: dict = field(default_factory=dict)        # nick_key -> nick, of the current room
    clock: object = time.localtime                   # ts or None (now) -> struct_time: the server's local time

    def is_me(self, nick: str) -> bool:
        return p.nick_key(nick) == p.nick_key(self.nick)

    def here(self, room: str | None) -> bool:
        return p.room_key(room or p.LOBBY) == p.room_key(self.room)


def who_line(view: TextView) -> str:
    names = sorted(view.users.values(), key=str.casefold)
    return f"In #{view.room}: {', '.join(names)} ({len(names)} {'person' if len(names) == 1 else 'people'})."


def encode(frame: dict, view: TextView) -> tuple:
    """One frame -> (text lines, core events to post)."""
    kind = frame.get("type")
    handler = _HANDLERS.get(kind)
    if handler is None:
        return [], []
    return handler(frame, view)


def to_bytes(lines: list) -> bytes:
    """Lines -> what the door writes: safe text, CR LF after each."""
    return "".join(_safe(line) + "\r\n" for line in lines).encode("utf-8")


def _safe(line: str) -> str:
    if line.isprintable():
        return line
    return "".join(ch for ch in line if ch == "\t" or unicodedata.category(ch) != "Cc")


def _hhmm(view: TextView, ts) -> str:
    return time.strftime("%H:%M", view.clock(ts))          # None: now, as time.localtime takes it


def _said(view: TextView, ts, head: str, text: str) -> list:
    stamp = _hhmm(view, ts)
    return [f"{stamp} {head} {line}" for line in text.split("\n")]


def _message(frame: dict, view: TextView) -> tuple:
    if not view.here(frame.get("room")):
        return [], []
    text, sender = p.shown_text(frame), frame["from"]
    if text.startswith(ACTION_PREFIX) and text[len(ACTION_PREFIX):].strip():
        return _said(view, frame.get("ts"), f"* {sender}", text[len(ACTION_PREFIX):]), []
    return _said(view, frame.get("ts"), f"<{sender}>", text), []


def _dm(frame: dict, view: TextView) -> tuple:
    if view.is_me(frame["from"]):
        return _said(view, frame.get("ts"), f"-> *{frame['to']}*", p.shown_text(frame)), []
    return _said(view, frame.get("ts"), f"*{frame['from']}*", p.shown_text(frame)), []


def _event(view: TextView, text: str) -> list:
    return [f"{_hhmm(view, None)} -- {text}"]


def _joined(frame: dict, view: TextView) -> tuple:
    if not view.here(frame.get("room")) or view.is_me(frame["nick"]):
        return [], []
    view.users[p.nick_key(frame["nick"])] = frame["nick"]
    return _event(view, f"{frame['nick']} joined #{view.room}"), []


def _left(frame: dict, view: TextView) -> tuple:
    if not view.here(frame.get("room")) or view.is_me(frame["nick"]):
        return [], []
    view.users.pop(p.nick_key(frame["nick"]), None)
    return _event(view, f"{frame['nick']} left #{view.room}"), []


def _renamed(frame: dict, view: TextView) -> tuple:
    old, new = frame["old"], frame["new"]
    if view.users.pop(p.nick_key(old), None) is not None:
        view.users[p.nick_key(new)] = new
    if view.is_me(old):
        view.nick = new
        return _event(view, f"You are now {new}"), []
    return _event(view, f"{old} is now {new}"), []


def _topic(frame: dict, view: TextView) -> tuple:
    if not view.here(frame.get("room")):
        return [], []
    by = frame.get("by") or "someone"
    if not frame["topic"]:
        return _event(view, f"{by} cleared the topic of #{view.room}"), []
    return _event(view, f"{by} set the topic of #{view.room}: {frame['topic']}"), []


def _room(frame: dict, view: TextView) -> tuple:
    events = []
    if not view.here(frame["room"]):
        events.append(p.Part(view.room))            # one room at a time: leave the one before
    view.room = frame["room"]
    view.users = {p.nick_key(n): n for n in frame.get("users", ())}
    lines = _event(view, f"You are in #{view.room}" + (f" ({frame['topic']})" if frame.get("topic") else ""))
    return lines + [who_line(view)], events


def _replay(frame: dict, view: TextView) -> tuple:
    lines, events = [], []
    for f in frame.get("frames", ()):
        more, ev = encode(f, view)
        lines += more
        events += ev
    return lines, events


def _error(frame: dict, view: TextView) -> tuple:
    return [f"{_hhmm(view, None)} !! {frame.get('message') or frame.get('code', 'error')}"], []


def _notice(frame: dict, view: TextView) -> tuple:
    return _event(view, frame.get("text", "")), []


_HANDLERS = {
    "message": _message,
    "dm": _dm,
    "joined": _joined,
    "left": _left,
    "renamed": _renamed,
    "topic": _topic,
    "room": _room,
    "replay": _replay,
    "error": _error,
    "notice": _notice,
}
