"""The connect form: "Rooms on your network" on the left
(:class:`chatgui.tk.lan_rooms.LanRooms`: the rooms discovery finds, and
"Why can't I connect?"), and on the right the nickname and "Connect by
address": server address (with the recent rooms, ``recent()``, in its
drop-down) and port, password, encryption, and "Host a room on this
computer". It only builds and forwards: the button calls
``on_submit(ConnectValues)`` and the controller decides everything else,
then calls :meth:`ConnectForm.show` with an error in words or a busy
message. :meth:`submit` is the button, so tests drive the form without a
mouse (idlelib's dialogs do the same). A double-click on a room fills the
address fields from it and submits (:meth:`join_room`), or asks for the
room's password first; :mod:`chatgui.app.lan` decides which. Under the
hosting choices a line says which history the room will keep, in the
controller's words (``history_note(port)``).

The card keeps its width whatever the error says: the error and the note
wrap at the width of the fields. Ctrl+A selects all of a field.

Thread: the Tk thread only.
"""
from __future__ import annotations

import tkinter as tk
from tkinter import ttk

from chatgui.app import lan
from chatgui.netcheck import split_addresses
from chatgui.app.view import HOST_LABEL, LAN_LABEL, TLS_LABEL, ConnectValues
from chatgui.tk import theme
from chatgui.tk.lan_rooms import LanRooms


