"""A throwaway LAN for the tests: network namespaces as computers, one
namespace holding a bridge as the switch, a veth pair from each computer
to it. Addresses are documentation ones (RFC 5737: 198.51.100.0/24 and
203.0.113.0/24), there is no route out, and nothing is made in the test
machine's own namespace, so all traffic stays in the lab. :func:`lab`
builds it and tears it down in ``finally``, stopping the processes it
started first; it skips (with the reason printed) where ``ip netns`` is not
allowed, which needs root.

Programs run inside with ``ip netns exec``: :meth:`Lab.run` and
:meth:`Lab.popen`, with the test's environment minus its discovery
settings (the namespaces have their own port 30000 and their own
interfaces) and a home folder of their own.
"""
from __future__ import annotations

import contextlib
import itertools
import json
import os
import shutil
import subprocess
import sys
import time

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
_count = itertools.count(1)


def _which(name: str) -> str | None:
    """iproute2's commands live in /usr/sbin, not always on a user's PATH."""
    return shutil.which(name, path=os.pathsep.join([os.environ.get("PATH", ""), "/usr/sbin", "/sbin"]))


IP, BRIDGE = _which("ip") or "ip", _which("bridge") or "bridge"


def _ip(*args: str, check: bool = True) -> subprocess.CompletedProcess:
    out = subprocess.run([IP, *args], capture_output=True, text=True, timeout=20)
    if check and out.returncode != 0:
        raise RuntimeError(f"ip {' '.join(args)} failed: {out.stderr.strip()}")
    return out


class Lab:
    def __init__(self, home: str):
        self.prefix = f"natter{os.getpid()}x{next(_count)}"
        self.home = home
        self.switch = self.prefix + "-sw"
        self.hosts: dict[str, str] = {}        # name -> address
        self.namespaces: list[str] = []
        self.procs: list[subprocess.Popen] = []

    def ns(self, name: str) -> str:
        return f"{self.prefix}-{name}"

    def _add_ns(self, ns: str) -> None:
        _ip("netns", "add", ns)
        self.namespaces.append(ns)
        _ip("-n", ns, "link", "set", "lo", "up")

    def build(self, hosts: dict[str, str]) -> "Lab":
        """hosts: name -> "address/prefix", all on one bridge."""
        self._add_ns(self.switch)
        _ip("-n", self.switch, "link", "add", "br0", "type", "bridge")
        _ip("-n", self.switch, "link", "set", "br0", "up")
        for name, cidr in hosts.items():
            ns = self.ns(name)
            self._add_ns(ns)
            # Made directly in the two namespaces: nothing appears in ours.
            _ip("link", "add", "eth0", "netns", ns, "type", "veth", "peer", "name", f"p{name}",
                "netns", self.switch)
            _ip("-n", self.switch, "link", "set", f"p{name}", "master", "br0", "up")
            _ip("-n", ns, "addr", "add", cidr, "dev", "eth0")
            _ip("-n", ns, "link", "set", "eth0", "up")
            self.hosts[name] = cidr.split("/")[0]
        return self

    def isolate(self, name: str, on: bool = True) -> None:
        """Bridge port isolation, as guest Wi-Fi keeps devices apart."""
        out = subprocess.run([BRIDGE, "-n", self.switch, "link", "set", "dev", f"p{name}", "isolated",
                              "on" if on else "off"], capture_output=True, text=True, timeout=20)
        if out.returncode != 0:
            raise RuntimeError(f"bridge link set isolated failed: {out.stderr.strip()}")

    def ip(self, name: str, *args: str) -> None:
        _ip("-n", self.ns(name), *args)

    def env(self, name: str, extra: dict | None = None) -> dict:
        env = {k: v for k, v in os.environ.items() if not k.startswith("NATTER_DISCOVERY_")}
        env["NATTER_HOME"] = os.path.join(self.home, f"{name}-{len(self.procs)}-{time.monotonic_ns()}")
        env.update(extra or {})
        return env

    def _argv(self, name: str, argv: list[str]) -> list[str]:
        return [IP, "netns", "exec", self.ns(name), *argv]

    def run(self, name: str, argv: list[str], timeout: float = 60, **kw) -> subprocess.CompletedProcess:
        return subprocess.run(self._argv(name, argv), cwd=ROOT, env=self.env(name, kw.pop("env", None)),
                              capture_output=True, text=True, timeout=timeout, **kw)

    def python(self, name: str, *args: str, **kw) -> subprocess.CompletedProcess:
        return self.run(name, [sys.executable, *args], **kw)

    def popen(self, name: str, argv: list[str], **kw) -> subprocess.Popen:
        proc = subprocess.Popen(self._argv(name, argv), cwd=ROOT, env=self.env(name, kw.pop("env", None)),
                                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                text=True, **kw)
        self.procs.append(proc)
        return proc

    def server(self, name: str, *args: str, exe: list[str] | None = None) -> tuple[subprocess.Popen, int]:
        """A Natter server in ``name`` (``exe``: the packaged one); returns
        (process, chat port) once it listens."""
        argv = (exe or [sys.executable, "-m", "server"]) + ["--port", "0", "--db",
                                                            os.path.join(self.home, f"h{len(self.procs)}.db"), *args]
        proc = self.popen(name, argv)
        line = proc.stdout.readline()
        if "listening on" not in line:
            raise AssertionError(f"the server in {name} did not start: {line!r} {proc.stderr.read()[-2000:]}")
        return proc, int(line.split("listening on ")[1].split()[0].rsplit(":", 1)[1])

    def scan(self, name: str, exe: list[str] | None = None) -> list[dict]:
        out = self.run(name, (exe or [sys.executable, "-m", "chatgui"]) + ["--scan", "--json"])
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)

    def doctor(self, name: str, target: str, *args: str) -> dict:
        out = self.python(name, "-m", "chatgui", "--doctor", target, "--json", *args)
        assert out.returncode in (0, 1), out.stderr
        return json.loads(out.stdout)

    def close(self) -> None:
        for proc in self.procs:
            if proc.poll() is None:
                proc.terminate()
        for proc in self.procs:
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
            for stream in (proc.stdout, proc.stderr):
                if stream:
                    stream.close()
        for ns in reversed(self.namespaces):
            _ip("netns", "del", ns, check=False)
        self.namespaces.clear()


