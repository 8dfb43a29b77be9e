"""Helpers for the packaging tests and measurements: build once, run the
packaged programs, a private virtual display, and X11 pokes without a window
manager (xdotool for keys, a WM_DELETE_WINDOW message through libX11).

Every wait has a deadline. Nothing here talks to anything but 127.0.0.1 and
the test's own Xvfb.
"""
from __future__ import annotations

import contextlib
import ctypes
import ctypes.util
import fcntl
import os
import re
import selectors
import subprocess
import sys
import time

from tests import xvfb as virtual_display

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DIST = os.path.join(ROOT, "dist")
BUILD_INFO = os.path.join(DIST, "BUILD-INFO.txt")
sys.path.insert(0, os.path.join(ROOT, "packaging"))
import natter_specinfo  # noqa: E402

APP = natter_specinfo.load()
CLIENT_EXE = os.path.join(DIST, APP.client_name, APP.client_name)
SERVER_EXE = os.path.join(DIST, APP.server_name, APP.server_name)


def tarball_path() -> str:
    arch = os.uname().machine
    return os.path.join(DIST, f"{APP.name}-{APP.version}-linux-{arch}.tar.gz")


# --- building ----------------------------------------------------------------

SOURCE_DIRS = ("server", "chatgui", "packaging")
SOURCE_FILES = ("pyproject.toml", "scripts/build.sh", "scripts/_env.sh")


def newest_source_mtime() -> float:
    newest = 0.0
    for d in SOURCE_DIRS:
        for dirpath, dirnames, filenames in os.walk(os.path.join(ROOT, d)):
            dirnames[:] = [n for n in dirnames if n != "__pycache__"]
            newest = max(newest, os.stat(dirpath).st_mtime)     # a file deleted or renamed
            for n in filenames:
                newest = max(newest, os.stat(os.path.join(dirpath, n)).st_mtime)
    for f in SOURCE_FILES:
        newest = max(newest, os.stat(os.path.join(ROOT, f)).st_mtime)
    return newest


def build_is_fresh() -> bool:
    """dist/ is reused only when its stamp is newer than every source file."""
    outputs = (CLIENT_EXE, SERVER_EXE, tarball_path(), BUILD_INFO)
    if not all(os.path.exists(p) for p in outputs):
        return False
    return os.stat(BUILD_INFO).st_mtime > newest_source_mtime()


