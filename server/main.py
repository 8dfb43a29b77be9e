"""Command-line entry point for the server (``python -m server``)."""
from __future__ import annotations

import logging
import signal
import sys

from . import config as config_mod
from .app import ChatServer, raise_fd_limit
from .history import HistoryError
from .tls import TlsSetupError


def main(argv=None) -> int:
    cfg = config_mod.from_args(argv)
    logging.basicConfig(level=cfg.log_level.upper(), format="%(asctime)s %(levelname)s %(message)s",
                        stream=sys.stderr)
    raise_fd_limit()
    try:
        server = ChatServer(cfg)
    except (OSError, HistoryError, TlsSetupError) as e:
        print(f"natter server: {e}", file=sys.stderr)
        return 1
    for name in ("SIGINT", "SIGTERM", "SIGBREAK"):
        if hasattr(signal, name):
            signal.signal(getattr(signal, name), lambda *_: server.request_shutdown())
    print(server.describe(), flush=True)
    server.serve_forever()
    return 0
