"""Where Natter keeps its files on each platform (no third-party library).

Linux and BSD follow the XDG base directories; macOS uses
``~/Library/Application Support``; Windows uses ``%LOCALAPPDATA%`` for data
and ``%APPDATA%`` for settings. ``NATTER_HOME``, when set, overrides all of
them (tests and portable installs use it).
"""
from __future__ import annotations

import os
import sys

APP = "natter"


def _home() -> str:
    return os.path.expanduser("~")


def data_dir() -> str:
    """Folder for history and certificates."""
    if os.environ.get("NATTER_HOME"):
        return os.path.join(os.environ["NATTER_HOME"], "data")
    if sys.platform == "win32":
        return os.path.join(os.environ.get("LOCALAPPDATA") or os.path.join(_home(), "AppData", "Local"), "Natter")
    if sys.platform == "darwin":
        return os.path.join(_home(), "Library", "Application Support", "Natter")
    return os.path.join(os.environ.get("XDG_DATA_HOME") or os.path.join(_home(), ".local", "share"), APP)


def config_dir() -> str:
    """Folder for settings the user chose."""
    if os.environ.get("NATTER_HOME"):
        return os.path.join(os.environ["NATTER_HOME"], "config")
    if sys.platform == "win32":
        return os.path.join(os.environ.get("APPDATA") or os.path.join(_home(), "AppData", "Roaming"), "Natter")
    if sys.platform == "darwin":
        return os.path.join(_home(), "Library", "Application Support", "Natter")
    return os.path.join(os.environ.get("XDG_CONFIG_HOME") or os.path.join(_home(), ".config"), APP)


def default_db() -> str:
    return os.path.join(data_dir(), "history.db")
