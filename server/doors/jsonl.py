"""The JSON-lines door: one client connection, its reader thread, its limits.

The reader thread (named ``reader-HOST:PORT``) is the only code that calls
``recv`` on the socket. It splits and validates frames with the protocol
module, applies flood control by *slowing* the client (it stops reading, so
TCP pushes back; nothing is dropped), and posts what it read to the hub. It
never writes to the socket and never touches room state.

The hub thread is the only writer: it pushes bytes into the connection's
:class:`~server.delivery.Outbox` and flushes them without blocking. It is also the only thread that closes the
socket, after the reader has said it is done, so a file descriptor is never
reused under a thread still using it.
"""
from __future__ import annotations

import collections
import dataclasses
import logging
import select
import socket
import ssl
import threading
import time

from .. import protocol
from ..delivery import DONTWAIT, Outbox
from ..tls import TlsChannel
from ..transfer import Handoff

log = logging.getLogger("natter.server")

RECV_SIZE = 16 * 1024
IDLE_RECV = 512        # what a reader's blocking recv asks for (its buffer while the client is quiet)
HANDED = "handed over"     # a reader loop's end when the socket became a transfer's

# What the reader posts besides protocol events and ProtocolErrors.
Gone = collections.namedtuple("Gone", "reason")
Throttled = collections.namedtuple("Throttled", "delay reads")   # reads: the history bucket
TlsKick = collections.namedtuple("TlsKick", "")         # handshake bytes wait to be sent
PlainOnTls = collections.namedtuple("PlainOnTls", "")   # a plaintext client on a TLS port
AuthFailed = collections.namedtuple("AuthFailed", "what", defaults=("room",))   # a wrong password: room or admin
# What the IRC and text doors' readers post: their input, for the
# connection's own hub-thread half (conn.door_input).
DoorInput = collections.namedtuple("DoorInput", "data")


def not_json(text_port: int | None) -> protocol.ProtocolError:
    """The answer to a first byte that cannot begin a JSON object."""
    where = (f"; for plain text (nc, telnet, a line typed and sent) connect to port {text_port}"
             if text_port else "")
    return protocol.ProtocolError(protocol.BAD_JSON, "This port speaks Natter's protocol: JSON objects, one a line, "
                                                     "each starting with '{'" + where + ".")


class TokenBucket:
    """Flood control: ``burst`` frames at once, then ``rate`` per second.

    :meth:`take` returns 0 when a frame may go now, else the seconds to wait
    (the token is taken either way: the caller waits, it does not drop).
    """

    __slots__ = ("rate", "burst", "tokens", "stamp")

    def __init__(self, rate: float, burst: float):
        self.rate = rate
        self.burst = burst
        self.tokens = burst
        self.stamp = time.monotonic()

    def take(self, now: float) -> float:
        self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
        self.stamp = now
        self.tokens -= 1
        return 0.0 if self.tokens >= 0 else -self.tokens / self.rate


# Frames that cost a token: everything that reaches other people.
_METERED = (protocol.Say, protocol.SendDirect, protocol.ChangeNick, protocol.Join, protocol.Part,
            protocol.SetTopic, protocol.Mod, protocol.SetMode, protocol.Release, protocol.Delete, protocol.Edit,
            protocol.Audit, protocol.Upload)
# Reads of the history have a bucket of their own, more generous: scrolling
# back through pages must stay quick. Slowed, like messages, never dropped.
_READS = (protocol.HistoryRequest, protocol.ListRooms)
READ_RATE_FACTOR = 10      # x --rate-limit, and
READ_BURST = 40            # pages at once (or --rate-burst, if larger)


class JsonLines:
    """The encoder of the JSON-lines door: a frame's bytes are its JSON line.
    A v1 client (a hello without "v":2) knows no rooms: it is not sent the
    frames of protocol 2 that a room it shares with v2 clients broadcasts
    (``topic``)."""

    __slots__ = ("version", "_skip")
    per_client = False      # one encoder serves every JSON client (fanout shares their blobs)

    def __init__(self, version: int):
        self.version = version
        self._skip = frozenset() if version >= 2 else frozenset({"topic"})

    def lines_only(self, kinds) -> bool:
        """True when frames of these types are sent as their JSON lines, as they are."""
        return not self._skip or self._skip.isdisjoint(kinds)

    def encode(self, out) -> bytes:
        return b"" if out.kind in self._skip else out.line


