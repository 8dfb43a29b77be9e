"""Helpers for the server tests (real loopback sockets; every wait has a timeout)."""
from __future__ import annotations

import socket
import struct
import threading
import time

from tests.netclient import LineClient


def wait_until(cond, timeout: float = 5.0, interval: float = 0.01, what: str = "condition"):
    """Poll cond() until it is truthy; return its value or fail the test."""
    deadline = time.monotonic() + timeout
    while True:
        value = cond()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(interval)


def expect(client: LineClient, kind: str, timeout: float | None = None, **fields) -> dict:
    """The very next frame must be of this type and carry these fields."""
    f = client.recv(timeout)
    assert f["type"] == kind, f"expected {kind} {fields}, got {f}"
    for k, v in fields.items():
        assert f.get(k) == v, f"expected {k}={v!r} in {f}"
    return f


def expect_error(client: LineClient, code: str, timeout: float | None = None, **fields) -> dict:
    f = expect(client, "error", timeout, code=code, **fields)
    assert isinstance(f["message"], str) and f["message"].strip(), f
    return f


_refs = iter(range(1, 1 << 62))


def chat_works(sender: LineClient, *others: LineClient, text: str = "still fine") -> int:
    """sender says something; its very next frame is the ack with ref and
    every other client's very next frame is the message without it. Returns
    the id. Strict on purpose: a stray frame before it fails the test."""
    ref = f"chk{next(_refs)}"
    sender.send({"type": "say", "text": text, "ref": ref})
    ack = expect(sender, "message", text=text, ref=ref)
    for o in others:
        m = expect(o, "message", text=text, id=ack["id"])
        assert "ref" not in m
    return ack["id"]


def ping_works(client: LineClient) -> None:
    client.send({"type": "ping"})
    expect(client, "pong")


def messages(client: LineClient, n: int, timeout: float = 10.0) -> list[dict]:
    """The next n 'message' frames, skipping frames of other types."""
    out = []
    deadline = time.monotonic() + timeout
    while len(out) < n:
        f = client.recv(max(0.01, deadline - time.monotonic()))
        if f["type"] == "message":
            out.append(f)
    return out


def server_conn(srv, client: LineClient):
    """The server's Connection object for this test client (matched by port)."""
    port = client.sock.getsockname()[1]

    def find():
        for conn in list(srv.hub.conns):
            if isinstance(conn.addr, tuple) and conn.addr[1] == port:
                return conn
        return None
    return wait_until(find, what="the server to register the connection")


def reset(client: LineClient) -> None:
    """Vanish abruptly: close with an RST instead of a FIN."""
    client.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    client.close()


class Reader(threading.Thread):
    """Reads every frame of one client on a thread until EOF or stop()."""

    def __init__(self, client: LineClient):
        super().__init__(daemon=True, name="test-reader")
        self.client = client
        self.frames: list[dict] = []
        self.error: BaseException | None = None
        self._stop = threading.Event()
        self.start()

    def run(self):
        while not self._stop.is_set():
            try:
                self.frames.append(self.client.recv(0.2))
            except TimeoutError:
                continue
            except (EOFError, OSError) as e:
                self.error = e
                return

    def stop(self):
        self._stop.set()
        self.join(5)

    def of_type(self, kind: str) -> list[dict]:
        return [f for f in list(self.frames) if f["type"] == kind]


def hello_v2(client: LineClient, nick: str, timeout: float | None = None, **extra) -> dict:
    """Say a v2 hello and read up to its caught_up. Returns {"welcome",
    "rooms" (the room frames), "replay" (the replayed entries, in order),
    "replays" (the replay frames), "caught_up", "other" (anything else
    that came meanwhile: joined, left...)}. Fails the test on an error."""
    client.send({"type": "hello", "nick": nick, "v": 2, **extra})
    w = client.recv(timeout)
    assert w["type"] == "welcome" and w.get("replay") is True, w
    got = {"welcome": w, "rooms": [], "replay": [], "replays": [], "other": []}
    while True:
        f = client.recv(timeout)
        if f["type"] == "caught_up":
            got["caught_up"] = f
            return got
        assert f["type"] != "error", f
        if f["type"] == "room":
            got["rooms"].append(f)
        elif f["type"] == "replay":
            got["replays"].append(f)
            got["replay"].extend(f["frames"])
        else:
            got["other"].append(f)


def answer(client: LineClient, kind: str, ref: str, timeout: float | None = None) -> dict:
    """Skip frames until the one of this type carrying this ref (an error with it fails the test)."""
    deadline = time.monotonic() + (timeout or client.timeout)
    while True:
        f = client.recv(max(0.01, deadline - time.monotonic()))
        if f.get("ref") == ref:
            assert f["type"] == kind, f"expected {kind} for ref {ref}, got {f}"
            return f
