#!/usr/bin/env python3
"""How responsive is the chat window while messages pour in?

    python3 bench/gui_pump.py                     # idle, then 500 msg/s, then 2000 msg/s
    python3 bench/gui_pump.py --rates 500 --seconds 20
    python3 bench/gui_pump.py --hosting           # while a hosted room stops or makes its certificate
    python3 bench/gui_pump.py --scrollback        # 100 000 in the history, 1000 pages back at 500 msg/s

For each phase it runs, all for real: Xvfb (started here), the server as
its own process (``python -m server --rate-limit 0``), a load generator as
another process that says ``--rate`` messages a second (a tenth mention
the watcher, a twentieth carry a link), and the real window in this
process, joined as "watcher" through the real network client.

It reports, per phase:

- tick gap: the time between two starts of the pump's tick (the ``after``
  poll that carries events into Tk). Idle, this is the poll interval; under
  load, how long one bounded batch plus the redraw took.
- timer lateness: an independent ``after(10)`` probe measures how late Tk
  runs a timer, which is what a key press or a click would wait.
- shown: messages that reached the conversation, and the most events ever
  waiting in the queue (bounded batches keep this small when Tk keeps up).

With ``--hosting`` it measures the tick gap instead while the window's
hosted room is replaced by another (the old one waits ``CLOSE_GRACE`` for
``--lingering`` clients that neither read nor close), and while a first
encrypted room makes its certificate with the ``openssl`` command (as on a
machine without the ``cryptography`` package).

With ``--scrollback`` (issue 16) the room's history first gets
``--history`` messages (written through the server's SQLite store by a
child process, before the server starts), the window joins, and then,
while the load generator says 500 msg/s (``--rates``' first), the view is
driven to the top ``--pages`` times (each time waiting for the older page
to come), then the "N new messages ↓" button takes it back to the live
end. It reports the tick gap and timer lateness per phase, and the window
process's peak resident memory (``VmHWM``; the child that wrote the history
is another process).

Thread: the main thread is the Tk thread; the network client has its own.
"""
from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)


# -- the load generator (a separate process) ----------------------------------


def sender(port: int, rate: float, seconds: float) -> int:
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(json.dumps({"type": "hello", "nick": "loadgen"}).encode() + b"\n")

    def drain():            # read and drop what comes back, so we are never "too slow"
        try:
            while sock.recv(1 << 16):
                pass
        except OSError:
            pass
    threading.Thread(target=drain, daemon=True).start()
    texts = []
    for i in range(200):
        if i % 10 == 0:
            texts.append(f"watcher, have a look at item {i}: the numbers are in")
        elif i % 20 == 5:
            texts.append(f"build {i} is green, logs at https://ci.example.org/build/{i}")
        else:
            texts.append(f"message {i}: the quick brown fox jumps over the lazy dog, again and again")
    start = time.perf_counter()
    sent = 0
    total = int(rate * seconds)
    while sent < total:
        due = int((time.perf_counter() - start) * rate) + 1
        batch = []
        while sent < min(due, total):
            batch.append(json.dumps({"type": "say", "text": texts[sent % len(texts)]}).encode() + b"\n")
            sent += 1
        if batch:
            sock.sendall(b"".join(batch))
        time.sleep(0.002)
    time.sleep(0.5)
    sock.sendall(b'{"type":"bye"}\n')
    sock.close()
    return 0


# -- the measurement (this process) -------------------------------------------


def pct(values, q):
    if not values:
        return float("nan")
    values = sorted(values)
    return values[min(len(values) - 1, int(round(q / 100 * (len(values) - 1))))]


class Probe:
    """Records pump ticks, timer lateness and queue depth on the Tk thread."""

    def __init__(self, window):
        self.w = window
        self.ticks = []
        self.late = []
        self.max_queued = 0
        self.running = True
        self._expected = None
        window.pump.on_tick = self._tick
        self._arm()

    def _tick(self, t):
        self.ticks.append(t)
        q = self.w.controller.events.qsize()
        if q > self.max_queued:
            self.max_queued = q

    def _arm(self):
        self._expected = time.perf_counter() + 0.010
        self.w.root.after(10, self._fire)

    def _fire(self):
        self.late.append(time.perf_counter() - self._expected)
        if self.running:
            self._arm()

    def reset(self, keep_last: bool = False):
        """Start a phase; ``keep_last``: measure the first gap from the last
        tick before it (a phase that blocks at once shows that gap)."""
        self.ticks, self.late, self.max_queued = self.ticks[-1:] if keep_last else [], [], 0

    def summary(self):
        gaps = [(b - a) * 1000 for a, b in zip(self.ticks, self.ticks[1:])]
        late = [x * 1000 for x in self.late]
        return {"gap": (pct(gaps, 50), pct(gaps, 99), max(gaps, default=float("nan"))),
                "late": (pct(late, 50), pct(late, 99), max(late, default=float("nan"))),
                "ticks": len(self.ticks), "max_queued": self.max_queued, "gaps": gaps, "lates": late}


