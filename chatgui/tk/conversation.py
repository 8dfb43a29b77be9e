"""One conversation (a room or a private one): its lines in a read-only
``tk.Text`` with its own scroll position, following the bottom, the
"N new messages ↓" button, the "new messages" rule, older lines put on top,
links, emoji, and trimming. :class:`chatgui.tk.chatpane.ChatPane` keeps one
per conversation and shows one at a time. It builds and forwards; what to
show, and when to fetch, is the controller's.

Layout: three columns with tab stops (time, name right-aligned, text);
wrapped and continued lines hang under the text column, so a peer's
multi-line message can never start a line in the name column and pass for a
system notice. Lines waiting to be sent sit below the ``pend`` mark, at the
very bottom, until the controller removes them. Scrollback is trimmed to
:data:`SCROLLBACK` lines once per pump batch (see :meth:`after_batch`).

Following the bottom: "stuck to the bottom" is state, changed only by what
the user does to the view (the wheel, the scrollbar, keys and drags in the
conversation, the "N new messages ↓" button, sending a message). While
stuck, the view is put back at the bottom after each batch of new lines and
after every change of the conversation's size or font (the input box
growing, the status line changing height, Ctrl+plus, the window resized,
the conversation shown again); while not, the view stays where the user
left it and the button counts what arrived below, hidden or not.

Older lines (:meth:`prepend`) go above the first line without moving what
is in view: the first display line on screen is marked, and after the
insert the view is put back with that line at the same height. The user
bringing the view to the very top calls ``controller.load_older(room)``
once; it is called again only after the view left the top or older lines
came. Once told there is nothing older (``more`` False), the conversation
starts with a "beginning" line and asks no more. Trimming drops the oldest
lines and tells ``controller.trimmed(room, oldest_id)`` which message is
now the oldest shown, so that paging back goes on from there.

Paging back far: when older lines make the conversation longer than its
cap (:attr:`scrollback`), the newest lines more than ``TRIM_SLACK`` below
the view go, and ``controller.dropped_newest(room, newest_id)`` says which
message is now the newest shown. The conversation is then not at its live
end: nothing follows the bottom, live messages are not drawn
(:meth:`arrived_below` only counts them on the button), and the view
reaching the bottom of what it holds calls ``controller.load_newer(room)``
once (again only after the view left the bottom or newer lines came);
:meth:`extend` puts the newer page below, and the one that reaches the live
end makes the conversation live again. The button, while not live, calls
``controller.to_live(room)``, which starts the conversation over.

Reading: the user bringing the view to the bottom, the conversation being
shown with its bottom in view, and new lines arriving while it is shown in
a focused window and stuck to the bottom call ``controller.seen_bottom(room)``.

Lines by message id: a line with a ``msg_id`` gets a mark ``m<id>`` at its
start (right gravity: text inserted there goes before the line), and
:attr:`ids` holds those ids in the order of the lines, oldest first. The
unread rule is placed by them and trimming drops a prefix of them; dropping
pages far out of view and fetching them again later works on the same
marks. A line's range is its mark and the number of text lines it spans
(kept per id; no tag per line, because every ``Text.delete`` costs more
with each tag the widget has): :meth:`Conversation.update_line` replaces
that range where it stands (an edit with "(edited)", a tombstone), holding
the view as :meth:`prepend` does, and a right-click finds the message
under the pointer by bisecting the ids (:meth:`message_at`) and opens the
message menu the controller offers.

Read-only: the ``Text`` is "disabled" except inside :meth:`_writable`;
within a pump batch (:meth:`before_batch` .. :meth:`end_batch`) it is
opened once and stays open to the batch's end.

Thread: the Tk thread only.
"""
from __future__ import annotations

import collections
import contextlib
import logging
import re
import tkinter as tk
from dataclasses import replace
from tkinter import ttk

from chatgui.app.view import ERROR, MENTION, OWN, PRIVATE, SYSTEM, Line
from chatgui.tk import theme
from chatgui.tk.cards import FileCardWidget
from chatgui.tk.emoji_text import EmojiImages, EmojiText
from chatgui.tk.menus import ContextMenu, right_click_events

log = logging.getLogger("natter.client")

