"""The network client's decisions, as small pure classes (no sockets, no threads).

- :class:`Backoff`: how long to wait before the next connection attempt
  (exponential, capped, full jitter).
- :class:`Outbox`: what the user sent that the server has not acknowledged
  yet, in order; it survives disconnects (the offline queue).
- :class:`SeenIds`: which message ids were already delivered, so a resumed
  connection shows nothing twice; its ``last`` is the ``since`` to resume from.
- :func:`classify_os_error`, :func:`classify_refusal` and
  :func:`classify_tls_error`: a failed attempt in words a person
  understands; :func:`tls_changed_message` is the warning for a server
  whose certificate is not the pinned one, :func:`tls_new_message` the
  question for one met for the first time.

Thread: none of these lock. :class:`chatgui.net.ChatClient` uses them under
its own lock; tests use them directly.
"""
from __future__ import annotations

import collections
import errno
import random
import socket
import ssl
from dataclasses import dataclass

from server import protocol


class Backoff:
    """Exponential backoff with full jitter (AWS "Exponential Backoff And Jitter").

    The n-th delay (n from 0) is uniform in ``[0, window(n)]`` where
    ``window(0) = first`` (the first retry is quick) and
    ``window(n) = min(cap, base * 2**n)`` after. Full jitter spreads a room
    of clients that lost the same server over the whole window, so a
    restarted server is not hit by all of them at once.
    """

    def __init__(self, first: float = 0.5, base: float = 1.0, cap: float = 30.0, rng=None):
        if not (0 <= first and 0 < base and base <= cap):
            raise ValueError("need 0 <= first, 0 < base <= cap")
        self.first = first
        self.base = base
        self.cap = cap
        self.attempts = 0
        self._random = rng or random.random   # () -> float in [0, 1)

    def window(self, n: int) -> float:
        if n <= 0:
            return self.first
        return min(self.cap, self.base * 2.0 ** min(n, 64))

    def next_delay(self) -> float:
        """The delay before the next attempt; each call counts one attempt."""
        w = self.window(self.attempts)
        self.attempts += 1
        return self._random() * w

    def reset(self) -> None:
        """A connection held: the next failure starts from a quick retry."""
        self.attempts = 0


@dataclass
class Pending:
    """One thing the user sent, waiting for the server's acknowledgement."""
    ref: str
    kind: str          # "say" | "dm" | "nick"
    frame: dict        # the wire frame, ``ref`` included
    sent: bool = False  # written on the current connection

    @property
    def data(self) -> bytes:
        return protocol.encode(self.frame)


class QueueFull(Exception):
    """The offline queue holds its limit of unacknowledged items."""


class Outbox:
    """Unacknowledged outgoing items in the order the user made them.

    An item stays until the server acknowledges it (its ``ref`` comes back
    on our copy of the message, live or in a resume replay) or refuses it.
    On every new connection :meth:`rewind` marks all of them unsent; the
    caller first removes those the replay acknowledged, so each is
    delivered exactly once.
    """

    def __init__(self, limit: int = 1000):
        self.limit = limit
        self._items: dict[str, Pending] = {}   # insertion-ordered

    def __len__(self) -> int:
        return len(self._items)

    def __contains__(self, ref) -> bool:
        return ref in self._items

    def refs(self) -> list:
        return list(self._items)

    def add(self, ref: str, kind: str, frame: dict) -> Pending:
        if len(self._items) >= self.limit:
            raise QueueFull(f"{self.limit} messages are already waiting to be sent")
        if ref in self._items:
            raise ValueError(f"duplicate ref {ref!r}")
        item = Pending(ref, kind, frame)
        self._items[ref] = item
        return item

    def take_unsent(self) -> list:
        """The items not yet written on this connection, in order; marks them sent."""
        out = [item for item in self._items.values() if not item.sent]
        for item in out:
            item.sent = True
        return out

    def has_unsent(self) -> bool:
        return any(not item.sent for item in self._items.values())

    def ack(self, ref) -> Pending | None:
        """Forget the item with this ref; returns it, or None if it is not ours."""
        if ref is None:
            return None
        return self._items.pop(ref, None)

    def rewind(self) -> None:
        """A new connection: everything still here must be written again."""
        for item in self._items.values():
            item.sent = False

    def expected_nick(self, current: str) -> str:
        """The nick we will have once every pending rename is applied."""
        nick = current
        for item in self._items.values():
            if item.kind == "nick":
                nick = item.frame["nick"]
        return nick

    def drop_noop_renames(self, current: str) -> list:
        """Remove renames that would not change the nick; returns their refs.

        The server ignores a rename to the nick one already has and sends
        no acknowledgement, so such an item would wait forever.
        """
        nick = current
        dropped = []
        for item in list(self._items.values()):
            if item.kind != "nick":
                continue
            if item.frame["nick"] == nick:
                del self._items[item.ref]
                dropped.append(item.ref)
            else:
                nick = item.frame["nick"]
        return dropped


class SeenIds:
    """Message ids already delivered, bounded in memory.

    ``last`` is the highest id known to be covered: the ``since`` a resume
    asks from. Ids that fell out of the window (``keep`` most recent) count
    as seen when they are at or below ``floor``.
    """

    def __init__(self, keep: int = 20_000):
        self.keep = keep
        self.last = 0
        self.floor = 0
        self._set: set = set()
        self._order: collections.deque = collections.deque()

    @property
    def since(self) -> int | None:
        return self.last or None

    def add(self, msg_id: int) -> bool:
        """Record an id; True when it is new (deliver it), False for a repeat."""
        if msg_id <= self.floor or msg_id in self._set:
            return False
        self._set.add(msg_id)
        self._order.append(msg_id)
        if len(self._order) > self.keep:
            old = self._order.popleft()
            self._set.discard(old)
            self.floor = max(self.floor, old)
        if msg_id > self.last:
            self.last = msg_id
        return True

    def advance(self, last_id: int) -> None:
        """The server said everything up to ``last_id`` was offered to us."""
        if last_id > self.last:
            self.last = last_id

    def reset(self) -> None:
        """The server's history was replaced (ids went backwards): start over."""
        self.__init__(self.keep)


