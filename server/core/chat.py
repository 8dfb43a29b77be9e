"""The chat rules: what the hub does with each event a door posts.

:class:`Chat` holds the rooms, the nicks online and the store, and handles
the protocol events (``hello``, ``say``, ``dm``, ``nick``, ``ping``,
``pong``, ``bye``, protocol errors; the room frames in
:class:`~server.core.rooms.RoomRules`, the welcome and the catch-up in
:class:`~server.core.catchup.CatchUpRules`, identity and moderation in
:mod:`server.core.identity`, :mod:`~server.core.moderation` and
:mod:`~server.core.redaction`, files in :mod:`server.core.files`; with a shared
store, delivery from its log in :mod:`~server.core.feed` and presence
across its nodes in :mod:`~server.core.presence`). It stores events in the store
and queues frames in the pass (:class:`~server.core.fanout.Pass`), which
the hub writes after the pass commits. It never touches a socket; dropping
a client is :meth:`server.hub.Hub.drop`.

A client (``conn``, a door's connection) carries what the core keeps of
it: ``nick``, ``key``, ``session``, ``state``, ``v`` (its protocol),
``rooms`` (room key -> Room, in the order it joined), ``reads`` (its read
markers), ``cursor`` (its catch-up, or None), ``held`` (frames waiting for
its welcome, or None once the welcome is out), ``welcome``, ``encoder``,
``fp`` (its identity's fingerprint, or None) and ``admin``.

Thread: the hub thread only.
"""
from __future__ import annotations

import logging
import time

from .. import protocol as p
from ..doors.jsonl import STATE_CLOSING, STATE_NEW, STATE_WELCOMED
from ..store import LOBBY
from ..transfer import FileDone, FileDropped
from .catchup import WELCOME_BYTES, CatchUpRules, Cursor
from .events import DoorHello, HistoryAt
from .fanout import Out, Pass
from .feed import FeedRules, LoggedPass
from .files import FileRules
from .identity import IdentityRules
from .moderation import ModerationRules
from .presence import PresenceRules
from .redaction import RedactionRules
from .rooms import Room, RoomRules

log = logging.getLogger("natter.server")

WELCOME_GUESS = 64 * 1024   # what a welcome adds to a pass's output, for the pass budget


