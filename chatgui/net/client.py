"""The network client: one connection to a Natter server, kept up by itself.

:class:`ChatClient` connects, says hello, and puts what happens on the
``events`` queue given to it: the contract is :mod:`chatgui.net.events` (read
its docstring for the order of events). The UI only calls the public
methods (the requests are in :mod:`chatgui.net.requests`) and reads the
queue; it never waits on the network.

Threads (both daemon, both ended by :meth:`ChatClient.close`):

- ``net-reader`` dials, says hello (through the writer), reads, decodes
  with :mod:`server.protocol`, de-duplicates and enqueues events. After a
  drop it waits (backoff with full jitter) and dials again, resuming with
  ``since`` = the last message id seen and ``resume`` = the session token,
  so nothing is missed and nothing is shown twice. It is the only thread
  that closes a socket, and only after the writer has let go of it.
- ``net-writer`` does every ``sendall``: the hello, pings and pongs, the
  user's messages once the server has welcomed us, and ``bye``.

Public methods run on any thread (the Tk thread calls them), take one lock
briefly and never touch a socket while holding it: :meth:`say`, :meth:`dm`,
:meth:`set_nick` and, for rooms, :meth:`join`, :meth:`part`,
:meth:`topic`, :meth:`history`, :meth:`rooms` and :meth:`read` only
queue; :meth:`close` signals and waits at most its ``timeout``.
:meth:`flush` blocks and is meant for the terminal mode.

Exactly once: each outgoing item (all of the above but ``read``) carries a
fresh ``ref`` and stays in the offline queue
(:class:`chatgui.net.outbox.Outbox`) until the server acknowledges it,
live or in the replay of a resumed session (the server puts our ``ref``
back on our own messages there); after a reconnect only the
unacknowledged ones are sent again, in order, once the catch-up is over
(:mod:`chatgui.net.inbound`). Read markers are not queued items: only the
highest one per room waits to be sent, and nothing answers it.

Protocol v2 (rooms): the hello says ``"v": 2``. A server with rooms
answers with a welcome saying ``"replay": true`` and then the catch-up
frames; an older server with today's welcome, which still works: the
client then refuses room actions itself (``Refused`` code ``no_rooms``)
instead of sending what that server would not understand.

Session: the welcome's resume token is saved per server and nick
(:class:`chatgui.net.sessions.SessionStore`, ``keep_session=False`` to
not), and a new client for the same server and nick resumes it: its rooms,
read markers and private history are there again.

Extensions to the event contract (additions only):

- ``ConnectFailed.kind``: ``unreachable`` also covers any other socket
  error; ``server_full`` also covers "too many connections from your
  address"; ``timeout`` also covers "connected, but no welcome came".
  ``nick_taken`` on a *re*connect is retried with backoff (our old
  connection may still hold the nick); ``auth_failed`` and ``bad_nick``
  never are. Before the first welcome nothing is retried.
- After ``ConnectFailed(retry_in=None)`` or ``Disconnected(retry_in=None)``
  the client has stopped: ``Closed`` follows. To try again (another nick,
  a password), make a new ChatClient. A user's :meth:`close` gives only
  ``Closed("closed")``. The server handing our session to another client
  (error ``replaced``) is such a final ``Disconnected``.
- The catch-up after ``Connected`` (``RoomState``, ``Backlog``, ``Acked``)
  always ends with ``CaughtUp``; from a server without rooms it is one
  ``Backlog``, even empty. ``Acked`` comes for our items that the replay
  shows the server got (their ``Message``/``Direct`` is in a Backlog).
- For our own message the ``Message``/``Direct`` (with its ``ref``) comes
  first, then ``Acked(ref, id)``. A rename is acknowledged by ``Renamed``
  then ``Acked(ref, None)``; a rename to the nick we already have is
  acknowledged at once (the server would not answer it). Refusals the
  client makes itself (empty text, a control character, too long, queue
  full, closed, rooms on a server without them) come as ``Refused`` with
  codes ``bad_text``, ``bad_nick``, ``bad_room``, ``bad_key``, ``too_long``,
  ``queue_full``, ``closed``, ``no_rooms``. The answer to a request with a
  ref (``RoomState``, our own ``Left``, ``Topic``, ``HistoryPage``,
  ``RoomList``) comes first, then its ``Acked``.
- Server ``ServerError`` frames without a ref of ours (``rate_limited``,
  ``timeout``...) and ``Notice`` are passed through as they are.
- ``unavailable`` for an item of ours (several servers sharing Redis, and
  Redis away: docs/scaling.md) is no refusal: the item stays queued and is
  written again after 0.5 s, doubling to 8 s, until it is acknowledged
  (the server stores a retry with the same ref once).

Identity and moderation (issue 11): ``identity`` (the secret of
:mod:`chatgui.net.identity`) goes in every hello as ``"identity"``; the
hello is made only after the TLS pin check passed (see "TLS and
pinning"), so neither it nor the password reaches a certificate not yet
trusted. :meth:`forget`, :meth:`mod`, :meth:`mode`, :meth:`delete`,
:meth:`edit`, :meth:`release` and :meth:`audit` queue like the others;
the server's ``moderated``, ``mode``, ``deleted``, ``edited``, ``audit``
and ``forgotten`` frames come as the classes of
:mod:`chatgui.net.moderation` (stored ones de-duplicated by ``id``, or by
``seq`` for ``deleted``/``edited``, which also counts in ``since``), and
messages with issue 11's fields as its ``MarkedMessage``/``MarkedDirect``,
live, in replays and in history pages. ``RoomState.powers`` carries a
``room`` frame's modes and roles; ``Refused.until`` / ``retry_after``
those of a ``muted``, ``banned`` or ``slow_mode`` error;
``Connected.admin`` the welcome's ``admin``.

Files (issue 12): :meth:`upload` queues an offer like the other items
(answered by ``server.protocol.UploadReady`` with its ref, then ``Acked``,
or ``Refused``); messages and dms carrying a ``file`` come as the
protocol's ``Message``/``Direct`` with their ``file`` set. The bytes go on
a second connection that :meth:`open_transfer` dials for
:mod:`chatgui.net.transfers` (same address, same TLS pin check, never a
first use); :attr:`session` is the token a download names.

Bounded sending: the control frames waiting for the writer (hello, ping,
pong) hold at most one of each kind, so a server that floods pings and
stops reading cannot grow the client's memory; what the user sends is
bounded by ``max_pending``.

History identity: the welcome's ``epoch`` names the server's history. The
client sends the last one it saw with ``since`` when it resumes, and
starts its seen ids over (the backlog shows as new) when a welcome has
another epoch, says ``"reset": true``, or has a ``last_id`` below the
last id seen: ids from another history must not hide new messages.

Additions to the API beyond the issues: :attr:`~ChatClient.nick`,
:attr:`~ChatClient.state`, :attr:`~ChatClient.threads`,
:meth:`~ChatClient.pending`, :meth:`~ChatClient.flush`,
:meth:`~ChatClient.retry_now`.

TLS and pinning (issue 6): with ``tls=True`` :meth:`ChatClient._dial`
returns a :class:`chatgui.net.transport.TlsTransport` (TLS 1.2 or newer over
memory BIOs, see its docstring) instead of a ``PlainTransport``. Certificates are
self-signed, so none is checked against an authority; the client trusts
on first use instead (:mod:`chatgui.net.pins`):

- After the handshake and *before the hello exists*, the certificate's
  fingerprint (:func:`server.tls.fingerprint`, "3F2A 9B1C ...") is
  compared with the expected one: ``accept_fingerprint`` if given, else
  the pin for ``host:port`` in the :class:`~chatgui.net.pins.PinStore`, else
  the one this client already went on with.
- Nothing expected: a first use. By default the client stops there with
  ``ConnectFailed("tls_new", <the fingerprint to compare>, None,
  fingerprint=<shown>, pinned=None)``: final, and nothing was sent, so
  neither nick nor password reaches a server the person has not
  recognised. The UI shows the fingerprint, asks, and makes a new client
  with ``accept_fingerprint=<shown>`` when the person trusts it. With
  ``trust_first_use=True`` (tests, callers that decided without asking)
  the connection goes on instead and the pin is written when the welcome
  comes (a refused password pins nothing);
  ``Connected(first_use=True, fingerprint=...)`` tells the UI to show it.
- The same: on silently (``Connected.fingerprint`` filled, ``first_use``
  False).
- Different: ``ConnectFailed("tls_changed", <warning with both
  fingerprints>, None, fingerprint=<shown>, pinned=<expected>)``, never
  retried, on a reconnect too; nothing was sent. The user may compare
  and then make a new client with ``accept_fingerprint=<shown>``, which
  replaces the pin; ``accept_fingerprint`` also refuses any *other*
  certificate, on a first use as well.
- Wrong layer: a TLS client on a plain server (the server hangs up on
  the handshake) and other handshake failures are ``ConnectFailed("tls")``
  (retried with backoff on a reconnect, a restarting server can hang up
  mid-handshake; final before the first welcome); a plain client on a
  TLS server gets ``tls_required``, also kind ``tls`` and final.

Several addresses (issue 15): ``host`` may be a list, ``"a,b:7000,[::1]:7001"``
(read by :func:`chatgui.netcheck.split_addresses`, ``port`` for an entry
without one; a bad entry raises ValueError with a sentence here), or a
sequence of ``(host, port)``: the nodes of one deployment
(docs/scaling.md). The reader tries them in order, starting at the last
one that welcomed us. A connection-level failure (refused, timeout,
unreachable, dns, tls handshake, protocol, server_full) moves on to the
next address at once; a lost connection starts the next round at the
address after the lost one. The backoff is per full round, not per
address: only when every address failed once is ``ConnectFailed``
emitted (its message has each address's sentence, its ``host``/``port``
the last one tried), and before the first welcome that is final as
with one address. Refusals from a server that answered (``nick_taken``,
``auth_failed``...) and every TLS trust stop end the round as they would
with one address. :attr:`host` and :attr:`port` are the address in use.
The resume (``since``, ``resume``) goes to whichever node answers.

Trust is per address, as with one: each is pinned under its own
``host:port``, and "the certificate this client already went on with"
is remembered per address, so a node with its own certificate is a first
use (``tls_new``) of that address, never accepted on another's pin.
``accept_fingerprint`` is for the address ``accept_at`` (default the
first; the client starts there), which a UI takes from the failure's
``ConnectFailed.host``/``port``. The saved session token (see "Session")
is filed under the first address, the deployment's name here.
"""
from __future__ import annotations

