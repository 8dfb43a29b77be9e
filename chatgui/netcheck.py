"""``python -m chatgui --scan [--json]`` and ``--doctor HOST[:PORT] [--json]``.

``--scan`` lists the rooms that answer discovery on this computer's
networks (:func:`chatgui.net.discovery.scan`); with ``--json``, a JSON list
of objects, each a reply's fields plus ``"host"``, the address it came
from. Exit code 0.

``--doctor`` checks why a room can or cannot be joined
(:mod:`chatgui.net.probes`, :mod:`chatgui.app.doctor`) and prints the
verdict in sentences, then the details; with ``--json``, one object
(``kind``, ``ok``, ``sentence``, ``advice``, ``details``, ``facts``).
Exit code 0 when the room can be joined, 1 when not, 2 for a bad address.

Thread: the main thread; both block for a few seconds, there is no window.
"""
from __future__ import annotations

import json
import sys

from server import protocol


def split_address(text: str, default_port: int) -> tuple[str, int]:
    """"host", "host:port", "[v6]:port" or "v6" -> (host, port). Raises
    ValueError with a sentence for a bad one. This and :func:`split_addresses`
    are the one place an address typed by a person is read (the terminal
    mode, the connect form, the network client)."""
    text = text.strip()
    host, port = text, default_port
    if text.startswith("["):
        end = text.find("]")
        if end < 0:
            raise ValueError(f"{text!r}: an IPv6 address in brackets needs its closing ']'.")
        host, rest = text[1:end], text[end + 1:]
        if rest:
            if not rest.startswith(":"):
                raise ValueError(f"{text!r}: write [address]:port.")
            port = _port(rest[1:], text)
    elif text.count(":") == 1:
        host, _, rest = text.partition(":")
        port = _port(rest, text)
    if not host:
        raise ValueError("Give the room's address, like 192.168.1.20 or 192.168.1.20:30000.")
    return host, port


def split_addresses(text: str, default_port: int) -> list[tuple[str, int]]:
    """"a,b:7000,[::1]:7001" -> [(host, port), ...]: the addresses of one
    deployment, in the order to try them, each as :func:`split_address`
    reads it (``default_port`` for an entry without one). A repeated
    address counts once. Raises ValueError with a sentence naming the bad
    entry."""
    entries = str(text).split(",")
    if len(entries) == 1:
        return [split_address(entries[0], default_port)]
    found: list[tuple[str, int]] = []
    for n, entry in enumerate(entries, 1):
        if not entry.strip():
            raise ValueError(f"Address {n} of {len(entries)} is empty: separate the addresses with "
                             "single commas, like 192.168.1.20,192.168.1.21:30000.")
        try:
            address = split_address(entry, default_port)
        except ValueError as e:
            raise ValueError(f"Address {n} of {len(entries)} is not right: {e}") from None
        if address not in found:
            found.append(address)
    return found


def join_addresses(addresses) -> str:
    """[(host, port), ...] -> "host:port, [v6]:port" (for people, and read
    back by :func:`split_addresses`)."""
    return ", ".join(f"[{h}]:{p}" if ":" in h else f"{h}:{p}" for h, p in addresses)


def _port(text: str, whole: str) -> int:
    if not text.isdigit() or not 0 < int(text) < 65536:
        raise ValueError(f"{whole!r}: the port must be a number from 1 to 65535.")
    return int(text)


def scan_command(as_json: bool, out=None) -> int:
    from chatgui.net import discovery
    out = out or _stdout()
    result = discovery.scan()
    if as_json:
        json.dump([r.as_json() for r in result.rooms], out, ensure_ascii=False)
        out.write("\n")
        return 0
    if not result.rooms:
        out.write("No rooms answered on this computer's networks. If you know a room's address, join it by "
                  "address; `--doctor ADDRESS` says why it is not found.\n")
    else:
        out.write(f"Rooms on your network ({len(result.rooms)}):\n")
        for r in result.rooms:
            locks = [w for w, on in (("encrypted", r.room.tls), ("password", r.room.password)) if on]
            people = f"{r.room.users} {'person' if r.room.users == 1 else 'people'}"
            out.write(f"  {_printable(r.room.name)}  {r.host}:{r.room.port}  {people}"
                      f"{'  ' + ', '.join(locks) if locks else ''}\n")
    for target, number, message in result.errors:
        out.write(f"  (could not ask {target}: {message})\n")
    return 0


def doctor_command(target: str, as_json: bool, *, port: int | None, nick: str | None, password: str | None,
                   tls: bool, out=None) -> int:
    from chatgui.net import probes
    out = out or _stdout()
    try:
        host, port = split_address(target, port or protocol.DEFAULT_PORT)
    except ValueError as e:
        print(f"natter: {e}", file=sys.stderr)
        return 2
    facts = probes.gather(host, port, tls=tls, nick=nick, password=password)
    verdict = probes.classify(facts)
    if as_json:
        json.dump(dict(verdict.as_json(), facts=facts.as_json()), out, ensure_ascii=False)
        out.write("\n")
    else:
        out.write(verdict.sentence + "\n")
        if verdict.advice:
            out.write(verdict.advice + "\n")
        out.write("Details:\n" + "".join(f"  {line}\n" for line in verdict.details))
    return 0 if verdict.ok else 1


def _stdout():
    """The windowed build on Windows has no standard output unless it was
    redirected (``Natter.exe --scan --json > rooms.json``): then nowhere."""
    import os
    return sys.stdout if sys.stdout is not None else open(os.devnull, "w", encoding="utf-8")


def _printable(text: str) -> str:
    """A room name from the network, safe for a terminal."""
    return "".join(c if c.isprintable() else "?" for c in text)
