"""Files in the window (issue 12): the card a file message shows in the
conversation (:class:`FileCardWidget`, embedded in the conversation's
``tk.Text``), the progress bars of the transfers under it
(:class:`TransferBars`), and the picture viewer (:func:`show_picture`).

They build and forward: a card's buttons and its picture call
``controller.card_action(fid, action)``; a bar's Cancel calls
``controller.cancel_transfer(tid)``. The picture drawn is the PNG the
controller hands over (made by :mod:`chatgui.app.images` off the Tk
thread), never bytes a peer sent.

Thread: the Tk thread only.
"""
from __future__ import annotations

import base64
import tkinter as tk
from tkinter import ttk

from chatgui.app.view import FileCard, TransferView
from chatgui.tk import theme

BROKEN = "⚠ broken picture"


class FileCardWidget(tk.Frame):
    """One card; :meth:`show` redraws it for a new state of the same file."""

    def __init__(self, master, card: FileCard, fonts: theme.Fonts, pal: theme.Palette, controller):
        super().__init__(master, borderwidth=1, relief="solid", padx=8, pady=6, cursor="arrow")
        self.fonts, self.pal, self.controller = fonts, pal, controller
        self.card = card
        self.photo = None
        self._drawn = None           # the card.picture bytes self.photo was made from
        self.picture = tk.Label(self, borderwidth=0, cursor="hand2")
        self.picture.bind("<ButtonRelease-1>", lambda e: self.controller.card_action(self.card.fid, "view"))
        self.name = tk.Label(self, font=fonts.bold, anchor="w", justify="left")
        self.meta = tk.Label(self, font=fonts.small, anchor="w", justify="left")
        self.note = tk.Label(self, font=fonts.small, anchor="w", justify="left", wraplength=380)
        buttons = tk.Frame(self)
        self.buttons = buttons
        self.save_button = ttk.Button(buttons, text="Save…", takefocus=False,
                                      command=lambda: self.controller.card_action(self.card.fid, "save"))
        self.folder_button = ttk.Button(buttons, text="Open folder", takefocus=False,
                                        command=lambda: self.controller.card_action(self.card.fid, "open_folder"))
        self.save_button.pack(side="left")
        self.folder_button.pack(side="left", padx=(6, 0))
        self.show(card)

    def show(self, card: FileCard) -> None:
        self.card = card
        for w in (self.picture, self.name, self.meta, self.note, self.buttons):
            w.pack_forget()
        if card.image and card.picture is not None:
            if self.photo is None or self._drawn is not card.picture:   # an update (busy, saved) keeps it
                self.photo = _photo(self, card.picture)
            self._drawn = card.picture
            self.picture.configure(image=self.photo, text="", cursor="hand2")
            self.picture.pack(anchor="w", pady=(0, 4))
        elif card.image and card.broken:
            self.photo = None
            self.picture.configure(image="", text=BROKEN, font=self.fonts.bold, cursor="arrow", padx=10, pady=8)
            self.picture.pack(anchor="w", pady=(0, 4))
        elif card.image and not card.gone:
            self.picture.configure(image="", text="loading the picture…", font=self.fonts.small,
                                   cursor="arrow", padx=10, pady=8)
            self.picture.pack(anchor="w", pady=(0, 4))
        self.name.configure(text=("▶ " if card.runnable else "") + card.name)
        self.name.pack(anchor="w")
        self.meta.configure(text=f"{card.size} · file {card.fid}")
        self.meta.pack(anchor="w")
        if card.note:
            self.note.configure(text=card.note)
            self.note.pack(anchor="w", pady=(2, 0))
        self.save_button.configure(state="disabled" if card.busy else "normal")
        for b in (self.save_button, self.folder_button):
            b.pack_forget()
        if not card.gone:                   # gone: nothing to fetch, the note says why
            self.save_button.pack(side="left")
        if card.saved:
            self.folder_button.pack(side="left", padx=(6, 0) if not card.gone else 0)
        if not card.gone or card.saved:
            self.buttons.pack(anchor="w", pady=(4, 0))
        self.apply_palette(self.pal)

    def apply_palette(self, pal: theme.Palette) -> None:
        self.pal = pal
        bg = pal.panel
        for w in (self, self.buttons, self.picture, self.name, self.meta, self.note):
            w.configure(background=bg)
        self.configure(highlightbackground=pal.border, highlightcolor=pal.border)
        self.name.configure(foreground=pal.fg)
        self.meta.configure(foreground=pal.muted)
        warn = self.card.runnable or self.card.broken or self.card.gone
        self.note.configure(foreground=pal.error_fg if warn else pal.muted)
        self.picture.configure(foreground=pal.error_fg if self.card.broken else pal.muted)


