"""Files and pictures of a deployment (issue 12 across nodes): records and bytes in Redis.

A file uploaded on one node is fetched from any node, so neither its
record nor its bytes may live on one node's disk. Both are in the
deployment's Redis, under ``natter:``:

- ``file:FID``: the record (:class:`~server.store.files.FileRecord`) as a
  hash of its fields. Kept after the file is gone (its state says why), as
  SQLite keeps its row; the thumbnail leaves it once the file is announced
  (the announcement in the stream carries it). Beside the fields, ``token``
  (the SHA-256 of the latest offer's token: a put with it may reach any
  node) and ``writer`` (the number of the latest put that opened the bytes:
  only that one writes, :data:`WRITE`).
- ``files:partial``: the uploads in progress, scored by their last progress
  (wall clock; every node gives up the stale ones, even a dead node's);
  ``files:complete``: the finished files, scored by when they finished (the
  quota's order, oldest first).
- ``files:used`` and ``files:reserved``: the bytes of the finished files and
  of the uploads in progress, kept by the same atomic steps that change a
  state, so every node counts against one quota.
- ``blob:FID``: the bytes, a hash of pieces of :data:`PIECE` bytes
  (field ``i`` holds bytes ``i*PIECE`` to ``(i+1)*PIECE``).

A state changes only by :data:`TRANSITION` (one Lua script, atomic): partial
to complete or dropped, complete to deleted or expired, nothing else; a
file that leaves for a final state loses its bytes in the same step. So a
node with a stale view (it still thinks an upload is in progress that
another node finished) cannot drop a finished file, and a file expired on
one node is expired for all. :meth:`RedisFileRecords.expire_oldest` makes
room one file at a time, each step checking the totals in Redis: two nodes
finishing uploads at once never expire more than the quota needs.

Memory: Redis keeps all of it in memory (docs/scaling.md gives the
measured cost).

Threads: :class:`RedisFileRecords` is mixed into the store (the hub thread);
:class:`RedisBlobs` is used by the transfer threads and the hub, through its
own thread-safe connection pool; its Redis errors are ``OSError`` and
:class:`~server.store.Unavailable` both (:class:`BlobsUnavailable`): a
transfer ends as a lost connection would, a hub's request is answered
``unavailable``.
"""
from __future__ import annotations

import contextlib
import hashlib
import hmac
import io
import json
import time

from . import Unavailable
from .files import COMPLETE, EXPIRED, PARTIAL, FileRecord
from .redis_keys import P

PARTIALS, COMPLETES = P + "files:partial", P + "files:complete"
USED, RESERVED = P + "files:used", P + "files:reserved"
RECORD, BLOB = P + "file:", P + "blob:"
PIECE = 256 * 1024 - 64     # bytes per field of a blob: with Redis's header it fits jemalloc's 256 KiB class
_FIELDS = ("id", "name", "size", "sha256", "mime", "thumb", "sender", "session", "room", "recipient", "to_session",
           "state", "created", "completed", "msg_id")
_INTS, _FLOATS = ("size", "session", "to_session", "msg_id"), ("created", "completed")

