"""Limits over real sockets: password, max clients, per-address cap, flood
control, idle peers, slow readers."""
from __future__ import annotations

import socket
import threading
import time
import types

import pytest

from server import hub as hub_mod
from server import protocol as p
from server.doors.jsonl import Connection
from tests.netclient import LineClient
from tests.servertools import (chat_works, expect, expect_error, messages, ping_works, server_conn,
                               wait_until)

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def clients():
    made = []

    def make(port, **kw):
        c = LineClient(port, **kw)
        made.append(c)
        return c
    yield make
    for c in made:
        c.close()


# --------------------------------------------------------------------------
# password


@pytest.mark.parametrize("extra", [{}, {"password": "wrong"}, {"password": ""}, {"password": "S3CRET"},
                                   {"password": "s3cret "}])
def test_wrong_or_missing_password_is_auth_failed_and_never_joins(make_server, clients, extra):
    srv = make_server(rate_limit=0, password="s3cret", handshake_timeout=1.0)
    alice = clients(srv.port)
    alice.hello("alice", password="s3cret")
    c = clients(srv.port)
    c.send({"type": "hello", "nick": "mallory", **extra})
    expect_error(c, p.AUTH_FAILED)
    if not extra:
        # It may try again after a delay, but only within the handshake time.
        expect_error(c, p.TIMEOUT, timeout=5)
        assert c.closed_by_server(4)
    assert alice.nothing_for(0.2)           # mallory never joined
    chat_works(alice)


def test_right_password_works_and_is_not_echoed(make_server, clients):
    srv = make_server(rate_limit=0, password="pä ss")
    a = clients(srv.port)
    w = a.hello("alice", password="pä ss")
    assert "pä ss" not in repr(w)
    b = clients(srv.port)
    b.hello("bob", password="pä ss")
    expect(a, "joined", nick="bob")
    chat_works(a, b)


def test_second_hello_with_a_wrong_password_is_auth_failed_even_when_welcomed(make_server, clients):
    srv = make_server(rate_limit=0, password="pw")
    a, b = clients(srv.port), clients(srv.port)
    a.hello("alice", password="pw")
    b.hello("bob", password="pw")
    expect(a, "joined")
    b.send({"type": "hello", "nick": "bob"})             # every hello is checked (docs/protocol.md)
    expect_error(b, p.AUTH_FAILED)
    expect(a, "left", nick="bob", reason="auth failed")
    b.close()
    a.send({"type": "hello", "nick": "alice", "password": "pw"})
    assert expect_error(a, p.ALREADY_WELCOMED)["code"] == "already_welcomed"


def test_no_password_configured_ignores_a_given_one(connect):
    assert connect().hello("alice", password="anything")["nick"] == "alice"


# --------------------------------------------------------------------------
# max clients


def test_max_clients_refuses_with_server_full(make_server, clients):
    srv = make_server(rate_limit=0, max_clients=2)
    a, b = clients(srv.port), clients(srv.port)
    a.hello("a")
    b.hello("b")
    expect(a, "joined")
    c = clients(srv.port)
    e = expect_error(c, p.SERVER_FULL)             # before any hello
    assert "2" in e["message"]
    assert c.closed_by_server(4)
    c.close()
    chat_works(a, b)
    b.send({"type": "bye"})
    expect(a, "left", nick="b")
    assert b.closed_by_server(4)
    b.close()
    wait_until(lambda: len(srv.hub.conns) == 1, what="the server to forget b")
    d = clients(srv.port)
    d.hello("d")                                   # room again
    expect(a, "joined", nick="d")


def test_unwelcomed_connections_count_toward_max_clients(make_server, clients):
    srv = make_server(rate_limit=0, max_clients=1)
    idle = clients(srv.port)
    server_conn(srv, idle)
    c = clients(srv.port)
    expect_error(c, p.SERVER_FULL)
    assert idle.hello("idle")["users"] == ["idle"]


# --------------------------------------------------------------------------
# per-address cap. Tests may only send traffic to loopback, which the cap
# exempts; so the server's hub is handed Connections whose address claims
# to be another host and whose socket is one end of a socketpair. The hub,
# reader and outbox code is the real one; only the peer address is made up.


def fake_peer(srv, ip: str, port: int):
    """Attach a client 'from' ip to the running server; returns our end."""
    ours, theirs = socket.socketpair()
    ours.settimeout(5)
    conn = Connection(theirs, (ip, port), srv.hub, srv.config)
    srv.hub.post(conn, [hub_mod.CONNECTED])
    conn.thread.start()
    return ours


