"""Helpers for the identity and moderation tests (real loopback sockets)."""
from __future__ import annotations

import itertools
import time

from server import protocol as p
from tests.netclient import LineClient
from tests.servertools import hello_v2

_refs = itertools.count(1)


def secret(name: str) -> str:
    """A stable identity secret for a test person (32+ printable ASCII characters)."""
    return f"test-identity-of-{name}".ljust(40, "x")


def fp(name: str) -> str:
    return p.fingerprint(secret(name))


def reply(c: LineClient, frame: dict, timeout: float | None = None) -> dict:
    """Send frame with a fresh ref; return the first frame carrying that ref."""
    ref = f"r{next(_refs)}"
    c.send(dict(frame, ref=ref))
    deadline = time.monotonic() + (timeout or c.timeout)
    while True:
        f = c.recv(max(0.01, deadline - time.monotonic()))
        if f.get("ref") == ref:
            return f


def until(c: LineClient, pred, timeout: float | None = None) -> dict:
    """Skip frames until one for which pred(frame) holds."""
    deadline = time.monotonic() + (timeout or c.timeout)
    while True:
        f = c.recv(max(0.01, deadline - time.monotonic()))
        if pred(f):
            return f


def sync(c: LineClient) -> None:
    """Everything sent to c before now has been read (a ping's pong is behind it)."""
    c.send({"type": "ping"})
    until(c, lambda f: f["type"] == "pong")


class Person:
    """A v2 client, with the identity of its name unless ``identity=False``."""

    def __init__(self, srv, nick: str, identity: bool | str = True, **hello):
        self.nick = nick
        self.c = LineClient(srv.port)
        if identity is True:
            hello["identity"] = secret(nick)
        elif identity:
            hello["identity"] = identity
        self.got = hello_v2(self.c, nick, **hello)
        self.welcome = self.got["welcome"]

    def join(self, room: str, **kw) -> dict:
        f = reply(self.c, {"type": "join", "room": room, **kw})
        assert f["type"] == "room", f
        return f

    def part(self, room: str) -> dict:
        return reply(self.c, {"type": "part", "room": room})

    def mod(self, room: str, action: str, nick: str, **kw) -> dict:
        return reply(self.c, {"type": "mod", "room": room, "action": action, "nick": nick, **kw})

    def mode(self, room: str, **modes) -> dict:
        return reply(self.c, {"type": "mode", "room": room, **modes})

    def say(self, room: str, text: str) -> dict:
        return reply(self.c, {"type": "say", "room": room, "text": text})

    def ask(self, frame: dict) -> dict:
        return reply(self.c, frame)

    def close(self) -> None:
        self.c.close()
