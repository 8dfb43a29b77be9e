"""Transfer connections (issue 12): the bytes of a file, beside the chat.

A client opens a second connection to the chat port; the JSON door's
reader sees that its first line is a ``put`` or a ``get`` and posts a
:class:`Handoff` instead of a chat event (:mod:`server.doors.jsonl`). The
hub takes the socket out of the chat (it is no client: no nick, no rooms,
no place in ``--max-clients``), checks the line against its state
(:mod:`server.core.files`) and starts one thread for the transfer, named
``put-FID`` or ``get-FID``. From then on that thread alone owns the socket
(and its TLS channel, which goes on where the reader left it).

The thread reads or writes in pieces of :data:`CHUNK` bytes (the only
buffer: memory per transfer is bounded), never takes the hub's lock, and
reaches the hub only by posting: an upload that checked out posts
:class:`FileDone` and answers ``put_ok`` once the hub has committed its
announcement; one whose SHA-256 failed posts :class:`FileDropped`.

Each session's uploads share a :class:`ByteBucket` (``--upload-rate``):
the thread sleeps instead of reading, so TCP slows the sender.

Threads: one per transfer; :class:`TransferSet` is safe from any thread.
"""
from __future__ import annotations

import collections
import hashlib
import logging
import os
import socket
import ssl
import threading
import time

from . import protocol as p

log = logging.getLogger("natter.server")

CHUNK = 256 * 1024         # bytes read or written at a time
DRAIN_BYTES = 4 * 1024 * 1024   # after the answer: unread input taken (then dropped) so the answer is not reset
DRAIN_TIME = 2.0
VERDICT_WAIT = 30.0        # seconds an upload waits for the hub to announce it

# What the reader and the transfer threads post to the hub.
Handoff = collections.namedtuple("Handoff", "event rest")        # a put/get first line, the bytes after it
FileDone = collections.namedtuple("FileDone", "file thread verdict")   # checked and stored; verdict: Verdict
FileDropped = collections.namedtuple("FileDropped", "file thread")   # the SHA-256 failed: partial deleted


class Verdict:
    """The hub's answer to a FileDone, set after the pass that announced it commits."""

    __slots__ = ("event", "frame")

    def __init__(self):
        self.event = threading.Event()
        self.frame = None

    def set(self, frame: dict) -> None:
        self.frame = frame
        self.event.set()


class ByteBucket:
    """A byte rate shared by one session's uploads: :meth:`take` returns how
    long to wait before reading more (any thread; a lock of its own, held
    for arithmetic only)."""

    __slots__ = ("rate", "burst", "tokens", "stamp", "_lock")

    def __init__(self, rate: float):
        self.rate = rate
        self.burst = max(rate / 4, CHUNK)    # a quarter second of bytes at once
        self.tokens = self.burst
        self.stamp = time.monotonic()
        self._lock = threading.Lock()

    def take(self, n: int) -> float:
        if self.rate <= 0:
            return 0.0
        with self._lock:
            now = time.monotonic()
            self.tokens = min(self.burst, self.tokens + (now - self.stamp) * self.rate)
            self.stamp = now
            self.tokens -= n
            return 0.0 if self.tokens >= 0 else -self.tokens / self.rate


class TransferSet:
    """The transfers running, so that a shutdown can end them."""

    def __init__(self):
        self._lock = threading.Lock()
        self._running: set = set()
        self.closed = False

    def add(self, transfer) -> bool:
        with self._lock:
            if self.closed:
                return False
            self._running.add(transfer)
            return True

    def discard(self, transfer) -> None:
        with self._lock:
            self._running.discard(transfer)

    def running(self) -> list:
        with self._lock:
            return list(self._running)

    def close(self, timeout: float = 3.0) -> None:
        """Stop every transfer and wait for them (a bounded time). Idempotent."""
        with self._lock:
            self.closed = True
            running = list(self._running)
        for t in running:
            t.stop()
        deadline = time.monotonic() + timeout
        for t in running:
            t.join(max(0.0, deadline - time.monotonic()))


