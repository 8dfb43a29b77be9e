""""Host a room on this computer": the real server, run in this process.

:class:`HostedRoom` wraps :class:`server.app.ChatServer` with the settings
a desktop user wants: the room password if one was given, by default
reachable from this computer only (127.0.0.1), with ``lan=True`` on every
interface so others on the network can join, and a history of its own:
each port is its own room, with its own file
(:func:`room_history_path`: ``<data dir>/rooms/room-<port>.db``), so a new
room never shows its joiners what was said in another one.

Threads: :meth:`HostedRoom.start` can block (it makes a TLS certificate on
first use, which may run ``openssl``) and :meth:`HostedRoom.stop` joins the
server's threads (seconds when clients linger), so the window never calls
them on the Tk thread: :func:`start_room` and :func:`stop_room` run them on
a short-lived ``host-room-start`` / ``host-room-stop`` thread and ``post``
the outcome (:class:`RoomStarted`, :class:`RoomFailed`,
:class:`RoomStopped`), which the controller puts on its event queue and
handles on the Tk thread. Nothing here touches Tk.
"""
from __future__ import annotations

import errno
import logging
import os
import threading
from dataclasses import dataclass

from server import paths
from server.app import ChatServer
from server.config import ServerConfig
from server.store import HistoryError, HistoryInUse
from server.tls import TlsSetupError

from chatgui.app.view import HOST_LABEL, LAN_LABEL, TLS_LABEL
from chatgui.net import discovery

log = logging.getLogger("natter.client")

CONNECT_HOST = "127.0.0.1"      # where this process's own client joins its room


class HostingError(Exception):
    """The room could not be started; the message is for a person."""


def room_history_path(port: int) -> str:
    """The history file of the room hosted on ``port``."""
    return os.path.join(paths.data_dir(), "rooms", f"room-{port}.db")


def shown_path(path: str) -> str:
    """A path as a person reads it: the home folder as ``~``."""
    home = os.path.expanduser("~")
    if home not in ("", "/", "~") and (path == home or path.startswith(home + os.sep)):
        return "~" + path[len(home):]
    return path


class HostedRoom:
    def __init__(self, port: int, password: str | None = None, lan: bool = False, tls: bool = False,
                 db: str | None = None, name: str | None = None, admin_fingerprint: str | None = None):
        self.requested_port = port
        self.admin_fingerprint = admin_fingerprint   # the hosting client's identity: an admin of its room
        self.name = name                # in discovery replies; None: the computer's name
        self.password = password or None
        self.lan = lan
        self.tls = tls
        self.db = db or room_history_path(port)
        self.server: ChatServer | None = None

    @property
    def port(self) -> int:
        return self.server.port if self.server else self.requested_port

    @property
    def connect_host(self) -> str:
        """Where this process's own client should connect."""
        return CONNECT_HOST

    @property
    def fingerprint(self) -> str | None:
        """The certificate's fingerprint when the room is encrypted."""
        return self.server.fingerprint if self.server is not None else None

    def matches(self, port: int, password: str | None, lan: bool, tls: bool = False) -> bool:
        """True when a running room already serves these choices."""
        return (self.server is not None and port in (self.requested_port, self.port)
                and (password or None) == self.password and lan == self.lan and tls == self.tls)

    def start(self) -> "HostedRoom":
        """Start listening; raises HostingError with a sentence to show.
        May block (a first TLS certificate): not on the Tk thread."""
        cfg = ServerConfig(host="0.0.0.0" if self.lan else "127.0.0.1", port=self.requested_port,
                           db=self.db, password=self.password, tls=self.tls, name=self.name,
                           discovery_port=discovery.discovery_port(),
                           admin_identities=(self.admin_fingerprint,) if self.admin_fingerprint else ())
        try:
            self.server = ChatServer(cfg).start()
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                raise HostingError(f"Port {self.requested_port} is already in use on this computer: is "
                                   "another room running? Choose another port, or untick "
                                   f"\"{HOST_LABEL}\" and join that one.") from None
            if e.errno == errno.EACCES:
                raise HostingError(f"This computer does not allow listening on port "
                                   f"{self.requested_port}; choose a port above 1024.") from None
            raise HostingError(f"Could not host a room: {e.strerror or e}.") from None
        except TlsSetupError as e:                # no certificate could be made or loaded
            raise HostingError(f"Could not host an encrypted room: {e}. Untick \"{TLS_LABEL}\" to "
                               "host it unencrypted.") from None
        except HistoryInUse as e:
            raise HostingError(f"Could not host a room: {e}. Stop that server first.") from None
        except HistoryError as e:
            raise HostingError(f"Could not host a room: {e}.") from None
        log.info("%s", self.server.describe())
        return self

    def describe(self) -> str:
        """One line for the chat window: where the room is and who can join."""
        if self.lan:
            text = (f"You are hosting this room on port {self.port}; others on your network find it "
                    f"under \"Rooms on your network\"{f' as “{self.name}”' if self.name else ''}, or join "
                    f"with this computer's address and port {self.port}.")
            if self.fingerprint:
                text += (f" It is encrypted: tell them its certificate fingerprint, {self.fingerprint}, "
                         "so they can check the one their window shows.")
            return text
        return (f"You are hosting this room on port {self.port} for this computer only. To let others "
                f"on your network join, close Natter, start it again and, on its first screen, tick "
                f"\"{LAN_LABEL}\" under \"{HOST_LABEL}\".")

    def stop(self) -> None:
        """Shut the server down (idempotent); blocks while its threads end."""
        server, self.server = self.server, None
        if server is not None:
            server.shutdown("The host closed the room.")


# --------------------------------------------------------------------------
# Off the Tk thread


@dataclass(frozen=True)
class RoomStarted:
    room: HostedRoom


@dataclass(frozen=True)
class RoomFailed:
    room: HostedRoom
    message: str            # a sentence for the form


@dataclass(frozen=True)
class RoomStopped:
    room: HostedRoom


def start_room(room, post, replacing=None, after=()) -> threading.Thread:
    """On a ``host-room-start`` thread: wait for the threads ``after`` (rooms
    still stopping), stop ``replacing`` (the room these choices replace,
    which may hold the same port), then start ``room``; ``post`` gets
    :class:`RoomStarted` or :class:`RoomFailed`."""
    def run():
        for thread in after:
            thread.join()
        if replacing is not None:
            _stop_quietly(replacing)
        try:
            room.start()
        except HostingError as e:
            post(RoomFailed(room, str(e)))
        except Exception as e:          # a bug, but the form must hear of it
            log.exception("hosting a room failed")
            post(RoomFailed(room, f"Could not host a room: {e}."))
        else:
            post(RoomStarted(room))
    thread = threading.Thread(target=run, name="host-room-start", daemon=True)
    thread.start()
    return thread


def stop_room(room, post=None) -> threading.Thread:
    """Stop ``room`` on a ``host-room-stop`` thread; then ``post`` gets
    :class:`RoomStopped` (when given)."""
    def run():
        _stop_quietly(room)
        if post is not None:
            post(RoomStopped(room))
    thread = threading.Thread(target=run, name="host-room-stop", daemon=True)
    thread.start()
    return thread


def _stop_quietly(room) -> None:
    try:
        room.stop()
    except Exception:
        log.exception("stopping the hosted room failed")
