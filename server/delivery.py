"""Getting bytes to clients: outboxes, the writer pool, the slow-reader policy.

:class:`Outbox` holds what waits for one client; :class:`ParallelWriter`
flushes a pass's outboxes on several threads; :class:`Delivery` decides
whom the hub waits for and whom it drops.

**The writer pool** writes a pass's output on several threads at once. On
loopback, and on a busy LAN host, most of the cost of a fan-out is the
kernel's work inside each ``send()``; the GIL is released there. So the hub
splits the connections that have output into shards, writes one shard
itself and hands the others to ``writer-N`` threads, and waits until all
are done. For that window each connection's outbox belongs to exactly one
thread; before and after, the hub alone touches it. The writers only call
:meth:`Outbox.flush`, or :func:`send_one` for a member that gets its room's
shared blob with nothing else waiting (the blob goes to the socket
straight, what it does not take waits in the outbox), and report the
outcome; every decision (watch for writability, drop as too slow, hang
up) stays with the hub.

A writer never dies of one connection: anything a flush raises becomes
that connection's outcome, and the hub drops it. Should a writer thread
end anyway, :meth:`ParallelWriter.write_all` notices within
``WRITER_CHECK`` seconds and raises, so the hub stops with a failure
instead of waiting forever.

**Slow readers**: which clients the hub waits for, and which it drops. A
client is judged by its progress, not by how much waits for it. A reader
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
  (:meth:`Outbox.own_bytes`).

So the memory the server spends on delivery is bounded by the inbox cap
(:data:`server.inbox.MAX_INBOX_BYTES`) plus ``--max-total-queue`` plus one
pass.

:class:`Delivery` also keeps the writability watch. ``select()`` (the only
selector on Windows) takes at most 512 sockets; past ``SELECT_MAX`` the
connections waiting to be written are polled every ``POLL`` seconds
instead of watched.

Thread: the hub thread, but for the writers' flushes; :class:`Delivery`
reads ``Outbox.size`` and ``Outbox.taken`` after the writers are done.
"""
from __future__ import annotations

import collections
import queue
import selectors
import socket
import threading

# POSIX lets one call be non-blocking while the socket stays blocking for the
# reader. Elsewhere (Windows) the socket is made non-blocking and the reader
# waits with select() before each recv.
DONTWAIT = getattr(socket, "MSG_DONTWAIT", 0)
HAVE_SENDMSG = hasattr(socket.socket, "sendmsg")


class Outbox:
    """Bytes waiting to be written to one peer, in order.

    The hub thread owns it, except while it lends it to one ``writer-N``
    thread for a flush (:class:`ParallelWriter`). With TLS, pushed bytes
    are plaintext and are encrypted at flush time, on the flushing thread.
    Chunks are bytes or memoryviews of a blob other outboxes share.

    Memory: a chunk pushed with ``shared=True`` (a room's blob, or a view
    of it) is also in other outboxes; the others are this peer's own. The
    hub counts memory as every outbox's own bytes plus the longest shared
    backlog (:meth:`own_bytes`). With TLS every byte is its own (the
    ciphertext is per peer).
    """

    __slots__ = ("chunks", "offset", "size", "tls", "plain", "taken", "_marks", "_own")

    def __init__(self, tls=None):
        self.chunks: collections.deque = collections.deque()
        self.offset = 0   # bytes of chunks[0] already sent
        self.size = 0     # bytes not yet sent
        self.taken = 0    # bytes the socket has taken, ever: progress is this changing
        self.tls = tls    # a server.tls.TlsChannel, or None
        self.plain: list = []
        self._marks = None   # deque of (end in the stream, size) of own chunks, made when needed
        self._own = 0

    def __bool__(self) -> bool:
        return self.size > 0

    def push(self, data, shared: bool = False) -> None:
        if self.tls is None:
            self.chunks.append(data)
            if not shared:
                self._mark(len(data))
        else:
            self.plain.append(data)
        self.size += len(data)

    def push_parts(self, parts: list) -> None:
        """A member's share of a pass with its own frames in it: memoryviews
        of the shared blob (shared) around its own bytes."""
        for part in parts:
            self.push(part, shared=type(part) is memoryview)

    def _mark(self, n: int) -> None:
        if self._marks is None:
            self._marks = collections.deque()
        self._own += n
        self._marks.append((self.taken + self.size + n, n))

    def own_bytes(self) -> int:
        """Bytes waiting that no other outbox shares (a chunk partly sent
        counts whole)."""
        if self.tls is not None:
            return self.size
        marks, taken = self._marks, self.taken
        while marks and marks[0][0] <= taken:
            self._own -= marks.popleft()[1]
        if not marks:
            self._marks = None
        return self._own

    def push_raw(self, data: bytes) -> None:
        """Bytes that bypass TLS (a plaintext error to a plaintext client)."""
        self.chunks.append(data)
        self.size += len(data)

    def unsent(self) -> bytes:
        """Take out the bytes not yet written (encrypted, with TLS), in order."""
        if self.tls is not None and self.plain:
            plain, self.plain = self.plain, []
            self.chunks.append(self.tls.encrypt(plain))
        data = b"".join(bytes(c) for c in self.chunks)[self.offset:]
        self.clear()
        return data

    def clear(self) -> None:
        self.chunks.clear()
        self.plain = []
        self._marks = None
        self.offset = self.size = self._own = 0

    def flush(self, sock: socket.socket) -> bool:
        """Write as much as the socket takes now; True when all is written.

        Raises OSError when the peer is gone (ssl.SSLError is an OSError).
        """
        if self.tls is not None:
            plain, self.plain = self.plain, []
            cipher = self.tls.encrypt(plain)
            self.size += len(cipher) - sum(map(len, plain))
            if cipher:
                self.chunks.append(cipher)
        chunks = self.chunks
        while chunks:
            try:
                if len(chunks) > 1 and HAVE_SENDMSG:
                    bufs = [memoryview(chunks[0])[self.offset:]] if self.offset else [chunks[0]]
                    for i in range(1, min(len(chunks), 64)):
                        bufs.append(chunks[i])
                    sent = sock.sendmsg(bufs, (), DONTWAIT)
                else:
                    first = chunks[0]
                    sent = sock.send(memoryview(first)[self.offset:] if self.offset else first, DONTWAIT)
            except (BlockingIOError, InterruptedError):
                return False
            self.size -= sent
            self.taken += sent
            sent += self.offset
            while chunks and sent >= len(chunks[0]):
                sent -= len(chunks.popleft())
            self.offset = sent
            if sent:
                return False  # a partial write: the socket buffer is full
        self._marks = None    # all sent: nothing of its own waits
        self._own = 0
        return True


