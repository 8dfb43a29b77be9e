"""A thread that fails unexpectedly is logged, and the server recovers
(one connection dropped) or stops cleanly with a failure (issue 9, point 15)."""
from __future__ import annotations

import logging
import os
import subprocess
import sys
import threading

import pytest

from server import app as app_mod
from server import delivery
from server.app import ChatServer
from server.config import ServerConfig
from tests.netclient import LineClient
from tests.servertools import chat_works, wait_until

pytestmark = pytest.mark.timeout(30)
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_a_writer_that_raises_drops_that_connection_and_the_hub_goes_on(make_server, monkeypatch, caplog):
    srv = make_server(rate_limit=0, writers=1)
    clients = [LineClient(srv.port) for _ in range(delivery.PARALLEL_MIN + 6)]
    try:
        for i, c in enumerate(clients):
            c.hello(f"u{i}")
        for i, c in enumerate(clients):         # each sees the later ones join: then all is quiet
            for _ in range(len(clients) - 1 - i):
                assert c.recv()["type"] == "joined"
        # A broadcast reaches a member with nothing waiting through send_one,
        # anything else through write_one: either may fail.
        victim = []

        def flaky(real):
            def write(conn, *blob):
                if not victim and threading.current_thread().name.startswith("writer-"):
                    victim.append(conn)
                    raise RuntimeError("injected writer failure")
                return real(conn, *blob)
            return write
        monkeypatch.setattr(delivery, "write_one", flaky(delivery.write_one))
        monkeypatch.setattr(delivery, "send_one", flaky(delivery.send_one))
        clients[0].send({"type": "say", "text": "to everyone"})
        wait_until(lambda: victim, what="a writer thread to fail")
        port = victim[0].addr[1]
        lost = next(c for c in clients if c.sock.getsockname()[1] == port)
        others = [c for c in clients if c is not lost]
        for c in others:
            assert c.recv_type("message")["text"] == "to everyone"
        assert lost.closed_by_server(5)
        for c in others:
            f = c.recv_type("left")
            assert f["reason"] == "server error"
        chat_works(others[0], *others[1:])
        assert srv.hub.thread.is_alive() and srv.failure is None
        assert any("injected writer failure" in (r.exc_text or "") or
                   (r.exc_info and "injected" in str(r.exc_info[1])) for r in caplog.records), caplog.text
    finally:
        for c in clients:
            c.close()


def test_any_thread_that_crashes_is_logged(make_server, caplog, monkeypatch):
    monkeypatch.setattr(threading, "excepthook", threading.excepthook)   # restored after the test
    monkeypatch.setattr(app_mod, "_log_every_thread", False)
    app_mod.install_thread_hook()                                        # as python -m server does
    srv = make_server()

    def boom():
        raise ValueError("a bug in some thread")
    with caplog.at_level(logging.ERROR, logger="natter.server"):
        t = threading.Thread(target=boom, name="some-helper")
        t.start()
        t.join(5)
    rec = [r for r in caplog.records if "some-helper" in r.getMessage()]
    assert rec and rec[0].exc_info and rec[0].exc_info[0] is ValueError, caplog.text
    assert srv.failure is None          # not one of the server's threads


class AcceptFails:
    """A listener whose accept() fails in a way nobody planned for."""

    def __init__(self, sock):
        self._sock = sock

    def accept(self):
        raise RuntimeError("accept exploded")

    def __getattr__(self, name):
        return getattr(self._sock, name)


def test_acceptor_that_dies_stops_the_server_with_a_failure(tmp_path, caplog):
    srv = ChatServer(ServerConfig(host="127.0.0.1", port=0, db=str(tmp_path / "h.db")))
    real_listener = srv.listener
    srv.listener = AcceptFails(real_listener)
    runner = threading.Thread(target=srv.serve_forever, name="test-serve")
    runner.start()
    try:
        probe = LineClient(srv.port)
        runner.join(10)
        assert not runner.is_alive(), "serve_forever did not return after the acceptor died"
        assert srv.failure and "acceptor" in srv.failure
        assert any("accept exploded" in str(r.exc_info[1]) for r in caplog.records if r.exc_info), caplog.text
        probe.close()
    finally:
        srv.shutdown()


def test_a_connection_that_fails_to_set_up_is_logged_and_accepting_goes_on(make_server, monkeypatch, caplog):
    srv = make_server(rate_limit=0)
    real = app_mod.Connection
    failed = []

    def once(*a, **kw):
        if not failed:
            failed.append(1)
            raise RuntimeError("setup bug")
        return real(*a, **kw)
    monkeypatch.setattr(app_mod, "Connection", once)
    first = LineClient(srv.port)
    assert first.closed_by_server(5)
    second = LineClient(srv.port)
    assert second.hello("ann")["nick"] == "ann"
    assert srv._acceptor.is_alive() and srv.failure is None
    assert any(r.exc_info and "setup bug" in str(r.exc_info[1]) for r in caplog.records), caplog.text
    first.close()
    second.close()


def test_server_process_exits_1_when_a_vital_thread_dies(tmp_path):
    code = (
        "import sys, server.app as a, server.main as m\n"
        "real = a._listen\n"
        "class L:\n"
        "    def __init__(s, x): s._x = x\n"
        "    def accept(s): raise RuntimeError('accept exploded')\n"
        "    def __getattr__(s, n): return getattr(s._x, n)\n"
        "a._listen = lambda *args: L(real(*args))\n"
        "sys.exit(m.main(sys.argv[1:]))\n")
    env = dict(os.environ, NATTER_HOME=str(tmp_path / "home"), PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-c", code, "--port", "0", "--db", str(tmp_path / "h.db")],
                            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        port = int(line.split("listening on 127.0.0.1:")[1].split()[0])
        LineClient(port).close()
        assert proc.wait(20) == 1
        err = proc.stderr.read()
        assert "thread acceptor failed" in err and "accept exploded" in err, err
        assert "natter server: stopped: the acceptor thread failed" in err, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        proc.stdout.close()
        proc.stderr.close()


class Die(BaseException):
    """Not an Exception: escapes every handler and ends the thread."""


def test_a_writer_thread_that_ends_stops_the_server_cleanly(tmp_path, monkeypatch, caplog):
    srv = ChatServer(ServerConfig(host="127.0.0.1", port=0, db=str(tmp_path / "h.db"), rate_limit=0, writers=1))
    runner = threading.Thread(target=srv.serve_forever, name="test-serve")
    runner.start()
    clients = []
    try:
        clients = [LineClient(srv.port) for _ in range(delivery.PARALLEL_MIN + 2)]
        for i, c in enumerate(clients):
            c.hello(f"u{i}")
        def dies(real):
            def write(conns):
                if threading.current_thread().name.startswith("writer-"):
                    raise Die()
                return real(conns)
            return write
        monkeypatch.setattr(delivery, "write_part", dies(delivery.write_part))
        monkeypatch.setattr(delivery, "write_shared", dies(delivery.write_shared))
        clients[0].send({"type": "say", "text": "to everyone"})
        runner.join(15)
        assert not runner.is_alive(), "serve_forever did not return after a writer thread ended"
        assert srv.failure, "the server must say why it stopped"
        assert "thread writer-1 failed" in caplog.text, caplog.text
        for c in clients:                  # everyone was told and disconnected
            assert c.closed_by_server(5)
    finally:
        for c in clients:
            c.close()
        srv.shutdown()