# KEYS: the record, files:partial, files:complete, files:used, files:reserved, the blob.
# ARGV: the id, the new state, completed ('' to keep), msg_id ('' to keep), limit ('' for none).
# Returns 1 (changed), 0 (not from its current state: someone else moved it), -1 (an
# expiry not needed: used + reserved is within limit).
TRANSITION = """
local old = redis.call('HGET', KEYS[1], 'state')
local new = ARGV[2]
local allowed = {partial = {complete = true, dropped = true}, complete = {deleted = true, expired = true}}
if not old or not allowed[old] or not allowed[old][new] then return 0 end
if ARGV[5] ~= '' then
  local total = tonumber(redis.call('GET', KEYS[4]) or '0') + tonumber(redis.call('GET', KEYS[5]) or '0')
  if total <= tonumber(ARGV[5]) then return -1 end
end
local size = tonumber(redis.call('HGET', KEYS[1], 'size'))
if old == 'partial' then
  redis.call('ZREM', KEYS[2], ARGV[1])
  redis.call('DECRBY', KEYS[5], size)
else
  redis.call('ZREM', KEYS[3], ARGV[1])
  redis.call('DECRBY', KEYS[4], size)
end
redis.call('HSET', KEYS[1], 'state', new)
if ARGV[3] ~= '' then redis.call('HSET', KEYS[1], 'completed', ARGV[3]) end
if ARGV[4] ~= '' then redis.call('HSET', KEYS[1], 'msg_id', ARGV[4]) end
if new == 'complete' then
  redis.call('ZADD', KEYS[3], ARGV[3], ARGV[1])
  redis.call('INCRBY', KEYS[4], size)
  redis.call('HDEL', KEYS[1], 'thumb')
else
  redis.call('DEL', KEYS[6])
end
return 1
"""
# KEYS: the record, the blob, files:partial. ARGV: the writer's number, the piece's
# index, the piece, now, the id. Only the latest writer of an upload (the
# latest put, on whichever node) writes: an older one that wakes up late
# (its node had not noticed its connection was lost) gets 0 and stops.
WRITE = """
if redis.call('HGET', KEYS[1], 'writer') ~= ARGV[1] then return 0 end
redis.call('HSET', KEYS[2], ARGV[2], ARGV[3])
redis.call('ZADD', KEYS[3], 'XX', ARGV[4], ARGV[5])
return 1
"""
# KEYS: the record, the blob. Drops the bytes unless the record says complete
# (those go only with a transition, above).
REMOVE = """
if redis.call('HGET', KEYS[1], 'state') == 'complete' then return 0 end
return redis.call('DEL', KEYS[2])
"""


def _record(fields: dict) -> FileRecord | None:
    if not fields:
        return None
    f = {k.decode(): v.decode() for k, v in fields.items()}
    values = {}
    for name in _FIELDS:
        v = f.get(name)
        if v is not None and name in _INTS:
            v = int(v)
        elif v is not None and name in _FLOATS:
            v = float(v)
        values[name] = v
    return FileRecord(**values)


