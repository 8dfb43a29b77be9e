"""Server settings: one dataclass, and the command line that fills it."""
from __future__ import annotations

import argparse
import os
from dataclasses import dataclass, field

from . import auth, paths, protocol
from .discovery import codec as discovery_codec


@dataclass
class ServerConfig:
    host: str = "127.0.0.1"
    port: int = protocol.DEFAULT_PORT
    db: str | None = None             # None: paths.default_db()
    sync: str = "normal"              # SQLite synchronous: normal | full
    rate_limit: float = 2.0           # messages per second per client; 0 = off
    rate_burst: float = 5.0           # messages a client may send at once
    max_clients: int = 1000
    max_per_ip: int = 20              # 0 = no cap; loopback is exempt
    max_line: int = protocol.MAX_LINE
    max_queue: int = 4 * 1024 * 1024  # bytes waiting for one client before the room waits for it
    max_errors: int = 10              # protocol errors before a client is dropped
    password: str | None = None       # plain text, or an scrypt hash from --hash-password
    tls: bool = False
    cert: str | None = None           # with tls: PEM certificate; None = self-signed, kept
    key: str | None = None
    handshake_timeout: float = 10.0
    idle_timeout: float = 120.0       # pinged at half of it, dropped at all of it
    max_rooms: int = 1000             # rooms on the server (they are kept; empty ones too)
    max_rooms_per_client: int = 100   # rooms one connection may be in
    session_expiry: float = 30.0      # days a resume session lives unused; 0 = forever
    backlog: int = 4096
    writers: int = field(default_factory=lambda: max(0, min(3, (os.cpu_count() or 1) - 1)))
    log_level: str = "info"
    # -- delivery and password guessing (docs/protocol.md, section 7) --
    slow_timeout: float = 30.0        # s a client may take nothing while output waits for it
    max_total_queue: int = 256 * 1024 * 1024   # bytes waiting for all clients together
    auth_delay: float = 1.0           # s before the frame after a wrong password; doubles each time
    auth_delay_max: float = 30.0      # ... up to this
    discovery: bool = True            # answer LAN discovery queries (UDP)
    discovery_port: int = discovery_codec.DEFAULT_PORT
    name: str | None = None           # the room's name in discovery replies; None: the host name
    # -- the doors for other clients (docs/irc.md); None: closed --
    irc_port: int | None = None
    irc_tls_port: int | None = None   # with tls
    irc_server_name: str = "natter.local"
    text_port: int | None = None
    # -- identity and moderation (docs/protocol.md, section 12) --
    reserve_nicks: bool = True        # a nick used with an identity is bound to it
    nick_expiry: float = 90.0         # days a binding lives unused
    admin_identities: tuple = ()      # fingerprints of the admins (owners everywhere); the hosting client's too
    admin_password: str | None = None  # an scrypt hash (or plain text): a hello with it is an admin
    edit_window: float = 600.0        # seconds an author may edit or delete a message
    # -- files and pictures (docs/protocol.md, section 13) --
    files_dir: str | None = None      # None: "files" beside the history file
    max_file_size: int = protocol.DEFAULT_MAX_FILE_SIZE
    files_quota: int = 10 * 1024 ** 3   # bytes of all stored files; the oldest expire first
    upload_rate: float = 20 * 1024 ** 2  # bytes a second per session's uploads; 0 = no cap
    # -- several servers sharing the rooms (docs/scaling.md) --
    redis: str | None = None          # redis://HOST:PORT/DB: the deployment's shared log; None: SQLite
    require_durable: bool = False     # refuse to start when Redis keeps no append-only file
    redis_keep: int = 1_000_000       # stream entries Redis keeps; older ones move to its archive hash
    drop_history_before: int | None = None   # with --redis: a one-shot that drops archived history, then exits

    def db_path(self) -> str:
        return self.db or paths.default_db()


def _positive(kind):
    def parse(text):
        value = kind(text)
        if value < 0:
            raise argparse.ArgumentTypeError(f"must be 0 or more, not {text}")
        return value
    return parse


