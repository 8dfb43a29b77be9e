"""The conversations of the window, without Tk or a network: each room we
are in and each private conversation, as a :class:`RoomModel`, and the
ordered set of them, :class:`Rooms`.

Ids name a conversation everywhere in the UI (:class:`chatgui.app.view.RoomEntry`):
``"#" + room_key`` for a room, ``"@" + nick_key`` for a private
conversation (the id stays when the other person changes nick).

Unread counting, the rule the controller applies through these methods:
a message of someone else counts as unread when its id is above the
room's read marker (:attr:`RoomModel.read`: the server's marker, or the
last one we sent, whichever is higher) and nobody is looking at it (the
room is not the visible one, or the window has no focus). The "new
messages" marker (:attr:`RoomModel.marker`) sits above the first message
of the current unread run: it moves when a new run starts after
everything before was read, never while one is going on.

Thread: the Tk thread (the controller's), like everything in ``chatgui.app``.
"""
from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

from server import protocol as p

from chatgui.app.view import MEMBER, Modes, RoomEntry

KEEP_IDS = 20_000     # message keys remembered per conversation, to show each once


def room_id(name: str) -> str:
    return "#" + p.room_key(name)


def private_id(nick: str) -> str:
    return "@" + p.nick_key(nick)


LOBBY_ID = room_id(p.LOBBY)


@dataclass(eq=False)
class RoomModel:
    """One conversation. For a room, ``name`` is the room's name as the
    server spells it; for a private one, the other person's nick."""
    id: str
    name: str
    private: bool = False
    topic: str = ""
    key: bool = False                 # the room needs a key to join
    joined: bool = True               # a room we left stays on screen only when it was the last one
    people: dict = field(default_factory=dict)   # nick_key -> nick (rooms; the two of us for a private one)
    draft: str = ""                   # what the input box held when the user switched away
    read: int = 0                     # our read marker
    read_sent: int = 0                # the highest one we asked the server for
    last_id: int = 0                  # the server's newest message id here, from the room frame
    unread: int = 0
    mention: bool = False             # an unread one mentions us (any unread one, in a private conversation)
    marker: int | None = None         # the message the "new messages" line sits above
    oldest: int | None = None         # id of the oldest message shown (history "before" it)
    newest: int | None = None         # id of the newest one shown (a read marker "upto" it)
    more: bool = True                 # older messages may exist on the server
    live: bool = True                 # the newest end is loaded: live messages are appended
    loading: str | None = None        # ref of the history request in flight (one at a time)
    caught: int = 0                   # messages shown during the current catch-up
    # Issue 11: our role here, the roles of the people above member
    # (nick_key -> role), the modes, who is muted (nick_key -> until, wall
    # clock, None: until lifted), the questions waiting for release (ops:
    # id -> view.Question) and the messages shown (id -> Shown), for edits,
    # tombstones and the message menu.
    role: str = MEMBER
    roles: dict = field(default_factory=dict)
    modes: Modes = Modes()
    muted: dict = field(default_factory=dict)
    questions: dict = field(default_factory=dict)
    shown: dict = field(default_factory=dict, repr=False)
    _keys: set = field(default_factory=set, repr=False)
    _order: deque = field(default_factory=deque, repr=False)
    others: dict = field(default_factory=dict, repr=False)   # id -> mentions us, others' messages shown

    @property
    def label(self) -> str:
        """``#maths`` or ``bob`` (not yet made safe for Tk)."""
        return self.name if self.private else "#" + self.name

    def add(self, msg_id: int | None, ts, own: bool, mention: bool) -> bool:
        """Record a message (or topic change) shown here; False when it was
        shown already. Keys are (id, time): a server whose history was
        replaced reuses ids for other messages."""
        if msg_id is None:
            return True
        key = (msg_id, ts)
        if key in self._keys:
            return False
        self._keys.add(key)
        self._order.append(key)
        if len(self._order) > KEEP_IDS:
            old = self._order.popleft()
            self._keys.discard(old)
            self.others.pop(old[0], None)
            self.shown.pop(old[0], None)
        self.oldest = msg_id if self.oldest is None else min(self.oldest, msg_id)
        self.newest = msg_id if self.newest is None else max(self.newest, msg_id)
        if not own:
            self.others[msg_id] = mention or self.private
        return True

    def count(self, msg_id: int, mention: bool) -> bool:
        """Someone else's message, shown while nobody looks: count it if it
        is above the read marker. True when the marker moved to it."""
        if msg_id <= self.read:
            return False
        self.unread += 1
        self.mention = self.mention or mention or self.private
        if self.marker is None or self.marker <= self.read or msg_id < self.marker:
            self.marker = msg_id
            return True
        return False

    def mark_missed(self, msg_id: int) -> bool:
        """A message missed while away, caught up into the conversation on
        screen: nothing is counted, but the "new messages" line goes above
        the first such message. True when the marker moved."""
        if msg_id <= self.read or (self.marker is not None and self.read < self.marker <= msg_id):
            return False
        self.marker = msg_id
        return True

    def recount(self) -> bool:
        """Unread count and mention from the messages shown and the read
        marker (after a reconnect). True when the marker moved."""
        unread = [i for i in self.others if i > self.read]
        self.unread = len(unread)
        self.mention = any(self.others[i] for i in unread)
        first = min(unread) if unread else None
        if first is not None and first != self.marker:
            self.marker = first
            return True
        return False

    def seen(self) -> None:
        """Someone is looking at it: nothing here is unread for now."""
        self.unread = 0
        self.mention = False

    def trim(self, oldest_id: int | None) -> None:
        """The view dropped its oldest lines: ``oldest_id`` is the oldest
        message still shown (None: none). The ones before it are forgotten,
        so paging back shows them again."""
        if oldest_id is None:
            return self.forget_lines()
        kept = deque(k for k in self._order if k[0] >= oldest_id)
        for key in self._order:
            if key[0] < oldest_id:
                self._keys.discard(key)
                self.others.pop(key[0], None)
                self.shown.pop(key[0], None)
        self._order = kept
        self.oldest = oldest_id
        self.more = True

    def trim_newest(self, newest_id: int) -> None:
        """The view dropped its newest lines (scrolled far back):
        ``newest_id`` is the newest message still shown. The ones after it
        are forgotten, so paging forward shows them again, and the
        conversation is no longer at its live end (:attr:`live`)."""
        kept = deque(k for k in self._order if k[0] <= newest_id)
        for key in self._order:
            if key[0] > newest_id:
                self._keys.discard(key)
                self.others.pop(key[0], None)
                self.shown.pop(key[0], None)
        self._order = kept
        self.newest = newest_id
        self.live = False

    def forget_lines(self) -> None:
        """The view's lines were dropped: start the record over."""
        self._keys.clear()
        self._order.clear()
        self.others.clear()
        self.shown.clear()
        self.oldest = self.newest = self.marker = None
        self.more = True
        self.live = True


