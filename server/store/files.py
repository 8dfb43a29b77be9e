"""Stored files (issue 12): their bytes on disk, their metadata in the history.

:class:`FileBlobs` is the folder (``--files-dir``): one file per id,
``ID.part`` while the upload is in progress and ``ID`` once it is checked.
Names come from the server's ids only, never from what a client sent. The
folder is mode 0700 and every file 0600: only the server's user reads them.
Its methods are safe from any thread (they touch only the file system); the
transfer threads use it for paths, the hub to delete and measure.

:class:`FileRecords` is the ``files`` table, mixed into
:class:`~server.store.sqlite.SqliteStore` like the moderation tables. A row
is written (or changed) at the store's next commit, in the same transaction
as the message that announces it. States: ``partial`` (offered, bytes
arriving), ``complete`` (announced: ``msg_id``), ``deleted`` (its message
was deleted), ``expired`` (dropped to make room under the quota),
``dropped`` (a partial upload given up).

Thread: FileRecords, the hub thread only (it uses the store's connection).
"""
from __future__ import annotations

import json
import os
import stat
from dataclasses import dataclass

PARTIAL, COMPLETE, DELETED, EXPIRED, DROPPED = "partial", "complete", "deleted", "expired", "dropped"

FILES_TABLE = """
CREATE TABLE IF NOT EXISTS files (
    id TEXT PRIMARY KEY,
    name TEXT NOT NULL,             -- what the client called it: metadata only
    size INTEGER NOT NULL,
    sha256 TEXT NOT NULL,
    mime TEXT NOT NULL,
    thumb TEXT,                     -- base64 PNG from the sender, never decoded
    sender TEXT NOT NULL,           -- the nick at the offer
    session INTEGER NOT NULL,       -- the sender's session
    room TEXT,                      -- the room's key; NULL for a private file
    recipient TEXT,                 -- a private file: the other end's nick and session
    to_session INTEGER,
    state TEXT NOT NULL,            -- partial, complete, deleted, expired, dropped
    created REAL NOT NULL,
    completed REAL,
    msg_id INTEGER                  -- the message that announced it
);
CREATE INDEX IF NOT EXISTS files_by_state ON files (state, completed);
"""
_FIELDS = ("id", "name", "size", "sha256", "mime", "thumb", "sender", "session", "room", "recipient", "to_session",
           "state", "created", "completed", "msg_id")


@dataclass
class FileRecord:
    id: str
    name: str
    size: int
    sha256: str
    mime: str
    thumb: str | None
    sender: str
    session: int
    room: str | None
    recipient: str | None
    to_session: int | None
    state: str = PARTIAL
    created: float = 0.0
    completed: float | None = None
    msg_id: int | None = None


class FileRecords:
    """The ``files`` table (uses the store's ``_db``, ``_ops`` and ``_errors``)."""

    def _open_files(self, db) -> None:
        db.executescript(FILES_TABLE)

    def add_file(self, record: FileRecord) -> None:
        """At the next commit: a new upload's row."""
        self._ops.append((f"INSERT OR REPLACE INTO files ({', '.join(_FIELDS)}) VALUES "
                          f"({', '.join('?' * len(_FIELDS))})", tuple(getattr(record, f) for f in _FIELDS)))

    def set_file_state(self, file_id: str, state: str, completed: float | None = None,
                       msg_id: int | None = None) -> None:
        """At the next commit: the row's new state (and its announcement)."""
        self._ops.append(("UPDATE files SET state = ?, completed = COALESCE(?, completed), "
                          "msg_id = COALESCE(?, msg_id) WHERE id = ?", (state, completed, msg_id, file_id)))

    def mark_expired(self, record: FileRecord) -> None:
        """At the next commit: the file expired, and its message says so."""
        self.set_file_state(record.id, EXPIRED)
        if record.msg_id is not None:
            self._ops.append(("UPDATE messages SET extra = json_set(extra, '$.file.expired', json('true')) "
                              "WHERE id = ? AND json_extract(extra, '$.file.id') = ?", (record.msg_id, record.id)))

    def get_file(self, file_id: str) -> FileRecord | None:
        with self._errors():
            row = self._db.execute(f"SELECT {', '.join(_FIELDS)} FROM files WHERE id = ?", (file_id,)).fetchone()
        return FileRecord(*row) if row else None

    def files_in_state(self, state: str) -> list[FileRecord]:
        """Every file in a state, the oldest finished (or offered) first."""
        with self._errors():
            rows = self._db.execute(f"SELECT {', '.join(_FIELDS)} FROM files WHERE state = ? "
                                    "ORDER BY COALESCE(completed, created), rowid", (state,)).fetchall()
        return [FileRecord(*r) for r in rows]


def file_of(extra: str | None) -> dict | None:
    """The ``file`` object a stored message's extra JSON carries, or None."""
    if not extra or '"file"' not in extra:
        return None
    f = json.loads(extra).get("file")
    return f if type(f) is dict else None


class FileBlobs:
    """The folder of stored files. Any thread (file system calls only)."""

    def __init__(self, directory: str):
        self.directory = os.path.abspath(directory)
        os.makedirs(self.directory, mode=0o700, exist_ok=True)
        if os.name == "posix" and stat.S_IMODE(os.stat(self.directory).st_mode) != 0o700:
            os.chmod(self.directory, 0o700)

    @property
    def where(self) -> str:
        """Where the bytes are, for the start-up line."""
        return self.directory

    def size(self, f) -> int:
        """The size of a file open_read gave."""
        return os.fstat(f.fileno()).st_size

    def sync(self, f) -> None:
        """(--sync full) The partial file on disk before it is announced."""
        f.flush()
        os.fsync(f.fileno())

    def path(self, file_id: str) -> str:
        return os.path.join(self.directory, file_id)

    def part_path(self, file_id: str) -> str:
        return os.path.join(self.directory, file_id + ".part")

    def held(self, file_id: str) -> int:
        """Bytes of an upload in progress already on disk."""
        try:
            return os.stat(self.part_path(file_id)).st_size
        except FileNotFoundError:
            return 0

    def open_part(self, file_id: str, offset: int):
        """The partial file for writing at ``offset`` (what follows it is cut off), mode 0600."""
        fd = os.open(self.part_path(file_id), os.O_RDWR | os.O_CREAT | getattr(os, "O_BINARY", 0), 0o600)
        f = os.fdopen(fd, "r+b")
        try:
            f.truncate(offset)
            f.seek(offset)
        except BaseException:
            f.close()
            raise
        return f

    def finish(self, file_id: str) -> None:
        """The checked partial file becomes the stored file."""
        os.replace(self.part_path(file_id), self.path(file_id))

    def open_read(self, file_id: str):
        return open(self.path(file_id), "rb")

    def remove(self, file_id: str) -> None:
        """Delete both forms of a file; a missing one is no error."""
        for path in (self.path(file_id), self.part_path(file_id)):
            try:
                os.unlink(path)
            except FileNotFoundError:
                pass

    def close(self) -> None:
        """Nothing to close: each transfer opens and closes its own file."""

    def names(self) -> list[str]:
        """The ids of what the folder holds (partial or whole)."""
        out = []
        for name in os.listdir(self.directory):
            out.append(name[:-5] if name.endswith(".part") else name)
        return out
