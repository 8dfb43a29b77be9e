#!/usr/bin/env python3
"""Where the time goes with many mostly idle clients: the yardstick's idle
load (10 senders, 20 messages a second in all, N clients) against this
server, with the server's threads watched from /proc while it runs.

    python3 bench/idle_profile.py --clients 5000 [--secs 10] [--writers 1] [--time-passes] [--tree DIR]

Prints the load generator's row (p50, p99, delivered), the server's RSS
per client, and for the sending window: the CPU of the server's busiest
threads (user, system) with their scheduler statistics from
/proc/PID/task/TID/schedstat (time on a CPU, time runnable but waiting for
one), and the load generator's CPU. ``--time-passes`` runs the server with
the hub's pass timed (bench/_timed_hub.py) and prints its distribution.

It uses the yardstick's Rust load generator (built by
``../shared/bench/compare.py`` as /tmp/chat-loadgen on its first run).
"""
from __future__ import annotations

import argparse
import json
import os
import resource
import socket
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
LOADGEN = os.path.join(tempfile.gettempdir(), "chat-loadgen")
HZ = os.sysconf("SC_CLK_TCK")


def _threads(pid: int) -> dict:
    """tid -> (user ticks, system ticks, ns on a CPU, ns waiting for one)."""
    out = {}
    for tid in os.listdir(f"/proc/{pid}/task"):
        try:
            stat = open(f"/proc/{pid}/task/{tid}/stat").read().rsplit(")", 1)[1].split()
            on, wait, _ = open(f"/proc/{pid}/task/{tid}/schedstat").read().split()
        except OSError:
            continue
        out[tid] = (int(stat[11]), int(stat[12]), int(on), int(wait))
    return out


def _cpu(pid: int) -> int:
    stat = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
    return int(stat[11]) + int(stat[12])


def _rss(pid: int) -> int:
    for line in open(f"/proc/{pid}/status"):
        if line.startswith("VmRSS:"):
            return int(line.split()[1])
    return 0


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--clients", type=int, default=5000)
    ap.add_argument("--secs", type=int, default=10)
    ap.add_argument("--writers", type=int, default=None, help="the server's --writers (default: its own)")
    ap.add_argument("--time-passes", action="store_true")
    ap.add_argument("--tree", default=os.path.dirname(HERE), help="the project tree to run (default: this one)")
    a = ap.parse_args()
    if not os.path.exists(LOADGEN):
        print(f"{LOADGEN} is missing: run ../shared/bench/compare.py once to build it", file=sys.stderr)
        return 2
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    tmp = tempfile.mkdtemp(prefix="idle-profile-")
    py = os.path.join(a.tree, ".venv", "bin", "python")
    py = py if os.path.exists(py) else sys.executable
    entry = [os.path.join(HERE, "_timed_hub.py"), os.path.join(tmp, "passes.json")] if a.time_passes else ["-m", "server"]
    argv = [py, *entry, "--host", "127.0.0.1", "--port", str(port), "--db", os.path.join(tmp, "h.db"),
            "--rate-limit", "0", "--max-clients", str(a.clients + 100), "--no-discovery"]
    if a.writers is not None:
        argv += ["--writers", str(a.writers)]
    server = subprocess.Popen(argv, cwd=a.tree, stdout=subprocess.DEVNULL, stderr=open(os.path.join(tmp, "err"), "w"))
    try:
        deadline = time.time() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), 0.5).close()
                break
            except OSError:
                if time.time() > deadline or server.poll() is not None:
                    print("the server did not start:", open(os.path.join(tmp, "err")).read()[-500:], file=sys.stderr)
                    return 1
                time.sleep(0.05)
        base = _rss(server.pid)
        gen = subprocess.Popen([LOADGEN, "--proto", "jsonl", "--port", str(port), "--clients", str(a.clients),
                                "--senders", "10", "--mode", "rate", "--rate", "20", "--secs", str(a.secs),
                                "--timeout", "180"], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
        while len(os.listdir(f"/proc/{server.pid}/task")) < a.clients and gen.poll() is None:
            time.sleep(0.1)     # one reader thread per client: all connected
        time.sleep(1.0)
        before, gen_before, t0 = _threads(server.pid), _cpu(gen.pid), time.monotonic()
        peak, window = base, max(1.0, a.secs - 2.5)
        while time.monotonic() - t0 < window:
            peak = max(peak, _rss(server.pid))
            time.sleep(0.25)
        after, gen_after, dt = _threads(server.pid), _cpu(gen.pid), time.monotonic() - t0
        while gen.poll() is None:
            peak = max(peak, _rss(server.pid))
            time.sleep(0.25)
        row = json.loads([line for line in gen.stdout.read().splitlines() if line.startswith("{")][-1])
    finally:
        server.terminate()
        t = time.monotonic()
        try:
            server.wait(120)
        except subprocess.TimeoutExpired:
            server.kill()
            print("the server did not stop within 120 s of SIGTERM", file=sys.stderr)
        print(f"the server stopped {time.monotonic() - t:.1f} s after SIGTERM", file=sys.stderr)
    print(json.dumps({k: row.get(k) for k in ("clients", "ok_clients", "delivered", "expected", "p50_ms", "p99_ms")}))
    print(f"server RSS {base / 1024:.1f} MiB idle, {peak / 1024:.1f} MiB peak: "
          f"{(peak - base) / max(1, row.get('ok_clients', 1)):.1f} KiB per client")
    zero = (0, 0, 0, 0)
    deltas = sorted(((tid, [y - x for x, y in zip(before.get(tid, zero), v)]) for tid, v in after.items()),
                    key=lambda d: -(d[1][0] + d[1][1]))
    total = sum(d[0] + d[1] for _, d in deltas) / HZ / dt
    print(f"sending window {dt:.1f} s: server {total:.2f} cores, load generator {(gen_after - gen_before) / HZ / dt:.2f} cores")
    for tid, (user, system, on, wait) in deltas[:3]:
        print(f"  thread {tid}: user {user / HZ / dt:.2f} system {system / HZ / dt:.2f} cores; "
              f"on a CPU {on / 1e9 / dt:.0%} of the time, runnable and waiting for one {wait / 1e9 / dt:.0%}")
    rest = deltas[3:]
    print(f"  the other {len(rest)} threads: {sum(d[0] + d[1] for _, d in rest) / HZ / dt:.2f} cores")
    if a.time_passes:
        passes = json.load(open(os.path.join(tmp, "passes.json")))
        passes.sort()
        if passes:
            q = lambda f: passes[min(len(passes) - 1, int(f * len(passes)))] * 1000
            print(f"hub passes that wrote: {len(passes)}, write time p50 {q(0.5):.1f} ms, p90 {q(0.9):.1f} ms, "
                  f"p99 {q(0.99):.1f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
