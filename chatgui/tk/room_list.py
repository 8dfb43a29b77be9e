"""The room list at the side: the rooms, then the private conversations,
in the order the controller gives (:class:`~chatgui.app.view.RoomEntry`),
each with its unread count (``@`` in front when one of them mentions us),
the active one selected. A click calls ``on_choose(room_id)``; the
selection moves only when the controller says which room is active. The
"Browse" button calls ``on_browse()``.

Thread: the Tk thread only.
"""
from __future__ import annotations

import tkinter as tk
from tkinter import ttk
from typing import Sequence

from chatgui.app.view import RoomEntry
from chatgui.tk import theme

WIDTH = 170             # the tree's width, as the people list's below it
INDENT = 22             # the tree column's own space before a label
MAX_ROWS = 9            # rows shown before the list scrolls (the people list gets the rest)
SHARE = 0.5             # at most this part of the side's height, in a low window
PRIVATE_HEADING = "PRIVATE"


def count_text(entry: RoomEntry) -> str:
    """What the count column shows: "", "3", "@3", "99+"."""
    if not entry.unread and not entry.mention:
        return ""
    n = "99+" if entry.unread > 99 else str(entry.unread) if entry.unread else ""
    return f"@{n}" if entry.mention else n


class RoomList(ttk.Frame):
    def __init__(self, master, fonts: theme.Fonts, pal: theme.Palette, *, on_choose, on_browse):
        super().__init__(master)
        self.fonts = fonts
        self.pal = pal
        self.on_choose = on_choose
        self.entries: list[RoomEntry] = []
        self.active = ""
        self.room_for = MAX_ROWS    # rows the side has room for (see fit)
        self.columnconfigure(0, weight=1)
        self.rowconfigure(1, weight=1)
        self.label = ttk.Label(self, text="ROOMS", style="Muted.TLabel", padding=(14, 10, 4, 4))
        self.label.grid(row=0, column=0, sticky="ew")
        self.browse_button = ttk.Button(self, text="Browse…", style="Link.TButton", takefocus=False,
                                        command=on_browse)
        self.browse_button.grid(row=0, column=1, sticky="e", padx=(0, 10), pady=(6, 0))
        self.tree = ttk.Treeview(self, show="tree", columns=("count",), selectmode="browse",
                                 style="RoomList.Treeview", takefocus=False, height=1)
        self.tree.column("#0", width=WIDTH - 44, stretch=True)
        self.tree.column("count", width=44, stretch=False, anchor="e")
        self.tree.grid(row=1, column=0, columnspan=2, sticky="nsew", padx=(6, 6))
        self.tree.bind("<Button-1>", self._on_click)
        # A thin scrollbar in the margin right of the list, there only when
        # the list is longer than its rows (the side keeps its width).
        self.scroll = ttk.Scrollbar(self, orient="vertical", command=self.tree.yview,
                                    style="Thin.Vertical.TScrollbar")
        self.tree.configure(yscrollcommand=self._on_yscroll)
        self.apply_palette(pal)

    def apply_palette(self, pal: theme.Palette) -> None:
        self.pal = pal
        t, f = self.tree, self.fonts
        t.tag_configure("unread", font=f.bold, foreground=pal.fg)
        t.tag_configure("read", font=f.body, foreground=pal.muted)
        t.tag_configure("active", font=f.body, foreground=pal.fg)
        t.tag_configure("mention", font=f.bold, foreground=pal.error_fg)
        t.tag_configure("heading", font=f.small, foreground=pal.muted)
        # The count column fits "@99+" in bold at the current size.
        count = f.bold.measure("@99+") + 12
        t.column("count", width=count)
        t.column("#0", width=WIDTH - count)
        if self.entries:
            self.set_rooms(self.entries, self.active)       # elided again at the new size

    def set_rooms(self, rooms: Sequence[RoomEntry], active: str) -> None:
        self.entries, self.active = list(rooms), active
        t = self.tree
        t.delete(*t.get_children())
        heading = False
        for i, e in enumerate(self.entries):
            if e.private and not heading:
                heading = True
                t.insert("", "end", iid="heading", text=PRIVATE_HEADING, tags=("heading",))
            tag = "mention" if e.mention else "unread" if e.unread else "active" if e.id == active else "read"
            font = self.fonts.bold if tag in ("mention", "unread") else self.fonts.body
            label = theme.elide(e.label, font, int(t.column("#0", "width")) - INDENT)
            try:
                t.insert("", "end", iid=f"r{i}", text=label, values=(count_text(e),), tags=(tag,))
            except (tk.TclError, UnicodeError):
                t.insert("", "end", iid=f"r{i}", values=(count_text(e),), tags=(tag,),
                         text=label.encode("ascii", "backslashreplace").decode("ascii"))
        self._fit_rows()
        row = self.row_of(active)
        if row is not None:
            t.selection_set(row)
            t.see(row)
        else:
            t.selection_set(())

    def fit(self, side_height: int) -> None:
        """The side is ``side_height`` pixels high: the list takes at most
        SHARE of it, so the people list below keeps some room."""
        row_h = int(ttk.Style(self).lookup("RoomList.Treeview", "rowheight") or 24)
        room_for = max(2, min(MAX_ROWS, int(side_height * SHARE) // row_h - 1))
        if room_for != self.room_for:
            self.room_for = room_for
            self._fit_rows()

    def _fit_rows(self) -> None:
        rows = max(1, min(self.room_for, len(self.tree.get_children())))
        if int(self.tree.cget("height")) != rows:
            self.tree.configure(height=rows)
        row = self.row_of(self.active)
        if row is not None:
            self.tree.see(row)

    def _on_yscroll(self, first, last) -> None:
        self.scroll.set(first, last)
        needed = float(first) > 0.0 or float(last) < 1.0
        if needed != bool(self.scroll.winfo_manager()):
            if needed:
                self.scroll.place(in_=self.tree, relx=1.0, x=5, rely=0.0, relheight=1.0, anchor="ne")
            else:
                self.scroll.place_forget()

    def row_of(self, room: str) -> str | None:
        """The tree row of a conversation (for tests, and the selection)."""
        for i, e in enumerate(self.entries):
            if e.id == room:
                return f"r{i}"
        return None

    def shown(self, room: str) -> tuple[str, str, tuple]:
        """(label, count, tags) as the row shows them (for tests)."""
        row = self.row_of(room)
        item = self.tree.item(row)
        return item["text"], str(item["values"][0]) if item["values"] else "", tuple(item["tags"])

    def _on_click(self, event):
        row = self.tree.identify_row(event.y)
        if row.startswith("r") and row[1:].isdigit() and int(row[1:]) < len(self.entries):
            self.on_choose(self.entries[int(row[1:])].id)
        return "break"      # the controller moves the selection, through set_rooms
