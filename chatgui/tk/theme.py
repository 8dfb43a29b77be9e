"""Colours and fonts for the light and dark themes, and the ttk style.

A :class:`Palette` is plain data; :func:`apply_style` pushes one into the
ttk style database and the root's option database so that the classic Tk
widgets (Text, Listbox) and the ttk ones agree. :func:`nick_colour` gives
each nick a stable colour that reads on the theme's background.

Thread: the Tk thread only (fonts and styles are Tk objects).
"""
from __future__ import annotations

import zlib
from dataclasses import dataclass

import tkinter as tk
import tkinter.font as tkfont
from tkinter import ttk


@dataclass(frozen=True)
class Palette:
    name: str
    bg: str            # chat pane
    panel: str         # side list, header, status bar
    border: str
    fg: str
    muted: str         # timestamps, hints, system notices
    accent: str        # own nick, focus ring, buttons
    accent_fg: str
    input_bg: str
    select_bg: str
    mention_bg: str
    mention_bar: str
    private_bg: str
    private_fg: str
    error_fg: str
    error_bg: str
    link: str
    online: str
    waiting: str
    offline: str
    nicks: tuple       # colours for other people's nicks


LIGHT = Palette(
    name="light", bg="#ffffff", panel="#f3f4f6", border="#e3e5e8", fg="#1f2328", muted="#6b7280",
    accent="#2f6fde", accent_fg="#ffffff", input_bg="#ffffff", select_bg="#cfe0ff",
    mention_bg="#fff3d1", mention_bar="#e0a100", private_bg="#f3ecff", private_fg="#6b3fc4",
    error_fg="#b42318", error_bg="#fdecea", link="#0b63c9", online="#1f9d55", waiting="#d08700",
    offline="#9aa0a6",
    nicks=("#c2410c", "#0f766e", "#7c3aed", "#b91c1c", "#15803d", "#a21caf", "#0369a1", "#a16207",
           "#be185d", "#4d7c0f"),
)

DARK = Palette(
    name="dark", bg="#1e1f22", panel="#2b2d31", border="#3a3c42", fg="#e3e5e8", muted="#949ba4",
    accent="#6b8cff", accent_fg="#0f1115", input_bg="#383a40", select_bg="#3d4a6b",
    mention_bg="#3d3523", mention_bar="#f0b232", private_bg="#30283f", private_fg="#c4a7ff",
    error_fg="#ff8a80", error_bg="#3e2426", link="#7ab7ff", online="#3ba55d", waiting="#f0b232",
    offline="#80848e",
    nicks=("#ff9f68", "#5eead4", "#c4b5fd", "#fca5a5", "#86efac", "#f0abfc", "#7dd3fc", "#fcd34d",
           "#f9a8d4", "#bef264"),
)

PALETTES = {"light": LIGHT, "dark": DARK}

_SANS = ("Inter", "Segoe UI", "SF Pro Text", "Helvetica Neue", "Cantarell", "Ubuntu", "Noto Sans",
         "DejaVu Sans", "Helvetica", "Arial")
_MONO = ("JetBrains Mono", "Cascadia Mono", "SF Mono", "Menlo", "Consolas", "DejaVu Sans Mono",
         "Noto Sans Mono", "Liberation Mono", "Courier New")


def palette(name: str) -> Palette:
    return PALETTES.get(name, LIGHT)


def nick_index(pal: Palette, nick_key: str) -> int:
    """The same nick always gets the same colour (crc32 is stable across runs)."""
    return zlib.crc32(nick_key.encode("utf-8", "surrogatepass")) % len(pal.nicks)


def nick_colour(pal: Palette, nick_key: str) -> str:
    return pal.nicks[nick_index(pal, nick_key)]


def pick_family(root: tk.Misc, choices=_SANS) -> str:
    available = {f.lower(): f for f in tkfont.families(root)}
    for name in choices:
        if name.lower() in available:
            return available[name.lower()]
    return tkfont.nametofont("TkDefaultFont", root).actual("family")


def elide(text: str, font, width: int) -> str:
    """The longest start of ``text`` that fits in ``width`` pixels with "…"
    (all of it when it fits)."""
    if font.measure(text) <= width:
        return text
    lo, hi = 0, len(text)
    while lo < hi:              # binary search: measure() is a Tk call
        mid = (lo + hi + 1) // 2
        if font.measure(text[:mid].rstrip() + "…") <= width:
            lo = mid
        else:
            hi = mid - 1
    return text[:lo].rstrip() + "…" if lo else ""


