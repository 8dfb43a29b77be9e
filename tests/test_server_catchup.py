"""Catch-up over real loopback sockets (DESIGN-10 sections 2 and 3): v2
replays in frames with no cap, paced by the outbox through a small send
buffer, gap-free against live traffic, resumed across a restart of the
server; v1 clients served in the lobby with a bounded welcome; a history
file made by the server before rooms served as it was."""
from __future__ import annotations

import json
import socket
import sys
import threading
import time

import pytest

from server import protocol as p
from server.store.sqlite import SqliteStore
from tests.netclient import LineClient
from tests.servertools import answer, chat_works, hello_v2
from tests.test_store_rooms import main_file

pytestmark = pytest.mark.timeout(60)
linux_only = pytest.mark.skipif(not sys.platform.startswith("linux"),
                                reason="relies on Linux copying SO_SNDBUF from the listener to accepted sockets")


def make_file(path: str, n: int, text: str = "catch-up {i} " + "z" * 60) -> dict:
    """A history of n events for ann's session (in lobby and dev; every 50th
    a dm to her, every 1000th a topic of dev), plus a room she is not in.
    Returns what ann's catch-up from 0 must be: {"ids", "token"}."""
    h = SqliteStore(path)
    try:
        ann, token = h.new_session()
        bob, _ = h.new_session()
        from server.store import RoomRecord
        for key in ("dev", "other"):
            h.create_room(RoomRecord(key, key, created=time.time()))
        h.join_room(ann, "lobby", 0)
        h.join_room(ann, "dev", 0)
        mine = []
        for i in range(n):
            if i % 1000 == 999:
                mine.append(h.add_topic("dev", "bob", f"topic {i}", bob)[0])
            elif i % 50 == 49:
                mine.append(h.add_direct("bob", "ann", f"dm {i}", bob, ann)[0])
            elif i % 10 == 9:
                h.add_message("bob", f"elsewhere {i}", "other", bob)      # not one of her rooms
            else:
                mine.append(h.add_message("bob", text.format(i=i), "lobby" if i % 2 else "dev", bob)[0])
            if i % 20_000 == 0:
                h.commit()
        h.commit()
    finally:
        h.close()
    return {"ids": mine, "token": token}


def read_catch_up(c: LineClient, on_replay=None) -> dict:
    """Read a v2 catch-up whose welcome was read; checks the frames' bounds.
    Returns {"entries", "caught_up", "other"}."""
    entries, other = [], []
    while True:
        f = c.recv()
        if f["type"] == "caught_up":
            return {"entries": entries, "caught_up": f, "other": other}
        assert f["type"] != "error", f
        if f["type"] == "replay":
            assert 0 < len(f["frames"]) <= 500
            assert len(p.encode(f)) <= p.REPLAY_MAX_BYTES + 64
            entries.extend(f["frames"])
            if on_replay is not None:
                on_replay(entries)
        else:
            other.append(f)


def test_a_v2_hello_without_since_replays_the_last_100_of_each_room_then_caught_up(make_server, tmp_path):
    srv = make_server(rate_limit=0)
    ann = LineClient(srv.port)
    got = hello_v2(ann, "ann")
    token = got["welcome"]["session"]
    ann.send({"type": "join", "room": "dev", "ref": "j"})
    answer(ann, "room", "j")
    ids = {"lobby": [], "dev": []}
    for i in range(150):
        room = "dev" if i % 3 == 0 else "lobby"
        ann.send({"type": "say", "room": room, "text": f"m{i}", "ref": f"r{i}"})
        ids[room].append(answer(ann, "message", f"r{i}")["id"])
    ann.close()
    back = LineClient(srv.port)
    try:
        got = hello_v2(back, "ann", resume=token)
        assert got["welcome"]["history"] == [] and got["welcome"]["rooms"] == ["lobby", "dev"]
        replayed = [f["id"] for f in got["replay"]]
        assert replayed == sorted(ids["lobby"][-100:] + ids["dev"])   # merged by id
        assert got["caught_up"]["last_id"] == max(replayed)
        assert all(f.get("ref") == f"r{int(f['text'][1:])}" for f in got["replay"])   # its own: with refs
        chat_works(back)
    finally:
        back.close()