class ConnectForm(ttk.Frame):
    def __init__(self, master, fonts: theme.Fonts, on_submit, on_trust=None, history_note=None, recent=None,
                 scan_fn=None):
        super().__init__(master, style="TFrame")
        self.fonts = fonts
        self.on_submit = on_submit
        self.on_trust = on_trust
        self.history_note = history_note     # port as typed -> the line under the hosting choices
        self.recent = recent or (lambda: [])  # -> ["host:port", ...], newest first
        self.scan_fn = scan_fn
        self.busy = False
        self.nick = tk.StringVar(self)
        self.host = tk.StringVar(self)
        self.port = tk.StringVar(self)
        self.password = tk.StringVar(self)
        self.host_room = tk.BooleanVar(self)
        self.host_lan = tk.BooleanVar(self)
        self.tls = tk.BooleanVar(self)
        self._build()
        self.host_room.trace_add("write", lambda *_: self._sync_hosting())
        self.port.trace_add("write", lambda *_: self._sync_note())

    def _build(self) -> None:
        self.columnconfigure(0, weight=1)
        self.rowconfigure(0, weight=1)
        outer = ttk.Frame(self, style="TFrame")
        outer.grid(row=0, column=0)
        self.lan = LanRooms(outer, self.fonts, on_join=self.join_room, on_doctor=self.why, scan_fn=self.scan_fn)
        self.lan.grid(row=0, column=0, sticky="nsew", padx=(0, 16))
        card = ttk.Frame(outer, style="Card.TFrame", padding=(28, 24, 28, 24))
        card.grid(row=0, column=1, sticky="nsew")
        card.columnconfigure(1, weight=1)
        self.card = card

        ttk.Label(card, text="Natter", style="Title.TLabel").grid(row=0, column=0, columnspan=2, sticky="w")
        ttk.Label(card, text="Chat with the people on your network.", style="CardMuted.TLabel").grid(
            row=1, column=0, columnspan=2, sticky="w", pady=(0, 18))

        def field(row: int, label: str, var: tk.StringVar, kind=ttk.Entry, **kw) -> ttk.Entry:
            ttk.Label(card, text=label, style="Card.TLabel").grid(row=row, column=0, sticky="w",
                                                                   padx=(0, 14), pady=5)
            entry = kind(card, textvariable=var, width=21, font=self.fonts.body, **kw)
            entry.grid(row=row, column=1, sticky="ew", pady=5)
            entry.bind("<Return>", lambda e: self.submit())
            entry.bind("<KP_Enter>", lambda e: self.submit())
            entry.bind("<Control-a>", _select_all)
            entry.bind("<Control-A>", _select_all)
            return entry

        self.nick_entry = field(2, "Nickname", self.nick)
        ttk.Label(card, text="Connect by address", style="Card.TLabel", font=self.fonts.bold).grid(
            row=3, column=0, columnspan=2, sticky="w", pady=(14, 2))
        self.host_entry = field(4, "Server address", self.host, kind=ttk.Combobox,
                                postcommand=self._fill_recent)
        self.host_entry.bind("<<ComboboxSelected>>", self._recent_chosen)
        ttk.Label(card, text="Several servers? Separate them with commas.",
                  style="CardMuted.TLabel").grid(row=5, column=1, sticky="w")
        self.port_entry = field(6, "Port", self.port)
        self.password_entry = field(7, "Room password", self.password, show="•")
        ttk.Label(card, text="Leave the password empty if the room has none.", style="CardMuted.TLabel").grid(
            row=8, column=1, sticky="w")

        self.tls_check = ttk.Checkbutton(card, text=TLS_LABEL, variable=self.tls)
        self.tls_check.grid(row=9, column=0, columnspan=2, sticky="w", pady=(16, 2))
        self.host_check = ttk.Checkbutton(card, text=HOST_LABEL, variable=self.host_room)
        self.host_check.grid(row=10, column=0, columnspan=2, sticky="w", pady=(2, 2))
        self.lan_check = ttk.Checkbutton(card, text=LAN_LABEL, variable=self.host_lan)
        self.lan_check.grid(row=11, column=0, columnspan=2, sticky="w", padx=(24, 0))
        self.note_label = ttk.Label(card, text="", style="CardMuted.TLabel", wraplength=300, justify="left")
        self.note_label.grid(row=12, column=0, columnspan=2, sticky="w", padx=(24, 0), pady=(2, 0))

        # Wrapped at the fields' width (see _fit_wrap), never wider.
        self.error_label = ttk.Label(card, text="", style="Error.TLabel", wraplength=300, justify="left")
        self.error_label.grid(row=13, column=0, columnspan=2, sticky="w", pady=(14, 0))
        self.busy_label = ttk.Label(card, text="", style="CardMuted.TLabel")
        self.busy_label.grid(row=14, column=0, columnspan=2, sticky="w")

        buttons = ttk.Frame(card, style="Chat.TFrame")
        buttons.grid(row=15, column=0, columnspan=2, sticky="e", pady=(16, 0))
        self.trust_button = ttk.Button(buttons, text="I compared it: trust the new certificate",
                                       command=self.trust)
        self.button = ttk.Button(buttons, text="Join", style="Accent.TButton", command=self.submit)
        self.button.grid(row=0, column=1, sticky="e")
        self.host_entry.bind("<Configure>", self._fit_wrap, add="+")
        self.lan.tree.bind("<Configure>", self._fit_wrap, add="+")

    def _fit_wrap(self, event=None) -> None:
        """Wrap the error and the note at the width the fields take (the
        label column and the entries), so a message never widens the card."""
        bbox = self.card.grid_bbox(0, 4, 1, 7)
        width = bbox[2] if bbox else 0
        if width > 50 and int(self.error_label.cget("wraplength")) != width:
            self.error_label.configure(wraplength=width)
            self.note_label.configure(wraplength=width - 24)
        lan_width = self.lan.tree.winfo_width()
        if lan_width > 50:
            self.lan.set_wrap(lan_width)

    def values(self) -> ConnectValues:
        return ConnectValues(host=self.host.get(), port=self.port.get(), nick=self.nick.get(),
                             password=self.password.get(), host_room=self.host_room.get(),
                             host_lan=self.host_lan.get(), tls=self.tls.get())

    def show(self, values: ConnectValues, error: str | None, busy: str | None,
             focus: str | None = None, trust: str | None = None, trust_label: str | None = None) -> None:
        self.nick.set(values.nick)
        self.host.set(values.host)
        self.port.set(values.port)
        self.password.set(values.password)
        self.host_room.set(values.host_room)
        self.host_lan.set(values.host_lan)
        self.tls.set(values.tls)
        self.busy = busy is not None
        self.error_label.configure(text=error or "")
        self.busy_label.configure(text=busy or "")
        state = ["disabled"] if self.busy else ["!disabled"]
        for w in (self.nick_entry, self.host_entry, self.port_entry, self.password_entry, self.host_check,
                  self.lan_check, self.tls_check, self.button):
            w.state(state)
        if trust and not self.busy:
            self.trust_button.configure(text=trust_label or "I compared it: trust the new certificate")
            self.trust_button.grid(row=0, column=0, sticky="e", padx=(0, 8))
        else:
            self.trust_button.grid_remove()
        if not self.busy:
            self._sync_hosting()
            self.button.configure(text="Try again" if error else self._button_text())
            self._focus_for(focus)

    def submit(self) -> None:
        if not self.busy:
            self.on_submit(self.values())

    # -- rooms on the network, recent rooms, the doctor ------------------------------

    def join_room(self, room_id: str) -> None:
        """A double-click on a room of the list: fill the address from it
        and join, or ask for its password first."""
        if self.busy:
            return
        values, question = self.lan.model.join(room_id, self.values())
        if values is None:
            return
        self.host_room.set(False)
        self.host.set(values.host)
        self.port.set(values.port)
        self.tls.set(values.tls)
        if question:
            self.error_label.configure(text=question)
            self.button.configure(text="Join")
            self._focus_for("password")
            return
        self.submit()

    def why(self) -> None:
        """"Why can't I connect?": the doctor on the room chosen in the list,
        else on the address typed."""
        room = self.lan.model.rooms.get(self.lan.selected() or "")
        if room is not None:
            host, port, tls = room.host, room.room.port, room.room.tls
        else:
            host = "127.0.0.1" if self.host_room.get() else self.host.get().strip()
            port, tls = self.port.get().strip(), self.tls.get()
            if not host:
                self.lan.doctor_message("Type the room's address under \"Connect by address\" (or choose a "
                                        "room in the list), then ask again.")
                return
            if not port.isdigit() or not 0 < int(port) < 65536:
                self.lan.doctor_message("The port must be a number from 1 to 65535.")
                return
            if "," in host:     # several addresses: the doctor looks at the first
                try:
                    host, port = split_addresses(host, int(port))[0]
                except ValueError as e:
                    self.lan.doctor_message(str(e))
                    return
        self.run_doctor(host, int(port), tls, self.nick.get().strip(), self.password.get())

    def run_doctor(self, host: str, port: int, tls: bool, nick: str | None, password: str | None) -> None:
        """Check the room at host:port off the Tk thread; the answer shows under the list."""
        if self.lan.doctor_busy:
            return
        self.lan.doctor_started(f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
        lan.start_doctor(self.lan.events.put, host, port, tls=tls, nick=nick, password=password)

    def _fill_recent(self) -> None:
        self.host_entry.configure(values=list(self.recent()))

    def _recent_chosen(self, event=None) -> None:
        """A recent room picked: "host:port" goes to the two fields."""
        text = self.host.get()
        if "," in text:         # a list of addresses: each has its port, it stays as it is
            return
        host, sep, port = text.rpartition(":")
        if sep and port.isdigit():
            self.host.set(host[1:-1] if host.startswith("[") and host.endswith("]") else host)
            self.port.set(port)

    def trust(self) -> None:
        if not self.busy and self.on_trust is not None:
            self.on_trust()

    def _button_text(self) -> str:
        return "Host and join" if self.host_room.get() else "Join"

    def _sync_hosting(self) -> None:
        self._sync_note()
        if self.busy:
            return
        hosting = self.host_room.get()
        self.host_entry.state(["disabled"] if hosting else ["!disabled"])
        self.lan_check.state(["!disabled"] if hosting else ["disabled"])
        if not self.error_label.cget("text"):
            self.button.configure(text=self._button_text())

    def _sync_note(self) -> None:
        """Which history the room will keep: shown while hosting is ticked."""
        if self.host_room.get() and self.history_note is not None:
            self.note_label.configure(text=self.history_note(self.port.get()))
            self.note_label.grid()
        else:
            self.note_label.grid_remove()

    def _focus_for(self, field: str | None) -> None:
        """Put the cursor where the fix goes (the controller names the field)."""
        entries = {"nick": self.nick_entry, "host": self.host_entry, "port": self.port_entry,
                   "password": self.password_entry}
        if field == "host" and self.host_room.get():
            field = "port"
        target = entries.get(field) or (self.nick_entry if not self.nick.get() else self.button)
        target.focus_set()
        if isinstance(target, ttk.Entry):
            target.icursor("end")
            target.selection_range(0, "end")


def _select_all(event):
    """Ctrl+A in a field: select all of it (Tk's own binding goes to the start)."""
    event.widget.selection_range(0, "end")
    event.widget.icursor("end")
    return "break"
