"""One process at a time per history file: a lock file that names its holder.

:class:`LockFile` takes an exclusive, non-blocking lock on ``PATH.lock``
and writes the process id into it. A second server on the same history
(another process, or another :class:`~server.store.sqlite.SqliteStore` in this one)
fails at once with :class:`LockedError`, whose ``pid`` says who holds it.

The lock belongs to the open file, so the operating system drops it when
the process ends in any way, ``kill -9`` included: a lock file left on disk
locks nothing, and the pid in it is only read while someone holds the lock.
POSIX uses ``fcntl.flock`` (one lock per open file, so two opens in one
process exclude each other too; ``fcntl.lockf`` would not); Windows uses
``msvcrt.locking`` on a byte far past the pid, since a Windows lock also
blocks reads of the bytes it covers.

Thread: any; a LockFile is held by the one object that made it.
"""
from __future__ import annotations

import errno
import os
import time

try:
    import fcntl
except ImportError:          # Windows
    fcntl = None
    import msvcrt

_WINDOWS_LOCK_OFFSET = 1 << 30   # the locked byte: never read, far past the pid


class LockedError(Exception):
    """Another process (or another holder in this one) has the lock."""

    def __init__(self, path: str, pid: int | None):
        super().__init__(f"{path} is locked by process {pid if pid is not None else '(unknown)'}")
        self.path = path
        self.pid = pid


class LockFile:
    def __init__(self, path: str):
        """Take the lock or raise LockedError (OSError if the file cannot be made)."""
        self.path = path
        fd = os.open(path, os.O_RDWR | os.O_CREAT | getattr(os, "O_BINARY", 0), 0o644)
        try:
            if not _try_lock(fd):
                raise LockedError(path, _holder(fd))
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, f"{os.getpid()}\n".encode("ascii"))
        except BaseException:
            os.close(fd)
            raise
        self._fd: int | None = fd

    def release(self) -> None:
        """Drop the lock (the file stays: deleting it would race the next taker). Idempotent."""
        fd, self._fd = self._fd, None
        if fd is None:
            return
        try:
            if fcntl is None:
                os.lseek(fd, _WINDOWS_LOCK_OFFSET, os.SEEK_SET)
                msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)
        except OSError:
            pass
        finally:
            os.close(fd)            # on POSIX this drops the flock


def _try_lock(fd: int) -> bool:
    try:
        if fcntl is not None:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        else:
            os.lseek(fd, _WINDOWS_LOCK_OFFSET, os.SEEK_SET)
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
    except OSError as e:
        # flock: EWOULDBLOCK; msvcrt: EACCES, or EDEADLOCK on some C runtimes.
        if e.errno in (errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES, errno.EDEADLK):
            return False
        raise
    return True


def _holder(fd: int) -> int | None:
    """The pid the holder wrote; it may be a moment late, so wait a little for it."""
    deadline = time.monotonic() + 0.5
    while True:
        os.lseek(fd, 0, os.SEEK_SET)
        text = os.read(fd, 32).decode("ascii", "replace").strip()
        if text.isdigit():
            return int(text)
        if time.monotonic() > deadline:
            return None
        time.sleep(0.02)
