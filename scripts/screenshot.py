#!/usr/bin/env python3
"""Save a screenshot of the chat window with a short conversation in it.

    python3 scripts/screenshot.py                      # docs/screenshot.png
    python3 scripts/screenshot.py --theme dark --out docs/screenshot-dark.png

It starts its own Xvfb and a real server on a free loopback port (history
in a temporary folder), has a few people talk over real connections (a
mention, a private message, a join notice, a link, an emoji, an action),
opens the real window as "alice", and captures it with ImageMagick's
``import``. Nothing of the user's settings or history is touched.

Thread: the main thread is the Tk thread; the other people are plain
blocking sockets driven from it between pumps of the Tk loop.
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from tests import xvfb  # noqa: E402
from tests.netclient import LineClient  # noqa: E402


def pump(root, seconds: float = 0.3, until=None) -> None:
    deadline = time.monotonic() + (30 if until else seconds)
    while time.monotonic() < deadline:
        root.update()
        if until is not None and until():
            return
        time.sleep(0.01)
    if until is not None:
        raise RuntimeError("the window did not get there in 30 s")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=os.path.join(ROOT, "docs", "screenshot.png"))
    ap.add_argument("--theme", default="light", choices=("light", "dark"))
    ap.add_argument("--size", default="1000x640")
    ap.add_argument("--font-size", type=int, default=11)
    ap.add_argument("--form", action="store_true",
                    help="the connect form (rooms found, a refused connection and the doctor's answer), "
                         "instead of the chat")
    args = ap.parse_args(argv)

    home = tempfile.mkdtemp(prefix="natter-shot-")
    os.environ["NATTER_HOME"] = home
    proc, display = xvfb.start("1400x900x24")
    os.environ["DISPLAY"] = display
    try:
        return _shoot(args)
    finally:
        xvfb.stop(proc)


def _capture(root, out: str) -> None:
    os.makedirs(os.path.dirname(os.path.abspath(out)), exist_ok=True)
    subprocess.run(["import", "-window", root.wm_frame(), out], check=True, timeout=30)
    print(f"saved {out}")


def _shoot_form(args) -> int:
    """The form after a refused connection, with two rooms in "Rooms on your
    network" (real servers, discovery on loopback and a port of its own)
    and the doctor's answer."""
    import socket

    from chatgui.app.controller import ConnectValues
    from chatgui.app.settings import Settings
    from chatgui.tk.window import ChatWindow
    from server.app import ChatServer
    from server.config import ServerConfig
    with socket.socket() as s:          # a port where nothing listens
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        discovery_port = s.getsockname()[1]
    os.environ.update(NATTER_DISCOVERY_SCOPE="local", NATTER_DISCOVERY_PORT=str(discovery_port))
    rooms = [ChatServer(ServerConfig(host="127.0.0.1", port=0, name=name, password=password,
                                     db=os.path.join(os.environ["NATTER_HOME"], f"room{i}.db"),
                                     discovery_port=discovery_port)).start()
             for i, (name, password) in enumerate((("carol's room", None), ("Maths 4B", "x")))]
    try:
        w = ChatWindow(Settings(theme=args.theme, font_size=args.font_size, geometry=args.size,
                                recent=[f"127.0.0.1:{port}"]))
        w.start(ConnectValues(host="127.0.0.1", port=str(port), nick="alice"))
        pump(w.root, until=lambda: w.form.error_label.cget("text") and len(w.form.lan.tree.get_children()) == 2
             and w.form.lan.doctor_label.cget("text") and not w.form.lan.doctor_busy)
        pump(w.root, 0.3)
        _capture(w.root, args.out)
        w.quit()
        w.controller.shutdown(timeout=5)
    finally:
        for room in rooms:
            room.shutdown()
    return 0


def _shoot(args) -> int:
    if args.form:
        return _shoot_form(args)
    from chatgui.app.controller import ConnectValues
    from chatgui.app.settings import Settings
    from chatgui.tk.window import ChatWindow
    from server.app import ChatServer
    from server.config import ServerConfig

    server = ChatServer(ServerConfig(host="127.0.0.1", port=0, rate_limit=0)).start()
    people = {}

    def person(nick):
        c = LineClient(server.port)
        c.hello(nick)
        people[nick] = c
        return c

    def say(nick, text):
        people[nick].send({"type": "say", "text": text, "ref": "shot"})
        while people[nick].recv_type("message").get("ref") != "shot":
            pass

    try:
        # Before alice arrives: the welcome's history.
        person("carol"), person("bob"), person("dave")
        say("carol", "morning all ☕")
        say("bob", "Morning! The build on main is green again.")
        say("dave", "Nice. Release notes draft: https://natter.example/notes/0.2")

        w = ChatWindow(Settings(theme=args.theme, font_size=args.font_size, geometry=args.size))
        w.start(ConnectValues(host="127.0.0.1", port=str(server.port), nick="alice"))
        root = w.root
        pump(root, until=lambda: w.controller.connected)
        pump(root, 0.3)

        say("bob", "alice, could you look at the packaging PR before lunch? \U0001F64F")
        pump(root, 0.2)
        w.chat.set_input("On it — reading it now.")
        w.chat._on_send()
        pump(root, until=lambda: not w.controller.pending)
        people["carol"].send({"type": "dm", "to": "alice", "text": "psst: there is cake in the kitchen at 3 \U0001F382"})
        people["carol"].recv_type("dm")
        person("erin")
        pump(root, 0.2)
        say("dave", "/me waves at erin")
        say("erin", "Hi everyone! First day here \U0001F600 Greetings from the Lyon team \U0001F1EB\U0001F1F7 "
                    "\U0001F469\u200d\U0001F469\u200d\U0001F467")
        pump(root, 0.2)
        w.chat.set_input("Welcome erin! Ask us anything. \U0001F44B")
        w.chat.input.focus_force()
        pump(root, 0.5)
        root.update_idletasks()
        root.update()

        _capture(root, args.out)
        w.quit()
        w.controller.shutdown(timeout=5)
    finally:
        for c in people.values():
            c.close()
        server.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
