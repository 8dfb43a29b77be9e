"""Hosting a room from the client (chatgui.app.hosting) with the real server on
loopback: each port is a room with its own history file, and starting and
stopping happen on short-lived named threads that report back."""
from __future__ import annotations

import os
import queue
import socket

from chatgui.app import hosting
from server import paths
from tests.netclient import LineClient


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def say(port: int, nick: str, text: str) -> list:
    """Join, say text, leave; returns the texts of the welcome's history."""
    c = LineClient(port)
    history = [m["text"] for m in c.hello(nick)["history"]]
    c.send({"type": "say", "text": text, "ref": "x"})
    while c.recv_type("message").get("ref") != "x":
        pass
    c.close()
    return history


def test_two_ports_are_two_rooms_with_two_histories():
    a, b = free_port(), free_port()
    room = hosting.HostedRoom(a).start()
    try:
        assert say(a, "alice", "said in the open room") == []
    finally:
        room.stop()
    room = hosting.HostedRoom(b, password="secret").start()     # a new, private room
    try:
        c = LineClient(b)
        welcome = c.hello("bob", password="secret")
        assert [m["text"] for m in welcome["history"]] == []    # nothing of the other room
        c.close()
    finally:
        room.stop()
    room = hosting.HostedRoom(a).start()                         # the first room keeps its own
    try:
        assert say(a, "carol", "back again") == ["said in the open room"]
    finally:
        room.stop()
    rooms = os.path.join(paths.data_dir(), "rooms")
    assert {f"room-{a}.db", f"room-{b}.db"} <= set(os.listdir(rooms))
    assert not os.path.exists(paths.default_db())          # the server's own file is not touched


def test_start_and_stop_run_on_named_threads_and_post_the_outcome():
    port = free_port()
    events: queue.Queue = queue.Queue()
    room = hosting.HostedRoom(port)
    thread = hosting.start_room(room, events.put)
    assert thread.name == "host-room-start"
    assert events.get(timeout=10) == hosting.RoomStarted(room)
    assert say(port, "alice", "hello") == []
    busy = hosting.HostedRoom(port)             # the same port again: refused, in words
    hosting.start_room(busy, events.put)
    failed = events.get(timeout=10)
    assert type(failed) is hosting.RoomFailed and failed.room is busy
    assert f"Port {port} is already in use" in failed.message
    thread = hosting.stop_room(room, events.put)
    assert thread.name == "host-room-stop"
    assert events.get(timeout=10) == hosting.RoomStopped(room)
    thread.join(5)
    assert room.server is None


def test_the_hosting_clients_identity_is_an_admin_of_its_room():
    from server import protocol as p
    port = free_port()
    mine, other = "my-own-identity-secret".ljust(43, "x"), "someone-elses-identity".ljust(43, "y")
    room = hosting.HostedRoom(port, admin_fingerprint=p.fingerprint(mine)).start()
    try:
        c = LineClient(port)
        assert c.hello("host", identity=mine)["admin"] is True
        d = LineClient(port)
        assert d.hello("guest", identity=other)["admin"] is False
        c.close()
        d.close()
    finally:
        room.stop()