class RedisFileRecords:
    """The file part of the Redis store (uses its ``_db``, ``_calls``, ``_fetch``, ``url``)."""

    _file_lua = None

    def _script(self, name: str):
        if self._file_lua is None:
            self._file_lua = {"transition": self._db.register_script(TRANSITION),
                              "remove": self._db.register_script(REMOVE)}
        return self._file_lua[name]

    def file_blobs(self) -> "RedisBlobs":
        """Where the bytes go: the same Redis, a connection pool of their own."""
        return RedisBlobs(self.url)

    def add_file(self, record: FileRecord) -> None:
        """A new upload's record, counted as reserved (now: a shared store does not wait for a commit)."""
        mapping = {k: str(getattr(record, k)) for k in _FIELDS if getattr(record, k) is not None}
        with self._calls():
            pipe = self._db.pipeline(transaction=True)
            pipe.hset(RECORD + record.id, mapping=mapping)
            pipe.zadd(PARTIALS, {record.id: time.time()})
            pipe.incrby(RESERVED, record.size)
            pipe.execute()

    def set_file_state(self, file_id: str, state: str, completed: float | None = None,
                       msg_id: int | None = None) -> bool:
        """The record's new state, if the store allows it from its current one
        (see TRANSITION); True when it changed."""
        return self._transition(file_id, state, completed, msg_id, None) == 1

    def _transition(self, file_id, state, completed, msg_id, limit) -> int:
        keys = [RECORD + file_id, PARTIALS, COMPLETES, USED, RESERVED, BLOB + file_id]
        args = [file_id, state, "" if completed is None else repr(completed), "" if msg_id is None else msg_id,
                "" if limit is None else limit]
        with self._calls():
            return int(self._script("transition")(keys=keys, args=args))

    def set_file_token(self, file_id: str, token: str) -> None:
        """The latest offer's token (its SHA-256): a put with it may reach any
        node. An offer counts as progress."""
        with self._calls():
            pipe = self._db.pipeline(transaction=True)
            pipe.hset(RECORD + file_id, "token", hashlib.sha256(token.encode()).hexdigest())
            pipe.zadd(PARTIALS, {file_id: time.time()}, xx=True)
            pipe.execute()

    def file_token_is(self, file_id: str, token: str) -> bool:
        with self._calls():
            stored = self._db.hget(RECORD + file_id, "token")
        return stored is not None and hmac.compare_digest(stored.decode(), hashlib.sha256(token.encode()).hexdigest())

    def mark_expired(self, record: FileRecord) -> None:
        """The file expired (its bytes go), and its message says so."""
        if self.set_file_state(record.id, EXPIRED) and record.msg_id is not None:
            self._mark_message(record.msg_id, record.id)

    def expire_oldest(self, limit: int) -> list[FileRecord]:
        """Expire the oldest finished files while the deployment's finished and
        reserved bytes exceed ``limit`` (each step atomic, checking the totals
        in Redis); returns the files expired, their messages marked."""
        out, moved = [], None
        while True:
            with self._calls():
                oldest = self._db.zrange(COMPLETES, 0, 0)
            if not oldest:
                return out
            fid = oldest[0].decode()
            if fid == moved:            # still first after it would not move: not a finished file (never so)
                with self._calls():
                    self._db.zrem(COMPLETES, fid)
                continue
            done = self._transition(fid, EXPIRED, None, None, limit)
            moved = fid if done == 0 else None
            if done == -1:
                return out
            if done == 1:
                rec = self.get_file(fid)
                if rec is not None:
                    if rec.msg_id is not None:
                        self._mark_message(rec.msg_id, fid)
                    out.append(rec)
            # 0: another node moved it meanwhile: look at the oldest again

    def _mark_message(self, msg_id: int, file_id: str) -> None:
        """The announcing message's file gets ``"expired": true`` (a change in
        the edits hash, as an edit is: the stream entry cannot change)."""
        from .redis import EDITS
        found = self._fetch([msg_id])
        if not found or not found[0].extra:
            return
        extra = json.loads(found[0].extra)
        f = extra.get("file")
        if type(f) is not dict or f.get("id") != file_id:
            return
        f["expired"] = True
        with self._calls():
            raw = self._db.hget(EDITS, msg_id)
            change = json.loads(raw) if raw is not None else {}
            change["extra"] = json.dumps(extra, separators=(",", ":"))
            self._db.hset(EDITS, msg_id, json.dumps(change))

    def get_file(self, file_id: str) -> FileRecord | None:
        with self._calls():
            return _record(self._db.hgetall(RECORD + file_id))

    def files_in_state(self, state: str) -> list[FileRecord]:
        """Every upload in progress (partial) or finished file (complete), the
        oldest first; the other states are not indexed (an empty list)."""
        index = {PARTIAL: PARTIALS, COMPLETE: COMPLETES}.get(state)
        if index is None:
            return []
        with self._calls():
            ids = self._db.zrange(index, 0, -1)
            pipe = self._db.pipeline(transaction=False)
            for fid in ids:
                pipe.hgetall(RECORD + fid.decode())
            records = pipe.execute() if ids else []
        return [r for r in map(_record, records) if r is not None and r.state == state]

    def stale_partials(self, before: float) -> list[FileRecord]:
        """The uploads in progress with no progress since ``before`` (wall clock), on any node."""
        with self._calls():
            ids = self._db.zrangebyscore(PARTIALS, "-inf", f"({before}")
        return [r for r in (self.get_file(fid.decode()) for fid in ids) if r is not None and r.state == PARTIAL]

    def file_totals(self) -> tuple[int, int]:
        """(bytes of the finished files, bytes reserved by uploads in progress), deployment-wide."""
        with self._calls():
            used, reserved = self._db.mget(USED, RESERVED)
        return int(used or 0), int(reserved or 0)


class BlobsUnavailable(OSError, Unavailable):
    """Redis failed a read or write of bytes: a transfer ends as a lost
    connection does (OSError); on the hub, the client is told ``unavailable``."""


