"""Write a pass's output on several threads at once.

On loopback, and on a busy LAN host, most of the cost of a fan-out is the
kernel's work inside each ``send()``; the GIL is released there. So the hub
splits the connections that have output into shards, writes one shard
itself and hands the others to ``writer-N`` threads, and waits until all
are done. For that window each connection's outbox belongs to exactly one
thread; before and after, the hub alone touches it. The writers only call
:meth:`Outbox.flush` and report the outcome; every decision (watch for
writability, drop as too slow, hang up) stays with the hub.

A writer never dies of one connection: anything a flush raises becomes
that connection's outcome, and the hub drops it. Should a writer thread
end anyway, :meth:`ParallelWriter.write_all` notices within
``WRITER_CHECK`` seconds and raises, so the hub stops with a failure
instead of waiting forever.
"""
from __future__ import annotations

import queue
import threading

PARALLEL_MIN = 64   # fewer connections than this: not worth a hand-off
WRITER_CHECK = 1.0  # seconds between two checks that the writers are alive


def write_one(conn):
    """Flush one connection: True (all written), False (some left) or the OSError."""
    try:
        return conn.outbox.flush(conn.sock)
    except OSError as e:
        return e


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

    def write_all(self, conns: list) -> list:
        """Flush every connection (each at most once); returns outcomes in order."""
        shards = len(self._jobs) + 1
        if len(conns) < PARALLEL_MIN or shards == 1 or self.broken:
            return write_part(conns)
        parts = [conns[i::shards] for i in range(shards)]
        for jobs, part in zip(self._jobs, parts[1:]):
            jobs.put(part)
        results = {0: write_part(parts[0])}
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
            part = jobs.get()
            if part is None:
                return
            self._done.put((index, write_part(part)))

    def close(self) -> None:
        for jobs in self._jobs:
            jobs.put(None)
        for t in self.threads:
            t.join(2)
