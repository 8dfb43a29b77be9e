"""GUI test support: a virtual X display the suite starts itself, windows
that fail the test when any Tk callback raised, and ``wait_until``.

The display: one ``Xvfb -displayfd`` per test session (it picks a free
display number and writes it to our pipe, so parallel runs cannot race for
a lock file); ``DISPLAY`` points at it for the session, and it is killed
and waited for at the end, so no stale ``/tmp/.X<n>-lock`` is left.

Thread: everything here runs on the test's main thread, which is the Tk
thread of every window it makes.
"""
from __future__ import annotations

import os
import time
import tkinter as tk

import pytest

from chatgui.app.settings import Settings
from tests import xvfb


@pytest.fixture(scope="session")
def display():
    """Start Xvfb and point DISPLAY at it for the session; yields ':N'."""
    proc, name = xvfb.start()
    old = os.environ.get("DISPLAY")
    os.environ["DISPLAY"] = name
    yield name
    if old is None:
        os.environ.pop("DISPLAY", None)
    else:
        os.environ["DISPLAY"] = old
    xvfb.stop(proc)


def wait_until(root: tk.Misc, cond, timeout: float = 5.0, what: str = "") -> None:
    """Pump Tk (``update()``) until ``cond()`` is true; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            root.update()
        except tk.TclError:         # the window was destroyed meanwhile
            pass
        if cond():
            return
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what or cond}")
        time.sleep(0.005)


@pytest.fixture
def make_window(display):
    """make_window(values=None, settings=None, **controller_kw) -> ChatWindow,
    started. After the test every window is closed and shut down, and the
    test fails if any Tk callback raised in any of them."""
    from chatgui.tk.window import ChatWindow
    windows = []

    def make(values=None, settings: Settings | None = None, **kw) -> ChatWindow:
        w = ChatWindow(settings or Settings(), **kw)
        windows.append(w)
        w.start(values)
        wait_until(w.root, w.root.winfo_ismapped, what="the window to appear")
        return w

    yield make
    errors = []
    for w in windows:
        w.quit()
        w.controller.shutdown(timeout=5.0)
        errors += w.errors
    assert not errors, "a Tk callback raised:\n" + "\n".join(errors)
