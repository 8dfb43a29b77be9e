"""What the user sent that the server has not acknowledged yet
(:class:`Outbox`, the offline queue that survives disconnects), and which
message ids were delivered already (:class:`SeenIds`, so a resumed
connection shows nothing twice). Pure: no sockets, no threads, no lock;
:class:`chatgui.net.client.ChatClient` uses them under its own lock.
"""
from __future__ import annotations

import collections
from dataclasses import dataclass

from server import protocol


@dataclass
class Pending:
    """One thing the user sent, waiting for the server's acknowledgement."""
    ref: str
    kind: str          # "say" | "dm" | "nick" | "join" | "part" | "topic" | "history" | "rooms"
    frame: dict        # the wire frame, ``ref`` included
    sent: bool = False  # written on the current connection
    not_before: float = 0.0   # (monotonic) refused as ``unavailable``: written again from then on
    retries: int = 0          # how often it was refused as ``unavailable``

    @property
    def data(self) -> bytes:
        return protocol.encode(self.frame)


RETRY_FIRST = 0.5    # seconds before an item refused as unavailable is written again
RETRY_MAX = 8.0      # ... doubling up to this


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

    def get(self, ref) -> Pending | None:
        return self._items.get(ref)

    def add(self, ref: str, kind: str, frame: dict) -> Pending:
        if len(self._items) >= self.limit:
            raise QueueFull(f"{self.limit} messages are already waiting to be sent")
        if ref in self._items:
            raise ValueError(f"duplicate ref {ref!r}")
        item = Pending(ref, kind, frame)
        self._items[ref] = item
        return item

    def take_unsent(self, now: float = float("inf")) -> list:
        """The items not yet written on this connection, in order, up to the
        first one still waiting (``not_before`` after ``now``): order is
        kept; marks them sent."""
        out = []
        for item in self._items.values():
            if item.sent:
                continue
            if item.not_before > now:
                break
            out.append(item)
        for item in out:
            item.sent = True
        return out

    def has_unsent(self) -> bool:
        return any(not item.sent for item in self._items.values())

    def retry_later(self, ref, now: float) -> Pending | None:
        """The server could not store this item (``unavailable``): it stays,
        to be written again after RETRY_FIRST seconds from ``now``, doubling
        with each refusal up to RETRY_MAX. None if it is not ours."""
        item = self._items.get(ref)
        if item is not None:
            item.sent = False
            item.not_before = now + min(RETRY_MAX, RETRY_FIRST * 2 ** item.retries)
            item.retries += 1
        return item

    def next_retry(self) -> float | None:
        """When the first waiting item is due (monotonic), or None."""
        for item in self._items.values():
            if not item.sent:
                return item.not_before if item.not_before else None
        return None

    def ack(self, ref) -> Pending | None:
        """Forget the item with this ref; returns it, or None if it is not ours."""
        if ref is None:
            return None
        return self._items.pop(ref, None)

    def take(self, pred) -> list:
        """Remove the items for which ``pred(item)`` is true; returns them, in order."""
        out = [item for item in self._items.values() if pred(item)]
        for item in out:
            del self._items[item.ref]
        return out

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
