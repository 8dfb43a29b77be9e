"""Files and pictures across the nodes of a deployment (docs/scaling.md),
over real sockets and a real redis-server: a file uploaded on one node is
fetched from the others, byte for byte; its message reaches every node; the
quota, the size cap and expiry are the deployment's; a restart keeps files."""
from __future__ import annotations

import os

import pytest

from server import protocol as p
from server.store.redis_files import BLOB, COMPLETES, PARTIALS, PIECE, RESERVED, USED
from tests.filetools import announced, get, offer, put, sha
from tests.netclient import LineClient
from tests.servertools import answer, hello_v2, wait_until

pytestmark = pytest.mark.timeout(90)

MB = 1000 * 1000
THUMB = "iVBORw0KGgoAAAANSUhEUg=="


def person(port: int, nick: str) -> LineClient:
    """A v2 client in the lobby, welcomed; .session is its resume string."""
    c = LineClient(port, timeout=15)
    c.session = hello_v2(c, nick)["welcome"]["session"]
    return c


@pytest.fixture
def nodes(make_node):
    """nodes(n, **config) -> n in-process nodes of one deployment, and one person on each."""
    made = []

    def make(n: int = 3, **cfg):
        servers = [make_node(upload_rate=0, **cfg) for _ in range(n)]
        people = [person(s.port, f"p{i}") for i, s in enumerate(servers)]
        made.extend(people)
        return servers, people
    yield make
    for c in made:
        c.close()


def redis_db(url: str):
    import redis
    return redis.Redis.from_url(url)


def test_a_picture_uploaded_on_one_node_shows_on_every_node_and_is_fetched_from_each(nodes, redis_server):
    (a, b, c), people = nodes(3)
    data = os.urandom(3 * MB + 12345)          # several pieces, the last one short
    ready = offer(people[0], data, "shot.png", mime="image/png", thumb=THUMB)
    assert ready["type"] == "upload_ready" and ready["offset"] == 0
    assert put(a.port, ready, data) == {"type": "put_ok", "file": ready["file"]}
    seen = [announced(person_, ready["file"]) for person_ in people]
    assert all(m == seen[0] for m in seen), seen      # the same message, id included, on every node
    assert seen[0]["file"] == {"id": ready["file"], "name": "shot.png", "size": len(data), "mime": "image/png",
                               "sha256": sha(data), "thumb": THUMB}
    for srv, who in ((b, people[1]), (c, people[2]), (a, people[0])):
        blob, body = get(srv.port, ready["file"], who.session)
        assert blob == {"type": "blob", "file": ready["file"], "size": len(data)}
        assert body == data
    # Resumable by offset on another node too.
    blob, body = get(c.port, ready["file"], people[2].session, offset=PIECE + 7)
    assert blob["size"] == len(data) - PIECE - 7 and body == data[PIECE + 7:]
    # Nothing on any node's disk: the bytes are Redis's.
    db = redis_db(redis_server.url)
    try:
        assert db.hlen(BLOB + ready["file"]) == len(data) // PIECE + 1
        assert int(db.get(USED)) == len(data) and int(db.get(RESERVED) or 0) == 0
    finally:
        db.close()
    assert all("Redis at redis://127.0.0.1" in s.describe() for s in (a, b, c))


def test_history_on_another_node_carries_the_file(nodes):
    (a, b), people = nodes(2)
    data = os.urandom(5000)
    ready = offer(people[0], data, "pic.png", mime="image/png", thumb=THUMB)
    assert put(a.port, ready, data)["type"] == "put_ok"
    live = announced(people[1], ready["file"])
    people[1].send({"type": "history", "room": "lobby", "ref": "h1"})
    page = answer(people[1], "history", "h1")
    assert [m for m in page["messages"] if m.get("id") == live["id"]] == [live]
    late = LineClient(b.port, timeout=15)
    try:
        replay = hello_v2(late, "late")["replay"]
        assert [m for m in replay if m.get("id") == live["id"]] == [live]
    finally:
        late.close()