@dataclass(frozen=True)
class Shown:
    """A message on screen, as the moderation menus and updates need it:
    its line, its text as sent (for copy, edit, quote), its author's nick
    and whether it is ours, its time (the edit window), and whether it was
    removed."""
    line: object            # view.Line
    text: str
    author: str
    own: bool
    ts: float | None
    removed: bool = False


class Rooms:
    """The conversations in list order: rooms first, then private ones,
    each in the order it was made; and which one is active."""

    def __init__(self):
        self._all: dict[str, RoomModel] = {}
        self._peers: dict[str, str] = {}      # nick_key -> id of the private conversation
        self.active: str | None = None

    def __len__(self) -> int:
        return len(self._all)

    def __iter__(self):
        return iter(self.ordered())

    def get(self, rid: str | None) -> RoomModel | None:
        return self._all.get(rid) if rid is not None else None

    @property
    def current(self) -> RoomModel | None:
        return self.get(self.active)

    def room(self, name: str) -> RoomModel | None:
        return self._all.get(room_id(name))

    def private(self, nick: str) -> RoomModel | None:
        return self._all.get(self._peers.get(p.nick_key(nick), ""))

    def ensure_room(self, name: str) -> tuple[RoomModel, bool]:
        """The room's model, made if needed: (model, made)."""
        model = self.room(name)
        if model is not None:
            return model, False
        model = RoomModel(room_id(name), name)
        self._all[model.id] = model
        return model, True

    def ensure_private(self, nick: str) -> tuple[RoomModel, bool]:
        model = self.private(nick)
        if model is not None:
            return model, False
        rid = private_id(nick)
        while rid in self._all:           # the id of someone who has since changed nick
            rid += "'"
        model = RoomModel(rid, nick, private=True)
        self._all[rid] = model
        self._peers[p.nick_key(nick)] = rid
        return model, True

    def remove(self, rid: str) -> None:
        model = self._all.pop(rid, None)
        if model is not None and model.private:
            self._peers.pop(p.nick_key(model.name), None)
        if self.active == rid:
            self.active = None

    def renamed(self, old: str, new: str) -> list:
        """Someone changed nick: their private conversation follows them,
        and every room's people. Returns the models they were in."""
        old_key, new_key = p.nick_key(old), p.nick_key(new)
        touched = []
        rid = self._peers.pop(old_key, None)
        if rid is not None:
            self._peers[new_key] = rid
            self._all[rid].name = new
            touched.append(self._all[rid])
        for model in self._all.values():
            if old_key in model.people:
                del model.people[old_key]
                model.people[new_key] = new
                if not model.private:
                    touched.append(model)
        return touched

    def ordered(self) -> list:
        models = list(self._all.values())
        return [m for m in models if not m.private] + [m for m in models if m.private]

    def names(self) -> list:
        """The names of the rooms we are in, in list order."""
        return [m.name for m in self._all.values() if not m.private and m.joined]

    def step(self, step: int) -> str | None:
        """The id ``step`` places after (or before) the active one, wrapping."""
        order = self.ordered()
        if not order:
            return None
        ids = [m.id for m in order]
        at = ids.index(self.active) if self.active in ids else 0
        return ids[(at + step) % len(ids)]

    def at(self, n: int) -> str | None:
        """The id of the n-th conversation of the list (1-based), or None."""
        order = self.ordered()
        return order[n - 1].id if 0 < n <= len(order) else None

    def total_unread(self) -> int:
        return sum(m.unread for m in self._all.values())

    def entries(self, label) -> tuple:
        """The room list for :meth:`View.set_rooms`; ``label(model)`` makes a row's text."""
        return tuple(RoomEntry(m.id, label(m), m.unread, m.mention, m.private) for m in self.ordered())
