"""Roles and moderation: who may do what in a room, and the mod and mode frames.

Per room, per fingerprint: ``owner`` (who created the room with an
identity), ``op``, ``voice``; everyone else is a member. Admins
(:mod:`server.core.identity`) act as owners everywhere. A connection without
identity is a member and can get no role.

Rules (:func:`allowed`): only an owner may op or deop; an op and up may
kick, ban, unban, mute, unmute, voice, devoice, set modes, delete others'
messages, release questions and read the audit. Nobody acts on someone of
equal or higher rank, nor on themself, except to deop or devoice themself.
A refusal is ``forbidden`` with a sentence and changes nothing.

A ban or a mute holds the target's fingerprint (without identity: its nick
key), so a new nick does not escape it; a timed one ends when its ``until``
passes (checked on use, and the hub's timer calls :meth:`expire`, which
tells the room). Modes (:data:`~.moderation_state.DEFAULT_MODES`) decide who may speak
(:meth:`ModerationRules.speaking_refused`, called by ``say``; ``dm`` asks
:meth:`dm_refused`). Every mod and mode is a stored event with an id, in
catch-up, history and the audit.

The rules decide and store; what an event changes in the room state
(:class:`~server.core.moderation_state.RoomMod`, ``Chat.mod``, loaded from
the store at start) is applied by :mod:`server.core.moderation_state`, on
the node that made it and, with a shared store, on every node that reads
it from the log. A ``mod`` names someone in the room on this node, or with
a shared store on another node (:meth:`ModerationRules.member_elsewhere`).
Delete, edit, release and audit are in :mod:`server.core.redaction`.

Thread: the hub thread only.
"""
from __future__ import annotations

import itertools
import json
import math

from .. import protocol as p
from ..store.moderation import MODE, MODERATED
from .fanout import Out
from .moderation_state import ModerationState, Restriction, who

RANK = {"member": 0, "voice": 1, "op": 2, "owner": 3}
NEEDS = {"op": "owner", "deop": "owner"}          # every other action needs an op
ON_SELF = ("deop", "devoice")                     # the only actions on oneself
SERVER_SESSION = 0      # the "session" of an expiry's event: no client's (sessions start at 1)


def allowed(action: str, actor: str, target: str | None, on_self: bool) -> bool:
    """May someone of role ``actor`` do ``action`` to someone of role
    ``target`` (None: not present, for unban)? The rule table of the module docstring."""
    if RANK[actor] < RANK[NEEDS.get(action, "op")]:
        return on_self and action in ON_SELF and RANK[actor] > 0
    if on_self:
        return action in ON_SELF
    return target is None or RANK[target] < RANK[actor]


def _minutes(seconds: float) -> str:
    seconds = round(seconds, 1)         # until is kept to the millisecond
    if seconds < 90:
        n = max(1, math.ceil(seconds))
        return f"{n} more second" + ("s" if n != 1 else "")
    n = math.ceil(seconds / 60)
    return f"{n} more minutes"


def _restricts_speech(state) -> bool:
    """A mute, or a mode that limits who speaks (announce, moderated, slow)."""
    modes = state.modes
    return bool(state.mutes or modes["announce"] or modes["moderated"] or modes["slow"])


