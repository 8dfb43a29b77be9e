"""Presence across the nodes of a shared store: who is in each room on the other nodes.

With one server, ``joined``, ``left`` and ``renamed`` are frames of the pass,
sent to the room's members. With a shared store (``--redis``) a node also
shares each of them about its own clients (:meth:`PresenceRules.presence`,
:meth:`~PresenceRules.share`; the store keeps each node's members and a
stream of the frames, beside the log and outside its id sequence:
:mod:`server.store.redis_presence`). The store's reader hands the other
nodes' frames to the hub with the log's batches, each after the log's ids up
to its ``at``, and :meth:`PresenceRules.on_shared` shows them here, in the
same shapes as one server sends them, by the same rules (an announce room:
to its ops only).

Each room keeps the members it has on other nodes (``Room.remote``: nick key
-> :class:`Member`), which its ``room`` frame's ``users``, the ``rooms``
listing's counts and the roles include. The rules:

- a remote ``joined`` of a session that a client of this node holds, from
  the node that holds its nick now: that client resumed on the other node;
  this one is dropped (``replaced``, the others see ``left`` reason
  ``reconnected``), as one server drops the old connection of a resume (a
  ``joined`` older than this connection, read late, changes nothing here);
- a remote ``joined`` of a nick the room lists on a third node: the member
  moved; shown as one server shows a resume, ``left`` (``reconnected``) then
  ``joined``;
- a remote ``left`` removes the member only where the room lists it on that
  node: a ``left`` from a node its client has moved away from is stale;
- :class:`~server.core.events.NodeGone`: a node whose key expired (it died
  without a word, or stopped): its members leave every room, ``left`` with
  reason ``connection lost``. One that resumed on another node meanwhile is
  listed on that node and is not announced as gone;
- :class:`~server.core.events.Members` (the members of the live nodes, read
  by a reader that fell behind the presence stream): the rooms' remote
  members are replaced, and the differences shown as ``joined`` / ``left``.
  A node reads them at its start too, before it has clients (:meth:`_load_presence`);
- :class:`~server.core.events.Revived`: this node's key had expired (Redis
  was away longer than its lifetime): the others took its clients for gone,
  so they are shared again as ``joined``.

Thread: the hub thread only.
"""
from __future__ import annotations

from .. import protocol as p
from ..store import Unavailable
from .events import Members, NodeGone, Revived
from .feed import Remote
from .moderation import ModerationRules

LOST = "connection lost"     # the left of a node's clients when the node is gone
MOVED = "reconnected"        # the left of a client that resumed on another node


class Member(Remote):
    """A client of another node in a room: a :class:`~server.core.feed.Remote`
    (nick, key, session, and what its roles need, ``fp`` and ``admin``) and
    the node it is on."""
    __slots__ = ("node",)

    def __init__(self, nick: str, session, fp, admin: bool, node: str):
        super().__init__(nick, session, fp, bool(admin))
        self.node = node

    def __repr__(self) -> str:
        return f"<Member {self.nick} on {self.node}>"