JSONL = JsonLines(2)
JSONL_V1 = JsonLines(1)

STATE_NEW, STATE_WELCOMED, STATE_CLOSING = "new", "welcomed", "closing"


class Connection:
    """State of one client. Fields marked (hub) are the hub thread's alone."""

    # Slots: a server holds thousands of these (about 2 KiB less each).
    __slots__ = ("sock", "addr", "peer", "ip", "hub", "tls", "outbox", "state", "nick", "key", "session", "v",
                 "fp", "admin", "rooms", "reads", "cursor", "held", "welcome", "encoder", "errors", "write_registered",
                 "close_deadline", "reader_done", "last_progress", "taken_seen", "behind_since", "owed_end",
                 "polled", "counted", "pinged", "rate_noticed", "connected_at", "last_seen", "stopping",
                 "_max_line", "_check_password", "_check_admin", "_auth_delay", "_auth_failures", "_auth_open_at",
                 "_items", "_size", "_bucket",
                 "_reads_bucket", "thread", "__weakref__")

    def __init__(self, sock: socket.socket, addr, hub, config, tls_context=None, check_password=None,
                 check_admin=None):
        self.sock = sock
        self.addr = addr
        self.peer = _format_addr(addr)
        self.ip = addr[0] if isinstance(addr, tuple) else str(addr)
        self.hub = hub
        self.tls = TlsChannel(tls_context) if tls_context is not None else None
        self.outbox = Outbox(self.tls)  # (hub)
        self.state = STATE_NEW          # (hub)
        self.nick: str | None = None    # (hub)
        self.key: str | None = None     # (hub) nick_key(nick)
        self.session: int | None = None  # (hub) resume session id
        self.fp: str | None = None      # (hub) its identity's fingerprint (server.core.identity)
        self.admin = False              # (hub) an admin: owner in every room
        # (hub) the core's: see server.core.chat
        self.v = 1                      # its protocol version, from its hello
        self.rooms: dict = {}           # room key -> Room, in the order it joined
        self.reads: dict = {}           # room key -> its session's read marker
        self.cursor = None              # its catch-up (server.core.catchup.Cursor), while it has one
        self.held = None                # frames waiting for its welcome, from its hello until then
        self.welcome = None             # what its welcome needs, from its hello until then
        self.encoder = JSONL            # how frames become its bytes (speak)
        self.errors = 0                 # (hub) protocol errors so far
        self.write_registered = False   # (hub) in the hub's selector for writing
        self.close_deadline = 0.0       # (hub) when closing, force it by then
        self.reader_done = False        # (hub) the reader has posted Gone
        # (hub) delivery: see "Slow readers" in server.hub
        self.last_progress = 0.0        # when its socket last took bytes, or its output began to wait
        self.taken_seen = 0             # outbox.taken at that time
        self.behind_since = None        # when more than max_queue began to wait for it
        self.owed_end = 0               # outbox.taken once its welcome and catch-up have gone (not held against it)
        self.polled = False             # watched by polling, the selector being full (Windows)
        self.counted = 0                # outbox.size as Delivery last counted it
        self.pinged = False             # (hub) an idle ping is outstanding
        self.rate_noticed = -1e9        # (hub) when it was last told rate_limited
        self.connected_at = time.monotonic()
        self.last_seen = self.connected_at   # set by the reader; a float store is atomic
        self.stopping = threading.Event()    # set by the hub: the reader must end
        self._max_line = config.max_line
        self._check_password = check_password   # server.auth.PasswordCheck, or None
        self._auth_delay = (config.auth_delay, config.auth_delay_max)
        self._check_admin = check_admin         # the admin password's PasswordCheck, or None
        self._auth_failures = 0
        self._auth_open_at = 0.0                # (reader) monotonic time before which a hello is not checked
        self._items: list = []              # (reader) read, not yet posted
        self._size = 0                      # (reader) bytes of the frames in _items
        self._bucket = self._reads_bucket = None
        if config.rate_limit > 0:
            self._bucket = TokenBucket(config.rate_limit, config.rate_burst)
            self._reads_bucket = TokenBucket(config.rate_limit * READ_RATE_FACTOR, max(READ_BURST, config.rate_burst))
        self.thread = threading.Thread(target=self.read_loop, name=f"reader-{self.peer}", daemon=True)

    def __repr__(self) -> str:
        return f"<Connection {self.peer} {self.nick or '-'} {self.state}>"

    @property
    def label(self) -> str:
        return f"{self.nick} ({self.peer})" if self.nick else self.peer

    def speak(self, version: int) -> None:
        """(hub) The client's hello said its protocol: frames are encoded for it."""
        self.encoder = JSONL if version >= 2 else JSONL_V1

    # -- reader thread ----------------------------------------------------

    def read_loop(self) -> None:
        """Reader thread: runs the door's loop (:meth:`_read`) and posts
        ``Gone`` with why it ended, unless it handed the socket over (a
        transfer). A failure is logged with the peer, never lost."""
        reason = "connection closed"
        try:
            reason = self._read()
        except ssl.SSLError as e:
            reason = "TLS error"
            log.info("%s: TLS failed: %s", self.peer, e.reason or e)
        except OSError as e:
            reason = "connection lost" if not self.stopping.is_set() else "connection closed"
            log.debug("%s: read failed: %s", self.peer, e)
        except Exception:
            reason = "server error"
            log.exception("%s: reader failed", self.peer)
        finally:
            if reason is not HANDED:
                self.hub.post(self, [Gone(reason)])

    def _chunks(self, port: str):
        """(reader) The bytes as they arrive, until the peer closes or the
        connection is stopping. A TLS hello on a plain port (``port`` names
        it in the log) ends it at once."""
        sock = self.sock
        first = True
        while not self.stopping.is_set():
            try:
                # A quiet client's reader waits holding IDLE_RECV bytes, not
                # RECV_SIZE; one wake-up per message (the GIL taken once).
                data = sock.recv(IDLE_RECV)
                if len(data) == IDLE_RECV:      # more may wait: take it without blocking
                    try:
                        data += sock.recv(RECV_SIZE, DONTWAIT)
                    except (BlockingIOError, InterruptedError):
                        pass
            except (BlockingIOError, InterruptedError):
                wait_readable(sock)             # a non-blocking socket (Windows)
                continue
            if not data:
                return
            self.last_seen = time.monotonic()
            if first:
                first = False
                if self.tls is None and data[:2] == b"\x16\x03":
                    log.info("%s: a TLS client on %s; closing", self.peer, port)
                    return
            yield data

    def _read(self):
        """(reader) recv -> frames -> events posted to the hub; returns why
        it ended (HANDED: the socket is a transfer's now)."""
        decoder = protocol.LineDecoder(self._max_line)
        first = True
        sniffing = self.tls is None   # until the first byte that is not white space
        skipping = False              # the rest of a first line that was not JSON
        discard = False
        first_line = bytearray()      # the first line so far: a put or get makes it a transfer
        items = self._items
        for data in self._chunks("a plain port"):
            if first:
                first = False
                if self.tls is not None and data.lstrip()[:1] == b"{":
                    # Tell it why in plain JSON; the hub hangs up.
                    self.hub.post(self, [PlainOnTls()])
                    discard = True
            if discard:
                continue
            if sniffing:
                head = data.lstrip(b" \t\r\n")[:1]
                if head:
                    sniffing = False
                    if head != b"{":
                        # The tutorial's client or nc: it may never send
                        # a newline, so it is told now, not at a line's
                        # end. That first line is skipped (answered).
                        items.append(not_json(self.hub.text_port))
                        skipping = True
            if skipping:
                end = data.find(b"\n")
                if end < 0:
                    self._post()
                    continue
                data, skipping = data[end + 1:], False
            if self.tls is not None:
                data, kick = self.tls.receive(data)
                if kick:
                    items.append(TlsKick())
            if first_line is not None:
                first_line += data
                nl = first_line.find(b"\n")
                if nl < 0 and len(first_line) < self._max_line:
                    self._post()
                    continue
                data, first_line = bytes(first_line), None
                event = _transfer_line(data[:nl]) if nl >= 0 else None
                if event is not None:
                    self._post()
                    self.hub.post(self, [Handoff(event, data[nl + 1:])])
                    return HANDED     # not one more recv
            for line in decoder.feed(data):
                if type(line) is not bytes:
                    items.append(line)
                    continue
                self._size += len(line)
                try:
                    event = protocol.parse_client(protocol.decode_frame(line))
                except protocol.ProtocolError as e:
                    items.append(e)
                    continue
                if type(event) is protocol.Hello:
                    event = self._passwords(event)
                elif self._bucket is not None and isinstance(event, _METERED):
                    self._throttle(self._bucket)
                    if self.stopping.is_set():
                        break
                elif self._bucket is not None and isinstance(event, _READS):
                    self._throttle(self._reads_bucket)
                    if self.stopping.is_set():
                        break
                items.append(event)
            self._post()
        return "connection closed"

    def _post(self) -> None:
        """Hand the hub what was read so far. It may wait while the hub is
        far behind (TCP pushes back on this client meanwhile)."""
        items = self._items
        if items:
            self.hub.post(self, list(items), self._size)
            items.clear()
            self._size = 0
            # Its pongs may wait unread behind what was held back: it is alive.
            self.last_seen = time.monotonic()

    def _passwords(self, hello):
        """(reader) Check a hello's room and admin passwords (scrypt: here, not
        on the hub). After a wrong one, the next hello is checked only once a
        delay has passed (1 s, 2 s, 4 s ... up to ``auth_delay_max``); a hello
        before then is answered ``rate_limited`` and costs no hash, so a burst
        of guesses in one write pays for one. Returns the event to post."""
        if self._check_password is None and hello.admin_password is None:
            return hello
        now = time.monotonic()
        if now < self._auth_open_at:
            wait = self._auth_open_at - now
            return protocol.ProtocolError(protocol.RATE_LIMITED, f"A password was wrong: wait {wait:.1f} s before "
                                                                 "trying again.")
        if self._check_password is not None and not self._check_password(hello.password):
            return self._failed("room")
        if hello.admin_password is not None:
            if self._check_admin is None or not self._check_admin(hello.admin_password):
                return self._failed("admin")
            return dataclasses.replace(hello, admin=True, admin_password=None)
        return hello

    def _failed(self, what: str) -> AuthFailed:
        base, cap = self._auth_delay
        self._auth_failures += 1
        self._auth_open_at = time.monotonic() + min(cap, base * 2 ** (self._auth_failures - 1))
        return AuthFailed(what)

    def _throttle(self, bucket: TokenBucket) -> None:
        """Wait for a token; first hand the hub what was read before."""
        now = time.monotonic()
        delay = bucket.take(now)
        if delay <= 0:
            return
        self._post()
        self.hub.post(self, [Throttled(delay, bucket is self._reads_bucket)])
        self.stopping.wait(delay)
        # Its pongs wait unread behind what we are slowing down: it is alive.
        self.last_seen = time.monotonic()


