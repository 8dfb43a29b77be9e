"""The settings dialog (the header's **Settings…**): this computer's
identity fingerprint, which a server's operator names to make someone an
admin (``--admin-identity FINGERPRINT``), in a read-only field that can be
selected and copied, with a **Copy** button; and how big a picture may be
to be fetched without asking (issue 12), in MiB, saved as it is changed.

Thread: the Tk thread only.
"""
from __future__ import annotations

import tkinter as tk
from tkinter import ttk
from typing import Callable

from chatgui.app.view import APP_NAME
from chatgui.tk import theme

TITLE = f"Settings — {APP_NAME}"
EXPLAIN = ("Your identity is a secret kept on this computer; it keeps your nick yours and your roles "
           "(teacher, helper) with you. Its fingerprint below is safe to share: give it to whoever runs "
           "the server to be made an admin there (--admin-identity FINGERPRINT).")
NO_IDENTITY = "No identity yet: it is made when you first connect."
PICTURES = "Fetch pictures without asking up to (MiB):"
PICTURES_EXPLAIN = ("A click on a picture fetches the original up to this size (and a picture sent "
                    "without a thumbnail is fetched to make one); bigger ones are saved with Save. 0: never.")


class SettingsDialog:
    """``on_copy(text)`` puts the fingerprint on the clipboard."""

    def __init__(self, master: tk.Misc, fonts: theme.Fonts, pal: theme.Palette, fingerprint: str | None,
                 *, on_copy: Callable[[str], None], picture_mib: float = 5.0,
                 on_picture_mib: Callable[[float], None] | None = None):
        """``on_picture_mib(mib)``: the pictures' size was changed to a valid number."""
        self.on_copy = on_copy
        self.on_picture_mib = on_picture_mib
        self.fingerprint = fingerprint
        top = self.top = tk.Toplevel(master)
        top.title(TITLE)
        top.transient(master.winfo_toplevel())
        frame = ttk.Frame(top, padding=(18, 14, 18, 14), style="Chat.TFrame")
        frame.pack(fill="both", expand=True)
        frame.columnconfigure(0, weight=1)
        ttk.Label(frame, text="Settings", style="Title.TLabel").grid(row=0, column=0, columnspan=2, sticky="w",
                                                                   pady=(0, 10))
        ttk.Label(frame, text="This computer's identity", style="Card.TLabel").grid(row=1, column=0, sticky="w")
        ttk.Label(frame, text=EXPLAIN, style="CardMuted.TLabel", wraplength=640, justify="left").grid(
            row=2, column=0, columnspan=2, sticky="w", pady=(2, 8))
        self.value = tk.StringVar(master=top, value=fingerprint or NO_IDENTITY)
        # Read-only, yet selectable (Ctrl+C copies a selection), all 64 digits in view: as the
        # operator types it, so what is selected and copied works as it is.
        self.field = ttk.Entry(frame, textvariable=self.value, state="readonly", font=fonts.mono,
                               width=66 if fingerprint else len(NO_IDENTITY))
        self.field.grid(row=3, column=0, sticky="ew")
        self.copy_button = ttk.Button(frame, text="Copy", command=self.copy)
        self.copy_button.grid(row=3, column=1, padx=(8, 0))
        if not fingerprint:
            self.copy_button.state(["disabled"])
        self.copied = ttk.Label(frame, text="", style="CardMuted.TLabel")
        self.copied.grid(row=4, column=0, sticky="w", pady=(4, 0))
        pictures = ttk.Frame(frame, style="Chat.TFrame")
        pictures.grid(row=5, column=0, columnspan=2, sticky="w", pady=(14, 0))
        ttk.Label(pictures, text=PICTURES, style="Card.TLabel").grid(row=0, column=0, sticky="w")
        self.picture_mib = tk.StringVar(master=top, value=f"{picture_mib:g}")
        self.picture_box = ttk.Spinbox(pictures, from_=0, to=1000, increment=1, width=6,
                                       textvariable=self.picture_mib)
        self.picture_box.grid(row=0, column=1, padx=(8, 0))
        self.picture_mib.trace_add("write", lambda *_: self._picture_changed())
        ttk.Label(frame, text=PICTURES_EXPLAIN, style="CardMuted.TLabel", wraplength=640, justify="left").grid(
            row=6, column=0, columnspan=2, sticky="w", pady=(2, 0))
        self.close_button = ttk.Button(frame, text="Close", command=self.close)
        self.close_button.grid(row=7, column=1, sticky="e", pady=(12, 0))
        top.bind("<Escape>", lambda e: self.close())
        top.protocol("WM_DELETE_WINDOW", self.close)
        top.configure(background=pal.bg)
        top.update_idletasks()
        root = master.winfo_toplevel()
        x = root.winfo_rootx() + max(0, (root.winfo_width() - top.winfo_reqwidth()) // 2)
        y = root.winfo_rooty() + max(0, (root.winfo_height() - top.winfo_reqheight()) // 3)
        top.geometry(f"+{x}+{y}")
        self.field.focus_set()

    @property
    def alive(self) -> bool:
        try:
            return bool(self.top.winfo_exists())
        except tk.TclError:
            return False

    def set_fingerprint(self, fingerprint: str | None) -> None:
        self.fingerprint = fingerprint
        self.value.set(fingerprint or NO_IDENTITY)
        self.copy_button.state(["!disabled"] if fingerprint else ["disabled"])

    def copy(self) -> None:
        if self.fingerprint:
            self.on_copy(self.fingerprint)
            self.copied.configure(text="Copied.")

    def _picture_changed(self) -> None:
        try:
            mib = float(self.picture_mib.get().strip().replace(",", "."))
        except ValueError:
            return                  # being typed; the last valid number stays
        if 0 <= mib <= 1000 and self.on_picture_mib is not None:
            self.on_picture_mib(mib)

    def close(self) -> None:
        if self.alive:
            self.top.destroy()
