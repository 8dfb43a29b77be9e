"""The one bridge from the network threads into Tk: an ``after()`` poll of a
``queue.Queue`` (or of a callable that returns the current queue).

:class:`Pump` drains at most ``batch`` events, or ``budget`` seconds'
worth, per tick and hands each to ``handle``, between one call of
``before_batch`` and one of ``after_batch`` (the view scrolls and trims
there, once per batch instead of once per line). When more events are waiting it reschedules with ``after_idle`` so
pending input and redraws go first; when the queue is empty it polls again
after ``interval_ms``. It keeps its ``after`` id and cancels it in
:meth:`stop`, so nothing runs after the window is gone (idlelib's pattern).

A ``handle`` that raises is reported through ``widget.report_callback_exception``
(which the app replaces with logging) and the pump carries on: one bad
event must not stop the window from hearing the rest.

Thread: everything here runs on the Tk thread. The producers only call
``queue.put``; they never see this object or any widget.
"""
from __future__ import annotations

import queue
import sys
import time


class Pump:
    def __init__(self, widget, events, handle, *, before_batch=None, after_batch=None,
                 batch: int = 300, budget: float = 0.025, interval_ms: int = 20, on_tick=None):
        self.widget = widget
        # A queue, or a callable giving the current one (the controller
        # makes a fresh queue for each network client it starts).
        self._source = events if callable(events) else (lambda: events)
        self.handle = handle
        self.before_batch = before_batch
        self.after_batch = after_batch
        self.batch = batch
        self.budget = budget
        self.interval_ms = interval_ms
        self.on_tick = on_tick          # called with time.perf_counter() at each tick (benchmarks)
        self._after_id = None
        self._running = False
        self.handled = 0                # events handled so far

    @property
    def running(self) -> bool:
        return self._running

    def start(self) -> None:
        if not self._running:
            self._running = True
            self._after_id = self.widget.after(0, self._tick)

    def stop(self) -> None:
        """Cancel the next tick; idempotent. Events left in the queue stay there."""
        self._running = False
        if self._after_id is not None:
            try:
                self.widget.after_cancel(self._after_id)
            except Exception:   # the interpreter is already gone
                pass
            self._after_id = None

    def drain_now(self) -> int:
        """Handle one batch at once (tests and shutdown); returns how many."""
        return self._drain()

    def _drain(self) -> int:
        n = 0
        deadline = time.perf_counter() + self.budget
        get = self._source().get_nowait
        if self.before_batch is not None:
            try:
                self.before_batch()
            except Exception:
                self.widget.report_callback_exception(*sys.exc_info())
        while n < self.batch:
            try:
                event = get()
            except queue.Empty:
                break
            n += 1
            try:
                self.handle(event)
            except Exception:
                self.widget.report_callback_exception(*sys.exc_info())
            if time.perf_counter() > deadline:
                break
        self.handled += n
        if self.after_batch is not None:
            try:
                self.after_batch(n)
            except Exception:
                self.widget.report_callback_exception(*sys.exc_info())
        return n

    def _tick(self) -> None:
        self._after_id = None
        if not self._running:
            return
        if self.on_tick is not None:
            self.on_tick(time.perf_counter())
        self._drain()
        if not self._running:       # a handler closed the window
            return
        if self._source().empty():
            self._after_id = self.widget.after(self.interval_ms, self._tick)
        else:
            self._after_id = self.widget.after_idle(self._tick)
