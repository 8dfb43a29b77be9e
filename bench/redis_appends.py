#!/usr/bin/env python3
"""What one append to the shared log costs a node's hub (issue 15).

From the repository root (needs redis-server and pip install -e '.[redis]'):

    python3 bench/redis_appends.py [--n 5000] [--batch 1,10,100]

Starts a redis-server of its own (tests/redistools.py: a free loopback port,
its own directory, appendonly yes) and times ``RedisStore.add_message``, the
Lua append a node's hub thread makes for each message (with a ref, so the
idempotency key is written too). Prints appends per second and the time of
one: the hub can store no more messages per second than that. With
``--batch B`` it also times ``queue_message`` B times then ``flush_appends``
(what a hub pass with B says does: one round trip for the B of them).
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from server.store.redis import RedisStore  # noqa: E402
from tests.redistools import RedisServer  # noqa: E402


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--n", type=int, default=5000, help="appends to time (default %(default)s)")
    ap.add_argument("--batch", default="", help="comma-separated batch sizes to time as well (e.g. 10,100)")
    a = ap.parse_args()
    n = a.n
    batches = [int(b) for b in a.batch.split(",") if b.strip()]
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        redis = RedisServer(os.path.join(tmp, "redis"))
        try:
            store = RedisStore(redis.url)
            start = time.perf_counter()
            for i in range(n):
                store.add_message("ann", f"message {i}", session=1, ref=f"r{i}")
            rows.append(("one at a time", time.perf_counter() - start))
            for b in batches:
                start = time.perf_counter()
                for j in range(0, n, b):
                    for i in range(j, min(n, j + b)):
                        store.queue_message(None, "ann", f"message {i}", session=1, ref=f"b{b}-{i}")
                    assert not store.flush_appends()
                rows.append((f"batches of {b}", time.perf_counter() - start))
            store.close()
        finally:
            redis.stop()
    for what, took in rows:
        print(f"{what}: {n} appends in {took:.2f} s: {n / took:.0f} per second, {took / n * 1000:.3f} ms each")
    return 0


if __name__ == "__main__":
    sys.exit(main())
