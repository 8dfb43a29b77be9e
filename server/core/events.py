"""Core events that only the doors for other protocols post (IRC, plain
text), and the batches a shared store's reader posts (:class:`Logged`): the JSON door's events are the protocol's own frames
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
    which lets the reader take the next batch."""
    events: list
    applied: threading.Event = field(default_factory=threading.Event)
