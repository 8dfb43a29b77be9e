"""chatgui.net.transfers against a fake file server over loopback (tests/fakes.py):
uploads and downloads byte for byte, resume after a cut, refusals, a damaged
download, cancel, progress with speed and time left."""
from __future__ import annotations

import hashlib
import os
import queue
import stat
import threading

import pytest

from server import protocol as p

from chatgui.net import events as ev
from chatgui.net.transfers import Transfers, _Meter
from tests.chatclients import TransferPump as Pump
from tests.fakes import FakeFileServer, FakeTransferClient
from tests.servertools import wait_until


@pytest.fixture
def rig(tmp_path):
    server = FakeFileServer()
    events = queue.Queue()
    client = FakeTransferClient(server, events)
    transfers = Transfers(client, events, pauses=(0.05,))
    pump = Pump(transfers, events)
    yield server, client, transfers, pump, tmp_path
    transfers.close()
    pump.stop()
    server.close()


def _file(tmp_path, size, name="data.bin"):
    data = os.urandom(size)
    path = tmp_path / name
    path.write_bytes(data)
    return str(path), data


def _info(fid, data, name="data.bin"):
    return p.FileInfo(fid, name, len(data), "application/octet-stream", hashlib.sha256(data).hexdigest())


def test_an_upload_arrives_byte_for_byte_on_a_thread_of_its_own(rig):
    server, client, transfers, pump, tmp = rig
    path, data = _file(tmp, 3_000_000)
    names = []
    tid = transfers.send(path, room="maths")
    names.append([t.name for t in threading.enumerate() if t.name.startswith("file-up-")])
    done = pump.end(tid)
    assert type(done) is ev.TransferDone, done
    offer = client.offers[0]
    assert (offer["name"], offer["size"], offer["room"], offer["to"]) == ("data.bin", len(data), "maths", None)
    assert offer["sha256"] == hashlib.sha256(data).hexdigest()
    assert server.files[done.file] == data
    assert names[0] == ["file-up-1"]
    phases = [e.phase for e in pump.progress(tid)]
    assert "checking" in phases and phases[-1] == "sending"
    assert pump.progress(tid)[-1].done == len(data)


def test_the_bar_is_full_while_the_server_checks_the_bytes(rig):
    server, client, transfers, pump, tmp = rig
    path, data = _file(tmp, 1_000_000)
    server.answer_put.clear()
    tid = transfers.send(path, room="lobby")
    pump.wait(lambda e: type(e) is ev.TransferProgress and e.tid == tid and e.phase == "sending"
              and e.done == len(data), what="the bar at 100% before put_ok")
    assert tid not in pump.ended
    server.answer_put.set()
    assert type(pump.end(tid)) is ev.TransferDone


def test_an_upload_cut_in_the_middle_is_offered_again_and_resumes_where_the_server_stopped(rig):
    server, client, transfers, pump, tmp = rig
    path, data = _file(tmp, 2_000_000)
    server.cut_after = 700_000
    done = pump.end(transfers.send(path, to="bob"))
    assert type(done) is ev.TransferDone, done
    puts = [f for f in server.lines if f["type"] == "put"]
    assert [f["offset"] for f in puts] == [0, 700_000]
    assert len(client.offers) == 2 and client.offers[0]["to"] == "bob"
    assert server.files[done.file] == data


def test_a_refused_offer_ends_the_transfer_in_words_without_a_second_connection(rig):
    server, client, transfers, pump, tmp = rig
    path, _ = _file(tmp, 1000)
    client.refuse = "file_too_large"
    failed = pump.end(transfers.send(path, room="lobby"))
    assert type(failed) is ev.TransferFailed and not failed.cancelled
    assert "larger than this server takes" in failed.message
    assert client.dials == 0


def test_a_download_arrives_byte_for_byte_and_is_not_executable(rig):
    server, client, transfers, pump, tmp = rig
    data = os.urandom(1_500_000)
    server.files["f1"] = data
    dest = str(tmp / "got.sh")
    done = pump.end(transfers.fetch(_info("f1", data, "got.sh"), dest))
    assert type(done) is ev.TransferDone and done.path == dest
    with open(dest, "rb") as f:
        assert f.read() == data
    assert not os.stat(dest).st_mode & (stat.S_IXUSR | stat.S_IXGRP | stat.S_IXOTH)
    assert not os.path.exists(dest + ".part")
    assert [f["resume"] for f in server.lines] == ["sess-1"]


def test_a_download_cut_in_the_middle_resumes_from_what_arrived(rig):
    server, client, transfers, pump, tmp = rig
    data = os.urandom(1_000_000)
    server.files["f2"] = data
    server.cut_after = 400_000
    dest = str(tmp / "big.bin")
    done = pump.end(transfers.fetch(_info("f2", data), dest))
    assert type(done) is ev.TransferDone, done
    assert [f["offset"] for f in server.lines] == [0, 400_000]
    with open(dest, "rb") as f:
        assert f.read() == data


def test_a_download_whose_bytes_do_not_match_the_checksum_is_not_kept(rig):
    server, client, transfers, pump, tmp = rig
    data = os.urandom(10_000)
    server.files["f3"] = data[:-1] + bytes([data[-1] ^ 1])
    dest = str(tmp / "x.bin")
    failed = pump.end(transfers.fetch(_info("f3", data), dest))
    assert type(failed) is ev.TransferFailed and "damaged" in failed.message
    assert not os.path.exists(dest) and not os.path.exists(dest + ".part")


def test_a_download_the_server_refuses_says_why(rig):
    server, client, transfers, pump, tmp = rig
    failed = pump.end(transfers.fetch(_info("nope", b"abc"), str(tmp / "n")))
    assert type(failed) is ev.TransferFailed
    assert "no longer has this file" in failed.message and failed.code == p.NO_SUCH_FILE   # the card turns gone


def test_cancel_stops_a_stalled_download_at_once_and_leaves_nothing(rig):
    server, client, transfers, pump, tmp = rig
    data = os.urandom(500_000)
    server.files["f4"] = data
    server.stall_after = 100_000
    dest = str(tmp / "s.bin")
    tid = transfers.fetch(_info("f4", data), dest)
    # The server has sent all it will (100 kB go into the socket buffers at
    # once) and the client is receiving. (Progress events come at most every
    # 0.1 s, so the last one before the stall may say less than 100 kB.)
    wait_until(lambda: server.stall_after is None and pump.progress(tid), timeout=10)
    transfers.cancel(tid)
    failed = pump.end(tid, timeout=5)
    assert type(failed) is ev.TransferFailed and failed.cancelled
    assert not os.path.exists(dest) and not os.path.exists(dest + ".part")


def test_progress_gives_speed_and_time_left_from_the_last_seconds():
    out = []
    now = [0.0]
    meter = _Meter("t", 10_000_000, out.append, lambda: now[0])
    for i in range(1, 11):
        now[0] = i * 0.5
        meter.report(i * 500_000, "sending")
    last = out[-1]
    assert last.speed == pytest.approx(1_000_000, rel=0.01)      # 500 kB per half second
    assert last.left == pytest.approx(5.0, rel=0.01)              # 5 MB to go at 1 MB/s
