"""The network client against the real in-process server over loopback.

Chat between two ChatClients, failures classified, the server restarted
under a connected client (same port, same history file), an acknowledgement
lost in a drop, a dead connection noticed by the heartbeat, and close()
leaving no thread behind. No Tk.
"""
from __future__ import annotations

import socket
import threading

import pytest

from chatgui.net import events as ev
from chatgui.net.backoff import Backoff
from server import protocol
from tests.chatclients import until_pong
from tests.netclient import LineClient
from tests.servertools import wait_until


@pytest.fixture
def clients(make_chat_clients):
    """make(port, nick, start=True, **kw) -> (ChatClient, Events); see conftest."""
    return make_chat_clients


def _client_threads(before: set) -> list:
    """Client threads alive now that were not before (the server's own
    reader threads end on their own schedule and are not counted)."""
    return [t for t in set(threading.enumerate()) - before if t.name.startswith("net-")]


def free_port() -> int:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def _texts(events, kind=protocol.Message) -> list:
    out = []
    for e in events:
        if isinstance(e, ev.Backlog):
            out += [m.text for m in e.messages if isinstance(m, kind)]
        elif isinstance(e, kind):
            out.append(e.text)
    return out


# -- chatting ---------------------------------------------------------------

def test_two_clients_chat_dm_and_rename(server, clients):
    a, ae = clients(server.port, "alice")
    first = ae.next()
    assert first == ev.Connecting("127.0.0.1", server.port, 1)
    con = ae.wait(ev.Connected)
    assert con.nick == "alice" and con.users == ("alice",) and not con.resumed
    assert ae.caught_up() == []
    b, be = clients(server.port, "bob")
    be.wait(ev.Connected)
    assert ae.wait(protocol.Joined).nick == "bob"

    ref = a.say("hello bob")
    mine = ae.wait(protocol.Message)
    assert (mine.text, mine.sender, mine.ref) == ("hello bob", "alice", ref)
    assert ae.next() == ev.Acked(ref, mine.id)
    theirs = be.wait(protocol.Message)
    assert theirs.id == mine.id and theirs.ref is None

    dref = b.dm("alice", "psst")
    got = ae.wait(protocol.Direct)
    assert (got.sender, got.to, got.text) == ("bob", "alice", "psst")
    sent = be.wait(protocol.Direct)
    assert sent.ref == dref and be.next() == ev.Acked(dref, sent.id)

    nref = a.set_nick("alicia")
    assert ae.wait(protocol.Renamed) == protocol.Renamed("alice", "alicia")
    assert ae.next() == ev.Acked(nref, None)
    assert a.nick == "alicia"
    assert be.wait(protocol.Renamed) == protocol.Renamed("alice", "alicia")
    # renaming to the nick one has is acknowledged at once (the server ignores it)
    same = a.set_nick("alicia")
    assert ae.wait(ev.Acked) == ev.Acked(same, None)
    assert a.pending() == 0 and b.pending() == 0


def test_action_text_travels_as_a_plain_say(server, clients):
    from chatgui.app import commands
    a, ae = clients(server.port, "ann")
    ae.wait(ev.Connected)
    a.say(commands.parse("/me waves").wire)
    m = ae.wait(protocol.Message)
    assert commands.action_body(m.text) == "waves"


def test_refusals_local_and_from_the_server(server, clients, connect):
    connect("taken")
    a, ae = clients(server.port, "ann")
    ae.wait(ev.Connected)
    r = a.dm("nobody", "hi")
    assert ae.wait(ev.Refused) == ev.Refused(r, "no_such_user", "Nobody called 'nobody' is online.")
    r = a.set_nick("taken")
    refused = ae.wait(ev.Refused)
    assert refused.ref == r and refused.code == "nick_taken"
    r = a.say("   ")
    assert ae.wait(ev.Refused).ref == r
    r = a.say("escape \x1b[2J")
    assert ae.wait(ev.Refused).code == "bad_text"
    r = a.say("x" * (protocol.MAX_LINE + 10))
    assert ae.wait(ev.Refused) == ev.Refused(r, "too_long", ae.seen[-1].message)
    r = a.set_nick("no spaces")
    assert ae.wait(ev.Refused).code == "bad_nick"
    assert a.pending() == 0
    assert a.state == "online"     # none of that cost the connection


