"""Measure the packaged programs' start-up times (the numbers in docs/packaging.md).

    .venv/bin/python packaging/measure.py [--runs 5] [--dist dist]

Needs a build (scripts/build.sh) and, for the client, Xvfb and xdotool. For
each program it reports the first run (cold page cache for a fresh unpack
is as close as one gets without root's drop_caches) and the median and
range of the following runs:

With --cold (root, Linux) the page cache is dropped before each first run,
so "first" is a true cold start from disk.

- server: process start -> "listening" line printed, and -> a client's
  hello answered with a welcome (first accepted connection);
- client: process start -> its window mapped on a private Xvfb (no
  arguments: the connect window), and with --host/--port/--nick against an
  in-process server -> the room sees it join.
"""
from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)
from tests import packaging_support as ps  # noqa: E402
from tests.netclient import LineClient  # noqa: E402


def server_once(tmp: str, exe: str) -> tuple[float, float]:
    t0 = time.monotonic()
    proc, port, listening = ps.start_packaged_server(tmp, exe=exe)
    try:
        c = LineClient(port)
        c.hello("probe")
        welcomed = time.monotonic() - t0
        c.close()
    finally:
        ps.stop(proc)
    return listening, welcomed


def client_mapped_once(display: str, exe: str, env: dict) -> float:
    t0 = time.monotonic()
    proc = subprocess.Popen([exe], env=dict(env, DISPLAY=display), stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        window = ps.wait_for_window(display, ps.APP.name, timeout=30)
        mapped = time.monotonic() - t0
        ps.close_window(display, window)
        proc.wait(15)
    finally:
        ps.stop(proc)
    return mapped


def client_joined_once(display: str, exe: str, env: dict, port: int, watcher: LineClient, n: int) -> float:
    t0 = time.monotonic()
    proc = subprocess.Popen([exe, "--host", "127.0.0.1", "--port", str(port), "--nick", f"m{n}"],
                            env=dict(env, DISPLAY=display), stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while watcher.recv_type("joined", timeout=30)["nick"] != f"m{n}":
            pass
        joined = time.monotonic() - t0
        window = ps.wait_for_window(display, ps.APP.name, timeout=30)
        ps.close_window(display, window)
        proc.wait(15)
    finally:
        ps.stop(proc)
    return joined


def drop_caches(cold: bool) -> None:
    if cold:
        os.sync()
        with open("/proc/sys/vm/drop_caches", "w") as f:
            f.write("3\n")


def report(label: str, samples: list[float]) -> None:
    first, rest = samples[0], samples[1:] or samples
    print(f"{label:<44} first {first * 1000:6.0f} ms   then median {statistics.median(rest) * 1000:6.0f} ms"
          f" ({min(rest) * 1000:.0f}-{max(rest) * 1000:.0f}, n={len(rest)})")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--runs", type=int, default=5)
    ap.add_argument("--dist", default=ps.DIST)
    ap.add_argument("--only", choices=("server", "client"))
    ap.add_argument("--cold", action="store_true", help="drop the page cache before each first run (root)")
    a = ap.parse_args(argv)
    server_exe = os.path.join(a.dist, ps.APP.server_name, ps.APP.server_name)
    client_exe = os.path.join(a.dist, ps.APP.client_name, ps.APP.client_name)
    with tempfile.TemporaryDirectory() as tmp:
        env = dict(os.environ, NATTER_HOME=os.path.join(tmp, "home"))
        os.environ["NATTER_HOME"] = env["NATTER_HOME"]
        if a.only in (None, "server"):
            runs = []
            drop_caches(a.cold)
            for i in range(a.runs):
                d = os.path.join(tmp, f"s{i}")
                os.makedirs(d)
                runs.append(server_once(d, server_exe))
            report("server: start -> listening line", [r[0] for r in runs])
            report("server: start -> first client welcomed", [r[1] for r in runs])
        if a.only in (None, "client"):
            from server.app import ChatServer
            from server.config import ServerConfig
            srv = ChatServer(ServerConfig(host="127.0.0.1", port=0, db=os.path.join(tmp, "c.db"),
                                          rate_limit=0)).start()
            watcher = LineClient(srv.port)
            watcher.hello("watcher")
            try:
                with ps.xvfb() as display:
                    drop_caches(a.cold)
                    report("client: start -> connect window mapped",
                           [client_mapped_once(display, client_exe, env) for _ in range(a.runs)])
                    drop_caches(a.cold)
                    report("client: start -> joined the room (--host ...)",
                           [client_joined_once(display, client_exe, env, srv.port, watcher, i)
                            for i in range(a.runs)])
            finally:
                watcher.close()
                srv.shutdown()
    return 0


if __name__ == "__main__":
    sys.exit(main())
