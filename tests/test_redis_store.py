"""The Redis store on its own, against a real redis-server (tests/redistools.py)."""
from __future__ import annotations

import json
import logging
import signal
import subprocess
import sys
import time

import pytest

from server.store import HistoryError, Unavailable
from tests.redistools import ROOT, RedisServer, free_port, stream
from tests.servertools import wait_until


@pytest.fixture
def store(redis_server):
    from server.store.redis import RedisStore
    s = RedisStore(redis_server.url)
    yield s
    s.close()


def test_ids_are_one_gapless_sequence_across_stores(redis_server, store):
    from server.store.redis import RedisStore
    other = RedisStore(redis_server.url)
    try:
        ids = []
        for i in range(10):
            s = (store, other)[i % 2]
            ids.append(s.add_message("ann", f"m{i}", session=1 + i % 2)[0])
        ids.append(store.add_direct("ann", "bob", "psst", 1, 2)[0])
        ids.append(other.add_topic("lobby", "bob", "news", 2)[0])
    finally:
        other.close()
    assert ids == list(range(1, 13))
    assert [e["id"] for e in stream(redis_server.url)] == ids


def test_a_retried_ref_of_a_session_is_appended_once(redis_server, store):
    first, _ = store.add_message("ann", "hello", session=7, ref="r1")
    again, _ = store.add_message("ann", "hello", session=7, ref="r1")
    other, _ = store.add_message("bob", "hello", session=8, ref="r1")     # another session's r1
    assert again == first and other == first + 1
    log = stream(redis_server.url)
    assert [(e["from_session"], e["ref"]) for e in log] == [("7", "r1"), ("8", "r1")]


def test_reads_stop_at_what_this_node_has_delivered(store):
    for i in range(5):
        store.add_message("ann", f"m{i}", session=1)
    assert store.last_id == 0 and store.newest_id == 5
    events, more = store.catch_up({"lobby": (0, None)}, 1, None, 0, 50)
    assert events == [] and not more
    store.advance(3)
    events, more = store.catch_up({"lobby": (0, None)}, 1, None, 0, 50)
    assert [e.text for e in events] == ["m0", "m1", "m2"] and not more
    # A cursor past what this node delivered waits for it (a resume from a faster node).
    assert store.catch_up({"lobby": (4, None)}, 1, None, 4, 50) == ([], True)


def test_pages_and_catch_up_read_only_their_room_and_sessions(store):
    for i in range(30):
        store.add_message("ann", f"a{i}", room="a", session=1)
        store.add_message("bob", f"b{i}", room="b", session=2)
    store.add_direct("ann", "bob", "psst", 1, 2)
    store.advance(store.newest_id)
    page, more = store.page_room("a", limit=10)
    assert [e.text for e in page] == [f"a{i}" for i in range(20, 30)] and more
    page, more = store.page_room("a", before=page[0].id, limit=25)
    assert [e.text for e in page] == [f"a{i}" for i in range(20)] and not more
    page, more = store.page_room("b", after=0, limit=5)
    assert [e.text for e in page] == [f"b{i}" for i in range(5)] and more
    events, more = store.catch_up({"b": (0, None)}, 2, 0, 50, 100)
    assert [e.text for e in events] == [f"b{i}" for i in range(25, 30)] + ["psst"] and not more
    dms, _ = store.page_direct(1, "bob")
    assert [e.text for e in dms] == ["psst"]
    assert store.recent_floor("a", 5) == store.page_room("a", limit=5)[0][0].id - 1
    assert store.last_message_id("b") == 60


def test_erase_takes_the_text_out_of_redis(redis_server, store):
    import redis
    msg, _ = store.add_message("ann", "a secret", session=1)
    store.advance(msg)
    store.erase(store.get_event(msg), {"by": "ann"})
    e = store.get_event(msg)
    assert e.kind == "deleted" and e.text == ""
    db = redis.Redis.from_url(redis_server.url)
    try:
        dump = b"".join(v for v in db.hvals("natter:text")) + b"".join(
            v for _, f in db.xrange("natter:log") for v in f.values())
    finally:
        db.close()
    assert b"a secret" not in dump


