"""A deployment's history beyond the stream, a catch-up while Redis is away,
and the deleter's ref, against a real redis-server (docs/scaling.md)."""
from __future__ import annotations

import os
import time

import pytest

from server.hub import CATCH_UP_RETRY
from server.store.redis import ARCHIVE, LOG, RedisStore
from tests.netclient import LineClient
from tests.redistools import event_ids
from tests.servertools import expect, wait_until
from tests.test_scaleout import read_until, welcomed


def write(url: str, n: int, text: str = "", keep: int = 1_000_000) -> None:
    """n lobby messages appended by a store of the deployment (as another node would)."""
    store = RedisStore(url, keep=keep)
    try:
        for i in range(n):
            store.add_message("writer", f"m{i + 1} {text}")
    finally:
        store.close()


def redis_db(url: str):
    import redis
    return redis.Redis.from_url(url)


def until(client: LineClient, kind: str, **fields) -> dict:
    """The next frame of this type with these fields (others are skipped)."""
    def match(f):
        return f["type"] == kind and all(f.get(k) == v for k, v in fields.items())
    start = len(client.frames)
    read_until(client, lambda fr: any(match(f) for f in fr[start:]))
    return next(f for f in client.frames[start:] if match(f))


def caught_up(frames) -> bool:
    return any(f["type"] == "caught_up" for f in frames)


@pytest.mark.timeout(90)
def test_a_resume_across_the_trim_boundary_gets_every_message_once_in_order(make_node, redis_server):
    node = make_node(redis_keep=50)
    ann = welcomed(node.port, "ann")
    welcome = ann.frames[0]
    for i in range(200):
        ann.send({"type": "say", "text": f"m{i + 1}", "ref": f"r{i}"})
    read_until(ann, lambda fr: len(event_ids(fr)) >= 200)
    ann.close()
    db = redis_db(redis_server.url)
    try:
        assert db.xlen(LOG) == 50 and db.hlen(ARCHIVE) == 150     # trimmed, nothing lost
    finally:
        db.close()
    two = make_node(redis_keep=50)          # another node, which never saw them live
    bob = LineClient(two.port, timeout=10)
    bob.hello("ann2", v=2, resume=welcome["session"], since=10, epoch=welcome["epoch"])
    read_until(bob, caught_up)
    assert event_ids(bob.frames) == list(range(11, 201))
    assert not [f for f in bob.frames if f["type"] == "error"]
    # History pages read the archive too: the oldest page is there.
    bob.send({"type": "history", "room": "lobby", "before": 12, "limit": 20, "ref": "h"})
    page = expect(bob, "history", ref="h")
    assert [m["id"] for m in page["messages"]] == list(range(1, 12))


@pytest.mark.timeout(90)
def test_a_node_whose_reader_fell_behind_the_trim_reads_the_archive(make_node, redis_server):
    node = make_node(redis_keep=20)
    ann = welcomed(node.port, "ann")
    node.history.reader.stop()          # this node's reader stops: the others go on writing
    write(redis_server.url, 120, keep=20)
    from server.store.redis_feed import StreamReader
    store = node.history
    store.reader = StreamReader(store.url, store.reader.after, node.hub._logged, store.node_key, 10_000)
    store.reader.start()
    read_until(ann, lambda fr: len(event_ids(fr)) >= 120)
    assert event_ids(ann.frames) == list(range(1, 121))
    assert [f["text"] for f in ann.frames if f["type"] == "message"] == [f"m{i} " for i in range(1, 121)]


@pytest.mark.timeout(90)
def test_a_since_below_the_dropped_history_is_told_history_gone(make_node, redis_server):
    node = make_node(redis_keep=10)
    ann = welcomed(node.port, "ann")
    welcome = ann.frames[0]
    write(redis_server.url, 60, keep=10)
    read_until(ann, lambda fr: len(event_ids(fr)) >= 60)
    ann.close()
    store = RedisStore(redis_server.url, keep=10)
    try:
        assert store.drop_before(30) == 30
    finally:
        store.close()
    bob = LineClient(node.port, timeout=10)
    bob.hello("ann", v=2, resume=welcome["session"], since=5, epoch=welcome["epoch"])
    read_until(bob, caught_up)
    gone = [f for f in bob.frames if f["type"] == "error"]
    assert [f["code"] for f in gone] == ["history_gone"] and "30" in gone[0]["message"]
    assert event_ids(bob.frames) == list(range(31, 61))     # from the floor on, no silent gap


