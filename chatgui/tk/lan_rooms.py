"""The connect form's "Rooms on your network": the list, the line under it,
and the "Why can't I connect?" button with the doctor's answer.

It builds and forwards; :class:`chatgui.app.lan.LanList` decides. While
the list is on screen a :class:`chatgui.net.discovery.ScanLoop` scans on
its ``lan-scan`` thread (a scan about every 2.5 s) and puts what it finds
on a ``queue.Queue``; an ``after()`` poll here takes it off, on the Tk
thread, and redraws the rows. The doctor's ``doctor`` thread
(:func:`chatgui.app.lan.start_doctor`) answers through the same queue.
No socket call happens on the Tk thread, and no thread sees a widget.

The poll also starts the scan when the list becomes visible and stops it
when it is hidden (the chat shows) or destroyed, and keeps its ``after``
id to cancel it (idlelib's pattern). ``on_join(room_id)`` is a
double-click, Return, or the Join button on a row; ``on_doctor()`` the
doctor's button.

Thread: the Tk thread only.
"""
from __future__ import annotations

import queue
import tkinter as tk
from tkinter import ttk

from chatgui.app import formatting
from chatgui.app.lan import LanList
from chatgui.net import discovery

POLL_MS = 100
LIST_ROWS = 7


class LanRooms(ttk.Frame):
    def __init__(self, master, fonts, on_join, on_doctor, *, scan_fn=None):
        super().__init__(master, style="Card.TFrame", padding=(24, 24, 24, 24))
        self.fonts = fonts
        self.on_join = on_join
        self.on_doctor = on_doctor
        self.scan_fn = scan_fn              # None: discovery.scan (looked up at each start)
        astral = formatting.astral_supported(self.tk.call("info", "patchlevel"))
        self.model = LanList(astral_ok=astral)
        self.events: queue.Queue = queue.Queue()
        self.loop: discovery.ScanLoop | None = None
        self.doctor_busy = False
        self._after_id = None
        self._build()
        self.bind("<Destroy>", self._on_destroy, add="+")
        self._after_id = self.after(0, self._poll)

    def _build(self) -> None:
        self.columnconfigure(0, weight=1)
        ttk.Label(self, text="Rooms on your network", style="Title.TLabel").grid(row=0, column=0, sticky="w")
        ttk.Label(self, text="Rooms on this computer's networks show here by themselves.",
                  style="CardMuted.TLabel").grid(row=1, column=0, sticky="w", pady=(0, 10))
        box = ttk.Frame(self, style="Card.TFrame")
        box.grid(row=2, column=0, sticky="nsew")
        box.columnconfigure(0, weight=1)
        self.tree = ttk.Treeview(box, columns=("host", "people", "locks"), height=LIST_ROWS,
                                 selectmode="browse", style="Rooms.Treeview")
        for col, text, width, anchor in (("#0", "Room", 138, "w"), ("host", "Host", 114, "w"),
                                         ("people", "People", 55, "center"), ("locks", "Locked", 80, "w")):
            self.tree.heading(col, text=text, anchor=anchor)
            self.tree.column(col, width=width, minwidth=40, anchor=anchor, stretch=col == "#0")
        self.lock_image = lock_image(self)
        self.no_image = tk.PhotoImage(master=self, width=self.lock_image.width(),
                                      height=self.lock_image.height())     # keeps the names lined up
        self.tree.grid(row=0, column=0, sticky="nsew")
        bar = ttk.Scrollbar(box, orient="vertical", command=self.tree.yview, style="Slim.Vertical.TScrollbar")
        bar.grid(row=0, column=1, sticky="ns")
        self.tree.configure(yscrollcommand=bar.set)
        self.tree.bind("<Double-Button-1>", self._double_click)
        self.tree.bind("<Return>", lambda e: self.join_selected())
        self.tree.bind("<KP_Enter>", lambda e: self.join_selected())
        self.tree.bind("<<TreeviewSelect>>", lambda e: self._sync_buttons())

        self.status_label = ttk.Label(self, text=self.model.status(), style="CardMuted.TLabel",
                                      wraplength=440, justify="left")
        self.status_label.grid(row=3, column=0, sticky="w", pady=(8, 0))
        buttons = ttk.Frame(self, style="Chat.TFrame")
        buttons.grid(row=4, column=0, sticky="e", pady=(10, 0))
        self.doctor_button = ttk.Button(buttons, text="Why can't I connect?", command=self._doctor)
        self.doctor_button.grid(row=0, column=0, padx=(0, 8))
        self.join_button = ttk.Button(buttons, text="Join this room", command=self.join_selected)
        self.join_button.grid(row=0, column=1)
        self.doctor_label = ttk.Label(self, text="", style="Card.TLabel", wraplength=440, justify="left")
        self.doctor_label.grid(row=5, column=0, sticky="w", pady=(10, 0))
        self.details_label = ttk.Label(self, text="", style="CardMuted.TLabel", wraplength=440, justify="left")
        self.details_label.grid(row=6, column=0, sticky="w", pady=(4, 0))
        self._sync_buttons()

    # -- what the user does --------------------------------------------------------

    def _double_click(self, event) -> str | None:
        row = self.tree.identify_row(event.y)
        if row:
            self.tree.selection_set(row)
            self.on_join(row)
            return "break"
        return None

    def join_selected(self) -> None:
        chosen = self.tree.selection()
        if chosen:
            self.on_join(chosen[0])

    def selected(self) -> str | None:
        chosen = self.tree.selection()
        return chosen[0] if chosen else None

    def _doctor(self) -> None:
        if not self.doctor_busy:
            self.on_doctor()

    def doctor_started(self, where: str) -> None:
        self.doctor_busy = True
        self.doctor_label.configure(text=f"Checking {where}…")
        self.details_label.configure(text="")
        self._sync_buttons()

    def doctor_message(self, text: str) -> None:
        """A sentence of the form's instead of the doctor's (nothing to check)."""
        self.doctor_label.configure(text=text)
        self.details_label.configure(text="")

    def set_wrap(self, width: int) -> None:
        for label in (self.status_label, self.doctor_label, self.details_label):
            label.configure(wraplength=width)

    def _sync_buttons(self) -> None:
        self.join_button.state(["!disabled"] if self.tree.selection() else ["disabled"])
        self.doctor_button.state(["disabled"] if self.doctor_busy else ["!disabled"])

    # -- the poll (Tk thread) ---------------------------------------------------------

    def _poll(self) -> None:
        self._after_id = None
        try:
            visible = bool(self.winfo_viewable())
        except tk.TclError:
            return
        if visible and self.loop is None:
            self.loop = discovery.ScanLoop(self.events.put, scan_fn=self.scan_fn or discovery.scan).start()
        elif not visible and self.loop is not None:
            self.loop.stop()
            self.loop = None
        changed = False
        while True:
            try:
                event = self.events.get_nowait()
            except queue.Empty:
                break
            if event[0] == "doctor":
                self._show_doctor(event[1])
            elif self.loop is not None:         # a hidden list ignores what a stopped scan said
                changed = self.model.update(event) or changed
        if changed:
            self._redraw()
        status = self.model.status()
        if status != self.status_label.cget("text"):
            self.status_label.configure(text=status)
        self._after_id = self.after(POLL_MS, self._poll)

    def _redraw(self) -> None:
        chosen = self.selected()
        rows = self.model.rows()
        self.tree.delete(*self.tree.get_children())
        for row in rows:
            self.tree.insert("", "end", iid=row.id, text=row.name, values=(row.host, row.people, row.locks),
                             image=self.lock_image if row.locks else self.no_image)
        if chosen and self.tree.exists(chosen):
            self.tree.selection_set(chosen)
        self._sync_buttons()

    def _show_doctor(self, verdict) -> None:
        self.doctor_busy = False
        # The sentences may quote what a stranger's server said: safe for Tk first.
        self.doctor_label.configure(text=formatting.tk_safe(verdict.text(), self.model.astral_ok))
        self.details_label.configure(text=formatting.tk_safe("\n".join(verdict.details), self.model.astral_ok))
        self._sync_buttons()

    def _on_destroy(self, event) -> None:
        if event.widget is not self:
            return
        if self.loop is not None:
            self.loop.stop()
            self.loop = None
        if self._after_id is not None:
            try:
                self.after_cancel(self._after_id)
            except tk.TclError:
                pass
            self._after_id = None


_LOCK = ("   ####   ",
         "  #    #  ",
         " #      # ",
         " #      # ",
         "##########",
         "##########",
         "####  ####",
         "####  ####",
         "##########",
         "##########")


def lock_image(master) -> tk.PhotoImage:
    """A small padlock, drawn here: Tk 8.6 cannot show the emoji."""
    img = tk.PhotoImage(master=master, width=12, height=len(_LOCK) + 2)
    for y, line in enumerate(_LOCK):
        for x, c in enumerate(line):
            if c == "#":
                img.put("#7a8190", (x + 1, y + 1))
    return img
