"""Right-click menus: the person menu (people list) and the message menu
(a line of the conversation). The controller says which entries there are
(:class:`~chatgui.app.view.MenuItem`, only what the user may do); this
module only draws them and hands the chosen ``action`` back.

One :class:`ContextMenu` (one ``tk.Menu``, filled again for each
right-click) per window: a new right-click replaces the menu that was
open. :meth:`ContextMenu.invoke` chooses an entry by its label, as a
click would, so tests drive it without the mouse.

Thread: the Tk thread only.
"""
from __future__ import annotations

import tkinter as tk
from typing import Callable, Sequence

from chatgui.app.view import MenuItem


def right_click_events(widget: tk.Misc) -> tuple:
    """The events of a right-click here: Button-3, and on macOS (aqua) Button-2 and Control-click."""
    if widget.tk.call("tk", "windowingsystem") == "aqua":
        return ("<Button-2>", "<Control-Button-1>")
    return ("<Button-3>",)


class ContextMenu:
    def __init__(self, master: tk.Misc, font):
        self.master = master
        self.font = font
        self.menu = tk.Menu(master, tearoff=False, font=font)
        self.actions: list[tuple[str, str]] = []    # (label, action) of the open menu, in order
        self._on_choose: Callable[[str], None] | None = None

    def set_colours(self, background: str, foreground: str, active_bg: str, active_fg: str) -> None:
        self.menu.configure(background=background, foreground=foreground,
                            activebackground=active_bg, activeforeground=active_fg)

    def post(self, items: Sequence[MenuItem], on_choose: Callable[[str], None], x_root: int, y_root: int) -> bool:
        """Open a menu of ``items`` at a screen point; choosing one calls
        ``on_choose(action)``. No items: nothing opens (False)."""
        self.close()
        if not items:
            return False
        menu = self.menu
        menu.delete(0, "end")
        self.actions = []
        self._on_choose = on_choose
        for item in items:
            if item.separator_before and self.actions:
                menu.add_separator()
            label = item.label
            try:
                menu.add_command(label=label, command=lambda a=item.action: self._chosen(a))
            except (tk.TclError, UnicodeError):
                label = label.encode("ascii", "backslashreplace").decode("ascii")
                menu.add_command(label=label, command=lambda a=item.action: self._chosen(a))
            self.actions.append((label, item.action))
        menu.tk_popup(x_root, y_root)
        return True

    @property
    def labels(self) -> list[str]:
        """The entries of the menu posted last (for tests); [] once closed or chosen."""
        return [label for label, _ in self.actions]

    def invoke(self, label: str) -> None:
        """Choose the entry shown as ``label`` (KeyError: no such entry)."""
        if not self.actions:
            raise KeyError(f"no menu is open (wanted {label!r})")
        for index in range(self.menu.index("end") + 1):
            if self.menu.type(index) == "command" and self.menu.entrycget(index, "label") == label:
                self.menu.invoke(index)
                return
        raise KeyError(f"{label!r} is not in the menu: {self.labels}")

    def _chosen(self, action: str) -> None:
        on_choose = self._on_choose
        self.close()
        if on_choose is not None:
            on_choose(action)

    def close(self) -> None:
        """Take the open menu down (idempotent)."""
        self._on_choose, self.actions = None, []
        try:
            self.menu.unpost()
            self.menu.grab_release()
        except tk.TclError:         # the window is going
            pass
