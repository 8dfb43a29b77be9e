"""Discovery and the connection doctor over real loopback sockets: rooms
found (one, two on one computer by broadcast and by unicast, a stopped one
gone), junk and floods ignored, the server's flags, the real programs'
``--scan --json`` and ``--doctor``, and the doctor's verdict on real rooms
(a working one, a wrong password, a full room, encryption on one side,
a changed certificate, something that is not a room, discovery off); the
name of a room without --name (its host name), the scanner's targets and its
three tries, and a room joined from the list whose certificate changed.

Every test uses a UDP port of its own and scans loopback only."""
from __future__ import annotations

import io
import json
import logging
import os
import socket
import subprocess
import sys
import threading

import pytest

from chatgui.net import discovery, probes
from chatgui.net.pins import PinStore
from server import config as config_mod
from server.discovery import codec
from tests.netclient import LineClient
from tests.servertools import wait_until

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


def free_udp_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def free_tcp_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def dport():
    return free_udp_port()


@pytest.fixture
def room(make_server, dport):
    """room(**config) -> a server answering discovery on this test's port."""
    def make(**kw):
        kw.setdefault("rate_limit", 0)
        return make_server(discovery=True, discovery_port=dport, **kw)
    return make


def scan(dport):
    return discovery.scan(dport, interfaces=[discovery.LOOPBACK])


def asker(timeout=0.5) -> socket.socket:
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
    s.bind(("127.0.0.1", 0))
    s.settimeout(timeout)
    return s


def replies(sock) -> list:
    out = []
    try:
        while True:
            out.append(sock.recvfrom(1024))
    except socket.timeout:
        return out


# -- found -------------------------------------------------------------------------------

def test_one_room_is_found_with_what_its_reply_says(room):
    srv = room(name="Maths 4B", password="pw")
    guest = LineClient(srv.port)
    guest.hello("guest", password="pw")
    try:
        wait_until(lambda: len(srv.hub.chat.nicks) == 1, what="the guest to be in")
        (found,) = scan(srv.config.discovery_port).rooms
    finally:
        guest.close()
    assert found.host == "127.0.0.1" and found.room == codec.RoomInfo(
        id=srv.id, name="Maths 4B", port=srv.port, tls=False, fp=None, users=1, password=True, rooms=1)
    out = found.as_json()
    assert out["host"] == "127.0.0.1" and out["t"] == "room" and out["name"] == "Maths 4B"


def test_two_rooms_on_one_computer_both_answer_a_broadcast_and_a_unicast_query(room, dport):
    a, b = room(name="first"), room(name="second")
    assert {f.room.id for f in scan(dport).rooms} == {a.id, b.id}
    for target in ("127.0.0.1", "127.255.255.255"):
        with asker() as s:
            s.sendto(codec.encode_query("0a1b2c3d"), (target, dport))
            got = {codec.parse_reply(data).room.name for data, _ in replies(s)}
        assert got == {"first", "second"}, target
    status, rooms, _ = discovery.unicast_query("127.0.0.1", dport)
    assert status == "answered" and {f.room.id for f in rooms} == {a.id, b.id}


def test_a_room_on_this_computer_only_is_found_here_on_loopback(room, dport):
    srv = room(name="here only")
    assert srv.discovery.bound == [("127.0.0.1", dport), ("127.255.255.255", dport)]
    assert [f.host for f in scan(dport).rooms] == ["127.0.0.1"]
    assert "Discovery: answering scanners on UDP port %d (this computer only)" % dport in srv.describe()


def test_an_encrypted_room_gives_its_fingerprint(room, dport):
    srv = room(tls=True)
    (found,) = scan(dport).rooms
    assert found.room.tls and found.room.fp == srv.fingerprint


def test_a_stopped_room_is_gone_from_the_next_scan(room, dport):
    a, b = room(name="stays"), room(name="goes")
    assert len(scan(dport).rooms) == 2
    b.shutdown()
    assert [f.room.name for f in scan(dport).rooms] == ["stays"]
    assert discovery.unicast_query("127.0.0.1", dport)[1][0].room.name == "stays"


def test_a_room_without_discovery_is_not_found(make_server, dport):
    srv = make_server(discovery=False, discovery_port=dport)
    assert srv.discovery is None and scan(dport).rooms == []
    assert discovery.unicast_query("127.0.0.1", dport)[0] == "refused"


