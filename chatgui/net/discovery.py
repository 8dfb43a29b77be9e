"""Find the rooms on this computer's networks: the discovery scanner.

:func:`scan` sends a query (:mod:`server.discovery.codec`) to the
discovery port on every IPv4 interface: the limited broadcast
255.255.255.255 and the interface's directed broadcast (192.168.1.255),
from a socket bound to the interface's address (so the limited broadcast
leaves through that interface, on Linux and Windows), plus 127.0.0.1 and
the loopback broadcast 127.255.255.255 for the rooms of this computer.
Three tries over about a second; replies are deduplicated by the room's
``id`` (a room that also answered over loopback is kept as this
computer's, 127.0.0.1), and the address a reply came from is the address
to connect to. A reply is a hint, not trust: a room's certificate is
checked on connect as always (:mod:`chatgui.net.pins`).

:func:`ipv4_interfaces` lists the interfaces with the standard library
only. Linux: ``socket.if_nameindex`` and the ``SIOCGIFFLAGS``,
``SIOCGIFADDR``, ``SIOCGIFNETMASK`` and ``SIOCGIFBRDADDR`` ioctls (the
primary address of each interface), else ``ip -j addr`` parsed. macOS:
the same ioctls with the BSD numbers (untested). Windows: the addresses of
this computer's name (``getaddrinfo``), without netmasks, so only the
limited broadcast is sent from each (untested).

Environment: ``NATTER_DISCOVERY_PORT`` changes the port scanned (for
rooms started with ``--discovery-port``); ``NATTER_DISCOVERY_SCOPE=local``
scans this computer only (the test suite sets it, so its scans stay on
loopback).

Threads: :func:`scan` blocks for about a second and runs on the caller's
thread (never the Tk thread); :class:`ScanLoop` runs it again and again on
its own ``lan-scan`` thread and hands results to a ``post`` callable.
"""
from __future__ import annotations

import errno
import ipaddress
import json
import logging
import os
import secrets
import select
import socket
import struct
import subprocess
import sys
import threading
import time
from dataclasses import asdict, dataclass, field

from server.discovery import codec

log = logging.getLogger("natter.client")

LIMITED_BROADCAST = "255.255.255.255"
LOOPBACK_BROADCAST = "127.255.255.255"


def discovery_port() -> int:
    """The UDP port scanned: ``NATTER_DISCOVERY_PORT`` or 30000."""
    try:
        port = int(os.environ.get("NATTER_DISCOVERY_PORT", ""))
    except ValueError:
        return codec.DEFAULT_PORT
    return port if 0 < port < 65536 else codec.DEFAULT_PORT


# --------------------------------------------------------------------------
# Interfaces


@dataclass(frozen=True)
class Interface:
    name: str
    address: str
    netmask: str | None = None
    broadcast: str | None = None
    loopback: bool = False

    @property
    def network(self) -> ipaddress.IPv4Network | None:
        if self.netmask is None:
            return None
        try:
            return ipaddress.IPv4Network(f"{self.address}/{self.netmask}", strict=False)
        except ValueError:
            return None


LOOPBACK = Interface("lo", "127.0.0.1", "255.0.0.0", LOOPBACK_BROADCAST, loopback=True)

# ioctl request numbers: (flags, address, netmask, broadcast)
_LINUX_IOCTLS = (0x8913, 0x8915, 0x891B, 0x8919)
_BSD_IOCTLS = (0xC0206911, 0xC0206921, 0xC0206925, 0xC0206923)
_IFF_UP, _IFF_BROADCAST, _IFF_LOOPBACK = 0x1, 0x2, 0x8


def ipv4_interfaces() -> list[Interface]:
    """This computer's IPv4 interfaces that are up (see the module docstring)."""
    if sys.platform.startswith("linux") or sys.platform == "darwin":
        try:
            found = _by_ioctl(_LINUX_IOCTLS if sys.platform.startswith("linux") else _BSD_IOCTLS)
            if found:
                return found
        except (OSError, ImportError) as e:
            log.debug("interfaces by ioctl: %s", e)
        if sys.platform.startswith("linux"):
            try:
                return _by_ip_command()
            except (OSError, ValueError, subprocess.SubprocessError) as e:
                log.debug("interfaces by ip -j addr: %s", e)
    return _by_host_name()


def default_interfaces() -> list[Interface]:
    """What a scan uses: every interface, or loopback only when
    ``NATTER_DISCOVERY_SCOPE=local``."""
    if os.environ.get("NATTER_DISCOVERY_SCOPE", "").strip().lower() == "local":
        return [LOOPBACK]
    return ipv4_interfaces()


