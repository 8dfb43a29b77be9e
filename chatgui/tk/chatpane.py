"""The conversation screen: header, messages, people list, input box and
status line. It builds widgets and forwards what the user does to the
controller; it decides nothing about what to show.

Messages go in a read-only ``tk.Text`` laid out in three columns with tab
stops (time, name right-aligned, text); wrapped and continued lines hang
under the text column, so a peer's multi-line message can never start a
line in the name column and pass for a system notice. Lines waiting to be
sent sit below the ``pend`` mark, at the very bottom, until the controller
removes them. Scrollback is trimmed to :data:`SCROLLBACK` lines once per
pump batch.

Following the bottom: "stuck to the bottom" is state, changed only by what
the user does to the view (the wheel, the scrollbar, keys and drags in the
conversation, the "N new messages ↓" button, sending a message). While
stuck, the view is put back at the bottom after each batch of new lines and
after every change of the conversation's size or font (the input box
growing, the status line changing height, Ctrl+plus, the window resized,
the pane shown for the first time); while not, the view stays where the
user left it and the button counts what arrived below.

The input box grows with the display lines of its text (wrapped lines
count) up to :data:`MAX_INPUT_LINES`, then scrolls.

Thread: the Tk thread only.
"""
from __future__ import annotations

import logging
import re
import tkinter as tk
from tkinter import ttk

from server.protocol import nick_key

from chatgui.tk import theme
from chatgui.tk.emoji_text import EmojiImages, EmojiText
from chatgui.app.view import ERROR, MENTION, OFFLINE, ONLINE, OWN, PRIVATE, SYSTEM, Line

log = logging.getLogger("natter.client")

SCROLLBACK = 5000        # lines kept in the conversation
TRIM_SLACK = 200         # trimmed in chunks, not one line at a time
MAX_INPUT_LINES = 5
HINTS = ("Enter send · Shift+Enter new line · Tab complete · /help", "/help for commands", "")
# What moves the conversation's view when the user does it (after Tk's
# own Text bindings have run: see the bindtag in _build).
_USER_SCROLLS = ("<MouseWheel>", "<Button-4>", "<Button-5>", "<KeyPress>", "<ButtonRelease-1>",
                 "<ButtonRelease-2>", "<B2-Motion>")
_NEWLINE = re.compile(r"(\n)")


