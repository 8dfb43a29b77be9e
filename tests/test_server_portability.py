"""What differs between Linux, macOS and Windows, tested here on Linux by
imitating the other systems' behaviour (docs/reliability.md, "Portability").

- macOS: ``shutdown()`` on a listening socket does not wake a thread
  blocked in ``accept()``; an unlimited hard open-files limit does not let
  the soft limit go above OPEN_MAX.
- Windows: ``select()`` takes at most 512 sockets.
"""
from __future__ import annotations

import sys
import threading
import time

import pytest

from server.app import ChatServer, raise_fd_limit
from server.config import ServerConfig
from tests.netclient import LineClient
from tests.servertools import chat_works

pytestmark = pytest.mark.timeout(30)


# --------------------------------------------------------------------------
# the open-files limit


class FakeResource:
    """The resource module of a system whose setrlimit refuses soft limits
    above ``max_soft`` (macOS: OPEN_MAX, 10240), whatever getrlimit says."""

    RLIMIT_NOFILE = 8
    RLIM_INFINITY = -1

    def __init__(self, soft, hard, max_soft):
        self.limits = (soft, hard)
        self.max_soft = max_soft
        self.tries = []

    def getrlimit(self, which):
        assert which == self.RLIMIT_NOFILE
        return self.limits

    def setrlimit(self, which, limits):
        assert which == self.RLIMIT_NOFILE
        soft, hard = limits
        self.tries.append(limits)
        if hard != self.limits[1] and (self.limits[1] == self.RLIM_INFINITY or hard > self.limits[1]):
            raise ValueError("not allowed to raise maximum limit")
        if soft > self.max_soft:
            raise ValueError("current limit exceeds maximum limit")
        self.limits = (soft, hard)


def test_unlimited_hard_limit_falls_back_to_what_the_system_allows(monkeypatch):
    fake = FakeResource(256, FakeResource.RLIM_INFINITY, max_soft=10240)   # macOS, as shipped
    monkeypatch.setitem(sys.modules, "resource", fake)
    raise_fd_limit()
    assert fake.limits == (10240, FakeResource.RLIM_INFINITY), fake.tries
    # The hard limit is left as it was: lowering it could not be undone.
    assert all(hard == FakeResource.RLIM_INFINITY for _, hard in fake.tries)


def test_finite_hard_limit_is_taken_whole(monkeypatch):
    fake = FakeResource(1024, 524288, max_soft=1 << 30)                    # a Linux desktop
    monkeypatch.setitem(sys.modules, "resource", fake)
    raise_fd_limit()
    assert fake.limits == (524288, 524288)


def test_finite_hard_limit_the_system_refuses_falls_back(monkeypatch):
    fake = FakeResource(256, 1 << 20, max_soft=24576)         # macOS with kern.maxfilesperproc 24576
    monkeypatch.setitem(sys.modules, "resource", fake)
    raise_fd_limit()
    assert 10240 <= fake.limits[0] <= 24576 and fake.limits[1] == 1 << 20, fake.tries


def test_limit_already_high_is_left_alone(monkeypatch):
    fake = FakeResource(20000, 20000, max_soft=1 << 30)
    monkeypatch.setitem(sys.modules, "resource", fake)
    raise_fd_limit()
    assert fake.limits == (20000, 20000) and fake.tries == []


def test_nothing_allowed_leaves_the_limit_and_does_not_raise(monkeypatch):
    fake = FakeResource(256, FakeResource.RLIM_INFINITY, max_soft=0)
    monkeypatch.setitem(sys.modules, "resource", fake)
    raise_fd_limit()
    assert fake.limits == (256, FakeResource.RLIM_INFINITY)


# --------------------------------------------------------------------------
# shutdown without relying on shutdown() waking accept()


class NoWakeListener:
    """A listening socket whose shutdown() wakes nobody, as on macOS."""

    def __init__(self, sock):
        self._sock = sock
        self.shutdown_calls = 0

    def shutdown(self, how):
        self.shutdown_calls += 1

    def __getattr__(self, name):
        return getattr(self._sock, name)


def test_shutdown_returns_promptly_when_shutdown_does_not_wake_accept(tmp_path):
    cfg = ServerConfig(host="127.0.0.1", port=0, db=str(tmp_path / "h.db"), rate_limit=0)
    srv = ChatServer(cfg)
    srv.listener = NoWakeListener(srv.listener)
    srv.start()
    try:
        a, b = LineClient(srv.port), LineClient(srv.port)
        a.hello("ann")
        b.hello("bob")
        a.recv_type("joined")
        chat_works(a, b)
        a.close()
        b.close()
        # Give the acceptor time to settle back into its wait.
        time.sleep(0.2)
        t = time.monotonic()
        srv.shutdown()
        took = time.monotonic() - t
    finally:
        srv.shutdown()
    assert took < 2.0, f"shutdown took {took:.1f} s: the acceptor waited to be woken by the listener"
    assert not srv._acceptor.is_alive()


def test_serve_forever_returns_promptly_after_request_shutdown(tmp_path):
    cfg = ServerConfig(host="127.0.0.1", port=0, db=str(tmp_path / "h.db"))
    srv = ChatServer(cfg)
    srv.listener = NoWakeListener(srv.listener)
    runner = threading.Thread(target=srv.serve_forever, name="test-serve")
    runner.start()
    try:
        LineClient(srv.port).hello("ann")
        t = time.monotonic()
        srv.request_shutdown()
        runner.join(10)
        took = time.monotonic() - t
    finally:
        srv.shutdown()
    assert not runner.is_alive() and took < 3.0, took


def test_unlimited_soft_limit_is_not_lowered(monkeypatch):
    fake = FakeResource(FakeResource.RLIM_INFINITY, FakeResource.RLIM_INFINITY, max_soft=1 << 30)
    monkeypatch.setitem(sys.modules, "resource", fake)
    raise_fd_limit()
    assert fake.tries == []


# --------------------------------------------------------------------------
# select() on Windows: at most 512 sockets


def test_past_the_select_limit_waiting_sockets_are_polled_and_get_everything(make_server, monkeypatch):
    import selectors
    import socket

    from server import delivery
    from server import protocol as p
    from tests.servertools import messages
    # Windows' DefaultSelector, and a limit small enough to pass here.
    monkeypatch.setattr(selectors, "DefaultSelector", selectors.SelectSelector)
    monkeypatch.setattr(delivery, "SELECT_MAX", 3)
    srv = make_server(rate_limit=0)
    assert isinstance(srv.hub._selector, selectors.SelectSelector)
    srv.listener.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8192)
    sender = LineClient(srv.port)
    sender.hello("sender")
    readers = [LineClient(srv.port, rcvbuf=8192, timeout=20) for _ in range(10)]
    for i, r in enumerate(readers):
        r.hello(f"r{i}")
    texts = [f"{i} " + "p" * 10_000 for i in range(20)]    # 200 KB each: every reader has to wait
    sender.send_raw(b"".join(p.encode({"type": "say", "text": t}) for t in texts))
    for r in readers:
        assert [m["text"] for m in messages(r, 20, timeout=20)] == texts
    assert srv.hub.stats["polled_peak"] >= 1, "the test did not reach the limit"
    assert srv.hub.stats["dropped_slow"] == 0
    sender.close()
    for r in readers:
        r.close()