def hub_cpu(node) -> float:
    """Seconds of CPU the node's hub thread has used (user + system)."""
    with open(f"/proc/self/task/{node.hub.thread.native_id}/stat") as f:
        fields = f.read().rpartition(")")[2].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


@pytest.mark.timeout(120)
def test_a_catch_up_waiting_while_redis_is_down_does_not_spin_the_hub(make_node, redis_server):
    node = make_node()
    n = 3000
    write(redis_server.url, n, "x" * 2000)
    wait_until(lambda: node.history.last_id == n, timeout=30)
    c = LineClient(node.port, timeout=10, rcvbuf=4096)
    c.hello("ann", v=2, since=0)
    chat = node.hub.chat
    wait_until(lambda: chat.catching_up and all(x.outbox.size > 0 for x in chat.catching_up), timeout=20)
    redis_server.kill()
    # The client takes everything the node had queued; its cursor then waits for Redis.
    got_all = time.monotonic() + 60
    while True:
        try:
            c.recv(2 * CATCH_UP_RETRY + 1)
        except TimeoutError:
            break
        assert time.monotonic() < got_all
    (conn,) = chat.catching_up
    assert conn.cursor is not None and conn.outbox.size == 0
    start_cpu, start = hub_cpu(node), time.monotonic()
    wait_until(lambda: time.monotonic() - start >= 2.0, timeout=5)
    used = (hub_cpu(node) - start_cpu) / (time.monotonic() - start)
    assert used < 0.3, f"the hub thread used {used:.0%} of a core while Redis was down"
    redis_server.restart()
    read_until(c, caught_up, timeout=60)
    assert event_ids(c.frames) == list(range(1, n + 1))


@pytest.mark.timeout(60)
def test_the_deleter_and_the_editor_get_their_ref_in_redis_mode(make_node):
    one, two = make_node(), make_node()
    ann, bob = welcomed(one.port, "ann"), welcomed(two.port, "bob")
    ann.send({"type": "say", "text": "oops", "ref": "s1"})
    msg = until(ann, "message", ref="s1")
    ann.send({"type": "edit", "id": msg["id"], "text": "fixed", "ref": "e1"})
    edited = until(ann, "edited", id=msg["id"])
    assert edited.get("ref") == "e1"
    ann.send({"type": "delete", "id": msg["id"], "ref": "d1"})
    deleted = until(ann, "deleted", id=msg["id"])
    assert deleted.get("ref") == "d1"
    other = until(bob, "deleted", id=msg["id"])
    assert "ref" not in other
    # A private message's deletion: the deleter's copy has its ref, the receiver's none.
    ann.send({"type": "dm", "to": "bob", "text": "psst", "ref": "s2"})
    dm = until(ann, "dm", ref="s2")
    until(bob, "dm", id=dm["id"])
    ann.send({"type": "delete", "id": dm["id"], "ref": "d2"})
    assert until(ann, "deleted", id=dm["id"]).get("ref") == "d2"
    assert "ref" not in until(bob, "deleted", id=dm["id"])


def test_redis_keep_is_a_setting_of_one_or_more():
    from server.config import from_args
    assert from_args(["--redis", "redis://127.0.0.1:1/0"]).redis_keep == 1_000_000
    assert from_args(["--redis", "redis://127.0.0.1:1/0", "--redis-keep", "50"]).redis_keep == 50
    with pytest.raises(SystemExit):
        from_args(["--redis", "redis://127.0.0.1:1/0", "--redis-keep", "0"])