def pump_for(root, seconds: float, until=None) -> bool:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        root.update()
        if until is not None and until():
            return True
        time.sleep(0.001)
    return until is None


def measure(args) -> int:
    from tests import xvfb
    os.environ["NATTER_HOME"] = tempfile.mkdtemp(prefix="natter-bench-")
    xproc, display = xvfb.start("1280x800x24")
    os.environ["DISPLAY"] = display
    server = subprocess.Popen([sys.executable, "-m", "server", "--port", "0", "--rate-limit", "0",
                               "--db", os.path.join(os.environ["NATTER_HOME"], "bench.db"),
                               "--log-level", "warning"], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        line = server.stdout.readline()
        port = int(line.split(" on ")[1].split()[0].rsplit(":", 1)[1])
        return _run(args, port)
    finally:
        server.terminate()
        server.wait(15)
        xvfb.stop(xproc)


def _counting_window():
    """The real window, and a one-item list counting the messages its pump has handled."""
    from chatgui.app.settings import Settings
    from chatgui.tk.window import ChatWindow
    from server.protocol import Message

    w = ChatWindow(Settings(geometry="1000x700"))
    count = [0]
    handle = w.controller.handle

    def counting(event):
        if type(event) is Message:
            count[0] += 1
        handle(event)
    w.pump.handle = counting
    return w, count


def _run(args, port: int) -> int:
    from chatgui.app.controller import ConnectValues

    w, shown = _counting_window()
    w.start(ConnectValues(host="127.0.0.1", port=str(port), nick="watcher"))
    root = w.root
    if not pump_for(root, 15, until=lambda: w.controller.connected):
        print("the window did not connect", file=sys.stderr)
        return 1
    probe = Probe(w)
    rows = []
    pump_for(root, 0.5)
    probe.reset()
    pump_for(root, args.idle)
    rows.append(("idle", 0, 0, probe.summary(), args.idle))
    for rate in args.rates:
        probe.reset()
        before = shown[0]
        total = int(rate * args.seconds)
        gen = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--sender", "--port", str(port),
                                "--rate", str(rate), "--seconds", str(args.seconds)], cwd=ROOT)
        t0 = time.monotonic()
        pump_for(root, args.seconds + 30, until=lambda: shown[0] - before >= total and gen.poll() is not None)
        elapsed = time.monotonic() - t0
        gen.wait(30)
        rows.append((f"{rate:g} msg/s", rate, shown[0] - before, probe.summary(), elapsed))
        pump_for(root, 0.5)
    probe.running = False
    lines = w.chat.line_count()
    tk_version = root.tk.call("info", "patchlevel")
    w.quit()
    w.controller.shutdown(timeout=5)

    print(f"Tk pump responsiveness (Tk {tk_version}, Python {sys.version.split()[0]}, Xvfb, "
          f"real server process, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f})")
    print(f"pump: batch <= {w.pump.batch} events or {w.pump.budget * 1000:g} ms per tick, "
          f"idle poll every {w.pump.interval_ms} ms; scrollback capped at {lines} lines at the end")
    head = (f"{'phase':<12} {'shown':>7} {'secs':>6}  {'tick gap ms p50/p99/max':>25}  "
            f"{'timer late ms p50/p99/max':>26}  {'max queued':>10}")
    print(head)
    print("-" * len(head))
    for name, rate, n, s, secs in rows:
        g, lt = s["gap"], s["late"]
        print(f"{name:<12} {n:>7} {secs:>6.1f}  {g[0]:>7.1f} /{g[1]:>7.1f} /{g[2]:>7.1f}  "
              f"{lt[0]:>8.1f} /{lt[1]:>7.1f} /{lt[2]:>7.1f}  {s['max_queued']:>10}")
    return 0


# -- --hosting: the tick gap while a hosted room stops or starts ---------------


