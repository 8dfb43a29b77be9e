"""Files over real loopback sockets (issue 12): an offer on the chat
connection, the bytes on a second connection to the same port, the
announcement, resume both ways, the checks, the limits, who may fetch,
deletion, TLS."""
from __future__ import annotations

import os
import threading
import time

import pytest

from server import protocol as p
from tests.filetools import announced, cut, dial, get, offer, put, read_line, sha
from tests.netclient import LineClient
from tests.servertools import answer, chat_works, expect, hello_v2, wait_until

pytestmark = pytest.mark.timeout(60)

MB = 1000 * 1000


@pytest.fixture
def files(make_server):
    """A server without rate limits and its ann and bob, welcomed (v2) in the lobby."""
    clients = []

    def make(**cfg):
        srv = make_server(**{"rate_limit": 0, "upload_rate": 0, **cfg})
        people = []
        for nick in ("ann", "bob"):
            c = LineClient(srv.port, timeout=10)
            clients.append(c)
            c.session = hello_v2(c, nick)["welcome"]["session"]
            people.append(c)
        expect(people[0], "joined", nick="bob")
        return srv, people
    yield make
    for c in clients:
        c.close()


def transfers_done(srv) -> bool:
    return not srv.hub.chat.transfers.running()


def test_a_50_mb_file_goes_up_and_down_byte_for_byte(files):
    srv, (ann, bob) = files()
    data = os.urandom(50 * MB)
    ready = offer(ann, data, "big.bin", mime="application/x-test")
    assert ready["type"] == "upload_ready" and ready["offset"] == 0
    assert put(srv.port, ready, data) == {"type": "put_ok", "file": ready["file"]}
    for c in (bob, ann):
        m = announced(c, ready["file"])
        assert m["from"] == "ann" and m["room"] == "lobby" and m["text"] == "big.bin"
        assert m["file"] == {"id": ready["file"], "name": "big.bin", "size": len(data), "mime": "application/x-test",
                             "sha256": sha(data)}
    blob, body = get(srv.port, ready["file"], bob.session)
    assert blob == {"type": "blob", "file": ready["file"], "size": len(data)}
    assert len(body) == len(data) and sha(body) == sha(data)
    chat_works(ann, bob)


def test_a_transfer_connection_holds_no_place_in_the_chat_and_has_its_own_thread(files):
    srv, (ann, bob) = files(upload_rate=1 * MB)
    data = os.urandom(3 * MB)
    ready = offer(ann, data)
    n = len(srv.hub.conns)
    result = {}
    t = threading.Thread(target=lambda: result.update(r=put(srv.port, ready, data)), daemon=True)
    t.start()
    wait_until(lambda: any(x.name == f"put-{ready['file']}" for x in threading.enumerate()),
               what="the put thread")
    assert len(srv.hub.conns) == n
    chat_works(bob, ann)        # the chat goes on while the bytes travel
    t.join(20)
    assert result["r"]["type"] == "put_ok"


def test_an_upload_is_held_to_the_sessions_rate(files):
    srv, (ann, bob) = files(upload_rate=2 * MB)
    data = os.urandom(3 * MB)
    start = time.monotonic()
    assert put(srv.port, offer(ann, data), data)["type"] == "put_ok"
    # A quarter second of burst, then 2 MB/s: at least (3 - 0.5) / 2 s.
    assert time.monotonic() - start >= 1.2


def test_an_upload_cut_in_the_middle_resumes_where_it_stopped(files):
    srv, (ann, bob) = files()
    data = os.urandom(20 * MB)
    ready = offer(ann, data, "film.bin")
    assert put(srv.port, ready, data, stop_after=10 * MB) is None
    wait_until(lambda: transfers_done(srv), what="the cut upload to end")
    again = offer(ann, data, "film.bin", ref="up2")
    assert again["file"] == ready["file"] and again["token"] != ready["token"]
    assert 0 < again["offset"] <= 10 * MB
    assert put(srv.port, ready, data[:1000], offset=0)["code"] == p.FORBIDDEN        # the old token died
    assert put(srv.port, again, data) == {"type": "put_ok", "file": ready["file"]}
    assert sha(get(srv.port, ready["file"], bob.session)[1]) == sha(data)
    assert announced(bob, ready["file"])["file"]["size"] == len(data)


