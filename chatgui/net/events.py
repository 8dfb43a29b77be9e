"""What the network layer tells the UI: the contract between
:mod:`chatgui.net.client` (producer, its own threads) and the UI (consumer, the
Tk thread or the terminal loop).

The network client puts these on a ``queue.Queue``. Events that come from
the server are passed through as the protocol's own event classes
(:class:`server.protocol.Message`, ``Direct``, ``Joined``, ``Left``,
``Renamed``, ``Notice``, ``ServerError``, and for rooms ``Topic``,
``HistoryPage``, ``RoomList``), messages and topic changes already
de-duplicated: an id is delivered at most once per
:class:`~chatgui.net.client.ChatClient`, however many times the connection
is resumed (a ``HistoryPage`` is an answer, delivered as it came). Every
message and topic carries its room (``lobby`` from a server without rooms).
The rest are defined here.

Order on the queue: ``Connecting`` -> (``ConnectFailed`` | ``Connected``
-> catch-up -> ``CaughtUp`` -> live events ...) -> ``Disconnected`` ->
``Connecting`` ... and finally ``Closed`` exactly once, after which nothing
more comes. The catch-up:

- from a server with rooms (``Connected.protocol`` 2): one ``RoomState``
  per room this connection is in, then a ``Backlog`` per replay frame that
  held anything not shown yet (messages of several rooms, oldest first),
  then ``Acked`` for our items that the replay shows the server got;
- from a server without rooms (protocol 1): one ``Backlog`` (the welcome's
  history, possibly empty), then those ``Acked``.

``CaughtUp`` ends it in both cases; only then does the client send again
what was still unacknowledged, so nothing is sent twice.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Connecting:
    host: str
    port: int
    attempt: int            # 1 for the first try after start or a drop


@dataclass(frozen=True)
class Connected:
    """The server welcomed us (first time or after a reconnect)."""
    host: str
    port: int
    nick: str               # as the server spelled it
    users: tuple            # nicks online, including ours (every room's, on a server with rooms)
    resumed: bool           # True when this is a reconnect of the same session
    fingerprint: str | None = None   # TLS certificate fingerprint, when TLS is on
    first_use: bool = False          # TLS, with trust_first_use: this server was never
                                     # met before; its fingerprint is now pinned (show it)
    protocol: int = 1       # 2: the server has rooms (join, part, history...); 1: only the lobby
    rooms: tuple = ()       # protocol 2: the rooms this connection is in (RoomState follows for each)
    admin: bool = False     # issue 11: our identity is a server admin (owner in every room)


@dataclass(frozen=True)
class RoomState:
    """A room we are in: after a welcome (one per room, no ref), or the
    answer to our :meth:`~chatgui.net.client.ChatClient.join` (its ref in
    ``info.ref``; ``Acked`` follows). ``powers``: the frame's modes and roles (issue 11;
    all defaults from an older server)."""
    info: object            # server.protocol.RoomInfo
    powers: object = None   # chatgui.net.moderation.RoomPowersInfo


@dataclass(frozen=True)
class CaughtUp:
    """The catch-up after a welcome is over: everything up to ``last_id``
    that concerns us was delivered; live events follow."""
    last_id: int


@dataclass(frozen=True)
class Backlog:
    """Messages of the catch-up that this client had not shown yet, oldest
    first (Message and Direct; Topic changes too from a server with rooms),
    and how many older ones the server could not replay (``missed``, older
    servers only)."""
    messages: tuple
    missed: int = 0


@dataclass(frozen=True)
class Acked:
    """The server accepted something we sent; ``id`` is the message's (or
    topic change's) id, None for a rename, join, part, history or rooms
    request (whose answer, carrying the same ref, came just before)."""
    ref: str
    id: int | None


@dataclass(frozen=True)
class Refused:
    """The server refused something we sent; it will not be retried.
    ``until`` (wall clock) comes with ``muted`` and ``banned``,
    ``retry_after`` (seconds) with ``slow_mode``, when the server said."""
    ref: str
    code: str
    message: str
    until: float | None = None
    retry_after: float | None = None


@dataclass(frozen=True)
class Disconnected:
    reason: str             # for a person: "the server closed the connection"
    retry_in: float | None  # seconds until the next try; None: not retrying


@dataclass(frozen=True)
class ConnectFailed:
    """A connection attempt failed. ``kind`` is one of: refused, timeout,
    unreachable, dns, nick_taken, bad_nick, auth_failed, server_full,
    tls, tls_changed, tls_new, protocol. ``message`` says why in words a
    person understands and what to do. ``retry_in`` is None when the
    client gave up (the UI asks the user).

    ``tls_changed``: the server's certificate is not the one pinned (or
    not the one the user said to trust); nothing was sent to it.
    ``fingerprint`` is the certificate it showed, ``pinned`` the one
    expected. ``tls_new``: a server met for the first time (``pinned`` is
    None); nothing was sent to it either. In both cases, to connect once
    the user compared ``fingerprint`` with the one the server prints,
    make a new client with ``accept_fingerprint=fingerprint`` (see
    :mod:`chatgui.net.client`)."""
    kind: str
    message: str
    retry_in: float | None
    fingerprint: str | None = None   # tls_changed, tls_new: the certificate the server showed
    pinned: str | None = None        # tls_changed: the one we expected
    host: str | None = None          # the address of the (last) attempt that failed: with several
    port: int | None = None          # addresses, a new client's accept_at for a tls_* stop


@dataclass(frozen=True)
class Closed:
    """The client has stopped; its threads have ended or are ending."""
    reason: str = ""


# -- file transfers (issue 12): put on the same queue by
# chatgui.net.transfers.Transfers, from its transfer threads. A transfer
# gives TransferProgress now and then, and ends with exactly one
# TransferDone or TransferFailed.

@dataclass(frozen=True)
class TransferProgress:
    """``done`` of ``total`` bytes; ``speed`` bytes/s over the last seconds
    (None until measured); ``left`` seconds to go (None: unknown).
    ``phase``: "checking" (reading the file for its checksum), "waiting"
    (for the server or the connection), "sending", "receiving"."""
    tid: str
    done: int
    total: int
    speed: float | None
    left: float | None
    phase: str


@dataclass(frozen=True)
class TransferDone:
    """``path``: where a download now is (None for an upload); ``file``:
    the server's id of the file."""
    tid: str
    file: object
    path: str | None = None


@dataclass(frozen=True)
class TransferFailed:
    """``message`` says why, for a person; ``cancelled``: the user stopped it;
    ``code``: the server's refusal code when it refused (``no_such_file``:
    it no longer has the file), else empty."""
    tid: str
    message: str
    cancelled: bool = False
    code: str = ""