import errno
import itertools
import logging
import os
import queue
import secrets
import selectors
import socket
import threading
import time

from server import protocol

from chatgui.net import events as ev
from chatgui.net import moderation as mod
from chatgui.net.pins import PinStore, normalize_fingerprint
from chatgui.net.requests import Requests, _text
from chatgui.net.backoff import Backoff
from chatgui.netcheck import split_addresses
from chatgui.net.failures import (FINAL_KINDS, classify_os_error, classify_refusal, classify_tls_error,
                                  refusal_detail, tls_changed_message, tls_new_message)
from chatgui.net.identity import valid_secret
from chatgui.net.inbound import Inbound, NO_ROOMS, NO_ROOMS_MESSAGE, needs_rooms
from chatgui.net.outbox import Outbox, QueueFull, SeenIds
from chatgui.net.sessions import SessionStore
from chatgui.net.transport import SLICE, HandshakeStopped, PlainTransport, TlsTransport, client_context

log = logging.getLogger("natter.client")

MAX_IDLE_WAIT = 1.0          # an idle reader wakes at least this often (see _read_loop)
PING = protocol.encode({"type": "ping"})
PONG = protocol.encode({"type": "pong"})
BYE = protocol.encode({"type": "bye"})

# A failure of the connection itself, not an answer of the server: try the next address.
MOVE_ON_KINDS = frozenset({"refused", "timeout", "unreachable", "dns", "tls", "protocol", "server_full"})

# States, as :attr:`ChatClient.state` reports them.
IDLE, CONNECTING, HANDSHAKE, ONLINE, OFFLINE, CLOSED = (
    "idle", "connecting", "handshake", "online", "offline", "closed")


