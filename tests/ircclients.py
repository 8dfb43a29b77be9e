"""Real IRC clients the tests drive: WeeChat headless and irssi in tmux.

Each client gets its own temporary home (and HOME), so nothing of the
machine's own configuration is read or written, and each is started and
always stopped by the test (use them as context managers): a polite quit
first, then the process (or the tmux server the harness started, on its
own socket) is ended by its pid. Every wait is a condition wait with a
timeout (:func:`tests.servertools.wait_until`), never a fixed sleep.

- :class:`WeeChat`: ``weechat-headless`` with only the irc, fifo and logger
  plugins. It types through its FIFO (``*/command`` or ``buffer *text``)
  and is read through the logger's files, flushed at once.
- :class:`Irssi`: ``irssi`` needs a terminal, so it runs in a tmux session
  on a socket in its home; it types with ``send-keys`` and is read with
  ``capture-pane``.

:func:`require` skips the test, saying why, when a program is missing.
The Debian packages are weechat-headless, irssi and tmux
(scripts/test.sh installs them).

Thread: the test's. The clients are separate processes.
"""
from __future__ import annotations

import glob
import os
import shutil
import signal
import subprocess
from pathlib import Path

import pytest

from tests.servertools import wait_until

START_TIMEOUT = 20.0     # a client's start on a loaded 2-core machine
WAIT_TIMEOUT = 15.0      # a line to appear, a message to arrive
STOP_TIMEOUT = 5.0       # a polite quit, before the process is ended


def require(*binaries: str) -> None:
    """Skip the calling test, with the reason, if a program is not installed."""
    missing = [b for b in binaries if shutil.which(b) is None]
    if missing:
        pytest.skip(f"{', '.join(missing)} not installed (Debian packages: weechat-headless, irssi, tmux; "
                    "scripts/test.sh installs them)")


def _env(home: Path) -> dict:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TMUX", "WEECHAT", "IRSSI"))}
    env.update(HOME=str(home), TERM="xterm-256color", LANG="C.UTF-8", LC_ALL="C.UTF-8",
               XDG_RUNTIME_DIR=str(home), TMUX_TMPDIR=str(home))
    return env


def _end(proc: subprocess.Popen) -> None:
    """End a process the harness started (its pid only) and reap it."""
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(STOP_TIMEOUT)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(STOP_TIMEOUT)