class Fonts:
    """The app's named fonts; :meth:`resize` changes them all at once, and
    every widget that uses them follows without being touched."""

    def __init__(self, root: tk.Misc, size: int):
        family = pick_family(root)
        mono = pick_family(root, _MONO)
        self.size = size
        self.body = tkfont.Font(root, family=family, size=size)
        self.bold = tkfont.Font(root, family=family, size=size, weight="bold")
        self.italic = tkfont.Font(root, family=family, size=size, slant="italic")
        self.small = tkfont.Font(root, family=family, size=max(7, size - 2))
        self.mono_small = tkfont.Font(root, family=mono, size=max(7, size - 2))
        self.mono = tkfont.Font(root, family=mono, size=max(7, size - 1))
        self.title = tkfont.Font(root, family=family, size=size + 3, weight="bold")
        self.ui = tkfont.Font(root, family=family, size=max(8, size - 1))

    def resize(self, size: int) -> None:
        self.size = size
        self.body.configure(size=size)
        self.bold.configure(size=size)
        self.italic.configure(size=size)
        self.small.configure(size=max(7, size - 2))
        self.mono_small.configure(size=max(7, size - 2))
        self.mono.configure(size=max(7, size - 1))
        self.title.configure(size=size + 3)
        self.ui.configure(size=max(8, size - 1))


