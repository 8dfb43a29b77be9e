"""Moderation state: each room's roles, bans, mutes and modes, and what a
moderation event changes in it.

The rules (:mod:`server.core.moderation`) decide whether a ``mod`` or a
``mode`` is allowed, write its lasting part to the store and append its
event; then they apply the event here, with :meth:`ModerationState.apply_moderated`
or :meth:`~ModerationState.apply_mode`. With a shared store every node
applies every moderation event it reads from the deployment's log the
same way (:meth:`~ModerationState.apply_logged`, called by
:mod:`server.core.feed`): one code path, whichever node made the event.
What applying does:

- ``ban`` / ``mute``: the restriction is held (by the target's fingerprint,
  else ``nick:KEY``); a ban also takes the banned client out of the room if
  it is connected here (``left`` to the room, as a kick);
- ``kick``: the kicked client is taken out of the room if it is connected here;
- ``unban`` / ``unmute`` (an op's or an expiry's): the restriction ends;
- ``op`` / ``deop`` / ``voice`` / ``devoice``: the target's fingerprint has
  the role the event names (its result, computed where it was decided);
- ``mode``: each changed mode takes its new value (``key``: the room's key hash).

The stream's order is the truth, and an event may be applied twice (its
node applies it when it makes it, then reads it back) or after a later
one (a node applies its own event before it has read an older one of
another node). So every change is stamped: each thing an event changes
(a room's ban or mute of someone, someone's role, one mode, a client's
kick) remembers the id of the event that last changed it, and an event
changes it only when its id is newer. Applying is idempotent, and every
node ends in the state of the stream's order. An event that lacks what
applying needs (one written by an older node) changes nothing here.

Applying reads nothing from the store. What it writes is bookkeeping (a
session leaving a room, which waits for the pass's commit) and, when a
kicked or banned client is in the room here, its ``left`` shared with the
other nodes (:meth:`~server.core.presence.PresenceRules.share`: one round
trip on the hub's own connection, which never raises).

Thread: the hub thread only.
"""
from __future__ import annotations

import json
from collections import namedtuple

from .. import protocol as p
from ..store.moderation import MODE, MODERATED

DEFAULT_MODES = {"moderated": False, "questions": False, "announce": False, "slow": 0, "dm": True}
ROLE_ACTIONS = ("op", "deop", "voice", "devoice")
LIFTS = {"unban": "bans", "unmute": "mutes"}

Restriction = namedtuple("Restriction", "nick until by reason")


class RoomMod:
    """A room's moderation state: modes, roles by fingerprint, bans and mutes
    by who (fingerprint or ``nick:KEY``), when each member last spoke (slow
    mode), and the stamps (thing changed -> id of the event that last changed it)."""

    __slots__ = ("modes", "roles", "bans", "mutes", "spoke", "stamps")

    def __init__(self, modes: dict | None = None):
        self.modes = dict(DEFAULT_MODES, **(modes or {}))
        self.roles: dict = {}
        self.bans: dict = {}
        self.mutes: dict = {}
        self.spoke: dict = {}
        self.stamps: dict = {}

    def newer(self, thing: tuple, event_id: int) -> bool:
        """True (and the thing stamped) when event_id is newer than the last
        event applied to ``thing``."""
        if self.stamps.get(thing, 0) >= event_id:
            return False
        self.stamps[thing] = event_id
        return True


def who(conn) -> str:
    """What a ban or a mute holds: the fingerprint, else the nick key."""
    return conn.fp if conn.fp is not None else "nick:" + conn.key


