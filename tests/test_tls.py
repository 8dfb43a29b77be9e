"""TLS on the server: certificate made once and kept, encrypted chat,
clear answers for the wrong layer, encryption on the parallel writers."""
from __future__ import annotations

import os
import re
import socket
import ssl

import pytest

from server import tls
from tests.netclient import LineClient


class TlsLineClient(LineClient):
    """LineClient over TLS that trusts any certificate (it reports it)."""

    def __init__(self, port: int, timeout: float = 5.0):
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
        ctx.check_hostname = False
        ctx.verify_mode = ssl.CERT_NONE
        raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        self.sock = ctx.wrap_socket(raw, server_hostname="natter")
        self.timeout = timeout
        self._buf = b""
        self.frames = []

    @property
    def fingerprint(self) -> str:
        return tls.fingerprint(self.sock.getpeercert(binary_form=True))


def test_fingerprint_is_sixteen_groups_of_four_hex_digits():
    fp = tls.fingerprint(b"certificate bytes")
    assert re.fullmatch(r"([0-9A-F]{4} ){15}[0-9A-F]{4}", fp)


def test_self_signed_certificate_is_made_once_and_kept(make_server, tmp_path):
    srv = make_server(tls=True, rate_limit=0)
    first = srv.fingerprint
    assert first and "TLS on" in srv.describe() and first in srv.describe()
    c = TlsLineClient(srv.port)
    assert c.hello("ann")["nick"] == "ann"
    assert c.fingerprint == first
    c.close()
    srv.shutdown()
    key = os.path.join(os.environ["NATTER_HOME"], "data", "tls", "key.pem")
    assert os.stat(key).st_mode & 0o077 == 0, "the private key must be readable by its owner only"
    again = make_server(tls=True, rate_limit=0)
    assert again.fingerprint == first


def test_openssl_command_makes_the_certificate_without_cryptography(monkeypatch, tmp_path):
    def no_library(*_a):
        raise ImportError("no cryptography")
    monkeypatch.setattr(tls, "_make_with_cryptography", no_library)
    cert, key = tls.ensure_certificate(str(tmp_path / "tls"))
    ctx = tls.server_context(cert, key)
    assert isinstance(ctx, ssl.SSLContext)
    assert re.fullmatch(r"([0-9A-F]{4} ){15}[0-9A-F]{4}", tls.cert_fingerprint(cert))


def test_chat_is_encrypted_and_acknowledged(make_server):
    srv = make_server(tls=True, rate_limit=0)
    a, b = TlsLineClient(srv.port), TlsLineClient(srv.port)
    a.hello("alice")
    b.hello("bob")
    a.send({"type": "say", "text": "over TLS ✓", "ref": "t1"})
    assert a.recv_type("message")["ref"] == "t1"
    assert b.recv_type("message")["text"] == "over TLS ✓"
    a.close()
    b.close()


def test_given_certificate_and_key_are_used(make_server, tmp_path):
    cert, key = tls.ensure_certificate(str(tmp_path / "mine"))
    srv = make_server(tls=True, cert=cert, key=key)
    c = TlsLineClient(srv.port)
    assert c.fingerprint == tls.cert_fingerprint(cert) == srv.fingerprint
    c.close()


def test_plaintext_client_on_tls_port_is_told_why(make_server):
    srv = make_server(tls=True)
    c = LineClient(srv.port)
    c.send({"type": "hello", "nick": "plain"})
    err = c.recv()
    assert err["type"] == "error" and err["code"] == "tls_required"
    assert c.closed_by_server()
    c.close()


def test_tls_client_on_plain_port_is_closed_not_hung(make_server):
    srv = make_server()
    with pytest.raises((ssl.SSLError, OSError)):
        TlsLineClient(srv.port, timeout=5)
    other = LineClient(srv.port)    # the server is fine
    assert other.hello("fine")["nick"] == "fine"
    other.close()


def test_garbage_on_tls_port_does_not_disturb_others(make_server):
    srv = make_server(tls=True, rate_limit=0)
    ok = TlsLineClient(srv.port)
    ok.hello("steady")
    junk = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
    junk.sendall(b"\x16\x03\x01\x00\x05garbage" + os.urandom(2000))
    junk.settimeout(5)
    try:
        while junk.recv(4096):
            pass
    except OSError:
        pass
    junk.close()
    ok.send({"type": "say", "text": "still here", "ref": "s"})
    assert ok.recv_type("message")["text"] == "still here"
    ok.close()


def test_broadcast_to_many_tls_clients_uses_parallel_writers(make_server):
    # More clients than fanout.PARALLEL_MIN, so writer threads encrypt too.
    from server.fanout import PARALLEL_MIN
    srv = make_server(tls=True, rate_limit=0, writers=1)
    clients = [TlsLineClient(srv.port) for _ in range(PARALLEL_MIN + 6)]
    for i, c in enumerate(clients):
        c.hello(f"u{i}")
    texts = [f"m{i}" for i in range(20)]
    for t in texts:
        clients[0].send({"type": "say", "text": t})
    for c in clients:
        got = [c.recv_type("message", timeout=10)["text"] for _ in texts]
        assert got == texts
    for c in clients:
        c.close()
