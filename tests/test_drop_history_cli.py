"""The operator's ``python -m server --redis URL --drop-history-before ID``
(docs/scaling.md, "When Redis is lost"), against a real redis-server: what
it drops, what a resume below it is told, and its refusals (nothing dropped);
and the node's other refusal of its command line with --redis (--files-dir)."""
from __future__ import annotations

import subprocess
import sys

import pytest

from server.store.redis import ARCHIVE, FLOOR, LOG, TEXT
from tests.netclient import LineClient
from tests.redistools import ROOT, event_ids, free_port
from tests.test_scaleout import read_until, welcomed
from tests.test_scaleout_history import caught_up, redis_db, write

pytestmark = pytest.mark.timeout(90)


def drop(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "server", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=30)


def state(url: str) -> tuple:
    db = redis_db(url)
    try:
        return db.hlen(ARCHIVE), db.hlen(TEXT), db.xlen(LOG), db.get(FLOOR)
    finally:
        db.close()


def test_the_command_drops_the_archive_up_to_the_id_and_a_resume_below_it_is_told_history_gone(
        make_node, redis_server):
    node = make_node(redis_keep=10)
    ann = welcomed(node.port, "ann")
    welcome = ann.frames[0]
    write(redis_server.url, 60, keep=10)        # ids 1..50 archived, 51..60 in the stream
    read_until(ann, lambda fr: len(event_ids(fr)) >= 60)
    ann.close()
    done = drop("--redis", redis_server.url, "--drop-history-before", "30")
    assert done.returncode == 0, done.stderr
    assert "Dropped 30 archived events up to id 30" in done.stdout and "history_gone" in done.stdout
    assert state(redis_server.url) == (20, 30, 10, b"30")
    bob = LineClient(node.port, timeout=10)
    try:
        bob.hello("ann", v=2, resume=welcome["session"], since=5, epoch=welcome["epoch"])
        read_until(bob, caught_up)
        gone = [f for f in bob.frames if f["type"] == "error"]
        assert [f["code"] for f in gone] == ["history_gone"] and "30" in gone[0]["message"]
        assert event_ids(bob.frames) == list(range(31, 61))
    finally:
        bob.close()
    again = drop("--redis", redis_server.url, "--drop-history-before", "20")
    assert again.returncode == 0 and "Nothing to drop" in again.stdout and "30" in again.stdout


def test_an_id_still_in_the_stream_or_beyond_the_newest_is_refused_and_nothing_is_dropped(redis_server):
    write(redis_server.url, 60, keep=10)
    before = state(redis_server.url)
    assert before == (50, 60, 10, None)
    for upto, words in (("51", "still in the stream"), ("60", "still in the stream"), ("61", "beyond the newest")):
        refused = drop("--redis", redis_server.url, "--drop-history-before", upto)
        assert refused.returncode == 1, refused.stdout
        assert words in refused.stderr and "nothing was dropped" in refused.stderr
        assert "give an id below 51" in refused.stderr or words == "beyond the newest"
        assert refused.stdout == ""
    assert state(redis_server.url) == before


def test_the_command_s_bad_input_is_a_sentence_and_an_exit_code():
    no_redis = drop("--drop-history-before", "10")
    assert no_redis.returncode == 2 and "--drop-history-before goes with --redis" in no_redis.stderr
    for bad in ("0", "-3", "abc"):
        wrong = drop("--redis", "redis://127.0.0.1:1/0", "--drop-history-before", bad)
        assert wrong.returncode == 2 and "--drop-history-before" in wrong.stderr, wrong.stderr
    away = drop("--redis", f"redis://127.0.0.1:{free_port()}/0", "--drop-history-before", "10")
    assert away.returncode == 1 and "cannot be reached" in away.stderr and "Traceback" not in away.stderr


def test_files_dir_does_not_go_with_redis():
    wrong = drop("--redis", "redis://127.0.0.1:1/0", "--files-dir", "/tmp/x")
    assert wrong.returncode == 2 and "--files-dir does not go with --redis" in wrong.stderr
