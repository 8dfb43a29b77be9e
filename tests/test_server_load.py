"""Many clients sending at once: every client gets every message, in one
order, with no loss (the classic tutorial server lost a third to all)."""
from __future__ import annotations

import threading
import time

import pytest

from server import protocol as p
from tests.netclient import LineClient

CLIENTS = 50
EACH = 100


@pytest.mark.timeout(60)
@pytest.mark.parametrize("burst", [True, False], ids=["one-write", "frame-by-frame"])
def test_many_clients_sending_at_once_lose_nothing_and_agree_on_order(make_server, burst):
    srv = make_server(rate_limit=0)
    clients = []
    try:
        for i in range(CLIENTS):
            c = LineClient(srv.port, timeout=30)
            c.hello(f"u{i}")
            clients.append(c)
        # Everyone's 'joined' frames arrive before the first message: read
        # until each client has seen the last one join.
        for c in clients[:-1]:
            while True:
                f = c.recv()
                if f["type"] == "joined" and f["nick"] == f"u{CLIENTS - 1}":
                    break
        start = threading.Barrier(CLIENTS)
        results: dict[int, list] = {}
        failures: list = []

        def run(i: int, c: LineClient) -> None:
            try:
                frames = [p.encode({"type": "say", "text": f"{i}:{k}", "ref": f"{k}"}) for k in range(EACH)]
                start.wait(10)
                if burst:
                    c.send_raw(b"".join(frames))
                else:
                    for data in frames:
                        c.send_raw(data)
                got = []
                while len(got) < CLIENTS * EACH:
                    f = c.recv()
                    if f["type"] == "message":
                        got.append((f["id"], f["from"], f["text"], f.get("ref")))
                    else:
                        failures.append((i, f))
                results[i] = got
            except BaseException as e:      # reported below, in the test's thread
                failures.append((i, repr(e)))

        threads = [threading.Thread(target=run, args=(i, c), name=f"load-{i}") for i, c in enumerate(clients)]
        t = time.monotonic()
        for th in threads:
            th.start()
        for th in threads:
            th.join(50)
        elapsed = time.monotonic() - t
        assert not failures, failures[:5]
        assert len(results) == CLIENTS
        reference = [(m[0], m[1], m[2]) for m in results[0]]
        ids = [m[0] for m in reference]
        assert ids == sorted(set(ids)), "ids must strictly increase in delivery order"
        assert len(reference) == CLIENTS * EACH
        assert sorted(m[2] for m in reference) == sorted(f"{i}:{k}" for i in range(CLIENTS) for k in range(EACH))
        for i, got in results.items():
            assert [(m[0], m[1], m[2]) for m in got] == reference, f"client {i} saw another order"
            mine = [m for m in got if m[1] == f"u{i}"]
            assert [m[2] for m in mine] == [f"{i}:{k}" for k in range(EACH)]     # each sender's order kept
            assert [m[3] for m in mine] == [f"{k}" for k in range(EACH)]          # its acks carry its refs
            assert all(m[3] is None for m in got if m[1] != f"u{i}")
        # Every message is in the history file, under the id everyone saw.
        w = LineClient(srv.port)
        hist = w.hello("late", since=0)["history"]
        w.close()
        assert [(m["id"], m["from"], m["text"]) for m in hist] == reference
        print(f"{CLIENTS * EACH} messages to {CLIENTS} clients in {elapsed:.2f} s")
    finally:
        for c in clients:
            c.close()
