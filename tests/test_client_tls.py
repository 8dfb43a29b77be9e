"""The network client over TLS against the real in-process server (loopback).

Encrypted chat between two ChatClients; a first use stopped before the
hello until the fingerprint is trusted (then pinned); trust on first use
without asking when told to (the same certificate accepted silently, a
different one on the same host:port refused before the hello, on a first
connection and on a reconnect); deliberately trusting a new certificate; a
server restart over TLS resumed exactly once; the wrong layer on either
side and broken handshakes explained; the TLS transport's record handling
in memory.
"""
from __future__ import annotations

import json
import os
import socket
import threading
import time

import pytest

from chatgui.net import events as ev
from chatgui.net.client import ChatClient
from chatgui.net.transport import TlsTransport, client_context
from chatgui.net.pins import PinStore
from chatgui.net.backoff import Backoff
from server import protocol, tls
from tests.chatclients import Events, until_pong
from tests.servertools import wait_until
from tests.test_client_net import Proxy, _texts, free_port
from tests.test_tls import TlsLineClient

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def clients(make_chat_clients):
    """make(port, nick, **kw) -> (ChatClient started, Events); TLS unless
    tls=False, and trusting a first use without asking unless
    trust_first_use=False (the first-use tests use make_chat_clients, the
    client's real default)."""
    def make(port, nick, **kw):
        kw.setdefault("tls", True)
        kw.setdefault("trust_first_use", True)
        return make_chat_clients(port, nick, **kw)
    return make


def pins_file() -> str:
    return os.path.join(os.environ["NATTER_HOME"], "config", "known_servers.json")


def other_certificate(tmp_path, name="other") -> tuple[str, str]:
    """A second self-signed certificate: what an impostor (or a server that
    lost its data folder) would show on the same host:port."""
    return tls.ensure_certificate(str(tmp_path / name))


def settle(srv, port: int, live: int, password: str | None = None) -> TlsLineClient:
    """Wait until the server has dealt with every connection made so far
    and all but ``live`` of them have ended: a probe joins (the server
    takes connections in the order they came), then the count falls to
    ``live`` plus the probe. A connection's hello is always handled before
    its end, so anything a refused client sent has arrived by then."""
    probe = TlsLineClient(port)
    probe.hello("probe", **({"password": password} if password else {}))
    wait_until(lambda: len(srv.hub.conns) == live + 1, what="the server to forget the ended connections")
    return probe


class PasswordSpy:
    """Stands in for a server's password check and records every hello's password."""

    def __init__(self):
        self.seen: list = []

    def __call__(self, password):
        self.seen.append(password)
        return True


class TlsRecorder:
    """A TLS listener with a real certificate that keeps, per connection,
    every plaintext byte the client sent, read to the end of the stream."""

    def __init__(self, cert: str, key: str):
        self.context = tls.server_context(cert, key)
        self.lsock = socket.create_server(("127.0.0.1", 0))
        self.lsock.settimeout(0.1)
        self.port = self.lsock.getsockname()[1]
        self.received: list = []        # bytearray per connection, in accept order
        self.ended: list = []           # threading.Event per connection: read to its end
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._accept, name="test-tls-recorder", daemon=True)]
        self.threads[0].start()

    def _accept(self):
        while not self.stop.is_set():
            try:
                raw, _ = self.lsock.accept()
            except OSError:
                continue
            got, ended = bytearray(), threading.Event()
            self.received.append(got)
            self.ended.append(ended)
            t = threading.Thread(target=self._read, args=(raw, got, ended), name="test-tls-recorder",
                                 daemon=True)
            t.start()
            self.threads.append(t)

    def _read(self, raw, got, ended):
        try:
            raw.settimeout(10)
            conn = self.context.wrap_socket(raw, server_side=True)
            while not self.stop.is_set():
                data = conn.recv(65536)
                if not data:
                    break
                got += data
        except OSError:         # the client hung up without close_notify: also an end
            pass
        finally:
            ended.set()
            raw.close()

    def until_ended(self, i: int, timeout: float = 5.0) -> bytes:
        """Everything connection ``i`` sent, once it has ended."""
        wait_until(lambda: len(self.ended) > i and self.ended[i].is_set(), timeout,
                   what=f"connection {i} to end")
        return bytes(self.received[i])

    def close(self):
        self.stop.set()
        for t in self.threads:
            t.join(2)
        self.lsock.close()