def test_a_private_file_reaches_its_other_end_on_another_node_and_nobody_else(nodes):
    (a, b, c), (ann, bob, carol) = nodes(3)
    data = os.urandom(200_000)
    ready = offer(ann, data, "secret.pdf", to="p1", mime="application/pdf")
    assert ready["type"] == "upload_ready", ready
    assert put(a.port, ready, data)["type"] == "put_ok"
    for who in (ann, bob):
        d = announced(who, ready["file"], kind="dm")
        assert (d["from"], d["to"]) == ("p0", "p1")
    assert get(b.port, ready["file"], bob.session)[1] == data
    assert get(c.port, ready["file"], ann.session)[1] == data
    blob, body = get(c.port, ready["file"], carol.session)
    assert blob["code"] == p.NO_SUCH_FILE and body == b""


def test_the_quota_is_the_deployment_s_and_an_expiry_on_one_node_is_seen_on_another(nodes):
    (a, b), (ann, bob) = nodes(2, files_quota=3000, max_file_size=2000)
    blobs = [os.urandom(1200) for _ in range(3)]
    ids = []
    for i, (data, srv, who) in enumerate(zip(blobs, (a, b, a), (ann, bob, ann))):   # uploads on both nodes
        ready = offer(who, data, f"f{i}", ref=f"u{i}")
        assert put(srv.port, ready, data)["type"] == "put_ok"
        ids.append(ready["file"])
        announced(bob, ready["file"])
    # The third upload (on a) expired the first, which was uploaded on a: b says so too.
    frame, body = get(b.port, ids[0], bob.session)
    assert frame["code"] == p.NO_SUCH_FILE and "expired" in frame["message"] and body == b""
    assert get(b.port, ids[1], bob.session)[1] == blobs[1]
    assert get(a.port, ids[2], ann.session)[1] == blobs[2]
    for srv, who in ((b, bob), (a, ann)):
        who.send({"type": "history", "room": "lobby", "ref": "h"})
        files = {m["file"]["id"]: m["file"] for m in answer(who, "history", "h")["messages"] if "file" in m}
        assert files[ids[0]].get("expired") is True and "expired" not in files[ids[1]]
    # Uploads in progress on one node count against the quota on the other.
    assert offer(ann, os.urandom(2000), ref="u9")["type"] == "upload_ready"
    full = offer(bob, os.urandom(1500), ref="u10")
    assert full["type"] == "error" and full["code"] == p.QUOTA_FULL


def test_the_size_cap_and_a_wrong_sha256_are_refused_on_a_node_as_with_one_server(nodes, redis_server):
    (a, b), (ann, bob) = nodes(2, max_file_size=10_000)
    refused = offer(bob, size=10_001, digest="0" * 64, ref="big")
    assert refused["type"] == "error" and refused["code"] == p.FILE_TOO_LARGE
    data = os.urandom(9000)
    ready = offer(ann, data, digest=sha(b"something else"))
    bad = put(a.port, ready, data)
    assert bad["type"] == "error" and bad["code"] == p.BAD_FILE
    db = redis_db(redis_server.url)
    try:
        wait_until(lambda: not db.exists(BLOB + ready["file"]) and db.zcard(PARTIALS) == 0, timeout=10)
        assert int(db.get(RESERVED) or 0) == 0
    finally:
        db.close()
    frame, _ = get(b.port, ready["file"], bob.session)
    assert frame["code"] == p.NO_SUCH_FILE


def test_deleting_a_file_s_message_on_one_node_deletes_its_bytes_for_every_node(nodes, redis_server):
    (a, b), (ann, bob) = nodes(2)
    data = os.urandom(300_000)
    ready = offer(ann, data)
    assert put(a.port, ready, data)["type"] == "put_ok"
    msg = announced(ann, ready["file"])
    announced(bob, ready["file"])
    ann.send({"type": "delete", "id": msg["id"], "ref": "d1"})
    assert answer(ann, "deleted", "d1")["id"] == msg["id"]
    frame, body = get(b.port, ready["file"], bob.session)
    assert frame["code"] == p.NO_SUCH_FILE and "deleted" in frame["message"] and body == b""
    db = redis_db(redis_server.url)
    try:
        assert not db.exists(BLOB + ready["file"]) and db.zcard(COMPLETES) == 0 and int(db.get(USED)) == 0
    finally:
        db.close()


def cut_upload(node, client, db) -> tuple[bytes, dict]:
    """client offers 2 MB on node and sends half; returns (data, the ready
    frame) once the half is in Redis."""
    data = os.urandom(2 * MB)
    ready = offer(client, data)
    assert put(node.port, ready, data, stop_after=MB) is None
    wait_until(lambda: db.exists(BLOB + ready["file"]), timeout=10, what="bytes of the cut upload")
    return data, ready