def test_a_taken_port_costs_discovery_not_the_room(make_server, dport, caplog):
    blocker = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)      # no SO_REUSEADDR: nobody shares
    blocker.bind(("0.0.0.0", dport))
    try:
        with caplog.at_level(logging.WARNING, logger="natter.server"):
            srv = make_server(discovery=True, discovery_port=dport)
        assert "Discovery: off (cannot listen on UDP port" in srv.describe()
        assert any("joining by address still works" in r.getMessage() for r in caplog.records)
        c = LineClient(srv.port)
        assert c.hello("still")["type"] == "welcome"
        c.close()
    finally:
        blocker.close()


# -- junk and floods ------------------------------------------------------------------------

JUNK = [b"", b"x", b"NATTER1 ", codec.encode_query("0a1b2c3d")[:127], codec.encode_query("0a1b2c3d") + b" " * 400,
        b"NATTER2 " + codec.encode_query("0a1b2c3d")[8:], b"NATTER1 {not json" + b" " * 120,
        b"NATTER1 [1,2]".ljust(128), b'NATTER1 {"t":"q","nonce":"zzzzzzzz"}'.ljust(128),
        b'NATTER1 {"t":"q","nonce":NaN}'.ljust(128), b'NATTER1 {"t":"room"}'.ljust(128),
        codec.encode_reply("0a1b2c3d", codec.RoomInfo("x", "fake", 1, False, None, 0, False, 1)),
        b'NATTER1 {"t":"q","nonce":"0a1b2c3d"}'.ljust(128).replace(b" ", b"\xff", 3), bytes(range(256)) * 2]


def test_junk_datagrams_get_no_answer_and_no_log_lines(room, dport, caplog):
    srv = room()
    with caplog.at_level(logging.DEBUG, logger="natter.server"), asker(timeout=0.3) as s:
        for round_ in range(1, 21):
            for junk in JUNK:
                s.sendto(junk, ("127.0.0.1", dport))
            # A round at a time: a loaded machine could overflow the socket's buffer.
            wait_until(lambda: srv.discovery.responder.malformed == round_ * len(JUNK), what="the junk counted")
        assert replies(s) == []
        s.sendto(codec.encode_query("0a1b2c3d"), ("127.0.0.1", dport))
        (data, _), = replies(s)
    assert codec.parse_reply(data).room.id == srv.id
    assert not [r for r in caplog.records if "discovery" in r.getMessage()]     # the summary waits a minute


def test_a_flood_of_queries_from_one_address_is_cut_to_the_rate_limit(room, dport):
    srv = room()
    with asker(timeout=0.3) as s:
        for i in range(100):
            s.sendto(codec.encode_query(f"{i:08x}"), ("127.255.255.255", dport))
        got = replies(s)
    assert 10 <= len(got) <= 12, len(got)               # the burst, and what refilled meanwhile
    assert srv.discovery.responder.limited >= 88


# -- the server's flags and the real programs -----------------------------------------------------

def test_the_server_flags_for_discovery():
    cfg = config_mod.from_args([])
    assert (cfg.discovery, cfg.discovery_port, cfg.name) == (True, 30000, None)
    cfg = config_mod.from_args(["--no-discovery", "--discovery-port", "4000", "--name", " Maths\x00 4B\n"])
    assert (cfg.discovery, cfg.discovery_port, cfg.name) == (False, 4000, "Maths 4B")
    for bad in (["--discovery-port", "0"], ["--discovery-port", "65536"], ["--name", "\x00\u200b"]):
        with pytest.raises(SystemExit) as e:
            config_mod.from_args(bad)
        assert e.value.code == 2


def _env(dport, tmp_path):
    return dict(os.environ, NATTER_HOME=str(tmp_path / "cli-home"), NATTER_DISCOVERY_PORT=str(dport),
                NATTER_DISCOVERY_SCOPE="local")


