"""The network client against a server the test plays by hand (loopback).

For what the real server does not do on purpose: flood the client with
pings while never reading, and answer a resume from another history (a new
``epoch``, ``"reset": true``). Each frame the client sends is read and
checked; each frame the server sends is written by the test.
"""
from __future__ import annotations

import socket
import threading

import pytest

from chatgui.net import events as ev
from chatgui.net.client import PING, PONG, ChatClient
from chatgui.net.backoff import Backoff
from server import protocol
from tests.played import Played, PlayedServer, played  # noqa: F401 (played is a fixture)

pytestmark = pytest.mark.timeout(60)


def welcome(nick="ann", history=(), last_id=0, **extra) -> dict:
    return {"type": "welcome", "nick": nick, "users": [nick], "history": list(history),
            "last_id": last_id, "session": "s1", **extra}


def message(id: int, text: str, sender="bob") -> dict:
    return protocol.message_frame(id, 1_700_000_000.0 + id, sender, text)


def texts(backlog: ev.Backlog) -> list:
    return [m.text for m in backlog.messages]


# -- a ping flood from a server that does not read ----------------------------------

def queued_control_bytes(client: ChatClient) -> int:
    """What waits for the client's writer besides the user's own items."""
    with client._cv:
        return sum(len(b) for b in client._control)


