"""The plain-text door's connection: its reader thread (``reader-HOST:PORT``).

It strips telnet's negotiation, makes lines (:class:`~.inbound.LineAssembler`:
a line ends at LF, CR LF, CR NUL or CR, or when the sender pauses for
200 ms, so the tutorial's client, which sends no newline, works), cleans
them (:func:`~.inbound.clean`), takes the first line as the server
password when there is one (checked here: scrypt is slow), applies the
JSON door's flood control to every line, and posts them to the hub as
``DoorInput``; :class:`~.session.TextSession` does the rest there.
"""
from __future__ import annotations

import time

from ..door import DoorConnection
from ..jsonl import RECV_SIZE, wait_readable
from .inbound import LineAssembler, TooLong, clean
from .session import TextSession


class TextConnection(DoorConnection):
    __slots__ = ()

    def __init__(self, sock, addr, hub, config, tls_context=None, check_password=None):
        super().__init__(sock, addr, hub, config, None, check_password,
                         door=lambda conn: TextSession(conn, check_password is not None))

    def _read(self) -> str:
        """(reader) recv -> lines (a pause ends one too) -> door input."""
        sock = self.sock
        lines = LineAssembler()
        password = self._check_password is not None
        self._input(("start",))
        self._post()
        while not self.stopping.is_set():
            deadline = lines.deadline
            timeout = None if deadline is None else max(0.0, deadline - time.monotonic())
            if not wait_readable(sock, timeout):
                password = self._take(lines.poll(time.monotonic()), password)
                self._post()
                continue
            try:
                data = sock.recv(RECV_SIZE)
            except (BlockingIOError, InterruptedError):
                continue
            now = time.monotonic()
            if not data:
                # What was typed last without a newline (printf 'hi' | nc) is a line too.
                self._take(lines.poll(now + lines.pause), password)
                self._post()
                break
            self.last_seen = now
            password = self._take(lines.feed(data, now), password)
            self._post()
        return "connection closed"

    def _take(self, got: list, password: bool) -> bool:
        """Post the lines; returns whether the password is still awaited."""
        for line in got:
            if self.stopping.is_set():
                break
            if isinstance(line, TooLong):
                self._input(("too_long", line.text))
                continue
            text = clean(line)
            self._size += len(line)
            if password:
                password = not self._check(text, lambda ok: ("password", ok))
                continue
            self._meter()
            self._input(("line", text))
        return password
