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
import selectors
import socket
import threading
import time
import uuid
import weakref

from . import hub as hub_mod
from . import auth, paths, tls
from .config import ServerConfig
from .delivery import DONTWAIT
from .doors.jsonl import Connection, Gone
from .discovery import DiscoveryService, RoomInfo
from .store.sqlite import SqliteStore

log = logging.getLogger("natter.server")

_FD_ERRORS = {errno.EMFILE, errno.ENFILE, errno.ENOBUFS, errno.ENOMEM}
ACCEPT_POLL = 0.5   # seconds between two looks at the closing flag, as socketserver
ACCEPT_BATCH = 64   # connections taken from the backlog per wake-up


class ChatServer:
    def __init__(self, config: ServerConfig | None = None):
        self.config = config or ServerConfig()
        self.tls_context = None
        self.check_password = auth.PasswordCheck(self.config.password) if self.config.password else None
        self.check_admin = auth.PasswordCheck(self.config.admin_password) if self.config.admin_password else None
        self.fingerprint: str | None = None
        # The port first: a second server on the same port and file is told
        # the port is taken, the plainer of the two reasons.
        self.listener = _listen(self.config.host, self.config.port, self.config.backlog)
        try:
            self.history = open_store(self.config)
        except BaseException:
            self.listener.close()
            raise
        self.doors: dict = {}       # door name ("irc", "irc-tls", "text") -> its listening socket
        try:
            self.history.prune_sessions(self.config.session_expiry)   # then the hub, daily
            self.history.prune_bindings(self.config.nick_expiry, time.time())
            if self.config.tls:
                self._setup_tls()
            self._open_doors()
        except BaseException:
            self.history.close()
            for sock in [self.listener, *self.doors.values()]:
                sock.close()
            raise
        self.address = self.listener.getsockname()[:2]
        self.hub = hub_mod.Hub(self.config, self.history)
        if "text" in self.doors:
            self.hub.text_port = self.door_port("text")
        # The acceptor waits on a selector, woken by this pair: shutdown()
        # of a listening socket does not wake accept() on macOS.
        self._wake_r, self._wake_w = socket.socketpair()
        self._wake_r.setblocking(False)
        self.id = str(uuid.uuid4())         # names this server in discovery replies
        self.discovery = self._make_discovery() if self.config.discovery else None
        self._acceptor = threading.Thread(target=self._accept_loop, name="acceptor", daemon=True)
        self._closing = False
        self._started = False
        self._closed = threading.Event()
        self._stop_requested = threading.Event()
        self._failure: str | None = None
        self._lock = threading.Lock()
        self._fd_warned = 0.0           # (acceptor) when "out of file descriptors" was last logged

    def _setup_tls(self) -> None:
        cfg = self.config
        if cfg.cert:
            cert, key = cfg.cert, cfg.key
        else:
            cert, key = tls.ensure_certificate(os.path.join(paths.data_dir(), "tls"))
        self.tls_context = tls.server_context(cert, key)
        self.fingerprint = tls.cert_fingerprint(cert)
        self.cert_path = cert

    def _open_doors(self) -> None:
        """The listeners for IRC and plain-text clients the settings ask
        for, where the JSON port listens (docs/irc.md)."""
        cfg = self.config
        for name, port, option in (("irc", cfg.irc_port, "--irc-port"), ("irc-tls", cfg.irc_tls_port,
                                                                          "--irc-tls-port"),
                                   ("text", cfg.text_port, "--text-port")):
            if port is not None:
                self.doors[name] = _listen(cfg.host, port, cfg.backlog, option)
        if "irc" in self.doors or "irc-tls" in self.doors:
            from .doors.irc.session import features
            self.irc_features = features(cfg)     # what 005 announces, and 003's start time

    def door_port(self, name: str) -> int | None:
        """The port a door listens on ("irc", "irc-tls", "text"), None if closed."""
        sock = self.doors.get(name)
        return sock.getsockname()[1] if sock is not None else None

    def _connection(self, door: str | None, sock, addr):
        """The connection object of a client accepted on a door's port."""
        cfg, hub = self.config, self.hub
        if door is None:
            return Connection(sock, addr, hub, cfg, self.tls_context, self.check_password, self.check_admin)
        if door.startswith("irc"):
            from .doors.irc.listener import IrcConnection
            return IrcConnection(sock, addr, hub, cfg, self.tls_context if door == "irc-tls" else None,
                                 self.check_password, self.irc_features)
        from .doors.text.listener import TextConnection
        return TextConnection(sock, addr, hub, cfg, None, self.check_password)

    def _make_discovery(self) -> DiscoveryService:
        cfg = self.config
        room = RoomInfo(id=self.id, name=cfg.name or socket.gethostname() or "Natter", port=self.port,
                        tls=self.fingerprint is not None, fp=self.fingerprint, users=0,
                        password=self.check_password is not None, rooms=0)
        service = DiscoveryService(room, lambda: (len(self.hub.chat.nicks), self.room_count()),
                                   chat_host=self.address[0], port=cfg.discovery_port)
        service.bind()
        return service

    def room_count(self) -> int:
        """How many rooms discovery replies announce: the rooms of this server
        (any thread: a snapshot)."""
        return self.hub.chat.room_count()

    @property
    def failure(self) -> str | None:
        """Why the server stopped on its own (it could not save history, one
        of its threads failed...), or None."""
        return self._failure or self.hub.failure

    def fail(self, reason: str) -> None:
        """Any thread: stop the server because of ``reason`` (serve_forever
        returns, ``python -m server`` exits 1)."""
        if self._failure is None:
            self._failure = reason
        self._stop_requested.set()

    def _owns(self, thread) -> bool:
        reader = getattr(self.history, "reader", None)      # a shared store's (server.store.redis_feed)
        return thread is not None and (thread in (self.hub.thread, self._acceptor)
                                       or thread in self.hub.writer_threads
                                       or (reader is not None and thread is reader.thread))

    def _thread_failed(self, thread) -> None:
        """From the thread hook: a thread of this server ended with an exception."""
        if self._owns(thread) and not self._closing:
            log.critical("stopping: the %s thread failed", thread.name)
            self.fail(f"the {thread.name.rstrip('-0123456789') or thread.name} thread failed")

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
        line += f"; shared files in {self.hub.chat.blobs.where}"     # a folder, or the deployment's Redis
        if self.history.shared:
            line += (f", in its memory: up to --files-quota {self.config.files_quota} bytes "
                     "(docs/scaling.md, Files and pictures)")
            line += ("\nSharing the rooms through Redis: acknowledged messages survive a Redis crash only with "
                     "appendonly yes" + {True: " (it is on)", False: " (IT IS OFF)",
                                         None: " (Redis would not say)"}[self.history.durable])
        if self.fingerprint:
            line += f"\nTLS on; certificate fingerprint (clients compare it): {self.fingerprint}"
        elif not _is_loopback_host(host):
            line += "\nTLS off: messages cross the network unencrypted (see --tls)"
        for name, what in (("irc", "IRC"), ("irc-tls", "IRC over TLS"), ("text", "plain text (nc, telnet)")):
            if name in self.doors:
                line += f"\n{what} on {_fmt(host, self.door_port(name))}"
        if self.discovery is not None:
            line += "\n" + self.discovery.describe()
        return line

    def start(self) -> "ChatServer":
        with self._lock:
            if self._started:
                return self
            self._started = True
        _watch_threads(self)
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
            self._wake_w.send(b"\0")
        except OSError:
            pass
        if self._started:
            self._acceptor.join(5)
        self.listener.close()
        for sock in self.doors.values():
            sock.close()
        if self._started:
            self.hub.stop(message)
            self.hub.thread.join(hub_mod.CLOSE_GRACE * 3 + 5)
            deadline = time.monotonic() + 3
            for conn in list(self.hub.conns):
                if conn.thread.ident is not None:
                    conn.thread.join(max(0.0, deadline - time.monotonic()))
        self.hub.close()
        self.history.close()
        for sock in (self._wake_r, self._wake_w):
            sock.close()
        self._closed.set()
        log.info("server stopped")

    server_close = shutdown

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.shutdown()

    # -- acceptor thread --------------------------------------------------

    def _accept_loop(self) -> None:
        """Acceptor thread: wait for a connection or the wake-up, accept, hand
        the connection to the hub and start its reader."""
        with selectors.DefaultSelector() as selector:   # two sockets: select() is fine everywhere
            selector.register(self.listener, selectors.EVENT_READ, None)
            for name, sock in self.doors.items():
                selector.register(sock, selectors.EVENT_READ, name)
            selector.register(self._wake_r, selectors.EVENT_READ, "wake")
            while not self._closing:
                for key, _ in selector.select(ACCEPT_POLL):
                    if key.data == "wake":
                        continue
                    # Take what the backlog holds (a reconnect storm), a
                    # bounded number at a time so a close is seen soon.
                    for _ in range(ACCEPT_BATCH):
                        if self._closing or not self._accept_one(key.fileobj, key.data):
                            break
        # An exception from accept() or the selector itself ends the thread:
        # the thread hook logs it and stops the server (fail).

    def _accept_one(self, listener=None, door: str | None = None) -> bool:
        """Accept one connection on ``listener`` (the JSON port's, or the
        ``door``'s); False when there was none to take."""
        try:
            sock, addr = (listener or self.listener).accept()
        except (BlockingIOError, InterruptedError):
            return False    # the backlog is empty, or the peer gave up before we took it
        except OSError as e:
            if self._closing:
                return False
            if e.errno in _FD_ERRORS:
                # Out of file descriptors: back off instead of spinning;
                # the pending connections wait in the listen backlog.
                now = time.monotonic()
                if now - self._fd_warned > 5:
                    log.warning("accept: %s; waiting for connections to close", e.strerror)
                    self._fd_warned = now
                time.sleep(0.1)
            elif e.errno not in (errno.ECONNABORTED, errno.EINTR, errno.EAGAIN):
                log.error("accept failed: %s", e)
                time.sleep(0.1)
            return False
        try:
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            # An accepted socket inherits the listener's non-blocking mode
            # on macOS and the BSDs, not on Linux; the reader wants it
            # blocking where MSG_DONTWAIT exists. setblocking() releases the
            # GIL, which costs the acceptor dearly in a reconnect storm:
            # only when the mode is wrong.
            if not DONTWAIT:
                sock.setblocking(False)
            elif not os.get_blocking(sock.fileno()):
                sock.setblocking(True)
            conn = self._connection(door, sock, addr)
        except Exception as e:
            # That one connection is lost; the acceptor goes on.
            if isinstance(e, OSError):
                log.warning("%s: could not set up the connection: %s", addr, e)
            else:
                log.exception("%s: could not set up the connection", addr)
            sock.close()
            return True
        self.hub.post(conn, [hub_mod.CONNECTED], wait=False)
        try:
            conn.thread.start()
        except RuntimeError as e:    # can't start new thread
            log.error("%s: no thread for the connection: %s", conn.peer, e)
            self.hub.post(conn, [Gone("server overloaded")])
        return True


