"""The room password: stored hashed, compared in constant time.

A password kept in a file is kept as an scrypt hash (``python -m server
--hash-password`` makes one). Checking a hash costs tens of milliseconds on
purpose, so it runs on the connection's reader thread, never on the hub;
after the first success the checker keeps a SHA-256 of the right password
in memory, so a reconnect storm of honest clients costs microseconds each
while every wrong guess still pays the full scrypt price.

A wrong password learns nothing but ``auth_failed``: no timing difference
by length or prefix (``hmac.compare_digest`` over fixed-size digests).
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import os
import threading

_N, _R, _P = 1 << 14, 8, 1
PREFIX = "scrypt$"


def hash_password(password: str) -> str:
    """A storable hash: ``scrypt$N$r$p$salt$key`` (base64)."""
    salt = os.urandom(16)
    key = hashlib.scrypt(password.encode("utf-8"), salt=salt, n=_N, r=_R, p=_P, dklen=32)
    b64 = lambda b: base64.b64encode(b).decode("ascii")  # noqa: E731
    return f"{PREFIX}{_N}${_R}${_P}${b64(salt)}${b64(key)}"


def is_hash(stored: str) -> bool:
    return stored.startswith(PREFIX) and stored.count("$") == 5


def verify_hash(password: str, stored: str) -> bool:
    try:
        _, n, r, p, salt, key = stored.split("$")
        salt_b, key_b = base64.b64decode(salt), base64.b64decode(key)
        got = hashlib.scrypt(password.encode("utf-8"), salt=salt_b, n=int(n), r=int(r), p=int(p),
                             dklen=len(key_b), maxmem=256 * 1024 * 1024)
    except (ValueError, TypeError):
        return False
    return hmac.compare_digest(got, key_b)


def read_password_file(path: str) -> str:
    """The first line of a password file: a hash, or (discouraged) plain text."""
    try:
        with open(path, encoding="utf-8") as f:
            line = f.readline().strip()
    except OSError as e:
        raise ValueError(f"cannot read the password file {path}: {e.strerror}") from None
    if not line:
        raise ValueError(f"the password file {path} is empty")
    return line


class PasswordCheck:
    """Thread-safe check of a given password against the room's."""

    def __init__(self, stored: str):
        self._lock = threading.Lock()
        if is_hash(stored):
            self._hash = stored
            self._known: bytes | None = None
        else:
            self._hash = None
            self._known = _digest(stored)

    def __call__(self, given: str | None) -> bool:
        digest = _digest(given or "")
        with self._lock:
            known = self._known
        if known is not None and hmac.compare_digest(digest, known):
            return True
        if self._hash is None:
            return False
        # A miss always pays for scrypt, cached right password or not.
        if verify_hash(given or "", self._hash):
            with self._lock:
                self._known = digest
            return True
        return False


def _digest(password: str) -> bytes:
    return hashlib.sha256(password.encode("utf-8")).digest()
