#!/usr/bin/env python3
"""What one append to the shared log costs a node's hub (issue 15).

From the repository root (needs redis-server and pip install -e '.[redis]'):

    python3 bench/redis_appends.py [--n 5000]

Starts a redis-server of its own (tests/redistools.py: a free loopback port,
its own directory, appendonly yes) and times ``RedisStore.add_message``, the
Lua append a node's hub thread makes for each message (with a ref, so the
idempotency key is written too). Prints appends per second and the time of
one: the hub can store no more messages per second than that.
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
    n = ap.parse_args().n
    with tempfile.TemporaryDirectory() as tmp:
        redis = RedisServer(os.path.join(tmp, "redis"))
        try:
            store = RedisStore(redis.url)
            start = time.perf_counter()
            for i in range(n):
                store.add_message("ann", f"message {i}", session=1, ref=f"r{i}")
            took = time.perf_counter() - start
            store.close()
        finally:
            redis.stop()
    print(f"{n} appends in {took:.2f} s: {n / took:.0f} per second, {took / n * 1000:.3f} ms each")
    return 0


if __name__ == "__main__":
    sys.exit(main())
