"""The controller's part for files and pictures (issue 12), mixed into
:class:`chatgui.app.controller.Controller`: what the user sends, the
cards of what others sent, and the progress bars.

- Sending: :meth:`Files.attach` (the attach button, a drop, ``/send``) and
  :meth:`Files.paste_image` (Ctrl+V of a picture: the clipboard is read on
  a ``clipboard-grab`` thread and saved as ``screenshot-YYYYMMDD-HHMMSS.png``)
  start a :class:`chatgui.net.transfers.Transfers` upload to the
  conversation on screen; its progress bar has speed, time left and Cancel.
- Receiving: a message or dm with a ``file`` becomes a :class:`FileCard`
  in its conversation. A picture (PNG, JPEG, GIF, WebP) shows the sender's
  thumbnail, decoded on the ``image-decode`` thread
  (:mod:`chatgui.app.images`: restricted formats, a pixel cap; anything
  else is a broken-image card); a picture without one is fetched and
  shrunk here when it is at most ``settings.auto_image_bytes``. A click on
  it fetches the original (up to that size without asking, else Save) and
  shows it in a window. Other files: Save (asks where), then Open folder.
  Nothing received is ever opened or run: Save writes a file that is not
  executable; a program's card says what it is.

Thread: the Tk thread, like the rest of the controller; the transfers and
the decoder post their events on :attr:`events`.
"""
from __future__ import annotations

import datetime
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, replace

from server import protocol as p

from chatgui.app import images
from chatgui.app.view import FileCard, Line, TransferView
from chatgui.net import events as ev
from chatgui.net import files

log = logging.getLogger("natter.client")

_OFFER_ANSWERS = (p.UploadReady, ev.Refused)    # what Transfers.on_event may take
RUNNABLE_NOTE = ("A program or script: opening it may run it. Natter never opens it; "
                 "save it and run it only if you trust {who}.")
EXPIRED_NOTE = "The server no longer has this file (it expired to make room for newer ones)."
GONE_NOTE = "The server no longer has this file (it was deleted or expired)."


@dataclass(frozen=True)
class ClipboardImage:
    """What the ``clipboard-grab`` thread found: ``path`` of the saved PNG,
    or None and ``why``."""
    path: str | None
    why: str = ""


@dataclass
class _Card:
    info: object                 # server.protocol.FileInfo
    card: FileCard
    path: str | None = None      # where the bytes are on this computer (saved or cached)


@dataclass
class _Transfer:
    label: str
    fid: object = None           # a download's file
    purpose: str = ""            # upload | save | view | preview