class TransferBars(ttk.Frame):
    """The progress bars of the transfers running, one row each (hidden when none)."""

    def __init__(self, master, fonts: theme.Fonts, controller):
        super().__init__(master, style="Chat.TFrame", padding=(12, 4, 12, 0))
        self.fonts, self.controller = fonts, controller
        self.columnconfigure(1, weight=1)
        self.rows: dict[str, tuple] = {}       # tid -> (label, bar, detail, cancel)

    def show_transfer(self, tv: TransferView) -> None:
        row = self.rows.get(tv.tid)
        if row is None:
            n = len(self.rows) and max(int(r[1].grid_info()["row"]) for r in self.rows.values()) + 1
            label = ttk.Label(self, style="Muted.TLabel")
            bar = ttk.Progressbar(self, orient="horizontal", length=220, maximum=1000)
            detail = ttk.Label(self, style="Muted.TLabel")
            cancel = ttk.Button(self, text="Cancel", style="Flat.TButton", takefocus=False,
                                command=lambda tid=tv.tid: self.controller.cancel_transfer(tid))
            label.grid(row=n, column=0, sticky="w", padx=(0, 8))
            bar.grid(row=n, column=1, sticky="ew")
            detail.grid(row=n, column=2, sticky="w", padx=(8, 8))
            cancel.grid(row=n, column=3, sticky="e")
            row = self.rows[tv.tid] = (label, bar, detail, cancel)
        label, bar, detail, _ = row
        label.configure(text=tv.label)
        detail.configure(text=tv.detail)
        if tv.fraction is None:
            if str(bar.cget("mode")) != "indeterminate":
                bar.configure(mode="indeterminate")
                bar.start(30)
        else:
            if str(bar.cget("mode")) != "determinate":
                bar.stop()
                bar.configure(mode="determinate")
            bar.configure(value=round(1000 * max(0.0, min(1.0, tv.fraction))))

    def end_transfer(self, tid: str) -> None:
        row = self.rows.pop(tid, None)
        if row is not None:
            row[1].stop()
            for w in row:
                w.destroy()

    def value(self, tid: str) -> float | None:
        """The bar's fraction (for tests)."""
        row = self.rows.get(tid)
        return None if row is None else float(row[1].cget("value")) / 1000


def show_picture(root: tk.Misc, title: str, png: bytes, pal: theme.Palette) -> tk.Toplevel:
    """A window of its own with the picture (already scaled to fit by the controller)."""
    top = tk.Toplevel(root)
    top.title(title)
    top.configure(background=pal.bg)
    photo = _photo(top, png)
    label = tk.Label(top, image=photo, background=pal.bg, borderwidth=0)
    label.image = photo             # keep it: Tk draws only what Python still holds
    label.pack(padx=8, pady=8)
    top.bind("<Escape>", lambda e: top.destroy())
    return top


def _photo(master: tk.Misc, png: bytes) -> tk.PhotoImage:
    """A PNG's bytes as a Tk image (Tk reads base64 text)."""
    return tk.PhotoImage(master=master, data=base64.b64encode(png).decode("ascii"))