class WeeChat:
    """WeeChat headless connected to ``host:port`` as ``nick`` (server name
    ``test``, no TLS), logging in with SASL PLAIN when ``sasl`` is given
    (account, password; it disconnects if that fails). :meth:`send` types
    a command or text; :meth:`log` reads what a buffer showed."""

    SERVER = "test"

    def __init__(self, home: Path, host: str, port: int, nick: str, sasl: tuple | None = None):
        self.home = Path(home)
        self.host, self.port, self.nick = host, port, nick
        # The setup is one -r argument of ';'-separated commands, and WeeChat
        # evaluates ${...} in these options: keep such characters out.
        if sasl is not None and any(ch in word for word in sasl for ch in "; ${}\n"):
            raise ValueError("a SASL account or password for this harness has no ';', space, '$', '{' or '}'")
        self.sasl = sasl
        self.proc: subprocess.Popen | None = None
        self.fifo: str | None = None

    def __enter__(self) -> "WeeChat":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def start(self) -> "WeeChat":
        require("weechat-headless")
        self.home.mkdir(parents=True, exist_ok=True)
        setup = ";".join([
            "/set logger.file.flush_delay 0",          # the logs are how the test reads: no delay
            "/set logger.file.auto_log on",
            "/set logger.level.irc 9",
            "/set logger.file.time_format %H:%M:%S",
            "/set irc.look.temporary_servers on",
            f"/server add {self.SERVER} {self.host}/{self.port} -notls",
            f"/set irc.server.{self.SERVER}.nicks {self.nick}",
            f"/set irc.server.{self.SERVER}.username {self.nick}",
            f"/set irc.server.{self.SERVER}.realname {self.nick}",
            f"/set irc.server.{self.SERVER}.autoreconnect off",
            f"/set irc.server.{self.SERVER}.anti_flood_prio_high 0",   # no 2 s queue between lines
            f"/set irc.server.{self.SERVER}.anti_flood_prio_low 0",
            *self._sasl_setup(),
            f"/connect {self.SERVER}",
        ])
        self._out = open(self.home / "stdout.txt", "wb")
        self.proc = subprocess.Popen(
            ["weechat-headless", "--dir", str(self.home), "-P", "irc,fifo,logger", "-s", "--stdout",
             "-r", setup],
            stdin=subprocess.DEVNULL, stdout=self._out, stderr=subprocess.STDOUT, env=_env(self.home))
        self.fifo = wait_until(self._find_fifo, START_TIMEOUT, 0.05, "WeeChat's FIFO")
        return self

    def _sasl_setup(self) -> list:
        if self.sasl is None:
            return []
        account, password = self.sasl
        return [f"/set irc.server.{self.SERVER}.sasl_mechanism plain",
                f"/set irc.server.{self.SERVER}.sasl_username {account}",
                f"/set irc.server.{self.SERVER}.sasl_password {password}",
                f"/set irc.server.{self.SERVER}.sasl_fail disconnect"]

    def _find_fifo(self) -> str | None:
        if self.proc.poll() is not None:
            raise AssertionError(f"weechat-headless exited with {self.proc.returncode}: {self.output()[-2000:]}")
        found = glob.glob(str(self.home / "weechat_fifo*"))
        return found[0] if found else None

    def output(self) -> str:
        try:
            return (self.home / "stdout.txt").read_text("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def send(self, text: str, buffer: str | None = None) -> None:
        """Type ``text`` (a /command or a message) in ``buffer`` (a full
        name such as ``irc.test.#rust``; None: the current buffer)."""
        if "\n" in text:
            raise ValueError("one line at a time")
        line = f"{buffer} *{text}\n" if buffer else f"*{text}\n"
        # O_NONBLOCK: fails at once if WeeChat is not reading its FIFO.
        fd = os.open(self.fifo, os.O_WRONLY | os.O_NONBLOCK)
        try:
            os.write(fd, line.encode("utf-8"))
        finally:
            os.close(fd)

    def say(self, channel: str, text: str) -> None:
        self.send(text, f"irc.{self.SERVER}.{channel}")

    def log(self, buffer: str) -> str:
        """What the logger wrote for a buffer (``#rust``, ``server``, or a
        nick for a private buffer), "" before it has a file."""
        name = f"irc.{self.SERVER}.{buffer}" if buffer != "server" else f"irc.server.{self.SERVER}"
        path = self.home / "logs" / f"{name.lower()}.weechatlog"
        try:
            return path.read_text("utf-8", "replace")
        except FileNotFoundError:
            return ""

    def wait_log(self, buffer: str, text: str, timeout: float = WAIT_TIMEOUT) -> str:
        def seen():
            if self.proc.poll() is not None:
                raise AssertionError(f"weechat-headless exited: {self.output()[-2000:]}")
            log = self.log(buffer)
            return log if text in log else None
        try:
            return wait_until(seen, timeout, 0.05, f"{text!r} in WeeChat's {buffer} log")
        except AssertionError:
            raise AssertionError(f"{text!r} not in WeeChat's {buffer} log within {timeout} s; log:\n"
                                 f"{self.log(buffer)[-2000:]}\nserver log:\n{self.log('server')[-2000:]}") from None

    def stop(self) -> None:
        if self.proc is None:
            return
        if self.proc.poll() is None and self.fifo:
            try:
                self.send("/quit")
                self.proc.wait(STOP_TIMEOUT)
            except (OSError, subprocess.TimeoutExpired):
                pass
        _end(self.proc)
        self._out.close()
        self.proc = None


class Irssi:
    """irssi in a tmux session of its own, connected to ``host:port`` as
    ``nick``. :meth:`type` sends keys and Enter; :meth:`screen` reads the
    pane (with its scrollback)."""

    def __init__(self, home: Path, host: str, port: int, nick: str):
        self.home = Path(home)
        self.host, self.port, self.nick = host, port, nick
        self.socket = str(self.home / "tmux.sock")
        self.server_pid: int | None = None

    def __enter__(self) -> "Irssi":
        self.start()
        return self

    def __exit__(self, *exc) -> None:
        self.stop()

    def _tmux(self, *args: str, check: bool = True) -> str:
        done = subprocess.run(["tmux", "-S", self.socket, "-f", "/dev/null", *args], env=_env(self.home),
                              capture_output=True, text=True, timeout=STOP_TIMEOUT)
        if check and done.returncode != 0:
            raise AssertionError(f"tmux {' '.join(args[:2])} failed: {done.stderr.strip()}")
        return done.stdout

    def start(self) -> "Irssi":
        require("irssi", "tmux")
        (self.home / "irssi").mkdir(parents=True, exist_ok=True)
        # An empty config of our own: no default networks, nothing autoconnects.
        (self.home / "irssi" / "config").write_text("")
        cmd = f"irssi --home={self.home / 'irssi'} -n {self.nick}"
        self._tmux("new-session", "-d", "-s", "irssi", "-x", "160", "-y", "50", cmd)
        self.server_pid = int(self._tmux("display-message", "-p", "-t", "irssi", "#{pid}").strip())
        wait_until(lambda: "Irssi" in self.screen(), START_TIMEOUT, 0.05, "irssi's screen")
        # No flood-protection queue (2.2 s a line by default): typed lines go out at once.
        self.type("/set cmd_queue_speed 0")
        self.type("/set cmds_max_at_once 1000")
        self.type(f"/set user_name {self.nick}")
        self.type(f"/set real_name {self.nick}")
        self.type(f"/connect {self.host} {self.port}")
        return self

    def screen(self) -> str:
        """The pane as text, scrollback included."""
        return self._tmux("capture-pane", "-p", "-J", "-S", "-5000", "-t", "irssi")

    def type(self, text: str) -> None:
        """Type ``text`` (literally) and Enter."""
        self._tmux("send-keys", "-t", "irssi", "-l", text)
        self._tmux("send-keys", "-t", "irssi", "Enter")

    def wait_screen(self, text: str, timeout: float = WAIT_TIMEOUT) -> str:
        try:
            return wait_until(lambda: (s := self.screen()) and text in s and s, timeout, 0.05,
                              f"{text!r} on irssi's screen")
        except AssertionError:
            raise AssertionError(f"{text!r} not on irssi's screen within {timeout} s; screen:\n"
                                 f"{self.screen()[-3000:]}") from None

    def stop(self) -> None:
        if self.server_pid is None:
            return
        try:
            self.type("/quit")
            wait_until(lambda: not self._alive(), STOP_TIMEOUT, 0.05, "irssi to quit")
        except AssertionError:
            pass
        # The tmux server of this harness's own socket, then by its pid (never a broad kill).
        if self._alive():
            self._tmux("kill-server", check=False)
            try:
                wait_until(lambda: not self._alive(), STOP_TIMEOUT, 0.05, "tmux to end")
            except AssertionError:
                pass
        if self._alive():
            os.kill(self.server_pid, signal.SIGTERM)
            try:
                wait_until(lambda: not self._alive(), STOP_TIMEOUT, 0.05, "tmux to end")
            except AssertionError:
                os.kill(self.server_pid, signal.SIGKILL)
        self.server_pid = None

    def _alive(self) -> bool:
        try:
            os.kill(self.server_pid, 0)
        except ProcessLookupError:
            return False
        # A zombie is not alive: tmux's parent (init) reaps it, not us.
        try:
            with open(f"/proc/{self.server_pid}/stat") as f:
                return f.read().split(") ", 1)[1][:1] != "Z"
        except (FileNotFoundError, IndexError):
            return False
