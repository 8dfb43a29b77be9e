"""Core events that only the doors for other protocols post (IRC, plain
text), and the batches a shared store's reader posts (:class:`Logged`, with
the other nodes' presence in it): the JSON door's events are the protocol's own frames
(:mod:`server.protocol.client_frames`). They carry what those doors need
from the core and the window's protocol does not say.

Thread: built on any thread, handled on the hub thread.
"""
from __future__ import annotations

import threading
from dataclasses import dataclass, field


@dataclass(frozen=True, slots=True)
class DoorHello:
    """A client of another door registers as ``nick``: a new session, in
    the rooms named by ``rooms`` (room names; IRC: none, since an IRC client
    is in no room until it joins one; plain text: lobby), nothing to catch
    up. ``identity`` is the (account, secret) the client presented (IRC's
    ``PASS nick:secret`` or SASL PLAIN): the secret is checked, binds the
    nick and carries the roles as a window's identity does. ``ref`` comes
    back on an error (``nick_taken``...)."""
    nick: str
    rooms: tuple = ()
    identity: tuple | None = None
    ref: str | None = None


@dataclass(frozen=True, slots=True)
class HistoryAt:
    """A history page by time (IRC's ``CHATHISTORY ... timestamp=``): the
    events of ``room`` (or of the private conversation ``with_``) from
    before ``before_ts`` (newest first paged, as ``before``) or from after
    ``after_ts`` (as ``after``); neither: the newest. Answered with the
    ``history`` frame a ``history`` request gets."""
    room: str | None = None
    with_: str | None = None
    before_ts: float | None = None
    after_ts: float | None = None
    limit: int = 50
    ref: str | None = None


@dataclass(slots=True)
class Logged:
    """Events a shared store's reader took from the deployment's log, in
    log order (posted by the store, not by a door). The hub delivers them to
    this node's clients (:mod:`server.core.feed`) and then sets ``applied``,
    which lets the reader take the next batch. ``presence``: what happened
    to the other nodes' clients meanwhile (:class:`Presence`,
    :class:`Members`, :class:`NodeGone`), and :class:`Revived` (this node
    taken for dead), in order, each delivered after the
    events with an id up to its ``at`` (:mod:`server.core.presence`)."""
    events: list
    presence: list = field(default_factory=list)
    applied: threading.Event = field(default_factory=threading.Event)


@dataclass(frozen=True, slots=True)
class Presence:
    """A presence frame (``joined``, ``left``, ``renamed``, as one server
    sends it) about a client of another node (``node``): ``rooms`` the keys
    of the rooms it is about; the client's ``session``, ``fp`` and
    ``admin`` (its roles); ``routed``: shown as the presence rules say (an
    announce room: to its ops only), else to the whole room (a kick's
    ``left``). ``at``: the log's newest id when it happened."""
    node: str
    at: int
    frame: dict
    rooms: tuple
    session: int | None
    fp: str | None
    admin: bool
    routed: bool = True


@dataclass(frozen=True, slots=True)
class Members:
    """Everyone in a room on the other live nodes, read at once (a node's
    start, or a reader that fell behind the presence stream): ``members``
    of (node, nick, session, fp, admin, room keys)."""
    at: int
    members: tuple


@dataclass(frozen=True, slots=True)
class Revived:
    """This node's own key had expired (Redis was away longer than its
    lifetime, or the node stood still): the other nodes took its clients for
    gone, so their presence is shared again."""
    at: int


@dataclass(frozen=True, slots=True)
class NodeGone:
    """Another node's key expired (it died without a word, or stopped): its
    clients left every room."""
    at: int
    node: str
