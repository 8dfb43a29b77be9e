"""Command-line entry point for the server (``python -m server``)."""
from __future__ import annotations

import logging
import signal
import sys

from . import config as config_mod
from .app import ChatServer, install_thread_hook, raise_fd_limit
from .store import HistoryError, HistoryInUse, Unavailable
from .tls import TlsSetupError


def main(argv=None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if "--hash-password" in args:
        return hash_password_command()
    cfg = config_mod.from_args(argv)
    if cfg.drop_history_before is not None:
        return drop_history_command(cfg)
    logging.basicConfig(level=cfg.log_level.upper(), format="%(asctime)s %(levelname)s %(message)s",
                        stream=sys.stderr)
    raise_fd_limit()
    install_thread_hook()
    try:
        server = ChatServer(cfg)
    except HistoryInUse as e:
        print(f"natter server: {e}; stop it first, or give this one another history file with --db",
              file=sys.stderr)
        return 1
    except (OSError, HistoryError, TlsSetupError) as e:
        print(f"natter server: {e}", file=sys.stderr)
        return 1
    for name in ("SIGINT", "SIGTERM", "SIGBREAK"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), lambda *_: server.request_shutdown())
    print(server.describe(), flush=True)
    server.serve_forever()
    if server.failure:
        print(f"natter server: stopped: {server.failure}", file=sys.stderr)
        return 1
    return 0


def drop_history_command(cfg) -> int:
    """``--redis URL --drop-history-before ID``: an operator's one-shot (any
    node running or not). Drops the archived events up to ID, prints what it
    dropped, exits 0; exit 1 with a sentence, and nothing dropped, when ID is
    still in the stream or Redis cannot be used."""
    from .store.redis import RedisStore
    upto = cfg.drop_history_before
    try:
        store = RedisStore(cfg.redis)
    except HistoryError as e:
        print(f"natter server: {e}", file=sys.stderr)
        return 1
    try:
        floor = store.history_floor
        if upto <= floor:
            print(f"Nothing to drop: the history up to id {floor} was dropped already.")
            return 0
        dropped = store.drop_before(upto)
    except ValueError as e:
        print(f"natter server: {e}; nothing was dropped", file=sys.stderr)
        return 1
    except Unavailable as e:
        print(f"natter server: Redis failed during the drop ({e}); run the command again", file=sys.stderr)
        return 1
    finally:
        store.close()
    print(f"Dropped {dropped} archived events up to id {upto} from {store.path}, with their texts and edits. "
          f"The history now starts after id {upto}: clients resuming from before it are told history_gone.")
    return 0


def hash_password_command() -> int:
    """Print the hash of a password read from the terminal or stdin."""
    import getpass

    from .auth import hash_password
    if sys.stdin.isatty():
        first = getpass.getpass("Room password: ")
        if getpass.getpass("Again: ") != first:
            print("The two passwords differ.", file=sys.stderr)
            return 1
    else:
        first = sys.stdin.readline().rstrip("\r\n")
    if not first:
        print("The password is empty.", file=sys.stderr)
        return 1
    print(hash_password(first))
    return 0
