"""File transfers (issue 12): the bytes of a file travel on a second
connection to the chat's server, never on the chat connection, so a large
file does not hold up the conversation.

:class:`Transfers` runs each transfer on a thread of its own, named
``file-up-<n>`` or ``file-down-<n>``, and reports on the events queue it is
given (the UI's): :class:`~chatgui.net.events.TransferProgress` now and
then, and exactly one :class:`~chatgui.net.events.TransferDone` or
:class:`~chatgui.net.events.TransferFailed` at the end.

Upload (:meth:`Transfers.send`): read the file for its size and sha256
(and a thumbnail, made by the ``thumbnailer`` given, for an image), offer
it on the chat connection (:meth:`ChatClient.upload`), wait for the
answer, which the UI hands back with :meth:`Transfers.on_event`, then
open the second connection (:meth:`ChatClient.open_transfer`: the same
host, port and TLS pin check as the chat), write the ``put`` line and the
bytes from the offset the server gave, and read its one-line answer. A cut
connection is offered again after a pause: the server's ``upload_ready``
says how much it holds already, so the upload resumes there.

Download (:meth:`Transfers.fetch`): ``get`` with the chat session's token
and the size of what is already in ``<dest>.part``, the ``blob`` line,
then the bytes into the part file; a cut connection resumes from the part
file's size. Once all bytes are in, their sha256 is compared with the
announced one before the part file becomes ``dest`` (created 0644: never
executable, and nothing here opens it).

Cancel (:meth:`Transfers.cancel`, any thread, the Tk thread too: a
``shutdown()`` never blocks) sets the transfer's flag and shuts its socket
down, which wakes its thread at once; a cancelled download leaves no part
file. No lock is held
during socket or file I/O.
"""
from __future__ import annotations

import collections
import hashlib
import itertools
import logging
import os
import socket
import threading
import time

from server import protocol as p

from chatgui.net import events as ev
from chatgui.net import files
from chatgui.net.client import TransferStopped

log = logging.getLogger("natter.client")

CHUNK = 256 * 1024
IO_TIMEOUT = 30.0            # a transfer connection silent this long is cut (and resumed)
PROGRESS_EVERY = 0.1         # seconds between two progress events of a transfer
SPEED_WINDOW = 3.0           # seconds the speed is averaged over
RETRIES = 6                  # cuts in a row without progress before a transfer gives up
PAUSES = (0.5, 1.0, 2.0, 4.0, 8.0)


class _Cancelled(Exception):
    pass


class _Final(Exception):
    """A refusal or a mismatch that trying again cannot fix; ``code``: the
    server's refusal code, if it refused."""

    def __init__(self, message: str, code: str = ""):
        super().__init__(message)
        self.code = code


class _Meter:
    """Progress events of one transfer, at most every PROGRESS_EVERY seconds."""

    def __init__(self, tid: str, total: int, put, clock):
        self.tid, self.total, self.put, self.clock = tid, total, put, clock
        self.samples = collections.deque()
        self.last = 0.0

    def report(self, done: int, phase: str, force: bool = False) -> None:
        now = self.clock()
        self.samples.append((now, done))
        while len(self.samples) > 2 and now - self.samples[0][0] > SPEED_WINDOW:
            self.samples.popleft()
        if not force and now - self.last < PROGRESS_EVERY:
            return
        self.last = now
        t0, d0 = self.samples[0]
        speed = (done - d0) / (now - t0) if now - t0 >= 0.2 and done >= d0 else None
        left = (self.total - done) / speed if speed else None
        self.put(ev.TransferProgress(self.tid, done, self.total, speed, left, phase))


class _Job:
    def __init__(self, tid: str):
        self.tid = tid
        self.cancelled = threading.Event()
        self.conn = None              # the transport in use (cancel shuts it down)
        self.answer = None            # UploadReady or Refused, handed over by on_event
        self.ref = None
        self.thread: threading.Thread | None = None


