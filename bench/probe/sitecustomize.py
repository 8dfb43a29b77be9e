"""The server-side latency probe of ``bench/fanout.py --probe``: not part of
the product. Loaded by the server process (PYTHONPATH=bench/probe) when
NATTER_PROBE_OUT names a file.

For every ``say`` the hub handles, the time from its reader's receipt of the
bytes (the connection's ``last_seen``, set right after ``recv``) to the end
of the hub pass that wrote it to the room's members' sockets. That is the
server's share of a message's latency: reading, waiting for the hub, the
rules, the commit, and writing every member's socket (a member whose socket
did not take it all at once is finished later and not counted). Latencies
go to a histogram of 0.1 ms buckets; the file is rewritten once a second
and when the hub ends: {"count", "p50_ms", "p99_ms", "max_ms"}.

Thread: the wrappers run on the hub thread only.
"""
import json
import os
import threading
import time

OUT = os.environ.get("NATTER_PROBE_OUT")

if OUT:
    _run = threading.Thread.run

    def _quantile(hist: dict, count: int, q: float) -> float:
        target, seen = q * count, 0
        for bucket in sorted(hist):
            seen += hist[bucket]
            if seen >= target:
                return bucket / 10
        return 0.0

    def _probe(hub) -> None:
        from server import protocol as p
        from server.core.chat import Chat
        pending, hist = [], {}
        state = {"count": 0, "max": 0.0, "dumped": time.monotonic()}
        on_say = Chat.handlers[p.Say]

        def say(chat, conn, item):
            pending.append(conn.last_seen)
            return on_say(chat, conn, item)

        def dump() -> None:
            n = state["count"]
            with open(OUT + ".tmp", "w") as f:
                json.dump({"count": n, "p50_ms": _quantile(hist, n, 0.5), "p99_ms": _quantile(hist, n, 0.99),
                           "max_ms": round(state["max"], 1)}, f)
            os.replace(OUT + ".tmp", OUT)

        write_pass = type(hub)._write_pass

        def wrapped(self):
            write_pass(self)
            if pending:
                now = time.monotonic()
                for t in pending:
                    ms = (now - t) * 1000
                    b = int(ms * 10)
                    hist[b] = hist.get(b, 0) + 1
                    if ms > state["max"]:
                        state["max"] = ms
                state["count"] += len(pending)
                pending.clear()
                if now - state["dumped"] > 1.0:
                    state["dumped"] = now
                    dump()

        Chat.handlers[p.Say] = say
        type(hub)._write_pass = wrapped
        return dump

    def run(self):
        if self.name != "hub":
            return _run(self)
        dump = _probe(self._target.__self__)
        try:
            return _run(self)
        finally:
            dump()

    threading.Thread.run = run