def test_said_before_the_first_welcome_is_sent_after_it(server, clients, connect):
    bob = connect("bob")
    a, ae = clients(server.port, "ann", start=False)
    r1 = a.say("early one")
    r2 = a.dm("bob", "early dm")
    a.start()
    assert a.flush(5)
    assert bob.recv_type("message")["text"] == "early one"
    assert bob.recv_type("dm")["text"] == "early dm"
    ae.drain(0)         # each Acked is queued before flush() sees the outbox empty
    assert {e.ref for e in ae.of(ev.Acked)} == {r1, r2}


# -- failures, classified ------------------------------------------------------

def test_nothing_listening_is_refused_and_not_retried(clients):
    port = free_port()
    a, ae = clients(port, "ann")
    assert ae.next() == ev.Connecting("127.0.0.1", port, 1)
    failed = ae.next()
    assert isinstance(failed, ev.ConnectFailed)
    assert failed.kind == "refused" and failed.retry_in is None
    assert "server running" in failed.message
    assert isinstance(ae.next(), ev.Closed)
    assert a.close(2) and a.state == "closed"
    assert ae.drain(0) == []        # the threads have ended: Closed was the last event


def test_nick_taken(server, clients, connect):
    connect("ann")
    a, ae = clients(server.port, "ANN")
    failed = ae.wait(ev.ConnectFailed)
    assert failed.kind == "nick_taken" and failed.retry_in is None and "pick another" in failed.message
    assert isinstance(ae.next(), ev.Closed)


def test_wrong_and_right_password(make_server, clients):
    srv = make_server(password="s3cret", rate_limit=0)
    a, ae = clients(srv.port, "ann", password="guess")
    failed = ae.wait(ev.ConnectFailed)
    assert failed.kind == "auth_failed" and failed.retry_in is None and "Wrong room password" in failed.message
    b, be = clients(srv.port, "bob")
    assert "needs a password" in be.wait(ev.ConnectFailed).message
    c, ce = clients(srv.port, "cat", password="s3cret")
    assert ce.wait(ev.Connected).nick == "cat"


def test_server_full(make_server, clients):
    srv = make_server(max_clients=1, rate_limit=0)
    first = LineClient(srv.port)
    first.hello("one")
    try:
        a, ae = clients(srv.port, "two")
        failed = ae.wait(ev.ConnectFailed)
        assert failed.kind == "server_full" and failed.retry_in is None
    finally:
        first.close()


def test_bad_nick_is_refused_without_touching_the_network(clients):
    a, ae = clients(free_port(), "not ok!")
    failed = ae.next()
    assert failed.kind == "bad_nick" and failed.retry_in is None
    assert isinstance(ae.next(), ev.Closed)


def _silent_listener():
    """A port that accepts connections and never says anything."""
    lsock = socket.create_server(("127.0.0.1", 0))
    held = []
    stop = threading.Event()

    def accept():
        lsock.settimeout(0.1)
        while not stop.is_set():
            try:
                held.append(lsock.accept()[0])
            except OSError:
                continue

    t = threading.Thread(target=accept, name="test-silent", daemon=True)
    t.start()

    def close():
        stop.set()
        t.join(2)
        for s in held:
            s.close()
        lsock.close()
    return lsock.getsockname()[1], close, held


def test_a_server_that_never_welcomes_times_out(clients):
    port, close, _ = _silent_listener()
    try:
        a, ae = clients(port, "ann", handshake_timeout=0.5)
        failed = ae.wait(ev.ConnectFailed)
        assert failed.kind == "timeout" and "Natter server" in failed.message and failed.retry_in is None
    finally:
        close()


def test_not_a_natter_server_is_a_protocol_failure(clients):
    lsock = socket.create_server(("127.0.0.1", 0))

    def banner():
        s, _ = lsock.accept()
        s.settimeout(10)
        s.sendall(b"SSH-2.0-OpenSSH_9.2\r\n")
        try:
            while s.recv(1024):     # hold the line until the client hangs up
                pass
        except OSError:
            pass
        s.close()
    t = threading.Thread(target=banner, daemon=True)
    t.start()
    try:
        a, ae = clients(lsock.getsockname()[1], "ann")
        failed = ae.wait(ev.ConnectFailed)
        assert failed.kind == "protocol" and "does not speak the Natter protocol" in failed.message
    finally:
        t.join(2)
        lsock.close()


# -- the server restarted under a connected client ------------------------------