class Channel:
    """A transfer's socket, with TLS when the chat port has it (the reader's
    channel, handshake done). Used by one thread."""

    def __init__(self, sock: socket.socket, tls, unsent: bytes = b"", rest: bytes = b""):
        self.sock = sock
        self.tls = tls
        self._unsent = unsent    # ciphertext the hub had not written yet (TLS handshake tail)
        self._rest = rest        # plaintext the reader read after the first line

    def recv(self, limit: int) -> bytes:
        """Up to ``limit`` plaintext bytes; b"" at the end of the input."""
        if self._rest:
            data, self._rest = self._rest[:limit], self._rest[limit:]
            return data
        while True:
            data = self.sock.recv(limit if self.tls is None else CHUNK)
            if not data or self.tls is None:
                return data
            plain, kick = self.tls.receive(data)
            if kick:
                self.send(b"")
            if plain:
                return plain     # may exceed limit: the caller cuts it
            # a record not yet whole, or a TLS message without data: read on

    def send(self, data) -> None:
        if self.tls is not None:
            data = self.tls.encrypt([data] if data else [])
        if self._unsent:
            data, self._unsent = self._unsent + bytes(data), b""
        if data:
            self.sock.sendall(data)

    def send_file(self, f, offset: int, count: int, stopping: threading.Event) -> int:
        """Send ``count`` bytes of ``f`` from ``offset``; returns how many went."""
        if self.tls is None and not self._unsent and hasattr(os, "sendfile") and _has_fd(f):
            return self.sock.sendfile(f, offset, count) or 0   # in the kernel: no copies, no GIL
        f.seek(offset)
        sent = 0
        while sent < count and not stopping.is_set():
            chunk = f.read(min(CHUNK, count - sent))
            if not chunk:
                break
            self.send(chunk)
            sent += len(chunk)
        return sent

    def finish(self) -> None:
        """Half-close after the answer, take (and drop) what the peer still
        sends for a moment, so that closing with unread input does not reset
        the connection under the answer; then close."""
        sock = self.sock
        try:
            if self.tls is not None:
                sock.sendall(self._unsent + self.tls.close_notify())
            sock.shutdown(socket.SHUT_WR)
            deadline = time.monotonic() + DRAIN_TIME
            taken = 0
            while taken < DRAIN_BYTES:
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                sock.settimeout(left)
                data = sock.recv(CHUNK)
                if not data:
                    break
                taken += len(data)
        except OSError:
            pass
        finally:
            sock.close()


def _has_fd(f) -> bool:
    """True when f is a file of the system (sendfile can send it), not bytes held elsewhere (Redis)."""
    try:
        f.fileno()
        return True
    except (OSError, ValueError):       # io.UnsupportedOperation is both
        return False


class Transfer(threading.Thread):
    """One transfer connection's thread; subclasses define :meth:`transfer`."""

    session = None      # the session it serves, set by the hub (server.core.files)

    def __init__(self, name: str, channel: Channel, transfers: TransferSet, idle_timeout: float):
        super().__init__(name=name, daemon=True)
        self.channel = channel
        self.transfers = transfers
        self.stopping = threading.Event()
        channel.sock.settimeout(idle_timeout or None)

    def begin(self) -> None:
        """(hub) Start the thread, or close at once when the server is stopping."""
        if not self.transfers.add(self):
            self.channel.sock.close()
            return
        try:
            self.start()
        except RuntimeError as e:      # can't start new thread
            log.error("%s: no thread for the transfer: %s", self.name, e)
            self.transfers.discard(self)
            self.channel.sock.close()

    def stop(self) -> None:
        """Any thread: end the transfer soon (its socket is shut both ways)."""
        self.stopping.set()
        try:
            self.channel.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def run(self) -> None:
        try:
            self.transfer()
        except (OSError, ssl.SSLError) as e:
            log.info("%s: connection ended: %s", self.name, e)
        except Exception:
            log.exception("%s: failed", self.name)
        finally:
            self.channel.finish()
            self.transfers.discard(self)

    def answer(self, frame: dict) -> None:
        self.channel.send(p.encode(frame))

    def transfer(self) -> None:
        raise NotImplementedError


class Refusal(Transfer):
    """A first line the hub refused: one error line, then close."""

    def __init__(self, channel, transfers, frame: dict):
        super().__init__("transfer-refused", channel, transfers, 10.0)
        self.frame = frame

    def transfer(self) -> None:
        self.answer(self.frame)