@pytest.mark.timeout(60)
def test_the_real_server_is_found_by_the_real_client_scan_until_it_stops(dport, tmp_path, monkeypatch):
    from chatgui import netcheck
    monkeypatch.setenv("NATTER_DISCOVERY_PORT", str(dport))
    server = subprocess.Popen([sys.executable, "-m", "server", "--port", "0", "--db", str(tmp_path / "h.db"),
                               "--discovery-port", str(dport), "--name", "Staff room"],
                              cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True)
    try:
        first, second = server.stdout.readline(), server.stdout.readline()
        assert "listening on 127.0.0.1:" in first and f"Discovery: answering scanners on UDP port {dport}" in second
        port = int(first.split("listening on 127.0.0.1:")[1].split()[0])
        out = subprocess.run([sys.executable, "-m", "chatgui", "--scan", "--json"], cwd=ROOT,
                             env=_env(dport, tmp_path), capture_output=True, text=True, timeout=30)
        assert out.returncode == 0, out.stderr
        (found,) = json.loads(out.stdout)
        assert (found["name"], found["port"], found["host"], found["users"]) == ("Staff room", port, "127.0.0.1", 0)
        assert set(found) == {"t", "nonce", "id", "name", "port", "tls", "fp", "users", "password", "rooms", "host"}
        text = io.StringIO()
        assert netcheck.scan_command(False, out=text) == 0
        assert "Rooms on your network (1):" in text.getvalue()
        assert f"Staff room  127.0.0.1:{port}  0 people" in text.getvalue()
    finally:
        server.terminate()
        server.wait(10)
    text = io.StringIO()
    netcheck.scan_command(True, out=text)
    assert json.loads(text.getvalue()) == []


def test_the_real_doctor_command_says_why_in_words_or_json(dport, tmp_path, capsys):
    from chatgui import netcheck
    port = free_tcp_port()
    out = subprocess.run([sys.executable, "-m", "chatgui", "--doctor", f"127.0.0.1:{port}", "--json"], cwd=ROOT,
                         env=_env(dport, tmp_path), capture_output=True, text=True, timeout=30)
    assert out.returncode == 1, out.stderr
    verdict = json.loads(out.stdout)
    assert verdict["kind"] == "refused" and verdict["facts"]["connect_errno"] == 111 and not verdict["ok"]
    text = io.StringIO()
    assert netcheck.doctor_command(f"127.0.0.1:{port}", False, port=None, nick=None, password=None, tls=False,
                                   out=text) == 1
    assert text.getvalue().startswith(f"No room runs on this computer at port {port}.")
    assert "ECONNREFUSED, error 111 on linux" in text.getvalue().split("Details:")[1]
    assert netcheck.doctor_command("127.0.0.1:99999", False, port=None, nick=None, password=None,
                                   tls=False) == 2
    assert "the port must be a number from 1 to 65535" in capsys.readouterr().err


def test_addresses_for_the_doctor():
    from chatgui.netcheck import split_address
    assert split_address("192.0.2.7", 30000) == ("192.0.2.7", 30000)
    assert split_address(" room.example:4000 ", 1) == ("room.example", 4000)
    assert split_address("[::1]:5", 1) == ("::1", 5) and split_address("fe80::1", 7) == ("fe80::1", 7)
    for bad in ("", ":5", "h:x", "h:0", "[::1", "[::1]5"):
        with pytest.raises(ValueError):
            split_address(bad, 1)


# -- the doctor on real rooms -------------------------------------------------------------------------

def doctor(port, **kw):
    kw.setdefault("scan", False)
    kw.setdefault("connect_timeout", 3.0)
    return probes.diagnose("127.0.0.1", port, **kw)


def test_the_doctor_on_a_room_that_works_leaves_it_at_once(room, connect):
    srv = room()
    watcher = connect("watcher", srv=srv)
    d = doctor(srv.port, scan=True, discovery_port=srv.config.discovery_port)
    assert d.kind == "ok" and d.ok and "you can join it" in d.sentence
    assert watcher.recv_type("joined")["nick"] == probes.DOCTOR_NICK
    assert watcher.recv_type("left")["nick"] == probes.DOCTOR_NICK
    assert "discovery scan: 1 room(s) found, this one among them" in d.details
    assert doctor(srv.port, nick="watcher").text().endswith("(your nickname is in use there: pick another).")


def test_the_doctor_says_when_discovery_does_not_find_a_room_that_works(make_server, dport):
    srv = make_server(discovery=False)
    d = doctor(srv.port, scan=True, discovery_port=dport)
    assert d.kind == "discovery_blocked" and d.ok
    assert f"Join it by its address, 127.0.0.1, port {srv.port}" in d.advice


def test_the_doctor_on_passwords(room):
    srv = room(password="right")
    assert doctor(srv.port, password="wrong").kind == "password_wrong"
    assert doctor(srv.port).kind == "password_needed"
    assert doctor(srv.port, password="right").kind == "ok"


def test_the_doctor_on_a_full_room(room):
    srv = room(max_clients=1)
    first = LineClient(srv.port)
    first.hello("first")
    try:
        d = doctor(srv.port)
    finally:
        first.close()
    assert d.kind == "room_full" and "is full" in d.sentence