def test_server_restart_resume_exactly_once(make_server, tmp_path, clients):
    db = str(tmp_path / "restart.db")
    srv = make_server(db=db, rate_limit=0)
    port = srv.port
    # The first retry comes 1.5 s after the drop (later ones quickly), which
    # normally lets bob post before ann is back; if the machine is so slow
    # that ann wins, bob's message reaches her live instead: still once.
    a, ae = clients(port, "ann", backoff=Backoff(first=1.5, base=0.2, cap=0.4, rng=lambda: 1.0))
    ae.wait(ev.Connected)
    before = a.say("before the restart")
    ae.wait(lambda e: e == ev.Acked(before, e.id) if isinstance(e, ev.Acked) else False)

    srv.shutdown()
    drop = ae.wait(ev.Disconnected)
    assert drop.retry_in is not None and "shutting down" in drop.reason
    offline = [a.say("typed while offline 1"), a.say("typed while offline 2")]
    dm_ref = a.dm("ann", "a note to self while offline")

    srv2 = make_server(port=port, db=db, rate_limit=0)
    assert srv2.port == port
    bob = LineClient(port)
    bob.hello("bob")
    bob.send({"type": "say", "text": "said while ann was away", "ref": "b1"})
    bob.recv_type("message")

    back = ae.wait(ev.Connected, timeout=10)
    assert back.resumed and back.nick == "ann"
    ae.caught_up(10)
    assert a.flush(5)

    # bob gets ann's offline messages once each, in order
    got = [bob.recv_type("message")["text"] for _ in range(2)]
    assert got == ["typed while offline 1", "typed while offline 2"]
    # Everything ann sent was acknowledged, so the server has dealt with it:
    # one round trip of bob's shows nothing more was delivered.
    assert not [f for f in until_pong(bob) if f["type"] == "message"]
    ae.drain(0)
    acked = [e.ref for e in ae.of(ev.Acked)]
    assert acked == [before] + offline + [dm_ref]
    texts = _texts(ae.seen)
    assert texts.count("before the restart") == 1
    assert texts.count("said while ann was away") == 1
    assert texts.count("typed while offline 1") == 1 and texts.count("typed while offline 2") == 1
    assert _texts(ae.seen, protocol.Direct) == ["a note to self while offline"]
    ids = [e.id for e in ae.seen if isinstance(e, (protocol.Message, protocol.Direct))]
    ids += [m.id for e in ae.of(ev.Backlog) for m in e.messages]
    assert len(ids) == len(set(ids))
    # and the server stored each exactly once
    check = LineClient(port)
    history = [m["text"] for m in check.hello("check")["history"]]
    assert history.count("typed while offline 1") == 1 and history.count("typed while offline 2") == 1
    check.close()
    bob.close()


def test_retry_now_cuts_the_backoff_short_and_the_backlog_has_what_was_missed(make_server, tmp_path, clients):
    db = str(tmp_path / "h.db")
    srv = make_server(db=db, rate_limit=0)
    a, ae = clients(srv.port, "ann", backoff=Backoff(first=60.0, rng=lambda: 1.0))
    ae.wait(ev.Connected)
    port = srv.port
    srv.shutdown()
    assert ae.wait(ev.Disconnected).retry_in == 60.0
    make_server(port=port, db=db, rate_limit=0)
    bob = LineClient(port)
    bob.hello("bob")
    bob.send({"type": "say", "text": "while ann waits", "ref": "b1"})
    missed_id = bob.recv_type("message")["id"]
    a.retry_now()
    # Within the waits' 5 s, not the 60 s the backoff would have waited.
    assert ae.wait(ev.Connecting).attempt == 1
    assert ae.wait(ev.Connected).resumed
    assert [(m.id, m.text) for m in ae.caught_up()] == [(missed_id, "while ann waits")]
    bob.close()


# -- an acknowledgement lost in a drop: a proxy that can freeze and cut -------------

