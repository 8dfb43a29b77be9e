"""The conversation screen: a header (the conversation's title and topic),
the conversations, the room list and the people list at the side, the
input box and the status line. It builds widgets and forwards what the user
does to the controller; it decides nothing about what to show.

Each conversation (a room or a private one, by its id) is a
:class:`~chatgui.tk.conversation.Conversation` of its own, with its lines
and scroll position; exactly one is shown, the others keep their state
(see that module for following the bottom, older lines and reading). A
conversation is made on first use; before the controller names any, the
lines go to one with no id, which the first :meth:`show_room` adopts.

The topic is elided to the header's width; the whole of it shows in a
tooltip when the pointer rests on it or on a click.

The input box grows with the display lines of its text (wrapped lines
count) up to :data:`MAX_INPUT_LINES`, then scrolls.

Moderation: the people list marks roles (:func:`person_label`); a
right-click on a person or a message opens the menu the controller offers
(one :class:`~chatgui.tk.menus.ContextMenu` for the pane); what we may do
in each room (``set_powers``) shows **Room settings…** to its ops and puts
why we cannot speak in the empty input box; each room's questions
(``set_questions``) show in a :class:`~chatgui.tk.questions.QuestionsPanel`
under its conversation while it is the one on screen.

Thread: the Tk thread only.
"""
from __future__ import annotations

import tkinter as tk
from tkinter import ttk

from server.protocol import nick_key

from chatgui.app.view import OFFLINE, ONLINE, OWNER, ROLE_MARKS, Line, RoomPowers
from chatgui.tk import theme
from chatgui.tk.cards import TransferBars
from chatgui.tk.conversation import Conversation
from chatgui.tk.emoji_text import EmojiImages, EmojiText
from chatgui.tk.menus import ContextMenu, right_click_events
from chatgui.tk.questions import QuestionsPanel
from chatgui.tk.room_list import RoomList
from chatgui.tk.tooltip import Tooltip

ATTACH_TIP = "Send a file (or drop files on the window, or paste a picture with Ctrl+V)"
# Where tkdnd cannot load (chatgui.tk.dnd): the tooltip does not promise the drop.
ATTACH_TIP_NO_DROP = "Send a file (or paste a picture with Ctrl+V; dropping files does not work here)"

MAX_INPUT_LINES = 5
HINTS = ("Enter send · Shift+Enter new line · Tab complete · /help", "/help for commands", "")
PLACEHOLDER = "Message {}…  (/help for commands)"
_TEXT_TARGETS = {"UTF8_STRING", "STRING", "TEXT", "COMPOUND_TEXT", "text/plain", "text/plain;charset=utf-8"}


