"""The client's file transfers (chatgui.net.transfers over the real
ChatClient) against the real server over loopback sockets: a file sent to
a room arrives byte for byte at another client, plain and over TLS (the
second connection passes the same pin check); an upload cut in the middle
resumes after the reconnect where the server stopped; a download resumes
from its part file; a private file reaches its two ends only."""
from __future__ import annotations

import hashlib
import json
import os

import pytest

from server import protocol as p

from chatgui.net import events as ev
from chatgui.net.backoff import Backoff
from chatgui.net.transfers import Transfers
from tests.chatclients import TransferPump
from tests.servertools import wait_until
from tests.test_client_net import Proxy

pytestmark = pytest.mark.timeout(60)

QUICK = dict(backoff=Backoff(first=0.0, base=0.1, cap=0.3))


@pytest.fixture
def people(make_server):
    """people(srv, *nicks, port=None, **client_kw) -> [(ChatClient, Transfers, TransferPump)], caught up."""
    made = []

    def make(srv, *nicks, port=None, **kw):
        from chatgui.net.client import ChatClient
        import queue
        out = []
        for nick in nicks:
            q = queue.Queue()
            c = ChatClient("127.0.0.1", port or srv.port, nick, events=q, **QUICK, **kw)
            t = Transfers(c, q, pauses=(0.1, 0.2, 0.4))
            pump = TransferPump(t, q)
            made.append((c, t, pump))
            c.start()
            pump.wait(lambda e: type(e) is ev.CaughtUp, what=f"{nick} caught up")
            out.append((c, t, pump))
        return out

    yield make
    for c, t, pump in made:
        t.close()
        c.close(timeout=2)
        pump.stop()


def _file(tmp_path, size, name="data.bin"):
    data = os.urandom(size)
    path = tmp_path / name
    path.write_bytes(data)
    return str(path), data


def announced(pump, name, kind=p.Message):
    return pump.wait(lambda e: isinstance(e, kind) and getattr(e, "file", None) is not None
                     and e.file.name == name, what=f"the announcement of {name}").file


@pytest.mark.parametrize("tls", [False, True], ids=["plain", "tls"])
def test_a_file_sent_to_the_room_arrives_byte_for_byte_at_another_client(make_server, people, tmp_path, tls):
    srv = make_server(rate_limit=0, upload_rate=0, tls=tls)
    kw = dict(tls=True, trust_first_use=True) if tls else {}
    (ann, ann_t, ann_p), (bob, bob_t, bob_p) = people(srv, "ann", "bob", **kw)
    path, data = _file(tmp_path, 5_000_000, "holiday.bin")
    sent = ann_p.end(ann_t.send(path, room="lobby"))
    assert type(sent) is ev.TransferDone, sent
    info = announced(bob_p, "holiday.bin")
    assert (info.size, info.sha256) == (len(data), hashlib.sha256(data).hexdigest())
    assert announced(ann_p, "holiday.bin").id == info.id == sent.file
    dest = str(tmp_path / "got.bin")
    got = bob_p.end(bob_t.fetch(info, dest))
    assert type(got) is ev.TransferDone, got
    with open(dest, "rb") as f:
        assert f.read() == data
    ups = [e for e in ann_p.seen if type(e) is ev.TransferProgress and e.phase == "sending"]
    assert ups and ups[-1].done == len(data)


def test_an_upload_cut_in_the_middle_resumes_after_the_reconnect(make_server, people, tmp_path):
    files_dir = str(tmp_path / "files")
    srv = make_server(rate_limit=0, upload_rate=1_000_000, files_dir=files_dir)    # slow enough to cut mid-way
    relay = Proxy(srv.port)
    try:
        (ann, ann_t, ann_p), = people(srv, "ann", port=relay.port)
        (bob, bob_t, bob_p), = people(srv, "bob")
        path, data = _file(tmp_path, 2_000_000)
        tid = ann_t.send(path, room="lobby")
        wait_until(lambda: _held(files_dir) > 600_000, timeout=20, what="a third of the upload on the server")
        relay.cut()
        done = ann_p.end(tid, timeout=40)
        assert type(done) is ev.TransferDone, done
        assert ann_p.wait(lambda e: type(e) is ev.Connected and e.resumed, what="the reconnect")
        puts = [json.loads(bytes(relay.sent[i:relay.sent.index(b"\n", i)]))
                for i in _find_all(bytes(relay.sent), b'{"type":"put"')]
        assert len(puts) == 2 and puts[0]["offset"] == 0 and puts[1]["offset"] >= 600_000, puts
        info = announced(bob_p, "data.bin")
        dest = str(tmp_path / "back.bin")
        assert type(bob_p.end(bob_t.fetch(info, dest))) is ev.TransferDone
        with open(dest, "rb") as f:
            assert f.read() == data
    finally:
        relay.close()


def _held(folder: str) -> int:
    """Bytes of the upload in progress on the server (its ID.part file)."""
    try:
        return sum(os.path.getsize(os.path.join(folder, n)) for n in os.listdir(folder) if n.endswith(".part"))
    except OSError:
        return 0


def _find_all(haystack: bytes, needle: bytes):
    i = haystack.find(needle)
    while i >= 0:
        yield i
        i = haystack.find(needle, i + 1)


def test_a_download_resumes_from_its_part_file(make_server, people, tmp_path):
    srv = make_server(rate_limit=0, upload_rate=0)
    (ann, ann_t, ann_p), (bob, bob_t, bob_p) = people(srv, "ann", "bob")
    path, data = _file(tmp_path, 2_000_000)
    ann_p.end(ann_t.send(path, room="lobby"))
    info = announced(bob_p, "data.bin")
    dest = str(tmp_path / "half.bin")
    with open(dest + ".part", "wb") as f:
        f.write(data[:1_234_567])            # what an interrupted download left
    done = bob_p.end(bob_t.fetch(info, dest))
    assert type(done) is ev.TransferDone, done
    with open(dest, "rb") as f:
        assert f.read() == data
    received = [e.done for e in bob_p.progress(done.tid) if e.phase == "receiving"]
    assert received[0] > 1_234_567             # it went on from there, not from 0


def test_a_private_file_reaches_its_two_ends_and_a_third_cannot_fetch_it(make_server, people, tmp_path):
    srv = make_server(rate_limit=0, upload_rate=0)
    (ann, ann_t, ann_p), (bob, bob_t, bob_p), (eve, eve_t, eve_p) = people(srv, "ann", "bob", "eve")
    path, data = _file(tmp_path, 100_000, "secret.txt")
    assert type(ann_p.end(ann_t.send(path, to="bob"))) is ev.TransferDone
    info = announced(bob_p, "secret.txt", p.Direct)
    assert announced(ann_p, "secret.txt", p.Direct).id == info.id
    failed = eve_p.end(eve_t.fetch(info, str(tmp_path / "stolen.txt")))
    assert type(failed) is ev.TransferFailed and "no longer has this file" in failed.message
    assert not os.path.exists(tmp_path / "stolen.txt")
    assert not any(getattr(e, "file", None) for e in eve_p.seen)


def test_an_offer_over_the_servers_limit_is_refused_in_words(make_server, people, tmp_path):
    srv = make_server(rate_limit=0, max_file_size=10_000, files_quota=1_000_000)
    (ann, ann_t, ann_p), = people(srv, "ann")
    path, _ = _file(tmp_path, 20_000)
    failed = ann_p.end(ann_t.send(path, room="lobby"))
    assert type(failed) is ev.TransferFailed and "larger than this server takes" in failed.message