class Proxy:
    """Forwards 127.0.0.1:port to the server; can stop passing the server's
    bytes to the client (they are lost, and counted in ``dropped``) and cut
    every connection. Keeps a copy of every byte the client sent (``sent``)."""

    def __init__(self, upstream_port: int):
        self.upstream = upstream_port
        self.sent = bytearray()
        self.dropped = 0
        self._lock = threading.Lock()
        self.lsock = socket.create_server(("127.0.0.1", 0))
        self.lsock.settimeout(0.1)
        self.port = self.lsock.getsockname()[1]
        self.pairs: list = []          # [client_sock, server_sock, frozen Event]
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._accept, name="test-proxy", daemon=True)]
        self.threads[0].start()

    def _accept(self):
        while not self.stop.is_set():
            try:
                c, _ = self.lsock.accept()
            except OSError:
                continue
            s = socket.create_connection(("127.0.0.1", self.upstream))
            pair = [c, s, threading.Event()]
            self.pairs.append(pair)
            for src, dst, frozen in ((c, s, None), (s, c, pair[2])):
                t = threading.Thread(target=self._pump, args=(src, dst, frozen), name="test-proxy", daemon=True)
                t.start()
                self.threads.append(t)

    def _pump(self, src, dst, frozen):
        try:
            while True:
                data = src.recv(65536)
                if not data:
                    break
                if frozen is None:              # client -> server
                    with self._lock:
                        self.sent += data
                elif frozen.is_set():
                    with self._lock:
                        self.dropped += len(data)
                    continue
                dst.sendall(data)
        except OSError:
            pass
        for sock in (src, dst):
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def freeze(self):
        """What the server sends on the current connections is lost from now on."""
        for pair in self.pairs:
            pair[2].set()

    def cut(self):
        for c, s, _ in self.pairs:
            for sock in (c, s):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def close(self):
        self.stop.set()
        self.cut()
        for t in self.threads:
            t.join(2)
        for c, s, _ in self.pairs:
            c.close()
            s.close()
        self.lsock.close()


@pytest.fixture
def proxy(server):
    p = Proxy(server.port)
    yield p
    p.close()


def test_ack_lost_in_a_drop_is_recovered_from_the_replay_not_resent(server, proxy, clients, connect):
    bob = connect("bob")
    a, ae = clients(proxy.port, "ann", backoff=Backoff(first=0.2, rng=lambda: 1.0))
    ae.wait(ev.Connected)
    bob.recv_type("joined")
    proxy.freeze()
    ref = a.say("did this arrive?")
    assert bob.recv_type("message")["text"] == "did this arrive?"   # the server has it
    wait_until(lambda: proxy.dropped > 0, what="the acknowledgement to be lost")
    assert a.pending() == 1                                          # so ann never heard
    proxy.cut()
    ae.wait(ev.Disconnected)
    back = ae.wait(ev.Connected)
    assert back.resumed
    backlog = ae.caught_up()
    assert [(m.text, m.ref) for m in backlog] == [("did this arrive?", ref)]
    assert ae.of(ev.Acked) == [ev.Acked(ref, backlog[0].id)]
    assert a.pending() == 0
    with pytest.raises(TimeoutError):
        bob.recv_type("message", timeout=0.5)
    assert [f["text"] for f in bob.frames if f["type"] == "message"] == ["did this arrive?"]


def test_silence_is_a_dead_connection_and_it_reconnects(server, proxy, clients):
    a, ae = clients(proxy.port, "ann", ping_interval=0.3, ping_timeout=0.3,
                    backoff=Backoff(first=0.1, rng=lambda: 1.0))
    ae.wait(ev.Connected)
    proxy.freeze()
    drop = ae.wait(ev.Disconnected, timeout=5)
    assert "No answer from the server" in drop.reason
    assert ae.wait(ev.Connected).resumed


def test_server_pings_are_answered(make_server, clients):
    # The server pings after idle_timeout/2 of silence (checked once a second)
    # and drops at idle_timeout unless answered: a second pong means the
    # first ping was answered in time.
    srv = make_server(rate_limit=0, idle_timeout=3.0)
    relay = Proxy(srv.port)
    try:
        a, ae = clients(relay.port, "ann")     # the client's own pings are 30 s away
        ae.wait(ev.CaughtUp)
        wait_until(lambda: relay.sent.count(b'{"type":"pong"}') >= 2, timeout=15, what="two pongs")
        assert a.state == "online" and not ae.of(ev.Disconnected) and ae.drain(0) == []
    finally:
        relay.close()


# -- closing ----------------------------------------------------------------------

def test_close_says_bye_ends_threads_and_closes_once(server, clients, connect):
    bob = connect("bob")
    before = set(threading.enumerate())
    a, ae = clients(server.port, "ann")
    ae.wait(ev.CaughtUp)
    assert set(a.threads) <= set(threading.enumerate())
    assert {t.name for t in a.threads} == {"net-reader", "net-writer"}
    assert a.close(timeout=3) is True
    assert not _client_threads(before)
    assert bob.recv_type("left") == {"type": "left", "room": "lobby", "nick": "ann", "reason": "quit"}
    rest = ae.drain(0)                           # the threads have ended
    assert rest == [ev.Closed("closed")]
    assert a.close() is True                     # idempotent
    r = a.say("too late")                        # still returns a ref; nothing more comes
    assert r and ae.drain(0) == []


