"""Start-up and graceful shutdown: in-process, and `python -m server` as a
real subprocess stopped by SIGINT or SIGTERM. Only 127.0.0.1 is contacted."""
from __future__ import annotations

import os
import re
import signal
import sqlite3
import subprocess
import sys
import threading
import time

import pytest

from server import protocol as p
from tests.netclient import LineClient
from tests.servertools import chat_works, expect

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def stored_texts(db: str) -> list[str]:
    con = sqlite3.connect(db)
    try:
        return [r[0] for r in con.execute("SELECT text FROM messages ORDER BY id")]
    finally:
        con.close()


# --------------------------------------------------------------------------
# in-process


def test_shutdown_sends_a_notice_flushes_history_and_closes(make_server, tmp_path):
    db = str(tmp_path / "h.db")
    srv = make_server(rate_limit=0, db=db)
    a, b = LineClient(srv.port), LineClient(srv.port)
    quiet = LineClient(srv.port)                     # connected, never said hello
    try:
        a.hello("alice")
        b.hello("bob")
        expect(a, "joined")
        chat_works(a, b, text="before the end")
        t = time.monotonic()
        stopper = threading.Thread(target=srv.shutdown, args=("Maintenance, back soon.",))
        stopper.start()
        for c in (a, b, quiet):
            n = expect(c, "notice", code=p.SHUTDOWN)
            assert n["text"] == "Maintenance, back soon."
            assert c.closed_by_server(3)         # FIN after the notice
            c.close()                            # as a client does when told
        stopper.join(10)
        assert not stopper.is_alive() and time.monotonic() - t < 10
        assert stored_texts(db) == ["before the end"]
        with pytest.raises(OSError):
            LineClient(srv.port, timeout=1)          # no longer listening
    finally:
        for c in (a, b, quiet):
            c.close()


def test_shutdown_is_idempotent(make_server):
    srv = make_server(rate_limit=0)
    c = LineClient(srv.port)
    c.hello("x")
    c.close()
    srv.shutdown()
    srv.shutdown()
    assert srv.hub.finished.is_set()


def test_threads_end_after_shutdown(make_server):
    before = {t.ident for t in threading.enumerate()}
    srv = make_server(rate_limit=0)
    cs = [LineClient(srv.port) for _ in range(5)]
    for i, c in enumerate(cs):
        c.hello(f"t{i}")
    stopper = threading.Thread(target=srv.shutdown)
    stopper.start()
    for c in cs:
        c.recv_type("notice")
        c.close()
    stopper.join(10)
    leftovers = [t for t in threading.enumerate() if t.ident not in before and t.is_alive()]
    assert not leftovers, leftovers


# --------------------------------------------------------------------------
# python -m server as a subprocess


class ServerProcess:
    def __init__(self, tmp_path, *args: str):
        self.db = str(tmp_path / "proc.db")
        env = dict(os.environ, NATTER_HOME=str(tmp_path / "home"), PYTHONUNBUFFERED="1")
        self.stderr_path = tmp_path / "server.log"
        self._stderr = open(self.stderr_path, "wb")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "server", "--port", "0", "--db", self.db, "--rate-limit", "0", *args],
            cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=self._stderr, text=True)
        self.line = self.proc.stdout.readline()
        m = re.search(r"listening on \S+:(\d+) ", self.line)
        assert m, f"no start-up line: {self.line!r}; log: {self.log()}"
        self.port = int(m.group(1))

    def log(self) -> str:
        self._stderr.flush()
        return self.stderr_path.read_text(errors="replace")

    def stop(self, sig) -> int:
        self.proc.send_signal(sig)
        try:
            return self.proc.wait(15)
        finally:
            self.proc.stdout.close()

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)
        self.proc.stdout.close()
        self._stderr.close()


@pytest.mark.timeout(40)
@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_subprocess_exits_0_on_signal_after_telling_clients(tmp_path, sig):
    srv = ServerProcess(tmp_path, "--host", "127.0.0.1")
    try:
        assert "this computer only" in srv.line and f"history in {srv.db}" in srv.line
        a, b = LineClient(srv.port), LineClient(srv.port)
        a.hello("alice")
        b.hello("bob")
        expect(a, "joined")
        for i in range(20):
            a.send({"type": "say", "text": f"keep {i}"})
        for i in range(20):
            expect(a, "message", text=f"keep {i}")
            expect(b, "message", text=f"keep {i}")
        t = time.monotonic()
        code = None
        srv.proc.send_signal(sig)
        for c in (a, b):
            expect(c, "notice", code=p.SHUTDOWN, timeout=10)
            c.close()                               # a client that reads the notice closes
        code = srv.proc.wait(15)
        assert code == 0, srv.log()
        assert time.monotonic() - t < 10
        assert stored_texts(srv.db) == [f"keep {i}" for i in range(20)]
        assert "Traceback" not in srv.log()
    finally:
        srv.kill()


