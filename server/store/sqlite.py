"""The history in SQLite, written in batches: the embedded :class:`~server.store.Store`.

The hub thread owns one :class:`SqliteStore`. It assigns ids as events are
appended (:meth:`~SqliteStore.add_message`, ``add_direct``, ``add_topic``),
and :meth:`~SqliteStore.commit` writes everything pending (events, rooms,
the rooms of sessions and their read markers) in one transaction. The hub
commits before it sends anything, so every id a client sees is on disk: an
acknowledged message survives a crash of the server process (WAL journal;
with ``sync="full"`` it survives power loss too).

Ids strictly increase and are never reused: the next id is one past the
largest stored, and ids handed out but lost in a crash were never sent to
anyone. The **epoch**, a random string made when the file is created and
kept in its ``meta`` table, names this history: a file that is replaced,
or emptied, starts again from id 1 under a new epoch, so a client can tell
that the ids it saw belong to another history.

Every read goes through an index and reads only the rows it returns (plus
one, to say whether there are more): a room's events by ``(room, id)``, a
session's private messages by ``(from_session, id)`` and ``(to_session,
id)``, a private conversation by ``(from_session, to_key, id)`` and
``(to_session, from_key, id)``. A catch-up page merges one such range per
source in Python (:meth:`SqliteStore.catch_up`), so its cost does not grow
with the history. Files from before rooms are migrated in place when
opened (:func:`_migrate`).

One process at a time: the file is locked (:mod:`server.lockfile`, the
file ``PATH.lock`` holding the pid) for as long as the store is open. A
file that is in use, damaged, or cannot be opened raises
:class:`~server.store.HistoryError` with a sentence, at start (after
SQLite's ``quick_check``) and at run time alike.

Sessions (resume tokens) record their last use, to the hour, and
:meth:`SqliteStore.prune_sessions` deletes those unused for a number of
days, with their rooms. Session ids are never reused either, so a new
session cannot inherit an expired one's private messages.

Thread: the hub thread only (sqlite3 connections are not shared).
"""
from __future__ import annotations

import contextlib
import hashlib
import heapq
import logging
import os
import secrets
import sqlite3
import time

from ..lockfile import LockedError, LockFile
from ..protocol import nick_key
from . import DIRECT, LOBBY, MESSAGE, TOPIC, Event, HistoryError, HistoryInUse, RoomRecord
from .files import FileRecords
from .moderation import ModerationStore

TABLES = """
CREATE TABLE IF NOT EXISTS messages (
    id INTEGER PRIMARY KEY,
    ts REAL NOT NULL,
    room TEXT NOT NULL,         -- the room's key; '' for a dm
    sender TEXT NOT NULL,
    recipient TEXT,             -- NULL for a room event, the nick for a dm
    text TEXT NOT NULL,         -- a topic event: the topic ('' clears it)
    from_session INTEGER,
    to_session INTEGER,
    ref TEXT,                   -- the sender's ref: replayed to its session only
    kind TEXT NOT NULL DEFAULT 'message',   -- message, dm, topic (later deleted, edited...)
    extra TEXT,                 -- JSON, for kinds that need more
    from_key TEXT,              -- a dm: the nick keys of its two ends, so a conversation
    to_key TEXT                 --   pages through an index
);
CREATE TABLE IF NOT EXISTS sessions (
    id INTEGER PRIMARY KEY,
    token_hash TEXT NOT NULL UNIQUE,
    created REAL NOT NULL,
    last_used REAL
);
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS rooms (
    key TEXT PRIMARY KEY,
    name TEXT NOT NULL,
    topic TEXT NOT NULL DEFAULT '',
    topic_by TEXT,
    topic_ts REAL,
    key_hash TEXT,              -- sha256$SALT$HEX of the room's key (its password), or NULL
    created REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS session_rooms (
    session INTEGER NOT NULL,
    room TEXT NOT NULL,
    read_upto INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (session, room)
);
"""
# After the migration: the columns they name exist by then.
INDEXES = """
CREATE INDEX IF NOT EXISTS room_messages ON messages (room, id) WHERE recipient IS NULL;
CREATE INDEX IF NOT EXISTS dm_from ON messages (from_session, id) WHERE recipient IS NOT NULL;
CREATE INDEX IF NOT EXISTS dm_to ON messages (to_session, id) WHERE recipient IS NOT NULL;
CREATE INDEX IF NOT EXISTS dm_from_with ON messages (from_session, to_key, id) WHERE recipient IS NOT NULL;
CREATE INDEX IF NOT EXISTS dm_to_with ON messages (to_session, from_key, id) WHERE recipient IS NOT NULL;
"""