def test_close_while_waiting_to_reconnect_and_while_handshaking(make_server, clients):
    srv = make_server(rate_limit=0)
    a, ae = clients(srv.port, "ann", backoff=Backoff(first=60.0, rng=lambda: 1.0))
    ae.wait(ev.Connected)
    srv.shutdown()
    ae.wait(ev.Disconnected)
    assert a.close(timeout=3)           # ended in 3 s, not after the 60 s wait
    assert isinstance(ae.wait(ev.Closed), ev.Closed)

    port, close_listener, held = _silent_listener()
    try:
        b, be = clients(port, "bob", handshake_timeout=30)
        wait_until(lambda: held, what="bob's connection to be accepted")
        assert b.close(timeout=3)       # ended in 3 s, not after the 30 s handshake timeout
        assert be.drain(0)[-1] == ev.Closed("closed")
    finally:
        close_listener()


def test_close_before_start(clients):
    a, ae = clients(free_port(), "ann", start=False)
    assert a.close()
    assert ae.drain(0) == [ev.Closed("closed")]
    a.start()                                   # too late: nothing happens
    assert ae.drain(0) == [] and not any(t.is_alive() or t.ident for t in a.threads)


def test_many_clients_leave_no_threads(server, clients):
    before = set(threading.enumerate())
    made = [clients(server.port, f"user{i}") for i in range(8)]
    for c, e in made:
        e.wait(ev.Connected)
    for c, e in made:
        c.close(timeout=0)                      # signal all, then wait for all
    for c, e in made:
        e.wait(ev.Closed)
        for t in c.threads:
            t.join(3)
    assert not _client_threads(before)


def test_nick_taken_on_a_reconnect_is_retried_and_reconnect_false_is_not(make_server, tmp_path, clients):
    db = str(tmp_path / "h.db")
    srv = make_server(db=db, rate_limit=0)
    port = srv.port
    a, ae = clients(port, "ann", backoff=Backoff(first=60.0, base=60.0, cap=60.0, rng=lambda: 1.0))
    b, be = clients(port, "bob", reconnect=False)
    ae.caught_up()
    be.caught_up()
    srv.shutdown()
    assert ae.wait(ev.Disconnected).retry_in == 60.0
    gone = be.wait(ev.Disconnected)
    assert gone.retry_in is None and be.next() == ev.Closed(gone.reason)

    srv2 = make_server(port=port, db=db, rate_limit=0)
    squatter = LineClient(port)
    squatter.hello("Ann")                      # someone else took the nick meanwhile
    a.retry_now()
    failed = ae.wait(ev.ConnectFailed)
    assert failed.kind == "nick_taken" and failed.retry_in == 60.0   # still trying
    squatter.close()
    wait_until(lambda: "ann" not in srv2.hub.chat.nicks, what="the server to free the nick")
    a.retry_now()
    back = ae.wait(ev.Connected)
    assert back.nick == "ann" and back.resumed


def test_a_failing_writer_stops_the_client_with_a_reason(server, clients, caplog):
    a, ae = clients(server.port, "ann")
    ae.caught_up()

    def broken():
        raise RuntimeError("boom")
    a._next_batch = broken          # a bug in the writer thread, simulated
    a.say("this wakes the writer")
    gone = ae.wait(ev.Disconnected)
    assert gone.retry_in is None and "boom" in gone.reason
    assert ae.next() == ev.Closed(gone.reason)
    assert a.close(2)
    assert "net-writer failed" in caplog.text


def test_text_from_tk_with_surrogate_halves_is_sent_as_the_real_character(server, clients, connect):
    bob = connect("bob")
    a, ae = clients(server.port, "ann", password="pw\ud83d")   # ignored by a room without one
    ae.caught_up()
    a.say("smile \ud83d\ude00")
    a.dm("bob", "\ud83d\udc4d")
    assert a.flush(5)
    assert bob.recv_type("message")["text"] == "smile \U0001F600"
    assert bob.recv_type("dm")["text"] == "\U0001F44D"
