#!/usr/bin/env python3
"""Scale-out benchmark (issue 15): 1, 2, 3 nodes sharing the rooms through
one Redis, against one server with the default SQLite store.

From the repository root (needs redis-server and pip install -e '.[redis]'):

    python3 bench/scaleout.py                               # sqlite, redis1, redis2, redis3: 3000 clients, paced
    python3 bench/scaleout.py --mode burst                  # every sender sends all at once
    python3 bench/scaleout.py --configs redis2 --clients 20 --senders 2 --rate 20 --secs 1   # a smoke run
    python3 bench/scaleout.py --runs 2 --json rows.json

For each configuration it starts everything afresh: for ``redisN`` a
``redis-server`` of its own (tests/redistools.RedisServer: a free loopback
port, its own temporary directory, ``--appendonly yes --save ''``) and N
nodes ``python -m server --port 0 --redis URL --rate-limit 0 --max-clients
10000 --no-discovery`` (tests/redistools.NodeProcess); for ``sqlite`` one
``python -m server`` with ``--db TMPFILE`` (bench/fanout.Server), the hosted
default. The same total of clients is spread evenly over the nodes (client i
on node i % N), all in the lobby (protocol v1); senders 0..K-1 (so spread
over the nodes too) send at a paced total rate (``--mode rate``: the line's
due time is its stamp, so a late generator shows as latency) or all at once
(``--mode burst``). Every client counts every message (the sender's own copy
included) and its latency: send (due) time to arrival, one clock
(``time.monotonic_ns``) since everything runs on this machine.

Columns: delivered/expected; deliveries/s = delivered / (last delivery -
first send); messages/s = sent / the same span; p50/p99/max latency; the
CPU seconds during the run of the nodes together, of Redis, and of the load
generator's workers; the load average after the run.

The load generator is bench/loadgen.py: each worker process runs all of its
sockets under one ``selectors`` loop (no thread per client), ``--workers``
of them (default: one per core). Its ceiling: it is Python, and it shares
the cores with everything it measures (docs/performance.md, "The Python
load generator's ceiling": a few microseconds of CPU per recv'd chunk; 2.1
and 3.2 M deliveries/s measured there against one server). Here, 3000
clients in a burst against the SQLite default, its two workers used both
cores and it counted 1.56-1.76 M deliveries/s: that is its ceiling on this
machine with a server beside it (docs/performance.md, "Scale-out through
Redis"). When its CPU column nears (span x workers), it set the pace, not
the nodes.

Everything it starts (Redis, nodes, generator workers) is stopped when it
ends, on an error, Ctrl-C or SIGTERM too. Bounded: ``--timeout`` per run.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import secrets
import signal
import subprocess
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
sys.path.insert(0, ROOT)
import fanout  # noqa: E402
import loadgen  # noqa: E402
from tests.redistools import NodeProcess, RedisServer  # noqa: E402

NODE_ARGS = ("--max-clients", "10000")          # NodeProcess adds --rate-limit 0 --no-discovery
SQLITE_ARGS = ("--no-discovery",)               # fanout.Server adds --rate-limit 0 --max-clients 10000


def cpu_seconds(pid: int) -> float:
    """utime + stime of every thread of pid (0 once gone)."""
    try:
        return loadgen.proc_cpu_seconds(pid)
    except OSError:
        return 0.0


def config_names(spec: str) -> list[str]:
    names = [s.strip() for s in spec.split(",") if s.strip()]
    for n in names:
        if n != "sqlite" and not (n.startswith("redis") and n[5:].isdigit() and int(n[5:]) >= 1):
            raise ValueError(f"unknown configuration {n!r}: sqlite or redisN (N >= 1 nodes)")
    return names


class Deployment:
    """The servers of one configuration; a context manager that stops them all."""

    def __init__(self, name: str):
        self.name = name
        self.tmp = tempfile.mkdtemp(prefix="natter-scaleout-")
        self.redis = None
        self.nodes: list = []        # NodeProcess, or one fanout.Server
        self.ports: list[int] = []

    def __enter__(self) -> "Deployment":
        try:
            if self.name == "sqlite":
                srv = fanout.Server("project", SQLITE_ARGS)
                self.nodes.append(srv)
                srv.__enter__()
                self.ports.append(srv.port)
            else:
                self.redis = RedisServer(os.path.join(self.tmp, "redis"))
                for i in range(int(self.name[5:])):
                    node = NodeProcess(os.path.join(self.tmp, f"node{i}"), self.redis.url, *NODE_ARGS)
                    self.nodes.append(node)
                    self.ports.append(node.port)
        except BaseException:
            self.__exit__()
            raise
        return self

    def pids(self) -> list[int]:
        return [n.pid if isinstance(n, fanout.Server) else n.proc.pid for n in self.nodes]

    def nodes_cpu(self) -> float:
        return sum(cpu_seconds(p) for p in self.pids())

    def redis_cpu(self) -> float:
        return cpu_seconds(self.redis.proc.pid) if self.redis is not None else 0.0

    def __exit__(self, *exc) -> None:
        for n in self.nodes:
            try:
                if isinstance(n, fanout.Server):
                    n.__exit__()
                else:
                    n.stop()
            except Exception:
                pass
        if self.redis is not None:
            self.redis.stop()
        import shutil
        shutil.rmtree(self.tmp, ignore_errors=True)


def profile(dep: Deployment, name: str, directory: str) -> list:
    """py-spy record on every node from go to done (collapsed stacks, every
    thread apart, waiting included): DIRECTORY/CONFIG-nodeI.txt."""
    import shutil
    spy = shutil.which("py-spy") or shutil.which("py-spy", path=os.path.dirname(sys.executable))
    if spy is None:
        raise RuntimeError("--profile needs py-spy (pip install py-spy)")
    os.makedirs(directory, exist_ok=True)
    out = []
    for i, pid in enumerate(dep.pids()):
        out.append(subprocess.Popen([spy, "record", "-p", str(pid), "-r", "100", "--idle", "--threads", "-f", "raw", "-o",
                                     os.path.join(directory, f"{name}-node{i}.txt")],
                                    stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
    time.sleep(1.0)     # attached before go
    return out


def _worker(*args) -> None:
    signal.signal(signal.SIGTERM, signal.SIG_DFL)   # not main's: terminate() ends it quietly
    loadgen.worker(*args)


def run(name: str, a) -> dict:
    """One configuration, once: start it, drive it, stop it; a row."""
    row = {"config": name, "clients": a.clients, "senders": a.senders, "mode": a.mode,
           "nodes": 1 if name == "sqlite" else int(name[5:])}
    spec = dict(clients=a.clients, senders=a.senders, mode=a.mode, timeout=a.timeout)
    spec.update(msgs=a.msgs) if a.mode == "burst" else spec.update(rate=a.rate, secs=a.secs)
    with Deployment(name) as dep:
        plan = loadgen.Plan(host="127.0.0.1", port=dep.ports[0], ports=tuple(dep.ports), proto="jsonl",
                            nonce=secrets.token_hex(4), **spec)
        ctx = multiprocessing.get_context("fork")
        pipes, procs = [], []
        try:
            for w in range(a.workers):
                mine, theirs = ctx.Pipe()
                p = ctx.Process(target=_worker, args=(plan, list(range(w, a.clients, a.workers)),
                                                              theirs, a.workers),
                                name=f"loadgen-{w}", daemon=True)
                p.start()
                theirs.close()
                pipes.append(mine)
                procs.append(p)
            t = time.monotonic()
            ready = fanout._collect(pipes, "ready", plan.connect_timeout + 30)
            row["connect_s"] = time.monotonic() - t
            ok_clients, ok_senders = sum(r[1] for r in ready), sum(r[2] for r in ready)
            failures = [f for r in ready for f in r[3]]
            spies = profile(dep, name, a.profile) if a.profile else []
            nodes0, redis0 = dep.nodes_cpu(), dep.redis_cpu()
            t0 = time.monotonic_ns() + 300_000_000
            for pipe in pipes:
                pipe.send(("go", t0, ok_senders))
            done = [d[1] for d in fanout._collect(pipes, "done", plan.timeout + 60)]
            row["nodes_cpu_s"] = dep.nodes_cpu() - nodes0
            row["redis_cpu_s"] = dep.redis_cpu() - redis0
            for spy in spies:           # SIGINT: py-spy writes its file and ends
                spy.send_signal(signal.SIGINT)
            for spy in spies:
                spy.wait(30)
        except Exception as e:
            row["error"] = f"{type(e).__name__}: {e}"
            return row
        finally:
            for p in procs:         # done: they are ending; interrupted or failed: end them now
                p.join(5 if "nodes_cpu_s" in row else 0)
                if p.is_alive():
                    p.terminate()
                    p.join(5)
    got = loadgen.merged(done)
    expected = sum(d["expected"] for d in done)
    row.update(ok_clients=ok_clients, ok_senders=ok_senders, expected=expected,
               lost=expected - got["delivered"], **got)
    row["failures"] = (failures + got["failures"])[:10]
    if ok_clients < a.clients:
        row["error"] = f"only {ok_clients} of {a.clients} clients connected"
    return row


HEADER = ("| config | nodes | clients | messages | delivered/expected | deliveries/s | messages/s "
          "| p50 ms | p99 ms | max ms | nodes CPU s | Redis CPU s | load-gen CPU s | span s | load avg |\n"
          "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")


def fmt_row(r: dict) -> str:
    head = f"| {r['config']} | {r['nodes']} "
    if "delivered" not in r:
        return head + f"| error: {r.get('error', '?')[:100]} |" + " |" * 12
    return (head + f"| {r['ok_clients']}/{r['clients']} | {r['sent']} | {r['delivered']}/{r['expected']} "
            f"| {r['deliveries_per_s']:,.0f} | {r['messages_per_s']:,.0f} | {r['p50_ms']:.1f} "
            f"| {r['p99_ms']:.1f} | {r['max_ms']:.1f} | {r['nodes_cpu_s']:.1f} | {r['redis_cpu_s']:.1f} "
            f"| {r['loadgen_cpu_s']:.1f} | {r['span_s']:.1f} | {r.get('loadavg', '?')} |")


def _children() -> list[int]:
    """Pids of this process's own children still alive (a last sweep)."""
    me, out = os.getpid(), []
    for d in os.listdir("/proc"):
        if d.isdigit():
            try:
                with open(f"/proc/{d}/stat") as f:
                    if int(f.read().rsplit(")", 1)[1].split()[1]) == me:
                        out.append(int(d))
            except (OSError, ValueError, IndexError):
                pass
    return out