def apply_style(root: tk.Misc, pal: Palette, fonts: Fonts) -> ttk.Style:
    """Configure ttk styles (``clam`` base, which honours colours everywhere)."""
    style = ttk.Style(root)
    if "clam" in style.theme_names():
        style.theme_use("clam")
    style.configure(".", background=pal.panel, foreground=pal.fg, font=fonts.ui, bordercolor=pal.border,
                    lightcolor=pal.panel, darkcolor=pal.panel, troughcolor=pal.panel,
                    focuscolor=pal.accent, fieldbackground=pal.input_bg, insertcolor=pal.fg,
                    selectbackground=pal.select_bg, selectforeground=pal.fg)
    style.configure("TFrame", background=pal.panel)
    style.configure("Chat.TFrame", background=pal.bg)
    style.configure("Card.TFrame", background=pal.bg, borderwidth=1, relief="solid", bordercolor=pal.border)
    style.configure("TLabel", background=pal.panel, foreground=pal.fg, font=fonts.ui)
    style.configure("Card.TLabel", background=pal.bg, foreground=pal.fg, font=fonts.ui)
    style.configure("Title.TLabel", background=pal.bg, foreground=pal.fg, font=fonts.title)
    style.configure("Header.TLabel", background=pal.panel, foreground=pal.fg, font=fonts.bold)
    style.configure("Muted.TLabel", background=pal.panel, foreground=pal.muted, font=fonts.small)
    style.configure("Topic.TLabel", background=pal.panel, foreground=pal.muted, font=fonts.small)
    style.configure("CardMuted.TLabel", background=pal.bg, foreground=pal.muted, font=fonts.small)
    style.configure("Error.TLabel", background=pal.bg, foreground=pal.error_fg, font=fonts.ui)
    style.configure("Status.TLabel", background=pal.panel, foreground=pal.muted, font=fonts.small)
    style.configure("TCheckbutton", background=pal.bg, foreground=pal.fg, font=fonts.ui,
                    indicatorbackground=pal.input_bg, indicatorforeground=pal.accent,
                    indicatorsize=max(12, fonts.ui.metrics("ascent")), indicatormargin=(0, 0, 8, 0))
    style.map("TCheckbutton", background=[("active", pal.bg)],
              indicatorbackground=[("selected", pal.input_bg), ("active", pal.input_bg)])
    style.configure("TEntry", fieldbackground=pal.input_bg, foreground=pal.fg, bordercolor=pal.border,
                    lightcolor=pal.input_bg, darkcolor=pal.input_bg, padding=(6, 4))
    style.map("TEntry", bordercolor=[("focus", pal.accent)], lightcolor=[("focus", pal.accent)],
              fieldbackground=[("disabled", pal.panel)], foreground=[("disabled", pal.muted)])
    style.configure("TButton", background=pal.panel, foreground=pal.fg, bordercolor=pal.border,
                    lightcolor=pal.panel, darkcolor=pal.panel, padding=(10, 4), font=fonts.ui)
    style.map("TButton", background=[("active", pal.border)])
    style.configure("Accent.TButton", background=pal.accent, foreground=pal.accent_fg,
                    bordercolor=pal.accent, lightcolor=pal.accent, darkcolor=pal.accent,
                    padding=(14, 6), font=fonts.bold)
    style.map("Accent.TButton", background=[("disabled", pal.border), ("active", pal.accent)],
              foreground=[("disabled", pal.muted)])
    style.configure("Link.TButton", background=pal.panel, foreground=pal.link, bordercolor=pal.panel,
                    lightcolor=pal.panel, darkcolor=pal.panel, padding=(2, 0), font=fonts.small)
    style.map("Link.TButton", background=[("active", pal.panel)], foreground=[("active", pal.accent)])
    style.configure("Pill.TButton", background=pal.accent, foreground=pal.accent_fg, bordercolor=pal.accent,
                    lightcolor=pal.accent, darkcolor=pal.accent, padding=(12, 3), font=fonts.small)
    style.map("Pill.TButton", background=[("active", pal.link)])
    style.configure("Flat.TButton", background=pal.panel, foreground=pal.muted, bordercolor=pal.panel,
                    lightcolor=pal.panel, darkcolor=pal.panel, padding=(6, 2), font=fonts.ui)
    style.map("Flat.TButton", background=[("active", pal.border)], foreground=[("active", pal.fg)])
    # A slim scrollbar without arrows, as current desktops draw them.
    style.layout("Slim.Vertical.TScrollbar", [("Vertical.Scrollbar.trough", {"sticky": "ns", "children": [
        ("Vertical.Scrollbar.thumb", {"expand": "1", "sticky": "nswe"})]})])
    style.configure("Slim.Vertical.TScrollbar", background=pal.border, troughcolor=pal.bg, bordercolor=pal.bg,
                    lightcolor=pal.border, darkcolor=pal.border, gripcount=0, arrowsize=10)
    style.map("Slim.Vertical.TScrollbar", background=[("active", pal.muted)],
              lightcolor=[("active", pal.muted)], darkcolor=[("active", pal.muted)])
    style.layout("Thin.Vertical.TScrollbar", style.layout("Slim.Vertical.TScrollbar"))
    style.configure("Thin.Vertical.TScrollbar", background=pal.offline, troughcolor=pal.panel,
                    bordercolor=pal.panel, lightcolor=pal.offline, darkcolor=pal.offline, gripcount=0, arrowsize=5)
    style.map("Thin.Vertical.TScrollbar", background=[("active", pal.muted)],
              lightcolor=[("active", pal.muted)], darkcolor=[("active", pal.muted)])
    style.configure("People.Treeview", background=pal.panel, fieldbackground=pal.panel, foreground=pal.fg,
                    borderwidth=0, font=fonts.body, rowheight=fonts.body.metrics("linespace") + 8)
    style.layout("People.Treeview", [("Treeview.treearea", {"sticky": "nswe"})])
    style.map("People.Treeview", background=[("selected", pal.select_bg)], foreground=[("selected", pal.fg)])
    style.configure("RoomList.Treeview", background=pal.panel, fieldbackground=pal.panel, foreground=pal.fg,
                    borderwidth=0, font=fonts.body, rowheight=fonts.body.metrics("linespace") + 8)
    style.layout("RoomList.Treeview", [("Treeview.treearea", {"sticky": "nswe"})])
    style.map("RoomList.Treeview", background=[("selected", pal.select_bg)], foreground=[("selected", pal.fg)])
    style.configure("Browser.Treeview", background=pal.bg, fieldbackground=pal.bg, foreground=pal.fg,
                    bordercolor=pal.border, font=fonts.body, rowheight=fonts.body.metrics("linespace") + 10)
    style.map("Browser.Treeview", background=[("selected", pal.select_bg)], foreground=[("selected", pal.fg)])
    style.configure("Browser.Treeview.Heading", background=pal.panel, foreground=pal.muted, font=fonts.small,
                    bordercolor=pal.border, lightcolor=pal.panel, darkcolor=pal.panel, relief="flat")
    style.map("Browser.Treeview.Heading", background=[("active", pal.border)])
    # The questions waiting for release, under the conversation (ops only).
    style.configure("Questions.Treeview", background=pal.bg, fieldbackground=pal.bg, foreground=pal.fg,
                    bordercolor=pal.border, font=fonts.body, rowheight=fonts.body.metrics("linespace") + 6)
    style.map("Questions.Treeview", background=[("selected", pal.select_bg)], foreground=[("selected", pal.fg)])
    # The connect form's "Rooms on your network" and its address field.
    style.configure("Rooms.Treeview", background=pal.input_bg, fieldbackground=pal.input_bg, foreground=pal.fg,
                    font=fonts.ui, rowheight=int(fonts.ui.metrics("linespace") * 1.5), bordercolor=pal.border,
                    indent=4)
    style.configure("Rooms.Treeview.Heading", background=pal.panel, foreground=pal.muted, font=fonts.small)
    style.map("Rooms.Treeview", background=[("selected", pal.select_bg)], foreground=[("selected", pal.fg)])
    style.configure("TCombobox", fieldbackground=pal.input_bg, foreground=pal.fg, bordercolor=pal.border)
    root.configure(background=pal.panel)
    return style