DAY = 86400.0
TOUCH_EVERY = 3600.0   # a session's last use is written at most this often

_COLUMNS = "id, ts, room, sender, recipient, text, from_session, to_session, ref, kind, extra"
_INSERT = ("INSERT INTO messages (id, ts, room, sender, recipient, text, from_session, to_session, ref, kind, "
           "extra, from_key, to_key) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?)")
_ROWS_AT_ONCE = (256, 64, 16, 4, 1)     # rows per INSERT: five statements to keep prepared
_INSERTS = [(size, _INSERT + ",(?,?,?,?,?,?,?,?,?,?,?,?,?)" * (size - 1)) for size in _ROWS_AT_ONCE]


def _insert_rows(db, rows: list) -> None:
    """INSERT the pass's rows, several to a statement: one sqlite3_step (and
    one release of the GIL, which the readers take) per statement instead of
    one per row as executemany does. A burst's commit costs the hub a third
    less CPU (docs/performance.md, "burst100 and the commit"). A statement
    stays within the SQLite's limit of parameters (999 before 3.32, which
    a system SQLite may still be)."""
    i, n = 0, len(rows)
    most = db.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER) // 13
    for size, sql in _INSERTS:
        if size > most and size > 1:
            continue
        while n - i >= size:
            db.execute(sql, [v for row in rows[i:i + size] for v in row])
            i += size


_ROOM = f"SELECT {_COLUMNS} FROM messages WHERE room = ? AND recipient IS NULL"
_DM_FROM = f"SELECT {_COLUMNS} FROM messages WHERE from_session = ? AND recipient IS NOT NULL"
_DM_TO = f"SELECT {_COLUMNS} FROM messages WHERE to_session = ? AND recipient IS NOT NULL"
_SHOWN = " AND kind NOT IN ('delete', 'edit')"   # a history page shows the rows they changed instead


