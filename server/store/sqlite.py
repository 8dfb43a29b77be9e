"""The history in SQLite, written in batches.

The hub thread owns one :class:`SqliteStore`. It assigns ids as messages are
accepted (:meth:`add_message`, :meth:`add_direct`), and :meth:`commit`
writes everything pending in one transaction. The hub commits before it
sends anything, so every id a client sees is on disk: an acknowledged
message survives a crash of the server process (WAL journal; with
``sync="full"`` it survives power loss too).

Ids strictly increase and are never reused: the next id is one past the
largest stored, and ids handed out but lost in a crash were never sent to
anyone. The **epoch**, a random string made when the file is created and
kept in its ``meta`` table, names this history: a file that is replaced,
or emptied, starts again from id 1 under a new epoch, so a client can tell
that the ids it saw belong to another history.

One process at a time: the file is locked (:mod:`server.lockfile`, the
file ``PATH.lock`` holding the pid) for as long as the store is open. A
file that is in use, damaged, or cannot be opened raises
:class:`HistoryError` with a sentence, at start (after SQLite's
``quick_check``) and at run time alike.

A ring of recent frames in memory answers the welcome and most resumes
without touching the disk, which keeps a reconnect storm off the database;
a resume from further back reads only the rows it sends.

Sessions (resume tokens) record their last use, to the hour, and
:meth:`SqliteStore.prune_sessions` deletes those unused for a number of days.
Session ids are never reused either, so a new session cannot inherit an
expired one's private messages.

Thread: the hub thread only (sqlite3 connections are not shared).
"""
from __future__ import annotations

import collections
import contextlib
import hashlib
import logging
import os
import secrets
import sqlite3
import time

from ..lockfile import LockedError, LockFile
from . import HistoryError, HistoryInUse

SCHEMA = """
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY,
    ts REAL NOT NULL,
    room TEXT NOT NULL,
    sender TEXT NOT NULL,
    recipient TEXT,             -- NULL for a room message, the nick for a dm
    text TEXT NOT NULL,
    from_session INTEGER,
    to_session INTEGER,
    ref TEXT                    -- the sender's ref: replayed to its session only
);
CREATE TABLE IF NOT EXISTS sessions (
    id INTEGER PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    created REAL NOT NULL,
    last_used REAL              -- added by a migration in older files (see _migrate)
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
-- The last room messages without a scan when private ones fill the ring.
CREATE INDEX IF NOT EXISTS room_messages ON messages (room, id) WHERE recipient IS NULL;
-- How many private messages of one session a replay left out, without a scan.
CREATE INDEX IF NOT EXISTS dm_from ON messages (from_session, id) WHERE recipient IS NOT NULL;
CREATE INDEX IF NOT EXISTS dm_to ON messages (to_session, id) WHERE recipient IS NOT NULL;
"""

DAY = 86400.0
TOUCH_EVERY = 3600.0   # a session's last use is written at most this often
REPLAY_OVERHEAD = 160  # bytes of JSON around each replayed text, for the byte cap

_COLUMNS = "id, ts, room, sender, recipient, text, from_session, to_session, ref"


class _Row:
    """One stored message; its wire frame is built on demand."""

    __slots__ = ("id", "ts", "room", "sender", "recipient", "text", "from_session", "to_session", "ref")

    def __init__(self, id, ts, room, sender, recipient, text, from_session, to_session, ref=None):
        self.id = id
        self.ts = ts
        self.room = room
        self.sender = sender
        self.recipient = recipient
        self.text = text
        self.from_session = from_session
        self.to_session = to_session
        self.ref = ref

    def visible_to(self, session: int | None) -> bool:
        return self.recipient is None or (session is not None and session in (self.from_session,
                                                                              self.to_session))

    def frame(self, session: int | None = None) -> dict:
        """The wire frame; the sender's own session also gets its ref back,
        so a client that lost an acknowledgement in a disconnect knows its
        message arrived and does not send it again."""
        if self.recipient is None:
            f = {"type": "message", "id": self.id, "ts": self.ts, "from": self.sender, "text": self.text}
        else:
            f = {"type": "dm", "id": self.id, "ts": self.ts, "from": self.sender,
                 "to": self.recipient, "text": self.text}
        if self.ref is not None and session is not None and session == self.from_session:
            f["ref"] = self.ref
        return f

    def astuple(self):
        return (self.id, self.ts, self.room, self.sender, self.recipient, self.text,
                self.from_session, self.to_session, self.ref)