def test_a_ping_flood_from_a_server_that_never_reads_keeps_the_client_bounded(make_chat_clients, played,
                                                                            monkeypatch):
    # Small socket buffers on both sides so the client's writer blocks after
    # a few kilobytes of pongs, as it would after megabytes with defaults.
    real_connect = ChatClient._connect_sock

    def small_sndbuf(self, sock, addr, *rest):
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
        real_connect(self, sock, addr, *rest)
    monkeypatch.setattr(ChatClient, "_connect_sock", small_sndbuf)
    srv = played(rcvbuf=4096)
    a, ae = make_chat_clients(srv.port, "ann", ping_interval=300)
    conn = srv.accept()
    assert conn.recv()["type"] == "hello"
    conn.send(welcome())
    ae.wait(ev.Backlog)

    pings = 100_000                     # 1.6 MB of pings; the server reads none of the pongs
    peak = [0]
    flood_done = threading.Event()

    def flood():
        chunk = PING * 1000
        for _ in range(pings // 1000):
            conn.sock.sendall(chunk)
        conn.send(message(1, "end of the flood"))
        flood_done.set()
    t = threading.Thread(target=flood, name="test-ping-flood", daemon=True)
    t.start()
    while not flood_done.is_set():
        peak[0] = max(peak[0], queued_control_bytes(a))
    assert ae.wait(protocol.Message, timeout=30).text == "end of the flood"   # the client read every ping
    t.join(5)
    peak[0] = max(peak[0], queued_control_bytes(a))
    # At most one pong (and one ping of its own) waits, however many pings came.
    assert peak[0] <= len(PONG) + len(PING), f"{peak[0]} bytes of control frames queued"

    # The server starts reading: what the user sent gets through, and a new
    # ping is answered.
    ref = a.say("still here")
    said, skipped = conn.recv_type("say")
    assert said["text"] == "still here" and said["ref"] == ref
    assert skipped and {f["type"] for f in skipped} == {"pong"}     # it answered during the flood
    assert len(skipped) < pings
    conn.send({"type": "ping"})
    assert conn.recv() == {"type": "pong"}
    assert a.state == "online"


# -- another history on the same server ---------------------------------------------

def _reconnect(conn: Played, srv: PlayedServer, ae) -> tuple[Played, dict]:
    """Hang up on the client; accept its reconnect and return its hello."""
    conn.close()
    ae.wait(ev.Disconnected)
    again = srv.accept()
    return again, again.recv()


def test_a_resume_carries_the_epoch_and_another_epoch_shows_its_messages_as_new(make_chat_clients, played):
    srv = played()
    a, ae = make_chat_clients(srv.port, "ann", backoff=Backoff(first=0.0, base=0.05, cap=0.1))
    conn = srv.accept()
    hello = conn.recv()
    assert "since" not in hello and "epoch" not in hello
    conn.send(welcome(history=[message(1, "one"), message(2, "two"), message(3, "three")], last_id=3,
                      epoch="first-history"))
    assert texts(ae.wait(ev.Backlog)) == ["one", "two", "three"]

    conn, hello = _reconnect(conn, srv, ae)
    assert (hello["since"], hello["epoch"], hello["resume"]) == (3, "first-history", "s1")
    # The history was replaced: its ids 2..4 are other messages than the ids
    # 2 and 3 seen before, and last_id alone cannot tell.
    conn.send(welcome(history=[message(2, "new two"), message(3, "new three"), message(4, "new four")],
                      last_id=4, epoch="second-history"))
    assert texts(ae.wait(ev.Backlog)) == ["new two", "new three", "new four"]
    conn.send(message(5, "live five"))
    assert ae.wait(protocol.Message).text == "live five"

    conn, hello = _reconnect(conn, srv, ae)
    assert (hello["since"], hello["epoch"]) == (5, "second-history")
    conn.send(welcome(history=[message(5, "live five"), message(6, "six")], last_id=6, epoch="second-history"))
    assert texts(ae.wait(ev.Backlog)) == ["six"], "the same history: nothing shown twice"


def test_a_welcome_that_says_reset_shows_its_backlog_as_new(make_chat_clients, played):
    srv = played()
    a, ae = make_chat_clients(srv.port, "ann", backoff=Backoff(first=0.0, base=0.05, cap=0.1))
    conn = srv.accept()
    conn.recv()
    conn.send(welcome(history=[message(1, "one"), message(2, "two")], last_id=2))
    assert texts(ae.wait(ev.Backlog)) == ["one", "two"]

    conn, hello = _reconnect(conn, srv, ae)
    assert hello["since"] == 2 and "epoch" not in hello     # no epoch was given: none is sent
    # A server that knows our since is not its own answers as to a new joiner.
    conn.send(welcome(history=[message(1, "fresh one"), message(2, "fresh two")], last_id=9, reset=True))
    assert texts(ae.wait(ev.Backlog)) == ["fresh one", "fresh two"]
    conn.send(message(3, "live three"))
    assert ae.wait(protocol.Message).text == "live three"


def test_a_real_server_on_a_new_history_file_is_not_hidden_by_old_ids(make_server, tmp_path, make_chat_clients):
    from tests.netclient import LineClient
    db = tmp_path / "room.db"
    srv = make_server(db=str(db), rate_limit=0)
    port = srv.port
    a, ae = make_chat_clients(port, "ann", backoff=Backoff(first=0.0, base=0.05, cap=0.2))
    ae.caught_up()
    for i in range(5):
        ref = a.say(f"old {i}")
        ae.wait(lambda e: isinstance(e, ev.Acked) and e.ref == ref)
    srv.shutdown()
    ae.wait(ev.Disconnected)
    db.unlink()                         # the history file is gone: the next server starts over
    from server.store.sqlite import SqliteStore
    fresh = SqliteStore(str(db))            # and has messages before ann is back: ids 1..3, below her since
    for i in range(3):
        fresh.add_message("carol", f"early {i}")
    fresh.close()
    srv2 = make_server(db=str(db), port=port, rate_limit=0)
    back = ae.wait(ev.Connected, timeout=10)
    assert not back.resumed
    assert [m.text for m in ae.caught_up()] == ["early 0", "early 1", "early 2"]
    bob = LineClient(port)
    bob.hello("bob")
    for i in range(3):                  # ids 1..3 again, which ann saw in the old history
        bob.send({"type": "say", "text": f"new {i}"})
    got = [ae.wait(protocol.Message).text for _ in range(3)]
    assert got == ["new 0", "new 1", "new 2"]
    bob.close()
    assert srv2.port == port