def measure_hosting(args) -> int:
    from tests import xvfb
    os.environ["NATTER_HOME"] = tempfile.mkdtemp(prefix="natter-bench-")
    xproc, display = xvfb.start("1280x800x24")
    os.environ["DISPLAY"] = display
    try:
        return _run_hosting(args)
    finally:
        xvfb.stop(xproc)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _run_hosting(args) -> int:
    from chatgui.app.controller import ConnectValues
    from chatgui.app.settings import Settings
    from chatgui.tk.window import ChatWindow
    from server import tls

    rows = []
    w = ChatWindow(Settings(geometry="1000x700"))
    root = w.root
    w.start(ConnectValues(port=str(_free_port()), nick="host", host_room=True))
    if not pump_for(root, 15, until=lambda: w.controller.connected):
        print("the window did not join its room", file=sys.stderr)
        return 1
    old = w.controller.hosted
    socks = []
    for i in range(args.lingering):     # they join, then neither read nor close
        sock = socket.create_connection(("127.0.0.1", old.port), timeout=5)
        sock.sendall(json.dumps({"type": "hello", "nick": f"guest{i}"}).encode() + b"\n")
        socks.append(sock)
    pump_for(root, 15, until=lambda: len(w.chat.users) == args.lingering + 1)
    probe = Probe(w)
    pump_for(root, 0.3)
    probe.reset(keep_last=True)
    t0 = time.perf_counter()
    second = _free_port()
    root.after(0, lambda: w.controller.connect(ConnectValues(port=str(second), nick="host", host_room=True)))
    pump_for(root, 30, until=lambda: old.server is None and w.controller.connected
             and w.controller.address.endswith(f":{second}"))
    rows.append((f"stop a room, {args.lingering} lingering", time.perf_counter() - t0, probe.summary()))
    for sock in socks:
        sock.close()

    def no_cryptography(*a):
        raise ImportError("left out: the openssl command makes the certificate")
    tls._make_with_cryptography = no_cryptography
    pump_for(root, 0.3)
    probe.reset(keep_last=True)
    t0 = time.perf_counter()
    root.after(0, lambda: w.controller.connect(ConnectValues(port=str(_free_port()), nick="host",
                                                             host_room=True, tls=True)))
    pump_for(root, 30, until=lambda: w.controller.connected and w.controller.fingerprint)
    rows.append(("first certificate (openssl)", time.perf_counter() - t0, probe.summary()))
    probe.running = False
    tk_version = root.tk.call("info", "patchlevel")
    w.quit()
    w.controller.shutdown(timeout=5)

    print(f"Tk pump while hosting (Tk {tk_version}, Python {sys.version.split()[0]}, Xvfb, "
          f"{os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f})")
    head = f"{'phase':<30} {'secs':>6}  {'tick gap ms p50/p99/max':>25}  {'timer late ms p50/p99/max':>26}"
    print(head)
    print("-" * len(head))
    for name, secs, s in rows:
        g, lt = s["gap"], s["late"]
        print(f"{name:<30} {secs:>6.2f}  {g[0]:>7.1f} /{g[1]:>7.1f} /{g[2]:>7.1f}  "
              f"{lt[0]:>8.1f} /{lt[1]:>7.1f} /{lt[2]:>7.1f}")
    return 0


# -- --scrollback: a long history paged far back (issue 16) -------------------


def fill_history(path: str, count: int) -> int:
    """Write ``count`` lobby messages into a new history file (a child process)."""
    from server.store.sqlite import SqliteStore
    texts = [f"message {i}: the quick brown fox jumps over the lazy dog, again and again" for i in range(97)]
    texts[3] = "build 3 is green, logs at https://ci.example.org/build/3"
    h = SqliteStore(path)
    for i in range(count):
        h.add_message("history", texts[i % len(texts)], session=1)
        if i % 5000 == 4999:
            h.commit()
    h.commit()
    h.close()
    return 0


def _rss_kib(field: str) -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1])
    return -1


