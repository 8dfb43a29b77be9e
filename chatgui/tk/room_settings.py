"""The room settings dialog (ops only; the header's **Room settings…**):
the room's modes in plain words (:data:`chatgui.app.view.MODE_LABELS`:
"Only I and helpers can speak", "Questions go to me first", "Only I speak
(announcements)", "Slow mode" with its seconds, "Private messages between
members"), the key and the topic.

**Save** checks what was typed (slow mode needs a whole number of seconds
from 1 to :data:`~chatgui.app.view.SLOW_MAX`; a sentence under the fields
says so and nothing is sent) and calls ``on_apply(room, modes, topic,
key)`` with ``key`` None (unchanged), "" (no key any more) or the new key;
then the dialog closes. **Cancel** and Escape close it.

Everything goes through plain variables and buttons, so tests set the
fields and ``invoke()`` Save, as idlelib's dialogs are driven.

Thread: the Tk thread only.
"""
from __future__ import annotations

import tkinter as tk
from tkinter import ttk

from chatgui.app.view import APP_NAME, MODE_LABELS, SLOW_MAX, Modes, RoomSettings
from chatgui.tk import theme

DEFAULT_SLOW = 30       # seconds offered when slow mode is ticked from off


class RoomSettingsDialog:
    def __init__(self, master: tk.Misc, fonts: theme.Fonts, pal: theme.Palette, settings: RoomSettings,
                 *, on_apply):
        self.settings = settings
        self.on_apply = on_apply
        top = self.top = tk.Toplevel(master)
        try:
            top.title(f"Settings of {settings.title} — {APP_NAME}")
        except (tk.TclError, UnicodeError):
            top.title(f"Room settings — {APP_NAME}")
        top.transient(master.winfo_toplevel())
        frame = ttk.Frame(top, padding=(18, 14, 18, 14), style="Chat.TFrame")
        frame.pack(fill="both", expand=True)
        frame.columnconfigure(1, weight=1)
        self.frame = frame
        m = settings.modes

        ttk.Label(frame, text=f"Settings of {settings.title}", style="Title.TLabel").grid(
            row=0, column=0, columnspan=3, sticky="w", pady=(0, 10))
        ttk.Label(frame, text="Who can speak", style="CardMuted.TLabel").grid(row=1, column=0, columnspan=3,
                                                                            sticky="w")
        self.vars: dict[str, tk.Variable] = {}
        self.checks: dict[str, ttk.Checkbutton] = {}
        row = 2
        for field in ("moderated", "announce", "questions", "dm"):
            var = self.vars[field] = tk.BooleanVar(master=top, value=getattr(m, field))
            check = self.checks[field] = ttk.Checkbutton(frame, text=MODE_LABELS[field], variable=var)
            check.grid(row=row, column=0, columnspan=3, sticky="w", pady=2)
            row += 1

        slow_row = ttk.Frame(frame, style="Chat.TFrame")
        slow_row.grid(row=row, column=0, columnspan=3, sticky="w", pady=2)
        self.vars["slow_on"] = tk.BooleanVar(master=top, value=m.slow > 0)
        self.checks["slow"] = ttk.Checkbutton(slow_row, text=MODE_LABELS["slow"], variable=self.vars["slow_on"],
                                              command=self._sync_slow)
        self.checks["slow"].grid(row=0, column=0, sticky="w")
        ttk.Label(slow_row, text="one message every", style="Card.TLabel").grid(row=0, column=1, padx=(8, 6))
        self.slow = tk.StringVar(master=top, value=str(m.slow or DEFAULT_SLOW))
        self.slow_entry = ttk.Spinbox(slow_row, from_=1, to=SLOW_MAX, increment=5, width=7, textvariable=self.slow)
        self.slow_entry.grid(row=0, column=2)
        ttk.Label(slow_row, text="seconds per person", style="Card.TLabel").grid(row=0, column=3, padx=(6, 0))
        row += 1

        ttk.Separator(frame).grid(row=row, column=0, columnspan=3, sticky="ew", pady=10)
        row += 1
        ttk.Label(frame, text="Topic", style="Card.TLabel").grid(row=row, column=0, sticky="w", padx=(0, 10))
        self.topic = tk.StringVar(master=top, value=settings.topic)
        self.topic_entry = ttk.Entry(frame, textvariable=self.topic, width=44)
        self.topic_entry.grid(row=row, column=1, columnspan=2, sticky="ew", pady=2)
        row += 1
        ttk.Label(frame, text="Key", style="Card.TLabel").grid(row=row, column=0, sticky="w", padx=(0, 10))
        self.key = tk.StringVar(master=top)
        self.key_entry = ttk.Entry(frame, textvariable=self.key, show="•")
        self.key_entry.grid(row=row, column=1, sticky="ew", pady=2)
        self.vars["no_key"] = tk.BooleanVar(master=top, value=False)
        self.checks["no_key"] = ttk.Checkbutton(frame, text="No key", variable=self.vars["no_key"],
                                                command=self._sync_key)
        self.checks["no_key"].grid(row=row, column=2, sticky="w", padx=(10, 0))
        row += 1
        key_note = ("This room has a key: type a new one to change it, or tick No key."
                    if m.key else "Anyone on the server can join: type a key to ask for one.")
        self.key_note = ttk.Label(frame, text=key_note, style="CardMuted.TLabel")
        self.key_note.grid(row=row, column=1, columnspan=2, sticky="w")
        row += 1

        self.note = ttk.Label(frame, text="", style="Error.TLabel", wraplength=460)
        self.note.grid(row=row, column=0, columnspan=3, sticky="w", pady=(8, 0))
        row += 1
        buttons = ttk.Frame(frame, style="Chat.TFrame")
        buttons.grid(row=row, column=0, columnspan=3, sticky="e", pady=(10, 0))
        self.cancel_button = ttk.Button(buttons, text="Cancel", command=self.close)
        self.cancel_button.grid(row=0, column=0)
        self.save_button = ttk.Button(buttons, text="Save", style="Accent.TButton", command=self.save)
        self.save_button.grid(row=0, column=1, padx=(8, 0))

        top.bind("<Escape>", lambda e: self.close())
        top.protocol("WM_DELETE_WINDOW", self.close)
        top.configure(background=pal.bg)
        self._sync_slow()
        self._sync_key()
        self._place(master)
        self.topic_entry.focus_set()

    def _place(self, master: tk.Misc) -> None:
        """Over the middle of the chat window (there may be no window manager)."""
        top, root = self.top, master.winfo_toplevel()
        top.update_idletasks()
        w, h = top.winfo_reqwidth(), top.winfo_reqheight()
        x = root.winfo_rootx() + max(0, (root.winfo_width() - w) // 2)
        y = root.winfo_rooty() + max(0, (root.winfo_height() - h) // 3)
        top.geometry(f"+{x}+{y}")

    @property
    def alive(self) -> bool:
        try:
            return bool(self.top.winfo_exists())
        except tk.TclError:
            return False

    def _sync_slow(self) -> None:
        self.slow_entry.state(["!disabled"] if self.vars["slow_on"].get() else ["disabled"])

    def _sync_key(self) -> None:
        self.key_entry.state(["disabled"] if self.vars["no_key"].get() else ["!disabled"])

    def values(self) -> tuple[Modes, str, str | None] | str:
        """(modes, topic, key) as the fields say, or a sentence saying what to fix."""
        slow = 0
        if self.vars["slow_on"].get():
            text = self.slow.get().strip()
            if not text.isdigit() or not 1 <= int(text) <= SLOW_MAX:
                return (f"Slow mode needs a whole number of seconds from 1 to {SLOW_MAX} "
                        f"(one day); \"{text}\" is not one.")
            slow = int(text)
        v = self.vars
        modes = Modes(moderated=v["moderated"].get(), questions=v["questions"].get(),
                      announce=v["announce"].get(), slow=slow, dm=v["dm"].get(),
                      key=self.settings.modes.key)
        if v["no_key"].get():
            key = ""
        else:
            key = self.key.get() or None
        return modes, self.topic.get().strip(), key

    def save(self) -> None:
        got = self.values()
        if isinstance(got, str):
            self.note.configure(text=got)
            self.slow_entry.focus_set()
            return
        modes, topic, key = got
        self.on_apply(self.settings.room, modes, topic, key)
        self.close()

    def close(self) -> None:
        if self.alive:
            self.top.destroy()
