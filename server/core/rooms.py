"""Rooms: their state, and the rules of join, part, topic, rooms, read and history.

A :class:`Room` knows who is in it (``people``: this server's clients
present; with a shared store ``remote`` too, its members on the other nodes,
:mod:`server.core.presence`; its ``room`` frame lists both), who is in its fan-out (``members``: those
who get its broadcasts live, see :mod:`server.core.fanout`) and who is
present but still catching up (``waiting``). Rooms are kept in the store:
they survive restarts and do not vanish when empty.

A room with a key (a password to join) keeps it as a salted SHA-256
(:func:`hash_key`), checked on the hub: cheap on purpose, unlike the
server password's scrypt, since joins are frequent and a room key guards a
room, not the server.

:class:`RoomRules` is the part of :class:`server.core.chat.Chat` that
handles the room frames of protocol v2.

Thread: the hub thread only.
"""
from __future__ import annotations

import hashlib
import hmac
import os
import time

from .. import protocol as p
from ..store import RoomRecord
from .fanout import Out
from .frames import event_frame


class Room:
    __slots__ = ("record", "people", "members", "waiting", "last_id", "remote")

    def __init__(self, record: RoomRecord, last_id: int = 0):
        self.record = record
        self.people: dict = {}      # client -> None: everyone in the room, in the order they came
        self.members: dict = {}     # client -> its start index in this pass: the live fan-out
        self.waiting: set = set()   # present, catching up: frames without an id go to them directly
        self.last_id = last_id      # the id of its newest message, 0 if none
        self.remote: dict = {}      # nick key -> server.core.presence.Member: in it on another node

    @property
    def key(self) -> str:
        return self.record.key

    @property
    def name(self) -> str:
        return self.record.name

    @property
    def locked(self) -> bool:
        return self.record.key_hash is not None

    def __len__(self) -> int:
        return len(self.people)

    def __repr__(self) -> str:
        return f"<Room {self.name} {len(self.people)} people>"

    def nicks(self) -> list:
        """Everyone in it, on this server and (shared store) the others, sorted ignoring case."""
        if not self.remote:
            return sorted((c.nick for c in self.people), key=str.casefold)
        names = {m.key: m.nick for m in self.remote.values()}
        names.update((c.key, c.nick) for c in self.people)
        return sorted(names.values(), key=str.casefold)

    def everyone(self):
        """Its clients here, then its members on other nodes (both have nick, fp, admin)."""
        yield from self.people
        yield from self.remote.values()

    def summary(self) -> dict:
        r = self.record
        users = len(self.people) if not self.remote else len(self.nicks())
        return {"room": r.name, "topic": r.topic, "users": users, "last_id": self.last_id,
                "key": r.key_hash is not None}


def hash_key(key: str) -> str:
    """A room key as stored: ``sha256$SALT$HEX``."""
    salt = os.urandom(16)
    return f"sha256${salt.hex()}${hashlib.sha256(salt + key.encode('utf-8')).hexdigest()}"


def key_matches(key: str | None, stored: str) -> bool:
    if key is None:
        return False
    try:
        _, salt, digest = stored.split("$")
        mine = hashlib.sha256(bytes.fromhex(salt) + key.encode("utf-8")).hexdigest()
    except ValueError:
        return False
    return hmac.compare_digest(mine, digest)


