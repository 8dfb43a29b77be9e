"""Helpers for tests that work on a history file directly (SQLite, no server)."""
from __future__ import annotations

import os
import random
import sqlite3

from server.store import sqlite as history_mod
from server.store.sqlite import SqliteStore


def fill(h: SqliteStore, n: int, text: str = "message {i}", dm_every: int = 0) -> None:
    """n room messages from session 1 (and a dm 1 -> 2 every dm_every), committed."""
    for i in range(n):
        h.add_message("ann", text.format(i=i), session=1)
        if dm_every and i % dm_every == 0:
            h.add_direct("ann", "bob", f"dm {i}", 1, 2)
    h.commit()


def make_history(path: str, n: int, text: str = "message {i} " + "y" * 200) -> None:
    """A closed history file of n messages: a few hundred pages, enough to damage one in the middle."""
    h = SqliteStore(path)
    fill(h, n, text)
    h.close()


def damage_middle(path: str, seed: int = 1) -> None:
    """Overwrite one whole page in the middle of the file with random bytes."""
    pages = os.path.getsize(path) // 4096
    with open(path, "r+b") as f:
        f.seek(pages // 2 * 4096)
        f.write(random.Random(seed).randbytes(4096))


def poke_from_outside(path: str) -> None:
    """Another connection writes, so a running server's SQLite drops its page
    cache and reads a damaged page from the file again."""
    con = sqlite3.connect(path)
    con.execute("INSERT OR REPLACE INTO meta VALUES ('poke', '1')")
    con.commit()
    con.close()


def add_session(path: str, sid: int, token: str, last_used: float) -> None:
    """A session row written from outside, last used at ``last_used`` (UNIX time)."""
    con = sqlite3.connect(path)
    con.execute("INSERT INTO sessions (id, token_hash, created, last_used) VALUES (?,?,?,?)",
                (sid, history_mod._hash(token), last_used, last_used))
    con.commit()
    con.close()


def session_ids(path: str) -> set[int]:
    con = sqlite3.connect(path)
    try:
        return {r[0] for r in con.execute("SELECT id FROM sessions")}
    finally:
        con.close()