def read_frame(sock: socket.socket) -> dict:
    buf = b""
    while not buf.endswith(b"\n"):
        data = sock.recv(1)
        if not data:
            raise EOFError
        buf += data
    return p.decode_frame(buf[:-1])


def hello_over(sock, nick) -> dict:
    sock.sendall(p.encode({"type": "hello", "nick": nick}))
    return read_frame(sock)


def closed(sock) -> bool:
    try:
        while True:
            if not sock.recv(4096):
                return True
    except ConnectionResetError:
        return True
    except socket.timeout:
        return False


def test_per_address_cap_refuses_the_extra_connection(make_server):
    srv = make_server(rate_limit=0, max_per_ip=2)
    a = fake_peer(srv, "192.0.2.10", 1001)
    b = fake_peer(srv, "192.0.2.10", 1002)
    other = fake_peer(srv, "198.51.100.7", 1003)       # another address: its own count
    try:
        assert hello_over(a, "a")["type"] == "welcome"
        assert hello_over(b, "b")["type"] == "welcome"
        assert hello_over(other, "other")["type"] == "welcome"
        c = fake_peer(srv, "192.0.2.10", 1004)
        f = read_frame(c)
        assert f["type"] == "error" and f["code"] == p.TOO_MANY_CONNECTIONS and "2" in f["message"]
        assert closed(c)
        c.close()
        b.close()                                       # one leaves: the address may connect again
        wait_until(lambda: srv.hub.per_ip.get("192.0.2.10") == 1, what="the count to drop")
        d = fake_peer(srv, "192.0.2.10", 1005)
        assert hello_over(d, "d")["type"] == "welcome"
        d.close()
    finally:
        for s in (a, b, other):
            s.close()


@pytest.mark.parametrize("ip", ["127.0.0.1", "127.8.9.10", "::1", "::ffff:127.0.0.1"])
def test_loopback_is_exempt_from_the_per_address_cap(make_server, ip):
    srv = make_server(rate_limit=0, max_per_ip=1)
    socks = [fake_peer(srv, ip, 2000 + i) for i in range(4)]
    try:
        for i, s in enumerate(socks):
            assert hello_over(s, f"u{i}")["type"] == "welcome"
    finally:
        for s in socks:
            s.close()


@pytest.mark.parametrize("ip", ["::ffff:10.0.0.1", "2001:db8::1", "10.127.0.1"])
def test_non_loopback_lookalikes_are_capped(make_server, ip):
    srv = make_server(rate_limit=0, max_per_ip=1)
    a = fake_peer(srv, ip, 3000)
    b = fake_peer(srv, ip, 3001)
    try:
        assert hello_over(a, "a")["type"] == "welcome"
        f = read_frame(b)
        assert f["code"] == p.TOO_MANY_CONNECTIONS
    finally:
        a.close()
        b.close()


def test_per_address_cap_zero_means_no_cap(make_server):
    srv = make_server(rate_limit=0, max_per_ip=0)
    socks = [fake_peer(srv, "192.0.2.99", 4000 + i) for i in range(5)]
    try:
        for i, s in enumerate(socks):
            assert hello_over(s, f"n{i}")["type"] == "welcome"
    finally:
        for s in socks:
            s.close()


def test_real_loopback_clients_are_not_capped(make_server, clients):
    srv = make_server(rate_limit=0, max_per_ip=1)
    cs = [clients(srv.port) for _ in range(3)]
    for i, c in enumerate(cs):
        assert c.hello(f"l{i}")["nick"] == f"l{i}"
    chat_works(cs[2])


# --------------------------------------------------------------------------
# flood control


@pytest.mark.timeout(40)
def test_rate_limit_delays_a_flood_and_loses_nothing(make_server, clients):
    rate, burst, n = 20.0, 2.0, 22
    srv = make_server(rate_limit=rate, rate_burst=burst)
    alice, bob = clients(srv.port), clients(srv.port)
    alice.hello("alice")
    w = bob.hello("bob")
    assert w["limits"]["rate"] == rate and w["limits"]["burst"] == burst
    expect(alice, "joined")
    t = time.monotonic()
    alice.send_raw(b"".join(p.encode({"type": "say", "text": f"f{i}", "ref": f"r{i}"}) for i in range(n)))
    got = messages(bob, n)
    elapsed = time.monotonic() - t
    assert [m["text"] for m in got] == [f"f{i}" for i in range(n)]
    assert elapsed >= (n - burst) / rate * 0.8, elapsed
    frames = []
    while len([f for f in frames if f["type"] == "message"]) < n:
        frames.append(alice.recv())
    errors = [f for f in frames if f["type"] == "error"]
    assert [e["code"] for e in errors] == [p.RATE_LIMITED]           # told once, not per message
    assert "delayed" in errors[0]["message"]
    assert [f["ref"] for f in frames if f["type"] == "message"] == [f"r{i}" for i in range(n)]
    assert not any(f["type"] == "error" for f in bob.frames)
    ping_works(alice)


