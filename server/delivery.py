"""Which clients the hub waits for, and which it drops: the slow-reader policy.

A client is judged by its progress, not by how much waits for it. A reader
that keeps up may fall megabytes behind in a burst (forty people posting
60 KB each at once, a resume replaying 8 MiB through a 16 KiB window); it
is never dropped for that. Instead, while it has more than ``max_queue``
bytes waiting (beyond its welcome) the room is *held*: the hub takes no new
frames from the readers, the readers' inbox fills and they stop reading, so
TCP pushes back on the senders. The room waits for one client at most
``HOLD_MAX`` seconds in one go, and only while it keeps up (its socket took
bytes within the last ``KEEPING_UP`` seconds).

A client is dropped as too slow when

- it has output waiting and its socket has taken nothing for
  ``--slow-timeout`` seconds (it stopped reading), or
- more than ``HARD_CAP_FACTOR x max_queue`` bytes wait for it beyond its
  welcome (it reads, but far slower than the room talks), or
- the memory waiting for all clients exceeds ``--max-total-queue``: the
  room is held, and the clients that are not keeping up go first, largest
  queue first; if that lasts ``HOLD_MAX`` seconds, the largest queues go
  whoever they are. Memory is every client's own bytes (welcomes, private
  frames, TLS ciphertext) plus the longest backlog of the room's shared
  blobs, which every member's queue holds a part of
  (:meth:`server.connection.Outbox.own_bytes`).

So the memory the server spends on delivery is bounded by the inbox cap
(:data:`server.hub.MAX_INBOX_BYTES`) plus ``--max-total-queue`` plus one
pass.

This class also keeps the writability watch. ``select()`` (the only
selector on Windows) takes at most 512 sockets; past ``SELECT_MAX`` the
connections waiting to be written are polled every ``POLL`` seconds
instead of watched.

Thread: the hub thread only. It reads ``Outbox.size`` and ``Outbox.taken``
after the writers are done with them.
"""
from __future__ import annotations

import selectors

KEEPING_UP = 1.0       # s: took a byte this recently = still reading (at most half the slow timeout)
HOLD_MAX = 5.0         # s: the longest the room waits for one client in one go
HARD_CAP_FACTOR = 16   # x max_queue waiting beyond the welcome: dropped even though it reads
SELECT_MAX = 500       # sockets a select()-based selector watches; more are polled
POLL = 0.02            # s between two tries of the polled sockets
SHED_EVERY = 0.1       # s between two counts of the memory waiting (and looks for whom to drop)