def test_a_since_replays_messages_topics_and_dms_of_its_rooms_in_id_order_and_not_other_rooms(make_server):
    srv = make_server(rate_limit=0)
    ann, bob = LineClient(srv.port), LineClient(srv.port)
    try:
        token = hello_v2(ann, "ann")["welcome"]["session"]
        hello_v2(bob, "bob")
        for c in (ann, bob):
            c.send({"type": "join", "room": "dev", "ref": "j"})
            answer(c, "room", "j")
        bob.send({"type": "join", "room": "secret", "ref": "j2"})
        answer(bob, "room", "j2")
        ann.send({"type": "say", "room": "dev", "text": "before", "ref": "b"})
        since = answer(ann, "message", "b")["id"]
        ann.send({"type": "dm", "to": "bob", "text": "back soon", "ref": "d"})
        want = [answer(ann, "dm", "d")]                        # its own, with its ref
        ann.close()
        bob.recv_type("left")
        for i, frame in enumerate([{"type": "say", "room": "dev", "text": "one"},
                                   {"type": "topic", "room": "dev", "topic": "while away"},
                                   {"type": "say", "room": "secret", "text": "not for ann"},
                                   {"type": "say", "text": "in the lobby"}]):
            bob.send(dict(frame, ref=f"w{i}"))
            kind = {"say": "message"}.get(frame["type"], frame["type"])
            f = answer(bob, kind, f"w{i}")
            if frame.get("room") != "secret":
                want.append({k: v for k, v in f.items() if k != "ref"})
        back = LineClient(srv.port)
        got = hello_v2(back, "ann", resume=token, since=since)
        assert got["replay"] == want
        assert [r["room"] for r in got["rooms"]] == ["lobby", "dev"]
        assert got["rooms"][1]["topic"] == "while away"
        back.close()
    finally:
        ann.close()
        bob.close()


@linux_only
@pytest.mark.timeout(180)
def test_a_100000_message_catch_up_through_a_small_send_buffer_is_whole_in_order_and_gap_free(make_server,
                                                                                              tmp_path):
    """Every id once, in order, the client never dropped; what is said
    meanwhile (by others, a dm to it, its own say) comes once, in order,
    and live after caught_up."""
    db = str(tmp_path / "big.db")
    made = make_file(db, 109_000)
    assert len(made["ids"]) > 100_000
    srv = make_server(rate_limit=0, db=db)
    bob = LineClient(srv.port)
    hello_v2(bob, "bob")
    bob.send({"type": "join", "room": "dev", "ref": "j"})
    answer(bob, "room", "j")
    srv.listener.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16 * 1024)
    ann = LineClient(srv.port, rcvbuf=16 * 1024, timeout=30)
    live = []                       # ids said by others during the catch-up
    mine = {}

    def meanwhile(entries):
        if len(entries) >= 5000 and not live:
            for i in range(20):
                bob.send({"type": "say", "room": "dev" if i % 2 else "lobby", "text": f"live {i}", "ref": f"l{i}"})
                live.append(answer(bob, "message", f"l{i}")["id"])
            bob.send({"type": "dm", "to": "ann", "text": "live dm", "ref": "ld"})
            live.append(answer(bob, "dm", "ld")["id"])
            ann.send({"type": "say", "room": "dev", "text": "mine meanwhile", "ref": "own"})
            mine["sent"] = True

    start = time.monotonic()
    ann.send({"type": "hello", "nick": "ann", "v": 2, "resume": made["token"], "since": 0})
    w = ann.recv()
    assert w["type"] == "welcome" and w["replay"] is True and w["history"] == []
    rooms = [ann.recv(), ann.recv()]
    assert [r["type"] for r in rooms] == ["room", "room"] and [r["room"] for r in rooms] == ["lobby", "dev"]
    got = read_catch_up(ann, meanwhile)
    took = time.monotonic() - start
    ids = [f["id"] for f in got["entries"]]
    assert mine.get("sent") and len(live) == 21                # said while it was catching up
    assert all(a < b for a, b in zip(ids, ids[1:])), "ids out of order or repeated"
    own = [f for f in got["entries"] if f.get("ref") == "own"]
    assert len(own) == 1 and own[0]["room"] == "dev"
    assert ids == sorted(made["ids"] + live + [own[0]["id"]])
    kinds = {f["type"] for f in got["entries"]}
    assert kinds == {"message", "dm", "topic"}
    assert got["caught_up"]["last_id"] == ids[-1]
    # Live from here on: the very next frames are live ones, none repeated.
    bob.send({"type": "say", "room": "dev", "text": "after", "ref": "after"})
    after = answer(bob, "message", "after")["id"]
    f = ann.recv_type("message")
    assert f["id"] == after and f["id"] > ids[-1]
    assert not [x for x in ann.frames if x["type"] == "error"]
    print(f"catch-up through a 16 KiB send buffer: {len(ids)} entries in {took:.2f} s")
    ann.close()
    bob.close()