class SqliteStore:
    """The message store. See the module docstring for the guarantees."""

    def __init__(self, path: str, *, sync: str = "normal", ring: int = 2000):
        if sync not in ("normal", "full", "off"):
            raise ValueError("sync must be normal, full or off")
        self.path = path
        self._db = None
        self._lock = None
        if path != ":memory:":
            directory = os.path.dirname(os.path.abspath(path))
            try:
                os.makedirs(directory, exist_ok=True)
            except OSError as e:
                raise HistoryError(f"the folder for the history file, {directory}, cannot be created "
                                   f"({e.strerror})") from None
            try:
                self._lock = LockFile(path + ".lock")
            except LockedError as e:
                raise HistoryInUse(path, e.pid) from None
            except OSError as e:
                raise HistoryError(f"the lock file {path}.lock cannot be made ({e.strerror})") from None
        self._pending: list[_Row] = []
        self._ring: collections.deque[_Row] = collections.deque(maxlen=ring)
        try:
            with self._errors():
                self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
                self._open(sync, ring)
        except BaseException:
            self.close()
            raise

    def _open(self, sync: str, ring: int) -> None:
        db = self._db
        # Before anything writes to it: a damaged file is refused, not extended.
        problem = db.execute("PRAGMA quick_check(1)").fetchone()[0]
        if problem != "ok":
            problem = " ".join(problem.replace("*** in database main ***", "").split())
            raise sqlite3.DatabaseError(f"database disk image is malformed: {problem}")
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={sync.upper()}")
        db.executescript(SCHEMA)
        _migrate(db)
        row = db.execute("SELECT value FROM meta WHERE key = 'epoch'").fetchone()
        if row is None:
            # A new file (or one from before epochs): a new history identity.
            self.epoch = secrets.token_urlsafe(12)
            db.execute("INSERT INTO meta VALUES ('epoch', ?)", (self.epoch,))
        else:
            self.epoch = row[0]
        self.last_id = db.execute("SELECT MAX(id) FROM messages").fetchone()[0] or 0
        issued = db.execute("SELECT value FROM meta WHERE key = 'sessions_issued'").fetchone()
        top = db.execute("SELECT MAX(id) FROM sessions").fetchone()[0] or 0
        self._next_session = max(top, int(issued[0]) if issued else 0) + 1
        for r in reversed(db.execute(f"SELECT {_COLUMNS} FROM messages ORDER BY id DESC LIMIT ?",
                                     (ring,)).fetchall()):
            self._ring.append(_Row(*r))
        # The oldest id the ring can answer for: a resume from an id >= this
        # needs no query.
        self._ring_floor = self._ring[0].id - 1 if len(self._ring) == ring else 0

    @contextlib.contextmanager
    def _errors(self):
        """SQLite errors of a read or a bookkeeping write -> HistoryError with a sentence.
        (:meth:`commit` raises sqlite3.Error as it is: the hub stops on it.)"""
        try:
            yield
        except sqlite3.DatabaseError as e:
            if (getattr(e, "sqlite_errorname", None) or "").startswith(("SQLITE_CORRUPT", "SQLITE_NOTADB")) \
                    or "malformed" in str(e) or "not a database" in str(e):
                raise HistoryError(f"the history file {self.path} is damaged ({e}); move it aside to start "
                                   "a new history, or put back a copy from before the damage") from None
            raise HistoryError(f"the history file {self.path} cannot be used ({e})") from None

    # -- writing ----------------------------------------------------------

    def add_message(self, sender: str, text: str, room: str = "lobby", session: int | None = None,
                    ref: str | None = None) -> tuple[int, float]:
        """Accept a room message; returns (id, ts). Written at the next commit."""
        return self._add(room, sender, None, text, session, None, ref)

    def add_direct(self, sender: str, to: str, text: str, from_session: int | None,
                   to_session: int | None, ref: str | None = None) -> tuple[int, float]:
        """Accept a private message; replayed only to the two sessions."""
        return self._add("", sender, to, text, from_session, to_session, ref)

    def _add(self, room, sender, recipient, text, from_session, to_session, ref):
        self.last_id += 1
        ts = round(time.time(), 3)
        row = _Row(self.last_id, ts, room, sender, recipient, text, from_session, to_session, ref)
        self._pending.append(row)
        if len(self._ring) == self._ring.maxlen:
            self._ring_floor = self._ring[0].id
        self._ring.append(row)
        return self.last_id, ts

    @property
    def dirty(self) -> bool:
        return bool(self._pending)

    def commit(self) -> int:
        """Write everything pending in one transaction; returns how many rows."""
        rows = self._pending
        if not rows:
            return 0
        self._pending = []
        db = self._db
        db.execute("BEGIN")
        try:
            db.executemany("INSERT INTO messages VALUES (?,?,?,?,?,?,?,?,?)", [r.astuple() for r in rows])
            db.execute("COMMIT")
        except BaseException:
            # Put the rows back first: they are not on disk. (SQLite may
            # have rolled back already, e.g. after SQLITE_FULL.)
            self._pending = rows + self._pending
            if db.in_transaction:
                try:
                    db.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
            raise
        return len(rows)

    # -- reading ----------------------------------------------------------

    def recent(self, limit: int = 100, room: str = "lobby") -> list[dict]:
        """The last ``limit`` room messages, oldest first, as wire frames."""
        out = []
        for row in reversed(self._ring):
            if row.recipient is None and row.room == room:
                out.append(row.frame())
                if len(out) == limit:
                    break
        out.reverse()
        if len(out) < limit and self._ring_floor > 0:
            # The ring is full of private messages: older room messages are
            # on disk only.
            self.commit()
            with self._errors():
                rows = self._db.execute(
                    f"SELECT {_COLUMNS} FROM messages WHERE recipient IS NULL AND room = ? "
                    "ORDER BY id DESC LIMIT ?", (room, limit)).fetchall()
            out = [_Row(*r).frame() for r in reversed(rows)]
        return out

    def since(self, after: int, session: int | None, limit: int, room: str = "lobby",
              limit_bytes: int = 8 * 1024 * 1024) -> tuple[list[dict], int]:
        """Every message after id ``after`` that this session may see.

        Returns (frames oldest first, missed) where ``missed`` counts the
        oldest ones left out because there were more than ``limit``, or
        more than about ``limit_bytes`` of text (a welcome is one line, and
        a client's line limit is finite). Reads newest first and stops at
        what it sends: at most ``limit`` + 1 rows, whatever the history
        holds; the rest is only counted, in the indexes.
        """
        if after >= self._ring_floor:
            newest_first = (r for r in reversed(self._ring) if r.id > after and r.visible_to(session)
                            and (r.recipient is not None or r.room == room))
            kept, more = _take(newest_first, limit, limit_bytes)
            missed = 1 + sum(1 for _ in newest_first) if more else 0
        else:
            self.commit()
            with self._errors():
                cur = self._db.execute(
                    f"SELECT {_COLUMNS} FROM messages WHERE id > ? AND ((recipient IS NULL AND room = ?) "
                    "OR (recipient IS NOT NULL AND (from_session = ? OR to_session = ?))) "
                    "ORDER BY id DESC LIMIT ?", (after, room, session, session, limit + 1))
                try:
                    kept, more = _take((_Row(*r) for r in cur), limit, limit_bytes)
                finally:
                    cur.close()
                missed = self._count(after, kept[-1].id if kept else self.last_id + 1, session, room) \
                    if more else 0
        kept.reverse()
        return [r.frame(session) for r in kept], missed

    def _count(self, after: int, before: int, session: int | None, room: str) -> int:
        """Messages this session may see with ``after`` < id < ``before`` (index scans only)."""
        db = self._db
        n = db.execute("SELECT COUNT(*) FROM messages WHERE recipient IS NULL AND room = ? AND id > ? "
                       "AND id < ?", (room, after, before)).fetchone()[0]
        if session is not None:
            n += db.execute("SELECT COUNT(*) FROM messages WHERE recipient IS NOT NULL AND from_session = ? "
                            "AND id > ? AND id < ?", (session, after, before)).fetchone()[0]
            n += db.execute("SELECT COUNT(*) FROM messages WHERE recipient IS NOT NULL AND to_session = ? "
                            "AND from_session IS NOT ? AND id > ? AND id < ?",
                            (session, session, after, before)).fetchone()[0]
        return n

    # -- sessions ---------------------------------------------------------

    def new_session(self) -> tuple[int, str]:
        """Create a resume session; returns (session id, secret token)."""
        token = secrets.token_urlsafe(24)
        now = time.time()
        sid = self._next_session
        with self._errors():
            self._db.execute("INSERT INTO sessions (id, token_hash, created, last_used) VALUES (?, ?, ?, ?)",
                             (sid, _hash(token), now, now))
        self._next_session = sid + 1
        return sid, token

    def find_session(self, token: str) -> int | None:
        """The session of a resume token, or None; records its use (to the hour)."""
        with self._errors():
            row = self._db.execute("SELECT id, last_used FROM sessions WHERE token_hash = ?",
                                   (_hash(token),)).fetchone()
            if row is None:
                return None
            now = time.time()
            if row[1] is None or now - row[1] > TOUCH_EVERY:
                self._db.execute("UPDATE sessions SET last_used = ? WHERE id = ?", (now, row[0]))
        return row[0]

    def prune_sessions(self, max_age_days: float, keep=()) -> int:
        """Delete sessions unused for more than ``max_age_days`` (0: never);
        the sessions in ``keep`` (those online now) count as used now.
        Returns how many were deleted."""
        if max_age_days <= 0:
            return 0
        now = time.time()
        db = self._db
        with self._errors():
            db.execute("BEGIN")
            try:
                db.executemany("UPDATE sessions SET last_used = ? WHERE id = ?", [(now, s) for s in keep])
                # Remember the ids handed out, or a deleted newest id would be given again.
                db.execute("INSERT OR REPLACE INTO meta VALUES ('sessions_issued', ?)",
                           (str(self._next_session - 1),))
                n = db.execute("DELETE FROM sessions WHERE last_used < ?", (now - max_age_days * DAY,)).rowcount
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
        if n:
            logging.getLogger("natter.server").info("history: %d sessions unused for %g days expired",
                                                    n, max_age_days)
        return n

    def close(self) -> None:
        """Commit what is pending, close the file and drop its lock.
        Idempotent; a failed last commit is logged (those messages were
        never acknowledged)."""
        try:
            if self._db is not None:
                try:
                    self.commit()
                except sqlite3.Error as e:
                    logging.getLogger("natter.server").error("history: %d unsaved messages dropped at close: %s",
                                                             len(self._pending), e)
                finally:
                    self._db.close()
                    self._db = None
        finally:
            lock, self._lock = self._lock, None
            if lock is not None:
                lock.release()


def _take(newest_first, limit: int, limit_bytes: int) -> tuple[list, bool]:
    """The rows a replay sends, newest first, and whether any were left out.
    Stops at the first row that does not fit, so it reads at most limit + 1."""
    kept: list = []
    size = 0
    for r in newest_first:
        if len(kept) == limit:
            return kept, True
        size += len(r.text.encode("utf-8", "surrogatepass")) + REPLAY_OVERHEAD
        if size > limit_bytes:
            return kept, True
        kept.append(r)
    return kept, False


def _migrate(db) -> None:
    """Bring a file from an older version up to SCHEMA (each step idempotent)."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(sessions)")}
    if "last_used" not in columns:
        db.execute("BEGIN")
        db.execute("ALTER TABLE sessions ADD COLUMN last_used REAL")
        db.execute("UPDATE sessions SET last_used = created")
        db.execute("COMMIT")


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()