def _sweep() -> None:
    for pid in _children():
        try:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
        except (OSError, ChildProcessError):
            pass


def _sigterm(signum, frame):
    raise KeyboardInterrupt(f"signal {signum}")


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="bench/scaleout.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("--configs", default="sqlite,redis1,redis2,redis3",
                    help="comma-separated: sqlite (one server, the default store) or redisN (N nodes "
                         "and one Redis); default %(default)s")
    ap.add_argument("--clients", type=int, default=3000, help="in all, spread over the nodes (default %(default)s)")
    ap.add_argument("--senders", type=int, default=10, help="(default %(default)s)")
    ap.add_argument("--mode", choices=("rate", "burst"), default="rate")
    ap.add_argument("--rate", type=float, default=100.0, help="rate: messages a second in all (default %(default)s)")
    ap.add_argument("--secs", type=float, default=10.0, help="rate: for this long (default %(default)s)")
    ap.add_argument("--msgs", type=int, default=100, help="burst: messages per sender (default %(default)s)")
    ap.add_argument("--timeout", type=float, default=60.0,
                    help="seconds from go to giving up on missing deliveries (default %(default)s)")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                    help="load-generator processes (default %(default)s: one per core)")
    ap.add_argument("--runs", type=int, default=1, help="times to run each configuration (default %(default)s)")
    ap.add_argument("--json", metavar="FILE", help="also write the raw rows here")
    ap.add_argument("--profile", metavar="DIR", help="py-spy record every node during the run: collapsed "
                                                     "stacks in DIR/CONFIG-nodeI.txt")
    a = ap.parse_args(argv)
    try:
        names = config_names(a.configs)
    except ValueError as e:
        ap.error(str(e))
    if a.clients < 1 or a.senders < 1 or a.senders > a.clients or a.workers < 1 or a.runs < 1:
        ap.error("need 1 <= senders <= clients, workers >= 1, runs >= 1")
    fanout.raise_fd_limit()
    signal.signal(signal.SIGTERM, _sigterm)
    signal.signal(signal.SIGINT, signal.default_int_handler)   # Ctrl-C, even when started in the background
    print(f"Machine: {fanout.machine()}. Load average before: {fanout.loadavg()}.", flush=True)
    what = (f"{a.rate:g} messages/s for {a.secs:g} s" if a.mode == "rate" else f"{a.msgs} messages each at once")
    print(f"{a.clients} clients in the lobby, {a.senders} senders, {what}; load generator: "
          f"{a.workers} processes", flush=True)
    rows = []
    try:
        for k in range(a.runs):
            for name in names:
                print(f"{name} (run {k + 1}) ...", file=sys.stderr, flush=True)
                try:
                    row = run(name, a)
                except Exception as e:
                    row = {"config": name, "nodes": "?", "error": f"{type(e).__name__}: {e}"}
                row["loadavg"] = fanout.loadavg()
                rows.append(row)
                print(json.dumps({k: v for k, v in row.items() if k != "failures"}), file=sys.stderr, flush=True)
    except KeyboardInterrupt as e:
        _sweep()
        print(f"interrupted ({e or 'Ctrl-C'}): everything it started is stopped", file=sys.stderr)
        return 130
    finally:
        _sweep()
    print()
    print(HEADER)
    for r in rows:
        print(fmt_row(r))
    for r in rows:
        if r.get("failures"):
            print(f"{r['config']}: {len(r['failures'])} client failures, first: {r['failures'][0]}")
    return loadgen.finish(rows, a.json)


if __name__ == "__main__":
    sys.exit(main())
