"""What the network layer tells the UI: the contract between
:mod:`chatgui.net.client` (producer, its own threads) and the UI (consumer, the
Tk thread or the terminal loop).

The network client puts these on a ``queue.Queue``. Events that come from
the server are passed through as the protocol's own event classes
(:class:`server.protocol.Message`, ``Direct``, ``Joined``, ``Left``,
``Renamed``, ``Notice``, ``ServerError``), already de-duplicated: a message
id is delivered at most once per :class:`~chatgui.net.client.ChatClient`, however
many times the connection is resumed. The rest are defined here.

Order on the queue: ``Connecting`` -> (``ConnectFailed`` | ``Connected``
-> ``Backlog`` -> live events ...) -> ``Disconnected`` -> ``Connecting`` ...
and finally ``Closed`` exactly once, after which nothing more comes.
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
    users: tuple            # nicks online, including ours
    resumed: bool           # True when this is a reconnect of the same session
    fingerprint: str | None = None   # TLS certificate fingerprint, when TLS is on
    first_use: bool = False          # TLS, with trust_first_use: this server was never
                                     # met before; its fingerprint is now pinned (show it)


@dataclass(frozen=True)
class Backlog:
    """Messages from the welcome that this client had not shown yet,
    oldest first (Message and Direct), and how many older ones the server
    could not replay (``missed``)."""
    messages: tuple
    missed: int = 0


@dataclass(frozen=True)
class Acked:
    """The server accepted something we sent (a message, dm or rename);
    ``id`` is the message id, or None for a rename."""
    ref: str
    id: int | None


@dataclass(frozen=True)
class Refused:
    """The server refused something we sent; it will not be retried."""
    ref: str
    code: str
    message: str


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


@dataclass(frozen=True)
class Closed:
    """The client has stopped; its threads have ended or are ending."""
    reason: str = ""
