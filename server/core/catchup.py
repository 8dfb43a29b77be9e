"""Welcomes and catch-up: how a client gets what it missed, with no cap and no gap.

A ``hello`` is applied in the pass (nick, session, rooms: others see
``joined``), but its welcome is built after the pass has been committed and
sealed (:meth:`CatchUpRules.attach`), from the state then, and the client's
frames after its hello wait for the next pass. What is queued for the client
alone meanwhile (a private message, a ping) waits in ``conn.held`` and
follows the welcome.

A client with something to catch up gets a :class:`Cursor`: a v2 client
always (its welcome is followed by ``room`` frames, ``replay`` frames and
``caught_up``), a v1 client when its hello has a ``since`` (the oldest
missed messages that fit in its welcome, then the rest as plain frames).
The cursor reads the store, a page at a time (:meth:`CatchUpRules.catch_up`),
only while the client's outbox is below ``LOW_WATER`` (the hub asks after a
pass and when its socket drains), so a client away for a million messages
gets a million without its queue ever overflowing.

While it catches up, the client is present in its rooms but not in their
fan-out: every event with an id reaches it through the cursor, after it is
committed, in id order (a message in its rooms meanwhile, a private message
to it, its own acknowledgements). When the cursor finds nothing more (at the
end of a pass, after the commit: the store holds every id handed out), the
client gets ``caught_up`` and joins the fan-out in that same step, so the
next pass's broadcasts reach it live: nothing is lost or sent twice.

Thread: the hub thread only.
"""
from __future__ import annotations


from .. import protocol as p
from ..store import DIRECT, LOBBY, MESSAGE, Unavailable
from .fanout import Out, encoded
from .frames import event_frame

LOW_WATER = 256 * 1024          # a client's outbox below this: it may have its next replay frame
WELCOME_BYTES = 1024 * 1024     # the history in a v1 welcome, at most
RECENT = 100                    # messages of each room a catch-up without `since` replays
PAGE_BYTES = p.REPLAY_MAX_BYTES - 64   # a replay frame's entries (its wrapper takes the rest)


class Cursor:
    """Where a client's catch-up is: the events after ``after`` of its
    sources. ``rooms``: room key -> (floor, ceiling): that room's events with
    floor < id <= ceiling (ceiling None: no bound); ``dm_floor``: the
    session's private messages above it (None: none). ``plain``: a v1
    client (its messages and private messages as plain lines, no topics);
    ``recent``: floors still to be set to each room's last RECENT messages."""

    __slots__ = ("rooms", "dm_floor", "after", "plain", "recent")

    def __init__(self, rooms: dict, dm_floor: int | None, after: int, plain: bool = False, recent: bool = False):
        self.rooms = rooms
        self.dm_floor = dm_floor
        self.after = after
        self.plain = plain
        self.recent = recent

    def add(self, room: str, floor: int) -> None:
        """Joined while catching up: that room's events from here on."""
        self.rooms[room] = (floor, None)

    def cut(self, room: str, ceiling: int) -> None:
        """Left while catching up: that room's events up to here."""
        if room in self.rooms:
            self.rooms[room] = (self.rooms[room][0], ceiling)


