"""The client's rooms over real sockets against the real server: two rooms
and switching (the controller fed by a real network client), catch-up
after the server restarts, history paging both ways, private history,
read markers surviving a reconnect and an app restart, and a protocol v1
client still served next to a v2 one.
"""
from __future__ import annotations

import queue
import time

import pytest

from chatgui.app.controller import ConnectValues, Controller
from chatgui.app.settings import Settings
from chatgui.net import events as ev
from chatgui.net.backoff import Backoff
from chatgui.net.client import ChatClient
from server import protocol
from tests.fakes import FakeView
from tests.netclient import LineClient

pytestmark = pytest.mark.timeout(60)

QUICK = dict(backoff=Backoff(first=0.0, base=0.1, cap=0.3))


def acked(ae, ref, timeout=10):
    """Wait for our item's Acked (fails on its Refused)."""
    e = ae.wait(lambda e: isinstance(e, (ev.Acked, ev.Refused)) and e.ref == ref, timeout=timeout)
    assert isinstance(e, ev.Acked), e
    return e


def v2(port, nick) -> LineClient:
    """A raw v2 connection, welcomed and caught up."""
    c = LineClient(port)
    c.send({"type": "hello", "nick": nick, "v": 2})
    assert c.recv()["type"] == "welcome"
    c.recv_type("caught_up")
    return c


def say(c: LineClient, text, room=None) -> dict:
    frame = {"type": "say", "text": text, "ref": text[:60]}
    if room:
        frame["room"] = room
    c.send(frame)
    while True:
        f = c.recv_type("message")
        if f.get("ref") == frame["ref"]:
            return f


def join(c: LineClient, room) -> dict:
    c.send({"type": "join", "room": room, "ref": "j-" + room})
    return c.recv_type("room")


class Window:
    """A controller with a fake view, fed by a real ChatClient's queue (as
    the window's pump feeds it)."""

    def __init__(self, port, nick="alice", settings=None, **client_kw):
        self.view = FakeView()
        self.saved = []

        def factory(host, port, nick, *, events, password=None, **tls):
            return ChatClient(host, port, nick, events=events, password=password, **QUICK, **client_kw)
        self.c = Controller(self.view, settings or Settings(), client_factory=factory,
                            save_settings=self.saved.append)
        self.c.connect(ConnectValues(host="127.0.0.1", port=str(port), nick=nick))

    def pump(self, cond, timeout=10.0, what="the condition"):
        deadline = time.monotonic() + timeout
        while not cond():
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError(f"{what} did not happen within {timeout} s; the visible room shows "
                                     f"{self.view.texts()[-6:]}")
            try:
                self.c.handle(self.c.events.get(timeout=min(0.2, left)))
            except queue.Empty:
                pass

    def texts(self, room):
        return self.view.texts(room=room)

    def close(self):
        self.c.close()
        assert self.c.shutdown(timeout=5)


@pytest.fixture
def windows():
    made = []

    def make(*a, **kw) -> Window:
        w = Window(*a, **kw)
        made.append(w)
        return w
    yield make
    for w in made:
        w.close()


def test_two_rooms_and_switching(server, windows):
    w = windows(server.port)
    w.pump(lambda: w.c.connected and w.view.active == "#lobby", what="the welcome")
    bob = v2(server.port, "bob")
    w.c.submit("/join maths")
    w.pump(lambda: w.view.visible == "#maths", what="the join")
    assert [r.id for r in w.view.rooms] == ["#lobby", "#maths"]
    join(bob, "maths")
    w.pump(lambda: "bob joined." in w.texts("#maths"), what="bob in maths")
    assert w.view.users == ["alice", "bob"]
    w.c.submit("x = 1/2")
    w.pump(lambda: not w.c.pending, what="the ack")
    assert bob.recv_type("message")["room"] == "maths"
    say(bob, "in the lobby meanwhile")
    w.pump(lambda: "in the lobby meanwhile" in w.texts("#lobby"), what="the lobby message")
    assert w.view.entry("#lobby").unread == 1 and w.view.title.startswith("(1) ")
    assert "in the lobby meanwhile" not in w.texts("#maths")
    w.c.switch_room("#lobby", "a draft for maths")
    assert w.view.entry("#lobby").unread == 0 and w.view.users == ["alice", "bob"]
    w.c.switch_room("#maths", "")
    assert w.view.input[0] == "a draft for maths"
    bob.close()


def test_catch_up_after_the_server_restarts(make_server, tmp_path, windows):
    db = str(tmp_path / "rooms.db")
    srv = make_server(db=db, rate_limit=0)
    port = srv.port
    w = windows(port)
    w.pump(lambda: w.c.connected and w.c.rooms.active == "#lobby", what="the welcome")
    w.c.join_room("maths")
    w.pump(lambda: w.view.visible == "#maths", what="the join")
    srv.shutdown()
    w.pump(lambda: not w.c.connected, what="the drop")
    # Someone posts in both rooms while the window cannot reach the server.
    other = make_server(db=db, rate_limit=0)
    bob = v2(other.port, "bob")
    join(bob, "maths")
    say(bob, "missed in maths", "maths")
    say(bob, "missed in the lobby")
    bob.close()
    other.shutdown()
    make_server(db=db, port=port, rate_limit=0)
    w.pump(lambda: "missed in the lobby" in w.texts("#lobby") and "missed in maths" in w.texts("#maths")
           and not w.c._catching_up, timeout=20, what="the catch-up")
    assert w.texts("#maths").count("missed in maths") == 1
    assert [r.id for r in w.view.rooms] == ["#lobby", "#maths"]       # the session kept its rooms
    assert any(t.startswith("That was what you missed while away") for t in w.texts("#lobby"))
    assert w.view.entry("#lobby").unread == 1 and w.view.entry("#maths").unread == 0   # maths is on screen


