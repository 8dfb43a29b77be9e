"""The discovery responder: UDP sockets and the ``discovery`` thread.

:class:`DiscoveryService` binds the discovery port (30000 unless told
otherwise) and answers on one thread, named ``discovery``, with what
:class:`~server.discovery.responder.Responder` decides. Several rooms on
one computer share the port:

- a room that serves the LAN (chat listener on 0.0.0.0 or on a LAN
  address) binds 0.0.0.0: on Linux a broadcast, limited (255.255.255.255)
  or directed (192.168.1.255), reaches only sockets bound to the wildcard
  address (or to the broadcast address itself), never one bound to the
  interface's own address;
- a room bound to 127.0.0.1 binds 127.0.0.1 (unicast) and 127.255.255.255
  (Linux's loopback broadcast), so it is found from this computer only.

Every socket has ``SO_REUSEADDR`` (Linux and Windows share a UDP port with
it; macOS and the BSDs need ``SO_REUSEPORT`` too, which is set there).
A broadcast reaches every socket sharing the port; a unicast query
reaches only one, which relays it (see the responder). On Linux
``IP_PKTINFO`` tells which address a query was sent to and lets a reply
leave from the address the querier asked; elsewhere the system picks the
source and unicast queries are answered by one room only (untested).

Start and stop: :meth:`bind` binds (the server does it when it makes
its listener, so its start-up line can say how discovery went);
:meth:`start` binds if needed and starts the thread, and returns False
(with a warning in the log) when no socket could be bound: the chat goes
on without discovery. :meth:`stop` (any thread, idempotent) wakes the
thread through a socket pair, joins it and closes the sockets.
"""
from __future__ import annotations

import logging
import select
import socket
import struct
import sys
import threading

from . import codec
from .responder import LOOPBACK_BROADCAST, Responder, is_loopback

log = logging.getLogger("natter.server")

# Linux's number (Python 3.11 does not name it); its struct in_pktinfo is
# int ifindex, in_addr spec_dst (the local address), in_addr addr (the
# header's destination).
IP_PKTINFO = getattr(socket, "IP_PKTINFO", 8) if sys.platform.startswith("linux") else None
_PKTINFO = struct.Struct("I4s4s")
BATCH = 64                     # datagrams read per socket before looking at the others


class DiscoveryService:
    def __init__(self, room: codec.RoomInfo, counts, *, chat_host: str, port: int = codec.DEFAULT_PORT):
        self.port = port
        self.chat_host = chat_host
        self.responder = Responder(room, counts, chat_host=chat_host, port=port)
        self.sockets: list[socket.socket] = []
        self._bound: dict = {}          # socket -> the address it is bound to
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self.thread = threading.Thread(target=self._run, name="discovery", daemon=True)
        self._closing = False
        self._lock = threading.Lock()

    @property
    def bound(self) -> list[tuple]:
        """The addresses the responder listens on."""
        return [s.getsockname()[:2] for s in self.sockets]

    def describe(self) -> str:
        """The start-up line about discovery."""
        if not self.sockets:
            return f"Discovery: off (cannot listen on UDP port {self.port}; see the log)"
        where = "this computer only" if is_loopback(self.chat_host) else "every network of this computer"
        return f"Discovery: answering scanners on UDP port {self.port} ({where})"

    def bind(self) -> bool:
        """Bind the sockets (once); False, with a warning logged, when none could be."""
        if self.sockets or self._closing:
            return bool(self.sockets)
        addresses = ["127.0.0.1", LOOPBACK_BROADCAST] if is_loopback(self.chat_host) else ["0.0.0.0"]
        errors = []
        for address in addresses:
            try:
                sock = _bind(address, self.port)
            except OSError as e:
                errors.append(f"{address}:{self.port}: {e.strerror or e}")
                continue
            self.sockets.append(sock)
            self._bound[sock] = address
        if errors:
            log.warning("discovery: cannot listen on %s; people on the network will not find this "
                        "room by scanning (joining by address still works)", "; ".join(errors))
        return bool(self.sockets)

    def start(self) -> bool:
        """Bind if not done yet and start the ``discovery`` thread; False
        when nothing could be bound (the chat goes on without discovery)."""
        with self._lock:
            if self._closing or self.thread.ident is not None:
                return bool(self.sockets)
            if not self.bind():
                return False
            self.thread.start()
        return True

    def stop(self) -> None:
        with self._lock:
            if self._closing:
                return
            self._closing = True
        try:
            self._wake_w.send(b"x")
        except OSError:
            pass
        if self.thread.ident is not None:
            self.thread.join(5)
        self._close_all()

    def _close_all(self) -> None:
        for s in self.sockets + [self._wake_r, self._wake_w]:
            s.close()

    # -- the discovery thread ------------------------------------------------

    def _run(self) -> None:
        watched = self.sockets + [self._wake_r]
        while not self._closing:
            try:
                ready, _, _ = select.select(watched, [], [], 1.0)
            except OSError as e:
                log.error("discovery stopped: %s", e)
                return
            for sock in ready:
                if sock is not self._wake_r:
                    self._drain(sock)
            line = self.responder.summary()
            if line:
                log.info("%s", line)

    def _drain(self, sock: socket.socket) -> None:
        bound = self._bound[sock]
        for _ in range(BATCH):
            try:
                data, source, dst, local = _receive(sock, bound)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                # Windows reports an ICMP "port unreachable" for an earlier
                # reply as a reset on the next read: nothing to do about it.
                continue
            for out in self.responder.datagram(data, source, dst, local):
                _send(sock, bound, out)


def _bind(address: str, port: int) -> socket.socket:
    sock = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        if hasattr(socket, "SO_REUSEPORT") and not sys.platform.startswith("linux"):
            # BSD and macOS share a UDP port only with SO_REUSEPORT. On Linux
            # it would limit the sharing to one user and is not needed.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEPORT, 1)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)      # for the relay
        if IP_PKTINFO is not None:
            sock.setsockopt(socket.IPPROTO_IP, IP_PKTINFO, 1)
        sock.bind((address, port))
        sock.setblocking(False)
    except BaseException:
        sock.close()
        raise
    return sock


def _receive(sock: socket.socket, bound: str):
    """(data, source, destination, local address); the last two None when
    the system does not say. One byte more than the largest datagram is
    read, so an oversized one is seen as such and refused."""
    if IP_PKTINFO is None:
        data, source = sock.recvfrom(codec.MAX_DATAGRAM + 1)
        if bound == "127.0.0.1":
            return data, source, bound, bound
        return data, source, None, None
    data, ancillary, _flags, source = sock.recvmsg(codec.MAX_DATAGRAM + 1, socket.CMSG_SPACE(_PKTINFO.size))
    for level, kind, payload in ancillary:
        if level == socket.IPPROTO_IP and kind == IP_PKTINFO and len(payload) >= _PKTINFO.size:
            _index, local, dst = _PKTINFO.unpack_from(payload)
            return data, source, socket.inet_ntoa(dst), socket.inet_ntoa(local)
    return data, source, None, None


def _send(sock: socket.socket, bound: str, out) -> None:
    try:
        if out.source is not None and IP_PKTINFO is not None and bound == "0.0.0.0":
            info = _PKTINFO.pack(0, socket.inet_aton(out.source), bytes(4))
            sock.sendmsg([out.data], [(socket.IPPROTO_IP, IP_PKTINFO, info)], 0, out.to)
        else:
            sock.sendto(out.data, out.to)
    except OSError as e:
        # A querier gone, a network down: discovery is best effort.
        log.debug("discovery: cannot send to %s: %s", out.to, e)
