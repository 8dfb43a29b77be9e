"""The hub: the one thread that owns the chat state and writes to sockets.

Doors' reader threads post events with :meth:`Hub.post` (any thread). The
hub thread (``hub``) repeats one pass:

1. take what was posted so far (about ``max_queue`` bytes of it at most),
   in one swap under the lock, unless delivery is held (below);
2. apply it in order (:mod:`server.core`: nicks, rooms, ids, stored
   events, frames queued in the pass);
3. commit the new events in one transaction;
4. seal the pass (one shared blob per set of rooms, :mod:`server.core.fanout`),
   build the welcomes of the clients that said hello in it, give the
   clients that are catching up their next replay frame, and write every
   client's output without blocking; what a socket does not take waits in
   that client's :class:`~server.delivery.Outbox` until the selector says
   it is writable.

Between passes it also gives a catching-up client its next replay frame as
soon as its outbox drains below :data:`server.core.catchup.LOW_WATER`.

Slow readers (:mod:`server.delivery`): while a client that keeps reading
has more than ``max_queue`` bytes waiting (beyond its welcome and replay)
delivery is held: the hub takes nothing new, the readers block once the
inbox (:mod:`server.inbox`) is full, and TCP pushes back on the senders. A
client is dropped as too slow only when it takes nothing for
``--slow-timeout`` seconds, falls far behind (16 x ``max_queue``), or the
server is over its total budget.

Nothing is sent before it is committed, so every id a client sees is on
disk. With a shared store (``--redis``) the events come from the store's
reader instead (posted as :class:`~server.core.events.Logged`), in the log's
order, after the log has them (:mod:`server.core.feed`). No lock is held
during socket I/O; the lock guards only the inbox.
"""
from __future__ import annotations

import logging
import selectors
import socket
import sqlite3
import threading
import time

from . import protocol as p
from .core.catchup import LOW_WATER
from .core.chat import Chat
from .core.events import Logged
from .delivery import POLL, Delivery, ParallelWriter, write_part
from .core.fanout import Out, encoded
from .doors.jsonl import (READ_RATE_FACTOR, STATE_CLOSING, STATE_NEW, STATE_WELCOMED, AuthFailed, DoorInput,
                          Gone, PlainOnTls, Throttled, TlsKick)
from .inbox import Inbox
from .store import HistoryError, Unavailable
from .transfer import Handoff

log = logging.getLogger("natter.server")

RATE_NOTICE_EVERY = 10.0   # seconds between two rate_limited notices to one client
CLOSE_GRACE = 2.0          # seconds a closing client gets to take its last frames
CATCH_UP_SLICE = 0.02      # seconds of replay frames the hub makes before it looks at the inbox again
CATCH_UP_RETRY = 0.25      # seconds before a cursor that could read nothing (a shared store's backend away,
                           # or this node's reader not at its since yet) is asked again, unless a pass comes first
SESSION_PRUNE_EVERY = 86400.0   # seconds between two expiries of unused sessions
FLUSH_EVERY = 0.01         # seconds: between busy passes, blocked sockets are tried this often


class _Connected:
    """Posted by the acceptor for a new connection."""


class _Stop:
    def __init__(self, message: str):
        self.message = message


CONNECTED = _Connected()
FEED = object()     # stands for the conn of a shared store's reader's batches (Hub._logged)


