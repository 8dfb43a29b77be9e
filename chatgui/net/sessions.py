"""The resume token of each server and nick, so a restarted client goes on
with the same session: the rooms it was in, its read markers and its
private history stay with that session on the server.

The tokens live in ``sessions.json`` in :func:`server.paths.config_dir`,
readable by this user only (mode 0600: a token lets whoever holds it speak
as that session)::

    {"version": 1,
     "servers": {"192.168.1.20:5050": {"alice": {"nick": "Alice", "session": "9f0c..."}}}}

The server key is :func:`chatgui.net.pins.server_key` (``host:port``, the
host as typed, lower-cased); the nick key is :func:`server.protocol.nick_key`.
Every call reads the file again (a window and a terminal client share it);
writes are atomic (:func:`chatgui.jsonfile.write_json`). A file that cannot
be parsed counts as empty (logged) and is replaced at the next write: the
cost is one new session, never a crash.

Thread: any (the network client calls it on its reader thread, never the
Tk thread). One lock serialises this process's reads and writes.
"""
from __future__ import annotations

import json
import logging
import os
import threading

from server import paths, protocol

from chatgui.jsonfile import write_json
from chatgui.net.pins import server_key

log = logging.getLogger("natter.client")

FILENAME = "sessions.json"
MAX_TOKEN = 128              # as the protocol's hello accepts


class SessionStore:
    """Resume tokens per server and nick (see the module docstring)."""

    def __init__(self, path: str | None = None):
        self.path = path or os.path.join(paths.config_dir(), FILENAME)
        self._lock = threading.Lock()

    def get(self, host: str, port: int, nick: str) -> str | None:
        """The token last saved for this nick on this server, or None."""
        with self._lock:
            entry = self._load().get(server_key(host, port), {}).get(protocol.nick_key(nick))
        return entry["session"] if entry else None

    def put(self, host: str, port: int, nick: str, token: str, instead_of: str | None = None) -> None:
        """Remember ``token`` for this nick on this server; ``instead_of``, a
        nick whose entry goes in the same write (a rename: the file never
        holds both, nor neither). Raises OSError when the file cannot be
        written."""
        if type(token) is not str or not 0 < len(token) <= MAX_TOKEN:
            raise ValueError("a session token is a string of 1 to 128 characters")
        with self._lock:
            servers = self._load()
            nicks = servers.setdefault(server_key(host, port), {})
            gone = None
            if instead_of is not None and protocol.nick_key(instead_of) != protocol.nick_key(nick):
                gone = nicks.pop(protocol.nick_key(instead_of), None)
            if gone is None and nicks.get(protocol.nick_key(nick)) == {"nick": nick, "session": token}:
                return
            nicks[protocol.nick_key(nick)] = {"nick": nick, "session": token}
            write_json(self.path, {"version": 1, "servers": servers}, sort_keys=True)

    def forget(self, host: str, port: int, nick: str) -> bool:
        """Drop this nick's token on this server; True if there was one."""
        with self._lock:
            servers = self._load()
            nicks = servers.get(server_key(host, port), {})
            if nicks.pop(protocol.nick_key(nick), None) is None:
                return False
            if not nicks:
                servers.pop(server_key(host, port), None)
            write_json(self.path, {"version": 1, "servers": servers}, sort_keys=True)
        return True

    def _load(self) -> dict:
        """{server key: {nick key: {"nick", "session"}}}, valid entries only (caller holds _lock)."""
        try:
            with open(self.path, "rb") as f:
                doc = json.loads(f.read(1024 * 1024).decode("utf-8"))
            servers = doc["servers"]
            if type(servers) is not dict:
                raise TypeError("servers is not an object")
        except FileNotFoundError:
            return {}
        except (OSError, ValueError, KeyError, TypeError) as e:
            log.warning("the sessions file %s cannot be read (%s): starting new sessions", self.path, e)
            return {}
        out: dict = {}
        for server, nicks in servers.items():
            if type(server) is not str or type(nicks) is not dict:
                continue
            for key, entry in nicks.items():
                if type(entry) is dict and type(entry.get("nick")) is str and type(entry.get("session")) is str \
                        and 0 < len(entry["session"]) <= MAX_TOKEN:
                    out.setdefault(server, {})[key] = {"nick": entry["nick"], "session": entry["session"]}
        return out