def test_a_download_cut_in_the_middle_resumes_by_offset(files):
    srv, (ann, bob) = files()
    data = os.urandom(20 * MB)
    ready = offer(ann, data)
    assert put(srv.port, ready, data)["type"] == "put_ok"
    blob, first = get(srv.port, ready["file"], bob.session, stop_after=7 * MB)
    assert blob["size"] == len(data) and len(first) == 7 * MB
    blob, rest = get(srv.port, ready["file"], bob.session, offset=len(first))
    assert blob == {"type": "blob", "file": ready["file"], "size": len(data) - len(first)}
    assert sha(first + rest) == sha(data)


def test_a_wrong_sha256_is_refused_and_the_partial_file_dropped(files):
    srv, (ann, bob) = files()
    data = os.urandom(1 * MB)
    ready = offer(ann, data, digest=sha(b"something else"))
    answer_ = put(srv.port, ready, data)
    assert answer_["type"] == "error" and answer_["code"] == p.BAD_FILE and answer_["offset"] == 0
    assert answer_["file"] == ready["file"] and "SHA-256" in answer_["message"]
    wait_until(lambda: not os.listdir(srv.hub.chat.blobs.directory), what="the partial file to go")
    chat_works(ann, bob)        # and nothing was announced before it
    again = offer(ann, data, digest=sha(b"something else"), ref="up2")
    assert again["offset"] == 0 and again["file"] != ready["file"]
    blob, _ = get(srv.port, ready["file"], bob.session)
    assert blob["code"] == p.NO_SUCH_FILE


def test_a_wrong_size_is_refused(files):
    srv, (ann, bob) = files()
    data = os.urandom(100_000)
    # More bytes than offered: the put is cut off at the size, and the sha256
    # of the whole (the bigger file) does not match what arrived.
    ready = offer(ann, data, size=60_000)
    assert put(srv.port, ready, data)["code"] == p.BAD_FILE
    # The bytes offered, and more after them: the extra is never taken.
    ready = offer(ann, data[:60_000], ref="up2")
    assert put(srv.port, ready, data[:60_000], extra=b"junk" * 10_000)["type"] == "put_ok"
    assert get(srv.port, ready["file"], bob.session)[1] == data[:60_000]
    # Fewer bytes than offered, then the end of the input: kept for a resume.
    ready = offer(ann, data, ref="up3")
    short = put(srv.port, ready, data[:40_000], shut=True)
    assert short["code"] == p.BAD_FILE and short["offset"] == 40_000
    again = offer(ann, data, ref="up4")
    assert (again["file"], again["offset"]) == (ready["file"], 40_000)
    assert put(srv.port, again, data)["type"] == "put_ok"
    assert get(srv.port, ready["file"], bob.session)[1] == data


def test_an_offer_over_the_size_cap_is_refused_at_once(files):
    srv, (ann, bob) = files(max_file_size=1000)
    refused = offer(ann, b"x" * 1001)
    assert refused["type"] == "error" and refused["code"] == p.FILE_TOO_LARGE
    assert offer(ann, b"x" * 1000, ref="up2")["type"] == "upload_ready"
    ann.send({"type": "say", "text": "still in", "ref": "s1"})
    assert answer(ann, "message", "s1")["text"] == "still in"


def test_the_quota_expires_the_oldest_files_and_says_so(files):
    srv, (ann, bob) = files(files_quota=3000, max_file_size=2000)
    a, b, c = (os.urandom(1200) for _ in range(3))
    ids = []
    for i, data in enumerate((a, b, c)):
        ready = offer(ann, data, f"f{i}", ref=f"u{i}")
        assert put(srv.port, ready, data)["type"] == "put_ok"
        ids.append(ready["file"])
        announced(bob, ready["file"])
    assert get(srv.port, ids[0], bob.session)[0]["code"] == p.NO_SUCH_FILE      # the oldest went
    assert get(srv.port, ids[1], bob.session)[1] == b
    assert get(srv.port, ids[2], bob.session)[1] == c
    bob.send({"type": "history", "room": "lobby", "ref": "h1"})
    page = answer(bob, "history", "h1")
    files_ = {m["file"]["id"]: m["file"] for m in page["messages"] if "file" in m}
    assert files_[ids[0]].get("expired") is True and "expired" not in files_[ids[1]]
    # Uploads in progress hold their full size: one that cannot fit is refused.
    assert offer(ann, os.urandom(2000), ref="u9")["type"] == "upload_ready"
    full = offer(ann, os.urandom(1500), ref="u10")
    assert full["type"] == "error" and full["code"] == p.QUOTA_FULL


