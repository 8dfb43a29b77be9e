"""Message history in SQLite, written in batches.

The hub thread owns one :class:`History`. It assigns ids as messages are
accepted (:meth:`add_message`, :meth:`add_direct`), and :meth:`commit`
writes everything pending in one transaction. The hub commits before it
sends anything, so every id a client sees is on disk: an acknowledged
message survives a crash of the server process (WAL journal; with
``sync="full"`` it survives power loss too).

Ids strictly increase and are never reused: the next id is one past the
largest stored, and ids handed out but lost in a crash were never sent to
anyone.

A ring of recent frames in memory answers the welcome and most resumes
without touching the disk, which keeps a reconnect storm off the database.

Thread: the hub thread only (sqlite3 connections are not shared).
"""
from __future__ import annotations

import collections
import hashlib
import logging
import os
import secrets
import sqlite3
import time

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
    created REAL NOT NULL
);
-- The last room messages without a scan when private ones fill the ring.
CREATE INDEX IF NOT EXISTS room_messages ON messages (room, id) WHERE recipient IS NULL;
"""


class HistoryError(Exception):
    """The history file cannot be opened or used; the message says why."""


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


class History:
    """The message store. See the module docstring for the guarantees."""

    def __init__(self, path: str, *, sync: str = "normal", ring: int = 2000):
        if sync not in ("normal", "full", "off"):
            raise ValueError("sync must be normal, full or off")
        self.path = path
        if path != ":memory:":
            directory = os.path.dirname(os.path.abspath(path))
            try:
                os.makedirs(directory, exist_ok=True)
            except OSError as e:
                raise HistoryError(f"cannot create the folder for history {directory}: {e.strerror}") from None
        try:
            self._db = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
            self._db.execute("PRAGMA journal_mode=WAL")
            self._db.execute(f"PRAGMA synchronous={sync.upper()}")
            self._db.executescript(SCHEMA)
            row = self._db.execute("SELECT MAX(id) FROM messages").fetchone()
        except sqlite3.DatabaseError as e:
            raise HistoryError(f"cannot use history file {path}: {e}") from None
        self.last_id = row[0] or 0
        self._pending: list[_Row] = []
        self._ring: collections.deque[_Row] = collections.deque(maxlen=ring)
        for r in reversed(self._db.execute(
                "SELECT id, ts, room, sender, recipient, text, from_session, to_session, ref "
                "FROM messages ORDER BY id DESC LIMIT ?", (ring,)).fetchall()):
            self._ring.append(_Row(*r))
        # The oldest id the ring can answer for: a resume from an id >= this
        # needs no query.
        self._ring_floor = self._ring[0].id - 1 if len(self._ring) == ring else 0

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
            rows = self._db.execute(
                "SELECT id, ts, room, sender, recipient, text, from_session, to_session, ref FROM messages "
                "WHERE recipient IS NULL AND room = ? ORDER BY id DESC LIMIT ?", (room, limit)).fetchall()
            out = [_Row(*r).frame() for r in reversed(rows)]
        return out

    def since(self, after: int, session: int | None, limit: int, room: str = "lobby",
              limit_bytes: int = 8 * 1024 * 1024) -> tuple[list[dict], int]:
        """Every message after id ``after`` that this session may see.

        Returns (frames oldest first, missed) where ``missed`` counts the
        oldest ones left out because there were more than ``limit``, or
        more than about ``limit_bytes`` of text (a welcome is one line, and
        a client's line limit is finite).
        """
        if after >= self._ring_floor:
            rows = [r for r in self._ring if r.id > after and r.visible_to(session)
                    and (r.recipient is not None or r.room == room)]
        else:
            self.commit()
            rows = [_Row(*r) for r in self._db.execute(
                "SELECT id, ts, room, sender, recipient, text, from_session, to_session, ref FROM messages "
                "WHERE id > ? AND ((recipient IS NULL AND room = ?) "
                "OR (recipient IS NOT NULL AND (from_session = ? OR to_session = ?))) "
                "ORDER BY id", (after, room, session, session))]
        missed = max(0, len(rows) - limit)
        size = 0
        for i in range(len(rows) - 1, missed - 1, -1):
            size += len(rows[i].text.encode("utf-8", "surrogatepass")) + 160
            if size > limit_bytes:
                missed = i + 1
                break
        return [r.frame(session) for r in rows[missed:]], missed

    # -- sessions ---------------------------------------------------------

    def new_session(self) -> tuple[int, str]:
        """Create a resume session; returns (session id, secret token)."""
        token = secrets.token_urlsafe(24)
        cur = self._db.execute("INSERT INTO sessions (token_hash, created) VALUES (?, ?)",
                               (_hash(token), time.time()))
        return cur.lastrowid, token

    def find_session(self, token: str) -> int | None:
        row = self._db.execute("SELECT id FROM sessions WHERE token_hash = ?", (_hash(token),)).fetchone()
        return row[0] if row else None

    def close(self) -> None:
        """Commit what is pending and close the file. Idempotent; a failed
        last commit is logged (those messages were never acknowledged)."""
        if self._db is None:
            return
        try:
            self.commit()
        except sqlite3.Error as e:
            logging.getLogger("natter.server").error("history: %d unsaved messages dropped at close: %s",
                                                     len(self._pending), e)
        finally:
            self._db.close()
            self._db = None


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()
