"""Files in terminal mode (issue 12): ``/send PATH`` and ``/get FID [PATH]``
for :mod:`chatgui.cli`.

A file message prints as a line of its own (``[14:02] <ann> [file
k3F9...] report.pdf (1.2 MiB): /get k3F9...``; a program's line says it is
one). ``/send`` offers the file to the current room, ``/get`` saves a file seen in this session to PATH (a folder or a
file name) or to the current folder under the file's own name made safe.
Progress goes to stderr, one line per tenth and at the end; a failure is a
sentence on stderr and makes the exit status 1. The session waits for the
transfers before it quits, as it waits for its messages.

Thread: the caller's (the terminal's main thread); the transfers run on
their own threads (:mod:`chatgui.net.transfers`) and post on the session's
queue.
"""
from __future__ import annotations

import os

from server import protocol as p

from chatgui.app.formatting import safe_text
from chatgui.net import events as ev
from chatgui.net import files


class TerminalFiles:
    def __init__(self, term, make_transfers):
        """``make_transfers(client)`` -> a Transfers on the session's queue."""
        self.term = term
        self.make_transfers = make_transfers
        self.transfers = None
        self.old: list = []
        self.seen: dict = {}          # file id -> FileInfo, of every file line printed
        self.moving: dict = {}        # tid -> [label, last tenth printed]
        self.failed = False

    def use(self, client) -> None:
        """A (new) network client: transfers go through it from now on."""
        if self.transfers is not None:
            self.old.append(self.transfers)
        self.transfers = self.make_transfers(client)

    @property
    def busy(self) -> bool:
        return bool(self.moving)

    def line(self, e) -> str:
        """The text of a message carrying a file; remembers it for /get."""
        info = e.file
        self.seen[info.id] = info
        s = safe_text
        note = " (a program: Natter never runs it)" if files.is_runnable(info.name, info.mime) else ""
        gone = " (expired: the server no longer has it)" if info.expired else ""
        return f"[file {s(info.id)}] {s(info.name)} ({p.human_size(info.size)}){note}{gone}: /get {s(info.id)}"

    def send(self, path: str, room: str) -> None:
        path = os.path.expanduser(path)
        if not os.path.isfile(path):
            self.term.error(f"not sent: there is no file {safe_text(path)}")
            self.failed = True
            return
        tid = self.transfers.send(path, room=room)
        self.moving[tid] = [f"sending {safe_text(os.path.basename(path))}", -1]

    def get(self, fid: str, path: str | None) -> None:
        info = self.seen.get(fid)
        if info is None:
            self.term.error(f"no file {safe_text(fid)} was shown in this session: its line gives its id")
            self.failed = True
            return
        name = files.safe_filename(info.name)
        dest = os.path.expanduser(path) if path else name
        if os.path.isdir(dest):
            dest = os.path.join(dest, name)
        tid = self.transfers.fetch(info, dest)
        self.moving[tid] = [f"receiving {safe_text(info.name)}", -1]

    def handle(self, e) -> bool:
        """True when ``e`` was about files (the session shows nothing else of it)."""
        if self.transfers is not None and self.transfers.on_event(e):
            return True
        kind = type(e)
        if kind is ev.TransferProgress:
            t = self.moving.get(e.tid)
            if t is not None and e.total and e.phase in ("sending", "receiving"):
                tenth = 10 * e.done // e.total
                if tenth > t[1]:
                    t[1] = tenth
                    speed = f", {p.human_size(int(e.speed))}/s" if e.speed else ""
                    left = f", {e.left:.0f} s left" if e.left is not None and e.done < e.total else ""
                    self.term.status(f"{t[0]}: {10 * tenth}%{speed}{left}")
            return True
        if kind is ev.TransferDone:
            t = self.moving.pop(e.tid, None)
            if t is not None:
                self.term.status(f"{t[0]}: done" + (f", saved as {safe_text(e.path)}" if e.path else ""))
            return True
        if kind is ev.TransferFailed:
            t = self.moving.pop(e.tid, None)
            if t is not None:
                self.term.error(f"{t[0]}: {safe_text(e.message)}")
                self.failed = True
            return True
        return False

    def close(self, timeout: float) -> None:
        for t in ([self.transfers] if self.transfers else []) + self.old:
            t.close(timeout=timeout)
