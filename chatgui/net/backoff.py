"""How long to wait before the next connection attempt: exponential
backoff with full jitter. Pure (no sockets, no threads, no lock):
:class:`chatgui.net.client.ChatClient` uses it under its own lock.
"""
from __future__ import annotations

import random


class Backoff:
    """Exponential backoff with full jitter (AWS "Exponential Backoff And Jitter").

    The n-th delay (n from 0) is uniform in ``[0, window(n)]`` where
    ``window(0) = first`` (the first retry is quick) and
    ``window(n) = min(cap, base * 2**n)`` after. Full jitter spreads a room
    of clients that lost the same server over the whole window, so a
    restarted server is not hit by all of them at once.
    """

    def __init__(self, first: float = 0.5, base: float = 1.0, cap: float = 30.0, rng=None):
        if not (0 <= first and 0 < base and base <= cap):
            raise ValueError("need 0 <= first, 0 < base <= cap")
        self.first = first
        self.base = base
        self.cap = cap
        self.attempts = 0
        self._random = rng or random.random   # () -> float in [0, 1)

    def window(self, n: int) -> float:
        if n <= 0:
            return self.first
        return min(self.cap, self.base * 2.0 ** min(n, 64))

    def next_delay(self) -> float:
        """The delay before the next attempt; each call counts one attempt."""
        w = self.window(self.attempts)
        self.attempts += 1
        return self._random() * w

    def reset(self) -> None:
        """A connection held: the next failure starts from a quick retry."""
        self.attempts = 0