class Upload(Transfer):
    """``put``: exactly ``size - offset`` bytes into ``ID.part``, checked, then announced.
    ``durable`` (``--sync full``): fsync'd first, so it survives a power loss
    as the history does; otherwise, like the history, a crash of the process."""

    durable = False

    def __init__(self, channel, transfers, idle_timeout, hub, blobs, pending, offset: int, bucket, previous):
        super().__init__(f"put-{pending.record.id}", channel, transfers, idle_timeout)
        self.hub, self.blobs, self.pending = hub, blobs, pending
        self.offset, self.bucket, self.previous = offset, bucket, previous

    def transfer(self) -> None:
        rec = self.pending.record
        fid = rec.id
        if self.previous is not None:       # an older put of this file, cut: it ends first
            self.previous.stop()
            self.previous.join(10)
        held = self.blobs.held(fid)
        if self.offset > held:
            return self.answer(dict(p.error_frame(p.BAD_FRAME, f"The server holds {held} bytes of this file: put "
                                                               f"from offset {held}."), file=fid, offset=held))
        digest = hashlib.sha256()
        got = self.offset
        with self.blobs.open_part(fid, self.offset) as f:
            _hash_head(f, self.offset, digest)
            remaining = rec.size - got
            while remaining > 0:
                data = self.channel.recv(min(CHUNK, remaining))
                if not data:
                    f.flush()
                    return self.answer(dict(p.error_frame(
                        p.BAD_FILE, f"Only {got} of the {rec.size} bytes offered arrived; they are kept: offer the "
                                    f"file again to resume at {got}."), file=fid, offset=got))
                if len(data) > remaining:
                    data = data[:remaining]          # more than offered: cut off
                f.write(data)
                digest.update(data)
                got += len(data)
                remaining -= len(data)
                self.pending.touched = time.monotonic()
                delay = self.bucket.take(len(data)) if self.bucket is not None else 0.0
                if delay > 0 and self.stopping.wait(delay):
                    return
            f.flush()
            if self.durable:        # --sync full: on disk before it is announced, as the history is
                self.blobs.sync(f)
        if digest.hexdigest() != rec.sha256:
            self.blobs.remove(fid)
            self.hub.post(None, [FileDropped(fid, self)])
            return self.answer(dict(p.error_frame(p.BAD_FILE, f"The {rec.size} bytes received do not have the "
                                                              "SHA-256 offered; they were dropped: offer the file "
                                                              "again."), file=fid, offset=0))
        self.blobs.finish(fid)
        verdict = Verdict()
        self.hub.post(None, [FileDone(fid, self, verdict)])
        deadline = time.monotonic() + VERDICT_WAIT
        while not verdict.event.wait(0.2):
            if self.hub.finished.is_set() or time.monotonic() > deadline:
                return self.answer(p.error_frame("server_error", "The server stopped before it could announce "
                                                                 "the file."))
        self.answer(verdict.frame)


def _hash_head(f, n: int, digest) -> None:
    """Hash the first n bytes a resumed upload already holds (then f is at n)."""
    f.seek(0)
    left = n
    while left > 0:
        chunk = f.read(min(1 << 20, left))
        if not chunk:
            break
        digest.update(chunk)
        left -= len(chunk)
    f.seek(n)


class Download(Transfer):
    """``get``: one ``blob`` line, then the bytes from ``offset`` to the end."""

    def __init__(self, channel, transfers, idle_timeout, blobs, file_id: str, offset: int):
        super().__init__(f"get-{file_id}", channel, transfers, idle_timeout)
        self.blobs, self.file_id, self.offset = blobs, file_id, offset

    def transfer(self) -> None:
        try:
            f = self.blobs.open_read(self.file_id)
        except FileNotFoundError:
            return self.answer(dict(p.error_frame(p.NO_SUCH_FILE, "That file is no longer stored (it was deleted "
                                                                  "or expired)."), file=self.file_id))
        with f:
            size = self.blobs.size(f)
            if self.offset > size:
                return self.answer(dict(p.error_frame(p.BAD_FRAME, f"'offset' is beyond the file's {size} bytes."),
                                        file=self.file_id))
            count = size - self.offset
            self.answer(p.blob_frame(self.file_id, count))
            sent = self.channel.send_file(f, self.offset, count, self.stopping)
            if sent < count:
                log.info("%s: ended after %d of %d bytes", self.name, sent, count)
