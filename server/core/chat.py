"""The chat rules: what the hub does with each protocol event.

:class:`Chat` holds the room and the nicks online, and handles the events a
door posts (``hello``, ``say``, ``dm``, ``nick``, ``ping``, ``pong``,
``bye``, protocol errors): it stores messages in the history and queues
frames for the clients, which the hub writes after the pass commits. It
never touches a socket; dropping a client is :meth:`server.hub.Hub.drop`.

Thread: the hub thread only.
"""
from __future__ import annotations

import logging

from .. import protocol as p
from ..doors.jsonl import STATE_CLOSING, STATE_NEW, STATE_WELCOMED
from .room import Room

log = logging.getLogger("natter.server")


class Chat:
    def __init__(self, hub, config, history, stats: dict):
        self.hub = hub
        self.config = config
        self.history = history
        self.stats = stats
        self.room = Room("lobby")     # v1 has one room; a dict of them later
        self.nicks: dict = {}         # nick_key -> welcomed connection
        self.pass_out = 0             # bytes queued so far in this pass
        # (connection, bytes) queued during a pass, pushed only after it commits:
        # a welcome or a leaver's last frames may carry this pass's messages.
        self.deferred: list = []

    def leave(self, conn, reason: str | None) -> None:
        """Take conn out of the room and the nicks; with a ``reason``, the
        others are told it left."""
        if conn.room is not None:
            pending = conn.room.remove(conn)
            conn.room = None
            if pending:
                self.deferred.append((conn, pending))
        if conn.key is not None and self.nicks.get(conn.key) is conn:
            del self.nicks[conn.key]
        if reason is not None:
            self.room.broadcast(p.encode({"type": "left", "nick": conn.nick, "reason": reason}))

    def send(self, conn, frame: dict) -> None:
        self.send_bytes(conn, p.encode(frame))

    def send_bytes(self, conn, data: bytes) -> None:
        """Queue a frame for one client; it goes out after this pass commits."""
        if conn.room is not None:
            conn.room.unicast(conn, data)
        else:
            self.deferred.append((conn, data))

    def error(self, conn, err: p.ProtocolError, counts: bool = True) -> None:
        self.send(conn, err.frame())
        if counts:
            conn.errors += 1
            log.info("%s: %s", conn.label, err)
            if conn.errors >= self.config.max_errors and conn.state != STATE_CLOSING:
                self.hub.drop(conn, "too many protocol errors",
                           p.error_frame(p.TOO_MANY_ERRORS, f"Disconnected after {conn.errors} "
                                                            "protocol errors."))

    def on_hello(self, conn, hello: p.Hello) -> None:
        if conn.state == STATE_WELCOMED:
            return self.error(conn, p.ProtocolError(p.ALREADY_WELCOMED, "You are already in; "
                                                                         "use a 'nick' frame to rename."))
        cfg = self.config
        session = self.history.find_session(hello.resume) if hello.resume else None
        key = p.nick_key(hello.nick)
        holder = self.nicks.get(key)
        if holder is not None:
            if session is not None and holder.session == session:
                # The same person reconnecting before the server noticed the
                # old connection died: the new one wins.
                self.hub.drop(holder, "reconnected", p.error_frame("replaced", "You connected again from "
                                                                            "elsewhere."))
            else:
                return self.error(conn, p.ProtocolError(p.NICK_TAKEN, f"The nick {holder.nick!r} is in use; "
                                                                       "choose another."), counts=False)
        if session is None:
            session, token = self.history.new_session()
        else:
            token = hello.resume
        conn.nick, conn.key, conn.session = hello.nick, key, session
        conn.state = STATE_WELCOMED
        self.nicks[key] = conn
        missed = 0
        # A since counted in another history (the file was replaced or
        # emptied: another epoch, or ids it never reached) would hide the
        # new messages up to it: answer as to a newcomer, and say so.
        reset = hello.since is not None and (hello.since > self.history.last_id or (
            hello.epoch is not None and hello.epoch != self.history.epoch))
        if hello.since is None or reset:
            history = self.history.recent(cfg.welcome_history)
        else:
            history, missed = self.history.since(hello.since, session, cfg.max_replay,
                                                 limit_bytes=cfg.max_replay_bytes)
        welcome = {"type": "welcome", "nick": conn.nick, "users": self._users(extra=conn.nick),
                   "history": history, "last_id": self.history.last_id, "session": token,
                   "epoch": self.history.epoch, "protocol": p.PROTOCOL_VERSION,
                   "limits": {"max_line": cfg.max_line, "rate": cfg.rate_limit, "burst": cfg.rate_burst}}
        if missed:
            welcome["missed"] = missed
        if reset:
            welcome["reset"] = True
        data = conn.welcome_data = p.encode(welcome)     # not held against it (server.delivery)
        self.pass_out += len(data)
        self.send_bytes(conn, data)
        self.room.broadcast(p.encode({"type": "joined", "nick": conn.nick}))
        self.room.add(conn)
        conn.room = self.room
        log.info("%s joined (%d online)", conn.label, len(self.room))

    def _users(self, extra: str | None = None) -> list:
        names = [c.nick for c in self.room.members]
        if extra is not None:
            names.append(extra)
        return sorted(names, key=str.casefold)

    def _welcomed(self, conn, event) -> bool:
        if conn.state == STATE_WELCOMED:
            return True
        if conn.state == STATE_NEW:
            ref = getattr(event, "ref", None)
            self.error(conn, p.ProtocolError(p.NOT_WELCOMED, "Say hello first: send "
                                                              '{"type":"hello","nick":...}.', ref))
        return False

    def on_say(self, conn, say: p.Say) -> None:
        if not self._welcomed(conn, say):
            return
        msg_id, ts = self.history.add_message(conn.nick, say.text, conn.room.name, conn.session, say.ref)
        data = p.encode(p.message_frame(msg_id, ts, conn.nick, say.text))
        mine = _with_ref(data, say.ref) if say.ref is not None else None
        conn.room.broadcast(data, conn, mine)
        self.pass_out += len(data)
        self.stats["messages"] += 1

    def on_direct(self, conn, dm: p.SendDirect) -> None:
        if not self._welcomed(conn, dm):
            return
        target = self.nicks.get(p.nick_key(dm.to)) if dm.to else None
        if target is None:
            return self.error(conn, p.ProtocolError(p.NO_SUCH_USER, f"Nobody called {dm.to[:40]!r} is "
                                                                      "online.", dm.ref), counts=False)
        msg_id, ts = self.history.add_direct(conn.nick, target.nick, dm.text, conn.session, target.session,
                                             dm.ref)
        frame = p.dm_frame(msg_id, ts, conn.nick, target.nick, dm.text)
        data = p.encode(frame)
        self.pass_out += 2 * len(data)
        self.send_bytes(conn, _with_ref(data, dm.ref) if dm.ref is not None else data)
        if target is not conn:
            self.send_bytes(target, data)

    def on_nick(self, conn, change: p.ChangeNick) -> None:
        if not self._welcomed(conn, change):
            return
        key = p.nick_key(change.nick)
        holder = self.nicks.get(key)
        if holder is not None and holder is not conn:
            return self.error(conn, p.ProtocolError(p.NICK_TAKEN, f"The nick {holder.nick!r} is in use.",
                                                     change.ref), counts=False)
        if change.nick == conn.nick:
            # Nothing changes, but the sender still gets its acknowledgement.
            if change.ref is not None:
                self.send(conn, {"type": "renamed", "old": conn.nick, "new": conn.nick, "ref": change.ref})
            return
        old = conn.nick
        del self.nicks[conn.key]
        conn.nick, conn.key = change.nick, key
        self.nicks[key] = conn
        frame = {"type": "renamed", "old": old, "new": change.nick}
        data = p.encode(frame)
        mine = _with_ref(data, change.ref) if change.ref is not None else None
        conn.room.broadcast(data, conn, mine)
        log.info("%s renamed to %s", old, change.nick)

    def on_ping(self, conn, _ping) -> None:
        if self._welcomed(conn, _ping):
            self.send_bytes(conn, b'{"type":"pong"}\n')

    def on_pong(self, conn, _pong) -> None:
        conn.pinged = False

    def on_bye(self, conn, _bye) -> None:
        self.hub.drop(conn, "quit")

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
    }


def _with_ref(data: bytes, ref: str) -> bytes:
    """The same frame with "ref" added: the sender's acknowledgement."""
    return data[:-2] + b',"ref":' + p.encode(ref)[:-1] + b"}\n"