class Delivery:
    def __init__(self, config, selector: selectors.BaseSelector, stats: dict):
        self.soft = config.max_queue
        self.hard = config.max_queue * HARD_CAP_FACTOR
        self.budget = config.max_total_queue
        self.slow_timeout = config.slow_timeout
        self.keeping_up = min(KEEPING_UP, config.slow_timeout / 2)
        self.selector = selector
        self.select_cap = SELECT_MAX if isinstance(selector, selectors.SelectSelector) else None
        self.stats = stats
        stats.update(holds=0, queue_peak=0, queued_peak=0, polled_peak=0)
        self.watched: set = set()   # connections with output waiting
        self.polled: set = set()    # ... of which not in the selector
        self.behind: set = set()    # ... of which more than max_queue waits beyond the welcome
        self.registered = 0         # in the selector
        self.total = 0              # bytes waiting, all watched connections (as last counted)
        self.memory = 0             # what that costs, shared blobs counted once (<= total)
        self.held = False           # the hub takes no new frames
        self._over_since = None     # over the total budget since then
        self._shed_next = 0.0

    # -- the watch ---------------------------------------------------------

    def waiting(self, conn, now: float) -> str | None:
        """After a flush that left output: watch it, note any progress, and
        judge it. Returns why to drop it, or None."""
        box = conn.outbox
        if not conn.write_registered:
            self._watch(conn)
            conn.last_progress = now        # the clock starts when output begins to wait
            conn.taken_seen = box.taken
        elif box.taken != conn.taken_seen:
            conn.taken_seen = box.taken
            conn.last_progress = now
        return self.judge(conn, now)

    def judge(self, conn, now: float) -> str | None:
        """Its queue changed: count it; why to drop it (over the hard cap), or None."""
        box = conn.outbox
        self.total += box.size - conn.counted
        conn.counted = box.size
        waiting = box.size
        owed = conn.welcome_end - box.taken     # its welcome is not held against it
        if owed > 0:
            waiting -= owed
        if waiting > self.stats["queue_peak"]:
            self.stats["queue_peak"] = waiting
        if waiting > self.hard:
            return f"{waiting} bytes wait for it beyond its welcome, the limit is {self.hard}"
        if waiting > self.soft:
            if conn.behind_since is None:
                conn.behind_since = now
                self.behind.add(conn)
        elif conn.behind_since is not None:
            conn.behind_since = None
            self.behind.discard(conn)
        return None

    def _watch(self, conn) -> None:
        conn.write_registered = True
        self.watched.add(conn)
        if self.select_cap is not None and self.registered >= self.select_cap:
            conn.polled = True
            self.polled.add(conn)
            if len(self.polled) > self.stats["polled_peak"]:
                self.stats["polled_peak"] = len(self.polled)
        else:
            self.selector.register(conn.sock, selectors.EVENT_WRITE, conn)
            self.registered += 1

    def unwatch(self, conn) -> None:
        """All written, or it is going: forget it (before its socket closes)."""
        if not conn.write_registered:
            return
        conn.write_registered = False
        self.watched.discard(conn)
        self.total -= conn.counted
        conn.counted = 0
        if conn.behind_since is not None:
            conn.behind_since = None
            self.behind.discard(conn)
        if conn.polled:
            conn.polled = False
            self.polled.discard(conn)
            return
        try:
            self.selector.unregister(conn.sock)
        except (KeyError, ValueError):
            pass
        self.registered -= 1
        if self.polled:             # a free place in the selector
            other = self.polled.pop()
            other.polled = False
            self.selector.register(other.sock, selectors.EVENT_WRITE, other)
            self.registered += 1

    # -- the policy ----------------------------------------------------------

    def update(self, now: float, passed: bool) -> list:
        """Decide whether the room is held (``passed``: a pass queued output
        since the last call); returns [(conn, why)] to drop for the total
        budget. Cheap unless someone is behind or the total is over it."""
        held = False
        if self.behind:
            keep = now - self.keeping_up
            for conn in self.behind:
                if conn.last_progress >= keep and now - conn.behind_since < HOLD_MAX:
                    held = True
                    break
        drops = []
        due = now >= self._shed_next
        if due or (passed and self.total > self.budget):
            # A fresh count: every SHED_EVERY, and after every pass while the
            # upper bound is over the budget, so no second pass is taken
            # on top of a full budget.
            self.memory = self._memory() if self.watched else 0
            if self.memory > self.stats["queued_peak"]:
                self.stats["queued_peak"] = self.memory
            if self.memory > self.budget:
                if self._over_since is None:
                    self._over_since = now
            else:
                self._over_since = None
        elif self.total <= self.budget:     # the upper bound says all is well
            self.memory = min(self.memory, self.total)
            self._over_since = None
        if self._over_since is not None:
            held = True
            if due:
                self._shed_next = now + SHED_EVERY
                drops = self._shed(now)
        elif due:
            self._shed_next = now + SHED_EVERY
        if held and not self.held:
            self.stats["holds"] += 1
        self.held = held
        return drops

    def _memory(self) -> int:
        own = shared = 0
        for conn in self.watched:
            mine = conn.outbox.own_bytes()
            own += mine
            shared = max(shared, conn.outbox.size - mine)
        return own + shared

    def _shed(self, now: float) -> list:
        keep = now - self.keeping_up
        if now - self._over_since >= HOLD_MAX:
            why = f"the server has been over its memory budget ({self.budget} bytes waiting) for {HOLD_MAX:g} s"
            lagging = list(self.watched)
        else:
            why = f"it is not keeping up while the server is over its memory budget ({self.budget} bytes)"
            lagging = [c for c in self.watched if c.last_progress < keep or
                       (c.behind_since is not None and now - c.behind_since >= HOLD_MAX)]
        lagging.sort(key=lambda c: c.outbox.size, reverse=True)
        memory, drops = self.memory, []
        for conn in lagging:
            if memory <= self.budget:
                break
            memory -= conn.outbox.own_bytes()   # and maybe its shared backlog: the next look tells
            drops.append((conn, why))
        if not drops and lagging and memory > self.budget:
            drops.append((lagging[0], why))     # only shared bytes left: the longest backlog goes
        return drops

    def stalled(self, now: float) -> list:
        """About once a second: [(conn, why)] for those that took nothing for
        the slow timeout. Also recounts the total exactly."""
        self.total = 0
        for conn in self.watched:
            conn.counted = conn.outbox.size
            self.total += conn.counted
        limit = now - self.slow_timeout
        return [(c, f"it took nothing for {self.slow_timeout:g} s") for c in self.watched
                if c.last_progress < limit]
