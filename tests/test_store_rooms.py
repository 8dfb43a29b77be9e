"""The SQLite store's rooms part, without sockets: files from before rooms
migrated in place, pages and catch-up pages that read indexes only and give
exactly what a full read gives, sessions' rooms and read markers, rooms kept."""
from __future__ import annotations

import sqlite3
import time
import types

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server.protocol import nick_key
from server.store import DIRECT, MESSAGE, TOPIC, RoomRecord
from server.store import sqlite as store_mod
from server.store.sqlite import SqliteStore

pytestmark = pytest.mark.timeout(60)

# The schema of the history file as the server before rooms (main at
# 03f303c, server/history.py) made it, word for word.
MAIN_SCHEMA = """
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


def main_file(path: str) -> None:
    """A history as the server before rooms wrote it: ann (session 1) and
    Bob (session 2) in the lobby, private messages both ways and to oneself."""
    con = sqlite3.connect(path)
    con.executescript(MAIN_SCHEMA)
    con.execute("INSERT INTO meta VALUES ('epoch', 'old-epoch')")
    now = time.time()
    con.executemany("INSERT INTO sessions VALUES (?,?,?,?)",
                    [(1, store_mod._hash("tok-ann"), now, now), (2, store_mod._hash("tok-bob"), now, now)])
    rows = []
    for i in range(1, 21):
        if i % 5 == 0:
            rows.append((i, 1e9 + i, "", "ann", "Bob", f"dm {i}", 1, 2, f"r{i}"))
        elif i == 7:
            rows.append((i, 1e9 + i, "", "ann", "ann", "note to self", 1, 1, None))
        elif i == 12:
            rows.append((i, 1e9 + i, "", "Bob", "ann", "dm back", 2, 1, None))
        else:
            rows.append((i, 1e9 + i, "lobby", "ann" if i % 2 else "Bob", None, f"hello {i}", 1 if i % 2 else 2,
                         None, f"r{i}"))
    con.executemany("INSERT INTO messages VALUES (?,?,?,?,?,?,?,?,?)", rows)
    con.commit()
    con.close()


def ids(events) -> list:
    return [e.id for e in events]


def test_a_file_made_by_the_server_before_rooms_is_migrated_in_place(tmp_path):
    path = str(tmp_path / "main.db")
    main_file(path)
    h = SqliteStore(path)
    try:
        assert h.epoch == "old-epoch" and h.last_id == 20
        assert [r.key for r in h.rooms()] == ["lobby"]
        kinds = dict(h._db.execute("SELECT id, kind FROM messages"))
        assert {i for i, k in kinds.items() if k == DIRECT} == {5, 7, 10, 12, 15, 20}
        assert all(k == MESSAGE for i, k in kinds.items() if i not in (5, 7, 10, 12, 15, 20))
        lobby = [i for i in range(1, 21) if i not in (5, 7, 10, 12, 15, 20)]
        assert ids(h.page_room("lobby", limit=50)[0]) == lobby
        assert ids(h.page_direct(1, nick_key("bob"), limit=50)[0]) == [5, 10, 12, 15, 20]
        assert ids(h.page_direct(2, "ann", limit=50)[0]) == [5, 10, 12, 15, 20]
        assert ids(h.page_direct(1, "ann", limit=50)[0]) == [7]
        events, more = h.catch_up({"lobby": (0, None)}, 1, 0, 0, 100)
        assert ids(events) == list(range(1, 21)) and not more
        assert h.find_session("tok-ann") == 1 and h.session_rooms(1) == {}
        assert h.last_message_id("lobby") == 19
    finally:
        h.close()
    again = SqliteStore(path)                    # a second open changes nothing
    try:
        assert again.last_id == 20 and ids(again.page_room("lobby", limit=50)[0]) == lobby
        assert [r.key for r in again.rooms()] == ["lobby"]
    finally:
        again.close()


def test_every_page_and_catch_up_reads_through_an_index(tmp_path):
    """Paging reads an index, never the whole table: SQLite's plan for each
    statement the store runs searches an index of messages, none scans it."""
    h = SqliteStore(str(tmp_path / "h.db"))
    statements = []
    try:
        s1, _ = h.new_session()
        s2, _ = h.new_session()
        for i in range(30):
            h.add_message("ann", f"m{i}", "lobby" if i % 2 else "dev", s1)
            h.add_direct("ann", "bob", f"d{i}", s1, s2)
        h.add_topic("dev", "ann", "a topic", s1)
        h.commit()
        h._db.set_trace_callback(statements.append)
        h.page_room("lobby", limit=10)
        h.page_room("lobby", before=20, limit=10)
        h.page_room("dev", after=5, limit=10, messages_only=True)
        h.page_direct(s1, "bob", limit=10)
        h.page_direct(s2, "ann", before=30, limit=10)
        h.page_direct(s1, "bob", after=3, limit=10)
        h.catch_up({"lobby": (0, None), "dev": (4, 40)}, s1, 0, 2, 20)
        h.recent_floor("lobby", 5)
        h.last_message_id("dev")
        h._db.set_trace_callback(None)
        reads = [sql for sql in statements if sql.lstrip().upper().startswith("SELECT") and "messages" in sql]
        assert len(reads) >= 12
        for sql in reads:
            plan = " | ".join(row[-1] for row in h._db.execute("EXPLAIN QUERY PLAN " + sql))
            assert "SCAN messages" not in plan and "USING" in plan, (sql, plan)
    finally:
        h.close()


def test_a_catch_up_page_over_a_big_history_reads_only_what_it_returns(tmp_path, monkeypatch):
    path = str(tmp_path / "big.db")
    SqliteStore(path).close()
    con = sqlite3.connect(path)
    con.executemany("INSERT INTO messages (id, ts, room, sender, text, from_session) VALUES (?,?,?,?,?,?)",
                    ((i, 1e9 + i, "lobby" if i % 3 else "dev", "ann", f"message {i}", 1)
                     for i in range(1, 200_001)))
    con.commit()
    con.close()
    h = SqliteStore(path)
    made = []

    class Counting(store_mod.Event):
        __slots__ = ()

        def __init__(self, *a):
            made.append(1)
            super().__init__(*a)
    monkeypatch.setattr(store_mod, "Event", Counting)
    try:
        t = time.perf_counter()
        events, more = h.catch_up({"lobby": (0, None), "dev": (0, None)}, 1, 0, 100_000, 500)
        elapsed = time.perf_counter() - t
        assert ids(events) == list(range(100_001, 100_501)) and more
        assert len(made) == 500
        made.clear()
        page, more = h.page_room("dev", before=150_000, limit=200)
        assert len(made) == 200 and more and page[-1].id == 149_997
        print(f"a catch-up page of 500 from the middle of 200 000 rows: {elapsed * 1000:.1f} ms")
    finally:
        h.close()


def test_sessions_keep_their_rooms_and_read_markers_only_move_forward(tmp_path):
    path = str(tmp_path / "h.db")
    h = SqliteStore(path)
    s, _ = h.new_session()
    h.create_room(RoomRecord("dev", "Dev", created=1.0, key_hash="sha256$00$ff"))
    h.join_room(s, "lobby", 3)
    h.join_room(s, "dev", 0)
    h.mark_read(s, "dev", 9)
    h.mark_read(s, "dev", 4)                     # never back
    assert h.session_rooms(s) == {"lobby": 3, "dev": 9}
    h.part_room(s, "lobby")
    h.join_room(s, "games", 1)
    record = RoomRecord("dev", "Dev", "a topic", "ann", 5.0, "sha256$00$ff", 1.0)
    h.update_room(record)
    h.close()
    h = SqliteStore(path)                        # across a restart
    try:
        assert list(h.session_rooms(s).items()) == [("dev", 9), ("games", 1)]   # in the order joined
        assert {r.key: r for r in h.rooms()}["dev"] == record
        h._db.execute("UPDATE sessions SET last_used = 0")
        assert h.prune_sessions(30) == 1
        assert h._db.execute("SELECT COUNT(*) FROM session_rooms").fetchone()[0] == 0
    finally:
        h.close()


# -- every page against a full read ------------------------------------------

history_ops = st.lists(st.tuples(st.sampled_from(["say", "say", "dm", "topic"]), st.integers(1, 3),
                                 st.integers(1, 3), st.sampled_from(["lobby", "dev", "games"])), max_size=60)


def reference(rows, rooms: dict, session, dm_floor, after):
    out = []
    for r in rows:
        if r.id <= after:
            continue
        if r.recipient is None and r.room in rooms:
            floor, ceiling = rooms[r.room]
            if r.id > floor and (ceiling is None or r.id <= ceiling):
                out.append(r.id)
        elif r.recipient is not None and dm_floor is not None and r.id > dm_floor and \
                session in (r.from_session, r.to_session):
            out.append(r.id)
    return out


@settings(max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(history_ops, st.integers(0, 70), st.sampled_from([None, 1, 2, 3]), st.integers(1, 12),
       st.dictionaries(st.sampled_from(["lobby", "dev", "games"]),
                       st.tuples(st.integers(0, 40), st.one_of(st.none(), st.integers(0, 70)))),
       st.one_of(st.none(), st.integers(0, 50)))
def test_prop_pages_and_catch_up_give_what_a_full_read_gives(tmp_path_factory, ops, after, session, limit, rooms,
                                                            dm_floor):
    h = SqliteStore(str(tmp_path_factory.mktemp("h") / "h.db"))
    try:
        for kind, a, b, room in ops:
            if kind == "say":
                h.add_message(f"u{a}", "x", room, a, ref=f"r{a}")
            elif kind == "topic":
                h.add_topic(room, f"u{a}", "t", a)
            else:
                h.add_direct(f"u{a}", f"u{b}", "d", a, b)
        h.commit()
        rows = [store_mod.Event(*r) for r in h._db.execute(f"SELECT {store_mod._COLUMNS} FROM messages ORDER BY id")]
        # A catch-up in pages of `limit` gives every event, once, in order.
        got, cursor, more = [], after, True
        while more:
            events, more = h.catch_up(rooms, session, dm_floor, cursor, limit)
            assert len(events) <= limit
            if events:
                cursor = events[-1].id
            got += ids(events)
        assert got == reference(rows, rooms, session, dm_floor, after)
        # A room's pages, back from the newest and forward from the start.
        for room in ("lobby", "dev"):
            full = [r.id for r in rows if r.recipient is None and r.room == room]
            back, before, more = [], None, True
            while more:
                page, more = h.page_room(room, before=before, limit=limit)
                back = ids(page) + back
                before = page[0].id if page else None
            assert back == full
            fwd, start, more = [], 0, True
            while more:
                page, more = h.page_room(room, after=start, limit=limit)
                fwd += ids(page)
                start = page[-1].id if page else start
            assert fwd == full
            msgs = [r.id for r in rows if r.recipient is None and r.room == room and r.kind == MESSAGE]
            assert ids(h.page_room(room, limit=200, messages_only=True)[0]) == msgs
        # A private conversation, both ways.
        if session is not None:
            for peer in ("u1", "u2", "u3"):
                full = [r.id for r in rows if r.kind == DIRECT and (
                    (r.from_session == session and nick_key(r.recipient) == peer) or
                    (r.to_session == session and nick_key(r.sender) == peer))]
                back, before, more = [], None, True
                while more:
                    page, more = h.page_direct(session, peer, before=before, limit=limit)
                    back = ids(page) + back
                    before = page[0].id if page else None
                assert back == full
                fwd, start, more = [], 0, True
                while more:
                    page, more = h.page_direct(session, peer, after=start, limit=limit)
                    fwd += ids(page)
                    start = page[-1].id if page else start
                assert fwd == full
        assert all(r.kind == TOPIC for r in rows if r.recipient is None and r.text == "t")
    finally:
        h.close()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.integers(0, 3), min_size=0, max_size=30), st.integers(-1, 95), st.booleans())
def test_first_id_after_a_time_is_what_a_full_read_gives(tmp_path_factory, steps, probe, inclusive):
    """first_id_after (CHATHISTORY timestamp=): a binary search over the
    primary key gives the id a scan of every row would, times equal ones
    included (several messages in one millisecond)."""
    store = SqliteStore(str(tmp_path_factory.mktemp("at") / "h.db"))
    try:
        clock = [1000.0]
        real = store_mod.time
        store_mod.time = types.SimpleNamespace(time=lambda: clock[0])    # the store's clock only
        try:
            for step in steps:
                clock[0] += step
                store.add_message("a", "x")
        finally:
            store_mod.time = real
        store.commit()
        ts = 1000.0 + probe
        rows = store._db.execute("SELECT id, ts FROM messages ORDER BY id").fetchall()
        want = next((i for i, t in rows if t > ts or (inclusive and t == ts)), store.last_id + 1)
        assert store.first_id_after(ts, inclusive) == want
    finally:
        store.close()