@pytest.mark.timeout(40)
def test_subprocess_exits_0_even_when_clients_ignore_the_notice(tmp_path):
    srv = ServerProcess(tmp_path)
    try:
        stubborn = LineClient(srv.port)
        stubborn.hello("stubborn")
        silent = LineClient(srv.port)               # never said hello
        t = time.monotonic()
        assert srv.stop(signal.SIGTERM) == 0, srv.log()
        assert time.monotonic() - t < 12
        expect(stubborn, "notice", code=p.SHUTDOWN)
        assert stubborn.closed_by_server(3) and silent.closed_by_server(3)
        stubborn.close()
        silent.close()
    finally:
        srv.kill()


@pytest.mark.timeout(40)
def test_subprocess_on_all_interfaces_says_it_serves_the_lan(tmp_path):
    srv = ServerProcess(tmp_path, "--host", "0.0.0.0")
    try:
        assert "0.0.0.0" in srv.line and "SERVING THE LAN" in srv.line
        assert f"history in {srv.db}" in srv.line
        c = LineClient(srv.port, host="127.0.0.1")  # reachable, through loopback only
        c.hello("local")
        chat_works(c)
        c.close()
        assert srv.stop(signal.SIGINT) == 0, srv.log()
    finally:
        srv.kill()


@pytest.mark.timeout(40)
def test_subprocess_default_history_path_is_in_the_data_directory(tmp_path):
    env = dict(os.environ, NATTER_HOME=str(tmp_path / "home"), PYTHONUNBUFFERED="1")
    proc = subprocess.Popen([sys.executable, "-m", "server", "--port", "0"], cwd=ROOT, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        line = proc.stdout.readline()
        expected = os.path.join(str(tmp_path / "home"), "data", "history.db")
        assert f"history in {expected}" in line, line
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
        assert os.path.exists(expected)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        proc.stdout.close()


def test_port_in_use_is_a_clear_error_and_exit_1(make_server, tmp_path):
    srv = make_server(rate_limit=0)
    env = dict(os.environ, NATTER_HOME=str(tmp_path / "home"))
    out = subprocess.run([sys.executable, "-m", "server", "--port", str(srv.port), "--db", str(tmp_path / "x.db")],
                         cwd=ROOT, env=env, capture_output=True, text=True, timeout=30)
    assert out.returncode == 1
    assert "already in use" in out.stderr and "Traceback" not in out.stderr


# --------------------------------------------------------------------------
# The history file: in use, damaged


def run_server(tmp_path, db: str, timeout: float = 30) -> subprocess.CompletedProcess:
    env = dict(os.environ, NATTER_HOME=str(tmp_path / "home"))
    return subprocess.run([sys.executable, "-m", "server", "--port", "0", "--db", db], cwd=ROOT, env=env,
                          capture_output=True, text=True, timeout=timeout)


@pytest.mark.timeout(40)
def test_a_second_server_on_a_history_in_use_exits_1_naming_the_first(tmp_path):
    first = ServerProcess(tmp_path)
    try:
        out = run_server(tmp_path, first.db)
        assert out.returncode == 1, out.stderr
        assert out.stderr == (f"natter server: the history file {first.db} is in use by another Natter server "
                              f"(process {first.proc.pid}); stop it first, or give this one another history "
                              "file with --db\n")
        c = LineClient(first.port)                  # the first one never noticed
        c.hello("still")
        chat_works(c)
        c.close()
        first.proc.kill()                           # even kill -9 leaves no lock behind
        first.proc.wait(10)
        again = ServerProcess(tmp_path)
        assert again.stop(signal.SIGTERM) == 0, again.log()
    finally:
        first.kill()


@pytest.mark.timeout(40)
def test_a_damaged_history_file_exits_1_with_a_sentence_and_no_traceback(tmp_path):
    from tests.historytools import damage_middle, make_history
    db = str(tmp_path / "damaged.db")
    make_history(db, 3000)
    damage_middle(db)
    out = run_server(tmp_path, db)
    assert out.returncode == 1
    assert out.stderr.startswith(f"natter server: the history file {db} is damaged (database disk image is "
                                 "malformed"), out.stderr
    assert "move it aside" in out.stderr and "Traceback" not in out.stderr and out.stderr.count("\n") == 1


@pytest.mark.timeout(40)
def test_damage_found_while_running_stops_with_exit_1_and_a_sentence(tmp_path):
    from tests.historytools import damage_middle, make_history, poke_from_outside
    make_history(str(tmp_path / "proc.db"), 5000)       # ServerProcess's file
    srv = ServerProcess(tmp_path)
    try:
        damage_middle(srv.db)
        poke_from_outside(srv.db)
        c = LineClient(srv.port)
        c.send({"type": "hello", "nick": "ann", "since": 0})
        expect(c, "notice", code=p.SHUTDOWN)
        c.close()
        assert srv.proc.wait(15) == 1
        log = srv.log()
        assert f"natter server: stopped: the history file {srv.db} is damaged" in log, log
        assert "Traceback" not in log
    finally:
        srv.kill()