def unavailable() -> str | None:
    """Why a lab cannot be built here, or None."""
    if not _which("ip") or not _which("bridge"):
        return "the ip and bridge commands (iproute2) are not installed"
    if os.geteuid() != 0:
        return "ip netns needs root (CI runs as root)"
    probe = f"natter{os.getpid()}probe"
    out = subprocess.run([IP, "netns", "add", probe], capture_output=True, text=True, timeout=20)
    if out.returncode != 0:
        return f"ip netns is not allowed here: {out.stderr.strip()}"
    subprocess.run([IP, "netns", "del", probe], capture_output=True, timeout=20)
    return None


@contextlib.contextmanager
def lab(home: str, hosts: dict[str, str]):
    """Build a lab with these hosts, yield it, tear it down whatever happens."""
    why = unavailable()
    if why:
        print(f"SKIPPED: {why}")
        pytest.skip(why)
    the_lab = Lab(home)
    try:
        the_lab.build(hosts)
        yield the_lab
    finally:
        the_lab.close()



class Lines:
    """What a child prints, line by line, read on a ``test-lines`` thread
    (a buffered pipe and select() do not mix)."""

    def __init__(self, proc: subprocess.Popen):
        import queue
        import threading
        self.proc = proc
        self.q: queue.Queue = queue.Queue()
        threading.Thread(target=self._read, name="test-lines", daemon=True).start()

    def _read(self) -> None:
        for line in self.proc.stdout:
            self.q.put(line)
        self.q.put(None)

    def get(self, timeout: float) -> str:
        import queue
        try:
            line = self.q.get(timeout=timeout)
        except queue.Empty:
            raise AssertionError(f"no line from the child within {timeout} s") from None
        if line is None:
            raise AssertionError(f"the child ended: {self.proc.stderr.read()[-2000:]}")
        return line