def test_an_upload_cut_on_one_node_resumes_on_another(nodes, redis_server):
    """The client that lost its node offers the file again on another: the
    bytes already held in Redis are its offset there."""
    (a, b), (ann, bob) = nodes(2)
    db = redis_db(redis_server.url)
    try:
        data, ready = cut_upload(a, ann, db)
    finally:
        db.close()
    wait_until(lambda: not a.hub.chat.transfers.running(), timeout=10)
    ann.close()                                     # its node is lost to it; the same session, on b:
    ann2 = LineClient(b.port, timeout=15)
    try:
        hello_v2(ann2, "p0", resume=ann.session)
        again = offer(ann2, data, ref="again")
        assert again["type"] == "upload_ready" and again["file"] == ready["file"]
        assert 0 < again["offset"] <= MB
        assert put(b.port, again, data)["type"] == "put_ok"
        assert announced(bob, ready["file"])["file"]["sha256"] == sha(data)
        assert get(a.port, ready["file"], bob.session)[1] == data
    finally:
        ann2.close()


def test_a_restarted_node_still_serves_the_files_and_a_dead_node_s_upload_is_taken_up(
        tmp_path, redis_server):
    """Node processes (python -m server --redis): a file uploaded on one, then
    both SIGKILLed and one started again, is fetched byte for byte."""
    from tests.redistools import NodeProcess
    one = NodeProcess(str(tmp_path / "one"), redis_server.url, "--upload-rate", "0")
    two = NodeProcess(str(tmp_path / "two"), redis_server.url, "--upload-rate", "0")
    clients = []
    try:
        ann = person(one.port, "ann")
        clients.append(ann)
        data = os.urandom(MB)
        ready = offer(ann, data, "kept.bin")
        assert put(one.port, ready, data)["type"] == "put_ok"
        half = os.urandom(MB)
        cut = offer(ann, half, "half.bin", ref="half")
        assert put(one.port, cut, half, stop_after=3 * PIECE) is None
        db = redis_db(redis_server.url)
        try:
            wait_until(lambda: db.hlen(BLOB + cut["file"]) >= 1, timeout=10, what="a piece of the cut upload")
        finally:
            db.close()
        ann.close()
        one.kill()
        two.kill()
        three = NodeProcess(str(tmp_path / "three"), redis_server.url, "--upload-rate", "0")
        try:
            bob = person(three.port, "bob")
            clients.append(bob)
            assert get(three.port, ready["file"], bob.session)[1] == data
            back = LineClient(three.port, timeout=15)
            clients.append(back)
            hello_v2(back, "ann", resume=ann.session)
            again = offer(back, half, "half.bin", ref="again")
            assert again["file"] == cut["file"] and again["offset"] > 0
            assert put(three.port, again, half)["type"] == "put_ok"
            assert get(three.port, cut["file"], bob.session)[1] == half
        finally:
            three.stop()
    finally:
        for c in clients:
            c.close()
        one.stop()
        two.stop()


def test_a_stale_upload_of_any_node_is_given_up_by_the_others(nodes, redis_server):
    """An upload without progress for a day is dropped by whichever node
    looks, even when the node it began on is gone: its reservation is freed."""
    from server.core import files as core_files
    (a, b), (ann, bob) = nodes(2)
    db = redis_db(redis_server.url)
    try:
        data, ready = cut_upload(a, ann, db)
        wait_until(lambda: not a.hub.chat.transfers.running(), timeout=10)
        assert int(db.get(RESERVED)) == len(data)
        db.zadd(PARTIALS, {ready["file"]: 1.0})          # last progress long ago
        b.hub.chat._next_sweep = 0.0
        wait_until(lambda: db.zcard(PARTIALS) == 0, timeout=core_files.SWEEP_EVERY / 4 + 10)
        assert not db.exists(BLOB + ready["file"]) and int(db.get(RESERVED)) == 0
    finally:
        db.close()
    frame, _ = get(b.port, ready["file"], bob.session)
    assert frame["code"] == p.NO_SUCH_FILE and "given up" in frame["message"]