class ChatPane(ttk.Frame):
    def __init__(self, master, fonts: theme.Fonts, pal: theme.Palette, controller, on_settings=None):
        """``on_settings()``: the Settings… button (the window opens its dialog)."""
        super().__init__(master, style="Chat.TFrame")
        self.on_settings = on_settings
        self.fonts = fonts
        self.pal = pal
        self.controller = controller
        self.users: list[str] = []
        self.me = ""
        self.roles: dict = {}       # nick -> role, for those above member (the visible conversation's)
        self.powers: dict[str, RoomPowers] = {}     # room id -> what we may do there
        self.questions: dict[str, list] = {}        # room id -> its questions list (ops only)
        self.online = False         # the people list shows a live room
        self._people_after = None   # a repaint of the people list is scheduled
        self._gone = False          # destroyed: a handler that closed the window must stop
        self.conversations: dict[str | None, Conversation] = {}
        self.scrollback: int | None = None     # lines per conversation (None: conversation.SCROLLBACK)
        self.current: Conversation | None = None
        self._pending: dict[str, Conversation] = {}    # waiting line key -> its conversation
        self.focused = True         # the window has the focus (set by the window)
        self.title = "#lobby"
        self.topic = ""
        self.menu = ContextMenu(self, fonts.ui)
        self._build()
        # Emoji as pictures in every conversation and the input box (one set
        # of images, sized to the body font), copied out as characters.
        self.emoji_images = EmojiImages(self, fonts.body)
        self._typed = EmojiText(self.input, self.emoji_images, typed=True)
        self._conversation(None)
        self.apply_palette(pal)

    # -- building ---------------------------------------------------------

    def _build(self) -> None:
        f = self.fonts
        self.columnconfigure(0, weight=1)
        self.rowconfigure(1, weight=1)

        header = ttk.Frame(self, padding=(14, 8, 8, 8))
        header.grid(row=0, column=0, columnspan=3, sticky="ew")
        header.columnconfigure(1, weight=1)
        self.room_label = ttk.Label(header, text=self.title, style="Header.TLabel")
        self.room_label.grid(row=0, column=0, sticky="w")
        # width=1: the topic asks for no room of its own; it gets what is left, elided to fit.
        self.topic_label = ttk.Label(header, text="", style="Topic.TLabel", cursor="hand2", width=1)
        self.topic_label.grid(row=0, column=1, sticky="ew", padx=(12, 0))
        self.topic_tip = Tooltip(self.topic_label, f.ui)
        self.topic_label.bind("<Configure>", lambda e: self._fit_topic(), add="+")
        self.address_label = ttk.Label(header, text="", style="Muted.TLabel")
        self.address_label.grid(row=0, column=2, sticky="e", padx=(10, 6))
        # Shown only to an op of the room on screen (see _apply_powers).
        self.room_settings_button = ttk.Button(header, text="Room settings…", style="Flat.TButton",
                                               takefocus=False, command=self._on_room_settings)
        self.settings_button = ttk.Button(header, text="Settings…", style="Flat.TButton", takefocus=False,
                                          command=lambda: self.on_settings and self.on_settings())
        self.settings_button.grid(row=0, column=4, sticky="e")
        self.theme_button = ttk.Button(header, text="◐ Theme", style="Flat.TButton", takefocus=False,
                                       command=self.controller.toggle_theme)
        self.theme_button.grid(row=0, column=5, sticky="e")
        self.header = header

        body = ttk.Frame(self, style="Chat.TFrame")
        body.grid(row=1, column=0, sticky="nsew")
        body.columnconfigure(0, weight=1)
        body.rowconfigure(0, weight=1)
        self.body = body
        self.questions_panel = QuestionsPanel(body, f, self.pal, on_release=self._on_release)

        side = ttk.Frame(self, padding=(0, 0, 0, 0))
        side.grid(row=1, column=1, rowspan=2, sticky="ns")
        side.rowconfigure(3, weight=1)
        self.rooms = RoomList(side, f, self.pal, on_choose=self._on_choose_room,
                              on_browse=lambda: self.controller.browse_rooms())
        self.rooms.grid(row=0, column=0, sticky="ew")
        self.people_label = ttk.Label(side, text="ONLINE", style="Muted.TLabel", padding=(14, 12, 14, 4))
        self.people_label.grid(row=2, column=0, sticky="ew")
        self.people = ttk.Treeview(side, show="tree", selectmode="browse", style="People.Treeview",
                                   takefocus=False)
        self.people.column("#0", width=170, stretch=True)
        self.people.grid(row=3, column=0, sticky="nsew", padx=(6, 6), pady=(0, 8))
        self.people.bind("<Double-Button-1>", self._on_person)
        self.people.bind("<Return>", self._on_person)
        for seq in right_click_events(self.people):
            self.people.bind(seq, self._on_person_menu)
        self.people.bind("<Menu>", self._on_person_menu)
        self.people.bind("<Shift-F10>", self._on_person_menu)
        self.side = side
        side.bind("<Configure>", lambda e: self.rooms.fit(e.height), add="+")

        bottom = ttk.Frame(self, style="Chat.TFrame")
        bottom.grid(row=2, column=0, sticky="ew")
        bottom.columnconfigure(0, weight=1)
        # Issue 12: the running transfers' progress bars, above the input box.
        self.transfer_bars = TransferBars(bottom, f, self.controller)
        self.transfer_bars.grid(row=0, column=0, sticky="ew")
        self.transfer_bars.grid_remove()
        entry_row = ttk.Frame(bottom, style="Chat.TFrame", padding=(12, 6, 12, 10))
        entry_row.grid(row=1, column=0, sticky="ew")
        entry_row.columnconfigure(1, weight=1)
        self.attach_button = ttk.Button(entry_row, text="Attach…", style="Flat.TButton", takefocus=False,
                                        command=lambda: self.controller.choose_files())
        self.attach_button.grid(row=0, column=0, sticky="ns", padx=(0, 6))
        self.attach_tip = Tooltip(self.attach_button, f.ui, text=ATTACH_TIP)
        self.input = tk.Text(entry_row, height=1, wrap="word", font=f.body, relief="flat", borderwidth=0,
                             highlightthickness=1, padx=10, pady=7, undo=True, maxundo=50)
        self.input.grid(row=0, column=1, sticky="ew")
        self.send_button = ttk.Button(entry_row, text="Send", style="Accent.TButton", takefocus=False, width=6,
                                      command=self._on_send)
        self.send_button.grid(row=0, column=2, sticky="ns", padx=(8, 0))
        self.entry_row = entry_row
        for seq in ("<Return>", "<KP_Enter>"):
            self.input.bind(seq, self._on_return)
        for seq in ("<Shift-Return>", "<Shift-KP_Enter>"):
            self.input.bind(seq, self._on_newline)
        self.input.bind("<Up>", self._on_up)
        self.input.bind("<Down>", self._on_down)
        self.input.bind("<Tab>", self._on_tab)
        self.input.bind("<Control-a>", self._select_all_input)
        self.input.bind("<Control-A>", self._select_all_input)
        self.input.bind("<<Modified>>", self._on_modified)
        self.input.bind("<<Paste>>", self._on_paste)
        self.input.bind("<Configure>", lambda e: self._fit_input(), add="+")
        self.placeholder = tk.Label(self.input, text=PLACEHOLDER.format("the room"), font=f.body,
                                    borderwidth=0, padx=0, pady=0, cursor="xterm")
        self.placeholder.bind("<1>", lambda e: self.input.focus_set())
        self._sync_placeholder()

        status = ttk.Frame(self, padding=(12, 3, 12, 4))
        status.grid(row=3, column=0, columnspan=2, sticky="ew")
        status.columnconfigure(2, weight=1)
        self.status_dot = ttk.Label(status, text="●", style="Status.TLabel")
        self.status_dot.grid(row=0, column=0, sticky="w")
        self.status_label = ttk.Label(status, text="offline", style="Status.TLabel")
        self.status_label.grid(row=0, column=1, sticky="w", padx=(4, 0))
        self.action_button = ttk.Button(status, style="Link.TButton", takefocus=False, width=0,
                                        command=self.controller.retry)
        self.hint_label = ttk.Label(status, style="Status.TLabel", text=HINTS[0])
        self.hint_label.grid(row=0, column=3, sticky="e")
        self.status = status
        self._state = OFFLINE
        # The hints give way to the status when the window is narrow.
        for w in (status, self.status_label, self.action_button):
            w.bind("<Configure>", self._fit_hints, add="+")

    def destroy(self) -> None:
        self._gone = True
        if self._people_after is not None:
            self.after_cancel(self._people_after)
            self._people_after = None
        super().destroy()

    # -- look ---------------------------------------------------------------

    def apply_palette(self, pal: theme.Palette) -> None:
        self.pal = pal
        self.input.configure(background=pal.input_bg, foreground=pal.fg, insertbackground=pal.fg,
                             selectbackground=pal.select_bg, selectforeground=pal.fg,
                             highlightbackground=pal.border, highlightcolor=pal.accent)
        self.placeholder.configure(background=pal.input_bg, foreground=pal.muted)
        self.topic_tip.set_colours(pal.fg, pal.bg)
        for conv in self.conversations.values():
            conv.apply_palette(pal)
        self.rooms.apply_palette(pal)
        self.questions_panel.apply_palette(pal)
        self.menu.set_colours(pal.bg, pal.fg, pal.select_bg, pal.fg)
        self._layout()
        self._paint_people()
        self._paint_status()

    def _layout(self) -> None:
        f = self.fonts
        self.input.configure(font=f.body)
        ttk.Style(self).configure("People.Treeview", font=f.body, rowheight=f.body.metrics("linespace") + 8)
        ttk.Style(self).configure("RoomList.Treeview", font=f.body, rowheight=f.body.metrics("linespace") + 8)
        ttk.Style(self).configure("Browser.Treeview", font=f.body, rowheight=f.body.metrics("linespace") + 10)
        ttk.Style(self).configure("Questions.Treeview", font=f.body, rowheight=f.body.metrics("linespace") + 6)

    def fonts_changed(self) -> None:
        self._layout()
        for conv in self.conversations.values():
            conv.fonts_changed()
        self.rooms.apply_palette(self.pal)      # its tags' fonts
        self.emoji_images.resize()
        self._fit_input()
        self._fit_hints()
        self._fit_topic()

    # -- conversations (View methods, via the window) -------------------------

    @property
    def text(self) -> tk.Text:
        """The visible conversation's Text."""
        return self.current.text

    @property
    def new_button(self) -> ttk.Button:
        return self.current.new_button

    def at_bottom(self) -> bool:
        """Whether the visible conversation follows its newest line (for tests)."""
        return self.current.at_bottom()

    def line_count(self) -> int:
        """Lines in the visible conversation, waiting ones excluded (for tests)."""
        return self.current.line_count()

    def _conversation(self, room: str | None) -> Conversation:
        """The conversation of ``room`` (None: the visible one), made on first use."""
        if room is None and self.current is not None:
            return self.current
        conv = self.conversations.get(room)
        if conv is None:
            conv = self.conversations[room] = Conversation(self.body, room, self.fonts, self.pal,
                                                           self.emoji_images, self.controller, self.menu)
            if self.scrollback:
                conv.scrollback = self.scrollback
            if room is None:        # nothing visible (the visible room was forgotten): show this
                self._show(conv)
        return conv

    def _show(self, conv: Conversation) -> None:
        if self.current is conv:
            return
        if self.current is not None:
            self.current.grid_remove()
            self.current.hide()
        self.current = conv
        conv.grid(row=0, column=0, sticky="nsew")
        conv.show()

    def show_room(self, room: str, title: str, topic: str) -> None:
        if room not in self.conversations and None in self.conversations:
            # The lines shown before the controller named a room are its.
            conv = self.conversations.pop(None)
            conv.room = room
            self.conversations[room] = conv
        self._show(self._conversation(room))
        self.title, self.topic = title, topic
        self.room_label.configure(text=title)
        self.topic_tip.text = topic
        self._fit_topic()
        self._apply_powers()
        self._show_questions()

    def forget_room(self, room: str) -> None:
        conv = self.conversations.pop(room, None)
        if conv is None:
            return
        for key in [k for k, c in self._pending.items() if c is conv]:
            del self._pending[key]
        self.powers.pop(room, None)
        self.questions.pop(room, None)
        if conv is self.current:
            self.current = None
            self._show_questions()
            self._apply_powers()
        conv.destroy()

    def set_rooms(self, rooms, active: str) -> None:
        self.rooms.set_rooms(rooms, active)

    def _on_choose_room(self, room: str) -> None:
        self.controller.switch_room(room, self.get_input())

    def append(self, line: Line, room: str | None = None) -> None:
        self._conversation(room).append(line)

    def update_line(self, room: str, msg_id: int, line: Line) -> None:
        """An edited or removed message, in place (nothing if not shown there)."""
        conv = self.conversations.get(room)
        if conv is not None:
            conv.update_line(msg_id, line)

    def prepend(self, room: str, lines, more: bool) -> None:
        self._conversation(room).prepend(lines, more)

    def extend(self, room: str, lines, live: bool) -> None:
        self._conversation(room).extend(lines, live)

    def arrived_below(self, room: str) -> None:
        self._conversation(room).arrived_below()

    def set_scrollback(self, lines: int) -> None:
        """The lines each conversation keeps (:data:`conversation.SCROLLBACK`
        unless set; tests and benchmarks make it small), now and for the
        conversations made later."""
        self.scrollback = lines
        for conv in self.conversations.values():
            conv.scrollback = lines

    def set_unread_marker(self, room: str, msg_id: int | None) -> None:
        self._conversation(room).set_unread_marker(msg_id)

    def add_pending(self, key: str, line: Line, room: str | None = None) -> None:
        conv = self._conversation(room)
        self._pending[key] = conv
        conv.add_pending(key, line)

    def remove_pending(self, key: str) -> None:
        conv = self._pending.pop(key, None)
        if conv is not None:
            conv.remove_pending(key)

    def clear(self, room: str | None = None) -> None:
        self._conversation(room).clear()

    def before_batch(self) -> None:
        """Once per pump batch, before its first event (see Conversation.before_batch)."""
        for conv in self.conversations.values():
            conv.before_batch()

    def after_batch(self, n: int) -> None:
        """Once per pump batch: each conversation trims its scrollback and
        follows its bottom or counts what arrived below its view. Every
        text is read-only again first, whatever the rest raises."""
        conversations = list(self.conversations.values())
        for conv in conversations:
            conv.end_batch()
        for conv in conversations:
            conv.after_batch(conv is self.current and self.focused)

    def _fit_topic(self) -> None:
        """The topic, elided to the room the header has for it."""
        if self._gone:
            return
        width = self.topic_label.winfo_width()
        if width <= 1:          # not laid out yet: <Configure> comes back here
            width = 400
        shown = theme.elide(self.topic, self.fonts.small, width - 4)
        if self.topic_label.cget("text") != shown:
            self.topic_label.configure(text=shown)

    # -- people, status, input ------------------------------------------------

    def set_users(self, users, me: str, online: bool = True, roles: dict | None = None) -> None:
        """Repainted once things settle: a reconnect storm brings a join per
        person, and redrawing the list for each would cost O(n²). Offline,
        the list shows who was there, greyed, under "OFFLINE". ``roles``
        marks ops ``@`` and voiced people ``+``, and names the owner."""
        self.users, self.me, self.online = list(users), me, online
        self.roles = dict(roles or {})
        if self._people_after is None:
            self._people_after = self.after_idle(self._paint_people)

    def _paint_people(self) -> None:
        if self._people_after is not None:
            self.after_cancel(self._people_after)
            self._people_after = None
        tree = self.people
        tree.delete(*tree.get_children())
        tree.tag_configure("offline", foreground=self.pal.muted)
        for i, nick in enumerate(self.users):
            me = nick == self.me
            if self.online:
                colour = self.pal.accent if me else theme.nick_colour(self.pal, nick_key(nick))
                tag = "me" if me else f"nc{theme.nick_index(self.pal, nick_key(nick))}"
                tree.tag_configure(tag, foreground=colour)
            else:
                tag = "offline"
            label = ("●  " if self.online else "○  ") + person_label(nick, self.roles.get(nick), me)
            try:
                tree.insert("", "end", iid=str(i), text=label, tags=(tag,))
            except (tk.TclError, UnicodeError):
                tree.insert("", "end", iid=str(i), tags=(tag,),
                            text=label.encode("ascii", "backslashreplace").decode("ascii"))
        self.people_label.configure(text=f"ONLINE — {len(self.users)}" if self.online else "OFFLINE")

    def person_bbox(self, nick: str):
        """(x, y, width, height) of a person's row (for tests)."""
        return self.people.bbox(str(self.users.index(nick)))

    def _on_person(self, event=None):
        if event is not None and event.type == tk.EventType.ButtonPress:
            row = self.people.identify_row(event.y)
        else:
            row = self.people.focus()
        if row and row.isdigit() and int(row) < len(self.users):
            self.controller.user_activated(self.users[int(row)])
            self.input.focus_set()
        return "break"

    def _on_person_menu(self, event):
        """Right-click (or the Menu key on the chosen row): the person menu
        the controller offers for that person in the room on screen."""
        if event.type == tk.EventType.ButtonPress:
            row = self.people.identify_row(event.y)
            x, y = event.x_root, event.y_root
        else:
            row = self.people.focus()
            bbox = self.people.bbox(row) if row else None
            if not bbox:
                return "break"
            x, y = self.people.winfo_rootx() + bbox[0] + 20, self.people.winfo_rooty() + bbox[1] + bbox[3]
        room = self.current.room if self.current is not None else None
        if not row or not row.isdigit() or int(row) >= len(self.users) or room is None:
            return "break"
        nick = self.users[int(row)]
        self.people.selection_set(row)
        self.people.focus(row)
        controller = self.controller
        self.menu.post(controller.person_menu(room, nick),
                       lambda action: controller.person_action(room, nick, action), x, y)
        return "break"

    # -- moderation: what we may do, the questions list ------------------------

    def set_powers(self, room: str, powers: RoomPowers) -> None:
        self.powers[room] = powers
        if self.current is not None and self.current.room == room:
            self._apply_powers()

    def _apply_powers(self) -> None:
        """The room on screen: Room settings… for its ops; the input box says
        why we cannot speak there when the modes say so."""
        room = self.current.room if self.current is not None else None
        powers = self.powers.get(room) if room is not None else None
        if powers is not None and powers.moderate and room.startswith("#"):
            self.room_settings_button.grid(row=0, column=3, sticky="e")
        else:
            self.room_settings_button.grid_remove()
        if powers is not None and not powers.speak:
            self.placeholder.configure(text=powers.why or f"You cannot speak in {self.title} now.")
        else:
            self.placeholder.configure(text=PLACEHOLDER.format(self.title))

    def _on_room_settings(self) -> None:
        if self.current is not None and self.current.room is not None:
            self.controller.room_settings(self.current.room)

    def set_questions(self, room: str, questions) -> None:
        self.questions[room] = list(questions)
        if self.current is not None and self.current.room == room:
            self._show_questions()

    def _show_questions(self) -> None:
        """The questions list under the conversation on screen, when it has any."""
        room = self.current.room if self.current is not None else None
        questions = self.questions.get(room, []) if room is not None else []
        panel = self.questions_panel
        if questions:
            panel.set_questions(questions)
            if not panel.winfo_manager():
                panel.grid(row=1, column=0, sticky="ew")
        elif panel.winfo_manager():
            panel.grid_remove()

    def _on_release(self, question_id: int) -> None:
        if self.current is not None and self.current.room is not None:
            self.controller.release_question(self.current.room, question_id)

    def set_status(self, text: str, state: str, action: str | None = None) -> None:
        self._state = state
        self.status_label.configure(text=text)
        if action:
            self.action_button.configure(text=action)
            self.action_button.grid(row=0, column=2, sticky="w", padx=(10, 0))
        else:
            self.action_button.grid_remove()
        self._paint_status()
        self._fit_hints()

    def _fit_hints(self, event=None) -> None:
        """The longest key hint that fits beside the status text, or none."""
        if self._gone:
            return
        free = self.status.winfo_width() - 24 - 16       # the frame's padding, a gap
        free -= self.status_dot.winfo_reqwidth() + 4 + self.status_label.winfo_reqwidth()
        if self.action_button.winfo_manager():
            free -= self.action_button.winfo_reqwidth() + 10
        font = self.fonts.small
        hint = next(h for h in HINTS if font.measure(h) + 4 <= free or not h)
        if self.hint_label.cget("text") != hint:
            self.hint_label.configure(text=hint)
        if hint and not self.hint_label.winfo_manager():
            self.hint_label.grid()
        elif not hint and self.hint_label.winfo_manager():
            self.hint_label.grid_remove()

    def set_address(self, text: str) -> None:
        self.address_label.configure(text=text)

    def _paint_status(self) -> None:
        colour = {ONLINE: self.pal.online, OFFLINE: self.pal.offline}.get(self._state, self.pal.waiting)
        self.status_dot.configure(foreground=colour)

    def get_input(self) -> str:
        """What the input box holds, its emoji pictures as their characters."""
        return self._typed.get("1.0", "end-1c")

    def cursor(self) -> int:
        return len(self._typed.get("1.0", "insert"))

    def type_into_input(self, text: str) -> None:
        """Put typed ``text`` at the input box's cursor and focus it (keys
        that reached the window before its focus widget did)."""
        self._typed.insert("insert", text, ())
        self.input.see("insert")
        self.input.focus_set()

    def set_input(self, text: str, cursor: int | None = None) -> None:
        inp = self.input
        inp.delete("1.0", "end")
        if cursor is None:
            cursor = len(text)
        self._typed.insert("1.0", text[:cursor], ())
        inp.mark_set("split", "end-1c")
        inp.mark_gravity("split", "left")
        self._typed.insert("end-1c", text[cursor:], ())
        inp.mark_set("insert", "split")
        inp.see("insert")
        self._fit_input()

    def _on_modified(self, event=None) -> None:
        # <<Modified>> fires when the flag goes from clear to set: clear it
        # again to hear about the next change.
        self.input.edit_modified(False)
        self._fit_input()
        self._sync_placeholder()

    def _sync_placeholder(self) -> None:
        if self.input.compare("end-1c", "==", "1.0"):
            # place() measures from inside the Text's border and padding already.
            self.placeholder.place(x=0, y=0)
        else:
            self.placeholder.place_forget()

    def _fit_input(self) -> None:
        """As many lines as the text takes on screen, wrapped ones
        included, up to MAX_INPUT_LINES; all of it in view until then."""
        inp = self.input
        counted = inp.count("1.0", "end", "update", "displaylines")
        lines = counted[-1] if isinstance(counted, tuple) else (counted or 1)
        height = max(1, min(MAX_INPUT_LINES, lines))
        if int(inp.cget("height")) != height:
            inp.configure(height=height)
        if lines <= MAX_INPUT_LINES:
            inp.yview_moveto(0.0)
        inp.see("insert")

    def _select_all_input(self, event=None):
        """Ctrl+A selects everything (Tk's own binding goes to the line start)."""
        self.input.tag_add("sel", "1.0", "end-1c")
        self.input.mark_set("insert", "end-1c")
        return "break"

    def _on_paste(self, event=None):
        """Ctrl+V: text on the clipboard is pasted as Tk does; otherwise the
        controller looks for a picture there (off the Tk thread)."""
        if self._clipboard_has_text():
            return None
        self.controller.paste_image()
        return "break"

    def _clipboard_has_text(self) -> bool:
        # On X11 ask which types the owner offers: an image owner (xclip, a
        # screenshot tool) answers a plain request with its bytes as hex.
        try:
            targets = self.tk.splitlist(self.clipboard_get(type="TARGETS"))
        except tk.TclError:
            targets = None          # not X11, or nobody owns the clipboard
        if targets:
            return any(str(t) in _TEXT_TARGETS for t in targets)
        try:
            self.clipboard_get()
            return True
        except tk.TclError:
            return False

    # -- files (issue 12) ------------------------------------------------------

    def update_card(self, card) -> None:
        for conv in self.conversations.values():
            conv.update_card(card)

    def show_transfer(self, transfer) -> None:
        self.transfer_bars.show_transfer(transfer)
        self.transfer_bars.grid()

    def end_transfer(self, tid: str) -> None:
        self.transfer_bars.end_transfer(tid)
        if not self.transfer_bars.rows:
            self.transfer_bars.grid_remove()

    def _on_return(self, event=None):
        self._on_send()
        return "break"

    def _on_send(self) -> None:
        self.controller.submit(self.get_input())
        if not self._gone:          # /quit destroys the window under us
            self._fit_input()

    def _on_newline(self, event=None):
        self.input.insert("insert", "\n")
        self._fit_input()
        return "break"

    def _on_up(self, event=None):
        if self.input.compare("insert linestart", "==", "1.0"):
            self.controller.recall(-1, self.get_input())
            return "break"
        return None

    def _on_down(self, event=None):
        if self.input.compare("insert lineend", "==", "end-1c"):
            self.controller.recall(+1, self.get_input())
            return "break"
        return None

    def _on_tab(self, event=None):
        self.controller.complete(self.get_input(), self.cursor())
        return "break"



def person_label(nick: str, role: str | None, me: bool) -> str:
    """A person's row in the people list: ``@`` before an op, ``+`` before a
    voiced person, "(owner)" and "(you)" after."""
    notes = [n for n, on in (("owner", role == OWNER), ("you", me)) if on]
    return ROLE_MARKS.get(role or "", "") + nick + (f"  ({', '.join(notes)})" if notes else "")