@pytest.mark.timeout(40)
def test_a_flood_delayed_longer_than_the_idle_timeout_is_not_dropped(make_server, clients):
    # 40 messages at 10/s take 4 s to let through, twice the idle timeout:
    # the server must not call its own slowing-down silence.
    srv = make_server(rate_limit=10.0, rate_burst=1.0, idle_timeout=2.0)
    alice, bob = clients(srv.port), clients(srv.port)
    alice.hello("alice")
    bob.hello("bob")
    expect(alice, "joined")
    alice.send_raw(b"".join(p.encode({"type": "say", "text": f"m{i}"}) for i in range(40)))
    got, others = [], []
    deadline = time.monotonic() + 30
    while len(got) < 40 and time.monotonic() < deadline:
        f = bob.recv(10)
        if f["type"] == "ping":
            bob.send({"type": "pong"})
        elif f["type"] == "message":
            got.append(f["text"])
        else:
            others.append(f)
    assert got == [f"m{i}" for i in range(40)]
    assert others == []
    codes = [f["code"] for f in alice.frames if f["type"] == "error"]
    assert codes == [] or set(codes) == {p.RATE_LIMITED}
    while True:                       # alice's own copies, and she is still in
        f = alice.recv()
        if f["type"] == "ping":
            alice.send({"type": "pong"})
        elif f["type"] == "error":
            assert f["code"] == p.RATE_LIMITED
        elif f["type"] == "message" and f["text"] == "m39":
            break
    alice.send({"type": "ping"})
    alice.recv_type("pong")


def test_pings_are_not_rate_limited(make_server, clients):
    srv = make_server(rate_limit=1.0, rate_burst=1.0)
    c = clients(srv.port)
    c.hello("c")
    t = time.monotonic()
    c.send_raw(p.encode({"type": "ping"}) * 20)
    for _ in range(20):
        expect(c, "pong")
    assert time.monotonic() - t < 8      # metered, 20 pings would take 19 s


def test_a_flooder_does_not_slow_the_others(make_server, clients):
    srv = make_server(rate_limit=5.0, rate_burst=1.0)
    flood, alice, bob = clients(srv.port), clients(srv.port), clients(srv.port)
    flood.hello("flood")
    alice.hello("alice")
    bob.hello("bob")
    expect(alice, "joined", nick="bob")
    flood.send_raw(b"".join(p.encode({"type": "say", "text": f"x{i}"}) for i in range(100)))  # 20 s of flood
    t = time.monotonic()
    alice.send({"type": "say", "text": "quick"})
    while True:
        m = bob.recv_type("message")
        if m["text"] == "quick":
            break
    assert time.monotonic() - t < 8


# --------------------------------------------------------------------------
# idle peers


@pytest.mark.timeout(40)
def test_idle_peer_is_pinged_then_dropped(make_server, clients):
    # The timer runs about once a second: with 4 s a ping leaves at least
    # a second to answer, even on a loaded machine.
    srv = make_server(rate_limit=0, idle_timeout=4.0)
    alice, quiet = clients(srv.port), clients(srv.port)
    alice.hello("alice")
    t = time.monotonic()                                 # quiet's last sign of life is after this
    quiet.hello("quiet")
    expect(alice, "joined")
    seen, stop = [], threading.Event()

    def alice_answers_pings():                           # on a thread: alice must never be late
        while not stop.is_set():
            try:
                f = alice.recv(0.1)
            except TimeoutError:
                continue
            seen.append(f)
            if f["type"] == "ping":
                alice.send({"type": "pong"})

    answerer = threading.Thread(target=alice_answers_pings, daemon=True)
    answerer.start()
    try:
        expect(quiet, "ping", timeout=8)                 # pinged at half the timeout
        assert time.monotonic() - t >= 2.0
        e = expect_error(quiet, p.TIMEOUT, timeout=8)    # then dropped
        assert "4" in e["message"]
        assert 4.0 <= time.monotonic() - t <= 15
        assert quiet.closed_by_server(4)
        # alice, who answers her pings, joined before quiet and is still in
        wait_until(lambda: any(f["type"] == "left" for f in seen), what="alice to hear quiet left")
    finally:
        stop.set()
        answerer.join(5)
    assert [f for f in seen if f["type"] not in ("ping",)] == [
        {"type": "left", "room": "lobby", "nick": "quiet", "reason": "timed out"}]
    assert any(f["type"] == "ping" for f in seen)
    chat_works(alice)


