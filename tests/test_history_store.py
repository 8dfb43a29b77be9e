"""The history file itself, without sockets: one server per file (the lock),
the epoch that names a history, damaged files refused with a sentence,
and sessions that expire (paging and catch-up: test_store_rooms.py)."""
from __future__ import annotations

import os
import sqlite3
import time

import pytest

from server.app import ChatServer
from server.config import ServerConfig
from server.store import HistoryError, HistoryInUse
from server.store import sqlite as history_mod
from server.store.sqlite import DAY, SqliteStore
from tests.historytools import add_session, damage_middle, fill, make_history, poke_from_outside

pytestmark = pytest.mark.timeout(60)






def server_config(db: str, **kw) -> ServerConfig:
    return ServerConfig(host="127.0.0.1", port=0, db=db, rate_limit=0, **kw)


# --------------------------------------------------------------------------
# One server per history file


def test_a_second_history_on_a_file_in_use_is_refused_naming_the_process(tmp_path):
    path = str(tmp_path / "h.db")
    first = SqliteStore(path)
    with pytest.raises(HistoryInUse) as info:
        SqliteStore(path)
    assert info.value.pid == os.getpid()
    assert str(info.value) == f"the history file {path} is in use by another Natter server (process {os.getpid()})"
    fill(first, 3)                          # the holder is unharmed
    first.close()
    again = SqliteStore(path)                   # closing released it
    assert again.last_id == 3
    again.close()


def test_a_second_server_on_the_same_history_refuses_to_start_and_the_first_goes_on(make_server, tmp_path):
    from tests.netclient import LineClient
    from tests.servertools import chat_works
    db = str(tmp_path / "shared.db")
    first = make_server(db=db, rate_limit=0)
    with pytest.raises(HistoryInUse) as info:
        ChatServer(server_config(db))
    assert f"process {os.getpid()}" in str(info.value)
    a = LineClient(first.port)
    try:
        a.hello("ann")
        chat_works(a)
    finally:
        a.close()


def test_a_failed_start_leaves_the_file_unlocked(tmp_path):
    path = str(tmp_path / "h.db")
    with open(path, "wb") as f:
        f.write(b"this is not an SQLite file" * 200)
    for _ in range(2):                      # damaged both times, never "in use"
        with pytest.raises(HistoryError) as info:
            SqliteStore(path)
        assert not isinstance(info.value, HistoryInUse) and "damaged" in str(info.value)


def test_a_hosted_room_on_a_history_in_use_says_which_process_holds_it(make_server, tmp_path):
    from chatgui.app.hosting import HostedRoom, HostingError
    db = str(tmp_path / "room.db")
    make_server(db=db)
    room = HostedRoom(0, db=db)
    with pytest.raises(HostingError) as info:
        room.start()
    assert str(info.value) == (f"Could not host a room: the history file {db} is in use by another Natter "
                               f"server (process {os.getpid()}). Stop that server first.")
    assert room.server is None


# --------------------------------------------------------------------------
# The epoch


def test_the_epoch_is_made_with_the_file_and_kept(tmp_path):
    path = str(tmp_path / "h.db")
    h = SqliteStore(path)
    epoch = h.epoch
    assert isinstance(epoch, str) and len(epoch) >= 12
    fill(h, 2)
    h.close()
    h = SqliteStore(path)
    assert h.epoch == epoch and h.last_id == 2
    h.close()
    other = SqliteStore(str(tmp_path / "other.db"))
    assert other.epoch != epoch
    other.close()


def test_a_file_truncated_to_nothing_is_a_new_history_with_a_new_epoch(tmp_path):
    path = str(tmp_path / "h.db")
    h = SqliteStore(path)
    fill(h, 50)
    epoch = h.epoch
    h.close()
    with open(path, "r+b") as f:
        f.truncate(0)
    h = SqliteStore(path)
    assert h.last_id == 0 and h.epoch != epoch
    h.close()


