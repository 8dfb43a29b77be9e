"""The contract between the controller and a window: the line kinds, the
:class:`Line` and :class:`ConnectValues` it hands over, and the :class:`View`
protocol a window implements (:class:`chatgui.tk.window.ChatWindow` with Tk,
``tests/fakes.py`` without).

Thread: a view is called on the Tk thread only.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol, Sequence

from server import protocol as p

OWN, OTHER, SYSTEM, MENTION, PRIVATE, ERROR = "own", "other", "system", "mention", "private", "error"
KINDS = (OWN, OTHER, SYSTEM, MENTION, PRIVATE, ERROR)

# Status states, for the dot next to the status text.
ONLINE, WAITING, OFFLINE = "online", "waiting", "offline"

APP_NAME = "Natter"

# The connect form's controls, by their labels: the controller's sentences
# name them exactly, so a person can find what to change.
TLS_LABEL = "Encrypted connection (TLS)"
HOST_LABEL = "Host a room on this computer"
LAN_LABEL = "Let others on my network join it"


@dataclass(frozen=True)
class Line:
    """One line of the conversation, ready to display.

    ``who`` goes in the name column (empty for system notices and errors);
    ``text`` is safe for Tk; ``links`` are ``(start, end, url)`` offsets into
    ``text``; ``who_key`` picks the nick's colour; ``action`` is a ``/me``.
    ``table``: each line of ``text`` after the first that holds a tab is a
    row "code<TAB>description", shown with the code in a fixed-width font
    and the descriptions lined up (``/help``).
    """
    kind: str
    stamp: str
    who: str
    text: str
    links: tuple = ()
    who_key: str = ""
    action: bool = False
    pending: bool = False
    msg_id: int | None = None
    table: bool = False


@dataclass
class ConnectValues:
    """What the connect form holds (port as typed: it is checked here)."""
    host: str = "127.0.0.1"
    port: str = str(p.DEFAULT_PORT)
    nick: str = ""
    password: str = ""
    host_room: bool = False
    host_lan: bool = False
    tls: bool = False           # encrypt (the server runs with --tls)


class View(Protocol):
    """What the controller needs from a window. Tk thread only."""

    def show_connect(self, values: ConnectValues, error: str | None, busy: str | None,
                     focus: str | None = None, trust: str | None = None,
                     trust_label: str | None = None) -> None:
        """Show the connect form with these values; ``error`` in words, or
        ``busy`` ("Connecting to ...") with the form disabled. ``focus``
        names the field to fix: nick, host, port or password. ``trust`` is
        a certificate's fingerprint to trust (changed, or met for the first
        time): offer a button that calls :meth:`Controller.trust_certificate`,
        labelled ``trust_label`` when given."""

    def show_chat(self) -> None:
        """Show the conversation, people list, input box and status line."""

    def append(self, line: Line) -> None:
        """Add a line after the others (before any waiting lines)."""

    def add_pending(self, key: str, line: Line) -> None:
        """Show a line that waits to be sent, at the very bottom."""

    def remove_pending(self, key: str) -> None: ...

    def clear(self) -> None:
        """Empty the conversation (waiting lines stay)."""

    def set_users(self, users: Sequence[str], me: str, online: bool = True) -> None:
        """The people list; ``online`` False: the room is out of reach, so
        show them as offline (greyed, under "OFFLINE")."""

    def set_status(self, text: str, state: str, action: str | None = None) -> None:
        """The status line; ``action`` labels its button ("Retry now",
        "Reconnect"), which calls :meth:`Controller.retry`; None hides it."""

    def set_title(self, title: str) -> None: ...

    def bell(self) -> None: ...

    def set_input(self, text: str, cursor: int | None = None) -> None:
        """Replace the input box's text; cursor at ``cursor`` or the end."""

    def set_theme(self, name: str) -> None: ...

    def set_font_size(self, size: int) -> None: ...

    def quit(self) -> None:
        """Close the window (the program then calls :meth:`Controller.shutdown`)."""