class PresenceRules:
    """presence, share and on_shared (mixed into Chat, before ModerationRules)."""

    def _load_presence(self) -> None:
        """At start (a shared store): the members of the other live nodes, before
        any client of this one is in (nobody to tell)."""
        if not self.store.shared:
            return
        try:
            members = self.store.presence_members().members
        except Unavailable:
            self.log.warning("presence: the other nodes' members could not be read; the reader reads them")
            return
        for node, nick, session, fp, admin, rooms in members:
            for room_key in rooms:
                room = self._room(room_key)
                if room is not None:
                    member = Member(nick, session, fp, admin, node)
                    room.remote[member.key] = member

    # -- this node's clients ------------------------------------------------------

    def presence(self, frame: dict, room, conn) -> None:
        """A ``joined``/``left`` about conn, a client of this node: shown here
        by the moderation rules (announce), and shared with the other nodes."""
        ModerationRules.presence(self, frame, room, conn)
        self.share(frame, [room], conn)

    def share(self, frame: dict, rooms, conn, routed: bool = True, old_key: str | None = None) -> None:
        """With a shared store, tell the other nodes a presence frame about
        conn (called once its rooms are as the frame leaves them; ``routed``:
        shown there by the presence rules, else to the whole room;
        ``old_key``: conn's nick key before a rename). Never raises."""
        if not self.store.shared:
            return
        member = [conn.nick, conn.session, conn.fp, conn.admin, list(conn.rooms)] if conn.rooms else None
        data = {"frame": frame, "rooms": [r.key for r in rooms], "session": conn.session, "fp": conn.fp,
                "admin": bool(conn.admin), "routed": routed}
        self.store.share_presence(conn.key, member, data, old_key)

    # -- the other nodes' (from the store's reader, in log order) -------------------

    def on_shared(self, item) -> None:
        """One item of the other nodes' presence (:class:`~server.core.events.Presence`,
        ``Members``, ``NodeGone``, ``Revived``), handed on by the store's reader
        in its place among the log's events (:meth:`FeedRules.on_logged
        <server.core.feed.FeedRules.on_logged>`)."""
        if type(item) is NodeGone:
            self._node_gone(item.node)
        elif type(item) is Revived:
            self._revived()
        elif type(item) is Members:
            self._members(item)
        else:
            kind = item.frame.get("type")
            if kind == "joined":
                self._remote_joined(item)
            elif kind == "left":
                self._remote_left(item)
            elif kind == "renamed":
                self._remote_renamed(item)
            else:
                self.log.error("presence: nothing handles %r", item.frame)

    def _room(self, key: str):
        room = self.rooms.get(key)         # (not "or": a room with nobody here is falsy)
        return room if room is not None else self.known_room(key)

    def _holder(self, key: str) -> str | None:
        try:
            return self.store.nick_node(key)
        except Unavailable:
            return None         # unknown: the connection here stays

    def _show(self, frame: dict, room, member: Member, routed: bool = True) -> None:
        if routed:
            ModerationRules.presence(self, frame, room, member)
        else:
            self.broadcast(frame, [room])

    def _remote_joined(self, item) -> None:
        frame = item.frame
        key = p.nick_key(frame["nick"])
        mine = self.nicks.get(key)
        if mine is not None and mine.session is not None and mine.session == item.session \
                and self._holder(key) == item.node:
            # It resumed on that node while its old connection here lived on
            # (not a joined of that node older than this connection: it holds the nick now).
            self.hub.drop(mine, MOVED, p.error_frame("replaced", "You connected again from elsewhere."))
        for room_key in item.rooms:
            room = self._room(room_key)
            if room is None:
                continue
            old = room.remote.get(key)
            if old is not None and old.node == item.node and old.session == item.session:
                continue            # listed already (a node that shares its clients again)
            if old is not None and old.node != item.node:
                # Its session on another node (a resume), or someone else took the
                # nick of a client whose node died before its death was seen here.
                del room.remote[key]
                why = MOVED if old.session == item.session else LOST
                self._show(p.left_frame(old.nick, why, room.name), room, old)
            member = Member(frame["nick"], item.session, item.fp, item.admin, item.node)
            room.remote[key] = member
            self._show(frame, room, member, item.routed)

    def _remote_left(self, item) -> None:
        key = p.nick_key(item.frame["nick"])
        for room_key in item.rooms:
            room = self.rooms.get(room_key)
            member = room.remote.get(key) if room is not None else None
            if member is None or member.node != item.node:
                continue            # stale: it is not there, or it is there from another node now
            del room.remote[key]
            self._show(item.frame, room, member, item.routed)

    def _remote_renamed(self, item) -> None:
        old, new = p.nick_key(item.frame["old"]), p.nick_key(item.frame["new"])
        touched = []
        for room_key in item.rooms:
            room = self.rooms.get(room_key)
            member = room.remote.get(old) if room is not None else None
            if member is None or member.node != item.node:
                continue
            del room.remote[old]
            member.nick, member.key = item.frame["new"], new
            room.remote[new] = member
            touched.append(room)
        if touched:
            self.broadcast(item.frame, touched)        # once to everyone sharing a room with it

    def _revived(self) -> None:
        """The other nodes took this one for dead: its clients join again there."""
        for conn in list(self.nicks.values()):
            for room in list(conn.rooms.values()):
                self.share(p.joined_frame(conn.nick, room.name), [room], conn)
        self.log.warning("presence: this node's key had expired (Redis was away?); its clients are shared again")

    def _node_gone(self, node: str) -> None:
        for room in list(self.rooms.values()):
            for key, member in list(room.remote.items()):
                if member.node == node:
                    del room.remote[key]
                    self._show(p.left_frame(member.nick, LOST, room.name), room, member)
        self.log.info("presence: node %s is gone; its clients left", node)

    def _members(self, snapshot: Members) -> None:
        """The rooms' remote members become those read; what changed is shown."""
        now: dict = {}          # room key -> {nick key: Member}
        for node, nick, session, fp, admin, rooms in snapshot.members:
            for room_key in rooms:
                member = Member(nick, session, fp, admin, node)
                now.setdefault(room_key, {})[member.key] = member
        for room_key in now:
            self._room(room_key)            # learnt, if another node made it
        for room in list(self.rooms.values()):
            was, will = room.remote, now.get(room.key, {})
            for key, member in list(was.items()):
                if key not in will or will[key].node != member.node:
                    del was[key]
                    self._show(p.left_frame(member.nick, LOST, room.name), room, member)
            for key, member in will.items():
                if key not in was:
                    was[key] = member
                    self._show(p.joined_frame(member.nick, room.name), room, member)