class ModerationRules(ModerationState):
    """mod, mode, the speaking checks and their expiry (mixed into Chat)."""

    def role(self, conn, room) -> str:
        if conn.admin:
            return "owner"
        if conn.fp is None:
            return "member"
        return self.mod_of(room.key).roles.get(conn.fp, "member")

    def is_op(self, conn, room) -> bool:
        return RANK[self.role(conn, room)] >= RANK["op"]

    def modes(self, room) -> dict:
        return dict(self.mod_of(room.key).modes, key=room.locked)

    def room_extras(self, conn, room) -> dict:
        """What a ``room`` frame adds: the modes, the joiner's role, the roles above member."""
        # role() inlined: a room frame for each of a thousand joiners reads
        # every member of the room.
        by_fp = self.mod_of(room.key).roles
        roles = {}
        for c in itertools.chain(room.people, room.remote.values()):
            if c.admin:
                roles[c.nick] = "owner"
            elif c.fp is not None and by_fp:
                r = by_fp.get(c.fp, "member")
                if r != "member":
                    roles[c.nick] = r
        return {"modes": self.modes(room), "role": self.role(conn, room), "roles": roles}

    def created(self, room, conn) -> None:
        """A join with an identity created the room: its creator owns it."""
        if conn.fp is not None:
            self.mod_of(room.key).roles[conn.fp] = "owner"
            self.store.set_role(room.key, conn.fp, "owner")

    def ops_in(self, room) -> list:
        return [c for c in room.people if self.is_op(c, room)]

    def presence(self, frame: dict, room, conn) -> None:
        """A ``joined``/``left`` about conn: to the room, or in an announce
        room to conn and the ops only."""
        if not self.mod_of(room.key).modes["announce"]:
            return self.broadcast(frame, [room])
        for c in self.ops_in(room):
            if c is not conn:
                self.send(c, frame)
        if conn in room.people:
            self.send(conn, frame)

    # -- the checks the chat rules call ------------------------------------------

    def _restriction(self, room, table: str, conn) -> Restriction | None:
        """conn's ban or mute in room, if any still runs (an expired one is lifted now)."""
        state = self.mod_of(room.key)
        w = who(conn)
        r = getattr(state, table).get(w)
        if r is not None and r.until is not None and r.until <= self.clock():
            self._lift(room, table, w, r, None, "expired", None)
            return None
        return r

    def banned_error(self, room, r: Restriction, ref) -> p.ProtocolError:
        why = f" ({r.reason})" if r.reason else ""
        how = f" for {_minutes(r.until - self.clock())}" if r.until is not None else ""
        err = p.ProtocolError(p.BANNED, f"You are banned from #{room.name}{how}{why}.", ref)
        return err

    def join_refused(self, conn, room, ref) -> bool:
        """True (and conn told) when conn is banned from an existing room."""
        r = self._restriction(room, "bans", conn)
        if r is None:
            return False
        f = self.banned_error(room, r, ref).frame()
        f.update(room=room.name, until=r.until, reason=r.reason)
        self.send(conn, f)
        return True

    def say_gated(self, room) -> bool:
        """Whether a ``say`` in room must pass :meth:`speaking_refused` and
        ``asked`` (a mute, or a mode that refuses or diverts it); False is
        the common case, which every say pays for."""
        state = self.mod_of(room.key)
        return _restricts_speech(state) or bool(state.modes["questions"])

    def speaking_refused(self, conn, room, ref) -> bool:
        """True (and conn told why) when the room's modes, a mute or slow mode
        forbid conn's ``say`` in room now."""
        state = self.mod_of(room.key)
        modes = state.modes
        if not _restricts_speech(state):
            return False        # the common case, which every say pays for
        rank = RANK[self.role(conn, room)]
        r = self._restriction(room, "mutes", conn)
        if r is not None:
            how = f" for {_minutes(r.until - self.clock())}" if r.until is not None else ""
            f = p.error_frame(p.MUTED, f"You are muted in #{room.name}{how}.", ref)
            f.update(room=room.name, until=r.until)
            self.send(conn, f)
            return True
        if modes["announce"] and rank < RANK["op"]:
            return self._refuse(conn, f"Only the ops speak in #{room.name}: it is an announcement room.", ref)
        if modes["moderated"] and rank < RANK["voice"]:
            return self._refuse(conn, f"#{room.name} is moderated: only people with a voice may speak; ask an "
                                      "op for one.", ref)
        if modes["slow"] and rank == 0:
            now, w = self.clock(), who(conn)
            last = state.spoke.get(w)
            if last is not None and now - last < modes["slow"]:
                wait = math.ceil(modes["slow"] - (now - last))
                f = p.error_frame(p.SLOW_MODE, f"#{room.name} is in slow mode: one message every "
                                               f"{modes['slow']} s; wait {wait} s.", ref)
                f.update(room=room.name, retry_after=wait)
                self.send(conn, f)
                return True
            state.spoke[w] = now
        return False

    def dm_refused(self, conn, target, ref) -> bool:
        """True (and conn told) when conn and target share a room whose
        private messages are off, and neither is an op of it (a member may
        still write to the teacher). A target on another node shares the
        room when :meth:`member_elsewhere` says it is in it."""
        here = self.nicks.get(target.key) is target
        for key, room in conn.rooms.items():
            if self.mod_of(key).modes["dm"] or self.is_op(conn, room):
                continue
            other = target if target in room.people else None if here else self.member_elsewhere(room, target.key)
            if other is not None and not self.is_op(other, room):
                return self._refuse(conn, f"Private messages between members of #{room.name} are off.", ref)
        return False

    def _refuse(self, conn, message: str, ref) -> bool:
        self.error(conn, p.ProtocolError(p.FORBIDDEN, message, ref), counts=False)
        return True

    def may_act(self, conn, room, need: str, what: str, ref) -> bool:
        if RANK[self.role(conn, room)] >= RANK[need]:
            return True
        who_may = "the owner" if need == "owner" else "an op"
        self._refuse(conn, f"Only {who_may} of #{room.name} may {what}.", ref)
        return False

    # -- mod -------------------------------------------------------------------

    def on_mod(self, conn, mod: p.Mod) -> None:
        if not self._v2(conn, mod, "mod"):
            return
        room = self._present(conn, mod.room, mod.ref)
        if room is None:
            return
        state, key = self.mod_of(room.key), p.nick_key(mod.nick)
        actor = self.role(conn, room)
        if mod.action == "unban":
            found = [(w, r) for w, r in state.bans.items() if p.nick_key(r.nick) == key]
            if not allowed("unban", actor, None, False):
                return self._refuse(conn, f"Only an op of #{room.name} may unban.", mod.ref) and None
            if not found:
                return self.error(conn, p.ProtocolError(p.BAD_MOD, f"Nobody called {mod.nick} is banned from "
                                                                   f"#{room.name}.", mod.ref), counts=False)
            w, r = found[0]
            return self._lift(room, "bans", w, r, conn.nick, mod.reason, mod.ref, conn)
        target = next((c for c in room.people if c.key == key), None) or self.member_elsewhere(room, key)
        if target is None:
            return self.error(conn, p.ProtocolError(p.NOT_IN_ROOM, f"{mod.nick} is not in #{room.name}.", mod.ref),
                              counts=False)
        if not allowed(mod.action, actor, self.role(target, room), target is conn):
            if target is not conn and RANK[actor] >= RANK[NEEDS.get(mod.action, "op")]:
                return self._refuse(conn, f"{target.nick} is {self.role(target, room)} of #{room.name}: you may "
                                          "not act on someone of your rank or above.", mod.ref) and None
            need = "the owner" if NEEDS.get(mod.action) == "owner" else "an op"
            return self._refuse(conn, f"Only {need} of #{room.name} may {mod.action} "
                                      f"{'themself' if target is conn else 'someone'}.", mod.ref) and None
        if mod.action in ("op", "voice") and target.fp is None:
            return self.error(conn, p.ProtocolError(p.NO_IDENTITY, f"{target.nick}'s client sent no identity, so "
                                                                   "it cannot be given a role.", mod.ref),
                              counts=False)
        getattr(self, "_mod_" + mod.action)(conn, room, state, target, mod)

    def member_elsewhere(self, room, key: str):
        """The client called ``key`` as a target on another node of a shared
        store (a :class:`~server.core.feed.Remote` with its session, identity
        and admin flag), when it counts as in the room: its nick is online on
        a live node and its session is in the room (the deployment's record of
        the session's rooms). None with one server, or when it is not."""
        if not self.store.shared:
            return None
        found = self.store.online_elsewhere(key)
        if found is None or found[1] is None or room.key not in self.store.session_rooms(found[1]):
            return None
        from .feed import Remote        # not at the top: feed -> frames -> redaction -> here
        return Remote(*found)

    def _announce(self, conn, room, action: str, nick: str, reason, until, ref, **change) -> None:
        """Store a ``moderated`` event (``change``: what applying it needs,
        :meth:`~server.core.moderation_state.ModerationState.apply_moderated`),
        send it to everyone in the room, and apply it. Without ``conn`` (an
        expiry) the event is appended once for the deployment: each node's
        timer makes the same one (the same ref), and a shared store appends
        a ref it has seen once. A moderator's ref is kept in ``extra``
        instead (``ack``): a door may use one ref for many actions (IRC's
        ``KICK #room``), which the store must not take for a retry."""
        by = conn.nick if conn is not None else None
        extra = {"action": action, "nick": nick, "by": by, "reason": reason, "until": until, **change}
        if conn is None:
            session, once = SERVER_SESSION, f"{action}:{room.key}:{change.get('who')}:{change.get('ends')}"
        else:
            session, once = conn.session, None
            if ref is not None:
                extra["ack"] = ref      # a shared store's moderator gets its copy with it (server.core.feed)
        event_id, ts = self.store.add_event(MODERATED, room.key, by or "", reason or "", session, extra, ref=once)
        out = Out.of(p.moderated_frame(room.name, action, nick, by, reason, until, event_id, ts), event_id)
        self.fanout.broadcast(out, [room], conn, out.with_ref(ref) if ref is not None and conn is not None else None)
        self.apply_moderated(room, event_id, extra)

    def _until(self, mod: p.Mod):
        return round(self.clock() + mod.duration, 3) if mod.duration is not None else None

    def _mod_kick(self, conn, room, state, target, mod) -> None:
        self._announce(conn, room, "kick", target.nick, mod.reason, None, mod.ref, session=target.session)

    def _mod_ban(self, conn, room, state, target, mod) -> None:
        until, w = self._until(mod), who(target)
        self.store.restrict("bans", room.key, w, target.nick, until, conn.nick, mod.reason)
        self._announce(conn, room, "ban", target.nick, mod.reason, until, mod.ref, who=w, session=target.session)

    def _mod_mute(self, conn, room, state, target, mod) -> None:
        until, w = self._until(mod), who(target)
        self.store.restrict("mutes", room.key, w, target.nick, until, conn.nick, mod.reason)
        self._announce(conn, room, "mute", target.nick, mod.reason, until, mod.ref, who=w)

    def _mod_unmute(self, conn, room, state, target, mod) -> None:
        w = who(target)
        self._lift(room, "mutes", w, state.mutes.get(w) or Restriction(target.nick, None, None, None), conn.nick,
                   mod.reason, mod.ref, conn)

    def _lift(self, room, table: str, w: str, r: Restriction, by, reason, ref, conn=None) -> None:
        """End a ban or a mute (``conn`` None: it expired) and tell the room."""
        self.store.lift(table, room.key, w)
        change = {"who": w} if conn is not None else {"who": w, "ends": r.until}
        self._announce(conn, room, "unban" if table == "bans" else "unmute", r.nick, reason, None, ref, **change)

    def _set_role(self, conn, room, state, target, mod, role: str | None) -> None:
        """A role never goes down by a voice nor up by a devoice: voice on an op,
        devoice of an op, deop of a voice leave the role as it is."""
        now = state.roles.get(target.fp, "member")
        if (mod.action == "voice" and RANK[now] >= RANK["voice"]) or (mod.action == "devoice" and now != "voice") \
                or (mod.action == "deop" and RANK[now] < RANK["op"]):
            role = now if now != "member" else None
        self.store.set_role(room.key, target.fp, role)
        self._announce(conn, room, mod.action, target.nick, mod.reason, None, mod.ref, fp=target.fp, role=role)

    def _mod_op(self, conn, room, state, target, mod) -> None:
        self._set_role(conn, room, state, target, mod, "op")

    def _mod_deop(self, conn, room, state, target, mod) -> None:
        self._set_role(conn, room, state, target, mod, None)

    def _mod_voice(self, conn, room, state, target, mod) -> None:
        self._set_role(conn, room, state, target, mod, "voice")

    def _mod_devoice(self, conn, room, state, target, mod) -> None:
        self._set_role(conn, room, state, target, mod, None)

    def expire(self) -> None:
        """End the timed bans and mutes whose time has come, telling their
        rooms (hub timer; with a shared store every node's timer finds them,
        and the event is appended once, see :meth:`_announce`)."""
        now = self.clock()
        for key, state in list(self.mod.items()):
            room = self.rooms.get(key)
            if room is None:
                continue
            for table in ("bans", "mutes"):
                for w, r in list(getattr(state, table).items()):
                    if r.until is not None and r.until <= now:
                        self._lift(room, table, w, r, None, "expired", None)

    # -- mode ------------------------------------------------------------------

    def on_mode(self, conn, mode: p.SetMode) -> None:
        if not self._v2(conn, mode, "mode"):
            return
        room = self._present(conn, mode.room, mode.ref)
        if room is None or not self.may_act(conn, room, "op", "change its modes", mode.ref):
            return
        changed, key_hash = mode.changes(), None
        if "key" in changed:
            from .rooms import hash_key     # not at the top: rooms -> frames -> redaction -> here
            key = changed.pop("key")
            key_hash = hash_key(key) if key else None
            room.record.key_hash = key_hash
            self.store.update_room(room.record)
            changed["key"] = bool(key)
        modes = dict(self.mod_of(room.key).modes, **{k: v for k, v in changed.items() if k != "key"})
        self.store.set_modes(room.key, modes)
        modes["key"] = room.locked
        extra = {"changed": changed, "modes": modes}
        if key_hash is not None:
            extra["key_hash"] = key_hash        # for the other nodes (never in a frame)
        if mode.ref is not None:
            extra["ack"] = mode.ref             # as _announce's
        event_id, ts = self.store.add_event(MODE, room.key, conn.nick, "", conn.session, extra)
        out = Out.of(p.mode_frame(room.name, changed, modes, conn.nick, event_id, ts), event_id)
        self.fanout.broadcast(out, [room], conn, out.with_ref(mode.ref) if mode.ref is not None else None)
        self.apply_mode(room, event_id, changed, key_hash)


def moderation_frame(event, name: str) -> dict:
    """The frame of a stored moderated or mode event (live, replay and history alike)."""
    extra = json.loads(event.extra)
    if event.kind == MODE:
        return p.mode_frame(name, extra["changed"], extra["modes"], event.sender, event.id, event.ts)
    return p.moderated_frame(name, extra["action"], extra["nick"], extra["by"], extra["reason"], extra["until"],
                             event.id, event.ts)