# -- the writer pool -------------------------------------------------------

PARALLEL_MIN = 64   # fewer connections than this: not worth a hand-off
WRITER_CHECK = 1.0  # seconds between two checks that the writers are alive


def write_one(conn):
    """Flush one connection: True (all written), False (some left) or the OSError."""
    try:
        return conn.outbox.flush(conn.sock)
    except OSError as e:
        return e


def send_one(conn, blob: bytes) -> bool:
    """Send ``blob`` to a connection whose outbox is empty and plaintext,
    straight from the blob; what the socket does not take waits in the
    outbox, as a view of the blob. True when all is written.

    Raises OSError when the peer is gone."""
    try:
        sent = conn.sock.send(blob, DONTWAIT)
    except (BlockingIOError, InterruptedError):
        sent = 0
    box = conn.outbox
    box.taken += sent
    if sent == len(blob):
        return True
    box.push(memoryview(blob)[sent:] if sent else blob, shared=True)
    return False


def write_part(conns: list) -> list:
    """Flush each connection; never raises: an unexpected exception is that
    connection's outcome (the hub logs it and drops the connection)."""
    out = []
    for conn in conns:
        try:
            out.append(write_one(conn))
        except Exception as e:
            out.append(e)
    return out


def write_shared(pairs: list) -> list:
    """:func:`send_one` for each (conn, blob): the common case of a fan-out,
    a member that gets its room's blob with nothing else waiting for it.
    Outcomes as :func:`write_part`'s."""
    out = []
    append = out.append
    for conn, blob in pairs:
        try:
            append(send_one(conn, blob))
        except Exception as e:      # OSError: the peer is gone
            append(e)
    return out


class ParallelWriter:
    """``workers`` extra threads; :meth:`write_all` runs on the hub thread."""

    def __init__(self, workers: int):
        self._jobs: list[queue.SimpleQueue] = []
        self._done: queue.SimpleQueue = queue.SimpleQueue()
        self.broken = False
        self.threads = []
        for i in range(workers):
            jobs: queue.SimpleQueue = queue.SimpleQueue()
            t = threading.Thread(target=self._work, args=(jobs,), name=f"writer-{i + 1}", daemon=True)
            self._jobs.append(jobs)
            self.threads.append(t)
            t.start()

    def write_all(self, conns: list, shared: bool = False) -> list:
        """Flush every connection (each at most once), or with ``shared``
        send each (conn, blob) of ``conns`` (:func:`write_shared`), split
        between the hub and the writers; returns the outcomes in order."""
        write = write_shared if shared else write_part
        shards = len(self._jobs) + 1
        if len(conns) < PARALLEL_MIN or shards == 1 or self.broken:
            return write(conns)
        parts = [conns[i::shards] for i in range(shards)]
        for jobs, part in zip(self._jobs, parts[1:]):
            jobs.put((write, part))
        results = {0: write(parts[0])}
        while len(results) < shards:
            try:
                index, outcomes = self._done.get(timeout=WRITER_CHECK)
            except queue.Empty:
                dead = [t.name for i, t in enumerate(self.threads) if i + 1 not in results and not t.is_alive()]
                if dead:
                    self.broken = True      # from now on the hub writes alone (its shutdown, say)
                    raise RuntimeError(f"writer thread {', '.join(dead)} ended; its connections are lost")
                continue
            results[index] = outcomes
        out = [None] * len(conns)
        for i in range(shards):
            out[i::shards] = results[i]
        return out

    def _work(self, jobs: queue.SimpleQueue) -> None:
        index = self._jobs.index(jobs) + 1
        while True:
            job = jobs.get()
            if job is None:
                return
            write, part = job
            self._done.put((index, write(part)))

    def close(self) -> None:
        for jobs in self._jobs:
            jobs.put(None)
        for t in self.threads:
            t.join(2)


# -- the slow-reader policy -----------------------------------------------

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
        owed = conn.owed_end - box.taken        # its welcome and catch-up are not held against it
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