def test_the_doctor_on_encryption_on_one_side_only(room):
    plain, secure = room(), room(tls=True)
    assert doctor(plain.port, tls=True).kind == "tls_client_only"
    d = doctor(secure.port)
    assert d.kind == "tls_server_only" and "Tick" in d.advice


def test_the_doctor_on_a_changed_certificate_sends_nothing(room, connect, tmp_path):
    srv = room(tls=True)
    pins = PinStore(str(tmp_path / "pins.json"))
    pins.pin("127.0.0.1", srv.port, " ".join(["AAAA"] * 16))
    d = doctor(srv.port, tls=True, pins=pins, password="secret")
    assert d.kind == "cert_changed" and srv.fingerprint in d.sentence and "AAAA AAAA" in d.sentence
    assert not srv.hub.chat.nicks                                   # no hello reached it
    pins.replace("127.0.0.1", srv.port, srv.fingerprint)
    assert doctor(srv.port, tls=True, pins=pins).kind == "ok"
    for password in ("secret", None):
        first = doctor(srv.port, tls=True, pins=PinStore(str(tmp_path / "none.json")), password=password)
        assert first.kind == "ok_unverified" and srv.fingerprint in first.sentence
    assert not srv.hub.chat.nicks                                   # no hello reached it either


def _stranger(reply: bytes | None):
    """A TCP server that is not a room: it says ``reply`` (or nothing) and waits."""
    listener = socket.create_server(("127.0.0.1", 0))
    conns = []

    def serve():
        while True:
            try:
                c, _ = listener.accept()
            except OSError:
                return
            conns.append(c)
            if reply is not None:
                c.sendall(reply)
    threading.Thread(target=serve, name="test-stranger", daemon=True).start()
    return listener, conns


@pytest.mark.parametrize("banner,answer", [(b"SSH-2.0-OpenSSH_9.2\r\n", "other"),
                                           (b"HTTP/1.1 400 Bad Request\r\n\r\n", "other"), (None, "silent")])
def test_the_doctor_on_something_that_is_not_a_room(banner, answer):
    listener, conns = _stranger(banner)
    try:
        facts = probes.gather("127.0.0.1", listener.getsockname()[1], scan=False, answer_timeout=1.0)
    finally:
        listener.close()
        for c in conns:
            c.close()
    d = probes.classify(facts)
    assert facts.answer == answer and d.kind == "not_natter" and "not a chat room" in d.sentence


def test_the_doctor_on_a_port_where_nothing_listens():
    port = free_tcp_port()
    d = doctor(port)
    assert d.kind == "refused" and f"No room runs on this computer at port {port}" in d.sentence


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the Linux ioctls and the ip command")
def test_the_interfaces_by_ioctl_are_those_ip_reports():
    by_ioctl = discovery._by_ioctl(discovery._LINUX_IOCTLS)
    by_ip = discovery._by_ip_command()
    assert by_ioctl and set(by_ioctl) <= set(by_ip)
    assert {i.name for i in by_ioctl} == {i.name for i in by_ip}
    assert discovery.ipv4_interfaces() == by_ioctl
    lo = next(i for i in by_ioctl if i.loopback)
    assert (lo.address, lo.netmask, str(lo.network)) == ("127.0.0.1", "255.0.0.0", "127.0.0.0/8")


# -- the server's name, the scanner's targets and tries (issue 14) ------------------------

def test_a_room_without_a_name_is_called_after_its_computer(room, dport, monkeypatch):
    room()                                  # no --name: the host name
    (found,) = scan(dport).rooms
    assert found.room.name == codec.clean_name(socket.gethostname()) and found.room.name
    monkeypatch.setattr(socket, "gethostname", lambda: "maths-lab-07")
    named = room()
    assert {f.room.id: f.room.name for f in scan(dport).rooms}[named.id] == "maths-lab-07"
    monkeypatch.setattr(socket, "gethostname", lambda: "")
    nameless = room()
    assert {f.room.id: f.room.name for f in scan(dport).rooms}[nameless.id] == "Natter"


