""""Host a room on this computer": the real server, run in this process.

:class:`HostedRoom` wraps :class:`server.app.ChatServer` with the settings
a desktop user wants: history in the user's data directory
(:func:`server.paths.default_db`), the room password if one was given, and
by default reachable from this computer only (127.0.0.1). With
``lan=True`` it listens on every interface so others on the network can
join.

Threads: :meth:`HostedRoom.start` runs on the caller's thread (the Tk
thread) and does not block: binding a listening socket and opening the
SQLite file return at once, and the server's own threads (``acceptor``,
``hub``, ``reader-*``) do the rest. :meth:`stop` joins those threads, so it
may take up to a few seconds when clients linger; the app calls it after
the window has gone (see :mod:`chatgui.main`). No thread here touches Tk.
"""
from __future__ import annotations

import errno
import logging

from server.app import ChatServer
from server.config import ServerConfig
from server.history import HistoryError, HistoryInUse
from server.tls import TlsSetupError

log = logging.getLogger("natter.client")


class HostingError(Exception):
    """The room could not be started; the message is for a person."""


class HostedRoom:
    def __init__(self, port: int, password: str | None = None, lan: bool = False, tls: bool = False,
                 db: str | None = None):
        self.requested_port = port
        self.password = password or None
        self.lan = lan
        self.tls = tls
        self.db = db
        self.server: ChatServer | None = None

    @property
    def port(self) -> int:
        return self.server.port if self.server else self.requested_port

    @property
    def connect_host(self) -> str:
        """Where this process's own client should connect."""
        return "127.0.0.1"

    @property
    def fingerprint(self) -> str | None:
        """The certificate's fingerprint when the room is encrypted."""
        return self.server.fingerprint if self.server is not None else None

    def matches(self, port: int, password: str | None, lan: bool, tls: bool = False) -> bool:
        """True when a running room already serves these choices."""
        return (self.server is not None and port in (self.requested_port, self.port)
                and (password or None) == self.password and lan == self.lan and tls == self.tls)

    def start(self) -> "HostedRoom":
        """Start listening; raises HostingError with a sentence to show."""
        cfg = ServerConfig(host="0.0.0.0" if self.lan else "127.0.0.1", port=self.requested_port,
                           db=self.db, password=self.password, tls=self.tls)
        try:
            self.server = ChatServer(cfg).start()
        except OSError as e:
            if e.errno == errno.EADDRINUSE:
                raise HostingError(f"Port {self.requested_port} is already in use on this computer: is "
                                   "another room running? Choose another port, or untick \"Host a room\" "
                                   "and join that one.") from None
            if e.errno == errno.EACCES:
                raise HostingError(f"This computer does not allow listening on port "
                                   f"{self.requested_port}; choose a port above 1024.") from None
            raise HostingError(f"Could not host a room: {e.strerror or e}.") from None
        except TlsSetupError as e:                # no certificate could be made or loaded
            raise HostingError(f"Could not host an encrypted room: {e}") from None
        except HistoryInUse as e:
            raise HostingError(f"Could not host a room: {e}. Stop that server first.") from None
        except HistoryError as e:
            raise HostingError(f"Could not host a room: {e}.") from None
        log.info("%s", self.server.describe())
        return self

    def describe(self) -> str:
        """One line for the chat window: where the room is and who can join."""
        if self.lan:
            text = (f"You are hosting this room on port {self.port}; others on your network can join "
                    f"with this computer's address and port {self.port}.")
            if self.fingerprint:
                text += (f" It is encrypted: tell them its certificate fingerprint, {self.fingerprint}, "
                         "so they can check the one their window shows.")
            return text
        return (f"You are hosting this room on port {self.port} for this computer only "
                "(tick \"let others on the network join\" to share it).")

    def stop(self) -> None:
        """Shut the server down (idempotent); blocks while its threads end."""
        server, self.server = self.server, None
        if server is not None:
            server.shutdown("The host closed the room.")
