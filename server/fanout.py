"""Write a pass's output on several threads at once.

On loopback, and on a busy LAN host, most of the cost of a fan-out is the
kernel's work inside each ``send()``; the GIL is released there. So the hub
splits the connections that have output into shards, writes one shard
itself and hands the others to ``writer-N`` threads, and waits until all
are done. For that window each connection's outbox belongs to exactly one
thread; before and after, the hub alone touches it. The writers only call
:meth:`Outbox.flush` and report the outcome; every decision (watch for
writability, drop as too slow, hang up) stays with the hub.
"""
from __future__ import annotations

import queue
import threading

PARALLEL_MIN = 64   # fewer connections than this: not worth a hand-off


def write_one(conn):
    """Flush one connection: True (all written), False (some left) or the OSError."""
    try:
        return conn.outbox.flush(conn.sock)
    except OSError as e:
        return e


class ParallelWriter:
    """``workers`` extra threads; :meth:`write_all` runs on the hub thread."""

    def __init__(self, workers: int):
        self._jobs: list[queue.SimpleQueue] = []
        self._done: queue.SimpleQueue = queue.SimpleQueue()
        self._threads = []
        for i in range(workers):
            jobs: queue.SimpleQueue = queue.SimpleQueue()
            t = threading.Thread(target=self._work, args=(jobs,), name=f"writer-{i + 1}", daemon=True)
            self._jobs.append(jobs)
            self._threads.append(t)
            t.start()

    def write_all(self, conns: list) -> list:
        """Flush every connection (each at most once); returns outcomes in order."""
        shards = len(self._jobs) + 1
        if len(conns) < PARALLEL_MIN or shards == 1:
            return [write_one(c) for c in conns]
        parts = [conns[i::shards] for i in range(shards)]
        for jobs, part in zip(self._jobs, parts[1:]):
            jobs.put(part)
        results = {0: [write_one(c) for c in parts[0]]}
        for _ in self._jobs:
            index, outcomes = self._done.get()
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
            self._done.put((index, [write_one(c) for c in part]))

    def close(self) -> None:
        for jobs in self._jobs:
            jobs.put(None)
        for t in self._threads:
            t.join(2)