class _Stopped(Exception):
    """close() was called."""


class TransferStopped(Exception):
    """:meth:`ChatClient.open_transfer` was stopped (a transfer cancelled, or the client closed)."""


class _Failed(Exception):
    """An attempt failed before the welcome.

    ``final`` overrides :data:`FINAL_KINDS` when not None. ``fingerprint``
    and ``pinned`` travel to ``ConnectFailed`` (for ``tls_changed``).
    """

    def __init__(self, kind: str, message: str, *, final: bool | None = None,
                 fingerprint: str | None = None, pinned: str | None = None):
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.final = kind in FINAL_KINDS if final is None else final
        self.fingerprint = fingerprint
        self.pinned = pinned


class _Lost(Exception):
    """A welcomed connection ended."""

    def __init__(self, reason: str, final: bool = False):
        super().__init__(reason)
        self.reason = reason
        self.final = final


class ChatClient(Requests):
    """A chat connection that reconnects by itself; see the module docstring.

    ``events`` must be an unbounded ``queue.Queue``. Timing knobs:
    ``connect_timeout`` per address dialled, ``handshake_timeout`` for the
    welcome, ``ping_interval`` of silence before we ping, ``ping_timeout``
    more before the connection counts as dead, ``stable_after`` seconds
    online before the backoff starts again from a quick retry,
    ``close_grace`` for the server to answer our ``bye``. ``backoff`` is a
    :class:`~chatgui.net.failures.Backoff` (tests pass a deterministic one).

    ``tls`` encrypts; ``pins`` is where fingerprints are pinned (default:
    a :class:`~chatgui.net.pins.PinStore` on ``known_servers.json``);
    ``accept_fingerprint`` is a fingerprint the user compared and trusts
    for this server (implies ``tls``; a malformed one raises ValueError
    here). ``trust_first_use`` goes on with a server met for the first
    time instead of stopping with ``tls_new``. See "TLS and pinning" in
    the module docstring.
    """

    def __init__(self, host: str, port: int, nick: str, *, events: queue.Queue,
                 password: str | None = None, reconnect: bool = True, connect_timeout: float = 5.0,
                 handshake_timeout: float = 10.0, ping_interval: float = 30.0,
                 ping_timeout: float = 15.0, stable_after: float = 10.0, close_grace: float = 1.0,
                 backoff: Backoff | None = None, max_pending: int = 1000, tls: bool = False,
                 pins: PinStore | None = None, accept_fingerprint: str | None = None,
                 trust_first_use: bool = False, sessions: SessionStore | None = None,
                 keep_session: bool = True, identity: str | None = None,
                 accept_at: tuple | None = None):
        if identity is not None and not valid_secret(identity):
            raise ValueError("an identity is 32 to 128 printable ASCII characters")
        self.identity = identity
        if not isinstance(host, str):
            addresses = [(str(h), int(n)) for h, n in host]
        elif "," in host:
            addresses = split_addresses(host, int(port))
        else:
            addresses = [(host, int(port))]     # one address: as given, as before
        if not addresses:
            raise ValueError("Give at least one address.")
        self.addresses = tuple(addresses)
        self.accept_at = (str(accept_at[0]), int(accept_at[1])) if accept_at is not None else addresses[0]
        if self.accept_at not in self.addresses:
            raise ValueError(f"accept_at {self.accept_at!r} is not one of the addresses")
        # (reader) The address in use, replaced whole (other threads read it).
        self._address = self.accept_at
        self._good = self.addresses.index(self.accept_at)   # (reader) the last address that welcomed us
        # The resume token is read and saved on the reader thread only (file I/O).
        self._sessions = (sessions or SessionStore()) if keep_session else None
        self._saved_session: tuple | None = None    # (reader) (nick, token) last saved
        # TLS (see "TLS and pinning" in the module docstring). The pin store is
        # only used on the reader thread; accept_fingerprint is checked here so
        # a typo fails at once (ValueError), not on the network.
        self.tls = bool(tls or accept_fingerprint)
        self.accept_fingerprint = (normalize_fingerprint(accept_fingerprint)
                                   if accept_fingerprint is not None else None)
        self._pins = pins if pins is not None else (PinStore() if self.tls else None)
        self._trusted: dict = {}            # (reader) (host, port) -> the fingerprint this client went on with
        self.trust_first_use = trust_first_use
        self.password = _text(password) if password is not None else None
        self.reconnect = reconnect
        self.connect_timeout = connect_timeout
        self.handshake_timeout = handshake_timeout
        self.ping_interval = ping_interval
        self.ping_timeout = ping_timeout
        self.stable_after = stable_after
        self.close_grace = close_grace
        self._events = events
        self._backoff = backoff or Backoff()
        self._refs = itertools.count(1)
        self._ref_prefix = secrets.token_hex(3) + "-"
        self._cv = threading.Condition(threading.Lock())
        # Guarded by _cv:
        self._nick = _text(nick)            # as the server last confirmed it (or as asked)
        self._state = IDLE
        self._outbox = Outbox(max_pending)
        self._seen = SeenIds()
        self._inbound = Inbound(self._outbox, self._seen)
        self._reads: dict = {}              # room key -> (room, upto): read markers to send
        self._control: list = []            # hello / ping / pong bytes for the current transport
        self._transport = None              # the connection being dialled or in use
        self._broken = None                 # a transport the writer failed on
        self._writing = None                # the transport inside sendall() right now
        self._bye_sent_on = None
        self._session: str | None = None    # resume token from the last welcome
        self._epoch: str | None = None      # history identity from the last welcome
        self._ever_welcomed = False
        self._online_since = 0.0
        self._max_line = protocol.MAX_LINE
        self._started = False
        self._closing = False
        self._close_deadline = 0.0
        self._retry_now = False
        self._finished = False              # the reader has ended; the writer must too
        self._closed_emitted = False
        self._replaced = False              # (reader) the server handed our session to another client
        self._fatal: str | None = None      # the writer thread failed: stop
        self._reader = threading.Thread(target=self._run, name="net-reader", daemon=True)
        self._writer = threading.Thread(target=self._write_loop, name="net-writer", daemon=True)

    # -- public, any thread ----------------------------------------------

    @property
    def host(self) -> str:
        """The host of the address in use (or last tried)."""
        return self._address[0]

    @property
    def port(self) -> int:
        return self._address[1]

    @property
    def nick(self) -> str:
        """Our nick as the server last confirmed it (the asked one before that)."""
        return self._nick

    @property
    def state(self) -> str:
        """idle | connecting | handshake | online | offline | closed."""
        return self._state

    @property
    def threads(self) -> tuple:
        """The client's threads (for tests and diagnostics)."""
        return (self._reader, self._writer)

    def start(self) -> "ChatClient":
        """Start the threads; returns at once. Idempotent."""
        with self._cv:
            if self._started or self._closing:
                return self
            self._started = True
        self._writer.start()
        self._reader.start()
        return self

    def read(self, room: str, upto: int) -> None:
        """Move our read marker in ``room`` forward to message ``upto``.

        Nothing answers it. Coalesced: of the markers not yet sent, only the
        highest per room is sent, once online (a server without rooms gets
        none). A bad room name is ignored (logged).
        """
        if type(upto) is not int or upto < 0:
            raise ValueError("upto is a message id")
        try:
            room = protocol.check_room(_text(room))
        except protocol.ProtocolError as e:
            log.warning("read marker for a bad room name ignored: %s", e.message)
            return
        with self._cv:
            if self._closing or self._state == CLOSED or self._inbound.rooms is False:
                return
            k = protocol.room_key(room)
            old = self._reads.get(k)
            if old is None or upto > old[1]:
                self._reads[k] = (room, upto)
                self._cv.notify_all()

    # -- files (issue 12) -------------------------------------------------

    @property
    def session(self) -> str | None:
        """The session token of the last welcome (a ``get`` names it), None before one."""
        return self._session

    def open_transfer(self, stopping, timeout: float | None = None):
        """A second connection to this client's server, for a file's bytes
        (a transfer thread; blocks). Plain, or TLS with the certificate this
        client trusts: the one its chat connection went on with, else the
        pinned or accepted one; never a first use. ``stopping()`` is polled
        while connecting. Returns a transport (see :mod:`chatgui.net.transport`);
        raises :class:`TransferStopped` or ``OSError`` whose ``strerror`` is
        a sentence for a person."""
        address = self._address
        try:
            sock = self._connect(stopping, address)
        except _Stopped:
            raise TransferStopped() from None
        except _Failed as e:
            raise OSError(errno.ECONNREFUSED, e.message) from None
        if not self.tls:
            return PlainTransport(sock)
        transport = TlsTransport(sock, client_context())
        try:
            transport.handshake(time.monotonic() + (timeout or self.handshake_timeout), stopping)
            expected = (self._trusted.get(address)
                        or (self.accept_fingerprint if address == self.accept_at else None)
                        or self._pins.get(*address))
            if transport.fingerprint != expected:
                raise OSError(errno.EPERM, tls_changed_message(*address, expected or "(none)",
                                                               transport.fingerprint))
        except HandshakeStopped:
            sock.close()
            raise TransferStopped() from None
        except BaseException:
            sock.close()
            raise
        return transport

    def pending(self) -> int:
        """How many sent items wait for the server's acknowledgement."""
        with self._cv:
            return len(self._outbox)

    def flush(self, timeout: float) -> bool:
        """Block until every queued item is acknowledged or refused; True if so.

        Blocks the calling thread: for the terminal mode, never the Tk thread.
        """
        deadline = time.monotonic() + timeout
        with self._cv:
            while len(self._outbox) and self._state != CLOSED:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cv.wait(left)
            return not len(self._outbox)

    def retry_now(self) -> None:
        """Cut the backoff wait short (a "Retry now" button)."""
        with self._cv:
            self._retry_now = True
            self._cv.notify_all()

    def close(self, timeout: float = 1.0) -> bool:
        """Say bye when online, end both threads, put ``Closed`` once. Idempotent.

        Waits at most ``timeout`` seconds for the threads (0: not at all;
        ``Closed`` on the queue marks the end). Returns True when they have
        ended. Items not yet acknowledged are sent before the bye if they
        can be, and are not retried.
        """
        with self._cv:
            if not self._closing:
                self._closing = True
                self._close_deadline = time.monotonic() + self.close_grace
            if not self._started:
                self._state = CLOSED
                self._emit(ev.Closed("closed"))
                return True
            # Not yet welcomed: nothing to say goodbye to; wake the reader.
            t = self._transport if self._state != ONLINE else None
            self._cv.notify_all()
        if t is not None:
            _quietly(t.shutdown, socket.SHUT_RDWR)
        me = threading.current_thread()
        deadline = time.monotonic() + timeout
        for th in (self._reader, self._writer):
            if th is not me and th.ident is not None:
                th.join(max(0.0, deadline - time.monotonic()))
        return not (self._reader.is_alive() or self._writer.is_alive())

    # -- queueing (caller's thread) ---------------------------------------

    def _new_ref(self) -> str:
        return f"{self._ref_prefix}{next(self._refs)}"

    def _refuse(self, ref: str, code: str, message: str) -> str:
        with self._cv:
            self._emit(ev.Refused(ref, code, message))
        return ref

    def _submit(self, ref: str, kind: str, frame: dict, text: str | None = None) -> str:
        if text is not None:
            try:
                protocol.check_text(text)
            except protocol.ProtocolError as e:
                return self._refuse(ref, e.code, e.message)
        size = len(protocol.encode(frame))
        with self._cv:
            if self._closing or self._state == CLOSED:
                self._emit(ev.Refused(ref, "closed", "Not sent: the connection is closed."))
                return ref
            if size > self._max_line:
                self._emit(ev.Refused(ref, protocol.TOO_LONG, f"Too long to send: {size} bytes, "
                                                              f"the server takes at most {self._max_line}."))
                return ref
            if self._inbound.rooms is False and needs_rooms(kind, frame):
                self._emit(ev.Refused(ref, NO_ROOMS, NO_ROOMS_MESSAGE))
                return ref
            if kind == "nick" and frame["nick"] == self._outbox.expected_nick(self._nick):
                self._emit(ev.Acked(ref, None))   # the server would ignore it: nothing to wait for
                return ref
            try:
                self._outbox.add(ref, kind, frame)
            except QueueFull as e:
                self._emit(ev.Refused(ref, "queue_full", f"Not sent: {e}."))
                return ref
            self._cv.notify_all()
        return ref

    def _emit(self, event) -> None:
        """Put an event on the queue (caller holds _cv); nothing after Closed."""
        if self._closed_emitted:
            return
        if type(event) is ev.Closed:
            self._closed_emitted = True
        self._events.put(event)

    # -- writer thread ----------------------------------------------------

    def _write_loop(self) -> None:
        """net-writer: send what is queued for the current transport."""
        cv = self._cv
        try:
            while True:
                with cv:
                    while True:
                        if self._finished:
                            return
                        t = self._transport
                        data, shut = self._next_batch()
                        if data or shut:
                            break
                        due = self._outbox.next_retry()
                        cv.wait(None if due is None else max(0.0, due - time.monotonic()))
                    self._writing = t
                try:
                    if data:
                        t.sendall(data)
                    if shut:
                        t.shutdown(socket.SHUT_WR)
                except OSError as e:
                    log.debug("send failed: %s", e)
                    with cv:
                        self._broken = t
                    _quietly(t.shutdown, socket.SHUT_RDWR)   # the reader sees the drop
                finally:
                    with cv:
                        self._writing = None
                        cv.notify_all()
        except Exception as e:
            # A bug, not the network: stop the client rather than leave it
            # reconnecting with nobody to send the hello.
            log.exception("net-writer failed")
            with cv:
                self._fatal = f"The network client failed while sending: {e!r}"
                t = self._transport
                self._broken = t
                self._writing = None
                cv.notify_all()
            if t is not None:
                _quietly(t.shutdown, socket.SHUT_RDWR)

    def _next_batch(self) -> tuple[bytes, bool]:
        """(bytes to send, whether to half-close after); caller holds _cv."""
        t = self._transport
        if t is None or t is self._broken or t is self._bye_sent_on:
            return b"", False
        control, self._control = self._control, []
        parts = []
        shut = False
        if self._state == ONLINE:
            if self._reads and self._inbound.rooms:
                parts.extend(protocol.encode(protocol.read_frame(room, upto)) for room, upto in self._reads.values())
                self._reads.clear()
            # During a catch-up the replay may still show that the server has
            # an item: it is sent again only after caught_up.
            if not self._inbound.replaying:
                parts.extend(item.data for item in self._outbox.take_unsent(time.monotonic()))
        # Online, a ping or pong goes after what was queued before it: a
        # server's ping is answered once everything asked until then is out.
        # (Before the welcome, control holds only the hello.)
        parts.extend(control)
        if self._state == ONLINE:
            if self._closing:
                parts.append(BYE)
                self._bye_sent_on = t
                shut = True
        return b"".join(parts), shut

    # -- reader thread ----------------------------------------------------

    def _run(self) -> None:
        """net-reader: the connection's whole life, then Closed."""
        reason = "closed"
        try:
            reason = self._connect_loop()
        except Exception as e:
            log.exception("net-reader failed")
            reason = f"The network client failed: {e!r}"
            with self._cv:
                self._emit(ev.Disconnected(reason, None))
        finally:
            with self._cv:
                self._state = CLOSED
                self._finished = True
                self._cv.notify_all()
            if self._writer.ident is not None:
                self._writer.join(5.0)
            with self._cv:
                self._emit(ev.Closed(reason))

    def _connect_loop(self) -> str:
        """Dial, talk, back off, repeat; returns the reason it stopped."""
        try:
            self._nick = protocol.check_nick(self._nick)
        except protocol.ProtocolError as e:
            kind, message = classify_refusal(e.code, e.message, self._nick, self.password is not None)
            with self._cv:
                self._emit(ev.ConnectFailed(kind, message, None))
            return message
        self._load_session()
        attempt = 0
        start = self._good
        n = len(self.addresses)
        while True:
            failures = []           # this round's, one per address tried
            for k in range(n):
                address = self.addresses[(start + k) % n]
                attempt += 1
                with self._cv:
                    if self._closing:
                        return "closed"
                    if self._fatal:
                        self._emit(ev.Disconnected(self._fatal, None))
                        return self._fatal
                    self._state = CONNECTING
                    self._address = address
                    self._emit(ev.Connecting(self.host, self.port, attempt))
                try:
                    self._talk(self._dial())
                except _Stopped:
                    return "closed"
                except _Failed as e:
                    failures.append(e)
                    if k < n - 1 and not e.final and e.kind in MOVE_ON_KINDS:
                        log.info("%s; trying the next address", e.message)
                        continue
                    with self._cv:
                        delay, reason = self._next_move(_round_failed(failures))
                    start = self._good
                except _Lost as e:
                    with self._cv:
                        delay, reason = self._next_move(e)
                    attempt = 0
                    start = (self.addresses.index(address) + 1) % n
                if delay is None:
                    return reason
                break
            if not self._wait(delay):
                return "closed"

    def _next_move(self, e) -> tuple:
        """After a failed attempt or a drop (caller holds _cv): emit what
        happened and return (delay before the next try, None) or (None,
        why we stop)."""
        if self._closing:
            return None, "closed"
        self._state = OFFLINE
        if self._fatal:         # the writer broke the connection, not the network
            self._emit(ev.Disconnected(self._fatal, None))
            return None, self._fatal
        if isinstance(e, _Failed):
            if not (self._ever_welcomed and self.reconnect) or e.final:
                self._emit(ev.ConnectFailed(e.kind, e.message, None, e.fingerprint, e.pinned,
                                            self.host, self.port))
                return None, e.message
            delay = self._backoff.next_delay()
            self._emit(ev.ConnectFailed(e.kind, e.message, round(delay, 3), e.fingerprint, e.pinned,
                                        self.host, self.port))
            return delay, None
        if time.monotonic() - self._online_since >= self.stable_after:
            self._backoff.reset()
        if e.final or not self.reconnect:
            self._emit(ev.Disconnected(e.reason, None))
            return None, e.reason
        delay = self._backoff.next_delay()
        self._emit(ev.Disconnected(e.reason, round(delay, 3)))
        return delay, None

    def _wait(self, delay: float) -> bool:
        """Sleep out the backoff; False if close() came meanwhile."""
        deadline = time.monotonic() + delay
        with self._cv:
            while not (self._closing or self._retry_now or self._fatal):
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cv.wait(left)
            self._retry_now = False
            return not self._closing

    def _where(self) -> str:
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"

    def _dial(self):
        """Connect to the first address that answers, with TLS when asked;
        raises _Failed or _Stopped.

        Non-blocking connect, waited for in slices so close() is heard.
        Name resolution itself cannot be interrupted.
        """
        sock = self._connect()
        if not self.tls:
            return PlainTransport(sock)
        return self._secure(sock)

    def _connect(self, stopping=None, address=None) -> socket.socket:
        """A connected TCP socket to the first IP of ``address`` (default:
        the one in use) that answers; ``stopping()`` (default: close() was
        called) cuts the wait short."""
        host, port = address or self._address
        try:
            infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        except (socket.gaierror, UnicodeError) as e:
            raise _Failed(*classify_os_error(_as_gaierror(e), host, port,
                                             self.connect_timeout)) from None
        errors = []
        for family, kind, proto, _, addr in infos:
            sock = socket.socket(family, kind, proto)
            try:
                self._connect_sock(sock, addr, stopping or (lambda: self._closing))
            except OSError as e:
                sock.close()
                errors.append(e)
                continue
            except BaseException:
                sock.close()
                raise
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            return sock
        # Prefer the most telling error: a timeout or an unreachable network
        # says more than "refused" on the IPv6 twin of a name.
        refused = [e for e in errors if isinstance(e, ConnectionRefusedError)]
        best = next((e for e in errors if e not in refused), None) or errors[-1]
        raise _Failed(*classify_os_error(best, host, port, self.connect_timeout))

    def _secure(self, sock: socket.socket) -> TlsTransport:
        """TLS handshake, then the pin check; raises _Failed or _Stopped.

        Runs before the hello exists: a server whose certificate is not
        the expected one never gets our nick or password. Transport-level
        TLS failures are retried on reconnects (a restarting server may
        hang up mid-handshake); a changed certificate never is.
        """
        where = self._where()
        transport = TlsTransport(sock, client_context())
        try:
            transport.handshake(time.monotonic() + self.handshake_timeout, lambda: self._closing)
        except HandshakeStopped:
            sock.close()
            raise _Stopped() from None
        except TimeoutError:
            sock.close()
            raise _Failed("timeout", f"Connected to {where}, but the encryption (TLS) handshake did not "
                                     f"finish within {self.handshake_timeout:g} s: is that a Natter "
                                     "server started with --tls?") from None
        except OSError as e:        # ssl.SSLError included
            sock.close()
            raise _Failed(*classify_tls_error(e, transport.first_bytes, self.host, self.port),
                          final=False) from None
        except BaseException:
            sock.close()
            raise
        try:
            transport.first_use = self._check_certificate(transport.fingerprint)
        except BaseException:
            sock.close()
            raise
        return transport

    def _check_certificate(self, fp: str) -> bool:
        """net-reader: go on with this certificate or raise _Failed
        ("tls_changed", or "tls_new" on a first use unless ``trust_first_use``).

        Returns True on a first use that goes on (the pin is written at
        the welcome, see :meth:`_remember`). The certificate
        expected is, in order: the one the user said to trust
        (``accept_fingerprint``, pinned at once), the pinned one, the one
        this client already went on with (so a deleted pin file does not
        let a new certificate in mid-session).
        """
        address = self._address
        accept = self.accept_fingerprint if address == self.accept_at else None
        if accept is not None:
            if fp != accept:
                raise _Failed("tls_changed", tls_changed_message(self.host, self.port, accept, fp, given=True),
                              fingerprint=fp, pinned=accept)
            if address not in self._trusted:
                try:
                    if self._pins.get(self.host, self.port) != fp:
                        self._pins.replace(self.host, self.port, fp)
                except OSError as e:
                    log.warning("could not save the trusted certificate of %s: %s", self._where(), e)
                self._trusted[address] = fp
            return False
        expected = self._pins.get(self.host, self.port) or self._trusted.get(address)
        if expected is None:
            if self.trust_first_use:
                return True
            raise _Failed("tls_new", tls_new_message(self.host, self.port, fp), fingerprint=fp)
        if fp != expected:
            raise _Failed("tls_changed", tls_changed_message(self.host, self.port, expected, fp),
                          fingerprint=fp, pinned=expected)
        self._trusted[address] = fp
        return False

    def _remember(self, transport) -> None:
        """net-reader, at a welcome: pin a first-use certificate (file I/O,
        no lock held). A pin that cannot be saved is kept for this client's
        life and logged."""
        if not transport.first_use:
            return
        self._trusted[self._address] = transport.fingerprint
        try:
            self._pins.pin(self.host, self.port, transport.fingerprint)
        except OSError as e:
            log.warning("could not save the certificate fingerprint of %s (%s): it will be "
                        "asked about again next time", self._where(), e)

    def _connect_sock(self, sock: socket.socket, addr, stopping) -> None:
        sock.setblocking(False)
        err = sock.connect_ex(addr)
        if err not in (0, errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EALREADY):
            raise OSError(err, os.strerror(err))
        if err:
            deadline = time.monotonic() + self.connect_timeout
            with selectors.DefaultSelector() as sel:
                sel.register(sock, selectors.EVENT_WRITE)
                while not sel.select(SLICE):
                    if stopping():
                        raise _Stopped()
                    if time.monotonic() >= deadline:
                        raise TimeoutError(errno.ETIMEDOUT, "timed out")
            err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                raise OSError(err, os.strerror(err))
        sock.setblocking(True)

    def _talk(self, transport) -> None:
        """Hello, then read until the connection ends; always raises."""
        with self._cv:
            if self._closing:
                transport.close()
                raise _Stopped()
            resume = self._session
            since = self._seen.last if self._ever_welcomed else None
            # The epoch names the history that since counts in: only with a since.
            hello = protocol.hello_frame(self._nick, since, self.password, resume,
                                         self._epoch if since is not None else None,
                                         v=protocol.PROTOCOL_VERSION)
            if self.identity is not None:
                hello["identity"] = self.identity
            self._transport = transport
            self._broken = None
            self._replaced = False
            self._control = [protocol.encode(hello)]
            self._state = HANDSHAKE
            self._cv.notify_all()
        sel = selectors.DefaultSelector()
        sel.register(transport.fileno(), selectors.EVENT_READ)
        try:
            self._read_loop(transport, sel, resume)
        finally:
            self._teardown(transport, sel)

    def _read_loop(self, transport, sel, resume) -> None:
        decoder = protocol.LineDecoder(protocol.MAX_SERVER_LINE)
        started = last_heard = time.monotonic()
        pinged = False
        welcomed = False
        last_word = None      # what the server said before hanging up
        where = self._where()
        while True:
            now = time.monotonic()
            if self._closing and (not welcomed or now >= self._close_deadline):
                raise _Stopped()
            if not welcomed and now - started > self.handshake_timeout:
                raise _Failed("timeout", f"Connected to {where}, but no welcome came within "
                                         f"{self.handshake_timeout:g} s: is that a Natter server?")
            if welcomed:
                idle = now - last_heard
                if idle > self.ping_interval + self.ping_timeout:
                    raise _Lost(f"No answer from the server for {idle:.0f} s.")
                if idle > self.ping_interval and not pinged:
                    pinged = True
                    self._send_control(PING)
                due = last_heard + self.ping_interval + (self.ping_timeout if pinged else 0.0)
            else:
                due = started + self.handshake_timeout
            if self._closing:
                due = min(due, self._close_deadline)
            # Sleep until the next clock is due, but wake now and then to see
            # a close() that found nothing to shut down: a thousand idle
            # clients cost a thousand wake-ups a second, not four thousand.
            if not sel.select(min(MAX_IDLE_WAIT, max(0.005, due - now + 0.001))):
                continue
            try:
                data = transport.recv()
            except (BlockingIOError, InterruptedError):
                continue
            except OSError as e:
                if self._closing:
                    raise _Stopped() from None
                reason = e.strerror or str(e)
                if welcomed:
                    raise _Lost(f"The connection was lost ({reason}).") from None
                raise _Failed("protocol", f"{where} cut the connection before welcoming us "
                                          f"({reason}).") from None
            if not data:
                if self._closing:
                    raise _Stopped()
                if welcomed:
                    raise _Lost(last_word or "The server closed the connection.", final=self._replaced)
                raise _Failed("protocol", f"{where} closed the connection before welcoming us"
                              + (f": {last_word}" if last_word else "; is that a Natter server?"))
            last_heard = time.monotonic()
            pinged = False
            for line in decoder.feed(data):
                try:
                    if type(line) is not bytes:
                        raise line
                    frame = protocol.decode_frame(line)
                    event = mod.upgrade(protocol.parse_server(frame), frame)
                except protocol.ProtocolError as e:
                    if not welcomed:
                        raise _Failed("protocol", f"{where} does not speak the Natter protocol "
                                                  f"({e.message}).") from None
                    log.warning("bad frame from the server skipped: %s", e)
                    continue
                if welcomed:
                    word = self._on_event(event, frame)
                elif type(event) is protocol.Welcome:
                    if self.tls:
                        self._remember(transport)
                    self._on_welcome(event, frame, resume, transport)
                    welcomed = True
                    word = None
                else:
                    word = self._on_handshake_event(event)
                if word:
                    last_word = word
                if self._sessions is not None:
                    self._save_session()

    def _teardown(self, transport, sel) -> None:
        """Forget the transport, wake the writer off it, close it once it let go."""
        with self._cv:
            if self._transport is transport:
                self._transport = None
            self._control = []
            self._cv.notify_all()
        _quietly(transport.shutdown, socket.SHUT_RDWR)
        with self._cv:
            self._cv.wait_for(lambda: self._writing is not transport, timeout=5.0)
        sel.close()
        _quietly(transport.close)

    def _load_session(self) -> None:
        """net-reader, before the first dial: the token a previous run saved
        for this server and nick, so the hello resumes that session."""
        if self._sessions is None:
            return
        try:
            token = self._sessions.get(*self.addresses[0], self._nick)
        except OSError as e:
            log.warning("could not read the saved session for %s: %s", self._where(), e)
            return
        if token:
            with self._cv:
                if self._session is None:
                    self._session = token
            self._saved_session = (self._nick, token)

    def _save_session(self) -> None:
        """net-reader, no lock held: file the session token under our nick
        when either changed (a welcome, a rename). A token that cannot be
        saved costs only a new session on the next start (logged)."""
        now = (self._nick, self._session)
        if now == self._saved_session or now[1] is None:
            return
        old, self._saved_session = self._saved_session, now
        try:
            self._sessions.put(*self.addresses[0], now[0], now[1], instead_of=old[0] if old else None)
        except (OSError, ValueError) as e:
            log.warning("could not save the session for %s (%s): the next start begins a new one",
                        self._where(), e)

    def _send_control(self, data: bytes) -> None:
        """Queue a ping or pong for the writer; one of each waits at most
        (answering one of a thousand unanswered pings says the same)."""
        with self._cv:
            if data not in self._control:
                self._control.append(data)
                self._cv.notify_all()

    def _on_handshake_event(self, event) -> str | None:
        if type(event) is protocol.ServerError:
            raise _Failed(*classify_refusal(event.code, event.message, self._nick,
                                            self.password is not None))
        if type(event) is protocol.Notice:
            return event.text
        return None

    def _on_welcome(self, w: protocol.Welcome, frame: dict, resume, transport) -> None:
        limits = frame.get("limits")
        max_line = limits.get("max_line") if type(limits) is dict else None
        epoch = frame.get("epoch")      # echoed in our next hello: a sane size only
        epoch = epoch if type(epoch) is str and 0 < len(epoch) <= 128 else None
        with self._cv:
            if type(max_line) is int and max_line > 64:
                self._max_line = max_line
            seen = self._seen
            if self._ever_welcomed:
                why = _history_changed(frame.get("reset") is True, self._epoch, epoch, w.last_id, seen.last)
                if why:
                    log.warning("the server's history is not the one seen before (%s): "
                                "showing its messages as new", why)
                    seen.reset()
            self._epoch = epoch
            self._session = w.session
            self._nick = w.nick
            after = self._inbound.welcome(w)
            self._state = ONLINE
            self._good = self.addresses.index(self._address)
            self._ever_welcomed = True
            self._online_since = time.monotonic()
            resumed = resume is not None and w.session == resume
            self._emit(ev.Connected(self.host, self.port, w.nick, w.users, resumed,
                                    getattr(transport, "fingerprint", None),
                                    getattr(transport, "first_use", False),
                                    2 if w.replay else 1, w.rooms, admin=frame.get("admin") is True))
            for e in after:
                self._emit(e)
            self._cv.notify_all()

    def _on_event(self, event, frame: dict) -> str | None:
        """One event after the welcome; returns the server's last words when it said some."""
        kind = type(event)
        answer = _INBOUND.get(kind)
        if answer is not None:
            with self._cv:
                for e in answer(self._inbound, event, frame):
                    self._emit(e)
                self._cv.notify_all()       # an ack (flush waits), or caught_up (the writer)
            return None
        if kind is protocol.Ping:
            self._send_control(PONG)
            return None
        if kind is protocol.Pong or kind is protocol.Unknown or kind is protocol.Welcome:
            return None
        ref = frame.get("ref")
        with self._cv:
            if kind is protocol.Renamed:
                mine = type(ref) is str and self._outbox.ack(ref) is not None
                if mine or event.old == self._nick:
                    self._nick = event.new      # _save_session files the token under it
                self._emit(event)
                if mine:
                    self._emit(ev.Acked(ref, None))
                    self._cv.notify_all()
                return None
            if kind is protocol.ServerError:
                if event.code == protocol.UNAVAILABLE and \
                        self._outbox.retry_later(event.ref, time.monotonic()):
                    # The server could not store it (several servers, their Redis
                    # away): it stays queued and goes again, once stored once.
                    log.info("not stored yet (%s): sending %s again later", event.message, event.ref)
                    self._cv.notify_all()
                    return None
                item = self._outbox.ack(event.ref)
                if item is not None:
                    self._emit(ev.Refused(event.ref, event.code, event.message, *refusal_detail(frame)))
                    self._cv.notify_all()
                    return None
                self._emit(event)
                if event.code == "replaced":    # another client resumed our session
                    self._replaced = True
                return event.message if event.code != protocol.RATE_LIMITED else None
            self._emit(event)   # Joined, Notice
        if kind is protocol.Notice:
            return event.text
        return None