@pytest.mark.timeout(90)
def test_redis_s_data_lost_the_nodes_restarted_a_resume_is_told_reset_and_misses_nothing_new(make_node,
                                                                                             redis_server):
    """docs/scaling.md, When Redis is lost: stop every node, start Redis on an
    empty directory, start the nodes. A client resuming with its old since
    and epoch is told reset and caught up as a newcomer: the new history's
    ids 1, 2... are not hidden behind its old since."""
    import shutil
    one = make_node()
    ann = welcomed(one.port, "ann")
    old = ann.frames[0]
    for i in range(5):
        ann.send({"type": "say", "text": f"old{i}", "ref": f"o{i}"})
    read_until(ann, lambda fr: len(event_ids(fr)) >= 5)
    ann.close()
    one.shutdown()
    redis_server.kill()
    shutil.rmtree(redis_server.dir)         # its data lost
    redis_server.start()
    two = make_node()
    carl = welcomed(two.port, "carl")
    for i in range(2):
        carl.send({"type": "say", "text": f"new{i}", "ref": f"n{i}"})
    read_until(carl, lambda fr: len(event_ids(fr)) >= 2)
    back = LineClient(two.port, timeout=10)
    w = back.hello("ann", v=2, resume=old["session"], since=5, epoch=old["epoch"])
    assert w.get("reset") is True and w["epoch"] != old["epoch"]
    assert w["session"] != old["session"]           # sessions lived in Redis too: a new one
    read_until(back, caught_up)
    assert event_ids(back.frames) == [1, 2]
    shown = [f for f in back.frames if f["type"] == "message"] + [
        e for f in back.frames if f["type"] == "replay" for e in f["frames"] if e.get("type") == "message"]
    assert sorted(m["text"] for m in shown) == ["new0", "new1"]


@pytest.mark.timeout(90)
def test_the_window_s_client_resuming_below_the_dropped_history_is_handed_history_gone(make_node, redis_server):
    """The window's network client (chatgui.net) with both nodes' addresses:
    its node dies while history it never saw is archived and dropped; it
    resumes on the other node from its own since and hands the window the
    history_gone error (which the window says: tests/test_controller.py,
    test_history_gone_is_said_in_a_sentence_not_a_silent_gap), then the
    messages from the floor on, once, in order."""
    from chatgui.net import events as ev
    from chatgui.net.backoff import Backoff
    from chatgui.net.client import ChatClient
    from server import protocol
    from tests.chatclients import Events
    a, b = make_node(redis_keep=5), make_node(redis_keep=5)
    evs = Events()
    client = ChatClient([("127.0.0.1", a.port), ("127.0.0.1", b.port)], 0, "ann", events=evs.q,
                        keep_session=False, backoff=Backoff(first=0.05, base=0.05, cap=0.1))
    client.start()
    try:
        assert evs.wait(ev.Connected, timeout=10).port == a.port
        evs.caught_up()
        write(redis_server.url, 10, keep=5)
        evs.wait(lambda e: isinstance(e, protocol.Message) and e.id == 10, timeout=10)
        a.history.reader.stop()             # node a delivers no more: ann saw up to 10
        write(redis_server.url, 50, keep=5)     # ids 11..60, 1..55 archived
        store = RedisStore(redis_server.url, keep=5)
        try:
            assert store.drop_before(40) == 40
        finally:
            store.close()
        a.shutdown()
        again = evs.wait(ev.Connected, timeout=20)
        assert again.port == b.port and again.resumed
        gone = evs.wait(lambda e: isinstance(e, protocol.ServerError), timeout=10)
        assert gone.code == "history_gone" and "40" in gone.message

        def shown() -> list[int]:
            got = []
            for e in evs.seen:
                if isinstance(e, ev.Backlog):
                    got += [m.id for m in e.messages if isinstance(m, protocol.Message)]
                elif isinstance(e, protocol.Message):
                    got.append(e.id)
            return got
        wait_until(lambda: evs.drain() is not None and len(shown()) >= 30, timeout=15,
                   what="the messages from the floor on")
        assert shown() == list(range(1, 11)) + list(range(41, 61))
    finally:
        client.close(timeout=3)
