"""The connection doctor's probes: look at the network, record the facts.

:func:`gather` checks, in order, and stops at the first step that fails:

1. the name (``getaddrinfo``);
2. the route, against this computer's interfaces
   (:func:`chatgui.net.discovery.ipv4_interfaces`): loopback, this
   computer, one of its networks, or elsewhere; for elsewhere a UDP
   ``connect`` (which sends nothing) asks the system whether any route
   leads there;
3. a TCP connection (a refusal at one of this computer's own addresses is
   checked again at 127.0.0.1, for a room open to this computer only);
4. what answered: with TLS asked for, the handshake, the certificate
   against the pinned one (:mod:`chatgui.net.pins`), then, only when the
   certificate is the pinned one (or the connection is plain: nothing is
   sent to a certificate nobody compared, as the client does), a
   ``hello`` with the nick and password given, whose answer tells a
   welcome, a wrong password, a full room, encryption required, or
   something that is not a Natter room at all. A welcome is left at once
   with ``bye`` (the room sees the doctor's nick join and leave);
5. discovery: a query sent straight to the room's address and, unless
   ``scan=False``, a scan of the networks (:func:`chatgui.net.discovery.scan`).

:func:`diagnose` is :func:`gather` then :func:`chatgui.app.doctor.classify`.
Error numbers are recorded as the system gave them, with ``sys.platform``
for their numbering.

Thread: any but the Tk thread (it blocks for up to about ten seconds).
"""
from __future__ import annotations

import errno
import ipaddress
import json
import os
import selectors
import socket
import ssl
import sys
import time

from server import protocol

from chatgui.app.doctor import Diagnosis, Facts, classify
from chatgui.net import discovery
from chatgui.net.failures import plain_server
from chatgui.net.pins import PinStore
from chatgui.net.transport import TlsTransport, client_context

DOCTOR_NICK = "natter-doctor"
UNSOLICITED_WAIT = 0.3       # a full room says so as soon as it accepts


def diagnose(host: str, port: int, **kw) -> Diagnosis:
    return classify(gather(host, port, **kw))


def gather(host: str, port: int, *, tls: bool = False, nick: str | None = None, password: str | None = None,
           pins: PinStore | None = None, discovery_port: int | None = None, scan: bool = True,
           connect_timeout: float = 5.0, answer_timeout: float = 3.0, interfaces=None) -> Facts:
    f = Facts(host=host, port=port, tls=tls, password_given=bool(password), platform=sys.platform,
              timeout=connect_timeout)
    itfs = discovery.ipv4_interfaces() if interfaces is None else list(interfaces)
    f.networks = [f"{i.network} ({i.name})" for i in itfs if i.network is not None and not i.loopback]
    # 1. the name
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as e:
        f.resolve_error, f.resolve_message = e.errno, e.strerror or str(e)
        return f
    except UnicodeError as e:
        f.resolve_error, f.resolve_message = socket.EAI_NONAME, str(e)
        return f
    addrs = []
    for info in sorted(infos, key=lambda i: i[0] != socket.AF_INET):      # IPv4 first
        if info[4][0] not in addrs:
            addrs.append(info[4][0])
    f.addresses = addrs
    address = addrs[0]
    # 2. the route
    f.route, f.source_address, f.route_errno = route_to(address, port, itfs)
    # 3. the connection
    sock = _connect(f, address, port, connect_timeout)
    if sock is None:
        if errno_is(f.connect_errno, "ECONNREFUSED") and f.route == "this_computer":
            probe = _connect(Facts(host="127.0.0.1", port=port), "127.0.0.1", port, connect_timeout)
            f.local_room = probe is not None
            if probe is not None:
                probe.close()
        return f
    # 4. what answered
    try:
        _talk(f, sock, address, port, nick or DOCTOR_NICK, password, pins or PinStore(), answer_timeout)
    finally:
        sock.close()
    # 5. discovery
    if ":" not in address:
        f.discovery_unicast = discovery.unicast_query(address, discovery_port)[0]
    if scan:
        result = discovery.scan(discovery_port)       # NATTER_DISCOVERY_SCOPE applies
        f.discovery_rooms = len(result.rooms)
        here = f.route in ("loopback", "this_computer")
        f.discovery_seen = any(r.room.port == port and (r.host == address or (here and r.host.startswith("127.")))
                               for r in result.rooms)
    return f


def errno_is(number: int | None, name: str) -> bool:
    return number is not None and number == getattr(errno, name, None)


