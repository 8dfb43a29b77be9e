"""The hub's inbox: what the readers posted and the hub has not taken yet.

Any thread posts a batch (one connection's events from one read); the hub
thread takes batches in the order they were posted. The inbox is capped in
bytes, not items: its frames' size plus ``ITEM_COST`` per event. A reader
that would go past ``MAX_INBOX_BYTES`` waits, and while it waits it does
not read, so TCP pushes back on its client: a flood (100 000 frames of
64 KiB with flood control off) costs the server 64 MiB at most, not 6 GB.

When the hub has nothing to do it sleeps in its selector; a post wakes it
with a byte on a socket pair the selector watches.
"""
from __future__ import annotations

import socket
import threading

MAX_INBOX_BYTES = 64 * 1024 * 1024   # readers wait while this much they posted is not yet taken
ITEM_COST = 256                      # bytes an event counts besides its frame (the objects)


class Inbox:
    def __init__(self, stats: dict):
        self._lock = threading.Condition(threading.Lock())
        self._batches: list = []      # (conn, items, cost), in the order posted
        self._bytes = 0               # their cost
        self._urgent = False          # a stop waits: take it even while the room is held
        self._sleeping = False        # the hub sleeps in its selector: wake it
        self._closed = False          # the hub has ended: nobody waits any more
        self.wake_r, self._wake_w = socket.socketpair()
        self.wake_r.setblocking(False)
        self._wake_w.setblocking(False)
        self.stats = stats
        stats["inbox_peak"] = 0

    @property
    def bytes(self) -> int:
        """The cost of what waits (any thread; a snapshot)."""
        return self._bytes

    # -- any thread -------------------------------------------------------

    def post(self, conn, items: list, nbytes: int, wait: bool, urgent: bool = False) -> None:
        """Add a batch; ``nbytes`` is the size of its frames. Waits while the
        inbox is full if ``wait`` (and the connection is not being stopped)."""
        cost = nbytes + ITEM_COST * len(items)
        with self._lock:
            if urgent:
                self._urgent = True
            elif wait:
                while self._bytes >= MAX_INBOX_BYTES and not self._closed and not conn.stopping.is_set():
                    self._lock.wait(0.5)
            self._batches.append((conn, items, cost))
            self._bytes += cost
            if self._bytes > self.stats["inbox_peak"]:
                self.stats["inbox_peak"] = self._bytes
            wake = self._sleeping
            self._sleeping = False
        if wake:
            try:
                self._wake_w.send(b"\0")
            except (BlockingIOError, OSError):
                pass  # a wake byte is already waiting, or the hub has ended

    # -- hub thread -------------------------------------------------------

    def take(self, budget: int, held: bool) -> list:
        """The batches for one pass: about ``budget`` bytes of them; none
        while ``held`` unless a stop waits. With none, the next post wakes
        the hub (unless held: then the hub polls)."""
        with self._lock:
            batches = self._batches
            if not batches or (held and not self._urgent):
                self._sleeping = not batches
                return []
            if self._urgent or self._bytes <= budget:
                taken, self._batches = batches, []
                self._bytes = 0
            else:
                n = cost = 0
                for batch in batches:
                    cost += batch[2]
                    n += 1
                    if cost >= budget:
                        break
                taken = batches[:n]
                del batches[:n]
                self._bytes -= cost
            self._urgent = False
            self._lock.notify_all()
            return taken

    def put_back(self, batches: list) -> None:
        """Batches taken but not applied: first in line for the next pass."""
        with self._lock:
            self._batches[0:0] = batches
            self._bytes += sum(b[2] for b in batches)
            if any(b[0] is None for b in batches):
                self._urgent = True

    def awake(self, woken: bool) -> None:
        """The hub is back from its selector (``woken``: by a post)."""
        with self._lock:
            self._sleeping = False
        if woken:
            try:
                while self.wake_r.recv(4096):
                    pass
            except (BlockingIOError, OSError):
                pass

    def finish(self) -> None:
        """The hub has ended: release every reader that waits."""
        with self._lock:
            self._closed = True
            self._lock.notify_all()

    def close(self) -> None:
        for sock in (self.wake_r, self._wake_w):
            sock.close()
