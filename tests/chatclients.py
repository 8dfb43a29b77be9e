"""Helpers for tests of the real network client (chatgui.net.client.ChatClient)."""
from __future__ import annotations

import queue
import threading
import time

from chatgui.net import events as ev
from tests.servertools import wait_until


class Events:
    """Reads a client's event queue, keeping everything it saw."""

    def __init__(self):
        self.q: queue.Queue = queue.Queue()
        self.seen: list = []

    def next(self, timeout: float = 5.0):
        e = self.q.get(timeout=timeout)
        self.seen.append(e)
        return e

    def wait(self, pred, timeout: float = 5.0, what: str = ""):
        """The next event matching pred (a type or a predicate); fails on timeout."""
        test = (lambda e: isinstance(e, pred)) if isinstance(pred, type) else pred
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            try:
                e = self.next(max(0.01, left))
            except queue.Empty:
                raise AssertionError(f"no {what or pred} within {timeout} s; saw {self.seen[-8:]}") from None
            if test(e):
                return e

    def caught_up(self, timeout: float = 5.0) -> list:
        """Wait for the end of the next catch-up (a CaughtUp event) and return
        the messages of the Backlog events that came with it, oldest first
        (a v2 server sends no replay when there is nothing to replay)."""
        start = len(self.seen)
        self.wait(lambda e: isinstance(e, ev.CaughtUp), timeout, "the end of the catch-up")
        return [m for e in self.seen[start:] if isinstance(e, ev.Backlog) for m in e.messages]

    def drain(self, secs: float = 0.0) -> list:
        deadline = time.monotonic() + secs
        out = []
        while True:
            try:
                out.append(self.next(max(0.0, deadline - time.monotonic())))
            except queue.Empty:
                return out

    def of(self, kind) -> list:
        return [e for e in self.seen if isinstance(e, kind)]


def until_pong(client) -> list:
    """Ping the server from a test LineClient and return every frame that
    came before the pong: what the server had queued for it until then
    (a wait for a condition, not for a fixed time)."""
    client.send({"type": "ping"})
    frames = []
    while True:
        f = client.recv()
        if f["type"] == "pong":
            return frames
        frames.append(f)


class TransferPump:
    """The UI's part for chatgui.net.transfers: a ``test-pump`` thread takes
    the events queue, hands the offers' answers to Transfers, keeps the
    rest in :attr:`seen`; :meth:`end` waits for a transfer's last event."""

    def __init__(self, transfers, events):
        self.transfers, self.events = transfers, events
        self.seen = []
        self.ended = {}
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="test-pump", daemon=True)
        self.thread.start()

    def _run(self):
        while not self._stop.is_set():
            try:
                e = self.events.get(timeout=0.05)
            except queue.Empty:
                continue
            if self.transfers.on_event(e):
                continue
            self.seen.append(e)
            if type(e) in (ev.TransferDone, ev.TransferFailed):
                self.ended[e.tid] = e

    def end(self, tid, timeout=20):
        wait_until(lambda: tid in self.ended, timeout=timeout, what=f"the end of {tid}")
        return self.ended[tid]

    def progress(self, tid):
        return [e for e in self.seen if type(e) is ev.TransferProgress and e.tid == tid]

    def stop(self):
        self._stop.set()
        self.thread.join(5)


    def wait(self, pred, timeout=10, what="an event"):
        """The first event seen that matches ``pred``, waiting for it."""
        return wait_until(lambda: next((e for e in list(self.seen) if pred(e)), None), timeout=timeout,
                          what=what)