class Hub:
    """The event loop and every socket write; see the module docstring."""

    def __init__(self, config, history):
        self.config = config
        self.history = history
        self.conns: set = set()       # every connection the hub knows
        self.per_ip: dict = {}        # ip -> connections open from it
        self.stats = {"passes": 0, "messages": 0, "dropped_slow": 0}
        self._inbox = Inbox(self.stats)
        self._selector = selectors.DefaultSelector()
        self._selector.register(self._inbox.wake_r, selectors.EVENT_READ, None)
        self._pass_bytes = config.max_queue   # what one pass takes and queues, about
        self._tick_every = min(1.0, max(0.05, config.slow_timeout / 4))
        self._flush_next = 0.0                # when blocked sockets get a look between passes
        self._dirty: list = []        # connections with output this pass
        self._retry_at: dict = {}     # catching-up client -> when its cursor, which read nothing, is asked again
        self._writer = ParallelWriter(config.writers)
        self._stopping: _Stop | None = None
        self.failure: str | None = None   # why the hub stopped on its own, if it did
        self._next_tick = 0.0
        self._next_prune = time.monotonic() + SESSION_PRUNE_EVERY   # the server pruned at start
        self._delivery = Delivery(config, self._selector, self.stats)
        self.chat = Chat(self, config, history, self.stats)
        self.thread = threading.Thread(target=self.run, name="hub", daemon=True)
        self.finished = threading.Event()
        self.text_port: int | None = None   # the plain-text door's port, once open (named in errors)

    @property
    def writer_threads(self) -> list:
        return list(self._writer.threads)

    # -- any thread -------------------------------------------------------

    def post(self, conn, items: list, nbytes: int = 0, wait: bool = True) -> None:
        """Hand the hub events from ``conn`` (``nbytes``: their frames' size);
        wakes it if it sleeps.

        Blocks while the inbox is full (the hub is behind, or the room is
        held), so a flood turns into TCP back-pressure instead of memory.
        A Gone, a stop and ``wait=False`` (the acceptor) never wait.
        """
        self._inbox.post(conn, items, nbytes, wait and conn is not None and type(items[-1]) is not Gone,
                         urgent=conn is None)

    @property
    def inbox_bytes(self) -> int:
        """What readers have posted and the hub has not taken yet (their cost)."""
        return self._inbox.bytes

    def stop(self, message: str = "The server is shutting down.") -> None:
        self.post(None, [_Stop(message)])

    def _logged(self, batch: Logged) -> None:
        """A shared store's reader thread: hand the hub a batch of the log. Not
        urgent: while delivery is held it waits like the readers' batches, and
        the reader waits for it (Logged.applied)."""
        self._inbox.post(FEED, [batch], 0, wait=False)

    # -- hub thread -------------------------------------------------------

    def run(self) -> None:
        delivery = self._delivery
        try:
            if self.history.shared:
                # Every event reaches the clients from the store's log (server.core.feed).
                self.history.start_reader(self._logged)
            while True:
                batches = self._inbox.take(self._pass_bytes, delivery.held)
                passed = bool(batches)
                if batches:
                    self._apply(batches)
                    self._end_pass()
                    if self._stopping:
                        self._shutdown()
                        return
                    if delivery.watched and time.monotonic() >= self._flush_next:
                        # A busy inbox must not starve the blocked sockets;
                        # but each send gives up the GIL: not after every pass.
                        self._flush_next = time.monotonic() + FLUSH_EVERY
                        self._wait(0)
                else:
                    timeout = self._next_tick - time.monotonic()
                    if delivery.held or delivery.polled:
                        timeout = min(timeout, POLL)
                    ready, retry = self._catch_up_due()
                    if ready:
                        timeout = 0
                    elif retry is not None:
                        timeout = min(timeout, retry - time.monotonic())
                    self._wait(timeout)
                    if self._catch_up_due()[0]:
                        self._catch_up(retry=False)
                        self._write_dirty()
                now = time.monotonic()
                drops = delivery.update(now, passed)
                if drops:
                    for conn, why in drops:
                        self._too_slow(conn, why)
                    self._end_pass()        # the others learn at once that they left
                if now >= self._next_tick:
                    self._next_tick = now + self._tick_every
                    try:
                        self._tick(now)
                    except Unavailable:
                        pass        # the pass's commit: a shared store's backend is away (logged by it)
        except sqlite3.Error as e:
            # Nothing of this pass was sent: no unsaved message is
            # acknowledged. Clients keep theirs and resend after a restart.
            self.failure = f"could not save the chat history ({e})"
            log.critical("hub: %s; stopping so that nothing unsaved is acknowledged", self.failure)
            self._stopping = _Stop("The server stopped: it could not save messages. "
                                   "Messages not yet confirmed were not delivered.")
            self._shutdown()
        except HistoryError as e:
            # The file is damaged (or gone): writing on could spread the damage.
            self.failure = str(e)
            log.critical("hub: %s; stopping", self.failure)
            self._stopping = _Stop("The server stopped: its history file cannot be used.")
            self._shutdown()
        except Exception:
            self.failure = "internal error"
            log.exception("hub failed; closing every connection")
            self._stopping = _Stop("The server stopped after an internal error.")
            self._shutdown()
        finally:
            self.finished.set()
            self._inbox.finish()

    def _wait(self, timeout: float) -> None:
        ready = self._selector.select(max(0.0, timeout))
        self._inbox.awake(any(key.data is None for key, _ in ready))
        for key, _ in ready:
            conn = key.data
            if conn is not None and conn.write_registered:    # not dropped by an earlier flush
                self._flush(conn)
        for conn in list(self._delivery.polled):
            if conn.polled:                     # not dropped by an earlier flush
                self._flush(conn)

    def _apply(self, batches: list) -> None:
        handlers, rules, chat = self._handlers, self.chat.handlers, self.chat
        chat.pass_out = 0
        later = []      # (conn, items, cost): after a hello, for the pass after its welcome
        for i, (conn, items, cost) in enumerate(batches):
            if conn is None:
                if type(items[0]) is _Stop:
                    self._stopping = items[0]
                else:               # from a transfer thread (server.transfer)
                    for item in items:
                        handler = rules.get(type(item))
                        if handler is None:
                            log.error("hub: nothing handles %r", item)
                        else:
                            try:
                                handler(chat, None, item)
                            except (HistoryError, sqlite3.Error):
                                raise
                            except Exception:       # that transfer's answer times out; the chat goes on
                                log.exception("hub: failed on %r", item)
                continue
            if conn is FEED:            # a shared store's reader: events to deliver
                for logged in items:
                    self.chat.on_logged(logged)
                continue
            for j, item in enumerate(items):
                if conn.sock is None:   # closed earlier in this pass
                    break
                if conn.held is not None:
                    # Its welcome is built after this pass: what it sent after
                    # its hello (its end too) waits for the next one.
                    later.append((conn, items[j:], cost))
                    break
                if conn.state == STATE_CLOSING and type(item) is not Gone:
                    continue            # draining a connection we are closing
                if conn in chat.queued and type(item) is not p.Say:
                    # Its says are appended before anything else of it is
                    # answered: a refusal comes before a later reply (a pong).
                    self._flush_appends()
                handler = rules.get(type(item))
                try:
                    if handler is not None:
                        handler(chat, conn, item)
                    elif type(item) in handlers:
                        handlers[type(item)](self, conn, item)
                    else:
                        log.error("hub: nothing handles %r", item)
                except (HistoryError, sqlite3.Error):
                    raise                # the history is unusable: run() stops the server
                except Unavailable as e:
                    # A shared store cannot reach its backend: nothing of this
                    # frame was stored, so nothing is acknowledged; the client resends.
                    self.chat.send(conn, p.error_frame(p.UNAVAILABLE, str(e), getattr(item, "ref", None)))
                except Exception:
                    log.exception("hub: %s failed on %r", conn.label, item)
                    self.drop(conn, "server error", p.error_frame("server_error", "The server failed on "
                                                                                  "your last frame."))
            if chat.pass_out > self._pass_bytes and i + 1 < len(batches):
                # Enough output for one pass (welcomes of a resume storm, say):
                # the rest waits, so delivery can be held before it is queued.
                self._inbox.put_back(later + batches[i + 1:])
                return
        if later:
            self._inbox.put_back(later)

    def _end_pass(self) -> None:
        self.stats["passes"] += 1
        if self.chat.batches:
            self._flush_appends()
        self.history.commit()   # raises: nothing of this pass is sent (see run)
        self.chat.files_committed()
        self._write_pass()

    def _flush_appends(self) -> None:
        """A shared store appends the says queued so far (server.core.chat
        on_say), in one round trip; those it could not store are refused
        with ``unavailable``, nothing of them acknowledged."""
        self.chat.queued.clear()
        for (conn, ref), why in self.history.flush_appends():
            if conn.sock is not None:
                self.chat.send(conn, p.error_frame(p.UNAVAILABLE, why, ref))

    def _write_pass(self) -> None:
        """Seal the pass, welcome the clients that said hello in it, give
        those catching up their next frames, and write every client's
        output, without blocking."""
        chat = self.chat
        dirty = self._dirty
        direct = []     # (conn, blob): a room's blob to a member with nothing waiting, sent as it is
        for conn, data, shared in chat.fanout.seal():
            if conn.sock is None:
                continue
            box = conn.outbox
            if shared and not box.size and box.tls is None and conn.state != STATE_CLOSING:
                direct.append((conn, data))
            elif type(data) is list:
                box.push_parts(data)
                dirty.append(conn)
            else:
                box.push(data, shared)
                dirty.append(conn)
        if direct:
            # Before anything is pushed behind them (welcomes, catch-up frames).
            now = time.monotonic()
            for (conn, _), done in zip(direct, self._writer.write_all(direct, shared=True)):
                if done is not True:
                    self._after_write(conn, done, now)
        for conn, data in chat.attach():
            self._push_owed(conn, data)
        self._catch_up()
        self._write_dirty()

    def _push_owed(self, conn, data: bytes) -> None:
        """A welcome or catch-up frames: never held against the client (server.delivery)."""
        box = conn.outbox
        box.push(data)
        conn.owed_end = box.taken + box.size
        self._dirty.append(conn)

    def _catch_up_due(self) -> tuple[bool, float | None]:
        """(whether a catching-up client may have replay frames now, the
        earliest time a waiting cursor is due again or None). A cursor that
        read nothing waits CATCH_UP_RETRY (``_retry_at``): polling it at once
        would spin the hub thread while Redis is away."""
        now, retry = time.monotonic(), None
        for conn in self.chat.catching_up:
            if conn.outbox.size < LOW_WATER and conn.sock is not None and conn.state != STATE_CLOSING:
                at = self._retry_at.get(conn)
                if at is None or at <= now:
                    return True, None
                retry = at if retry is None else min(retry, at)
        return False, retry

    def _catch_up(self, retry: bool = True) -> None:
        """Replay frames for the clients catching up whose outbox is below
        LOW_WATER, for about CATCH_UP_SLICE seconds (between passes only:
        the store holds every id handed out). After a pass (``retry``) every
        cursor is asked, since the pass may have delivered up to a waiting
        one's since; between passes, a cursor that read nothing last time
        only once its CATCH_UP_RETRY is over."""
        chat = self.chat
        if not chat.catching_up:
            self._retry_at.clear()
            return
        now = time.monotonic()
        self._retry_at = {} if retry else {c: t for c, t in self._retry_at.items()
                                           if t > now and c in chat.catching_up}
        deadline = now + CATCH_UP_SLICE
        more = True
        while more and time.monotonic() < deadline:
            more = False
            for conn in list(chat.catching_up):
                if conn.sock is None or conn.state == STATE_CLOSING:
                    chat.catching_up.discard(conn)
                    continue
                if conn.outbox.size >= LOW_WATER or conn in self._retry_at:
                    continue
                try:
                    data = chat.catch_up(conn)
                except Unavailable:
                    data = b""      # a shared store's backend is away: this cursor waits
                if data:
                    self._push_owed(conn, data)
                elif conn.cursor is not None:
                    self._retry_at[conn] = time.monotonic() + CATCH_UP_RETRY
                    continue
                if conn.cursor is not None and conn.outbox.size < LOW_WATER:
                    more = True

    def _write_dirty(self) -> None:
        dirty, self._dirty = self._dirty, []
        delivery = self._delivery
        now = time.monotonic()
        ready = []
        for conn in dict.fromkeys(dirty):
            if conn.sock is None:
                continue
            if conn.write_registered:   # still blocked: the selector says when
                why = delivery.judge(conn, now)
                if why:
                    self._too_slow(conn, why)
                continue
            ready.append(conn)
        for conn, outcome in zip(ready, self._writer.write_all(ready)):
            self._after_write(conn, outcome, now)

    def _flush(self, conn) -> None:
        """Write what the socket takes now; watch it for writability if not all."""
        self._after_write(conn, write_part([conn])[0])

    def _after_write(self, conn, done, now: float | None = None) -> None:
        if isinstance(done, BaseException):
            if isinstance(done, OSError):
                log.debug("%s: write failed: %s", conn.label, done)
            else:   # a bug: that connection's state is unknown, the others are fine
                log.error("%s: writing failed; dropping the connection", conn.label,
                          exc_info=(type(done), done, done.__traceback__))
                self.drop(conn, "server error")
            conn.outbox.clear()
            self._unwatch(conn)
            self._hangup(conn, force=True)
            return
        if done:
            self._unwatch(conn)
            if conn.state == STATE_CLOSING:
                self._hangup(conn)
            return
        why = self._delivery.waiting(conn, time.monotonic() if now is None else now)
        if why:
            self._too_slow(conn, why)

    def _unwatch(self, conn) -> None:
        self._delivery.unwatch(conn)

    def _too_slow(self, conn, why: str) -> None:
        """Drop a client that does not read what it is sent (see
        server.delivery). It gets no more data beyond one last try at the
        reason, so it costs no one else anything."""
        if conn.sock is None:
            return
        self.stats["dropped_slow"] += 1
        log.warning("%s: dropped as too slow: %s (%d bytes waiting)", conn.label, why, conn.outbox.size)
        self.drop(conn, "too slow")
        self.chat.fanout.forget(conn)
        box = conn.outbox
        # A frame may be half-written: finish it, so the reason arrives as a
        # whole line. (Chunks always hold whole frames; a chunk may be a
        # memoryview. Under TLS a half-sent record cannot be finished with
        # new data: just hang up.)
        rest = b""
        if box.offset and box.chunks and conn.tls is None:
            tail = bytes(memoryview(box.chunks[0])[box.offset:])
            rest = tail[:tail.index(b"\n") + 1]
        box.clear()
        if conn.tls is None:
            box.push(rest + encoded(conn, Out.of(p.error_frame(p.TOO_SLOW, "You were disconnected: you did not "
                                                                            "read what the server sent fast "
                                                                            "enough."))))
            try:
                box.flush(conn.sock)
            except OSError:
                pass
        box.clear()
        self._unwatch(conn)
        self._hangup(conn, force=True)

    def drop(self, conn, reason: str, last_frame: dict | None = None) -> None:
        """Take conn out of the room, tell the others, and close it after
        its last frames are written (or CLOSE_GRACE has passed)."""
        if conn.state == STATE_CLOSING or conn.sock is None:
            return
        was_welcomed = conn.state == STATE_WELCOMED
        self.chat.leave(conn, reason if was_welcomed else None)
        conn.state = STATE_CLOSING
        conn.close_deadline = time.monotonic() + CLOSE_GRACE
        if was_welcomed:
            log.info("%s left: %s", conn.label, reason)
        if last_frame is not None:
            self.chat.send(conn, last_frame)
        self._dirty.append(conn)    # written at the end of the pass, then hung up

    def _hangup(self, conn, force: bool = False) -> None:
        """End the connection once its output is written.

        Politely, it half-closes (FIN after the last frame) and lets the
        reader drain until the peer closes too: closing with unread input
        would send a reset that can destroy the last frame in flight. With
        ``force``, or once ``close_deadline`` passes, it shuts both ways.
        The socket itself is closed when the reader reports Gone, or here
        if it already has.
        """
        if conn.sock is None:
            return
        if conn.state != STATE_CLOSING:
            self.drop(conn, "connection lost")
        if force:
            conn.stopping.set()
        try:
            conn.sock.shutdown(socket.SHUT_RDWR if force else socket.SHUT_WR)
        except OSError:
            pass
        if conn.reader_done:    # nobody left to report Gone: close it now
            self._close(conn)

    def _close(self, conn) -> None:
        """The reader has ended: forget the connection and close its socket."""
        sock = self._forget(conn)
        self.chat.fanout.forget(conn)    # nothing of this pass can reach it now
        conn.outbox.clear()
        try:
            sock.close()
        except OSError:
            pass

    def _forget(self, conn):
        """Take conn out of the hub's books; returns its socket (conn.sock is None after)."""
        self._unwatch(conn)
        self.conns.discard(conn)
        n = self.per_ip.get(conn.ip, 0) - 1
        if n > 0:
            self.per_ip[conn.ip] = n
        else:
            self.per_ip.pop(conn.ip, None)
        sock, conn.sock = conn.sock, None
        return sock

    # -- the doors' own events (hub thread; the chat's are server.core.chat's) --

    def on_connected(self, conn, _item) -> None:
        cfg = self.config
        self.conns.add(conn)
        count = self.per_ip.get(conn.ip, 0) + 1
        self.per_ip[conn.ip] = count
        if len(self.conns) > cfg.max_clients:
            log.warning("%s: refused: the server is full (%d clients)", conn.peer, cfg.max_clients)
            self.drop(conn, "server full", p.error_frame(p.SERVER_FULL, f"The server is full ({cfg.max_clients} "
                                                                         "people); try again later."))
        elif cfg.max_per_ip and count > cfg.max_per_ip and not _is_loopback(conn.ip):
            log.warning("%s: refused: %d connections from one address", conn.peer, count)
            self.drop(conn, "too many connections",
                       p.error_frame(p.TOO_MANY_CONNECTIONS, f"At most {cfg.max_per_ip} connections "
                                                             "from one address."))

    def on_throttled(self, conn, item: Throttled) -> None:
        now = time.monotonic()
        if conn.state == STATE_WELCOMED and now - conn.rate_noticed > RATE_NOTICE_EVERY:
            conn.rate_noticed = now
            cfg = self.config
            if item.reads:
                text = (f"You are asking for history faster than {cfg.rate_limit * READ_RATE_FACTOR:g} pages a "
                        "second: your requests are delayed, not dropped.")
            else:
                text = (f"You are sending faster than {cfg.rate_limit:g} messages a second (bursts of "
                        f"{cfg.rate_burst:g}): your messages are delayed, not dropped.")
            self.chat.send(conn, p.error_frame(p.RATE_LIMITED, text))

    def on_auth_failed(self, conn, item: AuthFailed) -> None:
        # The reader checked the password (scrypt is slow; not on the hub),
        # and checks no hello until its delay has passed: the connection
        # may try again, within the handshake timeout. A welcomed client
        # that sends a wrong password is dropped.
        log.warning("%s: wrong %s password", conn.peer, item.what)
        frame = p.error_frame(p.AUTH_FAILED, "Wrong room password." if item.what == "room" else
                              "Wrong admin password: you are not an admin of this server.")
        if conn.state == STATE_WELCOMED:
            self.drop(conn, "auth failed", frame)
        elif conn.state == STATE_NEW:
            self.chat.send(conn, frame)

    def on_tls_kick(self, conn, _item) -> None:
        self._dirty.append(conn)

    def on_plain_on_tls(self, conn, _item) -> None:
        log.info("%s: a plaintext client on the TLS port", conn.peer)
        conn.outbox.clear()
        conn.outbox.push_raw(p.encode(p.error_frame(
            p.TLS_REQUIRED, "This server only speaks TLS: turn on TLS (encryption) in your client.")))
        conn.state = STATE_CLOSING
        conn.close_deadline = time.monotonic() + CLOSE_GRACE
        self._dirty.append(conn)

    def on_handoff(self, conn, item: Handoff) -> None:
        """The first line of a connection was a put or a get: the socket
        leaves the chat (it holds no place in it) for a transfer thread."""
        conn.reader_done = True            # the reader posts nothing more
        if conn.state != STATE_NEW or conn.sock is None:
            self._hangup(conn, force=True)  # refused meanwhile (server full, timed out...)
            return
        sock = self._forget(conn)
        conn.state = STATE_CLOSING
        unsent = conn.outbox.unsent()
        self.chat.on_handoff(sock, conn.tls, unsent, item.event, item.rest)

    def on_door_input(self, conn, item: DoorInput) -> None:
        conn.door_input(self.chat, item.data)

    def on_gone(self, conn, gone: Gone) -> None:
        conn.reader_done = True
        if conn.state != STATE_CLOSING:
            self.drop(conn, gone.reason)
        if gone.reason == "connection closed" and not conn.stopping.is_set() and \
                (conn.outbox or self.chat.fanout.has_output(conn)):
            # The peer shut only its write side (printf ... | nc -N) and may
            # still read: it gets what it is owed (its welcome, its acks),
            # then _hangup closes the socket; CLOSE_GRACE bounds the wait.
            self._dirty.append(conn)
            return
        self._close(conn)

    _handlers = {
        _Connected: on_connected,
        Throttled: on_throttled,
        TlsKick: on_tls_kick,
        AuthFailed: on_auth_failed,
        PlainOnTls: on_plain_on_tls,
        DoorInput: on_door_input,
        Handoff: on_handoff,
        Gone: on_gone,
    }

    # -- timers (hub thread, about once a second; faster with a short --slow-timeout)

    def _tick(self, now: float) -> None:
        cfg = self.config
        try:
            if now >= self._next_prune:
                self._next_prune = now + SESSION_PRUNE_EVERY
                self.history.prune_sessions(cfg.session_expiry, keep={c.session for c in self.conns
                                                                       if c.session is not None})
                self.chat.prune_bindings()
            self.chat.expire()      # timed bans and mutes (server.core.moderation)
            self.chat.expire_uploads(now)   # partial uploads given up (server.core.files)
        except Unavailable:
            pass    # a shared store's backend is away (the store logged it): the next tick tries again
        for conn in list(self.conns):
            if conn.sock is None:
                continue
            if conn.state == STATE_NEW:
                if now - conn.connected_at > cfg.handshake_timeout:
                    log.info("%s: no hello within %g s", conn.peer, cfg.handshake_timeout)
                    self.drop(conn, "timed out", p.error_frame(p.TIMEOUT, f"No hello within "
                                                                           f"{cfg.handshake_timeout:g} s."))
            elif conn.state == STATE_WELCOMED:
                idle = now - conn.last_seen
                # Only after a ping: a late timer tick must not skip it.
                if idle > cfg.idle_timeout and conn.pinged:
                    self.drop(conn, "timed out", p.error_frame(p.TIMEOUT, f"Nothing heard from you for "
                                                                           f"{cfg.idle_timeout:g} s."))
                elif idle > cfg.idle_timeout / 2 and not conn.pinged:
                    conn.pinged = True
                    self.chat.send(conn, {"type": "ping"})
                elif idle <= cfg.idle_timeout / 2:
                    conn.pinged = False
            elif now > conn.close_deadline:
                conn.outbox.clear()
                self._unwatch(conn)
                self._hangup(conn, force=True)
        for conn, why in self._delivery.stalled(now):
            self._too_slow(conn, why)
        self._end_pass()

    # -- shutdown (hub thread) ---------------------------------------------

    def _shutdown(self) -> None:
        """Tell everyone, give them CLOSE_GRACE to read it, hang up."""
        message = self._stopping.message if self._stopping else "The server stopped."
        notice = Out.of({"type": "notice", "code": p.SHUTDOWN, "text": message})
        try:
            self.history.commit()
        except Exception as e:
            # Before anyone leaves the room (which hands them this pass's
            # frames): what could not be saved must not be sent.
            log.error("hub: could not save the last messages (%s); they are not sent", e)
            self.chat.fanout.discard()
        for conn in list(self.conns):
            if conn.sock is not None and conn.state != STATE_CLOSING:
                self.chat.leave(conn, None)
                conn.state = STATE_CLOSING
                conn.outbox.push(encoded(conn, notice))
                self._dirty.append(conn)
        self._write_pass()
        deadline = time.monotonic() + CLOSE_GRACE
        while any(c.outbox for c in self.conns if c.sock is not None) and time.monotonic() < deadline:
            self._wait(min(0.1, deadline - time.monotonic()))
        live = [c for c in self.conns if c.sock is not None]
        for conn in live:
            self._hangup(conn)          # FIN after the notice
        deadline = time.monotonic() + CLOSE_GRACE
        for conn in live:               # most clients close when they see it
            conn.thread.join(max(0.0, deadline - time.monotonic()))
        for conn in live:
            self._hangup(conn, force=True)

    def close(self) -> None:
        """After the readers have ended: close what is left. Idempotent.

        A reader still blocked in recv (the hub stopped without hanging up)
        is woken by shutdown() first: close() alone would not wake it."""
        self.chat.transfers.close()
        self.chat.blobs.close()         # the bytes' store (a shared store's: its Redis connections)
        for conn in list(self.conns):
            if conn.sock is not None:
                conn.stopping.set()
                try:
                    conn.sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass
                self._close(conn)
        self._writer.close()
        self._selector.close()
        self._inbox.close()


def _is_loopback(ip: str) -> bool:
    return ip.startswith("127.") or ip == "::1" or ip.startswith("::ffff:127.")