def build_parser() -> argparse.ArgumentParser:
    d = ServerConfig()
    ap = argparse.ArgumentParser(
        prog="python -m server",
        description="Natter chat server: rooms, JSON lines over TCP (docs/protocol.md).")
    ap.add_argument("--host", default=d.host,
                    help="address to listen on (default %(default)s: this computer only; 0.0.0.0 serves the LAN)")
    ap.add_argument("--port", type=int, default=d.port, help="TCP port (default %(default)s; 0 picks a free one)")
    ap.add_argument("--db", default=None, help=f"SQLite history file (default {paths.default_db()})")
    ap.add_argument("--sync", choices=("normal", "full"), default=d.sync,
                    help="normal: history survives a crash of the server; full: also power loss, slower")
    ap.add_argument("--rate-limit", type=_positive(float), default=d.rate_limit,
                    help="messages per second per client after a burst (default %(default)s; 0 turns it off)")
    ap.add_argument("--rate-burst", type=_positive(float), default=d.rate_burst,
                    help="messages a client may send at once (default %(default)s)")
    ap.add_argument("--max-clients", type=_positive(int), default=d.max_clients, help="(default %(default)s)")
    ap.add_argument("--max-per-ip", type=_positive(int), default=d.max_per_ip,
                    help="connections from one address, loopback exempt (default %(default)s; 0 = no cap)")
    ap.add_argument("--max-line", type=_positive(int), default=d.max_line,
                    help="longest frame a client may send, in bytes (default %(default)s)")
    ap.add_argument("--max-queue", type=_positive(int), default=d.max_queue,
                    help="bytes waiting for one client beyond which the room waits for it (senders are "
                         "slowed); at 16 times this it is dropped as too slow (default %(default)s)")
    ap.add_argument("--slow-timeout", type=_positive(float), default=d.slow_timeout,
                    help="seconds a client may take nothing while output waits for it before it is "
                         "dropped as too slow (default %(default)s)")
    ap.add_argument("--max-total-queue", type=_positive(int), default=d.max_total_queue,
                    help="bytes waiting for all clients together; over it the clients not keeping up "
                         "are dropped first (default %(default)s)")
    ap.add_argument("--password", default=None,
                    help="room password clients must give (visible to other users of this computer; "
                         "prefer --password-file)")
    ap.add_argument("--password-file", default=None,
                    help="file whose first line is the room password's hash (from --hash-password)")
    ap.add_argument("--hash-password", action="store_true",
                    help="read a password from the terminal or standard input, print its hash, and exit")
    ap.add_argument("--tls", action="store_true",
                    help="serve TLS; without --cert/--key a self-signed certificate is made once and kept")
    ap.add_argument("--cert", default=None, help="TLS certificate (PEM), with --tls")
    ap.add_argument("--key", default=None, help="TLS private key (PEM), with --tls")
    ap.add_argument("--handshake-timeout", type=_positive(float), default=d.handshake_timeout,
                    help="seconds a new connection has to say hello (default %(default)s)")
    ap.add_argument("--idle-timeout", type=_positive(float), default=d.idle_timeout,
                    help="seconds of silence before a client is dropped; pinged at half (default %(default)s)")
    ap.add_argument("--max-rooms", type=_positive(int), default=d.max_rooms,
                    help="rooms this server may hold; a join that would create one more is refused "
                         "(default %(default)s)")
    ap.add_argument("--max-rooms-per-client", type=_positive(int), default=d.max_rooms_per_client,
                    help="rooms one connection may be in at once (default %(default)s)")
    ap.add_argument("--session-expiry", type=_positive(float), default=d.session_expiry, metavar="DAYS",
                    help="forget a client's resume session (its private messages in replays) after this many "
                         "days unused (default %(default)g; 0 keeps them forever)")
    ap.add_argument("--writers", type=_positive(int), default=d.writers,
                    help="extra threads that write a broadcast in parallel (default %(default)s: cores - 1)")
    ap.add_argument("--log-level", default=d.log_level, choices=("debug", "info", "warning", "error"))
    # Discovery (docs/protocol.md, section 11): one block, read by _discovery().
    ap.add_argument("--name", default=None,
                    help="the room's name in the lists of people who scan the network (default: this "
                         "computer's name)")
    ap.add_argument("--discovery-port", type=_port, default=d.discovery_port,
                    help="UDP port on which to answer scanners (default %(default)s, shared by every room "
                         "on this computer)")
    ap.add_argument("--no-discovery", action="store_true",
                    help="do not answer scanners: people join by address only")
    # The doors for clients nobody here wrote (docs/irc.md).
    ap.add_argument("--irc-port", type=_port_or_zero, default=None,
                    help="also serve IRC clients (irssi, WeeChat, HexChat) on this TCP port (off by default; "
                         "0 picks a free one)")
    ap.add_argument("--irc-tls-port", type=_port_or_zero, default=None,
                    help="also serve IRC over TLS on this port (needs --tls; off by default)")
    ap.add_argument("--irc-server-name", default=d.irc_server_name,
                    help="the name IRC clients see as the server's (default %(default)s)")
    ap.add_argument("--text-port", type=_port_or_zero, default=None,
                    help="also serve plain text (nc, telnet, a typed line is a message) on this port "
                         "(off by default)")
    # Identity and moderation (docs/protocol.md, section 12): read by _moderation().
    ap.add_argument("--no-reserve-nicks", action="store_true",
                    help="do not keep a nick for the computer (identity) that first used it")
    ap.add_argument("--nick-expiry", type=_positive(float), default=d.nick_expiry, metavar="DAYS",
                    help="a reserved nick unused this many days is free again (default %(default)g)")
    ap.add_argument("--admin-identity", action="append", default=[], metavar="FP",
                    help="the fingerprint (64 hex digits, in the client's settings) of an admin, who is an owner "
                         "of every room; repeatable")
    ap.add_argument("--admin-password-file", default=None,
                    help="file whose first line is the admin password's hash (from --hash-password): a client "
                         "giving it is an admin")
    ap.add_argument("--redis", default=None, metavar="URL",
                    help="share the rooms with other servers through this Redis (redis://HOST:PORT/DB; "
                         "rediss:// for TLS; redis://:PASSWORD@HOST:PORT/DB), instead of the SQLite history "
                         "(docs/scaling.md; needs pip install 'natter[redis]')")
    ap.add_argument("--require-durable", action="store_true",
                    help="with --redis: refuse to start unless Redis has appendonly yes")
    ap.add_argument("--redis-keep", type=_at_least_one, default=d.redis_keep, metavar="N",
                    help="with --redis: the stream keeps the newest N messages (default %(default)s); older ones "
                         "move to an archive in the same Redis, still paged and caught up from")
    ap.add_argument("--drop-history-before", type=_at_least_one, default=None, metavar="ID",
                    help="with --redis: do not serve; drop the archived history up to this id (to free Redis's "
                         "memory), print what was dropped, and exit; clients resuming from before it are told "
                         "history_gone (docs/scaling.md)")
    ap.add_argument("--edit-window", type=_positive(float), default=d.edit_window, metavar="SECONDS",
                    help="how long an author may edit or delete a message (default %(default)g)")
    # Files and pictures (docs/protocol.md, section 13): read by _files().
    ap.add_argument("--files-dir", default=None,
                    help="folder for shared files (default: 'files' beside the history file; with --redis the "
                         "files are in Redis)")
    ap.add_argument("--max-file-size", type=_positive(int), default=d.max_file_size, metavar="BYTES",
                    help="largest file a client may share (default %(default)s: 100 MiB)")
    ap.add_argument("--files-quota", type=_positive(int), default=d.files_quota, metavar="BYTES",
                    help="space for all shared files; the oldest expire first when it is full "
                         "(default %(default)s: 10 GiB)")
    ap.add_argument("--upload-rate", type=_positive(float), default=d.upload_rate, metavar="BYTES",
                    help="bytes a second one session may upload, all its files together (default "
                         "%(default)g: 20 MiB/s; 0 = no cap)")
    return ap


