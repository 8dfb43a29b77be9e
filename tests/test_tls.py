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
        self._scanned = 0
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
    # More clients than delivery.PARALLEL_MIN, so writer threads encrypt too.
    from server.delivery import PARALLEL_MIN
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


def _fullchain(tmp_path):
    """A leaf certificate signed by a CA, written as a fullchain.pem (leaf
    first, then the CA, as Let's Encrypt and most CAs deliver it)."""
    import datetime

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key = ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name)
          .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
          .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
          .sign(ca_key, hashes.SHA256()))
    key = ec.generate_private_key(ec.SECP256R1())
    leaf = (x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "chat.example")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1)).not_valid_after(now + datetime.timedelta(days=30))
            .sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    cert_path, key_path = tmp_path / "fullchain.pem", tmp_path / "privkey.pem"
    cert_path.write_bytes(leaf.public_bytes(pem) + ca.public_bytes(pem))
    key_path.write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()))
    return cert_path, key_path, leaf.public_bytes(serialization.Encoding.DER)


def test_fullchain_fingerprint_is_the_leaf_a_client_sees(make_server, tmp_path):
    cert, key, leaf_der = _fullchain(tmp_path)
    srv = make_server(tls=True, cert=str(cert), key=str(key), rate_limit=0)
    assert srv.fingerprint == tls.fingerprint(leaf_der)
    c = TlsLineClient(srv.port)
    assert c.fingerprint == srv.fingerprint, "the start-up line must show what clients compare"
    assert c.hello("ann")["nick"] == "ann"
    c.close()


def test_pem_with_text_before_the_certificate_works(make_server, tmp_path):
    # openssl x509 -text, and some CA bundles, put a readable dump first.
    cert, key, leaf_der = _fullchain(tmp_path)
    cert.write_bytes(b"Certificate:\n    Data:\n        Version: 3 (0x2)\n  Subject: CN=chat.example\n"
                     + cert.read_bytes())
    srv = make_server(tls=True, cert=str(cert), key=str(key), rate_limit=0)
    c = TlsLineClient(srv.port)
    assert c.fingerprint == srv.fingerprint == tls.fingerprint(leaf_der)
    c.close()


@pytest.mark.parametrize("content", [b"this is not a certificate\n", b"", b"\xff\xfe\x00garbage" * 10,
                                     b"-----BEGIN CERTIFICATE-----\nnot base64 at all!\n-----END CERTIFICATE-----\n"])
def test_a_bad_certificate_file_is_a_sentence(tmp_path, content):
    bad = tmp_path / "cert.pem"
    bad.write_bytes(content)
    with pytest.raises(tls.TlsSetupError) as e:
        tls.cert_fingerprint(str(bad))
    assert str(bad) in str(e.value) and "certificate" in str(e.value)


def test_missing_certificate_file_is_a_sentence(tmp_path):
    with pytest.raises(tls.TlsSetupError) as e:
        tls.cert_fingerprint(str(tmp_path / "nowhere.pem"))
    assert "nowhere.pem" in str(e.value)


def _server_cmd(tmp_path, cert, key):
    import sys
    return ([sys.executable, "-m", "server", "--tls", "--cert", str(cert), "--key", str(key), "--port", "0",
             "--db", str(tmp_path / "h.db")], {**os.environ, "NATTER_HOME": str(tmp_path / "home")})


@pytest.mark.parametrize("which", ["cert", "key"])
def test_server_command_with_a_bad_certificate_exits_1_without_a_traceback(tmp_path, which):
    import subprocess
    cert, key, _ = _fullchain(tmp_path)
    bad = cert if which == "cert" else key
    bad.write_bytes(b"garbage, not PEM\n")
    cmd, env = _server_cmd(tmp_path, cert, key)
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=30, env=env)
    assert out.returncode == 1, out
    assert "Traceback" not in out.stderr, out.stderr
    assert out.stderr.startswith("natter server: ") and str(bad) in out.stderr, out.stderr


def test_server_command_starts_with_text_before_the_certificate(tmp_path):
    import signal
    import subprocess
    cert, key, leaf_der = _fullchain(tmp_path)
    cert.write_bytes(b"Bag Attributes\n    friendlyName: chat\n" + cert.read_bytes())
    cmd, env = _server_cmd(tmp_path, cert, key)
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
    try:
        first = proc.stdout.readline()
        assert first.startswith("Natter server listening"), (first, proc.stderr.read() if proc.poll() else "")
        assert tls.fingerprint(leaf_der) in proc.stdout.readline()
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(15) == 0
        assert "Traceback" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