class SqliteStore(ModerationStore, FileRecords):
    """The history in one SQLite file. See the module docstring."""

    shared = False      # one server: the core delivers what it appends, after the commit
    history_floor = 0   # nothing is ever dropped from the file

    def __init__(self, path: str, *, sync: str = "normal"):
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
        self._pending: list[tuple] = []   # rows not yet written
        self._ops: list[tuple] = []       # (sql, params) for rooms and session rooms, in order
        self._reads: dict = {}            # (session, room) -> read marker not yet written
        try:
            with self._errors():
                self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
                self._open(sync)
        except BaseException:
            self.close()
            raise

    def _open(self, sync: str) -> None:
        db = self._db
        # Before anything writes to it: a damaged file is refused, not extended.
        problem = db.execute("PRAGMA quick_check(1)").fetchone()[0]
        if problem != "ok":
            problem = " ".join(problem.replace("*** in database main ***", "").split())
            raise sqlite3.DatabaseError(f"database disk image is malformed: {problem}")
        db.execute("PRAGMA journal_mode=WAL")
        db.execute(f"PRAGMA synchronous={sync.upper()}")
        db.executescript(TABLES)
        _migrate(db)
        db.executescript(INDEXES)
        self._open_moderation(db)
        self._open_files(db)
        db.execute("INSERT OR IGNORE INTO rooms (key, name, created) VALUES (?, ?, ?)", (LOBBY, LOBBY, time.time()))
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

    def add_message(self, sender: str, text: str, room: str = LOBBY, session: int | None = None,
                    ref: str | None = None) -> tuple[int, float]:
        """Accept a room message (``room``: the room's key); returns (id, ts).
        Written at the next commit."""
        return self._add(room, sender, None, text, session, None, ref, MESSAGE)

    def add_direct(self, sender: str, to: str, text: str, from_session: int | None,
                   to_session: int | None, ref: str | None = None) -> tuple[int, float]:
        """Accept a private message; replayed and paged only to the two sessions."""
        return self._add("", sender, to, text, from_session, to_session, ref, DIRECT)

    def add_topic(self, room: str, by: str, topic: str, session: int | None,
                  ref: str | None = None) -> tuple[int, float]:
        """A room's topic changed: an event with an id, like a message. The
        rooms table is updated by :meth:`update_room`."""
        return self._add(room, by, None, topic, session, None, ref, TOPIC)

    def _add(self, room, sender, recipient, text, from_session, to_session, ref, kind, extra=None):
        self.last_id += 1
        ts = round(time.time(), 3)
        keys = (nick_key(sender), nick_key(recipient)) if recipient is not None else (None, None)
        self._pending.append((self.last_id, ts, room, sender, recipient, text, from_session, to_session, ref,
                              kind, extra) + keys)
        return self.last_id, ts

    @property
    def dirty(self) -> bool:
        return bool(self._pending or self._ops or self._reads)

    def commit(self) -> int:
        """Write everything pending in one transaction; returns how many events."""
        rows, ops, reads = self._pending, self._ops, self._reads
        if not (rows or ops or reads):
            return 0
        self._pending, self._ops, self._reads = [], [], {}
        db = self._db
        db.execute("BEGIN")
        try:
            if rows:
                _insert_rows(db, rows)
            for sql, params in ops:
                db.execute(sql, params)
            if reads:
                db.executemany("UPDATE session_rooms SET read_upto = MAX(read_upto, ?) WHERE session = ? "
                               "AND room = ?", [(upto, s, r) for (s, r), upto in reads.items()])
            db.execute("COMMIT")
        except BaseException:
            # Put it all back first: it is not on disk. (SQLite may have
            # rolled back already, e.g. after SQLITE_FULL.)
            self._pending = rows + self._pending
            self._ops = ops + self._ops
            self._reads = {**reads, **self._reads}
            if db.in_transaction:
                try:
                    db.execute("ROLLBACK")
                except sqlite3.Error:
                    pass
            raise
        self._after_commit()
        return len(rows)

    @property
    def newest_id(self) -> int:
        return self.last_id

    # -- one server: every nick online is in the hub's own table ---------------

    def claim_online(self, key: str, nick: str, session: int | None, fp: str | None = None,
                     admin: bool = False) -> str | None:
        return None

    def release_online(self, key: str) -> None:
        pass

    def online_holder(self, key: str) -> tuple[str, int | None] | None:
        return None

    def online_elsewhere(self, key: str) -> tuple | None:
        return None

    def online_nicks(self, here: list) -> list:
        return here

    # -- reading (committed events only) -------------------------------------

    def page_room(self, room: str, before: int | None = None, after: int | None = None, limit: int = 50,
                  messages_only: bool = False) -> tuple[list[Event], bool]:
        """A page of a room's events (messages and topic changes; only
        messages with ``messages_only``): the newest ``limit`` (``before``
        an id, or the newest of all), or the oldest after ``after``. Returns
        (events oldest first, more) where ``more`` says that events beyond
        the page exist in the direction paged."""
        where = " AND kind = 'message'" if messages_only else _SHOWN
        return self._page(_ROOM + where, (room,), before, after, limit)

    def page_direct(self, session: int, peer_key: str, before: int | None = None, after: int | None = None,
                    limit: int = 50) -> tuple[list[Event], bool]:
        """A page of the private conversation between ``session`` and the
        nick whose key is ``peer_key`` (both ways; as :meth:`page_room`)."""
        sent, more_sent = self._page(_DM_FROM + _SHOWN + " AND to_key = ?", (session, peer_key), before, after,
                                     limit)
        got, more_got = self._page(_DM_TO + _SHOWN + " AND from_key = ?", (session, peer_key), before, after, limit)
        merged = _unique(heapq.merge(sent, got, key=_id))
        if after is None:
            page = merged[-limit:]
        else:
            page = merged[:limit]
        return page, more_sent or more_got or len(merged) > limit

    def _page(self, query: str, params: tuple, before, after, limit) -> tuple[list[Event], bool]:
        with self._errors():
            if after is not None:
                rows = self._db.execute(query + " AND id > ? ORDER BY id LIMIT ?",
                                        params + (after, limit + 1)).fetchall()
            else:
                bound = " AND id < ?" if before is not None else ""
                args = params + ((before,) if before is not None else ()) + (limit + 1,)
                rows = self._db.execute(query + bound + " ORDER BY id DESC LIMIT ?", args).fetchall()
                rows.reverse()
        more = len(rows) > limit
        if more:
            rows = rows[:limit] if after is not None else rows[1:]
        return [Event(*r) for r in rows], more

    def catch_up(self, rooms: dict, session: int | None, dm_floor: int | None, after: int,
                 limit: int) -> tuple[list[Event], bool]:
        """The next ``limit`` events after id ``after``, in id order, from
        these sources: each room of ``rooms`` (key -> (floor, ceiling): its
        events with floor < id <= ceiling, ceiling None for no bound) and,
        when ``dm_floor`` is not None, the private messages of ``session``
        with an id above it. Returns (events, more): ``more`` is False
        when the sources held nothing beyond the page.

        Each source is one index range read lazily (``LIMIT limit + 1``),
        merged in Python: at most ``limit`` + 1 rows per source are read,
        however long the history."""
        sources = []
        with self._errors():
            for room, (floor, ceiling) in rooms.items():
                start = max(after, floor)
                if ceiling is not None:
                    if ceiling <= start:
                        continue
                    sources.append(self._db.execute(_ROOM + " AND id > ? AND id <= ? ORDER BY id LIMIT ?",
                                                    (room, start, ceiling, limit + 1)))
                else:
                    sources.append(self._db.execute(_ROOM + " AND id > ? ORDER BY id LIMIT ?",
                                                    (room, start, limit + 1)))
            if dm_floor is not None and session is not None:
                start = max(after, dm_floor)
                for query in (_DM_FROM, _DM_TO):
                    sources.append(self._db.execute(query + " AND id > ? ORDER BY id LIMIT ?",
                                                    (session, start, limit + 1)))
            try:
                out: list[Event] = []
                last = None
                for row in heapq.merge(*sources):      # rows are tuples: ordered by id first
                    if row[0] == last:
                        continue                       # a dm to oneself comes from both ends
                    if len(out) == limit:
                        return out, True
                    last = row[0]
                    out.append(Event(*row))
                return out, False
            finally:
                for cur in sources:
                    cur.close()

    def recent_floor(self, room: str, n: int) -> int:
        """The id just before the ``n``-th newest message of a room (0 when it
        has fewer): what a catch-up of "the last n messages" starts after."""
        with self._errors():
            row = self._db.execute("SELECT id FROM messages WHERE room = ? AND recipient IS NULL AND "
                                   "kind = 'message' ORDER BY id DESC LIMIT 1 OFFSET ?",
                                   (room, n - 1)).fetchone()
        return row[0] - 1 if row else 0

    def first_id_after(self, ts: float, inclusive: bool = False) -> int:
        """The smallest committed id whose time is after ``ts`` (at or
        after it with ``inclusive``); ``last_id + 1`` when there is none.
        Ids are handed out in time order, so this is a binary search of
        point reads on the primary key, never a scan."""
        def first_from(i):      # the first event with an id >= i: (id, ts), or None
            return self._db.execute("SELECT id, ts FROM messages WHERE id >= ? ORDER BY id LIMIT 1",
                                    (i,)).fetchone()

        def later(t):
            return t > ts or (inclusive and t == ts)
        lo, hi = 1, self.last_id + 1
        with self._errors():
            while lo < hi:
                mid = (lo + hi) // 2
                row = first_from(mid)
                if row is None or later(row[1]):
                    hi = mid
                else:
                    lo = row[0] + 1
            row = first_from(lo)
        return row[0] if row is not None else self.last_id + 1

    def last_message_id(self, room: str) -> int:
        """The id of a room's newest committed message, 0 if none."""
        with self._errors():
            row = self._db.execute("SELECT id FROM messages WHERE room = ? AND recipient IS NULL AND "
                                   "kind = 'message' ORDER BY id DESC LIMIT 1", (room,)).fetchone()
        return row[0] if row else 0

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
        """Delete sessions unused for more than ``max_age_days`` (0: never),
        and the rooms they were in; the sessions in ``keep`` (those online
        now) count as used now. Returns how many were deleted."""
        if max_age_days <= 0:
            return 0
        now = time.time()
        self.commit()           # pending session rooms first: they may belong to an expired session
        db = self._db
        with self._errors():
            db.execute("BEGIN")
            try:
                db.executemany("UPDATE sessions SET last_used = ? WHERE id = ?", [(now, s) for s in keep])
                # Remember the ids handed out, or a deleted newest id would be given again.
                db.execute("INSERT OR REPLACE INTO meta VALUES ('sessions_issued', ?)",
                           (str(self._next_session - 1),))
                n = db.execute("DELETE FROM sessions WHERE last_used < ?", (now - max_age_days * DAY,)).rowcount
                if n:
                    db.execute("DELETE FROM session_rooms WHERE session NOT IN (SELECT id FROM sessions)")
                db.execute("COMMIT")
            except BaseException:
                if db.in_transaction:
                    db.execute("ROLLBACK")
                raise
        if n:
            logging.getLogger("natter.server").info("history: %d sessions unused for %g days expired",
                                                    n, max_age_days)
        return n

    def session_rooms(self, session: int) -> dict:
        """The rooms a session was in, in the order it joined them: {room key: read marker}."""
        if self._ops or self._reads:
            self.commit()       # its joins and parts of this pass count too
        with self._errors():
            return dict(self._db.execute("SELECT room, read_upto FROM session_rooms WHERE session = ? "
                                         "ORDER BY rowid", (session,)).fetchall())

    def join_room(self, session: int, room: str, read_upto: int) -> None:
        """The session is in the room (written at the next commit); a rejoin keeps its marker."""
        self._ops.append(("INSERT OR IGNORE INTO session_rooms (session, room, read_upto) VALUES (?, ?, ?)",
                          (session, room, read_upto)))

    def part_room(self, session: int, room: str) -> None:
        self._reads.pop((session, room), None)
        self._ops.append(("DELETE FROM session_rooms WHERE session = ? AND room = ?", (session, room)))

    def mark_read(self, session: int, room: str, upto: int) -> None:
        """Move the session's read marker in a room forward (never back)."""
        key = (session, room)
        if upto > self._reads.get(key, -1):
            self._reads[key] = upto

    # -- rooms ------------------------------------------------------------

    def rooms(self) -> list[RoomRecord]:
        """Every room, committed or pending."""
        self.commit()
        with self._errors():
            return [RoomRecord(*r) for r in self._db.execute(
                "SELECT key, name, topic, topic_by, topic_ts, key_hash, created FROM rooms ORDER BY created")]

    def find_room(self, key: str) -> RoomRecord | None:
        """None: this server made every room itself and has them all."""
        return None

    def create_room(self, record: RoomRecord) -> None:
        self._ops.append(("INSERT OR REPLACE INTO rooms (key, name, topic, topic_by, topic_ts, key_hash, created) "
                          "VALUES (?, ?, ?, ?, ?, ?, ?)", (record.key, record.name, record.topic, record.topic_by,
                                                           record.topic_ts, record.key_hash, record.created)))

    def update_room(self, record: RoomRecord) -> None:
        """Its topic and key as they are now (written at the next commit)."""
        self._ops.append(("UPDATE rooms SET topic = ?, topic_by = ?, topic_ts = ?, key_hash = ? WHERE key = ?",
                          (record.topic, record.topic_by, record.topic_ts, record.key_hash, record.key)))

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


