"""Dropping files on the window (issue 12), with tkinterdnd2: it wraps the
tkdnd Tcl package (shipped inside its wheel for Linux, Windows and macOS)
and loads it into our own Tk interpreter.

:func:`enable_drop` makes widgets drop targets for files; where tkdnd
cannot load (a platform its wheel has no build for, a Tk that refuses it,
tkinterdnd2 missing from a build) it returns the reason and the window
keeps the attach button and Ctrl+V only.

Thread: the Tk thread only.
"""
from __future__ import annotations

import logging
import tkinter as tk

log = logging.getLogger("natter.client")


def enable_drop(root: tk.Tk, widgets, on_drop) -> str | None:
    """Let files be dropped on each of ``widgets``: ``on_drop(paths)``.
    Returns None when it works, else why not (a sentence, also logged)."""
    try:
        from tkinterdnd2 import DND_FILES, TkinterDnD
        TkinterDnD._require(root)
    except Exception as e:       # ImportError, or tkdnd's TclError/RuntimeError: fall back to the button
        why = f"dropping files is off: the tkdnd package could not be loaded ({e})"
        log.info("%s", why)
        return why

    def dropped(event):
        paths = paths_of(root, event.data)
        if paths:
            on_drop(paths)
        return event.action

    for w in widgets:
        w.drop_target_register(DND_FILES)
        w.dnd_bind("<<Drop>>", dropped)
    return None


def paths_of(root: tk.Misc, data: str) -> list[str]:
    """tkdnd's file list (a Tcl list: ``{/a b/c.png} /d.txt``) -> paths."""
    try:
        return [str(p) for p in root.tk.splitlist(data) if str(p)]
    except tk.TclError:
        return []
