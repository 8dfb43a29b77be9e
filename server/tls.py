"""TLS for the server: a certificate kept on disk, and encryption in memory.

Certificates: with ``--tls`` and no ``--cert``/``--key``, the server makes
a self-signed certificate on first start (in ``<data dir>/tls/``) and keeps
it, so clients that pinned it keep trusting it. It is made with the
``cryptography`` library when installed, else with the ``openssl`` command.

Encryption: a :class:`TlsChannel` is an ``ssl.SSLObject`` over two memory
BIOs. The socket stays an ordinary socket with the usual threads: the
reader feeds it the bytes it received and gets plaintext back; the writer
(the hub or a ``writer-N`` thread) gives it plaintext and sends the
ciphertext. OpenSSL objects must not be used by two threads at once, so a
lock guards the channel, and it is held only for in-memory work, never
during socket I/O.

:func:`fingerprint` is shared with the client, which pins it.
"""
from __future__ import annotations

import base64
import binascii
import datetime
import hashlib
import logging
import os
import re
import socket
import ssl
import subprocess
import threading

log = logging.getLogger("natter.server")


class TlsSetupError(Exception):
    """The certificate could not be loaded or made; the message says why."""


def fingerprint(der: bytes) -> str:
    """SHA-256 of a DER certificate, as 16 groups of 4 hex digits.

    Short groups are easy to read aloud and compare: "3F2A 9B1C ...".
    """
    digest = hashlib.sha256(der).hexdigest().upper()
    return " ".join(digest[i:i + 4] for i in range(0, len(digest), 4))


_PEM_CERT = re.compile(rb"-----BEGIN CERTIFICATE-----\s*(.*?)-----END CERTIFICATE-----", re.S)


def cert_fingerprint(cert_path: str) -> str:
    """The fingerprint of the first certificate in a PEM file: the leaf, the
    one the server presents and clients pin. A ``fullchain.pem`` also holds
    its CA certificates after it, and a file may start with readable text
    (``openssl x509 -text``, "Bag Attributes"); both are ignored.

    Raises TlsSetupError, with a sentence, when there is no readable
    certificate in the file.
    """
    try:
        with open(cert_path, "rb") as f:
            data = f.read()
    except OSError as e:
        raise TlsSetupError(f"cannot read the TLS certificate {cert_path}: {e.strerror}") from None
    m = _PEM_CERT.search(data)
    if m is None:
        raise TlsSetupError(f"the TLS certificate file {cert_path} holds no PEM certificate "
                            "(a '-----BEGIN CERTIFICATE-----' block)")
    try:
        der = base64.b64decode(b"".join(m.group(1).split()), validate=True)
    except (binascii.Error, ValueError):
        der = b""
    if not der:
        raise TlsSetupError(f"the first certificate in {cert_path} is damaged (its base64 does not decode)")
    return fingerprint(der)


def ensure_certificate(directory: str) -> tuple[str, str]:
    """Return (cert, key) paths in ``directory``, making them on first use."""
    cert = os.path.join(directory, "cert.pem")
    key = os.path.join(directory, "key.pem")
    if os.path.exists(cert) and os.path.exists(key):
        return cert, key
    os.makedirs(directory, exist_ok=True)
    host = socket.gethostname() or "natter"
    try:
        _make_with_cryptography(cert, key, host)
    except ImportError:
        _make_with_openssl(cert, key, host)
    log.info("made a self-signed TLS certificate: %s", cert)
    return cert, key


def _make_with_cryptography(cert_path: str, key_path: str, host: str) -> None:
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, f"Natter on {host}"[:64])])
    now = datetime.datetime.now(datetime.timezone.utc)
    alt = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]
    try:
        alt.append(x509.DNSName(host.encode("idna").decode("ascii")))
    except UnicodeError:
        pass
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=3650))
            .add_extension(x509.SubjectAlternativeName(alt), critical=False)
            .sign(key, hashes.SHA256()))
    _write_private(key_path, key.private_bytes(serialization.Encoding.PEM,
                                               serialization.PrivateFormat.PKCS8,
                                               serialization.NoEncryption()))
    with open(cert_path, "wb") as f:
        f.write(cert.public_bytes(serialization.Encoding.PEM))


def _make_with_openssl(cert_path: str, key_path: str, host: str) -> None:
    cmd = ["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1",
           "-nodes", "-keyout", key_path, "-out", cert_path, "-days", "3650",
           "-subj", f"/CN=Natter on {host}"[:70], "-addext", "subjectAltName=DNS:localhost,IP:127.0.0.1"]
    try:
        subprocess.run(cmd, check=True, capture_output=True, timeout=60)
    except FileNotFoundError:
        raise TlsSetupError("cannot make a TLS certificate: install the Python package 'cryptography' "
                            "or the 'openssl' command, or pass --cert and --key") from None
    except subprocess.CalledProcessError as e:
        raise TlsSetupError(f"openssl could not make a certificate: {e.stderr.decode(errors='replace')[-300:]}") \
            from None
    os.chmod(key_path, 0o600)


def _write_private(path: str, data: bytes) -> None:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(data)


def server_context(cert: str, key: str) -> ssl.SSLContext:
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    ctx.minimum_version = ssl.TLSVersion.TLSv1_2
    try:
        ctx.load_cert_chain(cert, key)
    except (OSError, ssl.SSLError) as e:
        raise TlsSetupError(f"cannot load the TLS certificate {cert} / key {key}: {e}") from None
    return ctx


class TlsChannel:
    """One connection's TLS state, in memory. Thread-safe via ``lock``."""

    __slots__ = ("lock", "_in", "_out", "_obj", "handshaken")

    def __init__(self, ctx: ssl.SSLContext):
        self.lock = threading.Lock()
        self._in = ssl.MemoryBIO()
        self._out = ssl.MemoryBIO()
        self._obj = ctx.wrap_bio(self._in, self._out, server_side=True)
        self.handshaken = False

    def receive(self, data: bytes) -> tuple[bytes, bool]:
        """Reader thread: ciphertext in -> (plaintext, has bytes to send).

        Raises ssl.SSLError on a broken or hostile stream; an EOF from the
        peer comes back as empty plaintext with nothing more to read.
        """
        chunks = []
        with self.lock:
            self._in.write(data)
            if not self.handshaken:
                try:
                    self._obj.do_handshake()
                    self.handshaken = True
                except ssl.SSLWantReadError:
                    return b"", self._out.pending > 0
            while True:
                try:
                    chunk = self._obj.read(65536)
                except ssl.SSLWantReadError:
                    break
                except ssl.SSLZeroReturnError:
                    break
                if not chunk:
                    break
                chunks.append(chunk)
            return b"".join(chunks), self._out.pending > 0

    def encrypt(self, plain: list) -> bytes:
        """Writer side: plaintext chunks -> the ciphertext to send (which also
        carries any handshake bytes waiting, in order)."""
        with self.lock:
            if self.handshaken:
                for chunk in plain:
                    self._obj.write(chunk)
            elif plain:
                raise ssl.SSLError("application data before the TLS handshake finished")
            return self._out.read()

    def close_notify(self) -> bytes:
        """The ciphertext of a TLS close_notify (the orderly end of the
        stream), to send before a half-close; b"" if it cannot be made."""
        with self.lock:
            if not self.handshaken:
                return self._out.read()
            try:
                self._obj.unwrap()
            except (ssl.SSLWantReadError, ssl.SSLError):
                pass        # the peer's close_notify is not awaited
            return self._out.read()