# -- first use: nothing leaves before the person trusts the certificate -------------

def test_a_first_use_stops_before_the_hello_and_trusting_it_sends_the_hello(make_chat_clients, tmp_path):
    cert, key = other_certificate(tmp_path, "first")
    shown = tls.cert_fingerprint(cert)
    rec = TlsRecorder(cert, key)
    try:
        a, ae = make_chat_clients(rec.port, "ann", tls=True, password="the room password")
        failed = ae.wait(ev.ConnectFailed)
        assert failed.kind == "tls_new" and failed.retry_in is None
        assert failed.fingerprint == shown and failed.pinned is None
        assert shown in failed.message and "nothing was sent" in failed.message
        assert "Compare it" in failed.message
        assert isinstance(ae.next(), ev.Closed)
        assert not ae.of(ev.Connected)
        # The TLS handshake completed (the recorder has the connection), and
        # not one byte of plaintext came through it: no hello, no password.
        assert rec.until_ended(0) == b""
        assert PinStore().get("127.0.0.1", rec.port) is None

        # The person compared and trusts it: now the hello goes, with the password.
        b, be = make_chat_clients(rec.port, "ann", tls=True, password="the room password",
                                  accept_fingerprint=shown)
        wait_until(lambda: len(rec.received) > 1 and b"\n" in rec.received[1], what="the hello")
        hello = json.loads(bytes(rec.received[1]).split(b"\n")[0])
        assert (hello["type"], hello["nick"], hello["password"]) == ("hello", "ann", "the room password")
        assert PinStore().get("127.0.0.1", rec.port) == shown
    finally:
        rec.close()


def test_a_first_use_on_a_real_server_joins_only_after_trusting(make_server, make_chat_clients):
    srv = make_server(tls=True, password="pw", rate_limit=0)
    spy = PasswordSpy()
    srv.check_password = spy            # connections take it at accept time
    a, ae = make_chat_clients(srv.port, "ann", tls=True, password="pw")
    failed = ae.wait(ev.ConnectFailed)
    assert (failed.kind, failed.fingerprint, failed.pinned) == ("tls_new", srv.fingerprint, None)
    assert isinstance(ae.next(), ev.Closed)

    b, be = make_chat_clients(srv.port, "ann", tls=True, password="pw", accept_fingerprint=failed.fingerprint)
    con = be.wait(ev.Connected)
    assert con.fingerprint == srv.fingerprint and con.first_use is False
    assert PinStore().get("127.0.0.1", srv.port) == srv.fingerprint
    # Every hello reaches the hub before that connection's end does: once the
    # refused connection is gone from the server, its hello would have been checked.
    wait_until(lambda: len(srv.hub.conns) == 1, what="the refused connection to end on the server")
    assert spy.seen == ["pw"], "only the trusting client's hello may carry the password"
    b.close(3)
    # Pinned now: the next client goes on without asking.
    c, ce = make_chat_clients(srv.port, "ann", tls=True, password="pw")
    con = ce.wait(ev.Connected)
    assert con.fingerprint == srv.fingerprint and con.first_use is False


def test_trusting_a_first_use_without_asking_when_told_to(make_server, make_chat_clients):
    srv = make_server(tls=True, rate_limit=0)
    a, ae = make_chat_clients(srv.port, "ann", tls=True, trust_first_use=True)
    con = ae.wait(ev.Connected)
    assert con.fingerprint == srv.fingerprint and con.first_use is True
    assert PinStore().get("127.0.0.1", srv.port) == srv.fingerprint


