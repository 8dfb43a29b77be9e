"""Hostile input over real sockets: the server stays up, its memory stays
bounded, and the people chatting beside the attacker notice nothing.

The fuzzer sends random and malformed frames with hypothesis; the other
tests send huge lines, a megabyte of garbage, slowloris trickles, and
half-closed or vanishing sockets at a real server process whose resident
memory is read from /proc.
"""
from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.netclient import LineClient

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# --- the fuzzer -----------------------------------------------------------

_json_scalar = st.one_of(st.none(), st.booleans(), st.integers(min_value=-2**70, max_value=2**70),
                         st.floats(allow_nan=False), st.text(max_size=40))
_json_value = st.recursive(_json_scalar, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)), max_leaves=12)
_keys = st.sampled_from(["type", "nick", "text", "to", "ref", "since", "password", "resume"])
_types = st.one_of(st.sampled_from(["hello", "say", "dm", "nick", "ping", "pong", "bye", "welcome",
                                    "message", ""]), st.text(max_size=12), _json_value)
_frame_dict = st.builds(lambda t, rest: {"type": t, **rest}, _types,
                        st.dictionaries(_keys, _json_value, max_size=5))
_line = st.one_of(
    _frame_dict.map(lambda d: json.dumps(d).encode()),
    _frame_dict.map(lambda d: json.dumps(d, ensure_ascii=False).encode("utf-8", "surrogatepass")),
    st.binary(max_size=300),
    st.text(max_size=200).map(lambda s: s.encode("utf-8", "surrogatepass")),
    st.integers(min_value=60_000, max_value=70_000).map(lambda n: b"x" * n),   # around --max-line
)
_stream = st.lists(_line, min_size=1, max_size=8).map(lambda ls: b"\n".join(ls)) | st.binary(max_size=2000)


@pytest.fixture(scope="module")
def fuzz_room(tmp_path_factory):
    from server.app import ChatServer
    from server.config import ServerConfig
    cfg = ServerConfig(port=0, db=str(tmp_path_factory.mktemp("fuzz") / "h.db"), rate_limit=0,
                       handshake_timeout=2.0)
    srv = ChatServer(cfg).start()
    alice, bob = LineClient(srv.port), LineClient(srv.port)
    alice.hello("alice")
    bob.hello("bob")
    yield srv, alice, bob
    alice.close()
    bob.close()
    srv.shutdown()


_n = iter(range(10**9))


@pytest.mark.timeout(120)
@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                   HealthCheck.too_slow])
@given(stream=_stream, close_early=st.booleans())
def test_random_frames_never_hurt_the_server_or_bystanders(fuzz_room, stream, close_early):
    srv, alice, bob = fuzz_room
    hostile = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
    try:
        hostile.sendall(stream + (b"" if close_early else b"\n"))
        if close_early:
            hostile.close()         # vanish mid-frame
        else:
            hostile.settimeout(0.05)
            try:
                hostile.recv(65536)
            except OSError:
                pass
    finally:
        hostile.close()
    # The bystanders still chat; what the fuzzer made others say is skipped.
    ref = f"f{next(_n)}"
    alice.send({"type": "say", "text": "still here", "ref": ref})
    while True:
        f = alice.recv(5)
        if f["type"] == "message" and f.get("ref") == ref:
            break
        assert f["type"] in ("message", "joined", "left", "renamed", "dm"), f
    while True:
        f = bob.recv(5)
        if f["type"] == "message" and f["from"] == "alice" and f["text"] == "still here":
            break


# --- a real server process under abuse ---------------------------------------


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    raise AssertionError("no VmRSS")