def _files(ap, a) -> dict:
    if a.max_file_size > a.files_quota:
        ap.error("--max-file-size is larger than --files-quota: no file that size could be kept")
    return dict(files_dir=a.files_dir, max_file_size=a.max_file_size, files_quota=a.files_quota,
                upload_rate=a.upload_rate)


def _at_least_one(text):
    value = int(text)
    if value < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, not {text}")
    return value


def _port(text):
    value = int(text)
    if not 0 < value < 65536:
        raise argparse.ArgumentTypeError(f"must be a port from 1 to 65535, not {text}")
    return value


def _port_or_zero(text):
    value = int(text)
    if not 0 <= value < 65536:
        raise argparse.ArgumentTypeError(f"must be a port from 1 to 65535 (or 0: any free one), not {text}")
    return value


def _doors(ap, a, tls: bool) -> dict:
    from .doors.irc.isupport import check_server_name
    if a.irc_tls_port is not None and not tls:
        ap.error("--irc-tls-port needs --tls (the IRC door's TLS uses the server's certificate)")
    try:
        check_server_name(a.irc_server_name)
    except ValueError as e:
        ap.error(f"--irc-server-name: {e}")
    return dict(irc_port=a.irc_port, irc_tls_port=a.irc_tls_port, irc_server_name=a.irc_server_name,
                text_port=a.text_port)