# -- encrypted chat ------------------------------------------------------------------

def test_two_clients_chat_over_tls_and_the_trusted_first_use_is_pinned(make_server, clients):
    srv = make_server(tls=True, rate_limit=0)
    relay = Proxy(srv.port)   # keeps every byte the client sent
    try:
        first, fe = clients(relay.port, "alice", trust_first_use=False)
        assert fe.wait(ev.ConnectFailed).kind == "tls_new"
        assert not os.path.exists(pins_file())
        a, ae = clients(relay.port, "alice", accept_fingerprint=srv.fingerprint)
        con = ae.wait(ev.Connected)
        assert con.fingerprint == srv.fingerprint and con.first_use is False
        with open(pins_file(), encoding="utf-8") as f:
            doc = json.load(f)
        assert doc["servers"][f"127.0.0.1:{relay.port}"]["fingerprint"] == srv.fingerprint

        b, be = clients(relay.port, "bob", trust_first_use=False)
        con_b = be.wait(ev.Connected)
        assert con_b.fingerprint == srv.fingerprint and con_b.first_use is False
        assert ae.wait(protocol.Joined).nick == "bob"

        ref = a.say("a secret plan")
        assert be.wait(protocol.Message).text == "a secret plan"
        assert ae.wait(ev.Acked).ref == ref
        dm = b.dm("alice", "for your eyes only")
        assert ae.wait(protocol.Direct).text == "for your eyes only"
        assert be.wait(lambda e: isinstance(e, ev.Acked) and e.ref == dm).id is not None
        with relay._lock:
            wire = bytes(relay.sent)
        assert len(wire) > 500 and wire[:2] == b"\x16\x03"       # a TLS handshake record
        for plain in (b"secret plan", b"for your eyes", b"alice", b"hello"):
            assert plain not in wire, f"{plain!r} crossed the network unencrypted"
    finally:
        relay.close()


def test_the_same_certificate_next_time_is_accepted_silently(make_server, tmp_path, clients):
    db = str(tmp_path / "same.db")
    srv = make_server(tls=True, db=db, rate_limit=0)
    port, first = srv.port, srv.fingerprint
    a, ae = clients(port, "ann", reconnect=False)
    assert ae.wait(ev.Connected).first_use
    a.close(3)
    srv.shutdown()
    # The server keeps its self-signed certificate across restarts.
    again = make_server(tls=True, port=port, db=db, rate_limit=0)
    assert again.fingerprint == first
    b, be = clients(port, "ann")
    con = be.wait(ev.Connected)
    assert con.fingerprint == first and con.first_use is False
    assert PinStore().get("127.0.0.1", port) == first


def test_nothing_is_pinned_when_the_welcome_never_came(make_server, clients):
    srv = make_server(tls=True, password="pw", rate_limit=0)
    a, ae = clients(srv.port, "ann", password="wrong")
    assert ae.wait(ev.ConnectFailed).kind == "auth_failed"
    assert PinStore().get("127.0.0.1", srv.port) is None
    b, be = clients(srv.port, "ann", password="pw")
    assert be.wait(ev.Connected).first_use is True      # so the user still sees it once


# -- a changed certificate ----------------------------------------------------------

def _pinned_then_replaced(make_server, tmp_path, clients, **server_kw):
    """Pin srv1's certificate, stop it, and start srv2 with another
    certificate on the same port. Returns (port, old fp, srv2)."""
    srv = make_server(tls=True, rate_limit=0)
    port, old = srv.port, srv.fingerprint
    a, ae = clients(port, "ann", reconnect=False)
    assert ae.wait(ev.Connected).first_use
    a.close(3)
    srv.shutdown()
    cert, key = other_certificate(tmp_path)
    srv2 = make_server(tls=True, port=port, cert=cert, key=key, rate_limit=0,
                       db=str(tmp_path / "impostor.db"), **server_kw)
    assert srv2.fingerprint != old
    return port, old, srv2