# -- thread failures --------------------------------------------------------

_servers: "weakref.WeakSet[ChatServer]" = weakref.WeakSet()
_previous_hook = None
_log_every_thread = False


def open_store(config):
    """The store the settings ask for: the deployment's Redis (``--redis``;
    redis-py is imported only then), else the SQLite history file."""
    if config.redis:
        from .store.redis import RedisStore
        return RedisStore(config.redis, require_durable=config.require_durable, keep=config.redis_keep)
    return SqliteStore(config.db_path(), sync=config.sync)


def install_thread_hook() -> None:
    """For the server's own process (``python -m server``): every thread's
    unexpected exception is logged, whoever started the thread."""
    global _log_every_thread
    _log_every_thread = True
    _install()


def _install() -> None:
    global _previous_hook
    if threading.excepthook is not _thread_hook:
        _previous_hook = threading.excepthook
        threading.excepthook = _thread_hook


def _watch_threads(server: ChatServer) -> None:
    """Install the thread hook (once per process) and let it know ``server``."""
    _servers.add(server)
    _install()


def _thread_hook(args) -> None:
    """threading.excepthook: every thread's unexpected exception is logged;
    one of a server's vital threads (hub, acceptor, writer-N) stops that
    server with a failure. In a process that hosts a server beside other
    work (the window's "Host a room"), a thread no server owns goes to the
    hook that was there before, unless that was Python's default (which
    only prints); see install_thread_hook."""
    thread = args.thread
    owner = next((srv for srv in list(_servers) if srv._owns(thread)), None)
    if owner is None and not _log_every_thread and _previous_hook not in (None, threading.__excepthook__):
        _previous_hook(args)
        return
    if issubclass(args.exc_type, SystemExit):
        return
    log.critical("thread %s failed", thread.name if thread is not None else "?",
                 exc_info=(args.exc_type, args.exc_value, args.exc_traceback))
    if owner is not None:
        owner._thread_failed(thread)


