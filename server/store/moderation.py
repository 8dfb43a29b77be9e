"""Identity and moderation in the SQLite history: :class:`ModerationStore`,
mixed into :class:`~server.store.sqlite.SqliteStore`.

Tables (made, or added to an older file in place, by :meth:`_open_moderation`):

- ``nick_bindings(nick_key, fingerprint, last_used)``: a nick used with an
  identity belongs to that identity's fingerprint until it is forgotten or
  unused for the expiry (``--nick-expiry``);
- ``room_roles(room, fingerprint, role)``: owner, op or voice (member: no row);
- ``bans`` and ``mutes`` ``(room, who, nick, until, by, reason)``: ``who`` is
  a fingerprint, or ``nick:`` + the nick key for a client without identity;
  ``until`` None for no end;
- ``rooms.modes``: the room's modes as JSON.

These are small and written at once (like sessions), not at the next
commit: the hub reads them back into memory at start. Events of the new
kinds (moderated, mode, question, delete, edit) are rows of ``messages``
like the rest, appended with :meth:`add_event`.

Deleting a message erases its text in the row (at the next commit) with
``secure_delete`` on, then checkpoints and truncates the WAL, so the text
is gone from the file, not only hidden.

Thread: the hub thread only.
"""
from __future__ import annotations

import json

from . import Event

# Kinds of stored events (beside message, dm, topic).
MODERATED, MODE, QUESTION, DELETE, EDIT, DELETED = "moderated", "mode", "question", "delete", "edit", "deleted"
HIDDEN_IN_HISTORY = (DELETE, EDIT)   # they change another row; a history page shows that row as it is now

MODERATION_TABLES = """
CREATE TABLE IF NOT EXISTS nick_bindings (
    nick_key TEXT PRIMARY KEY,
    fingerprint TEXT NOT NULL,
    last_used REAL NOT NULL
);
CREATE TABLE IF NOT EXISTS room_roles (
    room TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    role TEXT NOT NULL,             -- owner, op, voice
    PRIMARY KEY (room, fingerprint)
);
CREATE TABLE IF NOT EXISTS bans (
    room TEXT NOT NULL, who TEXT NOT NULL, nick TEXT NOT NULL, until REAL, by TEXT, reason TEXT,
    PRIMARY KEY (room, who)
);
CREATE TABLE IF NOT EXISTS mutes (
    room TEXT NOT NULL, who TEXT NOT NULL, nick TEXT NOT NULL, until REAL, by TEXT, reason TEXT,
    PRIMARY KEY (room, who)
);
"""
_LISTS = ("bans", "mutes")
_COLUMNS = "id, ts, room, sender, recipient, text, from_session, to_session, ref, kind, extra"