@pytest.mark.timeout(40)
def test_any_traffic_counts_as_alive(make_server, clients):
    srv = make_server(rate_limit=0, idle_timeout=3.0)
    c = clients(srv.port)
    c.hello("chatty")
    end = time.monotonic() + 4.5
    while time.monotonic() < end:                       # a ping of ours every 0.5 s, never a pong
        c.send({"type": "ping"})
        assert c.recv_type("pong")["type"] == "pong"
        time.sleep(0.5)
    ping_works(c)


# --------------------------------------------------------------------------
# slow readers


@pytest.mark.timeout(30)
def test_a_reader_that_stalls_is_dropped_and_the_others_get_everything(make_server, clients):
    # A small max_queue: the stalled client's queue passes it at once, so
    # the room waits for it (held) until it has taken nothing for
    # KEEPING_UP (half the slow timeout here), then goes on without it.
    srv = make_server(rate_limit=0, max_queue=64 * 1024, slow_timeout=1.0)
    alice, bob = clients(srv.port), clients(srv.port)
    slow = clients(srv.port, rcvbuf=4096)
    alice.hello("alice")
    bob.hello("bob")
    slow.hello("slow")
    expect(alice, "joined", nick="bob")
    expect(alice, "joined", nick="slow")
    expect(bob, "joined", nick="slow")
    # Shrink the server's send buffer for this one peer, or Linux would
    # buffer megabytes on loopback before the server's own queue fills.
    server_conn(srv, slow).sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    text = "z" * 1000
    batches, per_batch = 20, 10
    t = time.monotonic()
    for b in range(batches):
        alice.send_raw(p.encode({"type": "say", "text": text}) * per_batch)
        for c in (alice, bob):
            assert len(messages(c, per_batch)) == per_batch
    assert time.monotonic() - t < 20
    for c in (alice, bob):                                 # (messages() skips the left frame)
        left = [f for f in c.frames if f["type"] == "left"] or [c.recv_type("left", timeout=5)]
        assert left == [{"type": "left", "room": "lobby", "nick": "slow", "reason": "too slow"}]
    assert srv.hub.stats["dropped_slow"] == 1
    total = [f for f in bob.frames if f["type"] == "message"]
    assert len(total) == batches * per_batch
    assert slow.closed_by_server(5)                      # its socket is shut, whatever it had read
    chat_works(alice, bob)


@pytest.mark.timeout(30)
def test_a_reader_that_trickles_is_dropped_at_the_hard_cap_and_the_room_goes_on(make_server, clients,
                                                                                 monkeypatch):
    from server import delivery
    monkeypatch.setattr(delivery, "HOLD_MAX", 0.5)
    # It reads (so the slow timeout never fires) but far slower than the
    # room talks: the room waits for it HOLD_MAX at most, then its queue
    # grows until 16 x max_queue, and it goes.
    srv = make_server(rate_limit=0, max_queue=64 * 1024, slow_timeout=30)
    alice, bob = clients(srv.port), clients(srv.port)
    alice.hello("alice")
    bob.hello("bob")
    trickle = socket.socket()
    trickle.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    trickle.connect(("127.0.0.1", srv.port))
    trickle.sendall(p.encode({"type": "hello", "nick": "trickle"}))
    expect(alice, "joined", nick="bob")
    expect(alice, "joined", nick="trickle")
    expect(bob, "joined", nick="trickle")
    server_conn(srv, types.SimpleNamespace(sock=trickle)).sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    stop = threading.Event()

    def sip():
        trickle.settimeout(0.05)
        while not stop.is_set():
            try:
                if not trickle.recv(200):
                    return
            except socket.timeout:
                pass
            except OSError:
                return
            stop.wait(0.02)
    sipper = threading.Thread(target=sip, name="test-trickle", daemon=True)
    sipper.start()
    try:
        text = "t" * 10_000
        sent = 0
        while srv.hub.stats["dropped_slow"] == 0:
            assert sent < 400, "the trickling reader was never dropped"
            alice.send_raw(p.encode({"type": "say", "text": text}) * 10)
            sent += 10
            for c in (alice, bob):
                assert len(messages(c, 10)) == 10
        assert sent * 10_000 >= 16 * 64 * 1024             # it went at the cap, not before
        for c in (alice, bob):                             # (messages() skips the left frame)
            left = [f for f in c.frames if f["type"] == "left"] or [c.recv_type("left", timeout=5)]
            assert left == [{"type": "left", "room": "lobby", "nick": "trickle", "reason": "too slow"}]
        chat_works(alice, bob)
    finally:
        stop.set()
        sipper.join(5)
        trickle.close()