def test_a_changed_certificate_is_refused_before_the_hello(make_server, tmp_path, clients):
    port, old, srv2 = _pinned_then_replaced(make_server, tmp_path, clients, password="pw")
    spy = PasswordSpy()
    srv2.check_password = spy            # connections take it at accept time
    watcher = TlsLineClient(port)
    watcher.hello("watcher", password="pw")
    assert spy.seen == ["pw"]

    b, be = clients(port, "ann", password="my room password")
    failed = be.wait(ev.ConnectFailed)
    assert failed.kind == "tls_changed" and failed.retry_in is None
    assert failed.fingerprint == srv2.fingerprint and failed.pinned == old
    assert old in failed.message and srv2.fingerprint in failed.message
    assert "changed" in failed.message and "nothing was sent" in failed.message
    assert isinstance(be.next(), ev.Closed)
    assert b.close(3) and be.q.empty() and not be.of(ev.Connected)   # Closed was the last event
    # The server never saw a hello: no password checked, nobody joined.
    probe = settle(srv2, port, live=1, password="pw")
    assert spy.seen == ["pw", "pw"], "only the watcher's and the probe's hellos may reach the server"
    assert not [f for f in until_pong(watcher) if f.get("nick") == "ann" or f["type"] == "message"]
    assert PinStore().get("127.0.0.1", port) == old, "a refused certificate must not be pinned"
    watcher.close()
    probe.close()


def test_trusting_the_new_certificate_after_comparing_it(make_server, tmp_path, clients):
    port, old, srv2 = _pinned_then_replaced(make_server, tmp_path, clients)
    b, be = clients(port, "ann")
    shown = be.wait(ev.ConnectFailed).fingerprint
    # The user compared it with what the server printed at start, and trusts it.
    c, ce = clients(port, "ann", accept_fingerprint=shown.lower().replace(" ", ":"))
    con = ce.wait(ev.Connected)
    assert con.fingerprint == srv2.fingerprint and con.first_use is False
    assert PinStore().get("127.0.0.1", port) == srv2.fingerprint
    c.close(3)
    # From now on the new certificate is the pinned one.
    d, de = clients(port, "ann")
    assert de.wait(ev.Connected).fingerprint == srv2.fingerprint


def test_a_fingerprint_given_in_advance_refuses_any_other_certificate(make_server, tmp_path, clients):
    srv = make_server(tls=True, rate_limit=0)
    wrong = tls.cert_fingerprint(other_certificate(tmp_path)[0])
    a, ae = clients(srv.port, "ann", accept_fingerprint=wrong)
    failed = ae.wait(ev.ConnectFailed)
    assert failed.kind == "tls_changed" and failed.retry_in is None
    assert failed.pinned == wrong and failed.fingerprint == srv.fingerprint
    assert "not the one you said to trust" in failed.message
    assert PinStore().get("127.0.0.1", srv.port) is None
    with pytest.raises(ValueError, match="64 hexadecimal digits"):
        ChatClient("127.0.0.1", srv.port, "ann", events=Events().q, accept_fingerprint="3F2A 9B1C")


