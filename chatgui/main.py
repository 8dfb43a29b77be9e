"""Entry point of the client: ``python -m chatgui`` (the window) or
``python -m chatgui --cli`` (the terminal mode, :func:`chatgui.cli.main`).

``main(argv=None) -> int`` parses the command line, opens the window and
returns the exit code once it is closed: 0 when the user closed it (the
close button, Ctrl+Q or ``/quit``), 1 when no window could be opened, 2
for a bad command line. Packaged builds enter here too.

``--host H --port P --nick N`` (or ``--host-room``) skips the connect form
and joins at once; with only some of them the form opens, filled in.
``--scan`` and ``--doctor HOST[:PORT]`` print and exit without a window
(:mod:`chatgui.netcheck`).

Threads: the main thread is the Tk thread. After the window has gone it
waits for the network client's threads and stops a hosted room, so the
process leaves nothing running behind it.
"""
from __future__ import annotations

import argparse
import logging
import os
import signal
import sys

from server import protocol

from chatgui.app import settings as settings_mod

log = logging.getLogger("natter.client")


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m chatgui",
        description="Natter: a chat room for your network. Without options it opens a connect window.")
    ap.add_argument("--cli", action="store_true",
                    help="chat in the terminal instead of a window (see --cli --help)")
    ap.add_argument("--host", help="server address; with --nick, join at once")
    ap.add_argument("--port", type=int, help=f"server port (default: the last one used, or {protocol.DEFAULT_PORT})")
    ap.add_argument("--nick", help="your nickname (default: the last one used)")
    ap.add_argument("--password", default=os.environ.get("NATTER_PASSWORD"),
                    help="room password (or set NATTER_PASSWORD)")
    ap.add_argument("--tls", action="store_true",
                    help="encrypt (the room runs with --tls); a certificate never seen before is shown "
                         "to compare before anything is sent")
    ap.add_argument("--host-room", action="store_true",
                    help="host a room on this computer (this computer only) and join it")
    ap.add_argument("--lan", action="store_true", help="with --host-room: let others on the network join")
    ap.add_argument("--theme", choices=settings_mod.THEMES, help="colour theme (remembered)")
    ap.add_argument("--font-size", type=int, help="text size in points (remembered; Ctrl+plus/minus)")
    ap.add_argument("--log-level", default="warning", choices=("debug", "info", "warning", "error"))
    ap.add_argument("--scan", action="store_true", help="list the rooms on your network and exit")
    ap.add_argument("--doctor", metavar="HOST[:PORT]",
                    help="check why a room can or cannot be joined, say what to do, and exit")
    ap.add_argument("--json", action="store_true", help="with --scan or --doctor: print JSON")
    ap.add_argument("--discovery-port", type=int, metavar="PORT",
                    help="UDP port of the rooms' discovery (default 30000, or NATTER_DISCOVERY_PORT)")
    return ap


def main(argv=None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if "--cli" in argv:
        from chatgui import cli
        return cli.main(argv)
    args = build_parser().parse_args(argv)
    if sys.stderr is not None:      # a windowed build on Windows has none
        logging.basicConfig(level=args.log_level.upper(), format="%(asctime)s %(levelname)s %(message)s")
    if args.discovery_port:
        os.environ["NATTER_DISCOVERY_PORT"] = str(args.discovery_port)     # scans and hosted rooms
    if args.scan or args.doctor:
        from chatgui import netcheck
        if args.scan:
            return netcheck.scan_command(args.json)
        return netcheck.doctor_command(args.doctor, args.json, port=args.port, nick=args.nick,
                                       password=args.password, tls=args.tls)

    settings = settings_mod.load()
    if args.theme:
        settings.theme = args.theme
    if args.font_size:
        settings.font_size = args.font_size
    settings.clamp()

    from chatgui.app.controller import ConnectValues
    nick = args.nick or settings.nick
    values = ConnectValues(host=args.host or settings.host, port=str(args.port or settings.port), nick=nick,
                           password=args.password or "", host_room=args.host_room or settings.host_room,
                           host_lan=args.lan or settings.host_lan,
                           tls=args.tls or (settings.tls and args.host is None))
    skip_form = bool(nick) and (args.host is not None or args.host_room)
    if args.host is not None:
        values.host_room = args.host_room
    if not skip_form:
        # Show the form with what was given; the rest comes from the settings.
        settings.host, settings.nick = values.host, values.nick
        settings.port = int(values.port) if values.port.isdigit() else settings.port
        settings.host_room, settings.host_lan, settings.tls = values.host_room, values.host_lan, values.tls

    try:
        import tkinter
        from chatgui.tk.window import ChatWindow
    except ImportError as e:
        print(f"natter: cannot open a window: Tkinter is missing ({e}). Install python3-tk, "
              "or use --cli to chat in the terminal.", file=sys.stderr)
        return 1
    try:
        window = ChatWindow(settings)
    except tkinter.TclError as e:
        print(f"natter: cannot open a window ({e}). Use --cli to chat in the terminal.", file=sys.stderr)
        return 1
    _quit_on_signals(window)
    try:
        window.run(values if skip_form else None)
    finally:
        window.quit()           # idempotent; covers an exception out of mainloop
        window.controller.shutdown(timeout=5.0)
    return 0


def _quit_on_signals(window) -> None:
    """SIGINT/SIGTERM close the window as its close button does. Python runs
    the handler on the main thread (the Tk thread) between two bytecodes;
    the pump's ``after`` ticks give it the chance."""
    def handler(signum, frame):
        if not window.closed:
            window.root.after_idle(window.quit)
    for name in ("SIGINT", "SIGTERM"):
        try:
            signal.signal(getattr(signal, name), handler)
        except (ValueError, OSError):     # not the main thread (tests)
            pass
