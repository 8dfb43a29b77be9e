"""Shared fixtures: a real server on a loopback port 0 with a real SQLite file."""
from __future__ import annotations

import pytest

from server.app import ChatServer
from server.config import ServerConfig
from tests.netclient import LineClient


@pytest.fixture(autouse=True)
def _isolated_home(tmp_path, monkeypatch):
    """Keep every test's settings, history and certificates in its tmp dir."""
    monkeypatch.setenv("NATTER_HOME", str(tmp_path / "home"))


@pytest.fixture(autouse=True, scope="session")
def _discovery_on_loopback():
    """Discovery stays on this computer during the tests, on a port of the
    session's own: scans ask loopback only (NATTER_DISCOVERY_SCOPE=local),
    and hosted rooms and scans use a UDP port free at the start instead of
    30000, so two test runs at once do not see each other's rooms. The
    network-namespace tests undo both inside their namespaces."""
    import socket
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("NATTER_DISCOVERY_SCOPE", "local")
        mp.setenv("NATTER_DISCOVERY_PORT", str(port))
        yield port


@pytest.fixture
def make_server(tmp_path):
    """Start servers in-process; all are shut down after the test."""
    servers = []

    def make(**overrides) -> ChatServer:
        # Discovery off unless a test asks for it (tests/test_discovery*.py).
        cfg = ServerConfig(host="127.0.0.1", port=0, db=str(tmp_path / f"history{len(servers)}.db"),
                           discovery=False)
        for k, v in overrides.items():
            setattr(cfg, k, v)
        srv = ChatServer(cfg).start()
        servers.append(srv)
        return srv

    yield make
    for srv in servers:
        srv.shutdown()


@pytest.fixture
def server(make_server):
    return make_server(rate_limit=0)


@pytest.fixture
def connect(server):
    """connect(nick=None) -> LineClient, welcomed when a nick is given."""
    clients = []

    def make(nick: str | None = None, srv=None, **kw) -> LineClient:
        c = LineClient((srv or server).port, **kw)
        clients.append(c)
        if nick is not None:
            c.welcome = c.hello(nick)
        return c

    yield make
    for c in clients:
        c.close()


@pytest.fixture
def make_chat_clients():
    """make(port, nick, start=True, host="127.0.0.1", **kw) -> (ChatClient,
    Events); ``host`` may be a list of addresses. Every client is closed
    after the test, and none may leave a thread behind."""
    from chatgui.net.client import ChatClient
    from tests.chatclients import Events
    made = []

    def make(port, nick, start=True, host="127.0.0.1", **kw):
        evs = Events()
        c = ChatClient(host, port, nick, events=evs.q, **kw)
        made.append(c)
        if start:
            c.start()
        return c, evs

    yield make
    for c in made:
        c.close(timeout=3)
    for c in made:
        assert not any(t.is_alive() for t in c.threads), "a client thread outlived close()"


@pytest.fixture
def redis_server(tmp_path):
    """A real redis-server of the test's own: a free loopback port, its own
    directory, appendonly yes (tests/redistools.py); stopped by its pid."""
    import shutil
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed (scripts/test.sh installs it)")
    pytest.importorskip("redis", reason="the redis extra is not installed (pip install -e '.[redis]')")
    from tests.redistools import RedisServer
    r = RedisServer(str(tmp_path / "redis"))
    yield r
    r.stop()


@pytest.fixture
def make_node(make_server, redis_server):
    """make_node(**config) -> a ChatServer of the deployment on redis_server."""
    def make(**overrides) -> ChatServer:
        return make_server(redis=redis_server.url, rate_limit=0, **overrides)
    return make