def route_to(address: str, port: int, interfaces) -> tuple[str, str | None, int | None]:
    """(route, this computer's address toward it, error number).

    route: loopback, this_computer, same_network, other_network (a route
    leads there, through a gateway or a VPN) or no_route."""
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return "other_network", None, None
    if ip.is_loopback:
        return "loopback", str(ip), None
    for itf in interfaces:
        if itf.address == address:
            return "this_computer", address, None
    for itf in interfaces:
        net = itf.network
        if net is not None and not itf.loopback and ip in net:
            return "same_network", itf.address, None
    family = socket.AF_INET6 if ip.version == 6 else socket.AF_INET
    with socket.socket(family, socket.SOCK_DGRAM) as s:
        try:
            s.connect((address, port))          # UDP: asks for a route, sends nothing
        except OSError as e:
            return "no_route", None, e.errno
        return "other_network", s.getsockname()[0], None


def _connect(f: Facts, address: str, port: int, timeout: float) -> socket.socket | None:
    family = socket.AF_INET6 if ":" in address else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setblocking(False)
    err = sock.connect_ex((address, port))
    if err in (errno.EINPROGRESS, errno.EWOULDBLOCK, errno.EALREADY):
        with selectors.DefaultSelector() as sel:
            sel.register(sock, selectors.EVENT_WRITE)
            if not sel.select(timeout):
                f.connected, f.timed_out = False, True
                sock.close()
                return None
        err = sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
    if err:
        f.connected, f.connect_errno, f.connect_message = False, err, os.strerror(err)
        f.timed_out = errno_is(err, "ETIMEDOUT")
        sock.close()
        return None
    f.connected = True
    sock.setblocking(True)
    return sock


class _Plain:
    def __init__(self, sock):
        self.sock = sock

    def recv(self) -> bytes:
        return self.sock.recv(65536)

    def sendall(self, data: bytes) -> None:
        self.sock.sendall(data)


def _talk(f: Facts, sock, address: str, port: int, nick: str, password, pins: PinStore, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    if f.tls:
        transport = TlsTransport(sock, client_context())
        try:
            transport.handshake(deadline, lambda: False)
        except TimeoutError:
            f.tls_failed = "timeout"
            return
        except OSError as e:                # ssl.SSLError included
            f.tls_failed = "plain_server" if plain_server(e, transport.first_bytes) else "other"
            f.tls_message = getattr(e, "reason", None) or str(e)
            f.first_bytes = transport.first_bytes[:40].decode("utf-8", "replace")
            return
        f.fingerprint = transport.fingerprint
        f.pinned = pins.get(f.host, port)
        if f.pinned is not None and f.pinned != f.fingerprint:
            return                          # nothing is sent to a certificate that changed
        if f.pinned is None:
            f.answer = "unverified"         # nothing for a certificate nobody compared
            return
    else:
        transport = _Plain(sock)
    sock.setblocking(False)
    first = _read_line(sock, transport, time.monotonic() + UNSOLICITED_WAIT)
    if first is None:
        try:
            transport.sendall(protocol.encode(protocol.hello_frame(nick, password=password or None)))
        except OSError:
            f.answer = "closed"
            return
        first = _read_line(sock, transport, deadline)
    _judge(f, first)
    if f.answer == "welcome":
        try:
            transport.sendall(protocol.encode({"type": "bye"}))
        except OSError:
            pass


def _read_line(sock, transport, deadline: float):
    """The first line (bytes, without the newline); b"" at once when the
    other side hung up without one; None when nothing came by the deadline.
    Also returns what came when it is not a line (a stranger's banner)."""
    buf = b""
    with selectors.DefaultSelector() as sel:
        sel.register(sock, selectors.EVENT_READ)
        while b"\n" not in buf and len(buf) < 1 << 24:
            left = deadline - time.monotonic()
            if left <= 0 or not sel.select(left):
                return buf or None
            try:
                chunk = transport.recv()
            except (BlockingIOError, ssl.SSLWantReadError):
                continue
            except OSError:
                chunk = b""
            if not chunk:
                return buf
            buf += chunk
    return buf.split(b"\n", 1)[0]


def _judge(f: Facts, line: bytes | None) -> None:
    if line is None:
        f.answer = "silent"
        return
    if not line:
        f.answer = "closed"
        return
    try:
        frame = json.loads(line.decode("utf-8"))
    except ValueError:
        frame = None
    if type(frame) is not dict or type(frame.get("type")) is not str:
        f.answer = "other"
        f.first_bytes = line[:40].decode("utf-8", "replace")
        return
    if frame["type"] == "welcome":
        f.answer = "welcome"
    elif frame["type"] == "error":
        code = str(frame.get("code", ""))[:40]
        f.answer = "tls_required" if code == "tls_required" else "error"
        f.error_code, f.error_message = code, str(frame.get("message", ""))[:300]
    elif frame["type"] == "notice":
        f.answer, f.error_code, f.error_message = "error", str(frame.get("code", ""))[:40], \
            str(frame.get("text", ""))[:300]
    else:
        f.answer = "other"
        f.first_bytes = line[:40].decode("utf-8", "replace")
