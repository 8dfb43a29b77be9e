"""A node's start: its start-up line (Redis named without its password, and
whether acknowledged messages survive a Redis crash), the appendonly check
(a warning, or --require-durable's refusal), and a Redis with a password.
Real redis-servers and ``python -m server --redis`` processes
(tests/redistools.py)."""
from __future__ import annotations

import subprocess
import sys

import pytest

from tests.netclient import LineClient
from tests.redistools import ROOT, NodeProcess, RedisServer

pytestmark = pytest.mark.timeout(90)

DURABLE = "Sharing the rooms through Redis: acknowledged messages survive a Redis crash only with appendonly yes"


def _say_across(from_port: int, to_port: int, text: str) -> None:
    """A client of one node says text; its acknowledgement comes, and a
    client of the other node gets it."""
    ann = LineClient(from_port, timeout=10)
    ann.hello("ann", v=2)
    bob = LineClient(to_port, timeout=10)
    bob.hello("bob", v=2)
    ann.send({"type": "say", "text": text, "ref": "x1"})
    assert ann.recv_type("message")["ref"] == "x1"
    assert bob.recv_type("message")["text"] == text
    ann.close()
    bob.close()


def test_the_start_up_line_names_redis_and_says_appendonly_is_on(tmp_path, redis_server):
    node = NodeProcess(str(tmp_path / "node"), redis_server.url)
    try:
        log = node.log()
        assert f"history in {redis_server.url}" in log
        assert f"{DURABLE} (it is on)" in log
        assert "appendonly is off" not in log
    finally:
        node.stop()


def test_appendonly_off_is_a_warning_and_the_start_up_line_says_so(tmp_path, redis_server):
    volatile = RedisServer(str(tmp_path / "volatile"), appendonly=False)
    node = None
    try:
        node = NodeProcess(str(tmp_path / "node"), volatile.url)
        log = node.log()
        assert f"{DURABLE} (IT IS OFF)" in log
        assert "appendonly is off" in log                   # the warning, before the line
        c = LineClient(node.port, timeout=10)               # and it serves
        c.hello("ann", v=2)
        c.close()
    finally:
        if node is not None:
            node.stop()
        volatile.stop()


def test_a_redis_that_will_not_say_is_said_and_refused_with_require_durable(tmp_path, redis_server):
    """A managed Redis with CONFIG disabled (here renamed away)."""
    managed = RedisServer(str(tmp_path / "managed"), args=("--rename-command", "CONFIG", ""))
    node = None
    try:
        node = NodeProcess(str(tmp_path / "node"), managed.url)
        assert f"{DURABLE} (Redis would not say)" in node.log()
        node.stop()
        done = subprocess.run([sys.executable, "-m", "server", "--port", "0", "--no-discovery", "--redis",
                               managed.url, "--require-durable"], cwd=ROOT, capture_output=True, text=True,
                              timeout=60, env={"NATTER_HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin"})
        assert done.returncode == 1, done.stderr
        assert "CONFIG command is disabled" in done.stderr and "Traceback" not in done.stderr
    finally:
        if node is not None:
            node.stop()
        managed.stop()


def test_a_password_in_the_url_is_used_by_every_node_and_never_shown(tmp_path, redis_server, make_server):
    secret = "s3cret-pass"
    guarded = RedisServer(str(tmp_path / "guarded"), password=secret)
    node = None
    try:
        assert secret in guarded.url
        node = NodeProcess(str(tmp_path / "node"), guarded.url)
        assert f"history in redis://***@127.0.0.1:{guarded.port}/0" in node.log()
        assert f"{DURABLE} (it is on)" in node.log()
        other = make_server(redis=guarded.url, rate_limit=0)
        assert secret not in other.describe()
        _say_across(node.port, other.port, "through a guarded Redis")
        wrong = guarded.url.replace(secret, "wrong-pass")
        done = subprocess.run([sys.executable, "-m", "server", "--port", "0", "--no-discovery", "--redis", wrong],
                              cwd=ROOT, capture_output=True, text=True, timeout=60,
                              env={"NATTER_HOME": str(tmp_path / "home2"), "PATH": "/usr/bin:/bin"})
        assert done.returncode == 1, done.stderr
        assert "natter server:" in done.stderr and "Traceback" not in done.stderr
        assert "wrong-pass" not in done.stderr
        node.stop()
        assert secret not in node.log()
        node = None
    finally:
        if node is not None:
            node.stop()
        guarded.stop()


def test_a_tls_redis_with_a_password_is_joined_through_rediss(tmp_path, redis_server, make_server):
    """rediss:// (redis-py's TLS, the CA in the URL's ssl_ca_certs) with a
    password: two nodes chat through it, and a plain redis:// to its port is
    refused at start with a sentence."""
    from server.tls import ensure_certificate
    cert, key = ensure_certificate(str(tmp_path / "redis-tls"))
    secure = RedisServer(str(tmp_path / "secure"), password="tls-pass", tls=(cert, key))
    node = None
    try:
        assert secure.url.startswith("rediss://:tls-pass@")
        node = NodeProcess(str(tmp_path / "node"), secure.url)
        assert f"history in rediss://***@127.0.0.1:{secure.port}/0" in node.log()
        assert f"{DURABLE} (it is on)" in node.log() and "tls-pass" not in node.log()
        other = make_server(redis=secure.url, rate_limit=0)
        _say_across(other.port, node.port, "over TLS to Redis")
        plain = f"redis://:tls-pass@127.0.0.1:{secure.port}/0"
        done = subprocess.run([sys.executable, "-m", "server", "--port", "0", "--no-discovery", "--redis", plain],
                              cwd=ROOT, capture_output=True, text=True, timeout=60,
                              env={"NATTER_HOME": str(tmp_path / "home2"), "PATH": "/usr/bin:/bin"})
        assert done.returncode == 1 and "natter server:" in done.stderr and "Traceback" not in done.stderr
    finally:
        if node is not None:
            node.stop()
        secure.stop()