def test_history_paging_both_ways(server, make_chat_clients):
    bob = v2(server.port, "bob")
    join(bob, "maths")
    ids = [say(bob, f"m{i:03d}", "maths")["id"] for i in range(120)]
    say(bob, "not in maths")
    a, ae = make_chat_clients(server.port, "ann")
    ae.wait(ev.CaughtUp)
    acked(ae, a.join("maths"))

    def page(**kw):
        ref = a.history(room="maths", **kw)
        got = ae.wait(lambda e: isinstance(e, protocol.HistoryPage) and e.ref == ref)
        return [m.id for m in got.messages if type(m) is protocol.Message], got.more

    newest, more = page(limit=50)
    assert newest == ids[-50:] and more
    older, more = page(before=newest[0], limit=50)
    assert older == ids[-100:-50] and more
    oldest, more = page(before=older[0], limit=50)
    assert oldest == ids[:20] and not more
    forward, more = page(after=ids[9], limit=100)
    assert forward == ids[10:110] and more
    rest, more = page(after=forward[-1], limit=100)
    assert rest == ids[110:] and not more
    bob.close()


def test_private_history(server, make_chat_clients):
    a, ae = make_chat_clients(server.port, "ann")
    ae.wait(ev.CaughtUp)
    bob = v2(server.port, "bob")
    for text in ("one", "two", "three"):
        bob.send({"type": "dm", "to": "ann", "text": text})
        ae.wait(protocol.Direct)
    acked(ae, a.dm("bob", "four"))
    carol = v2(server.port, "carol")
    carol.send({"type": "dm", "to": "ann", "text": "not bob"})
    ae.wait(lambda e: isinstance(e, protocol.Direct) and e.text == "not bob")
    ref = a.history(with_="bob", limit=2)
    page = ae.wait(lambda e: isinstance(e, protocol.HistoryPage) and e.ref == ref)
    assert [m.text for m in page.messages] == ["three", "four"] and page.more and page.with_ == "bob"
    ref = a.history(with_="bob", before=page.messages[0].id)
    page = ae.wait(lambda e: isinstance(e, protocol.HistoryPage) and e.ref == ref)
    assert [m.text for m in page.messages] == ["one", "two"] and not page.more
    bob.close()
    carol.close()


def test_read_markers_survive_a_reconnect_and_an_app_restart(make_server, tmp_path, windows):
    db = str(tmp_path / "rooms.db")
    srv = make_server(db=db, rate_limit=0)
    port = srv.port
    bob = v2(port, "bob")
    w = windows(port)
    w.pump(lambda: w.c.connected and w.c.rooms.active == "#lobby", what="the welcome")
    for i in range(3):
        say(bob, f"read {i}")
    w.pump(lambda: "read 2" in w.texts("#lobby"), what="the messages")
    w.c.seen_bottom("#lobby")                       # read up to "read 2"
    last_read = w.c.rooms.get("#lobby").read
    say(bob, "unread 1")
    say(bob, "unread 2")
    bob.close()
    w.pump(lambda: "unread 2" in w.texts("#lobby"), what="the unread messages")
    srv.shutdown()                                  # a reconnect: the marker comes back in the room frame
    w.pump(lambda: not w.c.connected, what="the drop")
    srv = make_server(db=db, port=port, rate_limit=0)
    w.pump(lambda: w.c.connected and not w.c._catching_up, timeout=20, what="the reconnect")
    assert w.c.rooms.get("#lobby").read == last_read
    w.close()                                       # the app quits ...
    again = windows(port, settings=w.c.settings)    # ... and starts again: a new client, the same session
    again.pump(lambda: again.c.connected and not again.c._catching_up, timeout=20, what="the restart")
    lobby = again.c.rooms.get("#lobby")
    assert lobby.read == last_read
    assert lobby.unread == 0                         # on screen and focused...
    assert again.view.markers["#lobby"] == next(ln.msg_id for ln in again.view.room_lines("#lobby")
                                                if ln.text == "unread 1")   # ...but marked where reading stopped


def test_a_v1_client_is_still_served_next_to_a_v2_one(server, make_chat_clients):
    old = LineClient(server.port)
    welcome = old.hello("oldie")                   # no "v": protocol v1
    assert welcome["type"] == "welcome" and "replay" not in welcome
    a, ae = make_chat_clients(server.port, "ann")
    ae.wait(ev.CaughtUp)
    assert old.recv_type("joined")["nick"] == "ann"
    acked(ae, a.join("maths"))
    acked(ae, a.say("only for maths", room="maths"))
    acked(ae, a.say("for everyone in the lobby"))
    frame = old.recv_type("message")
    assert frame["text"] == "for everyone in the lobby", "a v1 client sees only the lobby"
    old.send({"type": "say", "text": "from the old client"})
    got = ae.wait(lambda e: isinstance(e, protocol.Message) and e.text == "from the old client")
    assert got.room == "lobby"
    old.close()