def test_the_scanner_asks_every_broadcast_of_every_interface_and_loopback():
    itfs = [discovery.Interface("eth0", "192.0.2.10", "255.255.255.0", "192.0.2.255"),
            discovery.Interface("tun0", "198.51.100.7", "255.255.255.255", None),   # no broadcast
            discovery.LOOPBACK]
    assert discovery._targets(itfs) == [
        ("192.0.2.10", ["255.255.255.255", "192.0.2.255"]),
        ("198.51.100.7", ["255.255.255.255"]),
        ("127.0.0.1", ["127.0.0.1", "127.255.255.255"])]
    assert discovery._targets([]) == [("0.0.0.0", ["255.255.255.255", "127.0.0.1"])]


def test_the_scanner_sends_three_tries_over_about_a_second(dport):
    """Counted on two sockets of the test's own, bound where a room on
    loopback listens (127.0.0.1 and the loopback broadcast)."""
    import time
    listeners = []
    for address in ("127.0.0.1", "127.255.255.255"):
        s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        s.bind((address, dport))
        s.settimeout(0.1)
        listeners.append(s)
    heard = {s.getsockname()[0]: [] for s in listeners}
    done = threading.Event()

    def listen(s):
        while not done.is_set():
            try:
                data, _ = s.recvfrom(1024)
            except socket.timeout:
                continue
            heard[s.getsockname()[0]].append((time.monotonic(), codec.parse_query(data)))
    threads = [threading.Thread(target=listen, args=(s,), name="test-listener") for s in listeners]
    for t in threads:
        t.start()
    try:
        start = time.monotonic()
        result = discovery.scan(dport, interfaces=[discovery.LOOPBACK])
        end = time.monotonic()
        wait_until(lambda: all(len(h) >= 3 for h in heard.values()), what="three queries at each address")
    finally:
        done.set()
        for t in threads:
            t.join(5)
        for s in listeners:
            s.close()
    assert result.sent == ["127.0.0.1 -> 127.0.0.1", "127.0.0.1 -> 127.255.255.255"]
    assert end - start >= 1.0                           # the scan listens for about a second
    for address, got in heard.items():
        assert len(got) == 3, address
        assert all(q is not None for _, q in got) and len({q.nonce for _, q in got}) == 1
        # The tries are spread over the scan (sends are never early: at 0, 0.34 and 0.69 s).
        times = [t - start for t, _ in got]
        assert times[1] >= 0.3 and times[2] >= 0.6 and times[2] <= end - start + 0.5, times


# -- a room from the list whose certificate changed -------------------------------------

def test_a_room_joined_from_the_list_with_a_changed_certificate_is_refused(room, make_server, dport, tmp_path):
    """A discovery reply is a hint, not trust: a double-click on an
    encrypted room whose certificate is not the one pinned for it stops
    before the hello, as a join by address does."""
    from chatgui.app.controller import Controller
    from chatgui.app.lan import LanList
    from chatgui.app.settings import Settings
    from chatgui.app.view import ConnectValues
    from chatgui.net import events as ev
    from server import tls
    from tests.fakes import FakeView
    old = make_server(tls=True, rate_limit=0)
    port, pinned = old.port, old.fingerprint
    old.shutdown()
    PinStore().pin("127.0.0.1", port, pinned)
    cert, key = tls.ensure_certificate(str(tmp_path / "other"))
    srv = room(tls=True, port=port, cert=cert, key=key, password="pw")
    assert srv.fingerprint != pinned

    def join(values):
        view = FakeView()
        c = Controller(view, Settings(nick="bob"), save_settings=lambda s: True, identity=None)
        c.begin()
        c.connect(values)
        events = c.events
        try:
            while True:
                e = events.get(timeout=10)
                c.handle(e)
                if isinstance(e, ev.ConnectFailed):
                    return e, view
        finally:
            c.shutdown(timeout=5)

    lan_list = LanList()
    for f in scan(dport).rooms:
        lan_list.update(("found", f))
    values, ask = lan_list.join(srv.id, ConnectValues(nick="bob", password="pw"))
    assert ask is None and (values.host, values.port, values.tls) == ("127.0.0.1", str(port), True)
    failed, view = join(values)
    assert failed.kind == "tls_changed" and failed.retry_in is None
    assert failed.fingerprint == srv.fingerprint and failed.pinned == pinned
    assert view.screen == "connect" and "changed" in view.form[1] and view.trust == srv.fingerprint
    assert not srv.hub.chat.nicks                               # no hello reached it
    assert PinStore().get("127.0.0.1", port) == pinned          # nor was the new one pinned
    by_address, _ = join(ConnectValues(host="127.0.0.1", port=str(port), nick="bob", password="pw", tls=True))
    assert (by_address.kind, by_address.message) == (failed.kind, failed.message)