def test_sessions_and_rooms_are_the_deployments(redis_server, store):
    from server.store import RoomRecord
    from server.store.redis import RedisStore
    sid, token = store.new_session()
    store.join_room(sid, "lobby", 0)
    store.join_room(sid, "maths", 4)
    store.mark_read(sid, "maths", 9)
    store.create_room(RoomRecord("maths", "Maths", created=1.0))
    store.commit()
    other = RedisStore(redis_server.url)
    try:
        assert other.find_session(token) == sid
        assert other.session_rooms(sid) == {"lobby": 0, "maths": 9}
        assert other.find_room("maths").name == "Maths"
        assert other.epoch == store.epoch
    finally:
        other.close()


def test_a_nick_online_on_one_node_is_taken_on_the_other(redis_server, store):
    from server.store.redis import RedisStore
    other = RedisStore(redis_server.url)
    try:
        assert store.claim_online("ann", "Ann", 1) is None
        assert other.claim_online("ann", "ann", 2) == "Ann"
        assert other.claim_online("ann", "Ann", 1) is None      # the same session moved: it may take it
        assert other.online_holder("ann") == ("Ann", 1)
        store.release_online("ann")                              # the old node's release...
        store.commit()
        assert other.online_holder("ann") == ("Ann", 1)         # ...does not free the new holder
        other.close()                                            # a node that leaves frees its nicks
        assert store.claim_online("ann", "ann", 3) is None
    finally:
        other.close()


def test_appendonly_off_is_warned_and_refused_with_require_durable(tmp_path, caplog):
    pytest.importorskip("redis", reason="the redis extra is not installed")
    from server.store.redis import RedisStore
    r = RedisServer(str(tmp_path / "volatile"), appendonly=False)
    try:
        with caplog.at_level(logging.WARNING, logger="natter.server"):
            s = RedisStore(r.url)
        s.close()
        assert s.durable is False
        assert "appendonly is off" in caplog.text
        with pytest.raises(HistoryError, match="appendonly yes"):
            RedisStore(r.url, require_durable=True)
    finally:
        r.stop()


def test_an_unreachable_redis_at_start_is_a_sentence():
    pytest.importorskip("redis", reason="the redis extra is not installed")
    from server.store.redis import RedisStore
    with pytest.raises(HistoryError, match="cannot be reached"):
        RedisStore(f"redis://127.0.0.1:{free_port()}/0")


def test_redis_down_while_running_is_unavailable_then_recovers(redis_server, store):
    first, _ = store.add_message("ann", "before", session=1, ref="a")
    redis_server.kill()
    with pytest.raises(Unavailable, match="nothing was stored"):
        store.add_message("ann", "during", session=1, ref="b")
    store.mark_read(1, "lobby", 1)
    store.commit()                           # bookkeeping waits, it does not raise
    redis_server.restart()
    assert wait_until(lambda: _try(store.add_message, "ann", "during", session=1, ref="b"), timeout=10,
                      what="the store to reach Redis again")[0] == first + 1
    assert [e["ref"] for e in stream(redis_server.url)] == ["a", "b"]   # appendonly kept "a"


def _try(call, *args, **kw):
    try:
        return call(*args, **kw)
    except Unavailable:
        return None