@pytest.mark.parametrize("pin_file_lost", [False, True], ids=["pinned", "pin-file-deleted"])
def test_a_certificate_changed_mid_session_is_refused_on_the_reconnect(make_server, tmp_path, clients,
                                                                       pin_file_lost):
    srv = make_server(tls=True, rate_limit=0)
    port, old = srv.port, srv.fingerprint
    a, ae = clients(port, "ann", backoff=Backoff(first=0.1, base=0.1, cap=0.2))
    ae.wait(ev.Connected)
    if pin_file_lost:       # what this client went on with still counts
        os.remove(pins_file())
    srv.shutdown()
    assert ae.wait(ev.Disconnected).retry_in is not None
    cert, key = other_certificate(tmp_path)
    srv2 = make_server(tls=True, port=port, cert=cert, key=key, rate_limit=0, db=str(tmp_path / "i.db"))
    watcher = TlsLineClient(port)
    watcher.hello("watcher")
    # While no server listened, attempts were refused and retried.
    failed = ae.wait(lambda e: isinstance(e, ev.ConnectFailed) and e.kind != "refused", timeout=10)
    assert failed.kind == "tls_changed" and failed.retry_in is None
    assert (failed.pinned, failed.fingerprint) == (old, srv2.fingerprint)
    assert all(e.retry_in is not None for e in ae.of(ev.ConnectFailed) if e.kind == "refused")
    assert isinstance(ae.next(), ev.Closed)
    probe = settle(srv2, port, live=1)
    assert not [f for f in until_pong(watcher) if f.get("nick") == "ann"], "the refused client joined"
    assert len(ae.of(ev.Connected)) == 1
    watcher.close()
    probe.close()


# -- reconnect over TLS --------------------------------------------------------------

def test_server_restart_over_tls_resumes_exactly_once(make_server, tmp_path, clients):
    db = str(tmp_path / "restart.db")
    srv = make_server(tls=True, db=db, rate_limit=0)
    port = srv.port
    a, ae = clients(port, "ann", backoff=Backoff(first=1.5, base=0.2, cap=0.4, rng=lambda: 1.0))
    assert ae.wait(ev.Connected).first_use
    before = a.say("before the restart")
    ae.wait(lambda e: isinstance(e, ev.Acked) and e.ref == before)

    srv.shutdown()
    assert ae.wait(ev.Disconnected).retry_in is not None
    offline = [a.say("typed while offline 1"), a.say("typed while offline 2")]

    srv2 = make_server(tls=True, port=port, db=db, rate_limit=0)
    bob = TlsLineClient(port)
    bob.hello("bob")
    bob.send({"type": "say", "text": "said while ann was away", "ref": "b1"})
    bob.recv_type("message")

    back = ae.wait(ev.Connected, timeout=10)
    assert back.resumed and back.fingerprint == srv2.fingerprint and back.first_use is False
    assert a.flush(5)
    got = [bob.recv_type("message")["text"] for _ in range(2)]
    assert got == ["typed while offline 1", "typed while offline 2"]
    # Everything ann sent was acknowledged, so the server has dealt with it:
    # one round trip of bob's shows nothing more was delivered.
    assert not [f for f in until_pong(bob) if f["type"] == "message"]
    ae.drain(0)
    assert [e.ref for e in ae.of(ev.Acked)] == [before] + offline
    texts = _texts(ae.seen)
    for t in ("before the restart", "said while ann was away", "typed while offline 1",
              "typed while offline 2"):
        assert texts.count(t) == 1, (t, texts)
    bob.close()


# -- the wrong layer, broken handshakes ------------------------------------------------

def test_tls_client_on_a_plain_server_is_told_to_turn_tls_off(make_server, clients):
    srv = make_server(rate_limit=0)
    a, ae = clients(srv.port, "ann")
    failed = ae.wait(ev.ConnectFailed)
    assert failed.kind == "tls" and failed.retry_in is None
    assert "does not use encryption" in failed.message and "untick" in failed.message
    assert isinstance(ae.next(), ev.Closed)
    assert PinStore().get("127.0.0.1", srv.port) is None


def test_plain_client_on_a_tls_server_is_told_to_turn_tls_on(make_server, clients):
    srv = make_server(tls=True, rate_limit=0)
    a, ae = clients(srv.port, "ann", tls=False)
    failed = ae.wait(ev.ConnectFailed)
    assert failed.kind == "tls" and failed.retry_in is None
    assert "requires encryption" in failed.message and "tick the TLS box" in failed.message
    assert isinstance(ae.next(), ev.Closed)