# Server events that Inbound turns into the UI's events (dedup, acks, catch-up).
_INBOUND = {
    protocol.Message: lambda inbound, e, frame: inbound.live(e),
    protocol.Direct: lambda inbound, e, frame: inbound.live(e),
    protocol.Topic: lambda inbound, e, frame: inbound.live(e),
    mod.MarkedMessage: lambda inbound, e, frame: inbound.live(e),
    mod.MarkedDirect: lambda inbound, e, frame: inbound.live(e),
    mod.Moderated: lambda inbound, e, frame: inbound.live(e),
    mod.ModeChanged: lambda inbound, e, frame: inbound.live(e),
    mod.Deleted: lambda inbound, e, frame: inbound.live(e),
    mod.Edited: lambda inbound, e, frame: inbound.live(e),
    mod.Audit: lambda inbound, e, frame: inbound.answer(e, e.ref),
    mod.Forgotten: lambda inbound, e, frame: inbound.answer(e, e.ref),
    protocol.Replay: lambda inbound, e, frame: inbound.replay(
        protocol.Replay(mod.upgrade_all(e.events, frame["frames"], log))),
    protocol.CaughtUp: lambda inbound, e, frame: inbound.caught_up(e),
    protocol.RoomInfo: lambda inbound, e, frame: inbound.answer(
        ev.RoomState(e, mod.parse_room_powers(frame)), e.ref),
    protocol.HistoryPage: lambda inbound, e, frame: inbound.answer(
        protocol.HistoryPage(e.room, e.with_, mod.upgrade_all(e.messages, frame["messages"], log), e.more, e.ref),
        e.ref),
    protocol.RoomList: lambda inbound, e, frame: inbound.answer(e, e.ref),
    protocol.UploadReady: lambda inbound, e, frame: inbound.upload_ready(e),
    protocol.Left: lambda inbound, e, frame: inbound.answer(e, frame.get("ref")),  # ours: a part's ack
}


def _round_failed(failures: list) -> "_Failed":
    """The failure a round of addresses ends with: the last one, with every
    address's sentence when there were several (each names its address)."""
    last = failures[-1]
    if len(failures) == 1 or last.kind in ("tls_new", "tls_changed"):   # a question about that one
        return last
    words = []
    for f in failures:
        if f.message not in words:
            words.append(f.message)
    return _Failed(last.kind, f"None of the {len(failures)} addresses worked. " + " ".join(words),
                   final=last.final, fingerprint=last.fingerprint, pinned=last.pinned)


def _history_changed(reset: bool, old_epoch, new_epoch, last_id: int, last_seen: int) -> str:
    """Why a resumed welcome comes from another history, or "" when it does not."""
    if reset:
        return "the server said reset"
    if old_epoch is not None and new_epoch is not None and old_epoch != new_epoch:
        return f"epoch {new_epoch!r}, was {old_epoch!r}"
    if last_id < last_seen:
        return f"last id {last_id} < {last_seen}"
    return ""


def _quietly(fn, *args) -> None:
    try:
        fn(*args)
    except OSError:
        pass


def _as_gaierror(e: Exception) -> socket.gaierror:
    return e if isinstance(e, socket.gaierror) else socket.gaierror(str(e))
