"""A tooltip: a small borderless window under a widget with a text, shown
while the pointer rests on the widget (after :data:`DELAY_MS`) or on a
click, hidden when the pointer leaves, on a second click and on Escape.

Thread: the Tk thread only.
"""
from __future__ import annotations

import tkinter as tk

DELAY_MS = 500
WRAP = 460          # pixels: a long text wraps instead of running off the screen


class Tooltip:
    def __init__(self, widget: tk.Misc, font, *, text: str = ""):
        self.widget = widget
        self.font = font
        self.text = text
        self.colours = ("#1f2328", "#ffffff")      # background, foreground (see set_colours)
        self.window: tk.Toplevel | None = None
        self._after = None
        widget.bind("<Enter>", self._on_enter, add="+")
        widget.bind("<Leave>", lambda e: self.hide(), add="+")
        widget.bind("<Button-1>", lambda e: self.toggle(), add="+")
        widget.bind("<Destroy>", self._on_destroy, add="+")

    def set_colours(self, background: str, foreground: str) -> None:
        self.colours = (background, foreground)
        if self.window is not None:
            self.label.configure(background=background, foreground=foreground)

    @property
    def showing(self) -> bool:
        return self.window is not None

    def toggle(self) -> None:
        if self.window is None:
            self.show()
        else:
            self.hide()

    def show(self) -> None:
        self._cancel()
        if self.window is not None or not self.text:
            return
        w = self.widget
        top = self.window = tk.Toplevel(w)
        top.wm_overrideredirect(True)
        top.withdraw()
        self.label = tk.Label(top, text=self.text, justify="left", wraplength=WRAP, font=self.font,
                              background=self.colours[0], foreground=self.colours[1], padx=8, pady=5)
        self.label.pack()
        top.bind("<Escape>", lambda e: self.hide())
        top.update_idletasks()
        x = min(w.winfo_rootx(), w.winfo_screenwidth() - top.winfo_reqwidth() - 4)
        top.wm_geometry(f"+{max(0, x)}+{w.winfo_rooty() + w.winfo_height() + 4}")
        top.deiconify()

    def hide(self) -> None:
        self._cancel()
        if self.window is not None:
            self.window.destroy()
            self.window = None

    def _on_enter(self, event=None) -> None:
        self._cancel()
        if self.text:
            self._after = self.widget.after(DELAY_MS, self.show)

    def _cancel(self) -> None:
        if self._after is not None:
            self.widget.after_cancel(self._after)
            self._after = None

    def _on_destroy(self, event) -> None:
        if event.widget is self.widget:
            self._cancel()
            self.window = None      # a child of the widget: destroyed with it