class Files:
    """Mixin: the files part of the controller (see the module docstring)."""

    def _init_files(self, transfers_factory=None, grab_clipboard=None, open_folder=None) -> None:
        self.transfers_factory = transfers_factory or _default_transfers
        self.grab_clipboard = grab_clipboard or grab_clipboard_image
        self.open_folder = open_folder or open_folder_in_file_manager
        self.transfers = None
        self._old_transfers: list = []
        self.decoder = images.Decoder(self.events)
        self.cards: dict = {}             # file id -> _Card
        self.moving: dict = {}            # transfer id -> _Transfer
        self._cache: str | None = None    # a folder of this run for pictures fetched to be shown

    def _files_new_client(self) -> None:
        """A new network client (with its new events queue)."""
        if self.transfers is not None:
            self.transfers.close(timeout=0)
            self._old_transfers.append(self.transfers)
        for tid in list(self.moving):
            self._tell("end_transfer", tid)
        self.moving.clear()
        self.decoder.events = self.events
        self.transfers = self.transfers_factory(self.client, self.events, images.make_thumb)

    def _files_shutdown(self, deadline: float) -> None:
        for t in ([self.transfers] if self.transfers is not None else []) + self._old_transfers:
            t.close(timeout=max(0.0, deadline - time.monotonic()))
        self.decoder.close(timeout=max(0.0, deadline - time.monotonic()))
        if self._cache is not None:
            shutil.rmtree(self._cache, ignore_errors=True)

    def _files_event(self, event) -> bool:
        """The transfers see the answers to their offers first (the only
        kinds they answer: every chat event passes here)."""
        return (type(event) in _OFFER_ANSWERS and self.transfers is not None
                and self.transfers.on_event(event))

    # -- sending -------------------------------------------------------------

    def attach(self, paths) -> None:
        """Send each file to the conversation on screen."""
        for path in paths:
            self._send_file(os.path.expanduser(str(path)))

    def choose_files(self) -> None:
        """The attach button."""
        chosen = self._ask_view("ask_files")
        if chosen:
            self.attach(chosen)

    def _send_file(self, path: str, name: str | None = None) -> None:
        if self.client is None or self.transfers is None:
            return self._error("You are not connected.")
        name = name or os.path.basename(path)
        if not os.path.isfile(path):
            return self._error(f"Not sent: there is no file {self.safe(path)}.")
        model = self.rooms.current
        if model is not None and not model.private and not model.joined:
            return self._error(f"You are not in {self.safe(model.label)} any more: /join "
                               f"{self.safe(model.name)} to send files there.")
        where = model.label if model is not None else "#" + p.LOBBY
        if model is not None and model.private:
            tid = self.transfers.send(path, to=model.name, name=name)
        else:
            tid = self.transfers.send(path, room=model.name if model is not None else p.LOBBY, name=name)
        label = f"Sending {self.safe(name, False)} to {self.safe(where, False)}"
        self.moving[tid] = _Transfer(label, purpose="upload")
        self._tell("show_transfer", TransferView(tid, label, None, "reading the file…"))

    def paste_image(self) -> None:
        """Ctrl+V with no text on the clipboard: send the picture on it, if any."""
        if self.client is None:
            return self._error("You are not connected.")
        folder = self._cache_dir()
        name = datetime.datetime.now().strftime("screenshot-%Y%m%d-%H%M%S.png")
        post, grab = self.events.put, self.grab_clipboard
        path = os.path.join(folder, name)

        def run():
            try:
                post(grab(path))
            except Exception as e:        # a bug in here must not leave the paste unanswered
                log.exception("reading the clipboard failed")
                post(ClipboardImage(None, f"the clipboard could not be read ({e!r})"))
        threading.Thread(target=run, name="clipboard-grab", daemon=True).start()

    def on_ClipboardImage(self, e: ClipboardImage) -> None:
        if e.path is None:
            self._system(f"Nothing pasted: {e.why}")
            return
        self._send_file(e.path)

    def cancel_transfer(self, tid: str) -> None:
        if self.transfers is not None and tid in self.moving:
            self.transfers.cancel(tid)

    # -- progress --------------------------------------------------------------

    def on_TransferProgress(self, e: ev.TransferProgress) -> None:
        t = self.moving.get(e.tid)
        if t is None:
            return
        fraction = e.done / e.total if e.total else None
        self._tell("show_transfer", TransferView(e.tid, t.label, fraction, progress_words(e)))

    def on_TransferDone(self, e: ev.TransferDone) -> None:
        t = self.moving.pop(e.tid, None)
        if t is None:
            return
        self._tell("end_transfer", e.tid)
        c = self.cards.get(t.fid)
        if t.purpose == "upload" or c is None:
            return
        c.path = e.path
        if t.purpose == "save":
            c.card = replace(c.card, saved=True, busy=False)
            self._tell("update_card", c.card)
            self._system(f"Saved {self.safe(c.info.name)} as {self.safe(e.path)}.")
        else:
            c.card = replace(c.card, busy=False)
            self._tell("update_card", c.card)
            side = images.VIEW_SIDE if t.purpose == "view" else images.SHOWN_SIDE
            self.decoder.decode((t.purpose, t.fid), side, path=e.path)

    def on_TransferFailed(self, e: ev.TransferFailed) -> None:
        t = self.moving.pop(e.tid, None)
        if t is None:
            return
        self._tell("end_transfer", e.tid)
        c = self.cards.get(t.fid)
        if c is not None and e.code == p.NO_SUCH_FILE:      # deleted or expired since its card was drawn
            c.card = replace(c.card, busy=False, gone=True, note=GONE_NOTE)
            self._tell("update_card", c.card)
        elif c is not None:
            c.card = replace(c.card, busy=False)
            self._tell("update_card", c.card)
        if e.cancelled:
            self._system(f"Stopped: {self.safe(t.label[0].lower() + t.label[1:])}.")
        else:
            self._error(f"{t.label}: {self.safe(e.message)}")

    # -- receiving ---------------------------------------------------------------

    def _file_line(self, line: Line, m) -> Line:
        """The line of a message that carries a file: its card instead of the text."""
        info = m.file
        who = "you" if self._mine(m) else (m.sender or "the sender")
        card = FileCard(fid=self.safe(info.id, False), name=self.safe(info.name, False),
                        size=p.human_size(info.size), image=files.is_image(info),
                        runnable=files.is_runnable(info.name, info.mime),
                        gone=info.expired)
        note = []
        if card.runnable:
            note.append(RUNNABLE_NOTE.format(who=self.safe(who, False)))
        if info.expired:
            note.append(EXPIRED_NOTE)
        card = replace(card, note=" ".join(note))
        old = self.cards.get(info.id)
        if old is not None:
            if info.expired and not old.card.gone:      # expired since it was first shown (catch-up)
                old.card = replace(old.card, gone=True, busy=False, note=EXPIRED_NOTE)
                self._tell("update_card", old.card)
            card = old.card                  # shown again (history, another page): as it is now
        else:
            self.cards[info.id] = _Card(info, card)
            self._first_look(self.cards[info.id])
        return replace(line, text="", links=(), card=card)

    def _first_look(self, c: _Card) -> None:
        """A new card: start making its picture."""
        if not c.card.image or c.card.gone:
            return
        thumb = files.thumb_bytes(c.info)
        if thumb is not None:
            self.decoder.decode(("thumb", c.info.id), images.SHOWN_SIDE, data=thumb)
        elif c.info.size <= self.settings.auto_image_bytes:
            self._fetch(c, "preview")

    def on_ImageReady(self, e: images.ImageReady) -> None:
        purpose, fid = e.key
        c = self.cards.get(fid)
        if c is None:
            return
        if purpose == "view":
            if e.png is None:
                self._error(f"{self.safe(c.info.name)} cannot be shown: {self.safe(e.why)}.")
            else:
                self._tell("show_picture", self.safe(c.info.name, False), e.png)
            return
        if e.png is None:
            c.card = replace(c.card, picture=None, broken=True,
                             note=f"This picture cannot be shown: {self.safe(e.why)}.")
        else:
            c.card = replace(c.card, picture=e.png, broken=False)
        self._tell("update_card", c.card)

    def card_action(self, fid, action: str) -> None:
        """A card's button (save, open_folder) or a click on its picture (view)."""
        c = self._card_by_shown_id(fid)
        if c is None:
            return
        if action == "open_folder" and c.card.saved and c.path:
            self.open_folder(os.path.dirname(c.path))
        elif action == "save":
            self._save(c)
        elif action == "view" and c.card.image and not c.card.broken and not c.card.gone:
            if c.path and os.path.exists(c.path):
                self.decoder.decode(("view", c.info.id), images.VIEW_SIDE, path=c.path)
            elif c.info.size <= self.settings.auto_image_bytes:
                self._fetch(c, "view")
            else:
                self._system(f"{self.safe(c.info.name)} is {p.human_size(c.info.size)}, more than "
                             f"{p.human_size(self.settings.auto_image_bytes)} fetched without asking: "
                             "Save it to see it.")

    def _save(self, c: _Card, path: str | None = None) -> None:
        if c.card.gone:
            return self._error(f"The server no longer has {self.safe(c.info.name)}.")
        if path is None:
            path = self._ask_view("ask_save_path", files.safe_filename(c.info.name), self.downloads_folder())
            if not path:
                return
        self._fetch(c, "save", path)

    def _fetch(self, c: _Card, purpose: str, path: str | None = None) -> None:
        if self.transfers is None:
            return self._error("You are not connected.")
        if any(t.fid == c.info.id and t.purpose == purpose for t in self.moving.values()):
            return
        if path is None:
            path = os.path.join(self._cache_dir(), f"{files.safe_filename(str(c.info.id))}"
                                                   f"{os.path.splitext(files.safe_filename(c.info.name))[1]}")
        tid = self.transfers.fetch(c.info, path)
        label = f"Receiving {self.safe(c.info.name, False)}"
        self.moving[tid] = _Transfer(label, fid=c.info.id, purpose=purpose)
        if purpose in ("save", "view"):     # a preview is fetched quietly, before its card is drawn
            c.card = replace(c.card, busy=True)
            self._tell("update_card", c.card)
            self._tell("show_transfer", TransferView(tid, label, 0.0, "starting…"))

    def _cmd_SendFile(self, cmd) -> None:
        self.attach([cmd.path])

    def _cmd_GetFile(self, cmd) -> None:
        c = self._card_by_shown_id(cmd.file)
        if c is None:
            return self._error(f"No file {self.safe(cmd.file)} has been shown here. Its card shows its id.")
        path = os.path.expanduser(cmd.path) if cmd.path else None
        if path is not None and os.path.isdir(path):
            path = os.path.join(path, files.safe_filename(c.info.name))
        self._save(c, path or os.path.join(self.downloads_folder(), files.safe_filename(c.info.name)))

    def set_auto_image_mib(self, mib: float) -> None:
        """The settings dialog: pictures up to ``mib`` MiB are fetched without asking (saved)."""
        n = int(round(min(1000.0, max(0.0, float(mib))) * 1024 * 1024))
        if n != self.settings.auto_image_bytes:
            self.settings.auto_image_bytes = n
            self.save_settings(self.settings)

    # -- helpers ---------------------------------------------------------------

    def _card_by_shown_id(self, fid):
        c = self.cards.get(fid)
        if c is None:
            c = next((c for c in self.cards.values() if c.card.fid == fid), None)
        return c

    def downloads_folder(self) -> str:
        folder = self.settings.downloads
        if folder and os.path.isdir(folder):
            return folder
        home = os.path.expanduser("~")
        downloads = os.path.join(home, "Downloads")
        return downloads if os.path.isdir(downloads) else home

    def _cache_dir(self) -> str:
        if self._cache is None:
            self._cache = tempfile.mkdtemp(prefix="natter-files-")
        return self._cache

    def _ask_view(self, method: str, *args):
        call = getattr(self.view, method, None)
        return call(*args) if call is not None else None