def _discovery(ap, a) -> dict:
    name = None
    if a.name is not None:
        name = discovery_codec.clean_name(a.name)
        if not name:
            ap.error("--name must hold a visible character")
    return dict(discovery=not a.no_discovery, discovery_port=a.discovery_port, name=name)


def _moderation(ap, a) -> dict:
    fps = []
    for fp in a.admin_identity:
        fp = fp.strip().lower()
        if not protocol.is_fingerprint(fp):
            ap.error(f"--admin-identity takes a fingerprint of 64 hex digits (the client shows it in its "
                     f"settings), not {fp[:70]!r}")
        fps.append(fp)
    admin_password = None
    if a.admin_password_file:
        try:
            admin_password = auth.read_password_file(a.admin_password_file)
        except ValueError as e:
            ap.error(str(e))
    return dict(reserve_nicks=not a.no_reserve_nicks, nick_expiry=a.nick_expiry, admin_identities=tuple(fps),
                admin_password=admin_password, edit_window=a.edit_window)


def from_args(argv=None) -> ServerConfig:
    ap = build_parser()
    a = ap.parse_args(argv)
    if bool(a.cert) != bool(a.key):
        ap.error("--cert and --key go together")
    if a.require_durable and not a.redis:
        ap.error("--require-durable goes with --redis")
    if a.drop_history_before is not None and not a.redis:
        ap.error("--drop-history-before goes with --redis URL: it drops a deployment's archived history in Redis "
                 "(a SQLite history is not dropped this way)")
    if a.redis and a.files_dir:
        ap.error("--files-dir does not go with --redis: the deployment's files are in Redis, where every node "
                 "reaches them (docs/scaling.md)")
    if a.redis and a.db:
        ap.error("give --redis or --db, not both: with --redis the history is in Redis")
    if a.password and a.password_file:
        ap.error("give --password or --password-file, not both")
    password = a.password
    if a.password_file:
        try:
            password = auth.read_password_file(a.password_file)
        except ValueError as e:
            ap.error(str(e))
    cfg = ServerConfig(host=a.host, port=a.port, db=a.db, sync=a.sync, rate_limit=a.rate_limit,
                       rate_burst=max(1.0, a.rate_burst), max_clients=a.max_clients, max_per_ip=a.max_per_ip,
                       max_line=max(256, a.max_line), max_queue=max(64 * 1024, a.max_queue),
                       slow_timeout=max(0.1, a.slow_timeout),
                       max_total_queue=max(1024 * 1024, a.max_total_queue),
                       password=password, tls=a.tls or bool(a.cert), cert=a.cert, key=a.key,
                       handshake_timeout=a.handshake_timeout, session_expiry=a.session_expiry,
                       idle_timeout=a.idle_timeout, writers=a.writers, log_level=a.log_level,
                       max_rooms=max(1, a.max_rooms), max_rooms_per_client=max(1, a.max_rooms_per_client),
                       redis=a.redis, require_durable=a.require_durable, redis_keep=a.redis_keep,
                       drop_history_before=a.drop_history_before,
                       **_discovery(ap, a), **_moderation(ap, a), **_doors(ap, a, a.tls or bool(a.cert)),
                       **_files(ap, a))
    return cfg
