"""The contract between the controller and a window: the line kinds, the
:class:`Line`, :class:`RoomEntry`, :class:`RoomChoice` and
:class:`ConnectValues` it hands over, and the :class:`View` protocol a
window implements (:class:`chatgui.tk.window.ChatWindow` with Tk,
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


@dataclass(frozen=True)
class RoomEntry:
    """One row of the room list at the side.

    ``id`` names the conversation everywhere in the UI: ``"#" + room_key``
    for a room, ``"@" + nick_key`` for a private conversation. ``label`` is
    what the row shows (``#maths``, ``bob``), already safe for Tk.
    ``unread`` counts messages after the read marker; ``mention``: one of
    them mentions us (or, for a private conversation, any unread one).
    """
    id: str
    label: str
    unread: int = 0
    mention: bool = False
    private: bool = False


@dataclass(frozen=True)
class RoomChoice:
    """A room offered by the rooms browser (``/rooms``)."""
    name: str
    topic: str
    users: int
    key: bool            # a key (password) is needed to join
    joined: bool         # we are in it already


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

    # -- rooms: each conversation (a room or a private one, by RoomEntry.id)
    # has its own scrollback and scroll position; exactly one is visible.

    def set_rooms(self, rooms: Sequence[RoomEntry], active: str) -> None:
        """The room list, in order (rooms first, then private conversations),
        with ``active`` selected."""

    def show_room(self, room: str, title: str, topic: str) -> None:
        """Make ``room``'s conversation the visible one (an empty one is made
        on first use); the header shows ``title`` (``#maths``, ``bob``) and
        ``topic``. Switching keeps every conversation's lines and scroll
        position as they were."""

    def forget_room(self, room: str) -> None:
        """Drop a conversation and its lines (after leaving a room)."""

    def append(self, line: Line, room: str | None = None) -> None:
        """Add a line after the others in ``room`` (None: the visible one),
        before any waiting lines."""

    def prepend(self, room: str, lines: Sequence[Line], more: bool) -> None:
        """Older lines, oldest first, above everything in ``room``, without
        moving what the user is looking at. ``more`` False: these are the
        first lines there are (show that the conversation starts here)."""

    def set_unread_marker(self, room: str, msg_id: int | None) -> None:
        """Draw the "new messages" line in ``room`` just above the line of
        message ``msg_id`` (None: remove it)."""

    def show_room_browser(self, rooms: Sequence[RoomChoice]) -> None:
        """Offer the rooms to join (``/rooms``); choosing one calls
        :meth:`Controller.join_room` with its name (and the key typed for a
        room that needs one)."""

    def add_pending(self, key: str, line: Line, room: str | None = None) -> None:
        """Show a line that waits to be sent, at the very bottom of ``room``
        (None: the visible one)."""

    def remove_pending(self, key: str) -> None: ...

    def clear(self, room: str | None = None) -> None:
        """Empty a conversation (None: the visible one; waiting lines stay)."""

    def set_users(self, users: Sequence[str], me: str, online: bool = True) -> None:
        """The people of the visible conversation; ``online`` False: we are
        disconnected, so show them as offline (greyed, under "OFFLINE")."""

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

    def run_doctor(self, host: str, port: int, tls: bool, nick: str | None, password: str | None) -> None:
        """Optional: check why ``host:port`` cannot be joined (the connection
        doctor, off the Tk thread) and show its sentences on the connect form
        (:func:`chatgui.app.lan.offer_doctor` calls it after a failed join)."""


# What the window calls on the controller for rooms (Tk thread), besides
# what it already calls (connect, submit, recall, complete, ...):
#   switch_room(room_id, draft)   a click in the room list, Ctrl+PgUp/PgDn
#                                 (via next_room(step)), Alt+1..9 (via
#                                 room_at(n)); ``draft`` is what the input
#                                 box holds, kept for when the user comes back
#   load_older(room_id)           the conversation was scrolled to its top
#   seen_bottom(room_id)          the user is at the bottom of it: read
#                                 (ignored while the window has no focus)
#   trimmed(room_id, oldest_id)   the scrollback cap dropped its oldest lines;
#                                 oldest_id: the oldest message still shown
#   join_room(name, key=None)     from the rooms browser
#   browse_rooms()                the rooms button