def measure_scrollback(args) -> int:
    from tests import xvfb
    home = os.environ["NATTER_HOME"] = tempfile.mkdtemp(prefix="natter-bench-")
    db = os.path.join(home, "bench.db")
    t0 = time.monotonic()
    subprocess.run([sys.executable, os.path.abspath(__file__), "--fill", db, "--history", str(args.history)],
                   cwd=ROOT, check=True)
    filled = time.monotonic() - t0
    xproc, display = xvfb.start("1280x800x24")
    os.environ["DISPLAY"] = display
    server = subprocess.Popen([sys.executable, "-m", "server", "--port", "0", "--rate-limit", "0", "--db", db,
                               "--log-level", "warning"], cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        line = server.stdout.readline()
        port = int(line.split(" on ")[1].split()[0].rsplit(":", 1)[1])
        return _run_scrollback(args, port, filled)
    finally:
        server.terminate()
        server.wait(15)
        xvfb.stop(xproc)


def _run_scrollback(args, port: int, filled: float) -> int:
    from chatgui.app.controller import ConnectValues

    rate = args.rates[0]
    w, live = _counting_window()
    root = w.root
    probe = Probe(w)
    pump_for(root, 0.5)         # the window is up (its form drawn) before the room is opened, as for a person
    probe.reset(keep_last=True)
    t0 = time.monotonic()
    w.start(ConnectValues(host="127.0.0.1", port=str(port), nick="watcher"))
    ok = pump_for(root, 30, until=lambda: w.controller.connected and w.chat.current is not None
                  and len(w.chat.current.ids) > 0)
    if not ok:
        print("the window did not open the room", file=sys.stderr)
        return 1
    pump_for(root, 0.5)
    rows = [("open the room", time.monotonic() - t0, 0, probe.summary())]
    conv = w.chat.current
    gen = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--sender", "--port", str(port),
                            "--rate", str(rate), "--seconds", "3600"], cwd=ROOT)
    try:
        pump_for(root, 1.0)
        probe.reset()
        before, t0, pages, most_lines = live[0], time.monotonic(), 0, 0
        while pages < args.pages:
            oldest = conv.ids[0]
            conv._on_scrollbar("moveto", "0.0")     # what dragging the thumb to the top calls
            if not pump_for(root, 30, until=lambda: conv.ids and conv.ids[0] < oldest):
                print(f"page {pages + 1} did not come", file=sys.stderr)
                break
            pages += 1
            most_lines = max(most_lines, conv.line_count())
        back = time.monotonic() - t0
        rows.append((f"{pages} pages back", back, live[0] - before, probe.summary()))
        shown_range = (conv.ids[0], conv.ids[-1])
        probe.reset()
        before, t0 = live[0], time.monotonic()
        conv.new_button.invoke()        # the button (to_bottom), shown or not
        pump_for(root, 30, until=lambda: conv.live and conv.at_bottom() and conv.ids)
        pump_for(root, 2.0)
        rows.append(("to the live end", time.monotonic() - t0, live[0] - before, probe.summary()))
    finally:
        gen.terminate()
        gen.wait(10)
    probe.running = False
    hwm, rss = _rss_kib("VmHWM"), _rss_kib("VmRSS")
    tk_version = root.tk.call("info", "patchlevel")
    lines = conv.line_count()
    w.quit()
    w.controller.shutdown(timeout=5)

    print(f"The window with a long history (Tk {tk_version}, Python {sys.version.split()[0]}, Xvfb, real server "
          f"process, {os.cpu_count()} CPUs, load average {os.getloadavg()[0]:.1f})")
    print(f"history: {args.history} messages (written in {filled:.1f} s); {rate:g} msg/s live while paging; "
          f"scrollback cap {conv.scrollback} lines, at most {most_lines} while paging back, {lines} at the end; "
          f"ids {shown_range[0]}..{shown_range[1]} shown after paging back")
    head = (f"{'phase':<18} {'secs':>6} {'live':>6}  {'tick gap ms p50/p99/max':>25}  "
            f"{'timer late ms p50/p99/max':>26}")
    print(head)
    print("-" * len(head))
    gaps = [g for *_, s in rows for g in s["gaps"]]
    lates = [x for *_, s in rows for x in s["lates"]]
    rows.append(("all three", sum(r[1] for r in rows), sum(r[2] for r in rows),
                 {"gap": (pct(gaps, 50), pct(gaps, 99), max(gaps, default=float("nan"))),
                  "late": (pct(lates, 50), pct(lates, 99), max(lates, default=float("nan")))}))
    for name, secs, n, s in rows:
        g, lt = s["gap"], s["late"]
        print(f"{name:<18} {secs:>6.1f} {n:>6}  {g[0]:>7.1f} /{g[1]:>7.1f} /{g[2]:>7.1f}  "
              f"{lt[0]:>8.1f} /{lt[1]:>7.1f} /{lt[2]:>7.1f}")
    print(f"window process memory: peak {hwm / 1024:.0f} MB (VmHWM), {rss / 1024:.0f} MB at the end (VmRSS)")
    return 0


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rates", type=float, nargs="+", default=[500, 2000], help="messages a second, per phase")
    ap.add_argument("--seconds", type=float, default=10.0, help="length of each loaded phase")
    ap.add_argument("--idle", type=float, default=3.0, help="length of the idle phase")
    ap.add_argument("--hosting", action="store_true",
                    help="measure while a hosted room stops and while a first certificate is made")
    ap.add_argument("--lingering", type=int, default=5, help="with --hosting: clients that linger")
    ap.add_argument("--scrollback", action="store_true",
                    help="a long history: page back --pages pages while --rates[0] msg/s arrive (issue 16)")
    ap.add_argument("--history", type=int, default=100_000, help="with --scrollback: messages in the history")
    ap.add_argument("--pages", type=int, default=1000, help="with --scrollback: pages to go back")
    ap.add_argument("--fill", help=argparse.SUPPRESS)
    ap.add_argument("--sender", action="store_true", help=argparse.SUPPRESS)
    ap.add_argument("--port", type=int, help=argparse.SUPPRESS)
    ap.add_argument("--rate", type=float, help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    if args.sender:
        return sender(args.port, args.rate, args.seconds)
    if args.fill:
        return fill_history(args.fill, args.history)
    if args.hosting:
        return measure_hosting(args)
    if args.scrollback:
        return measure_scrollback(args)
    return measure(args)


if __name__ == "__main__":
    sys.exit(main())