def test_a_private_file_reaches_its_two_ends_and_is_invisible_to_a_third_session(files):
    srv, (ann, bob) = files()
    carol = LineClient(srv.port)
    carol.session = hello_v2(carol, "carol")["welcome"]["session"]
    data = os.urandom(300_000)
    ready = offer(ann, data, "secret.pdf", to="bob", mime="application/pdf")
    assert put(srv.port, ready, data)["type"] == "put_ok"
    for c in (ann, bob):
        d = announced(c, ready["file"], kind="dm")
        assert (d["from"], d["to"], d["file"]["name"]) == ("ann", "bob", "secret.pdf")
    assert get(srv.port, ready["file"], bob.session)[1] == data
    assert get(srv.port, ready["file"], ann.session)[1] == data
    blob, body = get(srv.port, ready["file"], carol.session)
    assert blob["code"] == p.NO_SUCH_FILE and body == b""
    assert get(srv.port, ready["file"], "no-such-session")[0]["code"] == p.FORBIDDEN
    carol.send({"type": "ping"})        # its pong comes after anything the announcement sent it
    carol.recv_type("pong")
    assert not [f for f in carol.frames if "file" in f]


def test_a_path_like_name_is_only_a_name(files, tmp_path):
    srv, (ann, bob) = files()
    data = b"root:x:0:0:root:/root:/bin/bash\n"
    ready = offer(ann, data, "../../etc/passwd")
    assert put(srv.port, ready, data)["type"] == "put_ok"
    assert announced(bob, ready["file"])["file"]["name"] == "../../etc/passwd"
    folder = srv.hub.chat.blobs.directory
    assert folder == os.path.join(os.path.dirname(srv.history.path), "files")     # beside the history
    assert f"shared files in {folder}" in srv.describe()
    assert os.listdir(folder) == [ready["file"]]
    assert oct(os.stat(folder).st_mode & 0o777) == "0o700"
    assert oct(os.stat(os.path.join(folder, ready["file"])).st_mode & 0o777) == "0o600"
    assert not [f for _, _, names in os.walk(tmp_path) for f in names if f == "passwd"]
    assert get(srv.port, ready["file"], bob.session)[1] == data


def test_deleting_the_message_deletes_the_file(files):
    srv, (ann, bob) = files()
    data = os.urandom(200_000)
    ready = offer(ann, data)
    assert put(srv.port, ready, data)["type"] == "put_ok"
    msg = announced(bob, ready["file"])
    announced(ann, ready["file"])
    path = os.path.join(srv.hub.chat.blobs.directory, ready["file"])
    assert os.path.exists(path)
    ann.send({"type": "delete", "id": msg["id"], "ref": "d1"})
    assert answer(ann, "deleted", "d1")["id"] == msg["id"]
    assert not os.path.exists(path)
    blob, body = get(srv.port, ready["file"], bob.session)
    assert blob["code"] == p.NO_SUCH_FILE and "deleted" in blob["message"] and body == b""


def test_history_and_catch_up_carry_the_file(files):
    srv, (ann, bob) = files()
    data = os.urandom(10_000)
    ready = offer(ann, data, "pic.png", mime="image/png", thumb="iVBORw0KGgoAAAANSUhEUg==")
    assert put(srv.port, ready, data)["type"] == "put_ok"
    live = announced(bob, ready["file"])
    assert live["file"]["thumb"] == "iVBORw0KGgoAAAANSUhEUg=="
    bob.send({"type": "history", "room": "lobby", "ref": "h1"})
    page = answer(bob, "history", "h1")
    assert [m for m in page["messages"] if m.get("id") == live["id"]] == [live]
    late = LineClient(srv.port)
    replay = hello_v2(late, "dan")["replay"]
    assert [m for m in replay if m.get("id") == live["id"]] == [live]


def test_transfer_lines_that_do_not_fit_are_refused(files):
    srv, (ann, bob) = files()
    data = os.urandom(1000)
    ready = offer(ann, data)
    assert put(srv.port, dict(ready, token="not-the-token"), data)["code"] == p.FORBIDDEN
    assert put(srv.port, dict(ready, file="NoSuchFile"), data)["code"] == p.NO_SUCH_FILE
    over = put(srv.port, ready, data, offset=10)
    assert over["code"] == p.BAD_FRAME and over["offset"] == 0
    assert put(srv.port, ready, data)["type"] == "put_ok"
    assert put(srv.port, ready, data)["code"] == p.NO_SUCH_FILE          # finished: no second put
    assert get(srv.port, ready["file"], bob.session, offset=1001)[0]["code"] == p.BAD_FRAME
    # A put line on the chat connection is not a transfer.
    ann.send(p.put_frame(ready["file"], ready["token"]))
    assert ann.recv_type("error")["code"] == p.BAD_FRAME
    announced(bob, ready["file"])
    chat_works(ann, bob)


