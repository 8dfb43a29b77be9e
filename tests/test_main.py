"""The entry point: argument handling, routing to the terminal mode, and
a clear failure when there is no display."""
from __future__ import annotations

import os
import subprocess
import sys

import pytest

from chatgui import main as main_mod

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def test_help_lists_the_options(capsys):
    with pytest.raises(SystemExit) as e:
        main_mod.main(["--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    for option in ("--host", "--port", "--nick", "--password", "--cli", "--theme", "--host-room"):
        assert option in out


def test_a_bad_option_exits_2(capsys):
    with pytest.raises(SystemExit) as e:
        main_mod.main(["--port", "not-a-number"])
    assert e.value.code == 2


def test_cli_routes_to_the_terminal_mode(server, connect, tmp_path):
    watcher = connect("watcher")
    env = dict(os.environ, NATTER_HOME=str(tmp_path / "home"))
    env.pop("DISPLAY", None)
    out = subprocess.run([sys.executable, "-m", "chatgui", "--cli", "--host", "127.0.0.1", "--port",
                          str(server.port), "--nick", "ci"], input="build finished\n", cwd=ROOT, env=env,
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0, out.stderr
    frame = watcher.recv_type("message")
    assert (frame["from"], frame["text"]) == ("ci", "build finished")


def test_without_a_display_it_says_so_and_exits_1(tmp_path):
    env = dict(os.environ, NATTER_HOME=str(tmp_path / "home"))
    env.pop("DISPLAY", None)
    env.pop("WAYLAND_DISPLAY", None)
    out = subprocess.run([sys.executable, "-m", "chatgui", "--host", "127.0.0.1", "--nick", "x"], cwd=ROOT,
                         env=env, capture_output=True, text=True, timeout=30)
    assert out.returncode == 1
    assert "cannot open a window" in out.stderr and "--cli" in out.stderr
    assert "Traceback" not in out.stderr


def test_opening_a_link_does_not_wait_for_the_browser(tmp_path):
    """$BROWSER makes webbrowser wait for the browser to exit; the window
    must not: open_in_browser hands it to a thread. The browser here exits
    only once the caller has got control back, so a waiting
    open_in_browser would never see it exit ("stuck")."""
    seen, released, verdict = tmp_path / "opened.txt", tmp_path / "released", tmp_path / "verdict"
    browser = tmp_path / "browser.sh"
    browser.write_text(f'#!/bin/sh\necho "$1" > {seen}\n'
                       f'for i in $(seq 400); do [ -e {released} ] && echo ok > {verdict} && exit 0; sleep 0.05; done\n'
                       f'echo stuck > {verdict}\n')
    browser.chmod(0o755)
    code = ("import threading; from chatgui.app.controller import open_in_browser\n"
            "open_in_browser('https://example.org/x')\n"
            f"open({str(released)!r}, 'w').close()\n"
            "[th.join(30) for th in threading.enumerate() if th.name == 'open-link']\n")
    env = dict(os.environ, BROWSER=f"{browser} %s")
    out = subprocess.run([sys.executable, "-c", code], cwd=ROOT, env=env, capture_output=True, text=True,
                         timeout=45)
    assert out.returncode == 0, out.stderr
    assert verdict.read_text().strip() == "ok", "open_in_browser waited for the browser to exit"
    assert seen.read_text().strip() == "https://example.org/x"