def old_format_file(path: str, sessions: list[tuple[int, str, float]], messages: int = 0) -> None:
    """A history file as the version before epochs and session expiry wrote it."""
    con = sqlite3.connect(path)
    con.executescript("""
        CREATE TABLE messages (id INTEGER PRIMARY KEY, ts REAL NOT NULL, room TEXT NOT NULL,
            sender TEXT NOT NULL, recipient TEXT, text TEXT NOT NULL, from_session INTEGER,
            to_session INTEGER, ref TEXT);
        CREATE TABLE sessions (id INTEGER PRIMARY KEY, token_hash TEXT NOT NULL UNIQUE, created REAL NOT NULL);
        CREATE INDEX room_messages ON messages (room, id) WHERE recipient IS NULL;
    """)
    con.executemany("INSERT INTO sessions VALUES (?,?,?)", sessions)
    con.executemany("INSERT INTO messages VALUES (?,?,?,?,?,?,?,?,?)",
                    [(i, 1.0, "lobby", "ann", None, f"old {i}", 1, None, None) for i in range(1, messages + 1)])
    con.commit()
    con.close()


def test_an_old_file_is_migrated_an_epoch_and_last_use_added(tmp_path):
    path = str(tmp_path / "old.db")
    now = time.time()
    old_format_file(path, [(1, history_mod._hash("tok-a"), now - 5 * DAY), (2, history_mod._hash("tok-b"), now)],
                    messages=7)
    h = SqliteStore(path)
    assert h.last_id == 7 and h.epoch
    assert h.find_session("tok-a") == 1 and h.find_session("tok-b") == 2
    rows = dict(h._db.execute("SELECT id, last_used FROM sessions").fetchall())
    assert rows[2] == pytest.approx(now, abs=5)
    assert rows[1] == pytest.approx(now, abs=5)     # just used by find_session: touched
    epoch = h.epoch
    h.close()
    h = SqliteStore(path)                                # a second start changes nothing
    assert h.epoch == epoch and h.last_id == 7
    h.close()


# --------------------------------------------------------------------------
# Damaged files


def test_garbage_in_the_middle_is_refused_at_start_with_a_sentence(tmp_path):
    path = str(tmp_path / "h.db")
    h = SqliteStore(path)
    fill(h, 3000, text="message {i} " + "y" * 100, dm_every=7)
    h.close()
    damage_middle(path)
    with pytest.raises(HistoryError) as info:
        ChatServer(server_config(path))
    text = str(info.value)
    assert text.startswith(f"the history file {path} is damaged (database disk image is malformed")
    assert "move it aside" in text and "\n" not in text


def test_a_file_that_is_not_a_database_is_refused_with_a_sentence(tmp_path):
    path = str(tmp_path / "h.db")
    with open(path, "wb") as f:
        f.write(os.urandom(8192))
    with pytest.raises(HistoryError) as info:
        SqliteStore(path)
    assert "is damaged" in str(info.value) and path in str(info.value)


def test_damage_found_at_run_time_is_a_history_error_with_a_sentence(tmp_path):
    path = str(tmp_path / "h.db")
    make_history(path, 5000)
    h = SqliteStore(path)
    try:
        damage_middle(path)
        poke_from_outside(path)
        with pytest.raises(HistoryError) as info:
            after, more = 0, True
            while more:                     # a catch-up through all of it reaches the damaged page
                events, more = h.catch_up({"lobby": (0, None)}, 1, 0, after, 500)
                after = events[-1].id
        assert "is damaged" in str(info.value)
    finally:
        h.close()




# --------------------------------------------------------------------------
# Sessions expire




def test_prune_deletes_sessions_unused_for_the_days_and_keeps_the_rest(tmp_path):
    h = SqliteStore(str(tmp_path / "h.db"))
    now = time.time()
    for sid, age in ((1, 40), (2, 31), (3, 29), (4, 1), (5, 90)):
        h._db.execute("INSERT INTO sessions VALUES (?,?,?,?)", (sid, f"hash{sid}", now - age * DAY, now - age * DAY))
    assert h.prune_sessions(30, keep={5}) == 2          # 5 is online: it counts as used now
    assert [r[0] for r in h._db.execute("SELECT id FROM sessions ORDER BY id")] == [3, 4, 5]
    assert h.prune_sessions(0) == 0                      # 0: never
    assert h.prune_sessions(0.5) == 2                    # 3 and 4 (29 days, 1 day)
    h.close()