def test_an_offer_from_someone_who_may_not_speak_there_is_refused(files):
    srv, (ann, bob) = files()
    refused = offer(ann, b"x", room="elsewhere")
    assert refused["code"] == p.NOT_IN_ROOM
    assert offer(ann, b"x", to="nobody", ref="u2")["code"] == p.NO_SUCH_USER
    v1 = LineClient(srv.port)
    v1.hello("old")
    assert offer(v1, b"x", ref="u3")["code"] == p.UNKNOWN_TYPE


def test_a_file_goes_up_and_down_over_tls(make_server):
    srv = make_server(tls=True, rate_limit=0, upload_rate=0)
    from tests.test_tls import TlsLineClient
    ann, bob = TlsLineClient(srv.port, timeout=10), TlsLineClient(srv.port, timeout=10)
    hello_v2(ann, "ann")
    session = hello_v2(bob, "bob")["welcome"]["session"]
    data = os.urandom(8 * MB)
    ready = offer(ann, data)
    assert put(srv.port, ready, data, tls=True) == {"type": "put_ok", "file": ready["file"]}
    assert announced(bob, ready["file"])["file"]["sha256"] == sha(data)
    blob, body = get(srv.port, ready["file"], session, tls=True)
    assert blob["size"] == len(data) and sha(body) == sha(data)
    # A plain transfer line on the TLS port is told to use TLS, like a chat client.
    sock = dial(srv.port)
    sock.sendall(p.encode(p.get_frame(ready["file"], session)))
    assert read_line(sock)[0]["code"] == p.TLS_REQUIRED
    cut(sock)


def test_a_partial_upload_survives_a_restart_of_the_server(make_server, tmp_path):
    srv = make_server(rate_limit=0, upload_rate=0, db=str(tmp_path / "keep.db"))
    ann = LineClient(srv.port)
    session = hello_v2(ann, "ann")["welcome"]["session"]
    data = os.urandom(2 * MB)
    ready = offer(ann, data)
    assert put(srv.port, ready, data[:MB], shut=True)["offset"] == MB
    ann.close()
    srv.shutdown()
    srv = make_server(rate_limit=0, upload_rate=0, db=str(tmp_path / "keep.db"))
    ann = LineClient(srv.port)
    hello_v2(ann, "ann", resume=session)
    again = offer(ann, data)
    assert (again["file"], again["offset"]) == (ready["file"], MB)
    assert put(srv.port, again, data)["type"] == "put_ok"
    assert get(srv.port, ready["file"], session)[1] == data


def test_the_irc_and_text_doors_show_a_file_as_a_line(make_server):
    from tests.irctools import IrcClient
    from tests.test_text_listener import TextClient
    srv = make_server(rate_limit=0, upload_rate=0, irc_port=0, text_port=0)
    irc = IrcClient(srv.door_port("irc"))
    irc.register("ircy")
    irc.send("JOIN #lobby")
    irc.expect("366")                      # end of NAMES: in the channel
    nc = TextClient(srv.door_port("text"))
    nc.until(r"^In #lobby: ")
    ann = LineClient(srv.port)
    hello_v2(ann, "ann")
    data = os.urandom(1536)
    ready = offer(ann, data, "notes.pdf", mime="application/pdf")
    assert put(srv.port, ready, data)["type"] == "put_ok"
    line = f"[file] notes.pdf (1.5 KiB, application/pdf): fetch it in a Natter window (file {ready['file']})"
    msg = irc.expect("PRIVMSG")
    assert msg.params == ("#lobby", line) and msg.source.startswith("ann!")
    assert nc.until(r"\[file\]").endswith(f"<ann> {line}")
    for c in (irc, nc, ann):
        c.close()


def test_a_session_has_at_most_eight_transfers_at_once(files):
    from server.core.files import MAX_TRANSFERS_PER_SESSION
    srv, (ann, bob) = files()
    data = os.urandom(20 * MB)
    ready = offer(ann, data)
    assert put(srv.port, ready, data)["type"] == "put_ok"
    readers = []
    for _ in range(MAX_TRANSFERS_PER_SESSION):      # downloads that stop reading: they stay open
        sock = dial(srv.port)
        sock.sendall(p.encode(p.get_frame(ready["file"], bob.session)))
        assert read_line(sock)[0]["type"] == "blob"
        readers.append(sock)
    wait_until(lambda: len(srv.hub.chat.transfers.running()) == MAX_TRANSFERS_PER_SESSION, what="the downloads")
    blob, _ = get(srv.port, ready["file"], bob.session)
    assert blob["code"] == p.TOO_MANY_CONNECTIONS
    assert sha(get(srv.port, ready["file"], ann.session)[1]) == sha(data)     # another session is not held up
    for sock in readers:
        cut(sock)
    wait_until(lambda: transfers_done(srv), what="the cut downloads to end")
    assert sha(get(srv.port, ready["file"], bob.session)[1]) == sha(data)


