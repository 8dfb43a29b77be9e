"""What the client remembers between runs: one JSON file in the user's
config directory (:func:`server.paths.config_dir`).

The contract:

- :func:`load` never raises. A missing, unreadable, corrupt or half-written
  file gives the defaults; a field of the wrong type or out of range falls
  back to its default alone, so one bad value does not cost the others.
  Unknown keys are ignored (a newer version may have written them).
- :func:`save` writes a temporary file and renames it over the old one, so
  a crash mid-write leaves the previous settings intact. It returns False
  (and logs) instead of raising when the folder is not writable.
- The room password is never stored, nor are room keys.
- ``rooms``: per server (``host:port``, :func:`chatgui.net.pins.server_key`),
  the rooms we are in and the private conversations, ``{"rooms": [NAME,
  ...], "private": [NICK, ...]}``, so a restart lists and re-joins them;
  names that break the protocol's rules are dropped on load.

Thread: the Tk thread (or the terminal loop); the file is a few hundred
bytes, so reading and writing it does not stall the window.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
from dataclasses import dataclass, field

from server import paths, protocol

from chatgui.jsonfile import write_json

log = logging.getLogger("natter.client")

FILE_NAME = "client.json"
THEMES = ("light", "dark")
MIN_FONT, MAX_FONT = 8, 28


@dataclass
class Settings:
    host: str = "127.0.0.1"
    port: int = protocol.DEFAULT_PORT
    nick: str = ""
    host_room: bool = False     # "Host a room on this computer" was ticked
    host_lan: bool = False      # ...and let other computers join it
    tls: bool = False           # encrypt (the room runs with --tls)
    theme: str = "light"
    font_size: int = 11
    geometry: str = ""          # the main window's last size, e.g. "900x600"
    recent: list = field(default_factory=list)     # rooms joined by address, "host:port", newest first
    rooms: dict = field(default_factory=dict)   # server -> {"rooms": [...], "private": [...]}
    # Files (issue 12): a picture up to this many bytes is fetched when its
    # thumbnail is clicked (or, without a thumbnail, to make one) without asking.
    auto_image_bytes: int = 5 * 1024 * 1024
    downloads: str = ""         # the folder Save starts in ("": the Downloads folder)

    def clamp(self) -> "Settings":
        """Put every field back in range (defaults for what cannot be)."""
        d = Settings()
        if not (0 < self.port < 65536):
            self.port = d.port
        if self.theme not in THEMES:
            self.theme = d.theme
        self.font_size = min(MAX_FONT, max(MIN_FONT, self.font_size))
        if len(self.nick) > protocol.MAX_NICK:
            self.nick = d.nick
        if len(self.host) > 255:
            self.host = d.host
        if len(self.geometry) > 40:
            self.geometry = d.geometry
        if not 0 <= self.auto_image_bytes <= 1 << 40:
            self.auto_image_bytes = d.auto_image_bytes
        if len(self.downloads) > 4096:
            self.downloads = d.downloads
        self.recent = [e for e in self.recent if type(e) is str and 0 < len(e) <= 300][:8]
        self.rooms = _clean_rooms(self.rooms)
        return self


MAX_SERVERS = 100       # servers whose rooms are remembered
MAX_REMEMBERED = 200    # rooms, and private conversations, per server


def _clean_rooms(value) -> dict:
    """Settings.rooms with only well-formed entries (see the module docstring)."""
    out: dict = {}
    if type(value) is not dict:
        return out
    for server, entry in list(value.items())[-MAX_SERVERS:]:
        if type(server) is not str or len(server) > 300 or type(entry) is not dict:
            continue
        clean = {}
        for what, check in (("rooms", protocol.check_room), ("private", protocol.check_nick)):
            names = entry.get(what, [])
            kept = []
            for name in names if type(names) is list else []:
                try:
                    kept.append(check(name))
                except protocol.ProtocolError:
                    continue
            clean[what] = kept[:MAX_REMEMBERED]
        out[server] = clean
    return out


def settings_path() -> str:
    return os.path.join(paths.config_dir(), FILE_NAME)


def load(path: str | None = None) -> Settings:
    """The saved settings, or the defaults for whatever cannot be read."""
    path = path or settings_path()
    try:
        with open(path, "rb") as f:
            raw = json.loads(f.read(64 * 1024).decode("utf-8"))
    except FileNotFoundError:
        return Settings()
    except (OSError, ValueError) as e:
        log.warning("settings %s are unreadable (%s); using the defaults", path, e)
        return Settings()
    s = Settings()
    if not isinstance(raw, dict):
        log.warning("settings %s hold no object; using the defaults", path)
        return s
    for f in dataclasses.fields(Settings):
        value = raw.get(f.name)
        default = getattr(s, f.name)
        # bool is an int in Python: insist on the exact type.
        if value is not None and type(value) is type(default):
            setattr(s, f.name, value)
    return s.clamp()


def save(settings: Settings, path: str | None = None) -> bool:
    """Write the settings atomically; False (logged) when that fails."""
    path = path or settings_path()
    try:
        write_json(path, dataclasses.asdict(settings), indent=2)
        return True
    except OSError as e:
        log.warning("could not save settings to %s: %s", path, e)
        return False