class ModerationState:
    """The state and its changes (mixed into Chat, with the rules of
    :class:`~server.core.moderation.ModerationRules`)."""

    def _load_moderation(self, room_key: str | None = None) -> None:
        """Read the moderation state from the store: every room's at start,
        or one room's (a room another node made, learnt now)."""
        store = self.store
        modes = store.room_modes()
        if room_key is None:
            self.mod = {key: RoomMod(m) for key, m in modes.items()}
        else:
            self.mod[room_key] = RoomMod(modes.get(room_key))
        for room, fp, role in store.room_roles():
            if room_key in (None, room):
                self.mod_of(room).roles[fp] = role
        for table in ("bans", "mutes"):
            for room, w, nick, until, by, reason in store.restrictions(table):
                if room_key in (None, room):
                    getattr(self.mod_of(room), table)[w] = Restriction(nick, until, by, reason)

    def mod_of(self, room_key: str) -> RoomMod:
        state = self.mod.get(room_key)
        if state is None:
            state = self.mod[room_key] = RoomMod()
        return state

    # -- applying events ---------------------------------------------------------

    @staticmethod
    def logged_ack(event) -> str | None:
        """The ref a moderated or mode event's maker gets its copy with (kept
        in its extra, not as the event's ref: see ModerationRules._announce)."""
        if event.kind not in (MODERATED, MODE) or not event.extra:
            return None
        try:
            return json.loads(event.extra).get("ack")
        except ValueError:
            return None

    def apply_logged(self, room, event, out) -> None:
        """A moderated or mode event read from a shared store's log (any
        node's, this one's included), whose frame ``out`` just went to the
        room: applied as where it was made."""
        try:
            extra = json.loads(event.extra) if event.extra else {}
        except ValueError:
            return
        if event.kind == MODERATED:
            self._tell_removed(room, event.id, extra, out)
            self.apply_moderated(room, event.id, extra)
        elif event.kind == MODE and isinstance(extra.get("changed"), dict):
            self.apply_mode(room, event.id, extra["changed"], extra.get("key_hash"))

    def apply_moderated(self, room, event_id: int, extra: dict) -> None:
        """What a ``moderated`` event (its stored ``extra``) changes here."""
        state, action = self.mod_of(room.key), extra.get("action")
        if action in ("ban", "mute") and extra.get("who"):
            table, w = action + "s", extra["who"]
            if state.newer((table, w), event_id):
                getattr(state, table)[w] = Restriction(extra.get("nick", ""), extra.get("until"), extra.get("by"),
                                                       extra.get("reason"))
                if action == "ban":
                    self._remove_here(room, extra, "ban")
        elif action in LIFTS and extra.get("who"):
            table = LIFTS[action]
            if state.newer((table, extra["who"]), event_id):
                getattr(state, table).pop(extra["who"], None)
        elif action == "kick" and extra.get("session") is not None:
            if state.newer(("kick", extra["session"]), event_id):
                self._remove_here(room, extra, "kick")
        elif action in ROLE_ACTIONS and extra.get("fp"):
            fp = extra["fp"]
            if state.newer(("roles", fp), event_id):
                if extra.get("role") is None:
                    state.roles.pop(fp, None)
                else:
                    state.roles[fp] = extra["role"]

    def apply_mode(self, room, event_id: int, changed: dict, key_hash: str | None) -> None:
        """What a ``mode`` event changes here: each mode in ``changed`` (the
        ``key``: ``key_hash``, None for no key)."""
        state = self.mod_of(room.key)
        for name, value in changed.items():
            if (name == "key" and value and key_hash is None) or (name != "key" and name not in DEFAULT_MODES):
                continue                # an older node's key (no hash in it), a newer node's mode
            if not state.newer(("mode", name), event_id):
                continue
            if name == "key":
                room.record.key_hash = key_hash if value else None
            else:
                state.modes[name] = value
                if name == "slow":
                    state.spoke.clear()

    def _tell_removed(self, room, event_id: int, extra: dict, out) -> None:
        """A client this node kicked or banned left the room when the event was
        made, before its frame came from the log: it gets the frame too (as
        with one server, and as a client of another node does)."""
        thing = {"kick": ("kick", extra.get("session")), "ban": ("bans", extra.get("who"))}.get(extra.get("action"))
        target = self.by_session.get(extra.get("session"))
        if thing is not None and target is not None and target not in room.people and target.cursor is None \
                and self.mod_of(room.key).stamps.get(thing) == event_id:
            self.fanout.live_unicast(target, out)

    def _remove_here(self, room, extra: dict, why: str) -> None:
        """The kicked or banned client (by its session), if it is in the room
        on this node: the room and it get ``left``; it is out of the room."""
        target = self.by_session.get(extra.get("session"))
        if target is None or target not in room.people:
            return
        frame = p.removed_frame(room.name, target.nick, why, extra.get("by"), extra.get("reason"))
        self.broadcast(frame, [room])
        self._exit(target, room)
        target.reads.pop(room.key, None)
        self.store.part_room(target.session, room.key)
        self.share(frame, [room], target, routed=False)     # the room on the other nodes (server.core.presence)