@pytest.fixture
def server_process(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    proc = subprocess.Popen([sys.executable, "-m", "server", "--port", str(port), "--db",
                             str(tmp_path / "h.db"), "--rate-limit", "0", "--handshake-timeout", "3",
                             "--log-level", "error"], cwd=ROOT, stdout=subprocess.PIPE,
                            stderr=subprocess.DEVNULL, text=True)
    assert "listening" in proc.stdout.readline()
    yield proc, port
    proc.terminate()
    assert proc.wait(15) == 0, "the server must shut down cleanly after the abuse"


def _abuse_round(port: int) -> None:
    """One round of every kind of abuse, in parallel, each bounded in time."""
    def garbage():          # a megabyte with no newline
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            try:
                s.sendall(os.urandom(1 << 20))
            except OSError:
                pass

    def huge_lines():       # lines far over --max-line, after a hello
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            try:
                s.sendall(b'{"type":"hello","nick":"huge%d"}\n' % threading.get_ident())
                for _ in range(12):
                    s.sendall(b'{"type":"say","text":"' + b"y" * 200_000 + b'"}\n')
            except OSError:
                pass

    def slowloris():        # a byte per segment (no Nagle), never finishing the hello
        with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
            s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
            try:
                for ch in b'{"type":"hel':
                    s.send(bytes([ch]))
                    time.sleep(0.05)
            except OSError:
                pass

    def half_closed():      # says hello, stops sending, never reads
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(b'{"type":"hello","nick":"half%d"}\n' % threading.get_ident())
        s.shutdown(socket.SHUT_WR)
        time.sleep(0.5)
        s.close()

    def vanish():           # mid-frame, then a reset
        s = socket.create_connection(("127.0.0.1", port), timeout=10)
        s.sendall(b'{"type":"hello","nick":"gone%d"}\n{"type":"say","te' % threading.get_ident())
        s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
        s.close()

    jobs = [garbage] * 6 + [huge_lines] * 4 + [slowloris] * 10 + [half_closed] * 6 + [vanish] * 10
    threads = [threading.Thread(target=j) for j in jobs]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)


@pytest.mark.timeout(120)
def test_abuse_leaves_memory_bounded_and_chat_working(server_process):
    proc, port = server_process
    alice, bob = LineClient(port, timeout=10), LineClient(port, timeout=10)
    alice.hello("alice")
    bob.hello("bob")

    def chat_ok(tag: str) -> None:
        alice.send({"type": "say", "text": tag, "ref": tag})
        while not (f := alice.recv())["type"] == "message" or f.get("ref") != tag:
            pass
        while not (f := bob.recv())["type"] == "message" or f["text"] != tag:
            pass

    threads = len(os.listdir(f"/proc/{proc.pid}/task"))
    fds = len(os.listdir(f"/proc/{proc.pid}/fd"))
    rss = []
    for i in range(1, 9):   # each round pushes over 15 MB of garbage at it
        _abuse_round(port)
        chat_ok(f"after round {i}")
        rss.append(rss_kib(proc.pid))
    # Memory is judged by its trend, not by a number of megabytes. The
    # allocator settles at a working size within a few rounds, in steps of
    # up to 16 MB that come at any round (a CI-like run: 35.2 -> 42.7 ->
    # 58.6 MB at rounds 5 and 6, then 58.6, 59.8; a local one: 3.8 MB at
    # round 5 and 8.5 MB at round 7), and between steps RSS stays flat or
    # falls (flat rounds measured from -0.9 to +1.3 MB, and in each of 7
    # runs one of the last four rounds within +0.25 MB). A leak grows in
    # every round: keeping 1 read in 5 in the server (1 to 2 MB a round)
    # made each of the last four rounds grow by 0.8 MB or more (2 runs),
    # which the ">2 MB in at most two rounds" rule and the old absolute
    # bound (48 MB over the empty server) both let through; 1 in 10 (about
    # 1 MB a round) is at the edge (its smallest climb 0.46 to 0.9 MB). So
    # of the last four rounds (60 MB of garbage) at most two may grow by
    # 2 MB, and one must grow by less than 0.5 MB.
    climbs = [b - a for a, b in zip(rss[3:], rss[4:])]
    assert sum(d > 2 * 1024 for d in climbs) <= 2, f"RSS still climbing: {rss} KiB"
    assert min(climbs) < 512, f"RSS grew in each of the last four rounds: {rss} KiB"
    # Every abusive connection is gone again: no thread or descriptor leaked.
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and (len(os.listdir(f"/proc/{proc.pid}/task")) > threads
                                           or len(os.listdir(f"/proc/{proc.pid}/fd")) > fds):
        time.sleep(0.1)
    assert len(os.listdir(f"/proc/{proc.pid}/task")) <= threads
    assert len(os.listdir(f"/proc/{proc.pid}/fd")) <= fds
    alice.close()
    bob.close()
