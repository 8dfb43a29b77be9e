"""The contract between the controller and a window: the line kinds, the
:class:`Line`, :class:`RoomEntry`, :class:`RoomChoice` and
:class:`ConnectValues` it hands over; for moderation the roles, the room
:class:`Modes`, a room's :class:`RoomPowers` and :class:`RoomSettings`,
the :class:`Question` list and the :class:`MenuItem` entries of the person
and message menus; and the :class:`View` protocol a window implements
(:class:`chatgui.tk.window.ChatWindow` with Tk, ``tests/fakes.py`` without).

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

# A person's role in a room, highest first (the protocol's names).
OWNER, OP, VOICE, MEMBER = "owner", "op", "voice", "member"
ROLES = (OWNER, OP, VOICE, MEMBER)
# What the people list puts before a name (IRC's marks; the owner is an op too).
ROLE_MARKS = {OWNER: "@", OP: "@", VOICE: "+", MEMBER: ""}

# The room settings dialog's labels for the modes, in plain language
# (Modes' field -> label; "slow" is a number of seconds, the others ticks).
MODE_LABELS = {
    "moderated": "Only I and helpers can speak",
    "questions": "Questions go to me first",
    "announce": "Only I speak (announcements)",
    "slow": "Slow mode",
    "dm": "Private messages between members",
}
SLOW_MAX = 86_400       # seconds: the protocol's limit for slow mode


@dataclass(frozen=True)
class Line:
    """One line of the conversation, ready to display.

    ``who`` goes in the name column (empty for system notices and errors);
    ``text`` is safe for Tk; ``links`` are ``(start, end, url)`` offsets into
    ``text``; ``who_key`` picks the nick's colour; ``action`` is a ``/me``.
    ``table``: each line of ``text`` after the first that holds a tab is a
    row "code<TAB>description", shown with the code in a fixed-width font
    and the descriptions lined up (``/help``).

    ``msg_id`` addresses the line for :meth:`View.update_line` (edited,
    removed) and for the message menu. ``edited``: show "(edited)" after
    the text (dimmed). ``removed``: the message was deleted; ``text`` is
    then the tombstone ("message removed by X"), shown dimmed and in
    italics, with nothing of the old text. ``question``: a member's
    question waiting for the teacher (shown to its author, marked).
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
    edited: bool = False
    removed: bool = False
    question: bool = False
    card: "FileCard | None" = None


@dataclass(frozen=True)
class FileCard:
    """A file someone sent (issue 12), shown in place of a message's text.

    ``fid`` is the server's id (shown, for ``/get``); ``name`` and ``size``
    ("1.2 MiB") are safe for Tk. ``image``: a picture: ``picture`` holds the
    PNG to draw inline (made by :mod:`chatgui.app.images`, never the bytes a
    peer sent), None until it is ready; ``broken``: it cannot be shown
    (``note`` says why). ``runnable``: a program: ``note`` warns. Buttons:
    Save (``saved`` False) or Open folder (``saved`` True), each calling
    :meth:`Controller.card_action` with ``fid`` and "save" / "open_folder";
    a click on the picture calls it with "view". ``busy``: a download of it
    runs (Save is disabled). ``gone``: the server no longer has the bytes."""
    fid: str
    name: str
    size: str
    image: bool = False
    picture: bytes | None = None
    broken: bool = False
    runnable: bool = False
    note: str = ""
    saved: bool = False
    busy: bool = False
    gone: bool = False


@dataclass(frozen=True)
class TransferView:
    """A transfer's progress bar: ``label`` ("Sending report.pdf to #maths"),
    ``fraction`` done (None: not known yet), ``detail`` ("3.1 MiB of 50.0 MiB ·
    12.0 MiB/s · 4 s left"). Its Cancel button calls
    :meth:`Controller.cancel_transfer` with ``tid``."""
    tid: str
    label: str
    fraction: float | None
    detail: str


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


@dataclass(frozen=True)
class Modes:
    """A room's modes (DESIGN-11 section 2): ``moderated`` only voice and up
    speak; ``questions`` a member's message goes to the ops first;
    ``announce`` only ops speak; ``slow`` seconds between two messages of a
    member (0: off); ``dm`` members may message each other privately;
    ``key`` a key is needed to join."""
    moderated: bool = False
    questions: bool = False
    announce: bool = False
    slow: int = 0
    dm: bool = True
    key: bool = False


@dataclass(frozen=True)
class RoomPowers:
    """Who may do what in one room, for the window's enabled controls.

    ``role``: ours here (one of :data:`ROLES`). ``roles``: the people above
    member, by their nick as :meth:`View.set_users` lists it (safe), ->
    role. ``moderate``: we are op or up (the settings dialog, the questions
    list, kick/mute/ban/voice in the person menu). ``grant``: we may make
    ops (owner or server admin). ``speak``: the modes let us say something
    here now (False: the input box may say why, ``why``)."""
    role: str = MEMBER
    modes: Modes = Modes()
    roles: dict | None = None
    moderate: bool = False
    grant: bool = False
    speak: bool = True
    why: str = ""


@dataclass(frozen=True)
class RoomSettings:
    """What the room settings dialog starts from (an op opened it).
    ``title`` is ``#maths``, ``topic`` the current topic, both safe. The
    dialog hands back its choices to :meth:`Controller.apply_room_settings`."""
    room: str           # the RoomEntry id
    title: str
    modes: Modes
    topic: str