@pytest.mark.timeout(120)
def test_a_catch_up_cut_by_a_restart_of_the_server_resumes_from_the_last_id_seen(make_server, tmp_path):
    db = str(tmp_path / "restart.db")
    made = make_file(db, 20_000)
    srv = make_server(rate_limit=0, db=db)
    ann = LineClient(srv.port, timeout=20)
    ann.send({"type": "hello", "nick": "ann", "v": 2, "resume": made["token"], "since": 0})
    assert ann.recv()["type"] == "welcome"
    seen = []
    while len(seen) < 3000:
        f = ann.recv()
        if f["type"] == "replay":
            seen += [e["id"] for e in f["frames"]]
    srv.shutdown()                                   # in the middle of it
    ann.close()
    srv = make_server(rate_limit=0, db=db)
    back = LineClient(srv.port, timeout=20)
    try:
        got = hello_v2(back, "ann", resume=made["token"], since=seen[-1])
        rest = [f["id"] for f in got["replay"]]
        assert seen + rest == made["ids"]
        assert got["welcome"]["rooms"] == ["lobby", "dev"]   # the session's rooms, from the file
    finally:
        back.close()


def test_a_v1_welcome_is_bounded_to_1_mib_with_the_newest_that_fit_oldest_first(make_server, tmp_path):
    db = str(tmp_path / "big-pastes.db")
    h = SqliteStore(db)
    ids = [h.add_message("bob", f"{i:03d}" + "p" * 30_000)[0] for i in range(100)]
    h.commit()
    h.close()
    srv = make_server(rate_limit=0, db=db)
    old = LineClient(srv.port, timeout=10)
    try:
        w = old.hello("oldie")
        got = [m["id"] for m in w["history"]]
        size = len(json.dumps(w["history"]).encode())
        assert size <= 1024 * 1024 < size + 30_100            # as many as fit
        assert got == ids[-len(got):]                          # the newest, oldest first
        assert "missed" not in w and w["last_id"] == ids[-1]
        chat_works(old)                                        # then live, as before
    finally:
        old.close()


def test_v1_and_v2_clients_share_the_lobby_and_a_v1_client_sees_only_what_v1_knows(make_server):
    srv = make_server(rate_limit=0)
    old, new = LineClient(srv.port), LineClient(srv.port)
    try:
        old.hello("oldie")
        hello_v2(new, "newbie")
        assert old.recv()["type"] == "joined"
        chat_works(old, new)
        m = chat_works(new, old)
        assert m > 0
        assert old.frames[-1]["room"] == "lobby"               # harmless to a v1 client
        new.send({"type": "join", "room": "dev", "ref": "j"})
        answer(new, "room", "j")
        new.send({"type": "topic", "room": "lobby", "topic": "hidden from v1", "ref": "t"})
        answer(new, "topic", "t")
        old.send({"type": "ping"})
        assert old.recv()["type"] == "pong"                     # no topic, no joined of dev before it
    finally:
        old.close()
        new.close()


def test_a_history_file_made_by_the_server_before_rooms_is_served_after_an_in_place_migration(make_server,
                                                                                              tmp_path):
    db = str(tmp_path / "main.db")
    main_file(db)
    srv = make_server(rate_limit=0, db=db)
    ann, old = LineClient(srv.port), LineClient(srv.port)
    try:
        got = hello_v2(ann, "ann", resume="tok-ann", since=0, epoch="old-epoch")
        assert "reset" not in got["welcome"] and got["welcome"]["last_id"] == 20
        assert [f["id"] for f in got["replay"]] == list(range(1, 21))   # lobby and her dms
        assert {f["type"] for f in got["replay"]} == {"message", "dm"}
        ann.send({"type": "history", "with": "bob", "ref": "h"})
        page = answer(ann, "history", "h")
        assert [m["id"] for m in page["messages"]] == [5, 10, 12, 15, 20]
        w = old.hello("Bob", resume="tok-bob", since=0)
        assert [m["id"] for m in w["history"]] == [i for i in range(1, 21) if i != 7]   # not ann's note to self
        assert ann.recv_type("joined")["nick"] == "Bob"
        msg = chat_works(ann, old)
        assert msg == 21
    finally:
        ann.close()
        old.close()


def test_frames_without_an_id_reach_a_client_while_it_catches_up(make_server, tmp_path):
    """joined/left come directly during a catch-up; the client is present
    in its rooms (others see it) before it is caught up."""
    db = str(tmp_path / "present.db")
    made = make_file(db, 5_000)
    srv = make_server(rate_limit=0, db=db)
    srv.listener.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 8 * 1024)
    ann = LineClient(srv.port, rcvbuf=8 * 1024, timeout=20)
    ann.send({"type": "hello", "nick": "ann", "v": 2, "resume": made["token"], "since": 0})
    assert ann.recv()["type"] == "welcome"
    while ann.recv()["type"] != "replay":
        pass
    seen = threading.Event()

    def bob_joins():
        bob = LineClient(srv.port)
        got = hello_v2(bob, "bob")
        assert "ann" in got["welcome"]["users"] and "ann" in got["rooms"][0]["users"]
        seen.set()
        bob.close()
    t = threading.Thread(target=bob_joins, name="test-bob")
    t.start()
    got = read_catch_up(ann)
    t.join(20)
    assert seen.is_set()
    types = [f["type"] for f in got["other"]]
    assert "joined" in types                                   # before caught_up
    assert [f["id"] for f in got["entries"]][-1] == made["ids"][-1]
    ann.close()


