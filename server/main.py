"""Command-line entry point for the server (``python -m server``)."""
from __future__ import annotations

import logging
import signal
import sys

from . import config as config_mod
from .app import ChatServer, install_thread_hook, raise_fd_limit
from .store import HistoryError, HistoryInUse
from .tls import TlsSetupError


def main(argv=None) -> int:
    args = sys.argv[1:] if argv is None else argv
    if "--hash-password" in args:
        return hash_password_command()
    cfg = config_mod.from_args(argv)
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