def progress_words(e: ev.TransferProgress) -> str:
    """ "3.1 MiB of 50.0 MiB · 12.0 MiB/s · 4 s left" """
    if e.phase == "checking":
        return f"reading the file… {p.human_size(e.done)} of {p.human_size(e.total)}"
    if e.phase == "waiting":
        return "waiting for the server…"
    parts = [f"{p.human_size(e.done)} of {p.human_size(e.total)}"]
    if e.speed:
        parts.append(f"{p.human_size(int(e.speed))}/s")
    if e.left is not None:
        parts.append(_duration(e.left) + " left")
    return " · ".join(parts)


def _duration(seconds: float) -> str:
    s = int(seconds + 0.999)
    if s < 60:
        return f"{s} s"
    if s < 3600:
        return f"{s // 60} min {s % 60:02d} s"
    return f"{s // 3600} h {s % 3600 // 60:02d} min"


def _default_transfers(client, events, thumbnailer):
    from chatgui.net.transfers import Transfers
    return Transfers(client, events, thumbnailer)


def grab_clipboard_image(path: str) -> ClipboardImage:
    """clipboard-grab thread: save the clipboard's picture at ``path`` as PNG.
    Pillow's ImageGrab runs ``wl-paste`` or ``xclip`` on Linux."""
    if not images.PILLOW:
        return ClipboardImage(None, "pasting pictures needs Pillow, which this Natter lacks.")
    from PIL import ImageGrab
    try:
        grabbed = ImageGrab.grabclipboard()
    except Exception as e:        # no xclip / wl-paste, or no display: say so
        return ClipboardImage(None, f"the clipboard holds no picture Natter can read ({e}).")
    if isinstance(grabbed, list):           # file names copied in a file manager
        return ClipboardImage(None, "the clipboard holds file names; drop the files on the window "
                                    "or use the attach button instead.")
    if grabbed is None:
        return ClipboardImage(None, "the clipboard holds no picture.")
    grabbed.save(path, "PNG")
    return ClipboardImage(path)


def open_folder_in_file_manager(folder: str) -> None:
    """Show a folder (never a file) in the system's file manager, without waiting for it."""
    cmd = (["explorer", folder] if sys.platform == "win32" else
           ["open", folder] if sys.platform == "darwin" else ["xdg-open", folder])

    def run():          # on an open-folder thread: a file manager may take its time to answer
        try:
            subprocess.run(cmd, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                           stderr=subprocess.DEVNULL, timeout=120)
        except (OSError, subprocess.SubprocessError) as e:
            log.warning("could not open the folder %s: %s", folder, e)
    threading.Thread(target=run, name="open-folder", daemon=True).start()