def test_the_yardstick_s_client_is_served_as_before(make_server):
    """/work/shared/bench/loadgen.rs speaks v1 by raw lines: a hello with a
    nick only, lines until one holds "welcome", then says; the others find
    its text in the lines they read. A v2 client in the lobby changes nothing."""
    srv = make_server(rate_limit=0)
    watcher = LineClient(srv.port)
    hello_v2(watcher, "watcher")
    socks = []
    try:
        for i in range(2):
            s = socket.create_connection(("127.0.0.1", srv.port), timeout=5)
            s.sendall(b'{"type":"hello","nick":"lg%dx1"}\n' % i)
            socks.append((s, s.makefile("rb")))
        for _, r in socks:
            while b'"welcome"' not in r.readline():
                pass
        socks[0][0].sendall(b'{"type":"say","text":"LG0 1 12345 padpad"}\n')
        for _, r in socks[1:]:
            line = r.readline()
            while b"LG0 1 12345" not in line:
                assert b'"error"' not in line, line
                line = r.readline()
        assert watcher.recv_type("message")["text"] == "LG0 1 12345 padpad"
    finally:
        for s, r in socks:
            r.close()
            s.close()
        watcher.close()


def test_a_v2_since_from_another_epoch_or_beyond_the_last_id_is_answered_as_a_newcomer_with_reset(make_server):
    srv = make_server(rate_limit=0)
    ann = LineClient(srv.port)
    try:
        token = hello_v2(ann, "ann")["welcome"]["session"]
        ids = [chat_works(ann) for _ in range(3)]
        ann.close()
        for hello in ({"since": 2, "epoch": "another"}, {"since": 10 ** 6}):
            back = LineClient(srv.port)
            got = hello_v2(back, "ann", resume=token, **hello)
            assert got["welcome"]["reset"] is True
            assert [f["id"] for f in got["replay"]] == ids       # the recent ones, as to a newcomer
            back.close()
    finally:
        ann.close()


@linux_only
@pytest.mark.timeout(60)
def test_a_client_that_stops_reading_during_its_catch_up_is_dropped_as_too_slow_and_costs_no_one(make_server,
                                                                                                   tmp_path):
    db = str(tmp_path / "stall.db")
    made = make_file(db, 20_000)
    srv = make_server(rate_limit=0, db=db, slow_timeout=0.5)
    bob = LineClient(srv.port)
    hello_v2(bob, "bob")
    srv.listener.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 4096)
    stalled = LineClient(srv.port, rcvbuf=4096)
    stalled.send({"type": "hello", "nick": "ann", "v": 2, "resume": made["token"], "since": 0})
    start = time.monotonic()
    n = 0
    while True:                                      # bob chats on; ann reads nothing
        n += 1
        bob.send({"type": "say", "text": f"on {n}", "ref": f"on{n}"})
        answer(bob, "message", f"on{n}", timeout=2)  # bob is not held up by her
        left = [f for f in bob.frames if f["type"] == "left" and f["nick"] == "ann"]
        if left:
            break
        assert time.monotonic() - start < 20, "the stalled catch-up was never dropped"
    assert left[0]["reason"] == "too slow"
    assert srv.hub.stats["dropped_slow"] == 1
    stalled.close()


def test_replay_frames_hold_at_most_1_mib_of_big_messages(make_server, tmp_path):
    db = str(tmp_path / "pastes.db")
    h = SqliteStore(db)
    session, token = h.new_session()
    h.join_room(session, "lobby", 0)
    ids = [h.add_message("bob", f"{i:03d}" + "q" * 30_000)[0] for i in range(120)]
    h.commit()
    h.close()
    srv = make_server(rate_limit=0, db=db)
    ann = LineClient(srv.port, timeout=10)
    try:
        ann.send({"type": "hello", "nick": "ann", "v": 2, "resume": token, "since": 0})
        assert ann.recv()["type"] == "welcome"
        sizes, got = [], []
        while True:
            f = ann.recv()
            if f["type"] == "caught_up":
                break
            if f["type"] == "replay":
                sizes.append(len(p.encode(f)))
                got += [e["id"] for e in f["frames"]]
        assert got == ids
        assert len(sizes) == 4 and max(sizes) <= p.REPLAY_MAX_BYTES   # 120 x 30 KB: about 34 a frame
        assert sum(sizes) > 3 * 1024 * 1024
    finally:
        ann.close()
