"""What the IRC and plain-text doors share: a connection whose reader
thread posts its input as :class:`~server.doors.jsonl.DoorInput` and whose
hub-thread half (its ``door``: an ``IrcSession`` or ``TextSession``) turns
that input into core events and the core's frames into its bytes.

A door connection is a :class:`~server.doors.jsonl.Connection` (the hub,
the core and delivery treat it as any other: limits, slow readers,
timeouts, drops), with another reader loop and its ``door`` as its
``encoder``.

Threads: the reader thread reads, frames, checks the server password
(scrypt is slow: never on the hub) and meters; everything else of the
door runs on the hub thread.
"""
from __future__ import annotations

from .jsonl import Connection, DoorInput


class DoorConnection(Connection):
    __slots__ = ("door",)

    def __init__(self, sock, addr, hub, config, tls_context=None, check_password=None, door=None):
        super().__init__(sock, addr, hub, config, tls_context, check_password)
        self.door = door(self)
        self.encoder = self.door

    def speak(self, version: int) -> None:
        """(hub) Frames are the door's to encode, whatever the version."""

    def door_input(self, chat, data) -> None:
        """(hub) What the reader posted as DoorInput(data)."""
        self.door.on_input(chat, data)

    def _meter(self, reads: bool = False) -> None:
        """(reader) Flood control, as the JSON door's: wait for a token."""
        bucket = self._reads_bucket if reads else self._bucket
        if bucket is not None:
            self._throttle(bucket)

    def _check(self, password: str, item) -> bool:
        """(reader) The server password, checked here; ``item(ok)`` is the
        input to post. A wrong one delays what is read next, as on the JSON
        port (what was read before goes to the hub first)."""
        ok = self._check_password is None or self._check_password(password)
        self._input(item(ok))
        if not ok:
            self._pause(self._next_auth_delay())
        return ok

    def _input(self, data) -> None:
        self._items.append(DoorInput(data))
