"""The rooms browser (``/rooms``, the room list's "Browse…"): a window over
the chat listing every room of the server with its topic, how many people
are in it, a lock for a room that needs a key, and "joined" for ours.

Join (the button, a double-click or Enter on a row) calls
``on_join(name, key)``: for a room with a key that we are not in, the key
field comes first, and Join with it empty says so instead of calling. The
field under the list creates a room (joining a room that does not exist
creates it), with an optional key. After a join the browser closes.

Everything goes through plain buttons and methods (:meth:`select`,
:meth:`join`, :meth:`create`), so tests drive it with ``invoke()`` and no
mouse, as idlelib's dialogs are driven.

Thread: the Tk thread only.
"""
from __future__ import annotations

import tkinter as tk
from tkinter import ttk
from typing import Sequence

from chatgui.app.view import APP_NAME, RoomChoice
from chatgui.tk import theme

TITLE = f"Rooms — {APP_NAME}"
NO_LOCK = "  (key)"         # the lock mark when emoji are not drawn as pictures


class RoomBrowser:
    def __init__(self, master: tk.Misc, fonts: theme.Fonts, pal: theme.Palette, rooms: Sequence[RoomChoice],
                 *, on_join, lock_image=None):
        self.fonts = fonts
        self.on_join = on_join
        self.lock_image = lock_image
        self.rooms: list[RoomChoice] = []
        top = self.top = tk.Toplevel(master)
        top.title(TITLE)
        top.transient(master.winfo_toplevel())
        top.minsize(520, 360)
        frame = ttk.Frame(top, padding=(16, 14, 16, 14), style="Chat.TFrame")
        frame.pack(fill="both", expand=True)
        frame.columnconfigure(0, weight=1)
        frame.rowconfigure(1, weight=1)
        self.frame = frame

        ttk.Label(frame, text="Rooms on this server", style="Title.TLabel").grid(row=0, column=0, sticky="w",
                                                                               pady=(0, 8))
        self.tree = ttk.Treeview(frame, columns=("topic", "users", "state"), show="tree headings",
                                 selectmode="browse", style="Browser.Treeview", height=10)
        self.tree.heading("#0", text="Room", anchor="w")
        self.tree.heading("topic", text="Topic", anchor="w")
        self.tree.heading("users", text="People", anchor="e")
        self.tree.heading("state", text="", anchor="w")
        self.tree.column("#0", width=170, stretch=False)
        self.tree.column("topic", width=300, stretch=True)
        self.tree.column("users", width=64, stretch=False, anchor="e")
        self.tree.column("state", width=70, stretch=False)
        self.tree.grid(row=1, column=0, sticky="nsew")
        scroll = ttk.Scrollbar(frame, orient="vertical", command=self.tree.yview, style="Slim.Vertical.TScrollbar")
        scroll.grid(row=1, column=1, sticky="ns")
        self.tree.configure(yscrollcommand=scroll.set)
        self.tree.bind("<<TreeviewSelect>>", lambda e: self._on_select())
        self.tree.bind("<Double-Button-1>", lambda e: self.join())
        self.tree.bind("<Return>", lambda e: self.join())

        # The key of the chosen room, shown only for one that needs it.
        self.key_row = ttk.Frame(frame, style="Chat.TFrame")
        self.key_row.grid(row=2, column=0, columnspan=2, sticky="ew", pady=(10, 0))
        self.key_row.columnconfigure(1, weight=1)
        self.key_label = ttk.Label(self.key_row, text="", style="Card.TLabel")
        self.key_label.grid(row=0, column=0, sticky="w", padx=(0, 8))
        self.key = tk.StringVar(master=top)
        self.key_entry = ttk.Entry(self.key_row, textvariable=self.key, show="•")
        self.key_entry.grid(row=0, column=1, sticky="ew")
        self.key_entry.bind("<Return>", lambda e: self.join())
        self.key_row.grid_remove()

        self.note = ttk.Label(frame, text="", style="Error.TLabel")
        self.note.grid(row=3, column=0, columnspan=2, sticky="w", pady=(6, 0))

        buttons = ttk.Frame(frame, style="Chat.TFrame")
        buttons.grid(row=4, column=0, columnspan=2, sticky="e", pady=(8, 0))
        self.join_button = ttk.Button(buttons, text="Join", style="Accent.TButton", command=self.join)
        self.join_button.grid(row=0, column=1, padx=(8, 0))
        self.close_button = ttk.Button(buttons, text="Close", command=self.close)
        self.close_button.grid(row=0, column=0)

        ttk.Separator(frame).grid(row=5, column=0, columnspan=2, sticky="ew", pady=12)
        create = ttk.Frame(frame, style="Chat.TFrame")
        create.grid(row=6, column=0, columnspan=2, sticky="ew")
        create.columnconfigure(1, weight=1)
        ttk.Label(create, text="Create a room  #", style="Card.TLabel").grid(row=0, column=0, sticky="w")
        self.new_name = tk.StringVar(master=top)
        self.new_name_entry = ttk.Entry(create, textvariable=self.new_name)
        self.new_name_entry.grid(row=0, column=1, sticky="ew")
        ttk.Label(create, text="key (optional)", style="CardMuted.TLabel").grid(row=0, column=2, padx=(10, 6))
        self.new_key = tk.StringVar(master=top)
        self.new_key_entry = ttk.Entry(create, textvariable=self.new_key, show="•", width=12)
        self.new_key_entry.grid(row=0, column=3)
        self.create_button = ttk.Button(create, text="Create", command=self.create)
        self.create_button.grid(row=0, column=4, padx=(8, 0))
        self.new_name_entry.bind("<Return>", lambda e: self.create())
        self.new_key_entry.bind("<Return>", lambda e: self.create())

        top.bind("<Escape>", lambda e: self.close())
        top.protocol("WM_DELETE_WINDOW", self.close)
        self.apply_palette(pal)
        self.set_rooms(rooms)
        self._place(master)
        self.tree.focus_set()

    def _place(self, master: tk.Misc) -> None:
        """Over the middle of the chat window (there may be no window manager)."""
        top, root = self.top, master.winfo_toplevel()
        top.update_idletasks()
        w, h = max(top.winfo_reqwidth(), 620), max(top.winfo_reqheight(), 420)
        x = root.winfo_rootx() + max(0, (root.winfo_width() - w) // 2)
        y = root.winfo_rooty() + max(0, (root.winfo_height() - h) // 3)
        top.geometry(f"{w}x{h}+{x}+{y}")

    @property
    def alive(self) -> bool:
        try:
            return bool(self.top.winfo_exists())
        except tk.TclError:
            return False

    def apply_palette(self, pal: theme.Palette) -> None:
        self.top.configure(background=pal.bg)
        self.tree.tag_configure("joined", foreground=pal.muted)

    # -- what the controller gives ---------------------------------------------------

    def set_rooms(self, rooms: Sequence[RoomChoice]) -> None:
        """The list again (``/rooms`` while open); the chosen room stays chosen."""
        chosen = self.chosen()
        self.rooms = list(rooms)
        t = self.tree
        t.delete(*t.get_children())
        for i, r in enumerate(self.rooms):
            name = "#" + r.name
            kw = {}
            if r.key and self.lock_image is not None:
                kw["image"] = self.lock_image
            elif r.key:
                name += NO_LOCK
            values = (r.topic, r.users, "joined" if r.joined else "")
            try:
                t.insert("", "end", iid=str(i), text=name, values=values,
                         tags=("joined",) if r.joined else (), **kw)
            except (tk.TclError, UnicodeError):
                safe = [str(v).encode("ascii", "backslashreplace").decode("ascii") for v in (name, *values)]
                t.insert("", "end", iid=str(i), text=safe[0], values=safe[1:],
                         tags=("joined",) if r.joined else (), **kw)
        names = [r.name for r in self.rooms]
        if chosen is not None and chosen.name in names:
            self.select(chosen.name)
        elif self.rooms:
            self.select(self.rooms[0].name)
        self.top.lift()

    # -- what the user does --------------------------------------------------------------

    def select(self, name: str) -> None:
        """Choose a room by its name (what a click on its row does)."""
        for i, r in enumerate(self.rooms):
            if r.name == name:
                self.tree.selection_set(str(i))
                self.tree.focus(str(i))
                self.tree.see(str(i))
                self._on_select()
                return
        raise KeyError(name)

    def chosen(self) -> RoomChoice | None:
        sel = self.tree.selection() if self.alive else ()
        return self.rooms[int(sel[0])] if sel and int(sel[0]) < len(self.rooms) else None

    def _on_select(self) -> None:
        r = self.chosen()
        self.note.configure(text="")
        if r is not None and r.key and not r.joined:
            self.key_label.configure(text=f"Key for #{r.name}")
            self.key_row.grid()
        else:
            self.key_row.grid_remove()
        self.join_button.configure(text="Open" if r is not None and r.joined else "Join")

    def join(self) -> None:
        r = self.chosen()
        if r is None:
            self.note.configure(text="Choose a room in the list first.")
            return
        if r.key and not r.joined:
            key = self.key.get()
            if not key:
                self.note.configure(text=f"#{r.name} needs a key: type it in the field above.")
                self.key_entry.focus_set()
                return
            self.on_join(r.name, key)
        else:
            self.on_join(r.name)
        self.close()

    def create(self) -> None:
        name = self.new_name.get().strip().lstrip("#")
        if not name:
            self.note.configure(text="Type the name of the room to create.")
            self.new_name_entry.focus_set()
            return
        key = self.new_key.get()
        if key:
            self.on_join(name, key)
        else:
            self.on_join(name)
        self.close()

    def close(self) -> None:
        if self.alive:
            self.top.destroy()