def test_a_redis_that_hangs_costs_the_hub_one_timeout_not_one_per_message(redis_server, store):
    from server.store.redis import DOWN_PAUSE, TIMEOUT
    redis_server.proc.send_signal(signal.SIGSTOP)       # alive, answering nothing
    try:
        start = time.monotonic()
        with pytest.raises(Unavailable):
            store.add_message("ann", "one", session=1, ref="x1")
        assert time.monotonic() - start < TIMEOUT + 2
        start = time.monotonic()
        for i in range(20):
            with pytest.raises(Unavailable):
                store.add_message("ann", f"more{i}", session=1, ref=f"y{i}")
        assert time.monotonic() - start < DOWN_PAUSE    # refused at once meanwhile
    finally:
        redis_server.proc.send_signal(signal.SIGCONT)
    assert wait_until(lambda: _try(store.add_message, "ann", "after", session=1, ref="z"), timeout=10,
                      what="the store to reach Redis again")


def test_the_server_core_imports_no_redis_and_says_how_to_get_it(tmp_path):
    code = ("import sys, server.app, server.main, server.hub\n"
            "assert 'redis' not in sys.modules, 'the default mode imported redis'\n"
            "import builtins\n"
            "real = builtins.__import__\n"
            "def no_redis(name, *a, **k):\n"
            "    if name == 'redis' or name.startswith('redis.'):\n"
            "        raise ImportError(name)\n"
            "    return real(name, *a, **k)\n"
            "builtins.__import__ = no_redis\n"
            "sys.exit(server.main.main(['--redis', 'redis://127.0.0.1:1/0', '--port', '0', '--no-discovery']))\n")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=30,
                          env={"NATTER_HOME": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert done.returncode == 1, done.stderr
    assert "pip install 'natter[redis]'" in done.stderr
    assert "Traceback" not in done.stderr


def test_require_durable_refuses_to_start_a_node_with_a_sentence(tmp_path):
    pytest.importorskip("redis", reason="the redis extra is not installed")
    r = RedisServer(str(tmp_path / "volatile"), appendonly=False)
    try:
        done = subprocess.run([sys.executable, "-m", "server", "--port", "0", "--no-discovery", "--redis", r.url,
                               "--require-durable"], cwd=ROOT, capture_output=True, text=True, timeout=60,
                              env={"NATTER_HOME": str(tmp_path / "home"), "PATH": "/usr/bin:/bin"})
    finally:
        r.stop()
    assert done.returncode == 1
    assert "set appendonly yes" in done.stderr and "Traceback" not in done.stderr


def test_sessions_unused_for_the_expiry_are_forgotten_with_their_rooms(redis_server, store):
    from server.store.redis import RedisStore
    old_sid, old_token = store.new_session()
    online_sid, online_token = store.new_session()
    store.join_room(old_sid, "lobby", 0)
    store.commit()
    later = time.time() + 31 * 86400
    store.clock = lambda: later
    fresh_sid, fresh_token = store.new_session()
    elsewhere_sid, elsewhere_token = store.new_session()
    other = RedisStore(redis_server.url)                    # a client online on another node all along
    try:
        assert other.claim_online("eve", "eve", elsewhere_sid) is None
        store.clock = lambda: later + 86400
        assert store.prune_sessions(30, keep={online_sid}) == 1
        assert store.find_session(elsewhere_token) == elsewhere_sid
    finally:
        other.close()
    assert store.find_session(old_token) is None and store.session_rooms(old_sid) == {}
    assert store.find_session(online_token) == online_sid and store.find_session(fresh_token) == fresh_sid
    assert store.prune_sessions(0) == 0                     # 0: never


def test_the_audit_pages_back_through_every_moderation_event(store):
    for i in range(7):
        store.add_event("mode", "maths", "teacher", extra={"changed": {"slow": i}}, session=1)
        store.add_message("ann", f"between {i}", room="maths", session=2)
    store.advance(store.newest_id)
    newest = store.audit_events("maths", lambda e: True, 3)
    assert [json.loads(e.extra)["changed"]["slow"] for e in newest] == [4, 5, 6]
    older = store.audit_events("maths", lambda e: True, 3, before=newest[0].id)
    assert [json.loads(e.extra)["changed"]["slow"] for e in older] == [1, 2, 3]
    oldest = store.audit_events("maths", lambda e: True, 3, before=older[0].id)
    assert [json.loads(e.extra)["changed"]["slow"] for e in oldest] == [0]


# -- a pass's says, appended together (queue_message, flush_appends) ------------

def test_queued_messages_are_appended_in_order_gapless_and_a_ref_once_even_within_one_batch(redis_server, store):
    first, _ = store.add_message("ann", "before", session=1, ref="a0")
    for owner, ref in (("o1", "a1"), ("o2", "a2"), ("o3", "a1"), ("o4", None), ("o5", "a2")):
        store.queue_message(owner, "ann", f"text {owner}", session=1, ref=ref)
    store.queue_message("o6", "bob", "same ref, another session", session=2, ref="a1")
    assert stream(redis_server.url)[-1]["ref"] == "a0"          # nothing appended before the flush
    assert store.flush_appends() == []
    log = stream(redis_server.url)
    assert [e["id"] for e in log] == list(range(first, first + 5))   # o3 and o5 were retries: no copy
    assert [(e["ref"], e["from_session"]) for e in log] == [("a0", "1"), ("a1", "1"), ("a2", "1"), (None, "1"),
                                                            ("a1", "2")]
    assert store.flush_appends() == []                           # nothing left queued


def test_a_synchronous_append_first_appends_what_is_queued(redis_server, store):
    store.queue_message("o1", "ann", "queued", session=1, ref="q1")
    topic_id, _ = store.add_topic("lobby", "ann", "news", 1)
    assert topic_id == 2
    assert [e["ref"] for e in stream(redis_server.url)] == ["q1", None]
    assert store.flush_appends() == []


def test_many_queued_messages_go_in_several_round_trips_all_of_them(redis_server, store):
    from server.store.redis import FLUSH_MAX
    n = FLUSH_MAX * 2 + 7
    for i in range(n):
        store.queue_message(i, "ann", f"m{i}", session=1, ref=f"m{i}")
    assert store.flush_appends() == []
    assert [e["ref"] for e in stream(redis_server.url)] == [f"m{i}" for i in range(n)]


def test_a_batch_while_redis_is_down_is_unavailable_for_every_message_and_stores_none(redis_server, store):
    store.add_message("ann", "before", session=1, ref="a0")
    for i in range(5):
        store.queue_message(("conn", f"d{i}"), "ann", f"during {i}", session=1, ref=f"d{i}")
    redis_server.kill()
    failed = store.flush_appends()
    assert [owner for owner, _why in failed] == [("conn", f"d{i}") for i in range(5)]
    assert all("nothing was stored" in why for _owner, why in failed)
    with pytest.raises(Unavailable):                              # refused at once meanwhile
        store.queue_message(("conn", "d5"), "ann", "during 5", session=1, ref="d5")
    redis_server.restart()
    assert [e["ref"] for e in stream(redis_server.url)] == ["a0"]   # nothing of the batch acknowledged or stored

    def resend():
        try:
            for i in range(6):
                store.queue_message(("conn", f"d{i}"), "ann", f"during {i}", session=1, ref=f"d{i}")
        except Unavailable:
            return False
        return not store.flush_appends()
    assert wait_until(resend, timeout=10, what="the store to reach Redis again")
    log = stream(redis_server.url)
    assert [e["ref"] for e in log] == ["a0"] + [f"d{i}" for i in range(6)]
    assert [e["id"] for e in log] == list(range(1, 8))                 # gapless


def test_a_batch_after_redis_forgot_the_script_loads_it_again(redis_server, store):
    import redis
    redis.Redis.from_url(redis_server.url).script_flush()
    store.queue_message("o1", "ann", "one", session=1, ref="s1")
    store.queue_message("o2", "ann", "two", session=1, ref="s2")
    assert store.flush_appends() == []
    assert [e["ref"] for e in stream(redis_server.url)] == ["s1", "s2"]
