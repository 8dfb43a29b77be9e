"""A real redis-server for the tests, and server nodes that share it.

:class:`RedisServer` runs ``redis-server`` on a free loopback port with its
own data directory, ``--appendonly yes --save ''`` (Debian's default config
would keep no stream at all), and stops it by its pid. ``restart`` starts it
again on the same directory (what it replays from its append-only file is
what a crash left); ``kill`` is SIGKILL.

:class:`NodeProcess` is ``python -m server --redis URL`` in a process of its
own, so a test can SIGKILL a node.
"""
from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class RedisServer:
    def __init__(self, directory: str, appendonly: bool = True, password: str | None = None, args: tuple = (),
                 tls: tuple[str, str] | None = None):
        self.dir = directory
        self.port = free_port()
        self.appendonly = appendonly
        self.password = password        # requirepass: the URL carries it (redis://:PASSWORD@...)
        self.args = tuple(args)         # more redis-server options
        self.tls = tls                  # (cert, key): TLS only on the port (rediss://, the cert as its CA)
        self.proc = None
        self.start()

    @property
    def url(self) -> str:
        auth = f":{self.password}@" if self.password else ""
        if self.tls:
            return f"rediss://{auth}127.0.0.1:{self.port}/0?ssl_ca_certs={self.tls[0]}"
        return f"redis://{auth}127.0.0.1:{self.port}/0"

    def start(self) -> None:
        os.makedirs(self.dir, exist_ok=True)
        self.proc = subprocess.Popen(
            ["redis-server", *(["--port", "0", "--tls-port", str(self.port), "--tls-cert-file", self.tls[0],
                                "--tls-key-file", self.tls[1], "--tls-ca-cert-file", self.tls[0],
                                "--tls-auth-clients", "no"] if self.tls else ["--port", str(self.port)]),
             "--bind", "127.0.0.1", "--dir", self.dir,
             "--appendonly", "yes" if self.appendonly else "no", "--save", "", "--daemonize", "no",
             "--logfile", os.path.join(self.dir, "redis.log"),
             *(["--requirepass", self.password] if self.password else []), *self.args],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 10
        while not self.ping():
            if self.proc.poll() is not None:
                raise RuntimeError(f"redis-server exited {self.proc.returncode}: {self.log()[-500:]}")
            if time.monotonic() > deadline:
                raise RuntimeError("redis-server did not answer within 10 s")
            time.sleep(0.02)

    def ping(self) -> bool:
        """True when it answers PING with PONG (and is done loading its file)."""
        try:
            with socket.create_connection(("127.0.0.1", self.port), timeout=0.5) as plain:
                s = plain
                if self.tls:
                    import ssl
                    s = ssl.create_default_context(cafile=self.tls[0]).wrap_socket(plain,
                                                                                  server_hostname="127.0.0.1")
                if self.password:
                    s.sendall(f"AUTH {self.password}\r\n".encode())
                    if not s.recv(64).startswith(b"+OK"):
                        return False
                s.sendall(b"PING\r\n")
                return s.recv(64).startswith(b"+PONG")
        except OSError:
            return False

    def log(self) -> str:
        try:
            with open(os.path.join(self.dir, "redis.log"), encoding="utf-8", errors="replace") as f:
                return f.read()
        except OSError:
            return ""

    def kill(self) -> None:
        """SIGKILL, and wait for it."""
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def restart(self) -> None:
        """Start again on the same port and directory (after kill)."""
        self.kill()
        self.start()

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)


class NodeProcess:
    """``python -m server --redis URL --port 0`` in its own process; what it
    prints goes to ``HOME/node.log`` (a pipe nobody reads would block it)."""

    def __init__(self, home: str, url: str, *args: str, timeout: float = 60):
        os.makedirs(home, exist_ok=True)
        env = dict(os.environ, NATTER_HOME=home, PYTHONUNBUFFERED="1")
        self.log_path = os.path.join(home, "node.log")
        self._out = open(self.log_path, "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "server", "--port", "0", "--no-discovery", "--rate-limit", "0",
             "--redis", url, *args],
            cwd=ROOT, env=env, stdout=self._out, stderr=subprocess.STDOUT, text=True)
        deadline = time.monotonic() + timeout
        while True:
            m = re.search(r"listening on \S+:(\d+) ", self.log())
            if m is not None:
                break
            if self.proc.poll() is not None or time.monotonic() > deadline:
                self.kill()
                raise RuntimeError(f"the node did not start: {self.log()}")
            time.sleep(0.02)
        self.port = int(m.group(1))

    def log(self) -> str:
        with open(self.log_path, encoding="utf-8", errors="replace") as f:
            return f.read()

    def kill(self) -> None:
        """SIGKILL, and wait for it."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
        self.proc.wait(10)
        self._out.close()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(5)
        self._out.close()


def stream(url: str) -> list[dict]:
    """Every entry of the deployment's stream, oldest first: id, kind, room,
    from_session, ref (what the checks compare clients with)."""
    import redis
    db = redis.Redis.from_url(url)
    try:
        out = []
        for entry_id, fields in db.xrange("natter:log"):
            f = {k.decode(): v.decode() for k, v in fields.items()}
            out.append({"id": int(entry_id.split(b"-")[1]), "kind": f.get("kind"), "room": f.get("room"),
                        "from_session": f.get("from_session"), "ref": f.get("ref")})
        return out
    finally:
        db.close()


def read_until_stored(url: str, count: int, client=None, timeout: float = 30) -> None:
    """Return as soon as the stream holds ``count`` entries (polled every few
    ms, so that a kill that follows lands mid-burst), reading ``client``'s
    frames meanwhile when one is given."""
    import redis
    db = redis.Redis.from_url(url)
    deadline = time.monotonic() + timeout
    try:
        while db.xlen("natter:log") < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"the stream did not reach {count} entries within {timeout} s")
            if client is not None:
                try:
                    client.recv(0.002)
                except TimeoutError:
                    pass
            else:
                time.sleep(0.002)
    finally:
        db.close()


def event_ids(frames) -> list[int]:
    """The ids of the stored events among frames, replays opened, in order."""
    out = []
    for f in frames:
        if f["type"] == "replay":
            out.extend(e["id"] for e in f["frames"] if "id" in e)
        elif f["type"] in ("message", "dm", "topic") and "id" in f:
            out.append(f["id"])
    return out


def check_gap_free(ids: list[int], log_ids: list[int]) -> None:
    """A client's ids strictly increase and are the log's own, from its first on."""
    assert ids == sorted(set(ids)), f"ids not strictly increasing: {ids}"
    if ids:
        start = log_ids.index(ids[0])
        assert ids == log_ids[start:start + len(ids)], "a client missed or repeated ids of the log"
