"""Save the screenshots of the moderation window for docs/client.md:

    .venv/bin/python -m tests.gui.shoot_moderation   # docs/moderation.png, room-settings.png, settings.png

A teacher's window (the real window, controller and network client) joined
to a server this script plays on a loopback port, as tests/gui/
test_moderation.py does: roles in the people list, an edited and a removed
message, a question waiting with Release, the person menu open on a
student; then the room settings dialog and the settings dialog with this
computer's fingerprint. It starts its own Xvfb and
captures the screen with ImageMagick's ``import`` (the menu is a window of
its own, so the screen is captured and cut to the chat window). Nothing of
the user's settings is touched (NATTER_HOME is a temporary folder).

Not collected by pytest (no ``test_`` prefix). Thread: the main thread is
the Tk thread; the played server is driven from it between pumps.
"""
from __future__ import annotations

import os
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def pump(root, until, what: str) -> None:
    deadline = time.monotonic() + 20
    while not until():
        root.update()
        if time.monotonic() > deadline:
            raise RuntimeError(f"timed out waiting for {what}")
        time.sleep(0.01)


def capture(root, widget, out: str) -> None:
    """The screen, cut to ``widget``'s toplevel (menus are windows of their own)."""
    top = widget.winfo_toplevel()
    root.update()
    time.sleep(0.3)
    root.update()
    geometry = f"{top.winfo_width()}x{top.winfo_height()}+{top.winfo_rootx()}+{top.winfo_rooty()}"
    subprocess.run(["import", "-window", "root", "-crop", geometry, "+repage", out], check=True, timeout=30)
    print("saved", out)


def main() -> int:
    os.environ["NATTER_HOME"] = tempfile.mkdtemp(prefix="natter-shot-")
    sys.path.insert(0, ROOT)
    from tests import xvfb
    proc, display = xvfb.start("1400x900x24")
    os.environ["DISPLAY"] = display
    try:
        return shoot()
    finally:
        xvfb.stop(proc)


def shoot() -> int:
    from chatgui.app.settings import Settings
    from chatgui.app.view import ConnectValues
    from chatgui.tk.window import ChatWindow
    from server import protocol
    from tests.gui.test_moderation import room_frame, welcome
    from tests.played import PlayedServer

    srv = PlayedServer()
    w = ChatWindow(Settings(geometry="1000x620"))
    w.start(ConnectValues(host="127.0.0.1", port=str(srv.port), nick="ms_lee"))
    root = w.root
    try:
        conn = srv.accept()
        conn.recv_type("hello")
        users = ["ms_lee", "sam", "ada", "noor", "tom"]
        conn.send(welcome("ms_lee", users))
        frame = room_frame(users, "owner", {"ms_lee": "owner", "sam": "op", "ada": "voice"}, questions=True)
        conn.send(frame)
        conn.send(protocol.caught_up_frame(0))
        pump(root, lambda: w.controller.in_chat and sorted(w.chat.users) == sorted(users), "the room")
        now = time.time()

        def say(i, who, text, **extra):
            conn.send({**protocol.message_frame(i, now - 300 + i, who, text, room="maths"), **extra})

        say(1, "ms_lee", "Good morning! Today: fractions. Questions go to me first, I'll answer them here.")
        say(2, "ada", "I put the worksheet in the shared folder")
        say(3, "tom", "this is boring lol")
        say(4, "noor", "what is 3/4 + 1/4?", question=True)
        say(5, "tom", "why do we need fractions anyway", question=True)
        say(6, "ada", "page 12 has the examples too")
        conn.send({"type": "deleted", "room": "maths", "id": 3, "by": "ms_lee", "seq": 7})
        conn.send({"type": "edited", "room": "maths", "id": 6, "text": "page 14 has the examples too",
                   "edited_ts": now, "seq": 8})
        pump(root, lambda: w.chat.questions_panel.winfo_ismapped()
             and "page 14" in w.chat.text.get("1.0", "end"), "the questions")
        tree = w.chat.people
        root.update()
        x, y, _w, h = w.chat.person_bbox("tom")
        tree.event_generate("<Button-3>", x=x + 4, y=y + h // 2, rootx=tree.winfo_rootx() + x + 4,
                            rooty=tree.winfo_rooty() + y + h // 2)
        capture(root, w.chat, os.path.join(ROOT, "docs", "moderation.png"))
        w.chat.menu.close()
        w.chat.room_settings_button.invoke()
        root.update()
        capture(root, w.room_settings.top, os.path.join(ROOT, "docs", "room-settings.png"))
        w.room_settings.close()
        w.chat.settings_button.invoke()
        root.update()
        capture(root, w.settings_dialog.top, os.path.join(ROOT, "docs", "settings.png"))
        w.settings_dialog.close()
    finally:
        w.quit()
        w.controller.shutdown(timeout=5.0)
        srv.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
