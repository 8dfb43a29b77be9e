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
- The room password is never stored.

Thread: the Tk thread (or the terminal loop); the file is a few hundred
bytes, so reading and writing it does not stall the window.
"""
from __future__ import annotations

import dataclasses
import json
import logging
import os
import tempfile
from dataclasses import dataclass, field

from server import paths, protocol

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
        self.recent = [e for e in self.recent if type(e) is str and 0 < len(e) <= 300][:8]
        return self


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
    for field in dataclasses.fields(Settings):
        value = raw.get(field.name)
        default = getattr(s, field.name)
        # bool is an int in Python: insist on the exact type.
        if value is not None and type(value) is type(default):
            setattr(s, field.name, value)
    return s.clamp()


def save(settings: Settings, path: str | None = None) -> bool:
    """Write the settings atomically; False (logged) when that fails."""
    path = path or settings_path()
    data = json.dumps(dataclasses.asdict(settings), indent=2, ensure_ascii=False).encode("utf-8")
    folder = os.path.dirname(path)
    tmp = None
    try:
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".client-", suffix=".json", dir=folder)
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        return True
    except OSError as e:
        log.warning("could not save settings to %s: %s", path, e)
        if tmp is not None:
            try:
                os.unlink(tmp)
            except OSError:
                pass
        return False