def _transfer_line(line: bytes):
    """The Put or Get a first line holds, or None (it is a chat frame, or an
    error the decoder will report as usual)."""
    if b'"put"' not in line and b'"get"' not in line:
        return None
    try:
        frame = protocol.decode_frame(line.strip())
        if frame.get("type") not in protocol.TRANSFER_TYPES:
            return None
        return protocol.parse_client(frame)
    except protocol.ProtocolError:
        return None


def wait_readable(sock: socket.socket, timeout: float | None = None) -> bool:
    """Block until ``sock`` has input, an end or an error (True) or the
    timeout passes (False). poll(), not select(): a server with thousands
    of connections has descriptors past select()'s FD_SETSIZE."""
    if _HAVE_POLL:
        poller = select.poll()
        poller.register(sock, select.POLLIN | select.POLLPRI)
        return bool(poller.poll(None if timeout is None else timeout * 1000))
    readable, _, broken = select.select([sock], [], [sock], timeout)
    return bool(readable or broken)


_HAVE_POLL = hasattr(select, "poll")


def _format_addr(addr) -> str:
    if isinstance(addr, tuple) and len(addr) >= 2:
        host = addr[0]
        return f"[{host}]:{addr[1]}" if ":" in host else f"{host}:{addr[1]}"
    return str(addr) or "local"