class RoomRules:
    """join, part, topic, rooms, read, history (mixed into Chat)."""

    def _v2(self, conn, event, kind: str) -> bool:
        """True when conn may send this v2 frame; else it is told why."""
        if not self._welcomed(conn, event):
            return False
        if conn.v < 2:
            self.error(conn, p.ProtocolError(p.UNKNOWN_TYPE, f"'{kind}' is a frame of protocol 2: say \"v\":2 in "
                                                             "your hello to use rooms", getattr(event, "ref", None)))
            return False
        return True

    def _present(self, conn, name: str, ref) -> Room | None:
        room = self.rooms.get(p.room_key(name))
        if room is None or conn not in room.people:
            self.error(conn, p.ProtocolError(p.NOT_IN_ROOM, f"You are not in the room {name!r}: join it first.",
                                             ref), counts=False)
            return None
        return room

    def room_frame(self, conn, room: Room, ref: str | None = None) -> dict:
        f = p.room_frame(room.name, room.record.topic, room.nicks(), room.last_id,
                         conn.reads.get(room.key, 0), room.locked, ref)
        f.update(self.room_extras(conn, room))     # modes, role, roles (server.core.moderation)
        return f

    def on_join(self, conn, join: p.Join) -> None:
        if not self._v2(conn, join, "join"):
            return
        cfg, key = self.config, p.room_key(join.room)
        room = self.rooms.get(key)
        if room is None:
            room = self.known_room(key)     # made by another server of a shared store
        if room is not None and conn in room.people:
            self.send(conn, self.room_frame(conn, room, join.ref))     # joined already: its state again
            return
        if room is not None and self.join_refused(conn, room, join.ref):
            return
        if room is not None and room.locked and not key_matches(join.key, room.record.key_hash):
            what = "a wrong key" if join.key is not None else "no key"
            return self.error(conn, p.ProtocolError(p.BAD_KEY, f"The room {room.name!r} has a key, and your join "
                                                               f"had {what}.", join.ref), counts=False)
        if len(conn.rooms) >= cfg.max_rooms_per_client:
            return self.error(conn, p.ProtocolError(p.TOO_MANY_ROOMS, f"You are in {len(conn.rooms)} rooms, the "
                                                                      "most one connection may be in: part one "
                                                                      "first.", join.ref), counts=False)
        if room is None:
            if len(self.rooms) >= cfg.max_rooms:
                return self.error(conn, p.ProtocolError(p.TOO_MANY_ROOMS, f"This server has {len(self.rooms)} "
                                                                          "rooms, its most: join one of them.",
                                                        join.ref), counts=False)
            room = self._create(join.room, key, join.key, join.topic, conn)
        self._enter(conn, room, conn.reads.get(key, room.last_id))
        self.send(conn, self.room_frame(conn, room, join.ref))
        self.presence(p.joined_frame(conn.nick, room.name), room, conn)

    def _create(self, name: str, key: str, password: str | None, topic: str | None, conn) -> Room:
        now = round(time.time(), 3)
        record = RoomRecord(key, name, created=now, key_hash=hash_key(password) if password is not None else None)
        if topic:
            _, ts = self.store.add_topic(key, conn.nick, topic, conn.session)
            record.topic, record.topic_by, record.topic_ts = topic, conn.nick, ts
        self.store.create_room(record)
        room = self.rooms[key] = Room(record)
        self.created(room, conn)
        self.log.info("%s created the room %s", conn.label, name)
        return room

    def _enter(self, conn, room: Room, read: int) -> None:
        """conn is in room from now on (present; in the fan-out too unless it is catching up)."""
        room.people[conn] = None
        conn.rooms[room.key] = room
        conn.reads[room.key] = read
        self.store.join_room(conn.session, room.key, read)
        if conn.cursor is not None:
            conn.cursor.add(room.key, self.store.last_id)
            room.waiting.add(conn)
        elif conn.held is None:
            self.fanout.join(room, conn)

    def _exit(self, conn, room: Room) -> None:
        room.people.pop(conn, None)
        room.waiting.discard(conn)
        self.fanout.part(room, conn)
        conn.rooms.pop(room.key, None)
        if conn.cursor is not None:
            conn.cursor.cut(room.key, self.store.last_id)

    def on_part(self, conn, part: p.Part) -> None:
        if not self._v2(conn, part, "part"):
            return
        room = self._present(conn, part.room, part.ref)
        if room is None:
            return
        self._exit(conn, room)
        conn.reads.pop(room.key, None)
        self.store.part_room(conn.session, room.key)
        left = p.left_frame(conn.nick, "part", room.name)
        self.presence(left, room, conn)
        self.send(conn, dict(left, ref=part.ref) if part.ref is not None else left)

    def on_topic(self, conn, change: p.SetTopic) -> None:
        if not self._v2(conn, change, "topic"):
            return
        room = self._present(conn, change.room, change.ref)
        if room is None:
            return
        topic_id, ts = self.store.add_topic(room.key, conn.nick, change.topic, conn.session, change.ref)
        record = room.record
        record.topic, record.topic_by, record.topic_ts = change.topic, conn.nick, ts
        self.store.update_room(record)
        out = Out.of(p.topic_frame(room.name, change.topic, conn.nick, topic_id, ts), topic_id)
        self.fanout.broadcast(out, [room], conn, out.with_ref(change.ref) if change.ref is not None else None)

    def on_rooms(self, conn, ask: p.ListRooms) -> None:
        if not self._v2(conn, ask, "rooms"):
            return
        self.learn_rooms()      # a shared store: those made on other nodes too
        rooms = sorted(self.rooms.values(), key=lambda r: r.name.casefold())
        self.send(conn, p.rooms_frame([r.summary() for r in rooms], ask.ref))

    def on_read(self, conn, mark: p.MarkRead) -> None:
        if not self._v2(conn, mark, "read"):
            return
        room = self._present(conn, mark.room, None)
        if room is None:
            return
        upto = min(mark.upto, self.store.last_id)
        if upto > conn.reads.get(room.key, 0):
            conn.reads[room.key] = upto
            self.store.mark_read(conn.session, room.key, upto)

    def on_history(self, conn, ask: p.HistoryRequest) -> None:
        if not self._v2(conn, ask, "history"):
            return
        self.store.commit()     # a page answers with what this pass stored too
        if ask.room is not None:
            room = self._present(conn, ask.room, ask.ref)
            if room is None:
                return
            events, more = self.store.page_room(room.key, ask.before, ask.after, ask.limit)
            frames = [event_frame(e, conn.session, self.rooms) for e in events if not self.hidden_from(conn, e)]
            self.send(conn, p.history_frame(frames, more, room=room.name, ref=ask.ref))
        else:
            events, more = self.store.page_direct(conn.session, p.nick_key(ask.with_), ask.before, ask.after,
                                                  ask.limit)
            frames = [event_frame(e, conn.session, self.rooms) for e in events]
            self.send(conn, p.history_frame(frames, more, with_=ask.with_, ref=ask.ref))

    def on_history_at(self, conn, ask) -> None:
        """A page by time (:class:`server.core.events.HistoryAt`): the time
        becomes an id bound, then it is a ``history`` request."""
        if not self._v2(conn, ask, "history"):
            return
        self.store.commit()     # every id handed out is readable, and so is its time
        before = after = None
        if ask.before_ts is not None:
            before = self.store.first_id_after(ask.before_ts, inclusive=True)
        elif ask.after_ts is not None:
            after = self.store.first_id_after(ask.after_ts) - 1
        self.on_history(conn, p.HistoryRequest(ask.room, ask.with_, before, after, ask.limit, ask.ref))