def ensure_built(timeout: float = 360) -> str:
    """Run scripts/build.sh unless dist/ is fresh; return how ("reused"/"built in Ns").

    A lock file keeps two test runs in one checkout from building at once.
    """
    os.makedirs(os.path.join(ROOT, "build"), exist_ok=True)
    with open(os.path.join(ROOT, "build", ".natter-build.lock"), "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if build_is_fresh():
            return "reused"
        env = dict(os.environ, NATTER_BUILD_EXTRAS="test,package")
        t0 = time.monotonic()
        proc = subprocess.run(["bash", os.path.join(ROOT, "scripts", "build.sh")], cwd=ROOT, env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, timeout=timeout)
        if proc.returncode != 0:
            raise AssertionError(f"scripts/build.sh failed ({proc.returncode}):\n{proc.stdout[-6000:]}")
        if not build_is_fresh():
            raise AssertionError(f"scripts/build.sh left no fresh dist/:\n{proc.stdout[-3000:]}")
        return f"built in {time.monotonic() - t0:.1f}s"


# --- processes ---------------------------------------------------------------

def read_line(stream, timeout: float) -> str:
    """One line from a child's pipe (binary), or TimeoutError/EOFError."""
    fd = stream.fileno()
    buf = b""
    deadline = time.monotonic() + timeout
    with selectors.DefaultSelector() as sel:
        sel.register(fd, selectors.EVENT_READ)
        while b"\n" not in buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise TimeoutError(f"no line in {timeout}s (so far {buf!r})")
            if not sel.select(left):
                continue
            chunk = os.read(fd, 4096)
            if not chunk:
                raise EOFError(f"pipe closed (so far {buf!r})")
            buf += chunk
    return buf.split(b"\n", 1)[0].decode("utf-8", "replace")


LISTEN_RE = re.compile(r"listening on \[?([0-9.:a-f]+?)\]?:(\d+)\b")


def start_packaged_server(tmp_dir: str, *args: str, exe: str = SERVER_EXE, env: dict | None = None):
    """Start the packaged server on a free loopback port; return (proc, port, seconds to listen).

    Its first stdout line says where it listens; stderr (the log) goes to
    tmp_dir/server.log.
    """
    log = open(os.path.join(tmp_dir, "server.log"), "wb")
    t0 = time.monotonic()
    proc = subprocess.Popen([exe, "--host", "127.0.0.1", "--port", "0",
                             "--db", os.path.join(tmp_dir, "history.db"), *args],
                            stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=log, env=env)
    log.close()
    try:
        line = read_line(proc.stdout, 30)
        m = LISTEN_RE.search(line)
        assert m, f"unexpected first line from the server: {line!r}"
        return proc, int(m.group(2)), time.monotonic() - t0
    except BaseException:
        stop(proc)
        raise


def stop(proc: subprocess.Popen, timeout: float = 10) -> int:
    """Terminate (if still running) and reap; returns the exit code."""
    if proc.poll() is None:
        proc.terminate()
        try:
            return proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
    return proc.wait(timeout)


# --- virtual display ------------------------------------------------------------

@contextlib.contextmanager
def xvfb(timeout: float = 15):
    """A private Xvfb (tests/xvfb.py); yields its DISPLAY string, then stops it."""
    proc, display = virtual_display.start(timeout=timeout)
    try:
        yield display
    finally:
        virtual_display.stop(proc)


def xdotool(display: str, *args: str, timeout: float = 15) -> str:
    out = subprocess.run(["xdotool", *args], env=dict(os.environ, DISPLAY=display), stdin=subprocess.DEVNULL,
                         capture_output=True, text=True, timeout=timeout)
    if out.returncode != 0:
        raise AssertionError(f"xdotool {' '.join(args)} failed ({out.returncode}): {out.stderr.strip()}")
    return out.stdout


def wait_for_window(display: str, name_regex: str, timeout: float = 30) -> int:
    """The first visible top-level window whose title matches.

    Tk sets no _NET_WM_PID, so `search --pid` finds nothing; the display is
    private to the test, so a title is enough. Polled every 20 ms rather
    than `search --sync`, which sleeps half a second between tries (and so
    would blur the start-up times packaging/measure.py reports).
    """
    env = dict(os.environ, DISPLAY=display)
    deadline = time.monotonic() + timeout
    while True:
        out = subprocess.run(["xdotool", "search", "--onlyvisible", "--name", name_regex], env=env,
                             stdin=subprocess.DEVNULL, capture_output=True, text=True, timeout=10)
        if out.returncode == 0 and out.stdout.split():
            return int(out.stdout.split()[0])
        if time.monotonic() > deadline:
            raise AssertionError(f"no window named /{name_regex}/ in {timeout}s; windows: {window_names(display)}")
        time.sleep(0.02)


def window_names(display: str) -> list[str]:
    """Titles of all visible named windows (for failure messages)."""
    try:
        ids = xdotool(display, "search", "--onlyvisible", "--name", ".", timeout=5).split()
        return [xdotool(display, "getwindowname", i, timeout=5).strip() for i in ids]
    except (AssertionError, subprocess.TimeoutExpired) as e:
        return [f"<{e}>"]


def type_into(display: str, window: int, text: str) -> None:
    """Focus the window (no window manager: windowfocus, not windowactivate), type, press Return."""
    xdotool(display, "windowfocus", "--sync", str(window))
    xdotool(display, "type", "--delay", "5", text)
    xdotool(display, "key", "Return")


class _XClientMessageEvent(ctypes.Structure):
    _fields_ = [("type", ctypes.c_int), ("serial", ctypes.c_ulong), ("send_event", ctypes.c_int),
                ("display", ctypes.c_void_p), ("window", ctypes.c_ulong), ("message_type", ctypes.c_ulong),
                ("format", ctypes.c_int), ("data", ctypes.c_long * 5)]


class _XEvent(ctypes.Union):
    _fields_ = [("xclient", _XClientMessageEvent), ("pad", ctypes.c_long * 24)]


def close_window(display: str, window: int) -> None:
    """Do what a window manager does for the title bar's close button:
    send WM_PROTOCOLS / WM_DELETE_WINDOW to the window's client.

    xdotool has no such command (its windowkill is XKillClient, not a close).
    """
    path = ctypes.util.find_library("X11")
    assert path, "libX11 not found"
    x = ctypes.CDLL(path)
    x.XOpenDisplay.restype = ctypes.c_void_p
    x.XOpenDisplay.argtypes = [ctypes.c_char_p]
    x.XInternAtom.restype = ctypes.c_ulong
    x.XInternAtom.argtypes = [ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int]
    x.XSendEvent.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_int, ctypes.c_long, ctypes.POINTER(_XEvent)]
    x.XFlush.argtypes = [ctypes.c_void_p]
    x.XCloseDisplay.argtypes = [ctypes.c_void_p]
    dpy = x.XOpenDisplay(display.encode())
    assert dpy, f"cannot open display {display}"
    try:
        ev = _XEvent()
        ev.xclient.type = 33                     # ClientMessage
        ev.xclient.window = window
        ev.xclient.message_type = x.XInternAtom(dpy, b"WM_PROTOCOLS", 0)
        ev.xclient.format = 32
        ev.xclient.data[0] = x.XInternAtom(dpy, b"WM_DELETE_WINDOW", 0)
        ev.xclient.data[1] = 0                   # CurrentTime
        assert x.XSendEvent(dpy, window, 0, 0, ctypes.byref(ev)), "XSendEvent failed"
        x.XFlush(dpy)
    finally:
        x.XCloseDisplay(dpy)


