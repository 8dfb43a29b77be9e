"""The IRC door's connection: its reader thread (``reader-HOST:PORT``).

It reads bytes (through TLS on ``--irc-tls-port``), reassembles lines
(:class:`~.wire.LineReader`: any chunking, byte by byte included), parses
them (:func:`~.wire.parse`: the 512-byte rules, UTF-8 only), checks the
server password of a ``PASS`` (scrypt, so not on the hub) and applies the
same flood control as the JSON door (it slows the client down, nothing is
dropped). Each line, or the :class:`~.wire.LineError` that refused it, is
posted to the hub as ``DoorInput``; :class:`~.session.IrcSession` does the
rest on the hub thread.
"""
from __future__ import annotations

from ..door import DoorConnection
from ..jsonl import TlsKick
from .session import IrcSession
from .session import features as irc_features
from .wire import LineError, LineReader, parse

# What costs a token of the message bucket (it reaches other people), and
# of the reads bucket (history, lists).
METERED = frozenset({"PRIVMSG", "NOTICE", "JOIN", "PART", "NICK", "TOPIC"})
READS = frozenset({"CHATHISTORY", "LIST", "WHO", "WHOIS", "NAMES"})


class IrcConnection(DoorConnection):
    __slots__ = ()

    def __init__(self, sock, addr, hub, config, tls_context=None, check_password=None, features=None):
        features = features or irc_features(config)
        super().__init__(sock, addr, hub, config, tls_context, check_password,
                         door=lambda conn: IrcSession(conn, features, check_password is not None))

    def _read(self) -> str:
        """(reader) recv -> IRC lines -> door input; PASS checked here."""
        reader = LineReader()
        items = self._items
        for data in self._chunks("the plain IRC port"):
            if self.tls is not None:
                data, kick = self.tls.receive(data)
                if kick:
                    items.append(TlsKick())
            for line in reader.feed(data):
                if type(line) is not bytes:
                    self._input(line)                   # a LineError: 417
                    continue
                self._size += len(line)
                try:
                    msg = parse(line)
                except LineError as e:
                    self._input(e)
                    continue
                cmd = msg.command
                if cmd == "PASS" and self._check_password is not None and msg.params:
                    self._check(msg.params[0], lambda ok, msg=msg: (msg, ok))
                    continue
                if cmd in METERED:
                    self._meter()
                elif cmd in READS:
                    self._meter(reads=True)
                if self.stopping.is_set():
                    break
                self._input(msg)
            self._post()
        return "connection closed"
