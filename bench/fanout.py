#!/usr/bin/env python3
"""Fan-out benchmark of the Natter server: one command, one Markdown table.

From the repository root:

    python3 bench/fanout.py                      # the four scenarios, under a minute
    python3 bench/fanout.py --quick              # a smoke run of a few seconds
    python3 bench/fanout.py --scenarios burst100,idle2000 --json rows.json
    python3 bench/fanout.py --scenarios lobby1000all,room1x1000,rooms20x50   # rooms, burst
    python3 bench/fanout.py --scenarios lobby1000paced,room1x1000paced,rooms20x50paced   # rooms, paced
    python3 bench/fanout.py --scenarios lobby50paced,room1x50paced,rooms20x50paced      # the room count alone

For each scenario it starts a fresh server (``python -m server --host
127.0.0.1 --port P --db TMPFILE --rate-limit 0 --max-clients 20000``, with
the project's ``.venv`` Python when there is one), drives it with the Python
load generator in ``bench/loadgen.py`` and kills it. Traffic goes to
127.0.0.1 only. Columns:

- delivered/expected: every message counted at every client that should
  get it (the project's server echoes a message to its sender too);
- deliveries/s: delivered / (last delivery - first send), as the Rust
  yardstick counts it; latency is from send time (burst) or from the time a
  message was due (rate) to its arrival;
- server CPU s: utime + stime from /proc/PID/stat, during the run / in all
  (start, connects, run); peak RSS is VmHWM from /proc/PID/status, and
  KiB/client is that peak divided by the clients (interpreter included);
  "+KiB/client" is (RSS with every client connected - RSS before the first)
  / clients, what each connection adds;
- load-gen CPU s: the CPU the generator's workers used during the run. When
  it is near (run time x workers) the generator, not the server, set the
  pace.

The generator's own ceiling. It is Python: per recv'd chunk a worker spends
some microseconds of CPU (about 6-7 us for a 1.3 KB chunk in isolation, more
on a busy machine) and it shares the cores with the server. So above some
rate the table measures the generator, not the server. Measured on a 2-core
machine in one run (docs/performance.md): burst100 3.2 M deliveries/s where
the Rust yardstick's generator measured 4.0 M on the same server; burst1000
2.1 M against 4.9 M; and in the paced scenarios the same deliveries/s but
p99 latency inflated (rate1000 136 ms against 62; idle2000 196 against 42).
Trust its loss counts and its memory and CPU columns; take its latencies
and burst rates as upper and lower bounds. ``--rust-loadgen PATH`` runs the
Rust generator (../shared/bench/loadgen.rs, which compare.py builds as
/tmp/chat-loadgen) on the same scenario against a fresh server, for a row
beside each of ours; ``--target ngircd`` drives ngircd (a C IRC server) with
this generator, to check it against a server that is not Python.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing
import multiprocessing.connection
import os
import platform
import resource
import secrets
import selectors
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, HERE)
import loadgen  # noqa: E402  (bench/ is not a package; it runs as a script)

# name: (clients, senders, mode, {msgs | rate, secs}, timeout s), as in ../shared/bench/compare.py
SCENARIOS = {
    "burst100": dict(clients=100, senders=100, mode="burst", msgs=100, timeout=90),
    "rate1000": dict(clients=1000, senders=100, mode="rate", rate=200, secs=5, timeout=60),
    "burst1000": dict(clients=1000, senders=100, mode="burst", msgs=100, timeout=90),
    "idle2000": dict(clients=2000, senders=10, mode="rate", rate=20, secs=5, timeout=60),
    "idle5000": dict(clients=5000, senders=10, mode="rate", rate=20, secs=5, timeout=120),
    "idle10000": dict(clients=10000, senders=10, mode="rate", rate=20, secs=5, timeout=240),
    # Issue 16: the same crowd and the same 20 messages a second, in one
    # room of 2000 or in twenty rooms of 100 (one sender each): fan-out is
    # per room, so twenty rooms should cost no more.
    "room1x2000idle": dict(clients=2000, senders=10, mode="rate", rate=20, secs=5, timeout=60, rooms=1),
    "rooms20x100idle": dict(clients=2000, senders=20, mode="rate", rate=20, secs=5, timeout=60, rooms=20),
    # Rooms (issue 10): everyone sends, the same 2 M deliveries either way;
    # v1 in the lobby, v2 in one room of 1000, v2 in 20 rooms of 50.
    "lobby1000all": dict(clients=1000, senders=1000, mode="burst", msgs=2, timeout=90),
    "room1x1000": dict(clients=1000, senders=1000, mode="burst", msgs=2, timeout=90, rooms=1),
    "rooms20x50": dict(clients=1000, senders=1000, mode="burst", msgs=40, timeout=90, rooms=20),
    # The same people sending the same 2000 messages as room1x1000, in 20
    # rooms of 50: a twentieth of the deliveries.
    "rooms20x50same": dict(clients=1000, senders=1000, mode="burst", msgs=2, timeout=90, rooms=20),
    # The same, paced: 100,000 deliveries a second for 10 s either way (100
    # messages a second to 1000 people, or 2000 a second to rooms of 50).
    "lobby1000paced": dict(clients=1000, senders=1000, mode="rate", rate=100, secs=10, timeout=60),
    "room1x1000paced": dict(clients=1000, senders=1000, mode="rate", rate=100, secs=10, timeout=60, rooms=1),
    "rooms20x50paced": dict(clients=1000, senders=1000, mode="rate", rate=2000, secs=10, timeout=60, rooms=20),
    # The room count alone: 2000 messages a second to rooms of 50, in one
    # room or in twenty (the same messages/s and deliveries/s).
    "lobby50paced": dict(clients=50, senders=50, mode="rate", rate=2000, secs=10, timeout=60),
    "room1x50paced": dict(clients=50, senders=50, mode="rate", rate=2000, secs=10, timeout=60, rooms=1),
}
ROOM_SCENARIOS = ("lobby1000all", "room1x1000", "rooms20x50", "rooms20x50same", "lobby1000paced", "room1x1000paced",
                  "rooms20x50paced", "lobby50paced", "room1x50paced")
QUICK = {
    "quick-burst": dict(clients=50, senders=50, mode="burst", msgs=20, timeout=30),
    "quick-rate": dict(clients=200, senders=20, mode="rate", rate=100, secs=2, timeout=30),
}


# -- the server under test ---------------------------------------------------

PROBE_DIR = os.path.join(os.path.dirname(os.path.abspath(__file__)), "probe")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def project_python() -> str:
    py = os.path.join(ROOT, ".venv", "bin", "python")
    return py if os.path.exists(py) else sys.executable


def ngircd_conf(tmp: str, port: int) -> str:
    """ngircd with its flood penalties off, as the yardstick runs it."""
    path = os.path.join(tmp, "ngircd.conf")
    with open(path, "w") as f:
        f.write(f"[Global]\nName = bench.local\nInfo = bench\nListen = 127.0.0.1\nPorts = {port}\n"
                "ServerUID = nobody\nServerGID = nogroup\n[Limits]\nMaxConnections = 0\n"
                "MaxConnectionsIP = 0\nMaxJoins = 10\nMaxNickLength = 30\nPingTimeout = 600\n"
                "PongTimeout = 600\nMaxPenaltyTime = 0\n[Options]\nDNS = no\nIdent = no\nPAM = no\n")
    os.chmod(tmp, 0o755)
    os.chmod(path, 0o644)
    return path


class Server:
    """One fresh server process on 127.0.0.1; a context manager that kills it."""

    def __init__(self, target: str, extra=(), probe: str | None = None):
        """``extra``: more arguments for the project's server; ``probe``: a
        file for the server-side latency probe (bench/probe), or None."""
        self.target = target
        self.tmp = tempfile.mkdtemp(prefix="natter-bench-")
        self.port = free_port()
        if target == "project":
            argv = [project_python(), "-m", "server", "--host", "127.0.0.1", "--port", str(self.port),
                    "--db", os.path.join(self.tmp, "history.db"), "--rate-limit", "0",
                    "--max-clients", "20000", *extra]
        else:
            argv = [shutil.which("ngircd") or "/usr/sbin/ngircd", "--nodaemon", "--config",
                    ngircd_conf(self.tmp, self.port)]
        self.stderr = open(os.path.join(self.tmp, "stderr"), "w")
        env = None
        if probe is not None and target == "project":
            path = os.environ.get("PYTHONPATH")
            env = dict(os.environ, NATTER_PROBE_OUT=probe,
                       PYTHONPATH=PROBE_DIR + (os.pathsep + path if path else ""))
        self.proc = subprocess.Popen(argv, cwd=ROOT, stdout=subprocess.PIPE, stderr=self.stderr,
                                     start_new_session=True, env=env)
        self.pid = self.proc.pid

    def __enter__(self) -> "Server":
        try:
            self.wait_ready(20.0)
        except BaseException:
            self.__exit__()
            raise
        return self

    def wait_ready(self, secs: float) -> None:
        deadline = time.monotonic() + secs
        if self.target == "project":
            # The server prints one line once it listens; no probe connection needed.
            with selectors.DefaultSelector() as sel:
                sel.register(self.proc.stdout, selectors.EVENT_READ)
                while time.monotonic() < deadline and self.proc.poll() is None:
                    if sel.select(0.1):
                        if self.proc.stdout.readline():
                            return
                        break
        else:
            while time.monotonic() < deadline and self.proc.poll() is None:
                try:
                    with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                        time.sleep(0.2)
                        return
                except OSError:
                    time.sleep(0.05)
        raise RuntimeError(f"{self.target} server did not start: {self.log_tail()}")

    def cpu_seconds(self) -> float:
        """utime + stime of every thread, from /proc/PID/stat."""
        return loadgen.proc_cpu_seconds(self.pid)

    def memory_kib(self, key: str) -> int:
        with open(f"/proc/{self.pid}/status") as f:
            for line in f:
                if line.startswith(key + ":"):
                    return int(line.split()[1])
        return 0

    def log_tail(self) -> str:
        self.stderr.flush()
        try:
            with open(os.path.join(self.tmp, "stderr"), errors="replace") as f:
                return f.read()[-300:].strip() or "(no output)"
        except OSError:
            return "(no log)"

    def __exit__(self, *exc) -> None:
        try:
            os.killpg(self.pid, signal.SIGTERM)
            self.proc.wait(timeout=10)
        except (ProcessLookupError, subprocess.TimeoutExpired):
            try:
                os.killpg(self.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            self.proc.wait(timeout=10)
        self.proc.stdout.close()
        self.stderr.close()
        shutil.rmtree(self.tmp, ignore_errors=True)


# -- one scenario, Python load generator --------------------------------------

def run_python(name: str, spec: dict, target: str, workers: int, server_args=(), during=None,
               probe: bool = False) -> dict:
    """``during(srv, done)``: started on a thread at "go", told to end by the
    Event ``done`` once the generator reports (bench/files.py's transfers).
    ``probe``: also measure the server's share of the latency (bench/probe)."""
    row = {"scenario": name, "loadgen": f"python x{workers}", "server": target,
           "clients": spec["clients"], "senders": spec["senders"]}
    proto = "jsonl" if target == "project" else "irc"
    probe_file = None
    if probe and target == "project":
        fd, probe_file = tempfile.mkstemp(prefix="natter-probe-", suffix=".json")
        os.close(fd)
    try:
        return _run_python(row, spec, target, workers, server_args, during, proto, probe_file)
    finally:
        if probe_file is not None:
            try:
                with open(probe_file) as f:
                    got = json.load(f)
                row.update(server_p50_ms=got["p50_ms"], server_p99_ms=got["p99_ms"], server_says=got["count"])
            except (OSError, ValueError, KeyError):
                row["server_p99_ms"] = None      # the probe wrote nothing (the server did not start?)
            os.unlink(probe_file)


def _run_python(row, spec, target, workers, server_args, during, proto, probe_file) -> dict:
    with Server(target, server_args, probe_file) as srv:
        plan = loadgen.Plan(host="127.0.0.1", port=srv.port, proto=proto,
                            connect_gap=0.0 if target == "project" else 0.003,  # ngircd resets connect storms
                            nonce=secrets.token_hex(4), **spec)
        rss_empty = srv.memory_kib("VmRSS")
        ctx = multiprocessing.get_context("fork" if "fork" in multiprocessing.get_all_start_methods()
                                          else "spawn")
        pipes, procs = [], []
        for w in range(workers):
            mine, theirs = ctx.Pipe()
            cids = list(range(w, spec["clients"], workers))
            p = ctx.Process(target=loadgen.worker, args=(plan, cids, theirs, workers),
                            name=f"loadgen-{w}", daemon=True)
            p.start()
            theirs.close()
            pipes.append(mine)
            procs.append(p)
        try:
            t_connect = time.monotonic()
            ready = _collect(pipes, "ready", plan.connect_timeout + 30)
            row["connect_s"] = time.monotonic() - t_connect
            ok_clients = sum(r[1] for r in ready)
            ok_senders = sum(r[2] for r in ready)
            failures = [f for r in ready for f in r[3]]
            row["rss_connected_kib"] = srv.memory_kib("VmRSS")
            cpu_go = srv.cpu_seconds()
            if during is not None:
                finished = threading.Event()
                side = threading.Thread(target=during, args=(srv, finished, row), name="bench-during", daemon=True)
                side.start()
            t0 = time.monotonic_ns() + 200_000_000
            for pipe in pipes:
                pipe.send(("go", t0, ok_senders))
            try:
                done = [d[1] for d in _collect(pipes, "done", plan.timeout + 60)]
            finally:
                if during is not None:
                    finished.set()
                    side.join(120)
            row["server_cpu_run_s"] = srv.cpu_seconds() - cpu_go
            row["server_cpu_s"] = srv.cpu_seconds()
            row["peak_rss_kib"] = srv.memory_kib("VmHWM")
            row["plus_kib_per_client"] = (row["rss_connected_kib"] - rss_empty) / max(1, ok_clients)
        except Exception as e:
            row["error"] = f"{type(e).__name__}: {e}"
            return row
        finally:
            for p in procs:
                p.join(5)
                if p.is_alive():
                    p.terminate()
                    p.join(5)
    got = loadgen.merged(done)
    got.pop("messages_per_s")
    per_msg = ok_clients if proto == "jsonl" else ok_clients - 1
    expected = sum(d["expected"] for d in done) if spec.get("rooms") else got["sent"] * per_msg
    row.update(ok_clients=ok_clients, expected=expected, lost=expected - got["delivered"], **got,
               loadgen_chunks=sum(d["chunks"] for d in done))
    row["failures"] = (failures + got["failures"])[:10]
    row["kib_per_client"] = row["peak_rss_kib"] / max(1, ok_clients)
    return row


def _collect(pipes: list, kind: str, timeout: float) -> list:
    """One message of ``kind`` from every worker, or raise."""
    deadline = time.monotonic() + timeout
    got = {}
    while len(got) < len(pipes):
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError(f"{len(pipes) - len(got)} load-generator workers did not report {kind!r}")
        for pipe in multiprocessing.connection.wait([p for p in pipes if id(p) not in got], left):
            try:
                msg = pipe.recv()
            except EOFError:
                raise RuntimeError("a load-generator worker died") from None
            if msg[0] == "error":
                raise RuntimeError(f"load-generator worker: {msg[1]}")
            if msg[0] == kind:
                got[id(pipe)] = msg
    return [got[id(p)] for p in pipes]


# -- one scenario, the Rust yardstick's generator ------------------------------

def run_rust(name: str, spec: dict, target: str, exe: str) -> dict:
    row = {"scenario": name, "loadgen": "rust", "server": target,
           "clients": spec["clients"], "senders": spec["senders"]}
    if spec.get("rooms"):
        row["error"] = "the Rust generator speaks protocol v1 only (one room)"
        return row
    args = [exe, "--proto", "jsonl" if target == "project" else "irc", "--clients", str(spec["clients"]),
            "--senders", str(spec["senders"]), "--mode", spec["mode"], "--timeout", str(spec["timeout"])]
    if spec["mode"] == "burst":
        args += ["--msgs", str(spec["msgs"])]
    else:
        args += ["--rate", str(spec["rate"]), "--secs", str(spec["secs"])]
    if target != "project":
        args += ["--connect-gap-us", "3000"]
    with Server(target) as srv:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        try:
            res = subprocess.run(args + ["--port", str(srv.port)], capture_output=True, text=True, timeout=200)
        except subprocess.TimeoutExpired:
            row["error"] = "the Rust load generator timed out (200 s)"
            return row
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        row["server_cpu_s"] = srv.cpu_seconds()
        row["peak_rss_kib"] = srv.memory_kib("VmHWM")
    lines = [line for line in res.stdout.splitlines() if line.startswith("{")]
    if not lines:
        row["error"] = res.stderr.strip()[-200:] or "no output"
        return row
    r = json.loads(lines[-1])
    row.update(ok_clients=r["ok_clients"], sent=r["sent"], expected=r["expected"], delivered=r["delivered"],
               lost=r["lost"], span_s=r["span_s"], deliveries_per_s=r["deliveries_per_s"],
               p50_ms=r["p50_ms"], p99_ms=r["p99_ms"], max_ms=r["max_ms"], connect_s=r["connect_s"],
               loadgen_cpu_s=(after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime),
               kib_per_client=row["peak_rss_kib"] / max(1, r["ok_clients"]))
    return row


# -- output --------------------------------------------------------------------

def machine() -> str:
    model = "?"
    try:
        with open("/proc/cpuinfo") as f:
            model = next((line.split(":", 1)[1].strip() for line in f if line.startswith("model name")), "?")
    except OSError:
        pass
    return (f"{os.cpu_count()} cores ({model}), Linux {platform.release()}, "
            f"Python {platform.python_version()}")


def loadavg() -> str:
    try:
        with open("/proc/loadavg") as f:
            return " ".join(f.read().split()[:3])
    except OSError:
        return "?"


def fmt_row(r: dict) -> str:
    head = f"| {r['scenario']} | {r['loadgen']} | {r['server']} "
    if "error" in r:
        return head + f"| error: {r['error'][:100]} |" + " |" * 13
    cpu_run = f"{r['server_cpu_run_s']:.1f}" if "server_cpu_run_s" in r else "-"
    plus = f"{r['plus_kib_per_client']:.0f}" if "plus_kib_per_client" in r else "-"
    return (head + f"| {r['ok_clients']}/{r['clients']} | {r['senders']} | {r['sent']} "
            f"| {r['delivered']}/{r['expected']} | {r['lost']} | {r['deliveries_per_s']:,.0f} "
            f"| {r['p50_ms']:.1f} | {r['p99_ms']:.1f} | {r['max_ms']:.1f} "
            f"| {cpu_run} / {r['server_cpu_s']:.1f} | {r['loadgen_cpu_s']:.1f} "
            f"| {r['peak_rss_kib'] / 1024:.1f} | {r['kib_per_client']:.1f} | {plus} |")


PROBE_HEADER = ("| scenario | says | server p50 ms | server p99 ms | end to end p50 ms | end to end p99 ms |\n"
                "|---|---|---|---|---|---|")


def fmt_probe(r: dict) -> str:
    if r.get("server_p99_ms") is None:
        return f"| {r['scenario']} | - | probe wrote nothing | | | |"
    return (f"| {r['scenario']} | {r['server_says']} | {r['server_p50_ms']:.1f} | {r['server_p99_ms']:.1f} "
            f"| {r.get('p50_ms', 0):.1f} | {r.get('p99_ms', 0):.1f} |")


HEADER = ("| scenario | load gen | server | clients | senders | messages | delivered/expected | lost "
          "| deliveries/s | p50 ms | p99 ms | max ms | server CPU s (run / all) | load-gen CPU s "
          "| peak RSS MiB | KiB/client | +KiB/client |\n"
          "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")


def raise_fd_limit() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY:
        hard = 1 << 20
    if soft < hard:
        resource.setrlimit(resource.RLIMIT_NOFILE, (hard, hard))


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(prog="bench/fanout.py", description=__doc__.split("\n\n")[0])
    ap.add_argument("--scenarios", default=",".join(n for n in SCENARIOS if n not in ROOM_SCENARIOS),
                    help=f"comma-separated, from {', '.join(SCENARIOS)} (default: the first four; "
                         f"--scenarios {','.join(ROOM_SCENARIOS)} compares rooms)")
    ap.add_argument("--quick", action="store_true", help=f"a smoke run instead: {', '.join(QUICK)}")
    ap.add_argument("--workers", type=int, default=os.cpu_count() or 1,
                    help="load-generator processes (default %(default)s: one per core)")
    ap.add_argument("--target", choices=("project", "ngircd"), default="project",
                    help="the server to drive; ngircd measures this generator's ceiling")
    ap.add_argument("--rust-loadgen", metavar="PATH",
                    help="also run the Rust yardstick's generator (built by ../shared/bench/compare.py "
                         "as /tmp/chat-loadgen) on each scenario, for a row beside ours")
    ap.add_argument("--probe", action="store_true",
                    help="also measure the server's share of each message's latency, from its reader's "
                         "recv to the end of the hub pass that wrote it (bench/probe; project only)")
    ap.add_argument("--json", metavar="FILE", help="also write the raw rows here")
    a = ap.parse_args(argv)
    table = QUICK if a.quick else SCENARIOS
    names = list(QUICK) if a.quick else [s.strip() for s in a.scenarios.split(",") if s.strip()]
    unknown = [n for n in names if n not in table]
    if unknown:
        ap.error(f"unknown scenario(s) {', '.join(unknown)}; choose from {', '.join(table)}")
    if a.target == "ngircd" and not shutil.which("ngircd") and not os.path.exists("/usr/sbin/ngircd"):
        ap.error("ngircd is not installed (apt-get install ngircd)")
    raise_fd_limit()
    print(f"Machine: {machine()}. Load average before: {loadavg()}.", flush=True)
    rows = []
    for name in names:
        runs = [("python", lambda: run_python(name, table[name], a.target, max(1, a.workers), probe=a.probe))]
        if a.rust_loadgen:
            runs.append(("rust", lambda: run_rust(name, table[name], a.target, a.rust_loadgen)))
        for kind, run in runs:
            print(f"{name} ({kind} load generator, {a.target}) ...", file=sys.stderr, flush=True)
            try:
                row = run()
            except Exception as e:
                row = {"scenario": name, "loadgen": kind, "server": a.target, "error": str(e)}
            row["loadavg"] = loadavg()
            rows.append(row)
            print(json.dumps({k: v for k, v in row.items() if k != "failures"}), file=sys.stderr, flush=True)
    print()
    print(HEADER)
    for r in rows:
        print(fmt_row(r))
    probed = [r for r in rows if "server_p99_ms" in r]
    if probed:
        print("\nThe server's share (bench/probe: from a say's recv to the end of the pass that wrote it):\n")
        print(PROBE_HEADER)
        for r in probed:
            print(fmt_probe(r))
    print(f"\nLoad average after: {loadavg()}.")
    for r in rows:
        if r.get("failures"):
            print(f"{r['scenario']} ({r['loadgen']}): {len(r['failures'])} client failures, first: "
                  f"{r['failures'][0]}")
    return loadgen.finish(rows, a.json)


if __name__ == "__main__":
    sys.exit(main())