class RedisBlobs:
    """The bytes of the deployment's files, in Redis; the interface of
    :class:`~server.store.files.FileBlobs`. Any thread."""

    def __init__(self, url: str):
        from .redis import _safe_url, connect
        self._db = connect(url)
        self._remove = self._db.register_script(REMOVE)
        self._write = self._db.register_script(WRITE)
        self.where = f"Redis at {_safe_url(url)} (keys {BLOB}*)"

    @contextlib.contextmanager
    def _calls(self):
        from .redis import redis
        try:
            yield
        except redis.RedisError as e:
            raise BlobsUnavailable(f"Redis failed a file's bytes: {e}") from None

    def held(self, file_id: str) -> int:
        """Bytes of an upload already stored."""
        with self._calls():
            return _length(self._db, BLOB + file_id)

    def open_part(self, file_id: str, offset: int) -> "_Part":
        """The upload's bytes for writing at ``offset`` (what follows it is cut off)."""
        with self._calls():
            return _Part(self, file_id, offset)

    def finish(self, file_id: str) -> None:
        """Nothing to do: a checked upload's bytes stay where they are (its record says complete)."""

    def sync(self, f) -> None:
        """(--sync full) Nothing here: Redis's appendfsync decides when its file reaches the disk."""
        f.flush()

    def size(self, f) -> int:
        return f.size

    def open_read(self, file_id: str) -> "_Blob":
        """A finished file's bytes; FileNotFoundError when it is not (or no longer) stored."""
        with self._calls():
            rec = self._db.hmget(RECORD + file_id, "state", "size")
            if rec[0] != COMPLETE.encode():
                raise FileNotFoundError(file_id)
            return _Blob(self, file_id, int(rec[1]))

    def remove(self, file_id: str) -> None:
        """Drop an upload's bytes; a finished file's go only with its state (TRANSITION)."""
        with self._calls():
            self._remove(keys=[RECORD + file_id, BLOB + file_id])

    def names(self) -> list[str]:
        """Nothing to sweep: a shared store's records and bytes change together."""
        return []

    def close(self) -> None:
        self._db.close()


def _length(db, key: str) -> int:
    n = db.hlen(key)
    return 0 if n == 0 else (n - 1) * PIECE + db.hstrlen(key, n - 1)


class _Part:
    """An upload's bytes being written (one transfer thread): the piece not
    yet full waits in ``buf`` and is written at flush and close; each full
    piece is written at once, with the upload's progress (files:partial)."""

    def __init__(self, blobs: RedisBlobs, file_id: str, offset: int):
        self.blobs, self.fid, self.key = blobs, file_id, BLOB + file_id
        db = blobs._db
        self.writer = db.hincrby(RECORD + file_id, "writer", 1)     # an older writer of this upload stops
        count = db.hlen(self.key)
        self.index, cut = divmod(offset, PIECE)
        tail = db.hget(self.key, self.index) if cut else None
        gone = list(range(self.index + (1 if cut else 0), count))
        if gone:
            db.hdel(self.key, *gone)
        self.buf = bytearray((tail or b"")[:cut])
        self.pos = 0            # where read() reads (the hash of what a resumed upload holds)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def write(self, data) -> None:
        self.buf += data
        while len(self.buf) >= PIECE:
            self._put(bytes(self.buf[:PIECE]))
            del self.buf[:PIECE]
            self.index += 1

    def _put(self, piece: bytes) -> None:
        with self.blobs._calls():
            done = self.blobs._write(keys=[RECORD + self.fid, self.key, PARTIALS],
                                     args=[self.writer, self.index, piece, time.time(), self.fid])
        if not done:
            raise BlobsUnavailable("a later put of this upload (perhaps on another node) took over")

    def flush(self) -> None:
        if self.buf:
            self._put(bytes(self.buf))

    def close(self) -> None:
        self.flush()

    def fileno(self):
        raise io.UnsupportedOperation("the bytes are in Redis")

    def seek(self, pos: int) -> None:
        self.pos = pos

    def read(self, n: int) -> bytes:
        """Up to n bytes of what is held from ``pos`` (fewer at a piece's end)."""
        i, at = divmod(self.pos, PIECE)
        if i < self.index:
            with self.blobs._calls():
                piece = self.blobs._db.hget(self.key, i) or b""
        elif i == self.index:
            piece = bytes(self.buf)
        else:
            piece = b""
        data = piece[at:at + n]
        self.pos += len(data)
        return data


class _Blob:
    """A finished file's bytes being read (one transfer thread), a piece at a time."""

    def __init__(self, blobs: RedisBlobs, file_id: str, size: int):
        self.blobs, self.key, self.size = blobs, BLOB + file_id, size
        self.pos = 0
        self._cached = (-1, b"")

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass

    def fileno(self):
        raise io.UnsupportedOperation("the bytes are in Redis")

    def seek(self, pos: int) -> None:
        self.pos = pos

    def read(self, n: int) -> bytes:
        """Up to n bytes from ``pos``; b"" at the end, or when the file was
        deleted or expired while it was read."""
        i, at = divmod(self.pos, PIECE)
        if self._cached[0] != i:
            with self.blobs._calls():
                self._cached = (i, self.blobs._db.hget(self.key, i) or b"")
        data = self._cached[1][at:at + n]
        self.pos += len(data)
        return data
