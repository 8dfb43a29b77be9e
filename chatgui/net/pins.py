"""The certificate fingerprint of each TLS server met.

Natter servers use self-signed certificates, so there is no authority to
ask whether a certificate is the right one. Instead the person compares
the fingerprint the first time the client meets ``host:port`` (aloud, with
the one the server prints at start; the client sends nothing before), the
client pins it here, and from then on refuses a different one
(:mod:`chatgui.net.client`), until the person deliberately trusts the new one
(:meth:`PinStore.replace`).

The pins live in ``known_servers.json`` in :func:`server.paths.config_dir`::

    {"version": 1,
     "servers": {"192.168.1.20:5050": {"fingerprint": "3F2A 9B1C ...",
                                       "since": "2025-01-31T14:02:11+00:00"}}}

Every call reads the file again, so the window and a terminal client see
each other's pins; a write is atomic (:func:`chatgui.jsonfile.write_json`),
so a crash never leaves half a file. A file that cannot be parsed
is moved aside to ``known_servers.json.bad`` (with a warning in the log)
and the client starts over with no pins: the next connection to each
server is a first use again, and says so. Entries that are not a valid
fingerprint are skipped the same way.

Thread: any. One lock serialises this process's reads and writes (file
I/O only, no sockets). Two processes pinning at the same instant can lose
one of the two new pins (the last write wins); the loser is simply asked
again on its next connection.
"""
from __future__ import annotations

import datetime
import json
import logging
import os
import re
import threading

from server import paths

from chatgui.jsonfile import write_json

log = logging.getLogger("natter.client")

FILENAME = "known_servers.json"
_HEX64 = re.compile(r"[0-9A-F]{64}")


def normalize_fingerprint(text: str) -> str:
    """A fingerprint as typed (any case, spaces, colons or dashes) -> the
    canonical "3F2A 9B1C ..." form (16 groups of 4 hex digits, as
    :func:`server.tls.fingerprint` writes it).

    Raises ValueError, with a sentence for a person, when it is not one.
    """
    digits = re.sub(r"[\s:\-]", "", str(text)).upper()
    if not _HEX64.fullmatch(digits):
        raise ValueError("A certificate fingerprint is 64 hexadecimal digits (0-9, A-F), "
                         "usually written as 16 groups of 4, like \"3F2A 9B1C ...\".")
    return " ".join(digits[i:i + 4] for i in range(0, 64, 4))


def server_key(host: str, port: int) -> str:
    """The key a server is pinned under: ``host:port``, ``[v6]:port``.

    The host is the name or address as the user typed it, lower-cased: a
    server reached by two names is pinned under each.
    """
    host = str(host).strip().lower()
    return f"[{host}]:{int(port)}" if ":" in host else f"{host}:{int(port)}"


class PinStore:
    """Fingerprints pinned per server, kept in a JSON file (see the module docstring)."""

    def __init__(self, path: str | None = None):
        self.path = path or os.path.join(paths.config_dir(), FILENAME)
        self._lock = threading.Lock()

    def get(self, host: str, port: int) -> str | None:
        """The pinned fingerprint of this server, or None if it was never met."""
        with self._lock:
            entry = self._load().get(server_key(host, port))
        return entry["fingerprint"] if entry else None

    def pin(self, host: str, port: int, fingerprint: str) -> None:
        """Remember this server's fingerprint (first use). Raises OSError when
        the file cannot be written; ValueError for a malformed fingerprint."""
        self._set(host, port, fingerprint)

    def replace(self, host: str, port: int, fingerprint: str) -> None:
        """Deliberately trust a new fingerprint for this server, after the
        user compared it with the one the server shows. Same effects as
        :meth:`pin`; a separate name so the call says what it means."""
        self._set(host, port, fingerprint)

    def forget(self, host: str, port: int) -> bool:
        """Drop this server's pin; True if there was one."""
        key = server_key(host, port)
        with self._lock:
            servers = self._load()
            if servers.pop(key, None) is None:
                return False
            self._save(servers)
        return True

    def servers(self) -> dict:
        """{host:port: fingerprint} for every pinned server."""
        with self._lock:
            return {k: v["fingerprint"] for k, v in self._load().items()}

    # -- file (caller holds _lock) -------------------------------------------

    def _set(self, host: str, port: int, fingerprint: str) -> None:
        fingerprint = normalize_fingerprint(fingerprint)
        key = server_key(host, port)
        since = datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")
        with self._lock:
            servers = self._load()
            servers[key] = {"fingerprint": fingerprint, "since": since}
            self._save(servers)

    def _load(self) -> dict:
        try:
            with open(self.path, "rb") as f:
                raw = f.read()
        except FileNotFoundError:
            return {}
        except OSError as e:
            log.warning("cannot read the known servers file %s (%s): no certificate is pinned "
                        "until it can be read", self.path, e)
            return {}
        try:
            doc = json.loads(raw.decode("utf-8"))
            servers = doc["servers"]
            if type(servers) is not dict:
                raise TypeError("servers is not an object")
        except (ValueError, KeyError, TypeError) as e:     # UnicodeDecodeError is a ValueError
            self._set_aside(e)
            return {}
        out = {}
        for key, entry in servers.items():
            try:
                out[key] = {"fingerprint": normalize_fingerprint(entry["fingerprint"]),
                            "since": str(entry.get("since", ""))}
            except (ValueError, KeyError, TypeError, AttributeError):
                log.warning("skipped a malformed entry for %r in %s", key, self.path)
        return out

    def _set_aside(self, why: Exception) -> None:
        bad = self.path + ".bad"
        try:
            os.replace(self.path, bad)
        except OSError as e:
            log.warning("the known servers file %s is damaged (%s) and cannot be moved aside (%s)",
                        self.path, why, e)
            return
        log.warning("the known servers file %s was damaged (%s); moved it to %s and started "
                    "over: each server's certificate is pinned again on its next use", self.path, why, bad)

    def _save(self, servers: dict) -> None:
        write_json(self.path, {"version": 1, "servers": servers}, sort_keys=True)
