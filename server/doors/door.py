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

import time

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
        input to post. After a wrong one the next is checked only once a
        delay has passed (1 s, 2 s, 4 s ... as on the JSON port): the reader
        waits, reading nothing, so a burst of guesses pays one hash per delay."""
        wait = self._auth_open_at - time.monotonic()
        if wait > 0:
            self._post()
            self.stopping.wait(wait)
        ok = self._check_password is None or self._check_password(password)
        self._input(item(ok))
        if not ok:
            base, cap = self._auth_delay
            self._auth_failures += 1
            self._auth_open_at = time.monotonic() + min(cap, base * 2 ** (self._auth_failures - 1))
        return ok

    def _input(self, data) -> None:
        self._items.append(DoorInput(data))