class _XImage(ctypes.Structure):
    _fields_ = [("width", ctypes.c_int), ("height", ctypes.c_int), ("xoffset", ctypes.c_int),
                ("format", ctypes.c_int), ("data", ctypes.c_void_p), ("byte_order", ctypes.c_int),
                ("bitmap_unit", ctypes.c_int), ("bitmap_bit_order", ctypes.c_int), ("bitmap_pad", ctypes.c_int),
                ("depth", ctypes.c_int), ("bytes_per_line", ctypes.c_int), ("bits_per_pixel", ctypes.c_int),
                ("red_mask", ctypes.c_ulong), ("green_mask", ctypes.c_ulong), ("blue_mask", ctypes.c_ulong)]


def count_colour(display: str, window: int, rgb: tuple[int, int, int]) -> int:
    """How many pixels of the window have exactly this colour (XGetImage of
    the whole window; Xvfb's 24-bit TrueColor screen, 32 bits a pixel)."""
    path = ctypes.util.find_library("X11")
    assert path, "libX11 not found"
    x = ctypes.CDLL(path)
    x.XOpenDisplay.restype = ctypes.c_void_p
    x.XOpenDisplay.argtypes = [ctypes.c_char_p]
    x.XGetGeometry.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.POINTER(ctypes.c_ulong)] + \
        [ctypes.POINTER(ctypes.c_int)] * 2 + [ctypes.POINTER(ctypes.c_uint)] * 4
    x.XGetImage.restype = ctypes.POINTER(_XImage)
    x.XGetImage.argtypes = [ctypes.c_void_p, ctypes.c_ulong, ctypes.c_int, ctypes.c_int, ctypes.c_uint,
                            ctypes.c_uint, ctypes.c_ulong, ctypes.c_int]
    x.XFree.argtypes = [ctypes.c_void_p]
    x.XCloseDisplay.argtypes = [ctypes.c_void_p]
    dpy = x.XOpenDisplay(display.encode())
    assert dpy, f"cannot open display {display}"
    try:
        root, xy = ctypes.c_ulong(), [ctypes.c_int() for _ in range(2)]
        w, h, border, depth = (ctypes.c_uint() for _ in range(4))
        assert x.XGetGeometry(dpy, window, ctypes.byref(root), *map(ctypes.byref, xy), ctypes.byref(w),
                              ctypes.byref(h), ctypes.byref(border), ctypes.byref(depth))
        img = x.XGetImage(dpy, window, 0, 0, w.value, h.value, 0xFFFFFFFF, 2)     # AllPlanes, ZPixmap
        assert img, "XGetImage failed"
        try:
            im = img.contents
            assert im.bits_per_pixel == 32, im.bits_per_pixel
            data = ctypes.string_at(im.data, im.bytes_per_line * im.height)
            r, g, b = rgb
            # A pixel is B G R x (LSBFirst) or x R G B: find the three bytes
            # where a pixel starts them (the colour is rare, so this is quick).
            pattern, at = (bytes((b, g, r)), 0) if im.byte_order == 0 else (bytes((r, g, b)), 1)
            return sum(1 for m in re.finditer(b"(?=" + re.escape(pattern) + b")", data) if m.start() % 4 == at)
        finally:
            x.XFree(im.data)
            x.XFree(img)
    finally:
        x.XCloseDisplay(dpy)


# --- desktop entries ------------------------------------------------------------

def desktop_exec_argv(value: str, desktop_file: str) -> list[str]:
    """Split an Exec= value as a launcher does (Desktop Entry spec 1.5): the
    string escapes first (``\\\\`` is one backslash), then the quoting rule
    (inside double quotes a backslash escapes ``"`` ` ``$`` and ``\\``);
    ``%k`` is the entry's own path, other field codes are dropped."""
    value = value.replace("\\\\", "\\")
    args: list[str] = []
    cur, quoted, started, i = "", False, False, 0
    while i < len(value):
        c = value[i]
        if quoted:
            if c == "\\" and i + 1 < len(value) and value[i + 1] in '"`$\\':
                cur += value[i + 1]
                i += 1
            elif c == '"':
                quoted = False
            else:
                cur += c
        elif c == '"':
            quoted = started = True
        elif c == " ":
            if cur or started:
                args.append(cur)
            cur, started = "", False
        else:
            cur += c
        i += 1
    if cur or started:
        args.append(cur)
    out = []
    for a in args:
        if a == "%k":
            out.append(desktop_file)
        elif not (len(a) == 2 and a[0] == "%"):
            out.append(a)
    return out


# --- sockets -------------------------------------------------------------------

def free_port() -> int:
    """A loopback port free right now (for a program that cannot take port 0)."""
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def connect_when_listening(port: int, timeout: float):
    """A LineClient to 127.0.0.1:port, retrying until something listens there."""
    from tests.netclient import LineClient
    deadline = time.monotonic() + timeout
    while True:
        try:
            return LineClient(port)
        except ConnectionRefusedError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)
