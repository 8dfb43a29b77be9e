"""What one IRC client's door knows, and the result of translating.

:class:`View` is built only from the frames the core sent this client (its
nick, the rooms it is in with their topics and members), as the window's
controller builds its own: IRC asks for things (``NAMES``, ``TOPIC``,
``WHO``) the JSON side keeps on the client, so the door keeps them for it.
It holds no rule: every decision is the core's, reached through events.

:class:`Outcome` is what a translation gives back: IRC lines for this
client, core events to post, and whether to close after the lines.

Thread: the hub thread (a View belongs to one connection).
"""
from __future__ import annotations

from dataclasses import dataclass, field

from ... import protocol as p
from .isupport import Features


@dataclass
class RoomView:
    name: str                       # as the core spells it
    topic: str = ""
    topic_by: str = ""
    topic_ts: float = 0.0
    key: bool = False               # the room has a key
    users: dict = field(default_factory=dict)   # nick_key -> nick
    roles: dict = field(default_factory=dict)   # nick_key -> role above member (owner, op, voice)
    modes: dict = field(default_factory=dict)   # the core's modes (moderated, questions...), as last told

    def add(self, nick: str) -> None:
        self.users[p.nick_key(nick)] = nick

    def discard(self, nick: str) -> bool:
        self.roles.pop(p.nick_key(nick), None)
        return self.users.pop(p.nick_key(nick), None) is not None

    def prefix(self, nick: str) -> str:
        """IRC's prefix of a member: @ for an owner or op, + for a voice."""
        role = self.roles.get(p.nick_key(nick))
        return "@" if role in ("owner", "op") else "+" if role == "voice" else ""

    def has(self, nick: str) -> bool:
        return p.nick_key(nick) in self.users


@dataclass
class View:
    features: Features
    caps: set = field(default_factory=set)      # the negotiated capabilities (shared with CapNegotiation)
    nick: str | None = None                     # once welcomed
    epoch: str = ""                             # the history's, for msgid
    rooms: dict = field(default_factory=dict)   # room_key -> RoomView
    user: str = "u"
    realname: str = ""
    # Requests in flight, by the label in their ref: CHATHISTORY batches
    # (target, only ids above this) and LIST filters.
    history: dict = field(default_factory=dict)
    lists: dict = field(default_factory=dict)
    _labels: int = 0

    @property
    def server(self) -> str:
        return self.features.server_name

    @property
    def target(self) -> str:
        """This client as the first parameter of a numeric."""
        return self.nick or "*"

    def is_me(self, nick: str) -> bool:
        return self.nick is not None and p.nick_key(nick) == p.nick_key(self.nick)

    def room(self, name: str) -> RoomView | None:
        return self.rooms.get(p.room_key(name))

    def label(self) -> str:
        self._labels += 1
        return f"n{self._labels}"

    def forget(self, nick: str) -> list:
        """Take ``nick`` out of every room; returns the rooms it was in."""
        return [r for r in self.rooms.values() if r.discard(nick)]

    def rename(self, old: str, new: str) -> None:
        for r in self.rooms.values():
            role = r.roles.get(p.nick_key(old))
            if r.discard(old):
                r.add(new)
                if role is not None:
                    r.roles[p.nick_key(new)] = role


@dataclass
class Outcome:
    lines: list = field(default_factory=list)     # wire.Message, in order
    events: list = field(default_factory=list)    # core events to post, in order
    close: bool = False                           # close the connection once the lines are out

    def extend(self, other: "Outcome") -> "Outcome":
        self.lines += other.lines
        self.events += other.events
        self.close = self.close or other.close
        return self
