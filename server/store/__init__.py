"""Where the history lives: the store the hub appends to and pages from.

:mod:`.sqlite` is the embedded default (one file, one process). Every store
raises :class:`HistoryError` with a sentence when its history cannot be
used.
"""
from __future__ import annotations


class HistoryError(Exception):
    """The history file cannot be opened or used; the message says why, as a
    clause that reads after "natter server: " or "Could not host a room: "."""


class HistoryInUse(HistoryError):
    """Another server has the history file open; ``pid`` is that process."""

    def __init__(self, path: str, pid: int | None):
        who = f"process {pid}" if pid is not None else "a process that did not say its id"
        super().__init__(f"the history file {path} is in use by another Natter server ({who})")
        self.path = path
        self.pid = pid