# --------------------------------------------------------------------------
# Failures in words a person understands

# Kinds after which retrying cannot help: the user must change something.
FINAL_KINDS = frozenset({"auth_failed", "bad_nick", "tls", "tls_changed", "tls_new"})


def _where(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def classify_os_error(exc: BaseException, host: str, port: int, timeout: float) -> tuple[str, str]:
    """A failed connect -> (kind, message): refused, timeout, dns, unreachable."""
    where = _where(host, port)
    if isinstance(exc, socket.gaierror):
        return "dns", (f"Cannot find a computer called {host!r}: check the spelling, "
                       "or use its IP address (like 192.168.1.20).")
    if isinstance(exc, ConnectionRefusedError) or getattr(exc, "errno", None) == errno.ECONNREFUSED:
        return "refused", (f"Nothing accepted the connection at {where}. Is the server running, "
                           "on this port? If it runs on another computer, it may listen on "
                           "localhost only: start it with --host 0.0.0.0.")
    if isinstance(exc, (TimeoutError, socket.timeout)) or getattr(exc, "errno", None) == errno.ETIMEDOUT:
        return "timeout", (f"No answer from {where} within {timeout:g} s: check the address; "
                           f"a firewall may be blocking port {port}.")
    if getattr(exc, "errno", None) in (errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ENETDOWN,
                                       errno.EHOSTDOWN, errno.EADDRNOTAVAIL):
        return "unreachable", (f"Cannot reach {host}: {exc.strerror or exc}. Check that this "
                               "computer is on the network, and the address.")
    reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return "unreachable", f"Cannot connect to {where}: {reason}."


def classify_refusal(code: str, message: str, nick: str, has_password: bool) -> tuple[str, str]:
    """The server's error before its welcome -> (kind, message)."""
    if code == protocol.NICK_TAKEN:
        return "nick_taken", f"Someone in the room already uses the nick {nick!r}: pick another."
    if code == protocol.BAD_NICK:
        return "bad_nick", (f"The server does not accept the nick {nick!r}: {message.rstrip('.')}. "
                            "Use letters, digits, '_' and '-', up to 32 characters.")
    if code == protocol.AUTH_FAILED:
        if has_password:
            return "auth_failed", "Wrong room password: check it with whoever runs the room."
        return "auth_failed", "This room needs a password: ask whoever runs it."
    if code == protocol.SERVER_FULL:
        return "server_full", "The room is full; try again later."
    if code == protocol.TOO_MANY_CONNECTIONS:
        return "server_full", f"Too many connections from your address: {message}"
    if code == getattr(protocol, "TLS_REQUIRED", "tls_required"):
        return "tls", ("This server requires encryption: turn on TLS (tick the TLS box, "
                       "or add --tls in the terminal) and connect again.")
    if code == protocol.TIMEOUT:
        return "timeout", f"The server gave up waiting for us: {message}"
    return "protocol", f"The server refused the connection ({code}): {message}"


def classify_tls_error(exc: BaseException, first_bytes: bytes, host: str, port: int) -> tuple[str, str]:
    """A failed TLS handshake -> ("tls", message).

    ``first_bytes`` is what the server sent first, unencrypted: a Natter
    server without TLS says nothing and hangs up on a TLS hello, so an end
    of stream (or a JSON line) means "this server does not use encryption".
    """
    where = _where(host, port)
    if first_bytes.lstrip()[:1] == b"{" or (
            not first_bytes and isinstance(exc, (ssl.SSLEOFError, ConnectionResetError,
                                                 ConnectionAbortedError, BrokenPipeError))):
        return "tls", (f"The server at {where} does not use encryption: it hung up on the TLS "
                       "handshake. Turn TLS off (untick the TLS box, or leave out --tls) to "
                       "connect to it, on a network you trust.")
    reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or str(exc) \
        or type(exc).__name__
    return "tls", (f"The encryption (TLS) handshake with {where} failed ({reason}). Is that a "
                   "Natter server started with --tls?")


def tls_changed_message(host: str, port: int, pinned: str, presented: str, given: bool = False) -> str:
    """The warning for a certificate that is not the expected one.

    ``given``: the expected fingerprint is the one the user said to trust
    (not one pinned on an earlier connection).
    """
    where = _where(host, port)
    if given:
        return (f"Not connected: the certificate of {where} is not the one you said to trust. "
                f"You gave {pinned}, the server shows {presented}. Nothing was sent to it. "
                "Check the fingerprint with whoever runs the server.")
    return (f"Warning: the certificate of {where} has changed since you last connected. "
            f"It was {pinned} and is now {presented}. Someone may be intercepting the "
            "connection, or the server got a new certificate. Not connected; nothing was sent. "
            "Ask whoever runs the server to read out the fingerprint it shows at start, and "
            "trust the new certificate only if it is the same.")


def tls_new_message(host: str, port: int, presented: str) -> str:
    """The question for a server whose certificate was never seen here:
    nothing is sent to it until the person has compared the fingerprint."""
    return (f"First encrypted connection to {_where(host, port)}: nothing was sent to it yet. "
            f"Its certificate fingerprint is {presented}. Compare it with the fingerprint the "
            "server shows when it starts (ask whoever runs it to read it out), and trust it "
            "only if it is the same.")
