"""The connect form's "Rooms on your network", recent rooms and the
doctor's button, as decisions without Tk.

- :class:`LanList` is the list: it takes what the ``lan-scan`` thread
  reports (:class:`chatgui.net.discovery.ScanLoop`: a room as it answers,
  then each whole scan, which replaces the list, so a room that stopped is
  gone after the next scan), gives the rows to show (names made safe:
  they come from the network) and the line under the list, and decides
  what a double-click does (:meth:`LanList.join`): fill the form with the
  room's address, port and encryption and join, or ask for the password
  first. A reply is a hint, not trust: an encrypted room's certificate is
  checked on connect like any other (the fingerprint in the reply is not
  used to trust it).
- :func:`remember_recent` keeps the last rooms joined by address, for the
  form's address field.
- :func:`start_doctor` runs the connection doctor on a ``doctor`` thread
  and posts its :class:`~chatgui.app.doctor.Diagnosis`;
  :func:`offer_doctor` is the controller's one call after a failed join.
- :func:`hosted_name` names a hosted room after its host ("alice's room").

Thread: the Tk thread, except the ``doctor`` thread of :func:`start_doctor`,
which touches nothing but its ``post``.
"""
from __future__ import annotations

import logging
import threading
from dataclasses import dataclass, replace

from chatgui.app import formatting
from chatgui.app.doctor import CONNECTION_KINDS, Diagnosis
from chatgui.app.view import ConnectValues

log = logging.getLogger("natter.client")

MAX_RECENT = 8
LOCK = "\U0001F512"            # shown when the Tk can draw it (8.7+), else words only


@dataclass(frozen=True)
class Row:
    id: str
    name: str          # safe for Tk
    host: str          # where it answered from, "this computer" for loopback
    people: str
    locks: str         # "🔒 TLS · 🔒 password", or ""


class LanList:
    def __init__(self, astral_ok: bool = False):
        self.astral_ok = astral_ok
        self.rooms: dict = {}        # id -> chatgui.net.discovery.Found
        self.scans = 0               # whole scans reported
        self.problem = ""            # why the last scan could not ask anyone

    def update(self, event) -> bool:
        """An event of the ``lan-scan`` thread; True when the rows changed."""
        what, payload = event
        before = self.rows()
        if what == "found":
            self.rooms[payload.key] = payload
        elif what == "done":
            self.scans += 1
            self.rooms = {f.key: f for f in payload.rooms}
            self.problem = "" if payload.sent or not payload.errors else payload.errors[0][2]
        return self.rows() != before

    def rows(self) -> list[Row]:
        out = []
        for f in sorted(self.rooms.values(), key=lambda f: (f.room.name.casefold(), f.host, f.room.port)):
            r = f.room
            locks = [w for w, on in (("TLS", r.tls), ("password", r.password)) if on]
            sign = LOCK + " " if self.astral_ok else ""
            host = "this computer" if f.host.startswith("127.") else f.host
            out.append(Row(f.key, formatting.tk_safe(r.name, self.astral_ok), host, str(r.users),
                           " · ".join(sign + w for w in locks)))
        return out

    def status(self) -> str:
        if self.rooms:
            n = len(self.rooms)
            return f"{n} room{'s' if n != 1 else ''} on your network: double-click one to join."
        if not self.scans:
            return "Looking for rooms on your network…"
        if self.problem:
            return f"Cannot look for rooms: {self.problem}. Join by address instead."
        return ("No rooms found on your network yet. If you know the address, connect by address; "
                "\"Why can't I connect?\" checks it.")

    def join(self, room_id: str, form: ConnectValues) -> tuple[ConnectValues | None, str | None]:
        """A double-click on a row: (the values to join with, None), or
        (the values, a question) when the room needs a password not typed
        yet, or (None, None) when the row is gone."""
        f = self.rooms.get(room_id)
        if f is None:
            return None, None
        values = replace(form, host=f.host, port=str(f.room.port), tls=f.room.tls, host_room=False)
        if f.room.password and not form.password:
            return values, (f"{formatting.tk_safe(f.room.name, self.astral_ok)} needs a password: type it, "
                            "then press Join.")
        return values, None


def remember_recent(settings, host: str, port: int) -> None:
    """Put ``host:port`` first in the settings' recent rooms (saved with them);
    a list of addresses is kept as one entry, each with its port."""
    from chatgui.netcheck import join_addresses, split_addresses
    entry = join_addresses(split_addresses(host, port)) if "," in host else (
        f"[{host}]:{port}" if ":" in host else f"{host}:{port}")
    recent = [e for e in getattr(settings, "recent", []) if e != entry]
    settings.recent = [entry] + recent[:MAX_RECENT - 1]


def hosted_name(nick: str) -> str:
    return f"{nick}'s room"


def start_doctor(post, host: str, port: int, *, tls: bool = False, nick: str | None = None,
                 password: str | None = None, diagnose=None) -> threading.Thread:
    """Run the connection doctor on a ``doctor`` thread; ``post`` gets
    ``("doctor", Diagnosis)`` (a failure of the doctor itself is a
    Diagnosis of kind ``doctor_failed``)."""
    if diagnose is None:
        from chatgui.net.probes import diagnose

    def run():
        try:
            verdict = diagnose(host, port, tls=tls, nick=nick or None, password=password or None)
        except Exception as e:          # a bug: the form must still hear of it
            log.exception("the connection doctor failed")
            verdict = Diagnosis("doctor_failed", False, f"The check itself failed: {e}.", "", ())
        for line in verdict.details:
            log.info("doctor %s:%s: %s", host, port, line)
        post(("doctor", verdict))
    thread = threading.Thread(target=run, name="doctor", daemon=True)
    thread.start()
    return thread


def offer_doctor(view, params: dict | None, kind: str) -> None:
    """After a join failed before any welcome: let the view run the doctor
    on that address when the failure is about the connection."""
    run = getattr(view, "run_doctor", None)
    if run is None or params is None or kind not in CONNECTION_KINDS:
        return
    run(params["host"], params["port"], params.get("tls", False), params.get("nick"), params.get("password"))