class ModerationStore:
    """The moderation part of the SQLite store (uses its ``_db``, ``_add``,
    ``_ops`` and ``_errors``)."""

    _erased = False     # a commit erased text: checkpoint the WAL after it

    def _open_moderation(self, db) -> None:
        db.execute("PRAGMA secure_delete=ON")
        db.executescript(MODERATION_TABLES)
        columns = {row[1] for row in db.execute("PRAGMA table_info(rooms)")}
        if "modes" not in columns:
            db.execute("ALTER TABLE rooms ADD COLUMN modes TEXT")
        db.execute("CREATE INDEX IF NOT EXISTS room_moderation ON messages (room, id) WHERE recipient IS NULL "
                   "AND kind IN ('moderated', 'mode', 'delete')")

    # -- events ---------------------------------------------------------------

    def add_event(self, kind: str, room: str, sender: str, text: str = "", session: int | None = None,
                  extra: dict | None = None, recipient: str | None = None, to_session: int | None = None,
                  ref: str | None = None) -> tuple[int, float]:
        """Append an event of any kind (``extra``: kept as JSON); returns (id, ts)."""
        return self._add(room, sender, recipient, text, session, to_session, ref, kind,
                         json.dumps(extra, separators=(",", ":")) if extra is not None else None)

    def get_event(self, event_id: int) -> Event | None:
        """A committed event by id."""
        with self._errors():
            row = self._db.execute(f"SELECT {_COLUMNS} FROM messages WHERE id = ?", (event_id,)).fetchone()
        return Event(*row) if row else None

    def erase(self, event: Event, extra: dict) -> None:
        """At the next commit: the event's text (and that of its edits) is
        erased and it becomes a ``deleted`` tombstone carrying ``extra``."""
        self._ops.append(("UPDATE messages SET text = '', ref = NULL, kind = 'deleted', extra = ? WHERE id = ?",
                          (json.dumps(extra, separators=(",", ":")), event.id)))
        if event.recipient is None:
            where, key = "room = ? AND recipient IS NULL", event.room
        else:
            where, key = "from_session IS ? AND recipient IS NOT NULL", event.from_session
        self._ops.append((f"UPDATE messages SET text = '' WHERE {where} AND id > ? AND kind = 'edit' "
                          "AND json_extract(extra, '$.id') = ?", (key, event.id, event.id)))
        self._erased = True

    def replace_text(self, event_id: int, text: str, extra: dict) -> None:
        """At the next commit: an edit's new text in the message's row."""
        self._ops.append(("UPDATE messages SET text = ?, extra = ? WHERE id = ?",
                          (text, json.dumps(extra, separators=(",", ":")), event_id)))

    def _after_commit(self) -> None:
        if self._erased:
            self._erased = False
            # The old pages (and the WAL frames holding the text) are overwritten
            # by the checkpoint and the truncation: the text leaves the files.
            self._db.execute("PRAGMA wal_checkpoint(TRUNCATE)")

    def audit_events(self, room: str, keep, limit: int = 200, before: int | None = None) -> list[Event]:
        """The newest ``limit`` moderation events of a room (older than the
        event id ``before``, if given) for which ``keep(event)`` holds, oldest
        first (read backwards a page at a time)."""
        out: list = []
        with self._errors():
            while len(out) < limit:
                rows = self._db.execute(
                    f"SELECT {_COLUMNS} FROM messages WHERE room = ? AND recipient IS NULL AND kind IN "
                    "('moderated', 'mode', 'delete')" + (" AND id < ?" if before else "") +
                    " ORDER BY id DESC LIMIT ?", (room, before, 500) if before else (room, 500)).fetchall()
                if not rows:
                    break
                before = rows[-1][0]
                out.extend(e for e in map(lambda r: Event(*r), rows) if keep(e))
        out = out[:limit]
        out.reverse()
        return out

    # -- nick bindings --------------------------------------------------------

    def nick_binding(self, nick_key: str) -> tuple[str, float] | None:
        """(fingerprint, last used) of a bound nick, or None."""
        with self._errors():
            return self._db.execute("SELECT fingerprint, last_used FROM nick_bindings WHERE nick_key = ?",
                                    (nick_key,)).fetchone()

    def bind_nick(self, nick_key: str, fp: str, now: float) -> None:
        with self._errors():
            self._db.execute("INSERT OR REPLACE INTO nick_bindings VALUES (?, ?, ?)", (nick_key, fp, now))

    def unbind_nick(self, nick_key: str) -> None:
        with self._errors():
            self._db.execute("DELETE FROM nick_bindings WHERE nick_key = ?", (nick_key,))

    def prune_bindings(self, max_age_days: float, now: float) -> int:
        """Forget bindings unused for more than ``max_age_days``; returns how many."""
        with self._errors():
            return self._db.execute("DELETE FROM nick_bindings WHERE last_used < ?",
                                    (now - max_age_days * 86400.0,)).rowcount

    # -- roles, bans, mutes, modes ------------------------------------------------

    def room_roles(self) -> list[tuple[str, str, str]]:
        """Every (room, fingerprint, role)."""
        with self._errors():
            return self._db.execute("SELECT room, fingerprint, role FROM room_roles").fetchall()

    def set_role(self, room: str, fp: str, role: str | None) -> None:
        """``role`` None: a member again."""
        with self._errors():
            if role is None:
                self._db.execute("DELETE FROM room_roles WHERE room = ? AND fingerprint = ?", (room, fp))
            else:
                self._db.execute("INSERT OR REPLACE INTO room_roles VALUES (?, ?, ?)", (room, fp, role))

    def restrictions(self, table: str) -> list[tuple]:
        """Every row of ``bans`` or ``mutes``: (room, who, nick, until, by, reason)."""
        assert table in _LISTS
        with self._errors():
            return self._db.execute(f"SELECT room, who, nick, until, by, reason FROM {table}").fetchall()

    def restrict(self, table: str, room: str, who: str, nick: str, until: float | None, by: str | None,
                 reason: str | None) -> None:
        assert table in _LISTS
        with self._errors():
            self._db.execute(f"INSERT OR REPLACE INTO {table} VALUES (?, ?, ?, ?, ?, ?)",
                             (room, who, nick, until, by, reason))

    def lift(self, table: str, room: str, who: str) -> None:
        assert table in _LISTS
        with self._errors():
            self._db.execute(f"DELETE FROM {table} WHERE room = ? AND who = ?", (room, who))

    def room_modes(self) -> dict:
        """{room key: modes dict} for the rooms that have modes set."""
        with self._errors():
            rows = self._db.execute("SELECT key, modes FROM rooms WHERE modes IS NOT NULL").fetchall()
        return {key: json.loads(modes) for key, modes in rows}

    def set_modes(self, room: str, modes: dict) -> None:
        """Written at the next commit (the room may be created in this pass)."""
        self._ops.append(("UPDATE rooms SET modes = ? WHERE key = ?", (json.dumps(modes), room)))