def _by_ioctl(requests) -> list[Interface]:
    import fcntl
    flags_req, addr_req, mask_req, brd_req = requests
    out = []
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        for _index, name in socket.if_nameindex():
            request = struct.pack("16s24x", name.encode()[:15])

            def ask(number):
                try:
                    return fcntl.ioctl(s.fileno(), number, request)
                except OSError:
                    return None
            raw = ask(flags_req)
            if raw is None:
                continue
            flags = struct.unpack_from("H", raw, 16)[0]
            addr = ask(addr_req)
            if not flags & _IFF_UP or addr is None:
                continue                # down, or no IPv4 address

            def ip(raw):
                return socket.inet_ntoa(raw[20:24]) if raw is not None else None
            mask = ip(ask(mask_req))
            brd = ip(ask(brd_req)) if flags & _IFF_BROADCAST else None
            out.append(Interface(name, ip(addr), mask, brd if brd != "0.0.0.0" else None,
                                 bool(flags & _IFF_LOOPBACK)))
    return out


def _by_ip_command() -> list[Interface]:
    text = subprocess.run(["ip", "-j", "-4", "addr", "show", "up"], capture_output=True, text=True,
                          timeout=5, check=True).stdout
    out = []
    for link in json.loads(text):
        loopback = "LOOPBACK" in link.get("flags", [])
        for a in link.get("addr_info", []):
            if a.get("family") != "inet":
                continue
            net = ipaddress.IPv4Network(f"{a['local']}/{a['prefixlen']}", strict=False)
            out.append(Interface(link["ifname"], a["local"], str(net.netmask), a.get("broadcast"), loopback))
    return out


def _by_host_name() -> list[Interface]:
    addresses = set()
    try:
        for info in socket.getaddrinfo(socket.gethostname(), None, socket.AF_INET, socket.SOCK_DGRAM):
            addresses.add(info[4][0])
    except OSError:
        pass
    out = [LOOPBACK]
    for a in sorted(addresses):
        if not a.startswith("127."):
            out.append(Interface(a, a))
    return out


# --------------------------------------------------------------------------
# Scanning


@dataclass(frozen=True)
class Found:
    """One room that answered: its reply's fields and the address it came from."""
    host: str
    room: codec.RoomInfo
    nonce: str = ""

    @property
    def key(self) -> str:
        return self.room.id

    def as_json(self) -> dict:
        return {"t": "room", "nonce": self.nonce, **asdict(self.room), "host": self.host}


@dataclass
class ScanResult:
    rooms: list[Found] = field(default_factory=list)
    sent: list[str] = field(default_factory=list)        # "address -> target" that went out
    errors: list[tuple] = field(default_factory=list)    # (target, errno or None, message)
    interfaces: list[Interface] = field(default_factory=list)


def _targets(interfaces: list[Interface]) -> list[tuple[str, list[str]]]:
    """(address to bind, [destinations]) per interface."""
    plan = []
    for itf in interfaces:
        if itf.loopback:
            plan.append(("127.0.0.1", ["127.0.0.1", LOOPBACK_BROADCAST]))
        else:
            dests = [LIMITED_BROADCAST] + ([itf.broadcast] if itf.broadcast else [])
            plan.append((itf.address, dests))
    if not plan:       # nothing listed: let the system pick an interface
        plan.append(("0.0.0.0", [LIMITED_BROADCAST, "127.0.0.1"]))
    return plan


