"""What an idle connection costs the server's Python heap, measured with
tracemalloc over real loopback sockets: a quiet client holds no receive
buffer while its reader waits (server.doors.jsonl: a blocking recv of
IDLE_RECV bytes, then the rest without blocking)."""
from __future__ import annotations

import tracemalloc

import pytest

from server.doors.jsonl import RECV_SIZE
from tests.netclient import LineClient
from tests.servertools import hello_v2, wait_until

pytestmark = pytest.mark.timeout(60)

N = 100


def test_an_idle_reader_holds_no_receive_buffer(make_server):
    srv = make_server(rate_limit=0)
    warm = LineClient(srv.port)
    hello_v2(warm, "warm")          # the first connection's one-time allocations
    clients = []
    tracemalloc.start(1)
    try:
        before = tracemalloc.take_snapshot()
        for i in range(N):
            c = LineClient(srv.port)
            hello_v2(c, f"idle{i}")
            clients.append(c)
        wait_until(lambda: len(srv.hub.chat.nicks) == N + 1, what="every client welcomed")
        wait_until(lambda: not any(conn.outbox for conn in list(srv.hub.conns)), what="every outbox empty")
        after = tracemalloc.take_snapshot()
    finally:
        tracemalloc.stop()
    keep = [tracemalloc.Filter(True, "*server/doors/jsonl.py")]
    grown = sum(s.size_diff for s in after.filter_traces(keep).compare_to(before.filter_traces(keep), "filename"))
    per_conn = grown / N
    # A reader blocked in recv(RECV_SIZE) would hold RECV_SIZE bytes each.
    assert per_conn < RECV_SIZE / 4, f"{per_conn:.0f} bytes per idle connection in the JSON-lines door"
    for c in clients + [warm]:
        c.close()
