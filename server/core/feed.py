"""Delivery from a shared store's log: what several servers need to agree on order.

With a shared store (:attr:`server.store.Store.shared`, the Redis one) the
core appends an event and delivers nothing: the chat rules run as with one
server, but :class:`LoggedPass` drops every frame with an id they queue.
The store's reader posts every event of the deployment's log, in log order
(:class:`~server.core.events.Logged`), and :meth:`FeedRules.on_logged`
delivers each to this server's clients: a room's event to its members, a
private message to its two sessions, the sender's session with its ``ref``
(its acknowledgement, so an ack means the log has the message). Every
client of every server gets the same events in the same order.

A client catching up reads the store up to the last id delivered
(``store.last_id``, :meth:`~server.store.Store.advance`) and joins the live
fan-out at that point (:mod:`server.core.catchup`): each id reaches it once.

What the events change beside frames is applied here too, so every server
sees it: a room's last message id, a topic, a room made on another server
(with its moderation state, read from the store), and the moderation
events (roles, bans, mutes, kicks, modes), which
:mod:`server.core.moderation_state` applies after their frame went to the
room, as on the server that made them. The other nodes' presence
(``joined``, ``left``, ``renamed``) comes in the same batches, each placed
after the events up to its ``at`` (:mod:`server.core.presence`).

Thread: the hub thread only.
"""
from __future__ import annotations

from ..protocol import nick_key
from ..store import MESSAGE, TOPIC, Unavailable
from ..store.moderation import EDIT, MODE, MODERATED, QUESTION
from .fanout import Out, Pass
from .frames import event_frame


class LoggedPass(Pass):
    """The pass of a server with a shared store: frames with an id come from
    the log only (:meth:`live_broadcast`, :meth:`live_unicast`); those the
    chat rules queue when they append are dropped."""

    def broadcast(self, out: Out, rooms, sender=None, sender_out: Out | None = None) -> None:
        if out.id is None:
            Pass.broadcast(self, out, rooms, sender, sender_out)

    def unicast(self, conn, out: Out) -> None:
        if out.id is None:
            Pass.unicast(self, conn, out)

    live_broadcast = Pass.broadcast
    live_unicast = Pass.unicast


class Remote:
    """A client of another server, as a private message or a ``mod`` needs
    it: its nick (and key), session, and, when known, identity and admin flag."""
    __slots__ = ("nick", "key", "session", "fp", "admin")

    def __init__(self, nick: str, session: int | None, fp: str | None = None, admin: bool = False):
        self.nick, self.key, self.session, self.fp, self.admin = nick, nick_key(nick), session, fp, admin


class FeedRules:
    """on_logged (mixed into Chat)."""

    def on_logged(self, logged) -> None:
        try:
            shared, i = logged.presence, 0      # the other nodes' presence, placed by its "at"
            for e in logged.events:
                while i < len(shared) and shared[i].at < e.id:
                    self.on_shared(shared[i])
                    i += 1
                self._deliver(e)
                self.store.advance(e.id)
            for item in shared[i:]:
                self.on_shared(item)
        finally:
            logged.applied.set()

    def _deliver(self, e) -> None:
        fanout = self.fanout
        if e.recipient is not None:                     # a private message, or a change of one
            for session in dict.fromkeys((e.from_session, e.to_session)):
                conn = self.by_session.get(session)
                if conn is not None:
                    fanout.live_unicast(conn, Out.of(event_frame(e, session, self.rooms), e.id))
            return
        room = self.rooms.get(e.room)
        if room is None:
            room = self.known_room(e.room)
            if room is None:
                return
        if e.kind == MESSAGE and e.id > room.last_id:
            room.last_id = e.id
        elif e.kind == TOPIC:
            record = room.record
            record.topic, record.topic_by, record.topic_ts = e.text, e.sender, e.ts
        sender = self.by_session.get(e.from_session) if e.from_session is not None else None
        out = Out.of(event_frame(e, None, self.rooms), e.id)
        if e.kind in (QUESTION, EDIT):                  # some members may not see it
            for conn in room.people:
                if conn.cursor is None and conn.held is None and not self.hidden_from(conn, e):
                    fanout.live_unicast(conn, out.with_ref(e.ref) if conn is sender and e.ref else out)
            return
        ref = e.ref if e.ref is not None else self.logged_ack(e)     # (a mod's: server.core.moderation_state)
        mine = out.with_ref(ref) if sender is not None and ref is not None else None
        fanout.live_broadcast(out, [room], sender if mine is not None else None, mine)
        if e.kind in (MODERATED, MODE):
            self.apply_logged(room, e, out)

    def known_room(self, key: str):
        """A room another server made: this one learns it from the store."""
        try:
            record = self.store.find_room(key)
            if record is None:
                return None
            last = self.store.last_message_id(key)
        except Unavailable:
            # Nobody here is in it yet (its members would be on this server): learnt at its next event.
            self.log.warning("a room made on another server could not be looked up: %s", key)
            return None
        return self._learnt(record, last)

    def _learnt(self, record, last: int):
        """A room of the store this server did not know, with its moderation state."""
        from .rooms import Room
        key = record.key
        room = self.rooms[key] = Room(record, last)
        try:
            self._load_moderation(key)      # its owner's role, at least (no event says it)
        except Unavailable:
            self.log.warning("the moderation state of a room made on another server could not be read: %s", key)
        return room

    def learn_rooms(self) -> None:
        """A shared store: learn the rooms other servers made (for the ``rooms``
        listing); while the store cannot be asked, the rooms known do."""
        if not self.store.shared:
            return
        try:
            for record in self.store.rooms():
                if record.key not in self.rooms:
                    self._learnt(record, self.store.last_message_id(record.key))
        except Unavailable:
            pass        # (the store logged why)

    def direct_target(self, key: str):
        """The receiver of a private message: a client here, or on another server."""
        conn = self.nicks.get(key)
        if conn is not None:
            return conn
        holder = self.store.online_holder(key)
        return Remote(*holder) if holder is not None else None