@dataclass(frozen=True)
class Question:
    """A member's question waiting for release, in a room's questions list
    (ops only). ``released_by``: an op released it (the list keeps it,
    without its Release button), None while it waits."""
    id: int
    who: str            # the author's nick, safe
    text: str           # safe
    stamp: str
    released_by: str | None = None


@dataclass(frozen=True)
class MenuItem:
    """One entry of a person's or a message's menu: ``action`` goes back to
    the controller as it is (``person_action`` / ``message_action``);
    ``label`` is what the menu shows. ``separator_before``: draw a line
    above it (the moderation entries, after the everyday ones)."""
    action: str
    label: str
    separator_before: bool = False


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

    def extend(self, room: str, lines: Sequence[Line], live: bool) -> None:
        """Newer lines, oldest first, below everything in ``room`` (a page
        fetched again after the view dropped its newest lines), without
        moving what the user is looking at and without counting them as
        new. ``live`` True: the conversation reaches its live end again,
        so live messages are appended from now on."""

    def arrived_below(self, room: str) -> None:
        """A live message came for ``room`` while its newest lines are not
        loaded (scrolled far back): it is not drawn (paging forward brings
        it), only counted on the "N new messages ↓" button."""

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

    def set_users(self, users: Sequence[str], me: str, online: bool = True,
                  roles: dict | None = None) -> None:
        """The people of the visible conversation; ``online`` False: we are
        disconnected, so show them as offline (greyed, under "OFFLINE").
        ``roles``: nick (as in ``users``) -> role for those above member
        (mark them with :data:`ROLE_MARKS`, owner named as such)."""

    # -- moderation (issue 11). Optional: the controller calls them only on a
    # view that has them (and passes set_users roles only when someone has
    # one), so a window without them shows no moderation parts.

    def update_line(self, room: str, msg_id: int, line: Line) -> None:
        """Replace, in place, the line of message ``msg_id`` in ``room`` by
        ``line`` (edited text with ``edited``, or the tombstone with
        ``removed``); nothing when that message is not shown there."""

    def set_powers(self, room: str, powers: RoomPowers) -> None:
        """Our role, the room's modes and the people's roles in ``room``
        changed (or the room was shown first): enable what we may do."""

    def set_questions(self, room: str, questions: Sequence[Question]) -> None:
        """The questions list of ``room`` (ops only; empty: hide it). Each
        waiting one has a Release button that calls
        :meth:`Controller.release_question` with ``room`` and its id."""

    def show_room_settings(self, settings: RoomSettings) -> None:
        """Open the room settings dialog: the modes with :data:`MODE_LABELS`,
        the key (a new one, or none), the topic. OK calls
        :meth:`Controller.apply_room_settings`."""

    def set_identity(self, fingerprint: str) -> None:
        """This computer's identity fingerprint (64 hex digits), for the
        settings: shown, copyable."""

    def copy_text(self, text: str) -> None:
        """Put ``text`` on the clipboard (a message menu's Copy)."""

    # -- files (issue 12). Optional, like moderation's.

    def update_card(self, card: FileCard) -> None:
        """Redraw, in place, every card of ``card.fid`` (its picture came,
        it was saved, it broke)."""

    def show_transfer(self, transfer: TransferView) -> None:
        """Show or update the progress bar of ``transfer.tid`` (with Cancel)."""

    def end_transfer(self, tid: str) -> None:
        """Remove that progress bar."""

    def ask_save_path(self, name: str, folder: str) -> str | None:
        """Ask where to save a file called ``name`` (starting in ``folder``);
        None: the user cancelled."""

    def ask_files(self) -> Sequence[str]:
        """The attach button's file chooser: the paths chosen (maybe none)."""

    def show_picture(self, title: str, png: bytes) -> None:
        """Show a picture (the original, scaled by the controller) in a window of its own."""

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
#   dropped_newest(room_id, newest_id)  paging back dropped its newest lines
#                                 (far below the view); newest_id: the newest
#                                 message still shown, so the live end is
#                                 not loaded any more
#   load_newer(room_id)           the view reached the bottom of what is
#                                 loaded while the live end is not
#   to_live(room_id)              the "N new messages ↓" button while the
#                                 live end is not loaded: show the live end
#   join_room(name, key=None)     from the rooms browser
#   browse_rooms()                the rooms button
# and for files (issue 12):
#   attach(paths)                 the attach button's choice, or files dropped on the window
#   paste_image()                 Ctrl+V in the input box with no text on the clipboard
#   card_action(fid, action)      a card's Save / Open folder, a click on its picture ("view")
#   cancel_transfer(tid)          a progress bar's Cancel
# and for moderation (issue 11):
#   person_menu(room_id, nick) -> [MenuItem]     a right-click on a person;
#   person_action(room_id, nick, action)         the entry chosen
#   message_menu(room_id, msg_id) -> [MenuItem]  a right-click on a message line;
#   message_action(room_id, msg_id, action)      the entry chosen (edit and
#                                 reply put text in the input box; copy calls
#                                 View.copy_text)
#   room_settings(room_id)        the settings button: View.show_room_settings
#   apply_room_settings(room_id, modes, topic, key=None)
#                                 the dialog's OK; ``modes`` a Modes (its
#                                 ``key`` ignored), ``key`` None: unchanged,
#                                 "": no key any more, else the new key
#   release_question(room_id, question_id)       a Release button
#   identity_fingerprint          attribute: this computer's fingerprint