class ChatPane(ttk.Frame):
    def __init__(self, master, fonts: theme.Fonts, pal: theme.Palette, controller):
        super().__init__(master, style="Chat.TFrame")
        self.fonts = fonts
        self.pal = pal
        self.controller = controller
        self.users: list[str] = []
        self.me = ""
        self._stuck = True          # follow the bottom (see the module docstring)
        self._appended = 0          # lines added since the last batch
        self._unseen = 0            # lines added below the view while not stuck
        self._follow_after = None   # a scheduled return to the bottom
        self._tables: dict[str, list] = {}  # tag -> the codes of a table shown (for its tab stop)
        self.online = False         # the people list shows a live room
        self._people_after = None   # a repaint of the people list is scheduled
        self._gone = False          # destroyed: a handler that closed the window must stop
        self._build()
        # Emoji as pictures in the conversation and the input box (one set
        # of images, sized to the body font), copied out as characters.
        self.emoji_images = EmojiImages(self.text, fonts.body)
        self._conv = EmojiText(self.text, self.emoji_images)
        self._typed = EmojiText(self.input, self.emoji_images, typed=True)
        self.apply_palette(pal)

    # -- building ---------------------------------------------------------

    def _build(self) -> None:
        f = self.fonts
        self.columnconfigure(0, weight=1)
        self.rowconfigure(1, weight=1)

        header = ttk.Frame(self, padding=(14, 8, 8, 8))
        header.grid(row=0, column=0, columnspan=3, sticky="ew")
        header.columnconfigure(1, weight=1)
        self.room_label = ttk.Label(header, text="# lobby", style="Header.TLabel")
        self.room_label.grid(row=0, column=0, sticky="w")
        self.address_label = ttk.Label(header, text="", style="Muted.TLabel")
        self.address_label.grid(row=0, column=1, sticky="w", padx=(10, 0))
        self.theme_button = ttk.Button(header, text="◐ Theme", style="Flat.TButton", takefocus=False,
                                       command=self.controller.toggle_theme)
        self.theme_button.grid(row=0, column=2, sticky="e")
        self.header = header

        body = ttk.Frame(self, style="Chat.TFrame")
        body.grid(row=1, column=0, sticky="nsew")
        body.columnconfigure(0, weight=1)
        body.rowconfigure(0, weight=1)
        self.text = tk.Text(body, wrap="word", font=f.body, borderwidth=0, highlightthickness=0,
                            padx=6, pady=8, cursor="arrow", undo=False, takefocus=False,
                            spacing1=3, spacing3=3, state="disabled")
        self.text.grid(row=0, column=0, sticky="nsew")
        self.scroll = ttk.Scrollbar(body, orient="vertical", command=self._on_scrollbar,
                                    style="Slim.Vertical.TScrollbar")
        self.scroll.grid(row=0, column=1, sticky="ns")
        self.scroll.grid_remove()
        self.text.configure(yscrollcommand=self._on_yscroll)
        self.text.mark_set("pend", "1.0")
        self.text.mark_gravity("pend", "right")
        self.text.tag_bind("link", "<Enter>", lambda e: self.text.configure(cursor="hand2"))
        self.text.tag_bind("link", "<Leave>", lambda e: self.text.configure(cursor="arrow"))
        self.text.tag_bind("link", "<ButtonRelease-1>", self._on_link)
        # Read-only, yet selectable and copyable.
        self.text.bind("<1>", lambda e: self.text.focus_set())
        # A bindtag after "Text", so these run once Tk's own bindings have
        # moved the view: then the view is where the user put it.
        follow = f"NatterFollow{id(self)}"
        tags = list(self.text.bindtags())
        tags.insert(tags.index("Text") + 1, follow)
        self.text.bindtags(tuple(tags))
        for seq in _USER_SCROLLS:
            self.text.bind_class(follow, seq, self._on_user_scroll)
        self.text.bind("<Configure>", self._on_text_configure, add="+")
        self.new_button = ttk.Button(body, style="Pill.TButton", takefocus=False, command=self.to_bottom)

        side = ttk.Frame(self, padding=(0, 0, 0, 0))
        side.grid(row=1, column=1, rowspan=2, sticky="ns")
        side.rowconfigure(1, weight=1)
        self.people_label = ttk.Label(side, text="ONLINE", style="Muted.TLabel", padding=(14, 10, 14, 4))
        self.people_label.grid(row=0, column=0, sticky="ew")
        self.people = ttk.Treeview(side, show="tree", selectmode="browse", style="People.Treeview",
                                   takefocus=False)
        self.people.column("#0", width=170, stretch=True)
        self.people.grid(row=1, column=0, sticky="nsew", padx=(6, 6), pady=(0, 8))
        self.people.bind("<Double-Button-1>", self._on_person)
        self.people.bind("<Return>", self._on_person)
        self.side = side

        entry_row = ttk.Frame(self, style="Chat.TFrame", padding=(12, 6, 12, 10))
        entry_row.grid(row=2, column=0, sticky="ew")
        entry_row.columnconfigure(0, weight=1)
        self.input = tk.Text(entry_row, height=1, wrap="word", font=f.body, relief="flat", borderwidth=0,
                             highlightthickness=1, padx=10, pady=7, undo=True, maxundo=50)
        self.input.grid(row=0, column=0, sticky="ew")
        self.send_button = ttk.Button(entry_row, text="Send", style="Accent.TButton", takefocus=False, width=6,
                                      command=self._on_send)
        self.send_button.grid(row=0, column=1, sticky="ns", padx=(8, 0))
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
        self.input.bind("<Configure>", lambda e: self._fit_input(), add="+")
        self.placeholder = tk.Label(self.input, text="Message the room…  (/help for commands)", font=f.body,
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
        for name in ("_people_after", "_follow_after"):
            after_id = getattr(self, name)
            if after_id is not None:
                self.after_cancel(after_id)
                setattr(self, name, None)
        super().destroy()

    # -- look ---------------------------------------------------------------

    def apply_palette(self, pal: theme.Palette) -> None:
        self.pal = pal
        t = self.text
        t.configure(background=pal.bg, foreground=pal.fg, selectbackground=pal.select_bg,
                    selectforeground=pal.fg, inactiveselectbackground=pal.select_bg, insertbackground=pal.fg)
        self.input.configure(background=pal.input_bg, foreground=pal.fg, insertbackground=pal.fg,
                             selectbackground=pal.select_bg, selectforeground=pal.fg,
                             highlightbackground=pal.border, highlightcolor=pal.accent)
        self.placeholder.configure(background=pal.input_bg, foreground=pal.muted)
        t.tag_configure("stamp", foreground=pal.muted, font=self.fonts.mono_small)
        t.tag_configure("who", font=self.fonts.bold)
        t.tag_configure("who_own", foreground=pal.accent)
        for i, colour in enumerate(pal.nicks):
            t.tag_configure(f"nc{i}", foreground=colour)
        t.tag_configure("system", foreground=pal.muted, font=self.fonts.italic)
        t.tag_configure("sysmark", foreground=pal.muted)
        t.tag_configure("error", foreground=pal.error_fg, background=pal.error_bg)
        t.tag_configure("mention", background=pal.mention_bg)
        t.tag_configure("private", background=pal.private_bg)
        t.tag_configure("private_who", foreground=pal.private_fg)
        t.tag_configure("action", font=self.fonts.italic)
        t.tag_configure("pending", foreground=pal.muted)
        t.tag_configure("pending_note", foreground=pal.waiting, font=self.fonts.small)
        t.tag_configure("link", foreground=pal.link, underline=True)
        t.tag_configure("code", font=self.fonts.mono, foreground=pal.fg)
        t.tag_raise("link")
        t.tag_raise("sel")
        self._layout()
        self._paint_people()
        self._paint_status()

    def _layout(self) -> None:
        """Tab stops and hanging indents from the current font sizes."""
        f = self.fonts
        stamp_w = f.mono_small.measure("00:00")
        name_w = f.bold.measure("abcdefghijk")
        name_right = 6 + stamp_w + 14 + name_w
        body_left = name_right + 12
        self.text.configure(tabs=(name_right, "right", body_left, "left"))
        self._body_left = body_left
        for tag, codes in self._tables.items():
            self._table_tabs(tag, codes)
        self.text.tag_configure("line", lmargin1=6, lmargin2=body_left, rmargin=12)
        self.text.tag_configure("cont", lmargin1=body_left, lmargin2=body_left)
        self.input.configure(font=f.body)
        ttk.Style(self).configure("People.Treeview", font=f.body, rowheight=f.body.metrics("linespace") + 8)

    def fonts_changed(self) -> None:
        self._layout()
        self.emoji_images.resize()
        self._fit_input()
        self._fit_hints()
        # Every line is re-wrapped; the widget may keep its size (no <Configure>).
        self._follow_later()

    # -- the conversation (View methods, via the window) -------------------

    def append(self, line: Line) -> None:
        first = int(self.text.index("pend").split(".")[0])
        self._insert("pend", line, ())
        if line.table:
            self._tabulate(first, line.text.split("\n"))
        self._appended += 1
        if not self._stuck:
            self._unseen += 1

    def add_pending(self, key: str, line: Line) -> None:
        # The user sent something: show it, wherever they were reading.
        self._stuck = True
        # At the very end, after the "pend" mark: with left gravity for the
        # moment, the mark stays in front of the waiting line.
        self.text.mark_gravity("pend", "left")
        try:
            self._insert("end-1c", line, ("p:" + key,))
        finally:
            self.text.mark_gravity("pend", "right")
        self._appended += 1

    def remove_pending(self, key: str) -> None:
        tag = "p:" + key
        ranges = self.text.tag_ranges(tag)
        if ranges:
            self.text.configure(state="normal")
            self.text.delete(ranges[0], ranges[-1])
            self.text.configure(state="disabled")
        self.text.tag_delete(tag)

    def clear(self) -> None:
        self.text.configure(state="normal")
        self.text.delete("1.0", "pend")
        self.text.configure(state="disabled")
        self.to_bottom()

    def after_batch(self, n: int) -> None:
        """Once per pump batch: trim the scrollback, follow the bottom or
        count what arrived below the view."""
        if not self._appended:
            return
        self._appended = 0
        lines = int(self.text.index("pend").split(".")[0]) - 1
        if lines > SCROLLBACK + TRIM_SLACK:
            self.text.configure(state="normal")
            self.text.delete("1.0", f"{lines - SCROLLBACK + 1}.0")
            self.text.configure(state="disabled")
        if self._stuck:
            self._to_end()
        else:
            self._show_unseen()

    # -- following the bottom ----------------------------------------------------

    def to_bottom(self) -> None:
        """The "N new messages ↓" button: back to the newest, and follow."""
        self._stuck = True
        self._to_end()

    def _to_end(self) -> None:
        self.text.yview_moveto(1.0)
        self._unseen = 0
        self.new_button.place_forget()

    def _show_unseen(self) -> None:
        if self._unseen:
            n = self._unseen
            self.new_button.configure(text=f"{n} new message{'s' if n != 1 else ''} ↓")
            self.new_button.place(in_=self.text, relx=0.5, rely=1.0, y=-10, anchor="s")

    def _on_user_scroll(self, event=None) -> None:
        """After the user moved the view: stuck again only at the bottom."""
        self._stuck = self._at_bottom()
        if self._stuck:
            self._to_end()

    def _on_scrollbar(self, *args) -> None:
        self.text.yview(*args)
        self._on_user_scroll()

    def _on_text_configure(self, event=None) -> None:
        if self._stuck:
            self._to_end()

    def _follow_later(self) -> None:
        if self._follow_after is None:
            self._follow_after = self.after_idle(self._follow_now)

    def _follow_now(self) -> None:
        self._follow_after = None
        if self._stuck:
            self._to_end()

    def at_bottom(self) -> bool:
        """Whether the view follows the newest line (for tests)."""
        return self._stuck

    def line_count(self) -> int:
        """Lines in the conversation, waiting ones excluded (for tests)."""
        return int(self.text.index("pend").split(".")[0]) - 1

    def _on_yscroll(self, first, last) -> None:
        """Show the scrollbar only when there is something to scroll."""
        self.scroll.set(first, last)
        needed = float(first) > 0.0 or float(last) < 1.0
        if needed != bool(self.scroll.winfo_manager()):
            if needed:
                self.scroll.grid()
            else:
                self.scroll.grid_remove()

    def _at_bottom(self) -> bool:
        """The last line is on screen, all of it (measured on the layout
        itself: ``yview`` fractions rest on estimated line heights)."""
        info = self.text.dlineinfo("end-1c")
        return info is not None and info[1] + info[3] <= self.text.winfo_height()

    def _insert(self, index: str, line: Line, extra: tuple) -> None:
        t = self.text
        base = ("line",) + extra
        row = base + (line.kind,) if line.kind in (MENTION, PRIVATE, ERROR) else base
        body_tags = row + _body_tags(line)
        parts = [line.stamp + "\t", row + ("stamp",)]
        if line.kind in (SYSTEM, ERROR):
            parts += ["•\t" if line.kind == SYSTEM else "!\t", row + ("sysmark",)]
        elif line.action:
            parts += ["*\t", row + ("who",) + self._who_colour(line)]
        else:
            parts += [line.who + "\t", row + ("who",) + self._who_colour(line)]
        if line.action:
            parts += [line.who + " ", body_tags + ("who",) + self._who_colour(line)]
        parts += self._body_parts(line, body_tags)
        if line.pending:
            parts += ["   waiting to send", row + ("pending_note",)]
        parts += ["\n", row]
        t.configure(state="normal")
        try:
            self._conv.insert(index, *parts)
        except (tk.TclError, UnicodeError) as e:
            # The formatting layer made the text safe; if Tk still refuses it
            # (a Tk build without full Unicode), show it escaped, never fail.
            log.warning("Tk refused a line (%s); showing it escaped", e)
            fallback = line.text.encode("ascii", "backslashreplace").decode("ascii")
            t.insert(index, f"{line.stamp}\t?\t{fallback}\n", row)
        finally:
            t.configure(state="disabled")

    def _body_parts(self, line: Line, body_tags: tuple) -> list:
        """The text with its links tagged; every line after a newline in the
        text is tagged ``cont`` so it hangs under the text column."""
        text, chunks, pos = line.text, [], 0
        for start, end, _url in line.links:
            if pos <= start < end <= len(text):
                chunks += [(text[pos:start], False), (text[start:end], True)]
                pos = end
        chunks.append((text[pos:], False))
        parts, after_newline = [], False
        for chunk, is_link in chunks:
            for piece in _NEWLINE.split(chunk):
                if not piece:
                    continue
                tags = body_tags + ("cont",) if after_newline else body_tags
                parts += [piece, tags + ("link",) if is_link else tags]
                if piece == "\n":
                    after_newline = True
        return parts

    def _tabulate(self, first: int, rows: list) -> None:
        """Line up the rows of a table line (see ``Line.table``), which
        start on text line ``first``: the code before each row's tab in
        the fixed-width font, and one tab stop for all the descriptions."""
        t, codes = self.text, []
        tag = f"table{len(self._tables)}"
        for i, row in enumerate(rows[1:], start=first + 1):
            if "\t" in row:
                code = row.split("\t", 1)[0]
                codes.append(code)
                t.tag_add("code", f"{i}.0", f"{i}.{len(code)}")
                t.tag_add(tag, f"{i}.0", f"{i}.0 lineend")
        if codes:
            self._tables[tag] = codes
            self._table_tabs(tag, codes)

    def _table_tabs(self, tag: str, codes: list) -> None:
        stop = self._body_left + max(self.fonts.mono.measure(c) for c in codes) + self.fonts.body.measure("  ")
        # A description that wraps hangs under the descriptions, not the codes.
        self.text.tag_configure(tag, tabs=(stop, "left"), lmargin2=stop)

    def _who_colour(self, line: Line) -> tuple:
        if line.kind == PRIVATE:
            return ("private_who",)
        if line.kind == OWN:
            return ("who_own",)
        return (f"nc{theme.nick_index(self.pal, line.who_key)}",)

    def _on_link(self, event) -> None:
        if self.text.tag_ranges("sel"):      # the end of a drag that selected text
            return
        index = self.text.index(f"@{event.x},{event.y}")
        rng = self.text.tag_prevrange("link", index + "+1c")
        if rng and self.text.compare(rng[0], "<=", index) and self.text.compare(index, "<", rng[1]):
            self.controller.link_clicked(self._conv.get(*rng))

    # -- people, status, input ------------------------------------------------

    def set_users(self, users, me: str, online: bool = True) -> None:
        """Repainted once things settle: a reconnect storm brings a join per
        person, and redrawing the list for each would cost O(n²). Offline,
        the list shows who was there, greyed, under "OFFLINE"."""
        self.users, self.me, self.online = list(users), me, online
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
            label = ("●  " if self.online else "○  ") + nick + ("  (you)" if me else "")
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


def _body_tags(line: Line) -> tuple:
    tags = ()
    if line.kind == SYSTEM:
        tags += ("system",)
    if line.action:
        tags += ("action",)
    if line.pending:
        tags += ("pending",)
    return tags