def _listener(greeting: bytes | None):
    """A port that accepts, says ``greeting`` (or nothing) and stays open.
    Returns (port, close(), the accepted sockets)."""
    lsock = socket.create_server(("127.0.0.1", 0))
    lsock.settimeout(0.1)
    held, stop = [], threading.Event()

    def run():
        while not stop.is_set():
            try:
                c, _ = lsock.accept()
            except OSError:
                continue
            held.append(c)
            if greeting:
                c.sendall(greeting)
    t = threading.Thread(target=run, name="test-listener", daemon=True)
    t.start()

    def close():
        stop.set()
        t.join(2)
        for c in held:
            c.close()
        lsock.close()
    return lsock.getsockname()[1], close, held


def test_a_server_speaking_something_else_fails_the_handshake_clearly(clients):
    port, close, _ = _listener(b"SSH-2.0-OpenSSH_9.2\r\n" + b"x" * 200)
    try:
        a, ae = clients(port, "ann")
        failed = ae.wait(ev.ConnectFailed)
        assert failed.kind == "tls" and failed.retry_in is None
        assert "handshake" in failed.message and "--tls" in failed.message
    finally:
        close()


def test_a_plain_natter_greeting_means_no_encryption(clients):
    port, close, _ = _listener(protocol.encode({"type": "notice", "text": "hi"}))
    try:
        a, ae = clients(port, "ann")
        failed = ae.wait(ev.ConnectFailed)
        assert failed.kind == "tls" and "does not use encryption" in failed.message
    finally:
        close()


def test_a_silent_handshake_times_out_and_close_interrupts_it(clients):
    port, close, held = _listener(None)
    try:
        a, ae = clients(port, "ann", handshake_timeout=0.5)
        failed = ae.wait(ev.ConnectFailed)
        assert failed.kind == "timeout" and "TLS" in failed.message and failed.retry_in is None
        b, be = clients(port, "bob", handshake_timeout=30)
        wait_until(lambda: len(held) == 2, what="bob's connection to be accepted")
        # Its handshake would wait 30 s for the silent server: close() ends it.
        assert b.close(timeout=3)
        assert be.wait(ev.Closed).reason == "closed"
    finally:
        close()


def test_nothing_listening_with_tls_is_still_refused(clients):
    a, ae = clients(free_port(), "ann")
    failed = ae.wait(ev.ConnectFailed)
    assert failed.kind == "refused" and failed.retry_in is None


# -- the transport itself ---------------------------------------------------------------

def test_transport_waits_for_whole_records_and_reports_the_end(tmp_path):
    cert, key = tls.ensure_certificate(str(tmp_path / "t"))
    channel = tls.TlsChannel(tls.server_context(cert, key))   # the server's own engine
    mine, theirs = socket.socketpair()
    theirs.settimeout(5)
    transport = TlsTransport(mine, client_context())
    errors = []

    def serve_handshake():
        try:
            while not channel.handshaken:
                data = theirs.recv(65536)
                if not data:
                    return
                _, kick = channel.receive(data)
                if kick or channel.handshaken:
                    theirs.sendall(channel.encrypt([]))
        except Exception as e:        # reported below
            errors.append(e)
    t = threading.Thread(target=serve_handshake, name="test-tls-peer", daemon=True)
    t.start()
    transport.handshake(time.monotonic() + 5, lambda: False)
    t.join(5)
    assert not errors and channel.handshaken
    assert transport.fingerprint == tls.cert_fingerprint(cert)

    record = channel.encrypt([b'{"type":"ping"}\n'])
    theirs.sendall(record[:7])
    with pytest.raises(BlockingIOError):
        transport.recv()
    theirs.sendall(record[7:])
    assert transport.recv() == b'{"type":"ping"}\n'

    transport.sendall(b'{"type":"pong"}\n')
    got = b""
    while not got:
        got, _ = channel.receive(theirs.recv(65536))
    assert got == b'{"type":"pong"}\n'

    theirs.close()
    assert transport.recv() == b""
    transport.close()