def test_the_file_options(tmp_path, capsys):
    from server.config import from_args
    cfg = from_args(["--files-dir", str(tmp_path / "f"), "--max-file-size", "1000", "--files-quota", "5000",
                     "--upload-rate", "0"])
    assert (cfg.files_dir, cfg.max_file_size, cfg.files_quota, cfg.upload_rate) == (str(tmp_path / "f"), 1000, 5000, 0)
    d = from_args([])
    assert (d.files_dir, d.max_file_size, d.files_quota, d.upload_rate) == (None, 100 * 1024 ** 2, 10 * 1024 ** 3,
                                                                            20 * 1024 ** 2)
    with pytest.raises(SystemExit):
        from_args(["--max-file-size", "6000", "--files-quota", "5000"])
    assert "no file that size could be kept" in capsys.readouterr().err


def test_a_files_dir_of_its_own_is_used(make_server, tmp_path):
    srv = make_server(rate_limit=0, upload_rate=0, files_dir=str(tmp_path / "elsewhere"))
    ann = LineClient(srv.port)
    session = hello_v2(ann, "ann")["welcome"]["session"]
    ready = offer(ann, b"abc")
    assert put(srv.port, ready, b"abc")["type"] == "put_ok"
    assert os.listdir(tmp_path / "elsewhere") == [ready["file"]]
    assert get(srv.port, ready["file"], session)[1] == b"abc"


def test_files_the_table_does_not_know_are_deleted_at_start(make_server, tmp_path):
    srv = make_server(rate_limit=0, upload_rate=0, db=str(tmp_path / "keep.db"))
    ann = LineClient(srv.port)
    session = hello_v2(ann, "ann")["welcome"]["session"]
    ready = offer(ann, b"kept")
    assert put(srv.port, ready, b"kept")["type"] == "put_ok"
    folder = srv.hub.chat.blobs.directory
    for stray in ("left-by-a-crash", "half.part"):
        with open(os.path.join(folder, stray), "wb") as f:
            f.write(b"x")
    ann.close()
    srv.shutdown()
    srv = make_server(rate_limit=0, upload_rate=0, db=str(tmp_path / "keep.db"))
    assert os.listdir(folder) == [ready["file"]]
    assert get(srv.port, ready["file"], session)[1] == b"kept"


@pytest.mark.timeout(120)
def test_the_chat_is_not_held_up_while_a_file_goes_up_and_another_comes_down(files):
    """A large file never holds up the conversation: with a 50 MB upload and
    a 50 MB download running (the default upload cap), each message still
    reaches the other side in well under a second; the transfers are checked
    to be running when each message arrives, and to end byte for byte.
    (bench/files.py measures the p99 against no transfer.)"""
    srv, (ann, bob) = files(upload_rate=20 * 1024 * 1024)
    down = os.urandom(50 * MB)
    stored = offer(ann, down, "down.bin")
    assert put(srv.port, stored, down)["type"] == "put_ok"
    announced(bob, stored["file"])
    announced(ann, stored["file"])
    up = os.urandom(50 * MB)
    ready = offer(ann, up, "up.bin")
    results = {}
    threads = [threading.Thread(target=lambda: results.update(up=put(srv.port, ready, up)), daemon=True),
               threading.Thread(target=lambda: results.update(down=get(srv.port, stored["file"], bob.session)),
                                daemon=True)]
    for t in threads:
        t.start()
    wait_until(lambda: any(x.name == f"put-{ready['file']}" for x in threading.enumerate()), what="the put thread")
    latencies = []
    for i in range(200):
        if not threads[0].is_alive():
            break
        start = time.monotonic()
        chat_works(bob, ann, text=f"during the transfer {i}")
        if threads[0].is_alive():        # the upload was still going when the message had arrived
            latencies.append(time.monotonic() - start)
    for t in threads:
        t.join(60)
    assert results["up"] == {"type": "put_ok", "file": ready["file"]}
    blob, body = results["down"]
    assert blob["size"] == len(down) and sha(body) == sha(down)
    assert len(latencies) >= 5, f"only {len(latencies)} messages went while the upload ran"
    assert max(latencies) < 1.0, f"a message took {max(latencies):.3f} s during the transfers: {latencies}"
    print(f"{len(latencies)} messages during the transfers; slowest {max(latencies) * 1000:.1f} ms")