class Chat(PresenceRules, RoomRules, CatchUpRules, IdentityRules, ModerationRules, RedactionRules, FileRules,
           FeedRules):
    log = log
    clock = staticmethod(time.time)   # the wall clock of bans, mutes, slow mode, edits (tests set their own)

    def __init__(self, hub, config, store, stats: dict):
        self.hub = hub
        self.config = config
        self.store = store
        self.stats = stats
        self.rooms: dict = {}          # room key -> Room
        for record in store.rooms():
            self.rooms[record.key] = Room(record, store.last_message_id(record.key))
        self.nicks: dict = {}          # nick_key -> welcomed client
        self.by_session: dict = {}     # session -> welcomed client
        # A shared store's events reach clients from its log only (server.core.feed).
        self.fanout = LoggedPass() if store.shared else Pass()   # this pass's frames
        self.batches = getattr(store, "batches", False)   # says are queued, appended at the pass's end
        self.queued: set = set()       # batches: clients with says queued in this pass (Hub._flush_appends)
        self.pass_out = 0              # bytes queued so far in this pass, about
        self.pending: list = []        # clients welcomed in this pass: their welcome comes after it
        self.catching_up: set = set()  # clients with a cursor, past their welcome
        self._v1_recent = None         # (lobby last id, JSON of its recent messages)
        self._v1_recent_size = 0       # bytes of that JSON, as last built
        self._load_moderation()        # roles, bans, mutes, modes (server.core.moderation)
        self._load_files()             # uploads in progress, files kept (server.core.files)
        self._load_presence()          # who is in which room on the other nodes (server.core.presence)

    # -- sending -------------------------------------------------------------

    def send(self, conn, frame: dict) -> None:
        """Queue a frame for one client; it goes out after this pass commits."""
        self.fanout.unicast(conn, Out.of(frame))

    def broadcast(self, frame: dict, rooms) -> None:
        """Queue a frame without an id for everyone in these rooms."""
        self.fanout.broadcast(Out.of(frame), rooms)

    def error(self, conn, err: p.ProtocolError, counts: bool = True) -> None:
        self.send(conn, err.frame())
        if counts:
            conn.errors += 1
            log.info("%s: %s", conn.label, err)
            if conn.errors >= self.config.max_errors and conn.state != STATE_CLOSING:
                self.hub.drop(conn, "too many protocol errors",
                              p.error_frame(p.TOO_MANY_ERRORS, f"Disconnected after {conn.errors} "
                                                               "protocol errors."))

    def leave(self, conn, reason: str | None) -> None:
        """Take conn out of its rooms and the nicks (the session keeps its
        rooms for a resume); with a ``reason``, the others are told it left."""
        rooms = list(conn.rooms.values())
        for room in rooms:
            self._exit(conn, room)
        if reason is not None:
            for room in rooms:
                self.presence(p.left_frame(conn.nick, reason, room.name), room, conn)
        if conn.key is not None and self.nicks.get(conn.key) is conn:
            del self.nicks[conn.key]
            self.store.release_online(conn.key)
        if conn.session is not None and self.by_session.get(conn.session) is conn:
            del self.by_session[conn.session]
        self.catching_up.discard(conn)
        conn.cursor = None
        if conn.held is not None:
            held, conn.held = conn.held, None
            for out in held:            # its own frames still go (the error that ends it...)
                self.fanout.unicast(conn, out)

    def room_count(self) -> int:
        return len(self.rooms)

    # -- hello ---------------------------------------------------------------

    def on_hello(self, conn, hello: p.Hello) -> None:
        if conn.state == STATE_WELCOMED:
            return self.error(conn, p.ProtocolError(p.ALREADY_WELCOMED, "You are already in; "
                                                                        "use a 'nick' frame to rename."))
        store = self.store
        session = store.find_session(hello.resume) if hello.resume else None
        holder = self.nicks.get(p.nick_key(hello.nick))
        if holder is not None:
            if session is not None and holder.session == session:
                # The same person reconnecting before the server noticed the
                # old connection died: the new one wins.
                self.hub.drop(holder, "reconnected", p.error_frame("replaced", "You connected again from "
                                                                               "elsewhere."))
            else:
                return self.error(conn, p.ProtocolError(p.NICK_TAKEN, f"The nick {holder.nick!r} is in use; "
                                                                      "choose another."), counts=False)
        if not self.claim_nick(conn, hello.nick, p.fingerprint(hello.identity) if hello.identity else None):
            return
        self.identify(conn, hello)
        if session is None:
            session, token = store.new_session()
            stored = {}
        else:
            token = hello.resume
            stored = store.session_rooms(session)
        if not self.claim_online(conn, hello.nick, session):
            return
        # A since counted in another history (the file was replaced or
        # emptied: another epoch, or ids it never reached) would hide the
        # new messages up to it: answer as to a newcomer, and say so.
        since = hello.since
        # (newest_id asks a shared store's backend: only when last_id is passed.)
        reset = since is not None and ((since > store.last_id and since > store.newest_id) or (
            hello.epoch is not None and hello.epoch != store.epoch))
        if reset:
            since = None
        # Older than what the deployment still holds (server.store.redis.RedisStore.drop_before):
        # the client is told, and catches up from the oldest id kept; never a silent gap.
        floor = store.history_floor if since is not None else 0
        gone = since is not None and since < floor
        if gone:
            since = floor
        if hello.v >= 2:
            keys = [k for k in stored if k in self.rooms][:self.config.max_rooms_per_client] or [LOBBY]
        else:
            keys = [LOBBY]
        conn.key = p.nick_key(hello.nick)      # a ban without identity holds the nick
        keys = [k for k in keys if not self._restriction(self.rooms[k], "bans", conn)]   # banned meanwhile
        if since is not None:
            cursor = Cursor({k: (since, None) for k in keys}, since, since, plain=hello.v < 2)
        elif hello.v >= 2:
            cursor = Cursor({k: (0, None) for k in keys}, store.last_id, 0, recent=True)
        else:
            cursor = None
        self._admit(conn, hello.nick, session, hello.v, cursor, keys, stored,
                    {"token": token, "reset": reset})
        if gone:        # held for it: follows its welcome
            self.send(conn, p.error_frame(p.HISTORY_GONE, f"The messages up to id {floor} are no longer kept "
                                                          "on this server; you get the history from there on.",
                                          None))

    def on_door_hello(self, conn, hello: DoorHello) -> None:
        """An IRC or plain-text client registers: a new session, the rooms
        its door names (IRC none, text lobby; not one it is banned from),
        nothing to catch up, so it is live from its welcome on. Its
        ``identity`` (account, secret) binds the nick and carries its roles,
        as a window's identity does."""
        if conn.state == STATE_WELCOMED:
            return self.error(conn, p.ProtocolError(p.ALREADY_WELCOMED, "You are already in.", hello.ref))
        holder = self.nicks.get(p.nick_key(hello.nick))
        if holder is not None:
            return self.error(conn, p.ProtocolError(p.NICK_TAKEN, f"The nick {holder.nick!r} is in use; "
                                                                  "choose another.", hello.ref), counts=False)
        secret = hello.identity[1] if hello.identity is not None else None
        if secret is not None:
            try:
                p.check_identity(secret)
            except p.ProtocolError as e:
                return self.error(conn, p.ProtocolError(e.code, e.message, hello.ref), counts=False)
        fp = p.fingerprint(secret) if secret is not None else None
        if not self.claim_nick(conn, hello.nick, fp, hello.ref):
            return
        conn.fp, conn.admin = fp, fp is not None and fp in self.admin_fps
        conn.key = p.nick_key(hello.nick)      # a ban without identity holds the nick
        keys = [k for k in dict.fromkeys(p.room_key(r) for r in hello.rooms)
                if k in self.rooms and not self._restriction(self.rooms[k], "bans", conn)]
        session, token = self.store.new_session()
        if not self.claim_online(conn, hello.nick, session, hello.ref):
            return
        self._admit(conn, hello.nick, session, 2, None, keys, {}, {"token": token, "reset": False})

    def claim_online(self, conn, nick: str, session: int | None, ref: str | None = None) -> bool:
        """True when no client of another server holds the nick (a shared
        store; with one server the nicks table above decides); else conn is told."""
        holder = self.store.claim_online(p.nick_key(nick), nick, session, conn.fp, conn.admin)
        if holder is None:
            return True
        self.error(conn, p.ProtocolError(p.NICK_TAKEN, f"The nick {holder!r} is in use (on another server of "
                                                       "this chat); choose another.", ref), counts=False)
        return False

    def _admit(self, conn, nick: str, session: int, v: int, cursor, keys: list, stored: dict,
               welcome: dict) -> None:
        """conn is in as ``nick``, present in the rooms ``keys`` (others see
        ``joined``); its welcome is built after this pass (attach)."""
        store = self.store
        key = p.nick_key(nick)
        conn.nick, conn.key, conn.session, conn.v = nick, key, session, v
        conn.state = STATE_WELCOMED
        conn.speak(v)
        self.nicks[key] = conn
        self.by_session[session] = conn
        conn.cursor = cursor
        conn.held = []
        conn.welcome = welcome
        for k in keys:
            room = self.rooms[k]
            read = stored.get(k)
            if read is None:
                read = room.last_id
                store.join_room(session, k, read)
            room.people[conn] = None
            conn.rooms[k] = room
            conn.reads[k] = read
            self.presence(p.joined_frame(conn.nick, room.name), room, conn)
        self.pending.append(conn)
        # For the pass budget (Hub._apply): a v1 welcome may hold 1 MiB of history.
        if v >= 2:
            self.pass_out += WELCOME_GUESS
        elif conn.cursor is not None:
            self.pass_out += WELCOME_BYTES
        else:
            self.pass_out += max(WELCOME_GUESS, self._v1_recent_size)
        log.info("%s joined (%d online)", conn.label, len(self.nicks))

    def _welcomed(self, conn, event) -> bool:
        if conn.state == STATE_WELCOMED:
            return True
        if conn.state == STATE_NEW:
            ref = getattr(event, "ref", None)
            self.error(conn, p.ProtocolError(p.NOT_WELCOMED, "Say hello first: send "
                                                             '{"type":"hello","nick":...}.', ref))
        return False

    # -- messages ------------------------------------------------------------

    def on_say(self, conn, say: p.Say) -> None:
        # Every message pays for this path: the common case costs a few dict
        # lookups (a member of the room, no mode or mute that changes a say).
        if conn.state != STATE_WELCOMED:
            self._welcomed(conn, say)
            return
        room = self.rooms.get(p.room_key(say.room))
        if room is None or conn not in room.people:
            self._present(conn, say.room, say.ref)      # tells it why
            return
        if self.say_gated(room) and (self.speaking_refused(conn, room, say.ref) or self.asked(conn, room, say)):
            return
        if self.batches:
            # A shared store appends the pass's messages together when the
            # hub ends the pass (flush_appends); they are delivered, the
            # sender's acknowledgement too, from its log (server.core.feed).
            self.store.queue_message((conn, say.ref), conn.nick, say.text, room.key, conn.session, say.ref)
            self.queued.add(conn)
            self.stats["messages"] += 1
            return
        msg_id, ts = self.store.add_message(conn.nick, say.text, room.key, conn.session, say.ref)
        room.last_id = msg_id
        out = Out.of(p.message_frame(msg_id, ts, conn.nick, say.text, room=room.name), msg_id)
        self.fanout.broadcast(out, [room], conn, out.with_ref(say.ref) if say.ref is not None else None)
        self.pass_out += len(out.line)
        self.stats["messages"] += 1

    def on_direct(self, conn, dm: p.SendDirect) -> None:
        if not self._welcomed(conn, dm):
            return
        target = self.direct_target(p.nick_key(dm.to)) if dm.to else None
        if target is None:
            return self.error(conn, p.ProtocolError(p.NO_SUCH_USER, f"Nobody called {dm.to[:40]!r} is "
                                                                    "online.", dm.ref), counts=False)
        if self.dm_refused(conn, target, dm.ref):
            return
        msg_id, ts = self.store.add_direct(conn.nick, target.nick, dm.text, conn.session, target.session,
                                           dm.ref)
        out = Out.of(p.dm_frame(msg_id, ts, conn.nick, target.nick, dm.text), msg_id)
        self.pass_out += 2 * len(out.line)
        self.fanout.unicast(conn, out.with_ref(dm.ref) if dm.ref is not None else out)
        if target is not conn:
            self.fanout.unicast(target, out)

    def on_nick(self, conn, change: p.ChangeNick) -> None:
        if not self._welcomed(conn, change):
            return
        key = p.nick_key(change.nick)
        holder = self.nicks.get(key)
        if holder is not None and holder is not conn:
            return self.error(conn, p.ProtocolError(p.NICK_TAKEN, f"The nick {holder.nick!r} is in use.",
                                                    change.ref), counts=False)
        if p.nick_key(change.nick) != conn.key and not (self.claim_nick(conn, change.nick, conn.fp, change.ref)
                                                       and self.claim_online(conn, change.nick, conn.session,
                                                                             change.ref)):
            return
        if change.nick == conn.nick:
            # Nothing changes, but the sender still gets its acknowledgement.
            if change.ref is not None:
                self.send(conn, {"type": "renamed", "old": conn.nick, "new": conn.nick, "ref": change.ref})
            return
        old = conn.nick
        del self.nicks[conn.key]
        if conn.key != key:
            self.store.release_online(conn.key)
        conn.nick, conn.key = change.nick, key
        self.nicks[key] = conn
        # Not room-scoped: once to everyone who shares a room with it, and to it.
        out = Out.of({"type": "renamed", "old": old, "new": change.nick})
        mine = out.with_ref(change.ref) if change.ref is not None else out
        self.fanout.broadcast(out, list(conn.rooms.values()), conn, mine)
        if conn.rooms:
            self.share(out.frame, list(conn.rooms.values()), conn, old_key=p.nick_key(old))
        log.info("%s renamed to %s", old, change.nick)

    # -- the rest ------------------------------------------------------------

    def on_ping(self, conn, _ping) -> None:
        if self._welcomed(conn, _ping):
            self.send(conn, {"type": "pong"})

    def on_pong(self, conn, _pong) -> None:
        conn.pinged = False

    def on_bye(self, conn, _bye) -> None:
        self.hub.drop(conn, "quit")

    def on_transfer_line(self, conn, event) -> None:
        """A put or get after the first line of a chat connection."""
        self.error(conn, p.ProtocolError(p.BAD_FRAME, f"A '{type(event).__name__.lower()}' is the first line of a "
                                                      "connection of its own (see upload_ready), not a chat frame."))

    def on_protocol_error(self, conn, err: p.ProtocolError) -> None:
        if conn.state != STATE_CLOSING:
            self.error(conn, err)

    handlers = {
        p.Hello: on_hello,
        p.Say: on_say,
        p.SendDirect: on_direct,
        p.ChangeNick: on_nick,
        p.Ping: on_ping,
        p.Pong: on_pong,
        p.Bye: on_bye,
        p.ProtocolError: on_protocol_error,
        p.Join: RoomRules.on_join,
        p.Part: RoomRules.on_part,
        p.SetTopic: RoomRules.on_topic,
        p.ListRooms: RoomRules.on_rooms,
        p.MarkRead: RoomRules.on_read,
        p.HistoryRequest: RoomRules.on_history,
        DoorHello: on_door_hello,
        HistoryAt: RoomRules.on_history_at,
        p.Forget: IdentityRules.on_forget,
        p.Mod: ModerationRules.on_mod,
        p.SetMode: ModerationRules.on_mode,
        p.Release: RedactionRules.on_release,
        p.Delete: RedactionRules.on_delete,
        p.Edit: RedactionRules.on_edit,
        p.Audit: RedactionRules.on_audit,
        p.Upload: FileRules.on_upload,
        p.Put: on_transfer_line,
        p.Get: on_transfer_line,
        FileDone: FileRules.on_file_done,
        FileDropped: FileRules.on_file_dropped,
    }