def scan(port: int | None = None, *, timeout: float = 1.2, tries: int = 3, interfaces=None,
         on_found=None, stop=None) -> ScanResult:
    """Ask every interface which rooms are there; returns after ``timeout``
    seconds (or as soon as ``stop()`` is true). ``on_found(Found)`` is
    called, on this thread, for each room the first time it answers."""
    port = port or discovery_port()
    itfs = default_interfaces() if interfaces is None else list(interfaces)
    result = ScanResult(interfaces=itfs)
    nonce = secrets.token_hex(4)
    query = codec.encode_query(nonce)
    plan = []
    for bind_to, dests in _targets(itfs):
        sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
            sock.bind((bind_to, 0))
            sock.setblocking(False)
        except OSError as e:
            sock.close()
            result.errors.append((bind_to, e.errno, e.strerror or str(e)))
            continue
        plan.append((sock, bind_to, dests))
    found: dict[str, Found] = {}
    start = time.monotonic()
    sends = [start + timeout * i / (tries + 0.5) for i in range(tries)]
    deadline = start + timeout
    try:
        while True:
            now = time.monotonic()
            while sends and sends[0] <= now:
                sends.pop(0)
                first = len(sends) == tries - 1
                for sock, bind_to, dests in plan:
                    for dest in dests:
                        try:
                            sock.sendto(query, (dest, port))
                            if first:
                                result.sent.append(f"{bind_to} -> {dest}")
                        except OSError as e:
                            if first:
                                result.errors.append((f"{bind_to} -> {dest}", e.errno, e.strerror or str(e)))
            if now >= deadline or (stop is not None and stop()):
                break
            wait = min([deadline] + sends[:1]) - now
            ready, _, _ = select.select([p[0] for p in plan], [], [], max(0.0, min(wait, 0.1)))
            for sock in ready:
                _read_replies(sock, nonce, found, on_found)
    finally:
        for sock, _, _ in plan:
            sock.close()
    result.rooms = sorted(found.values(), key=lambda f: (f.room.name.casefold(), f.host, f.room.port))
    return result


def _read_replies(sock, nonce: str, found: dict, on_found) -> None:
    while True:
        try:
            data, source = sock.recvfrom(codec.MAX_DATAGRAM + 1)
        except (BlockingIOError, InterruptedError):
            return
        except OSError:         # an ICMP error for one of our queries (Windows reports them here)
            continue
        reply = codec.parse_reply(data)
        if reply is None or reply.nonce != nonce:
            continue
        item = Found(source[0], reply.room, nonce)
        old = found.get(item.key)
        if old is None or (source[0].startswith("127.") and not old.host.startswith("127.")):
            found[item.key] = item
            if old is None and on_found is not None:
                on_found(item)


def unicast_query(host: str, port: int | None = None, *, timeout: float = 1.0) -> tuple[str, list, int | None]:
    """Ask one address directly (the doctor's probe): ("answered", [Found,
    ...], None), ("refused", [], errno) when it said nothing listens there
    (an ICMP port unreachable), ("no_answer", [], None), or ("error", [],
    errno) when it could not be sent."""
    port = port or discovery_port()
    nonce = secrets.token_hex(4)
    rooms: dict[str, Found] = {}
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as sock:
        try:
            sock.connect((host, port))      # a connected socket hears the ICMP error
            sock.setblocking(False)
            for _ in range(2):
                sock.send(codec.encode_query(nonce))
        except ConnectionRefusedError as e:     # the ICMP error of the first query
            return "refused", [], e.errno
        except OSError as e:
            return "error", [], e.errno
        deadline = time.monotonic() + timeout
        while True:
            left = deadline - time.monotonic()
            if left <= 0:
                break
            ready, _, _ = select.select([sock], [], [], left)
            if not ready:
                break
            try:
                data = sock.recv(codec.MAX_DATAGRAM + 1)
            except ConnectionRefusedError as e:
                if not rooms:
                    return "refused", [], e.errno or errno.ECONNREFUSED
                continue
            except OSError:
                continue
            reply = codec.parse_reply(data)
            if reply is not None and reply.nonce == nonce:
                rooms.setdefault(reply.room.id, Found(host, reply.room, nonce))
    return ("answered" if rooms else "no_answer"), list(rooms.values()), None


class ScanLoop:
    """Scan, wait ``period`` seconds, scan again, on a ``lan-scan`` thread,
    until :meth:`stop`. ``post`` (called on that thread; it must only put
    on a queue) gets ``("found", Found)`` for each room as it answers and
    ``("done", ScanResult)`` at the end of each scan."""

    def __init__(self, post, *, period: float = 1.3, scan_fn=None):
        self.post = post
        self.period = period
        self.scan_fn = scan_fn or scan
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, name="lan-scan", daemon=True)

    def start(self) -> "ScanLoop":
        self.thread.start()
        return self

    def stop(self) -> None:
        """Ask the thread to end (within about 0.1 s); never blocks."""
        self._stop.set()

    @property
    def stopping(self) -> bool:
        return self._stop.is_set()

    def _run(self) -> None:
        while not self._stop.is_set():
            try:
                result = self.scan_fn(on_found=lambda f: self.post(("found", f)), stop=self._stop.is_set)
            except Exception as e:          # a bug, or no network at all: say so, try again later
                log.exception("scanning the network failed")
                result = ScanResult(errors=[("scan", getattr(e, "errno", None), str(e))])
            if self._stop.is_set():
                return
            self.post(("done", result))
            self._stop.wait(self.period)