def _listen(host: str, port: int, backlog: int, option: str = "--port") -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        listener = socket.create_server((host, port), family=family, backlog=backlog)
        listener.setblocking(False)     # accept() only after the selector says so
        return listener
    except OSError as e:
        if e.errno == errno.EADDRINUSE:
            raise OSError(e.errno, f"port {port} on {host} is already in use: is another server "
                                   f"running? Choose another with {option}") from None
        raise OSError(e.errno, f"cannot listen on {host}:{port}: {e.strerror}") from None


def _is_loopback_host(host: str) -> bool:
    try:
        return ipaddress.ip_address(host.split("%")[0]).is_loopback
    except ValueError:
        return host == "localhost"


def _fmt(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


# Soft open-files limits to try, highest first, when the hard limit is
# unlimited or the system refuses it: macOS reports RLIM_INFINITY but caps
# the soft limit at OPEN_MAX (10240) or kern.maxfilesperproc.
_FD_FALLBACKS = (1 << 20, 1 << 18, 1 << 16, 10240, 8192, 4096)


def raise_fd_limit() -> int | None:
    """Lift the soft open-files limit as far as the system allows (1024 is a
    common default; each client is a file descriptor). The hard limit is
    left as it is. Returns the soft limit reached, None without ``resource``
    (Windows, where there is no such limit)."""
    try:
        import resource
    except ImportError:
        return None
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft == resource.RLIM_INFINITY:
        return soft
    unlimited = hard == resource.RLIM_INFINITY
    wanted = ([] if unlimited else [hard]) + [n for n in _FD_FALLBACKS if unlimited or n < hard]
    for target in wanted:
        if target <= soft:
            break
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
        except (ValueError, OSError):
            continue
        return target
    return soft
