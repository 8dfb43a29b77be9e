"""The server's life cycle: listen, accept, run the hub, shut down.

Shaped like ``socketserver``: :meth:`ChatServer.start` (threads running,
returns at once), :meth:`serve_forever` (blocks until asked to stop),
:meth:`shutdown` (any thread, idempotent: stop accepting, tell the clients,
flush history, join the threads with a timeout, close everything).

Threads: ``acceptor`` accepts and starts one ``reader-HOST:PORT`` thread
per client; ``hub`` owns the state and all writes (see :mod:`server.hub`);
``discovery`` answers scanners on UDP (:mod:`server.discovery`), with the
counts of :meth:`ChatServer.room_count` and the hub's nicks.
"""
from __future__ import annotations

import errno
import ipaddress
import logging
import os
import socket
import threading
import time
import uuid

from . import hub as hub_mod
from . import auth, paths, tls
from .config import ServerConfig
from .connection import DONTWAIT, Connection, Gone
from .discovery import DiscoveryService, RoomInfo
from .history import History

log = logging.getLogger("natter.server")

_FD_ERRORS = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}


class ChatServer:
    def __init__(self, config: ServerConfig | None = None):
        self.config = config or ServerConfig()
        self.tls_context = None
        self.check_password = auth.PasswordCheck(self.config.password) if self.config.password else None
        self.fingerprint: str | None = None
        # The port first: a second server on the same port and file is told
        # the port is taken, the plainer of the two reasons.
        self.listener = _listen(self.config.host, self.config.port, self.config.backlog)
        try:
            self.history = History(self.config.db_path(), sync=self.config.sync)
        except BaseException:
            self.listener.close()
            raise
        try:
            self.history.prune_sessions(self.config.session_expiry)   # then the hub, daily
            if self.config.tls:
                self._setup_tls()
        except BaseException:
            self.history.close()
            self.listener.close()
            raise
        self.address = self.listener.getsockname()[:2]
        self.hub = hub_mod.Hub(self.config, self.history)
        self.id = str(uuid.uuid4())         # names this server in discovery replies
        self.discovery = self._make_discovery() if self.config.discovery else None
        self._acceptor = threading.Thread(target=self._accept_loop, name="acceptor", daemon=True)
        self._closing = False
        self._started = False
        self._closed = threading.Event()
        self._stop_requested = threading.Event()
        self._lock = threading.Lock()

    def _setup_tls(self) -> None:
        cfg = self.config
        if cfg.cert:
            cert, key = cfg.cert, cfg.key
        else:
            cert, key = tls.ensure_certificate(os.path.join(paths.data_dir(), "tls"))
        self.tls_context = tls.server_context(cert, key)
        self.fingerprint = tls.cert_fingerprint(cert)
        self.cert_path = cert

    def _make_discovery(self) -> DiscoveryService:
        cfg = self.config
        room = RoomInfo(id=self.id, name=cfg.name or socket.gethostname() or "Natter", port=self.port,
                        tls=self.fingerprint is not None, fp=self.fingerprint, users=0,
                        password=self.check_password is not None, rooms=0)
        service = DiscoveryService(room, lambda: (len(self.hub.nicks), self.room_count()),
                                   chat_host=self.address[0], port=cfg.discovery_port)
        service.bind()
        return service

    def room_count(self) -> int:
        """How many rooms discovery replies announce (one room per server, for now)."""
        return 1

    @property
    def failure(self) -> str | None:
        """Why the server stopped on its own (it could not save history...), or None."""
        return self.hub.failure

    @property
    def port(self) -> int:
        return self.address[1]

    def describe(self) -> str:
        """The start-up line: where it listens, who can reach it, where history is."""
        host, port = self.address
        if _is_loopback_host(host):
            reach = "this computer only"
        else:
            reach = "SERVING THE LAN: anyone who can reach this computer can join"
        line = f"Natter server listening on {_fmt(host, port)} ({reach}); history in {self.history.path}"
        if self.fingerprint:
            line += f"\nTLS on; certificate fingerprint (clients compare it): {self.fingerprint}"
        elif not _is_loopback_host(host):
            line += "\nTLS off: messages cross the network unencrypted (see --tls)"
        if self.discovery is not None:
            line += "\n" + self.discovery.describe()
        return line

    def start(self) -> "ChatServer":
        with self._lock:
            if self._started:
                return self
            self._started = True
        self.hub.thread.start()
        self._acceptor.start()
        if self.discovery is not None:
            self.discovery.start()
        return self

    def serve_forever(self) -> None:
        """Run until :meth:`request_shutdown` or :meth:`shutdown`; then shut down."""
        self.start()
        while not self._stop_requested.wait(0.5):
            if self.hub.finished.is_set():
                break
        self.shutdown()

    def request_shutdown(self) -> None:
        """Safe from a signal handler: serve_forever does the rest."""
        self._stop_requested.set()

    def shutdown(self, message: str = "The server is shutting down.") -> None:
        with self._lock:
            if self._closing:
                already = True
            else:
                already = False
                self._closing = True
        if already:
            self._closed.wait(15)
            return
        self._stop_requested.set()
        if self.discovery is not None:
            self.discovery.stop()           # a stopped room is no longer announced
        try:
            self.listener.shutdown(socket.SHUT_RDWR)   # wakes accept() on Linux
        except OSError:
            pass
        self.listener.close()
        if self._started:
            self._acceptor.join(5)
            self.hub.stop(message)
            self.hub.thread.join(hub_mod.CLOSE_GRACE * 3 + 5)
            deadline = time.monotonic() + 3
            for conn in list(self.hub.conns):
                if conn.thread.ident is not None:
                    conn.thread.join(max(0.0, deadline - time.monotonic()))
        self.hub.close()
        self.history.close()
        self._closed.set()
        log.info("server stopped")

    server_close = shutdown

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.shutdown()

    # -- acceptor thread --------------------------------------------------

    def _accept_loop(self) -> None:
        last_warning = 0.0
        while not self._closing:
            try:
                sock, addr = self.listener.accept()
            except OSError as e:
                if self._closing:
                    return
                if e.errno in _FD_ERRORS:
                    # Out of file descriptors: back off instead of spinning;
                    # the pending connections wait in the listen backlog.
                    now = time.monotonic()
                    if now - last_warning > 5:
                        log.warning("accept: %s; waiting for connections to close", e.strerror)
                        last_warning = now
                    time.sleep(0.1)
                elif e.errno not in (errno.ECONNABORTED, errno.EINTR, errno.EAGAIN):
                    log.error("accept failed: %s", e)
                    time.sleep(0.1)
                continue
            try:
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
                if not DONTWAIT:
                    sock.setblocking(False)
                conn = Connection(sock, addr, self.hub, self.config, self.tls_context, self.check_password)
            except OSError as e:
                log.warning("%s: could not set up the connection: %s", addr, e)
                sock.close()
                continue
            self.hub.post(conn, [hub_mod.CONNECTED])
            try:
                conn.thread.start()
            except RuntimeError as e:    # can't start new thread
                log.error("%s: no thread for the connection: %s", conn.peer, e)
                self.hub.post(conn, [Gone("server overloaded")])


def _listen(host: str, port: int, backlog: int) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family, backlog=backlog)
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            raise OSError(e.errno, f"port {port} on {host} is already in use: is another server "
                                   "running? Choose another with --port") from None
        raise OSError(e.errno, f"cannot listen on {host}:{port}: {e.strerror}") from None


def _is_loopback_host(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return host == "localhost"


def _fmt(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def raise_fd_limit() -> None:
    """Lift the soft open-files limit to the hard one (1024 is common)."""
    try:
        import resource
    except ImportError:
        return
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    if soft < hard:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
        except (ValueError, OSError):
            pass
