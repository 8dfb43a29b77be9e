"""What a room answers to discovery datagrams, with no I/O.

:class:`Responder` takes each datagram received (its bytes, where it came
from, the address it was sent to when known) and returns the datagrams to
send (:class:`Send`), after these rules:

- Only a well-formed query (:func:`codec.parse_query`: 128 to 512 bytes)
  is answered, with one reply to its source; everything else is counted
  and dropped. :meth:`Responder.summary` turns the counts into at most one
  log line a minute, so junk never floods the log.
- Rate limits: a token bucket per source address (``burst`` replies at
  once, ``rate`` a second after that) and one for all sources together;
  the table of sources is bounded (the oldest are forgotten first).
- A unicast query (its destination is the local address it arrived at)
  reached only this room of all those sharing the port on this computer:
  it is relayed once to the loopback broadcast, and every other room on
  the computer answers the querier (:class:`codec.Forward`). Relays are
  accepted only from a loopback address and the discovery port, never
  relayed again, and a room ignores its own.
- A room bound to loopback answers only what was sent to a loopback
  address; a room bound to one LAN address answers only queries that
  arrived at that address (so the scanner's connection goes where the
  room listens). When the destination is not known, it answers.

Thread: one instance per responder thread; not shared.
"""
from __future__ import annotations

import ipaddress
import time
from collections import OrderedDict
from dataclasses import dataclass, replace

from . import codec

LOOPBACK_BROADCAST = "127.255.255.255"
LOG_EVERY = 60.0              # seconds between two summaries of what was ignored


@dataclass(frozen=True)
class Send:
    data: bytes
    to: tuple                 # (address, port)
    source: str | None = None  # the local address to send from; None: the system picks


def is_loopback(address: str | None) -> bool:
    try:
        return address is not None and ipaddress.ip_address(address).is_loopback
    except ValueError:
        return address == "localhost"


def serves_everywhere(chat_host: str) -> bool:
    return chat_host in ("", "0.0.0.0", "::")


class TokenBuckets:
    """A token bucket per key, at most ``max_keys`` of them (least recently
    used forgotten first), plus one bucket shared by all keys."""

    def __init__(self, rate: float, burst: float, total_rate: float, max_keys: int = 4096):
        self.rate, self.burst, self.max_keys = rate, burst, max_keys
        self.total_rate = total_rate
        self._keys: OrderedDict = OrderedDict()
        self._total = (total_rate, None)       # tokens, last time

    def _take(self, tokens: float, last, rate: float, burst: float, now: float):
        if last is not None:
            tokens = min(burst, tokens + (now - last) * rate)
        if tokens < 1:
            return False, tokens
        return True, tokens - 1

    def allow(self, key, now: float) -> bool:
        tokens, last = self._keys.pop(key, (self.burst, None))
        ok, tokens = self._take(tokens, last, self.rate, self.burst, now)
        self._keys[key] = (tokens, now)
        while len(self._keys) > self.max_keys:
            self._keys.popitem(last=False)
        if not ok:
            return False
        total, tlast = self._total
        ok, total = self._take(total, tlast, self.total_rate, self.total_rate, now)
        self._total = (total, now)
        return ok


class Responder:
    def __init__(self, room: codec.RoomInfo, counts, *, chat_host: str, port: int,
                 rate: float = 5.0, burst: float = 10.0, total_rate: float = 200.0, clock=time.monotonic):
        """``room``: the reply's fixed fields; ``counts()`` -> (users, rooms)
        at the time of each reply. ``port``: the discovery port (relays
        go to it)."""
        self.room = room
        self.counts = counts
        self.chat_host = chat_host
        self.local_only = is_loopback(chat_host)
        self.port = port
        self.clock = clock
        self.limits = TokenBuckets(rate, burst, total_rate)
        self.answered = 0
        self.relayed = 0
        self.malformed = 0
        self.limited = 0
        self._reported = (0, 0)
        self._last_summary = clock()

    def info(self) -> codec.RoomInfo:
        users, rooms = self.counts()
        return replace(self.room, users=int(users), rooms=int(rooms))

    def datagram(self, data: bytes, source: tuple, dst: str | None = None,
                 local: str | None = None) -> list[Send]:
        """One datagram from ``source`` (address, port), sent to ``dst`` and
        received at the local address ``local`` (both None when unknown;
        equal for a unicast query). Returns what to send."""
        query = codec.parse_query(data)
        if query is not None:
            return self._query(query, source, dst, local)
        fwd = codec.parse_forward(data)
        if fwd is not None and is_loopback(source[0]) and source[1] == self.port:
            return self._forward(fwd)
        self.malformed += 1
        return []

    def _serves(self, local: str | None) -> bool:
        if self.local_only:
            return local is None or is_loopback(local)
        return serves_everywhere(self.chat_host) or local is None or local == self.chat_host

    def _query(self, query: codec.Query, source: tuple, dst, local) -> list[Send]:
        now = self.clock()
        if not self.limits.allow(source[0], now):
            self.limited += 1
            return []
        out = []
        if self._serves(local):
            out.append(Send(codec.encode_reply(query.nonce, self.info()), source, local))
            self.answered += 1
        if dst is not None and dst == local:
            # Unicast: the other rooms sharing the port did not get it.
            fwd = codec.Forward(query.nonce, source[0], source[1], dst, self.room.id)
            out.append(Send(codec.encode_forward(fwd), (LOOPBACK_BROADCAST, self.port)))
            self.relayed += 1
        return out

    def _forward(self, fwd: codec.Forward) -> list[Send]:
        if fwd.by == self.room.id or not self._serves(fwd.dst):
            return []
        if not self.limits.allow(fwd.to, self.clock()):
            self.limited += 1
            return []
        self.answered += 1
        source = None if self.local_only else fwd.dst
        return [Send(codec.encode_reply(fwd.nonce, self.info()), (fwd.to, fwd.tport), source)]

    def summary(self) -> str | None:
        """At most once per :data:`LOG_EVERY` seconds: what was ignored
        since the last summary, or None (nothing, or too soon)."""
        now = self.clock()
        if now - self._last_summary < LOG_EVERY:
            return None
        counts = (self.malformed, self.limited)
        malformed, limited = (a - b for a, b in zip(counts, self._reported))
        self._last_summary = now
        if not (malformed or limited):
            return None
        self._reported = counts
        return (f"discovery: ignored {malformed} malformed datagram(s) and {limited} query(ies) over the "
                f"rate limit in the last {LOG_EVERY:g} s")