def test_redis_away_an_offer_is_told_unavailable_and_the_upload_works_once_it_is_back(nodes, redis_server):
    (a, b), (ann, bob) = nodes(2)
    data = os.urandom(100_000)
    redis_server.kill()
    refused = offer(ann, data, ref="while-down")
    assert refused["type"] == "error" and refused["code"] == p.UNAVAILABLE, refused
    redis_server.restart()

    def ready_again():
        answer_ = offer(ann, data, ref=f"again-{os.urandom(3).hex()}")
        return answer_ if answer_["type"] == "upload_ready" else None
    ready = wait_until(ready_again, timeout=20, interval=0.3, what="an offer accepted once Redis is back")
    assert put(a.port, ready, data)["type"] == "put_ok"
    announced(bob, ready["file"])
    assert get(b.port, ready["file"], bob.session)[1] == data


def test_a_put_may_reach_another_node_than_the_offer(nodes):
    """Behind one DNS name of several nodes the transfer connection may land
    on another node than the chat's: the latest offer's token is good on any."""
    (a, b, c), (ann, bob, carol) = nodes(3)
    data = os.urandom(PIECE * 2 + 99)
    first = offer(ann, data)
    assert put(b.port, first, data, stop_after=PIECE // 2) is None       # taken up by b, then cut
    wait_until(lambda: not b.hub.chat.transfers.running(), timeout=10)
    latest = offer(ann, data, ref="again")                  # on a, which gives a new token
    assert latest["file"] == first["file"] and latest["token"] != first["token"]
    stale = put(c.port, first, data, offset=0)
    assert stale["code"] == p.FORBIDDEN                      # the older token, on yet another node
    assert put(c.port, latest, data) == {"type": "put_ok", "file": first["file"]}
    for who in (ann, bob, carol):
        assert announced(who, first["file"])["file"]["size"] == len(data)
    assert get(a.port, first["file"], ann.session)[1] == data
    # Sent again after it finished (on c): a new upload, not a's stale one announced twice.
    third = offer(ann, data, ref="third")
    assert third["type"] == "upload_ready" and third["file"] != first["file"] and third["offset"] == 0


def test_an_older_writer_of_an_upload_cannot_overwrite_a_later_one(redis_server):
    """A put its node has not yet seen lost (its socket hangs) wakes up after
    the client resumed on another node: its late pieces are refused."""
    from server.store.redis import RedisStore
    from server.store.files import FileRecord
    from server.store.redis_files import BlobsUnavailable
    store = RedisStore(redis_server.url)
    blobs = store.file_blobs()
    try:
        store.add_file(FileRecord("F1", "x.bin", 3 * PIECE, "0" * 64, "application/octet-stream", None, "ann", 1,
                                  "lobby", None, None, "partial", 1.0))
        old = blobs.open_part("F1", 0)
        old.write(b"o" * 100)
        new = blobs.open_part("F1", 0)
        new.write(b"n" * (PIECE + 10))
        with pytest.raises(BlobsUnavailable):
            old.write(b"o" * PIECE)
        with pytest.raises(BlobsUnavailable):
            old.close()
        new.close()
        assert blobs.held("F1") == PIECE + 10
        with blobs.open_part("F1", PIECE + 10) as again:    # a resume reads back what it holds
            assert again.read(PIECE) == b"n" * PIECE and again.read(PIECE) == b"n" * 10
    finally:
        blobs.close()
        store.close()


def test_redis_lost_during_a_put_ends_the_transfer_and_the_offer_again_finishes_it(nodes, redis_server):
    (a, b), (ann, bob) = nodes(2)
    data = os.urandom(MB)
    ready = offer(ann, data)
    redis_server.kill()
    with pytest.raises((EOFError, ConnectionError)):
        put(a.port, ready, data)            # the connection ends with no answer, as a lost connection would
    wait_until(lambda: not a.hub.chat.transfers.running(), timeout=10)
    redis_server.restart()

    def ready_again():
        answer_ = offer(ann, data, ref=f"again-{os.urandom(3).hex()}")
        return answer_ if answer_["type"] == "upload_ready" else None
    again = wait_until(ready_again, timeout=20, interval=0.3, what="an offer accepted once Redis is back")
    assert again["file"] == ready["file"]
    assert put(a.port, again, data)["type"] == "put_ok"
    assert get(b.port, ready["file"], bob.session)[1] == data