def test_a_new_session_never_takes_the_id_of_an_expired_one(tmp_path):
    """Messages name sessions by id: a reused id would inherit a stranger's dms."""
    path = str(tmp_path / "h.db")
    h = SqliteStore(path)
    old, _ = h.new_session()
    other, _ = h.new_session()
    h.add_direct("ann", "bob", "for the old session", other, old)
    h.commit()
    h._db.execute("UPDATE sessions SET last_used = 0")
    assert h.prune_sessions(30) == 2
    h.close()
    h = SqliteStore(path)                        # across a restart too
    new, _ = h.new_session()
    assert new > other
    assert h.catch_up({}, new, 0, 0, 100)[0] == []
    assert h.page_direct(new, "bob")[0] == [] and h.page_direct(new, "ann")[0] == []
    h.close()


def test_find_session_records_its_use_at_most_hourly(tmp_path):
    h = SqliteStore(str(tmp_path / "h.db"))
    sid, token = h.new_session()
    long_ago = time.time() - 10 * DAY
    h._db.execute("UPDATE sessions SET last_used = ?", (long_ago,))
    assert h.find_session(token) == sid
    touched = h._db.execute("SELECT last_used FROM sessions").fetchone()[0]
    assert touched == pytest.approx(time.time(), abs=5)
    h._db.execute("UPDATE sessions SET last_used = ?", (touched - 60,))   # a minute ago: not rewritten
    assert h.find_session(token) == sid
    assert h._db.execute("SELECT last_used FROM sessions").fetchone()[0] == touched - 60
    assert h.find_session("unknown") is None
    h.close()


def test_the_server_prunes_at_start_by_its_session_expiry(tmp_path):
    db = str(tmp_path / "h.db")
    SqliteStore(db).close()
    add_session(db, 1, "stale", time.time() - 31 * DAY)
    add_session(db, 2, "young", time.time() - 29 * DAY)
    srv = ChatServer(server_config(db))
    try:
        assert srv.history.find_session("stale") is None
        assert srv.history.find_session("young") == 2
    finally:
        srv.shutdown()
    add_session(db, 3, "ancient", time.time() - 400 * DAY)
    srv = ChatServer(server_config(db, session_expiry=0))       # 0 keeps them forever
    try:
        assert srv.history.find_session("ancient") == 3
    finally:
        srv.shutdown()


def test_session_expiry_flag():
    from server.config import from_args
    assert from_args([]).session_expiry == 30
    assert from_args(["--session-expiry", "7.5"]).session_expiry == 7.5
    assert from_args(["--session-expiry", "0"]).session_expiry == 0


# --------------------------------------------------------------------------
# A pass's rows go in several to an INSERT (_insert_rows)


@pytest.mark.parametrize("count", [1, 3, 4, 5, 17, 63, 64, 65, 255, 256, 257, 341, 600])
def test_every_row_of_a_pass_is_written_once_and_in_order_whatever_its_count(tmp_path, count):
    h = SqliteStore(str(tmp_path / "h.db"))
    try:
        h.add_message("ann", "before", "lobby", 1, "r0")
        h.commit()
        ids = [h.add_message(f"u{i % 7}", f"text {i}", "lobby", 2, f"r{i}")[0] for i in range(count)]
        assert h.commit() == count
        rows = h._db.execute("SELECT id, sender, text, ref FROM messages ORDER BY id").fetchall()
        assert rows[0][2] == "before"
        assert [r[0] for r in rows[1:]] == ids == list(range(2, count + 2))
        assert [(r[1], r[2], r[3]) for r in rows[1:]] == [(f"u{i % 7}", f"text {i}", f"r{i}") for i in range(count)]
    finally:
        h.close()


def test_a_pass_s_rows_fit_an_older_sqlite_s_999_parameters(tmp_path):
    import sqlite3
    h = SqliteStore(str(tmp_path / "h.db"))
    try:
        h._db.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 999)     # SQLite before 3.32
        ids = [h.add_message("ann", f"text {i}", "lobby", 2, f"r{i}")[0] for i in range(300)]
        assert h.commit() == 300
        assert [r[0] for r in h._db.execute("SELECT id FROM messages ORDER BY id")] == ids
    finally:
        h.close()