class CatchUpRules:
    """The welcome and the catch-up (mixed into Chat)."""

    def attach(self):
        """After a pass is committed and sealed: yield (client, bytes) with
        each new client's welcome (and ``room`` frames, and what was held
        for it); those with nothing to catch up join the fan-out now, the
        others are in ``catching_up``."""
        pending, self.pending = self.pending, []
        # The lists of nicks in this pass's welcomes and room frames, as JSON:
        # the same for all of them (the state after the pass), so each is
        # built once per pass, not once per client (a storm of reconnects
        # would otherwise sort and encode every nick once per client).
        users: dict = {}
        for conn in pending:
            if conn.sock is None or conn.held is None:
                continue            # dropped in the pass it said hello
            parts = [self._welcome(conn, users)]
            if conn.v >= 2:
                parts.extend(self._room_line(conn, room, users) for room in conn.rooms.values())
            held, conn.held = conn.held, None
            parts.extend(encoded(conn, out) for out in held)
            if conn.cursor is None:
                for room in conn.rooms.values():
                    self.fanout.join(room, conn)
            else:
                if conn.cursor.recent:
                    cur = conn.cursor
                    try:
                        cur.rooms = {key: (self.store.recent_floor(key, RECENT), None) for key in cur.rooms}
                    except Unavailable:     # no recent messages to show: live from here
                        cur.rooms = {key: (cur.after, None) for key in cur.rooms}
                    cur.recent = False
                for room in conn.rooms.values():
                    room.waiting.add(conn)
                self.catching_up.add(conn)
            yield conn, b"".join(parts)

    def _users_json(self, users: dict, room=None) -> bytes:
        """The JSON list of the nicks in ``room`` (None: everyone online, on every
        server of a shared store), sorted
        ignoring case, from the pass's cache ``users``."""
        key = room.key if room is not None else None
        data = users.get(key)
        if data is None:
            data = users[key] = p.encode(self._nicks(room))[:-1]
        return data

    def _nicks(self, room=None) -> list:
        """The nicks in ``room`` (None: everyone online), sorted ignoring case."""
        if room is not None:
            return room.nicks()
        # The store's: with a shared store, everyone online on every node.
        return sorted(self.store.online_nicks([c.nick for c in self.nicks.values()]), key=str.casefold)

    def _room_line(self, conn, room, users: dict) -> bytes:
        """The ``room`` frame of a welcome, as ``conn``'s bytes; for JSON lines
        with the pass's nick list spliced in."""
        if not conn.encoder.lines_only(("room",)):
            return encoded(conn, Out.of(self.room_frame(conn, room)))
        frame = p.room_frame(room.name, room.record.topic, [], room.last_id, conn.reads.get(room.key, 0),
                             room.locked)
        frame.update(self.room_extras(conn, room))     # modes, role, roles (server.core.moderation)
        return _splice(p.encode(frame), b'"users":', self._users_json(users, room))

    def _welcome(self, conn, users: dict) -> bytes:
        cfg, store = self.config, self.store
        w = conn.welcome
        conn.welcome = None
        if conn.v >= 2:
            names = self._users_json(users)
            history = b""
        else:
            names = self._users_json(users, self.rooms[LOBBY])
            if conn.cursor is None:
                history = b",".join(self._recent_v1())
            else:
                try:
                    entries, done = self._read(conn, 1 << 30, WELCOME_BYTES)
                except Unavailable:         # a shared store's backend is away: the catch-up follows later
                    entries, done = [], False
                history = b",".join(entries)
                if done:
                    conn.cursor = None      # all of it fits: it is live after this welcome
        frame = {"type": "welcome", "nick": conn.nick, "users": [], "history": [], "last_id": store.last_id,
                 "session": w["token"], "epoch": store.epoch, "protocol": p.PROTOCOL_VERSION,
                 "limits": {"max_line": cfg.max_line, "rate": cfg.rate_limit, "burst": cfg.rate_burst}}
        if conn.v >= 2:
            frame.update(replay=True, rooms=[room.name for room in conn.rooms.values()])
        frame.update(self.welcome_identity(conn))
        if w["reset"]:
            frame["reset"] = True
        if not conn.encoder.lines_only(("welcome",)):
            # another door's: 001..., or its welcome line
            frame["users"] = self._nicks(None if conn.v >= 2 else self.rooms[LOBBY])
            return conn.encoder.encode(Out.of(frame))
        line = _splice(p.encode(frame), b'"users":', names)
        if history:
            line = _splice(line, b'"history":', b"[" + history + b"]")
        return line

    def _recent_v1(self) -> list:
        """The newest lobby messages that fit in WELCOME_BYTES (at most
        RECENT), as JSON: the same for every v1 welcome until the lobby
        has a new message."""
        lobby = self.rooms[LOBBY]
        if self._v1_recent is not None and self._v1_recent[0] == lobby.last_id:
            return self._v1_recent[1]
        try:
            events, _ = self.store.page_room(LOBBY, limit=RECENT, messages_only=True)
        except Unavailable:
            return []       # a shared store's backend is away: a welcome without history
        entries, size = [], 0
        for e in reversed(events):
            data = p.encode(event_frame(e, None, self.rooms))[:-1]
            size += len(data) + 1
            if size > WELCOME_BYTES:
                break
            entries.append(data)
        entries.reverse()
        self._v1_recent = (lobby.last_id, entries)
        self._v1_recent_size = size
        return entries

    def catch_up(self, conn) -> bytes:
        """The client's next replay frame (v1: plain frames), with
        ``caught_up`` and its join of the fan-out once nothing more is left.
        Between passes only: every id handed out is committed."""
        cur = conn.cursor
        entries, done = self._read(conn, p.REPLAY_MAX_FRAMES, PAGE_BYTES)
        if cur.plain:
            data = b"\n".join(entries) + b"\n" if entries else b""
        elif entries:
            data = b'{"type":"replay","frames":[' + b",".join(entries) + b"]}\n"
        else:
            data = b""
        if done:
            conn.cursor = None
            self.catching_up.discard(conn)
            for room in conn.rooms.values():
                room.waiting.discard(conn)
                self.fanout.join(room, conn)
            if not cur.plain:
                data += p.encode(p.caught_up_frame(self.store.last_id))
        return data

    def _read(self, conn, max_entries: int, max_bytes: int) -> tuple[list, bool]:
        """The next events of conn's cursor as JSON (no newline), at most
        max_entries and max_bytes of them (but at least one); True when
        the sources hold nothing more."""
        cur, store, rooms, session = conn.cursor, self.store, self.rooms, conn.session
        entries: list = []
        size = 0
        while True:
            try:
                events, more = store.catch_up(cur.rooms, session, cur.dm_floor, cur.after, p.REPLAY_MAX_FRAMES)
            except Unavailable:
                if entries:         # what was read so far goes; the cursor stands after it
                    return entries, False
                raise
            for e in events:
                if (cur.plain and e.kind not in (MESSAGE, DIRECT)) or self.hidden_from(conn, e):
                    cur.after = e.id        # a v1 client knows no topics; a question is for the ops
                    continue
                data = p.encode(event_frame(e, session, rooms))[:-1]
                if entries and (len(entries) >= max_entries or size + len(data) + 1 > max_bytes):
                    return entries, False
                entries.append(data)
                size += len(data) + 1
                cur.after = e.id
            if not more:
                return entries, True
            if len(entries) >= max_entries or not events:
                # (none but more: a shared store's node has not delivered up to
                # the cursor yet; the hub asks again after its next pass)
                return entries, False


def _splice(line: bytes, key: bytes, value: bytes) -> bytes:
    """A frame's JSON line with the empty list of ``key`` ("users":) replaced
    by ``value``, JSON already. The first match is the key: inside a JSON
    string every quote is escaped, so the bytes "users":[] cannot occur there."""
    return line.replace(key + b"[]", key + value, 1)
