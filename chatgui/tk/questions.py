"""The questions list of a room in "Questions go to me first" mode (ops
only): under the conversation, each member's question waiting for release
with its author and time, and a **Release** button that sends the chosen
one to the whole room. Released questions stay in the list, greyed, with
who released them, and cannot be released again. The list hides itself
when it is empty.

The first waiting question is chosen by itself, so one click on Release
answers the oldest; a double-click or Enter on a row releases that one.
:meth:`QuestionsPanel.select` and the button's ``invoke()`` let tests
drive it without the mouse.

Thread: the Tk thread only.
"""
from __future__ import annotations

import tkinter as tk
from tkinter import ttk
from typing import Callable, Sequence

from chatgui.app.view import Question
from chatgui.tk import theme

ROWS = 4            # rows shown; more scroll (the wheel, the keys)


class QuestionsPanel(ttk.Frame):
    """``on_release(question_id)`` is called for the chosen waiting question."""

    def __init__(self, master, fonts: theme.Fonts, pal: theme.Palette, on_release: Callable[[int], None]):
        super().__init__(master, style="TFrame", padding=(12, 6, 12, 6))
        self.fonts = fonts
        self.on_release = on_release
        self.questions: list[Question] = []
        self.columnconfigure(0, weight=1)
        self.title = ttk.Label(self, text="QUESTIONS", style="Muted.TLabel")
        self.title.grid(row=0, column=0, sticky="w")
        self.release_button = ttk.Button(self, text="Release", style="Accent.TButton", takefocus=False,
                                         command=self.release)
        self.release_button.grid(row=0, column=2, rowspan=2, sticky="ne", padx=(10, 0))
        self.tree = ttk.Treeview(self, columns=("who", "stamp"), show="tree", selectmode="browse",
                                 style="Questions.Treeview", height=ROWS, takefocus=False)
        self.tree.column("#0", width=360, stretch=True)
        self.tree.column("who", width=110, stretch=False)
        self.tree.column("stamp", width=56, stretch=False, anchor="e")
        self.tree.grid(row=1, column=0, sticky="ew", pady=(4, 0))
        self.scroll = ttk.Scrollbar(self, orient="vertical", command=self.tree.yview,
                                    style="Slim.Vertical.TScrollbar")
        self.tree.configure(yscrollcommand=self.scroll.set)
        self.tree.bind("<<TreeviewSelect>>", lambda e: self._sync_button())
        self.tree.bind("<Double-Button-1>", lambda e: self.release())
        self.tree.bind("<Return>", lambda e: self.release())
        self.apply_palette(pal)

    def apply_palette(self, pal: theme.Palette) -> None:
        self.tree.tag_configure("released", foreground=pal.muted)

    def set_questions(self, questions: Sequence[Question]) -> None:
        """The list again; the chosen question stays chosen while it waits."""
        chosen = self.chosen()
        self.questions = list(questions)
        t = self.tree
        t.delete(*t.get_children())
        for q in self.questions:
            text = q.text.replace("\n", " ")
            who = q.who if q.released_by is None else f"{q.who} · released by {q.released_by}"
            values = (who, q.stamp)
            tags = ("released",) if q.released_by is not None else ()
            try:
                t.insert("", "end", iid=str(q.id), text=text, values=values, tags=tags)
            except (tk.TclError, UnicodeError):
                safe = [s.encode("ascii", "backslashreplace").decode("ascii") for s in (text, *values)]
                t.insert("", "end", iid=str(q.id), text=safe[0], values=safe[1:], tags=tags)
        # As tall as the list, up to ROWS, then it scrolls.
        t.configure(height=max(1, min(ROWS, len(self.questions))))
        if len(self.questions) > ROWS:
            self.scroll.grid(row=1, column=1, sticky="ns", pady=(4, 0))
        else:
            self.scroll.grid_remove()
        waiting = self.waiting()
        self.title.configure(text=f"QUESTIONS — {len(waiting)} waiting")
        if chosen is not None and chosen.released_by is None and chosen.id in {q.id for q in waiting}:
            self.select(chosen.id)
        elif waiting:
            self.select(waiting[0].id)
        self._sync_button()

    def waiting(self) -> list[Question]:
        return [q for q in self.questions if q.released_by is None]

    def select(self, question_id: int) -> None:
        """Choose a question by its id (what a click on its row does)."""
        iid = str(question_id)
        self.tree.selection_set(iid)
        self.tree.focus(iid)
        self.tree.see(iid)
        self._sync_button()

    def chosen(self) -> Question | None:
        sel = self.tree.selection()
        return next((q for q in self.questions if sel and str(q.id) == sel[0]), None)

    def _sync_button(self) -> None:
        q = self.chosen()
        self.release_button.state(["!disabled"] if q is not None and q.released_by is None else ["disabled"])

    def release(self) -> None:
        q = self.chosen()
        if q is not None and q.released_by is None:
            self.on_release(q.id)
