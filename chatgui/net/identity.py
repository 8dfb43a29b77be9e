"""This computer's identity: a random secret made on first run, kept in the
config directory (:func:`server.paths.config_dir`, the packaged app's too)
in the file ``identity``, and sent in every ``hello`` as ``"identity"``.

The server keeps only its fingerprint (:func:`fingerprint`: SHA-256 of the
secret's UTF-8 bytes, lowercase hex); nicks and room roles are bound to
that, so whoever holds the file holds the nick. Hence the file is written
mode 0600, atomically (a temporary file in the same folder, flushed, then
renamed: a crash never leaves half a secret), and only ever read after.

A file that holds no valid secret (edited by hand, truncated by a disk
full) is not overwritten: :func:`load_identity` raises
:class:`IdentityError` with a sentence naming the file, since replacing it
would silently lose the nicks and roles bound to the old one.

Thread: any; file I/O only (call it off the Tk thread's busy paths: the
window's start, like the settings).
"""
from __future__ import annotations

import hashlib
import os
import secrets
import tempfile

from server import paths

FILE_NAME = "identity"
MIN_LEN, MAX_LEN = 32, 128          # DESIGN-11: 32..128 printable ASCII characters


class IdentityError(Exception):
    """The identity file cannot be read or made; ``str()`` is a sentence."""


def identity_path() -> str:
    return os.path.join(paths.config_dir(), FILE_NAME)


def valid_secret(secret) -> bool:
    """32..128 printable ASCII characters, no spaces at either end."""
    return (type(secret) is str and MIN_LEN <= len(secret) <= MAX_LEN
            and all(0x21 <= ord(c) <= 0x7e for c in secret))


def fingerprint(secret: str) -> str:
    """The identity's public name: what the settings show and what a
    server's operator passes to ``--admin-identity``."""
    return hashlib.sha256(secret.encode("utf-8")).hexdigest()


def load_identity(path: str | None = None) -> str:
    """The secret in ``path`` (default :func:`identity_path`), made there on
    first use. Raises IdentityError (a sentence) when the file is damaged
    or cannot be written."""
    path = path or identity_path()
    try:
        with open(path, "r", encoding="ascii") as f:
            secret = f.read().strip()
    except FileNotFoundError:
        secret = None
    except (OSError, UnicodeDecodeError) as e:
        raise IdentityError(f"This computer's identity file {path} cannot be read ({_why(e)}). "
                            "Fix its permissions, or move it away to make a new identity "
                            "(your reserved nicks and room roles stay with the old one).") from None
    if secret is None:
        return _create(path)
    if not valid_secret(secret):
        raise IdentityError(f"This computer's identity file {path} is damaged (it holds no valid secret). "
                            "Restore it from a backup, or move it away to make a new identity "
                            "(your reserved nicks and room roles stay with the old one).")
    return secret


def _create(path: str) -> str:
    secret = secrets.token_urlsafe(32)      # 43 characters of [A-Za-z0-9_-]
    folder = os.path.dirname(path) or "."
    try:
        os.makedirs(folder, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=folder, prefix=f".{FILE_NAME}.", suffix=".tmp")   # mode 0600
    except OSError as e:
        raise IdentityError(f"Cannot make this computer's identity in {folder} ({_why(e)}): "
                            "nicks cannot be reserved until it can be written.") from None
    try:
        with os.fdopen(fd, "w", encoding="ascii") as f:
            f.write(secret + "\n")
            f.flush()
            os.fsync(f.fileno())
        if hasattr(os, "link"):
            # Never replace a file another start made meanwhile: link fails if it exists.
            try:
                os.link(tmp, path)
            except FileExistsError:
                return load_identity(path)
            except OSError:
                os.replace(tmp, path)       # a file system without hard links
        else:
            os.replace(tmp, path)
    except OSError as e:
        raise IdentityError(f"Cannot write this computer's identity file {path} ({_why(e)}): "
                            "nicks cannot be reserved until it can be written.") from None
    finally:
        try:
            os.unlink(tmp)
        except OSError:
            pass
    return secret


def _why(e: BaseException) -> str:
    return getattr(e, "strerror", None) or str(e) or type(e).__name__