def _id(event: Event) -> int:
    return event.id


def _unique(events) -> list:
    """Events in id order without repeats (a dm to oneself is on both sides)."""
    out: list = []
    for e in events:
        if not out or out[-1].id != e.id:
            out.append(e)
    return out


def _migrate(db) -> None:
    """Bring a file from an older version up to TABLES, in place (each step
    idempotent): sessions get their last use; messages get their kind, the
    nick keys of private messages, and room events the key of their room."""
    columns = {row[1] for row in db.execute("PRAGMA table_info(sessions)")}
    if "last_used" not in columns:
        db.execute("BEGIN")
        db.execute("ALTER TABLE sessions ADD COLUMN last_used REAL")
        db.execute("UPDATE sessions SET last_used = created")
        db.execute("COMMIT")
    columns = {row[1] for row in db.execute("PRAGMA table_info(messages)")}
    if "kind" not in columns:
        # Before rooms: every room message was in 'lobby' (its key too), a dm
        # had room ''. One pass over the private messages; none over the rest.
        db.create_function("natter_nick_key", 1, nick_key, deterministic=True)
        db.execute("BEGIN")
        db.execute("ALTER TABLE messages ADD COLUMN kind TEXT NOT NULL DEFAULT 'message'")
        db.execute("ALTER TABLE messages ADD COLUMN extra TEXT")
        db.execute("ALTER TABLE messages ADD COLUMN from_key TEXT")
        db.execute("ALTER TABLE messages ADD COLUMN to_key TEXT")
        db.execute("UPDATE messages SET kind = 'dm', from_key = natter_nick_key(sender), "
                   "to_key = natter_nick_key(recipient) WHERE recipient IS NOT NULL")
        db.execute("COMMIT")


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()