class Transfers:
    """The transfers of one :class:`~chatgui.net.client.ChatClient`; see
    the module docstring. ``events`` is the UI's queue; ``thumbnailer(path,
    mime)`` returns base64 PNG text or None (runs on the transfer thread)."""

    def __init__(self, client, events, thumbnailer=None, clock=time.monotonic, pauses=PAUSES,
                 retries: int = RETRIES):
        self.client = client
        self.events = events
        self.thumbnailer = thumbnailer
        self.clock = clock
        self.pauses = pauses
        self.retries = retries
        self._ids = itertools.count(1)
        self._cv = threading.Condition()
        self._jobs: dict[str, _Job] = {}      # guarded by _cv
        self._offers: dict[str, _Job] = {}    # offer ref -> job waiting for its answer

    # -- public, any thread ------------------------------------------------

    def send(self, path: str, room: str | None = None, to: str | None = None,
             name: str | None = None) -> str:
        """Start uploading the file at ``path`` to ``room`` or to ``to``;
        returns the transfer's id at once."""
        job = self._start("up", self._upload, path, room, to, name or os.path.basename(path))
        return job.tid

    def fetch(self, info: p.FileInfo, dest: str) -> str:
        """Start downloading ``info`` to the path ``dest``; returns the id at once."""
        return self._start("down", self._download, info, dest).tid

    def cancel(self, tid: str) -> None:
        with self._cv:
            job = self._jobs.get(tid)
            if job is None:
                return
            job.cancelled.set()
            conn = job.conn
            self._cv.notify_all()
        if conn is not None:
            _quietly(conn.shutdown, socket.SHUT_RDWR)

    def on_event(self, event) -> bool:
        """The UI's pump hands over each UploadReady and Refused it takes
        off the queue; True when it answered one of our offers (the UI then
        shows nothing of it). The Acked after an UploadReady passes on."""
        ref = getattr(event, "ref", None)
        with self._cv:
            job = self._offers.get(ref)
            if job is None:
                return False
            del self._offers[ref]
            job.answer = event
            self._cv.notify_all()
        return True

    def active(self) -> list:
        with self._cv:
            return list(self._jobs)

    def close(self, timeout: float = 2.0) -> bool:
        """Cancel every transfer and wait up to ``timeout`` for their threads."""
        for tid in self.active():
            self.cancel(tid)
        deadline = time.monotonic() + timeout
        with self._cv:
            threads = [j.thread for j in self._jobs.values()]
        for t in threads:
            t.join(max(0.0, deadline - time.monotonic()))
        return not any(t.is_alive() for t in threads)

    # -- threads -------------------------------------------------------------

    def _start(self, kind: str, target, *args) -> _Job:
        job = _Job(f"{kind}{next(self._ids)}")
        job.thread = threading.Thread(target=self._run, args=(job, target, args),
                                      name=f"file-{kind}-{job.tid[len(kind):]}", daemon=True)
        with self._cv:
            self._jobs[job.tid] = job
        job.thread.start()
        return job

    def _run(self, job: _Job, target, args) -> None:
        try:
            result = target(job, *args)
        except _Cancelled:
            result = ev.TransferFailed(job.tid, "Cancelled.", cancelled=True)
        except _Final as e:
            result = ev.TransferFailed(job.tid, str(e), code=e.code)
        except Exception as e:        # a bug: say so rather than leave the bar hanging
            log.exception("the transfer %s failed", job.tid)
            result = ev.TransferFailed(job.tid, f"The transfer failed: {e!r}")
        finally:
            with self._cv:
                self._jobs.pop(job.tid, None)
                if job.ref is not None:
                    self._offers.pop(job.ref, None)
        self.events.put(result)

    def _check(self, job: _Job) -> None:
        if job.cancelled.is_set():
            raise _Cancelled()

    def _pause(self, job: _Job, n: int) -> None:
        if job.cancelled.wait(self.pauses[min(n, len(self.pauses) - 1)]):
            raise _Cancelled()

    def _connect(self, job: _Job):
        """The transfer connection (OSError when it cannot be made; _Cancelled)."""
        try:
            conn = self.client.open_transfer(job.cancelled.is_set)
        except TransferStopped:
            raise _Cancelled() from None
        _timeout(conn)
        with self._cv:
            job.conn = conn
            cancelled = job.cancelled.is_set()
        if cancelled:
            _quietly(conn.close)
            raise _Cancelled()
        return conn

    def _hang_up(self, job: _Job, conn) -> None:
        with self._cv:
            job.conn = None
        _quietly(conn.shutdown, socket.SHUT_RDWR)
        _quietly(conn.close)

    # -- upload ----------------------------------------------------------------

    def _upload(self, job: _Job, path: str, room, to, name: str):
        try:
            size = os.path.getsize(path)
            meter = _Meter(job.tid, size, self.events.put, self.clock)
            digest = self._hash(job, path, meter)
        except OSError as e:
            raise _Final(f"Cannot read {name}: {e.strerror or e}.") from None
        mime = files.guess_mime(name)
        thumb = None
        if self.thumbnailer is not None and mime in files.IMAGE_MIMES:
            thumb = self.thumbnailer(path, mime)
        cuts = 0
        while True:
            meter.report(0, "waiting", force=True)
            ready = self._offer(job, name, size, digest, mime, room, to, thumb)
            done = ready.offset
            if done > size:
                raise _Final("The server says it holds more of the file than there is: not sent.")
            try:
                conn = self._connect(job)
            except OSError as e:
                cuts = self._cut(job, cuts, e, False)
                continue
            try:
                done = self._put(job, conn, path, ready, done, size, meter)
                meter.report(done, "sending", force=True)    # all out: the bar says so while the server checks
                reply = _read_reply(conn)
            except OSError as e:
                cuts = self._cut(job, cuts, e, done > ready.offset)
                continue
            finally:
                self._hang_up(job, conn)
            if type(reply) is p.PutOk:
                meter.report(size, "sending", force=True)
                return ev.TransferDone(job.tid, ready.file)
            if type(reply) is p.ServerError:
                raise _Final(f"The server refused {name}: {files.refusal_words(reply.code, reply.message)}.",
                             reply.code)
            raise _Final(f"The server answered the bytes of {name} with a download line: not sent.")

    def _hash(self, job: _Job, path: str, meter: _Meter) -> str:
        h = hashlib.sha256()
        done = 0
        with open(path, "rb") as f:
            while chunk := f.read(CHUNK * 4):
                self._check(job)
                h.update(chunk)
                done += len(chunk)
                meter.report(done, "checking")
        return h.hexdigest()

    def _offer(self, job: _Job, name, size, digest, mime, room, to, thumb) -> p.UploadReady:
        """Offer the file on the chat connection and wait for the answer."""
        with self._cv:
            # Held while the offer is queued (no socket I/O: upload only
            # queues), so on_event cannot see the answer before the ref is known.
            job.answer = None
            job.ref = self.client.upload(name, size, digest, mime, room=room, to=to, thumb=thumb)
            self._offers[job.ref] = job
            while job.answer is None:
                if job.cancelled.is_set():
                    raise _Cancelled()
                self._cv.wait(0.5)
            answer, job.ref = job.answer, None
        if type(answer) is p.UploadReady:
            return answer
        raise _Final(f"Not sent: {files.refusal_words(answer.code, answer.message)}.", answer.code)

    def _put(self, job: _Job, conn, path: str, ready, done: int, size: int, meter: _Meter) -> int:
        conn.sendall(files.put_line(ready.file, ready.token, done))
        with open(path, "rb") as f:
            f.seek(done)
            while done < size:
                self._check(job)
                chunk = f.read(min(CHUNK, size - done))
                if not chunk:
                    raise _Final("The file got shorter while it was being sent: not sent.")
                conn.sendall(chunk)
                done += len(chunk)
                meter.report(done, "sending")
        return done

    def _cut(self, job: _Job, cuts: int, e: OSError, moved: bool) -> int:
        """A transfer connection failed: pause and go on, or give up."""
        self._check(job)
        cuts = 1 if moved else cuts + 1
        log.info("transfer %s cut (%s); trying again", job.tid, e)
        if cuts > self.retries:
            raise _Final(f"The transfer stopped: {e.strerror or e} (tried {self.retries} times).")
        self.events.put(ev.TransferProgress(job.tid, 0, 0, None, None, "waiting"))
        self._pause(job, cuts - 1)
        return cuts

    # -- download --------------------------------------------------------------

    def _download(self, job: _Job, info: p.FileInfo, dest: str):
        try:
            return self._download_to(job, info, dest, dest + ".part")
        except _Cancelled:
            _remove(dest + ".part")        # a cancelled download leaves nothing behind
            raise

    def _download_to(self, job: _Job, info: p.FileInfo, dest: str, part: str):
        meter = _Meter(job.tid, info.size, self.events.put, self.clock)
        cuts = 0
        while True:
            self._check(job)
            have = _size_of(part)
            if have > info.size:
                os.remove(part)
                have = 0
            session = self.client.session
            if session is None:
                meter.report(have, "waiting", force=True)
                self._pause(job, 0)
                continue
            try:
                conn = self._connect(job)
            except OSError as e:
                cuts = self._cut(job, cuts, e, False)
                continue
            try:
                got = self._get(job, conn, info, part, have, session, meter)
            except OSError as e:
                cuts = self._cut(job, cuts, e, _size_of(part) > have)
                continue
            finally:
                self._hang_up(job, conn)
            if got:
                break
        meter.report(info.size, "receiving", force=True)
        if self._hash(job, part, meter) != info.sha256:
            os.remove(part)
            raise _Final(f"{info.name} arrived damaged (its checksum is not the announced one); "
                         "it was not kept. Try again.")
        os.replace(part, dest)
        return ev.TransferDone(job.tid, info.id, dest)

    def _get(self, job: _Job, conn, info, part: str, have: int, session: str, meter: _Meter) -> bool:
        """One try; True when the part file is complete. OSError for a cut."""
        conn.sendall(files.get_line(info.id, have, session))
        reply, rest = _read_reply(conn, with_rest=True)
        if type(reply) is p.ServerError:
            raise _Final(f"Cannot fetch {info.name}: {files.refusal_words(reply.code, reply.message)}.", reply.code)
        if type(reply) is not p.Blob or have + reply.size != info.size:
            raise _Final(f"Cannot fetch {info.name}: the server offered {getattr(reply, 'size', 'no')} "
                         f"bytes after {have}, and the file has {info.size}.")
        done, end = have, info.size
        fd = os.open(part, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
        with os.fdopen(fd, "ab") as out:
            data = rest
            while True:
                self._check(job)
                if data:
                    if len(data) > end - done:
                        raise _Final(f"The server sent more than {info.name} holds: not kept.")
                    out.write(data)
                    done += len(data)
                    meter.report(done, "receiving")
                if done == end:
                    return True
                data = _recv(conn)
                if not data:
                    out.flush()
                    raise ConnectionResetError(0, "the server closed the connection in the middle")


def _read_reply(conn, with_rest: bool = False):
    """The one line a transfer connection answers with (and, for a blob,
    the bytes that came after it in the same reads)."""
    buf = b""
    while b"\n" not in buf:
        if len(buf) > files.MAX_REPLY_LINE:
            raise _Final("The server's answer was not a Natter transfer line.")
        data = _recv(conn)
        if not data:
            raise ConnectionResetError(0, "the server hung up without an answer")
        buf += data
    line, _, rest = buf.partition(b"\n")
    try:
        reply = files.parse_reply(line + b"\n")
    except p.ProtocolError as e:
        raise _Final(f"The server's answer was not understood ({e.message}).") from None
    return (reply, rest) if with_rest else reply


def _recv(conn) -> bytes:
    while True:
        try:
            return conn.recv()
        except (BlockingIOError, InterruptedError):
            continue            # TLS: no whole record yet; the socket blocks on the next recv


def _timeout(conn) -> None:
    try:
        conn.sock.settimeout(IO_TIMEOUT)
    except (AttributeError, OSError):
        pass


def _size_of(path: str) -> int:
    try:
        return os.path.getsize(path)
    except OSError:
        return 0


def _remove(path: str) -> None:
    try:
        os.remove(path)
    except OSError:
        pass


def _quietly(fn, *args) -> None:
    try:
        fn(*args)
    except OSError:
        pass