SCROLLBACK = 5000        # lines kept in a conversation
TRIM_SLACK = 200         # trimmed in chunks, not one line at a time
UNREAD_LABEL = "new messages"
BEGINNING = "This is the beginning of the conversation."
EDITED_NOTE = "  (edited)"
QUESTION_NOTE = "  (question: waiting for an op to release it)"
# What moves the conversation's view when the user does it (after Tk's
# own Text bindings have run: see the bindtag in _build).
_USER_SCROLLS = ("<MouseWheel>", "<Button-4>", "<Button-5>", "<KeyPress>", "<ButtonRelease-1>",
                 "<ButtonRelease-2>", "<B2-Motion>")
_NEWLINE = re.compile(r"(\n)")


class Conversation(ttk.Frame):
    """The lines of conversation ``room``; ``images`` is the emoji set
    shared by every conversation of the window."""

    def __init__(self, master, room: str | None, fonts: theme.Fonts, pal: theme.Palette,
                 images: EmojiImages, controller, menu: ContextMenu | None = None):
        super().__init__(master, style="Chat.TFrame")
        self.room = room
        self.menu = menu
        self.fonts = fonts
        self.pal = pal
        self.controller = controller
        self.shown = False          # the visible conversation (set by the pane)
        self.ids: collections.deque = collections.deque()   # msg ids of the lines, in order
        self._rows: dict[int, int] = {}     # msg id -> text lines its line spans (from its mark)
        self._writing = False       # the text is open for changes (see _writable)
        self._in_batch = False      # between before_batch and after_batch
        self._stuck = True          # follow the bottom (see the module docstring)
        self._appended = 0          # lines added since the last batch
        self._unseen = 0            # lines added below the view while not stuck
        self._follow_after = None   # a scheduled return to the bottom
        self._shown_after = None    # a scheduled look at the view after showing
        self._tables: dict[str, list] = {}  # tag -> the codes of a table shown (for its tab stop)
        self._asked_older = False   # load_older called since the view came to the top
        self._asked_newer = False   # load_newer called since the view came to the bottom
        self._live = True           # the newest lines are here (see "Paging back far")
        self.scrollback = SCROLLBACK        # lines kept (the pane may set fewer, for tests)
        self._complete = False      # the first line there is, is here (the beginning line shows)
        self._marker: int | None = None     # the unread rule stands above this message
        self._rule = None           # the rule's canvas while it is in the text
        self._view_first = 0.0      # the top of the view as last drawn (yscrollcommand)
        self.cards: dict = {}       # file id -> the FileCardWidgets showing it here
        self._build()
        self._conv = EmojiText(self.text, images)
        self.apply_palette(pal)

    # -- building ---------------------------------------------------------------

    def _build(self) -> None:
        self.columnconfigure(0, weight=1)
        self.rowconfigure(0, weight=1)
        t = self.text = tk.Text(self, wrap="word", font=self.fonts.body, borderwidth=0, highlightthickness=0,
                                padx=6, pady=8, cursor="arrow", undo=False, takefocus=False,
                                spacing1=3, spacing3=3, state="disabled")
        t.grid(row=0, column=0, sticky="nsew")
        self.scroll = ttk.Scrollbar(self, orient="vertical", command=self._on_scrollbar,
                                    style="Slim.Vertical.TScrollbar")
        self.scroll.grid(row=0, column=1, sticky="ns")
        self.scroll.grid_remove()
        t.configure(yscrollcommand=self._on_yscroll)
        t.mark_set("pend", "1.0")
        t.mark_gravity("pend", "right")
        t.tag_bind("link", "<Enter>", lambda e: t.configure(cursor="hand2"))
        t.tag_bind("link", "<Leave>", lambda e: t.configure(cursor="arrow"))
        t.tag_bind("link", "<ButtonRelease-1>", self._on_link)
        # Read-only, yet selectable and copyable.
        t.bind("<1>", lambda e: t.focus_set())
        # A bindtag after "Text", so these run once Tk's own bindings have
        # moved the view: then the view is where the user put it.
        follow = f"NatterFollow{id(self)}"
        tags = list(t.bindtags())
        tags.insert(tags.index("Text") + 1, follow)
        t.bindtags(tuple(tags))
        for seq in _USER_SCROLLS:
            t.bind_class(follow, seq, self._on_user_scroll)
        t.bind("<Configure>", self._on_text_configure, add="+")
        for seq in right_click_events(t):
            t.bind(seq, self._on_right_click)
        self.new_button = ttk.Button(self, style="Pill.TButton", takefocus=False, command=self.to_bottom)

    def destroy(self) -> None:
        for name in ("_follow_after", "_shown_after"):
            after_id = getattr(self, name)
            if after_id is not None:
                self.after_cancel(after_id)
                setattr(self, name, None)
        super().destroy()

    # -- look -------------------------------------------------------------------

    def apply_palette(self, pal: theme.Palette) -> None:
        self.pal = pal
        t, f = self.text, self.fonts
        t.configure(background=pal.bg, foreground=pal.fg, selectbackground=pal.select_bg,
                    selectforeground=pal.fg, inactiveselectbackground=pal.select_bg, insertbackground=pal.fg)
        t.tag_configure("stamp", foreground=pal.muted, font=f.mono_small)
        t.tag_configure("who", font=f.bold)
        t.tag_configure("who_own", foreground=pal.accent)
        for i, colour in enumerate(pal.nicks):
            t.tag_configure(f"nc{i}", foreground=colour)
        t.tag_configure("system", foreground=pal.muted, font=f.italic)
        t.tag_configure("sysmark", foreground=pal.muted)
        t.tag_configure("error", foreground=pal.error_fg, background=pal.error_bg)
        t.tag_configure("mention", background=pal.mention_bg)
        t.tag_configure("private", background=pal.private_bg)
        t.tag_configure("private_who", foreground=pal.private_fg)
        t.tag_configure("action", font=f.italic)
        t.tag_configure("pending", foreground=pal.muted)
        t.tag_configure("pending_note", foreground=pal.waiting, font=f.small)
        t.tag_configure("note", foreground=pal.muted, font=f.small)
        t.tag_configure("removed", foreground=pal.muted, font=f.italic)
        t.tag_configure("link", foreground=pal.link, underline=True)
        t.tag_configure("code", font=f.mono, foreground=pal.fg)
        t.tag_configure("beginning", foreground=pal.muted, font=f.small, justify="center",
                        spacing1=10, spacing3=10)
        t.tag_raise("link")
        t.tag_raise("sel")
        for widgets in getattr(self, "cards", {}).values():
            for w in widgets:
                if w.winfo_exists():
                    w.apply_palette(pal)
        self.layout()
        self._draw_rule()

    def layout(self) -> None:
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
        self.text.tag_configure("rule", lmargin1=6, rmargin=12)

    def fonts_changed(self) -> None:
        self.layout()
        self._draw_rule()
        # Every line is re-wrapped; the widget may keep its size (no <Configure>).
        self._follow_later()

    # -- lines (View methods, via the pane) ---------------------------------------

    def append(self, line: Line) -> None:
        first = self._line_of("pend")
        self._insert("pend", line, (), first)
        if line.table:
            self._tabulate(first, line.text.split("\n"))
        if line.msg_id is not None:
            self.ids.append(line.msg_id)
            if line.msg_id == self._marker:
                self._place_rule()
        self._appended += 1
        if not self._stuck:
            self._unseen += 1

    def update_line(self, msg_id: int, line: Line) -> bool:
        """Replace the line of message ``msg_id`` where it stands (an edit,
        a tombstone), without moving what the user is looking at; False
        when that message is not shown here."""
        t = self.text
        rows = self._rows.get(msg_id)
        if rows is None:
            return False
        start, end = t.index(f"m{msg_id}"), t.index(f"m{msg_id} + {rows} lines")
        held = self._hold_view(start, end)
        with self._writable():
            t.delete(start, end)
        # Marks at ``start`` now (the next line's, "pend") keep their right
        # gravity and so stay after the new line; its own mark is set again.
        self._insert(start, replace(line, msg_id=msg_id), (), self._line_of(start))
        self._restore_view(held)
        return True

    def message_at(self, index: str) -> int | None:
        """The id of the message whose line holds ``index`` (None: no message there)."""
        ids = self.ids
        row = self._line_of(index)
        lo, hi = 0, len(ids)            # the last id whose line starts at or above ``row``
        while lo < hi:
            mid = (lo + hi) // 2
            if self._line_of(f"m{ids[mid]}") <= row:
                lo = mid + 1
            else:
                hi = mid
        if lo == 0:
            return None
        msg_id = ids[lo - 1]
        return msg_id if row < self._line_of(f"m{msg_id}") + self._rows[msg_id] else None

    def _on_right_click(self, event):
        """The message menu of the line under the pointer (what the
        controller offers for it); nothing on a line that is no message."""
        msg_id = self.message_at(f"@{event.x},{event.y}")
        if self.menu is None or self.room is None or msg_id is None:
            return None
        room, controller = self.room, self.controller
        self.menu.post(controller.message_menu(room, msg_id),
                       lambda action: controller.message_action(room, msg_id, action), event.x_root, event.y_root)
        return "break"

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
            with self._writable():
                self.text.delete(ranges[0], ranges[-1])
        self.text.tag_delete(tag)

    def clear(self) -> None:
        """Every line but the waiting ones; the conversation may be paged
        in again from its newest end."""
        t = self.text
        for msg_id in self.ids:
            t.mark_unset(f"m{msg_id}")
        self.ids.clear()
        self._rows.clear()
        with self._writable():
            t.delete("1.0", "pend")
        self._rule = None
        self._marker = None
        self._complete = False
        self._asked_older = False
        self._asked_newer = False
        self._live = True
        self.to_bottom()

    def prepend(self, lines, more: bool) -> None:
        """Older lines, oldest first, above the others, the view kept on
        what it shows; ``more`` False: the beginning line on top."""
        t = self.text
        held = self._hold_view()
        # Below the beginning line, if (oddly) older lines still come.
        t.mark_set("head", t.tag_ranges("beginning")[1] if self._complete else "1.0")
        t.mark_gravity("head", "right")
        new_ids = self._insert_lines("head", lines)
        self.ids.extendleft(reversed(new_ids))
        if self._marker in new_ids and not self._rule:
            self._place_rule()
        if not more and not self._complete:
            with self._writable():
                t.insert("1.0", BEGINNING + "\n", ("beginning",))
            self._complete = True
        t.mark_unset("head")
        self._restore_view(held)
        self._asked_older = False
        self._drop_newest()

    def _drop_newest(self) -> None:
        """Over the cap after older lines came (and not following the
        bottom): the lines more than TRIM_SLACK below the view go, down to
        the cap at least; the controller is told the newest message left."""
        # Dropped as each page comes (a page's worth, not TRIM_SLACK lines
        # every few pages): the tick that shows a page stays short.
        lines = self.line_count()
        if self._stuck or lines <= self.scrollback:
            return
        bottom = self._line_of(f"@0,{self.text.winfo_height()}")
        keep = max(self.scrollback, bottom + TRIM_SLACK)        # the last line kept
        if keep >= lines:
            return
        t, cut = self.text, f"{keep + 1}.0"
        while self.ids and t.compare(f"m{self.ids[-1]}", ">=", cut):
            dropped = self.ids.pop()
            t.mark_unset(f"m{dropped}")
            del self._rows[dropped]
        if self._rule is not None and t.compare("rule.first", ">=", cut):
            self._rule = None           # placed again if its message comes back
        with self._writable():
            t.delete(cut, "pend")
        self._live = False
        self._asked_newer = False
        self.controller.dropped_newest(self.room, self.ids[-1] if self.ids else None)

    def extend(self, lines, live: bool) -> None:
        """Newer lines, oldest first, below the others (a page fetched again
        after :meth:`_drop_newest`), the view kept on what it shows and
        nothing counted as new; ``live``: this reaches the live end."""
        held = self._hold_view()
        new_ids = self._insert_lines("pend", lines)
        self.ids.extend(new_ids)
        if self._marker in new_ids and self._rule is None:
            self._place_rule()
        self._restore_view(held)
        self._appended += len(lines)    # the oldest lines are trimmed after the batch
        self._live = live
        self._asked_newer = False

    def _insert_lines(self, mark: str, lines) -> list:
        """Draw ``lines`` in order at ``mark`` (a right-gravity mark, so each
        goes after the one before); returns their message ids, in order."""
        ids = []
        with self._writable():
            for line in lines:
                first = self._line_of(mark)
                self._insert(mark, line, (), first)
                if line.table:
                    self._tabulate(first, line.text.split("\n"))
                if line.msg_id is not None:
                    ids.append(line.msg_id)
        return ids

    @contextlib.contextmanager
    def _writable(self):
        """The text open for changes ("normal") inside, read-only again
        after; nested uses change the state once (a page of lines costs
        two reconfigurations, not two per line). Inside a pump batch
        (:meth:`before_batch`) it stays open until :meth:`after_batch`, so
        a batch of live lines or a catch-up costs two as well: no user
        input is handled in between, the tick runs to its end first."""
        if self._writing:
            yield
            return
        self._writing = True
        self.text.configure(state="normal")
        if self._in_batch:
            yield
            return
        try:
            yield
        finally:
            self._read_only()

    def _read_only(self) -> None:
        if self._writing:
            self._writing = False
            self.text.configure(state="disabled")

    def arrived_below(self) -> None:
        """A live message not drawn (the live end is not here): counted on
        the "N new messages ↓" button after the batch."""
        self._unseen += 1
        self._appended += 1

    @property
    def live(self) -> bool:
        """The newest lines are here: live messages are appended."""
        return self._live

    def _hold_view(self, start: str | None = None, end: str | None = None):
        """Mark the first display line on screen, for :meth:`_restore_view`.
        ``start``..``end``: a range about to be replaced; a view that starts
        inside it is held at its start."""
        t = self.text
        top = t.index("@0,0")
        t.mark_set("anchor", top)
        inside = start is not None and t.compare(start, "<=", top) and t.compare(top, "<", end)
        t.mark_gravity("anchor", "left" if inside else "right")
        return t.dlineinfo(top)

    def _restore_view(self, info) -> None:
        """Back to what was in view: the held line at the same height (at
        the bottom, if the view follows it)."""
        t = self.text
        if info is not None and not self._stuck:
            t.yview("anchor")
            after = t.dlineinfo("anchor")
            if after is not None and after[1] != info[1]:
                t.yview_scroll(after[1] - info[1], "pixels")
        t.mark_unset("anchor")
        if self._stuck:
            self._to_end()

    @property
    def complete(self) -> bool:
        """The first line there is, is here (nothing older to load)."""
        return self._complete

    def oldest_id(self) -> int | None:
        """The lowest message id shown (None: no message line)."""
        return min(self.ids) if self.ids else None

    # -- the unread rule ----------------------------------------------------------------

    def set_unread_marker(self, msg_id: int | None) -> None:
        """The "new messages" rule above the line of ``msg_id`` (placed when
        that line comes, if it is not here yet); None removes it."""
        self._remove_rule()
        self._marker = msg_id
        if msg_id is not None and f"m{msg_id}" in self.text.mark_names():
            self._place_rule()
        if self._stuck:
            self._follow_later()

    def unread_rule_index(self) -> str | None:
        """Where the rule is (for tests), or None."""
        ranges = self.text.tag_ranges("rule")
        return str(ranges[0]) if ranges else None

    def _place_rule(self) -> None:
        t, mark = self.text, f"m{self._marker}"
        self._rule = tk.Canvas(t, highlightthickness=0, borderwidth=0, height=self.fonts.small.metrics("linespace"))
        with self._writable():
            t.mark_set("rule_at", mark)
            t.mark_gravity("rule_at", "left")
            t.window_create(mark, window=self._rule, align="center")
            t.insert(mark, "\n")
            t.tag_add("rule", "rule_at", mark)
            t.mark_unset("rule_at")
        self._draw_rule()

    def _remove_rule(self) -> None:
        ranges = self.text.tag_ranges("rule")
        if ranges:
            with self._writable():
                self.text.delete(ranges[0], ranges[-1])    # destroys the canvas too
        self._rule = None

    def _draw_rule(self) -> None:
        """A line across the conversation with "new messages" at its right."""
        c = self._rule
        if c is None or not c.winfo_exists():
            return
        pal, font = self.pal, self.fonts.small
        width = max(40, self.text.winfo_width() - 2 * 6 - 6 - 12 - 4)
        height = font.metrics("linespace")
        c.configure(width=width, height=height, background=pal.bg)
        c.delete("all")
        label_w = font.measure(UNREAD_LABEL)
        c.create_line(0, height // 2, width - label_w - 8, height // 2, fill=pal.error_fg)
        c.create_text(width, height // 2, text=UNREAD_LABEL, anchor="e", fill=pal.error_fg, font=font)

    # -- once per pump batch ----------------------------------------------------------

    def before_batch(self) -> None:
        """A pump batch begins: the text, once opened for changes, stays
        open until :meth:`end_batch` (or :meth:`after_batch`, which calls it)."""
        self._in_batch = True

    def end_batch(self) -> None:
        """The batch is over: the text is read-only again."""
        self._in_batch = False
        self._read_only()

    def after_batch(self, watched: bool = False) -> None:
        """Trim the scrollback, then follow the bottom or count what arrived
        below the view; the text is read-only again. ``watched``: this is
        shown in a focused window, so new lines at the bottom are seen."""
        self.end_batch()
        if not self._appended:
            return
        self._appended = 0
        self._trim()
        if self._stuck:
            self._to_end()
            if watched and self.shown:
                self.controller.seen_bottom(self.room)
        else:
            self._show_unseen()

    def _trim(self) -> None:
        """Down to :attr:`scrollback` lines, oldest first. Scrolled up, only lines
        well above the view go, unless there are twice too many."""
        lines, cap = self.line_count(), self.scrollback
        if lines <= cap + TRIM_SLACK:
            return
        cut = lines - cap + 1                   # the first line kept
        if not self._stuck and lines <= 2 * cap:
            cut = min(cut, self._line_of("@0,0") - TRIM_SLACK)
        if cut <= 1:
            return
        t = self.text
        while self.ids and t.compare(f"m{self.ids[0]}", "<", f"{cut}.0"):
            dropped = self.ids.popleft()
            t.mark_unset(f"m{dropped}")
            del self._rows[dropped]
        if self._rule is not None and t.compare("rule.first", "<", f"{cut}.0"):
            self._rule = None
        with self._writable():
            t.delete("1.0", f"{cut}.0")
        self._complete = False          # the beginning line went with them
        self.controller.trimmed(self.room, self.oldest_id())

    # -- shown and hidden ---------------------------------------------------------------

    def show(self) -> None:
        """Called by the pane once this is the visible conversation."""
        self.shown = True
        if self._shown_after is None:
            self._shown_after = self.after_idle(self._look_after_show)

    def hide(self) -> None:
        self.shown = False

    def _look_after_show(self) -> None:
        self._shown_after = None
        if not self.shown:
            return
        if self._stuck:
            self._to_end()
        else:
            self._show_unseen()
        self.update_idletasks()
        if self._at_bottom():
            self.controller.seen_bottom(self.room)

    # -- following the bottom, the top ------------------------------------------------------

    def to_bottom(self) -> None:
        """The "N new messages ↓" button: back to the newest, and follow.
        While the live end is not here, the controller starts the
        conversation over from its newest page (and clears this, which
        comes back here)."""
        if not self._live:
            self.controller.to_live(self.room)
            return
        self._stuck = True
        self._to_end()
        if self.shown:
            self.controller.seen_bottom(self.room)

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
        """After the user moved the view: stuck again only at the bottom
        (of the live end: at the bottom of what is here otherwise, ask for
        newer lines once); at the very top, ask for older lines once."""
        was = self._stuck
        at_bottom = self._at_bottom()
        self._stuck = at_bottom and self._live
        if self._stuck:
            self._to_end()
            if not was and self.shown:
                self.controller.seen_bottom(self.room)
        elif at_bottom:
            # The bottom of what is here, not the live end: the next page.
            if not self._asked_newer and self.shown:
                self._asked_newer = True
                self.controller.load_newer(self.room)
        else:
            self._asked_newer = False
        if self.text.yview()[0] <= 0.0:
            # Arrived at the top now (the last view drawn was not there),
            # or pushed upwards while there (a view that fits, or waiting).
            arrived = self._view_first > 0.0 or _upwards(event)
            if arrived and not self._asked_older and not self._complete and self.shown:
                self._asked_older = True
                self.controller.load_older(self.room)
        else:
            self._asked_older = False

    def _on_scrollbar(self, *args) -> None:
        self.text.yview(*args)
        self._on_user_scroll()

    def _on_text_configure(self, event=None) -> None:
        self._draw_rule()
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
        return self._line_of("pend") - 1

    def _line_of(self, index: str) -> int:
        return int(self.text.index(index).split(".")[0])

    def _on_yscroll(self, first, last) -> None:
        """Show the scrollbar only when there is something to scroll."""
        self.scroll.set(first, last)
        self._view_first = float(first)
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

    # -- drawing a line -----------------------------------------------------------------

    def _insert(self, index: str, line: Line, extra: tuple, row_number: int | None = None) -> None:
        """Draw ``line`` at ``index``; ``row_number``: the text line it starts
        (``index`` is at a line start), where its id mark goes."""
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
        if line.card is None:
            parts += self._body_parts(line, body_tags)
        if line.edited and not line.removed:
            parts += [EDITED_NOTE, row + ("note",)]
        if line.question and not line.removed:
            parts += [QUESTION_NOTE, row + ("note",)]
        if line.pending:
            parts += ["   waiting to send", row + ("pending_note",)]
        parts += ["\n", row]
        rows = sum(parts[k].count("\n") for k in range(0, len(parts), 2))
        with self._writable():
            try:
                if line.card is not None:
                    self._insert_card(index, line, parts, body_tags)
                else:
                    self._conv.insert(index, *parts)
            except (tk.TclError, UnicodeError) as e:
                # The formatting layer made the text safe; if Tk still refuses it
                # (a Tk build without full Unicode), show it escaped, never fail.
                log.warning("Tk refused a line (%s); showing it escaped", e)
                fallback = line.text.encode("ascii", "backslashreplace").decode("ascii")
                t.insert(index, f"{line.stamp}\t?\t{fallback}\n", row)
                rows = fallback.count("\n") + 1
        if line.msg_id is not None and row_number is not None:
            t.mark_set(f"m{line.msg_id}", f"{row_number}.0")     # right gravity, Tk's default
            self._rows[line.msg_id] = rows

    def _insert_card(self, index: str, line: Line, parts: list, body_tags: tuple) -> None:
        """The line of a file: its head, the card (a widget in the text), its end."""
        t = self.text
        t.mark_set("cardat", index)
        t.mark_gravity("cardat", "right")
        self._conv.insert("cardat", *parts[:-2])
        widget = FileCardWidget(t, line.card, self.fonts, self.pal, self.controller)
        t.window_create("cardat", window=widget, padx=2, pady=4)
        t.tag_add(body_tags[0], "cardat - 1 char")
        for tag in body_tags[1:]:
            t.tag_add(tag, "cardat - 1 char")
        self._conv.insert("cardat", *parts[-2:])
        t.mark_unset("cardat")
        self.cards.setdefault(line.card.fid, []).append(widget)

    def update_card(self, card) -> None:
        """Redraw every card of this file here (its picture came, it was saved...)."""
        alive = [w for w in self.cards.get(card.fid, []) if w.winfo_exists()]
        for w in alive:
            w.show(card)
        if alive:
            self.cards[card.fid] = alive
        else:
            self.cards.pop(card.fid, None)

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

    def get(self, start: str, end: str) -> str:
        """The characters of a range, emoji pictures as their characters."""
        return self._conv.get(start, end)


_UP_KEYS = {"Up", "Prior", "Home", "KP_Up", "KP_Prior", "KP_Home"}


def _upwards(event) -> bool:
    """A gesture that moves the view up: the wheel up, Up/PgUp/Home, or the
    scrollbar (no event)."""
    if event is None:
        return True
    if getattr(event, "num", None) == 4:
        return True
    if event.type == tk.EventType.MouseWheel:
        return event.delta > 0
    return event.type == tk.EventType.KeyPress and event.keysym in _UP_KEYS


def _body_tags(line: Line) -> tuple:
    tags = ()
    if line.kind == SYSTEM:
        tags += ("system",)
    if line.action:
        tags += ("action",)
    if line.pending:
        tags += ("pending",)
    if line.removed:
        tags += ("removed",)
    return tags
