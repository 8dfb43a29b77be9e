"""The connection doctor's classifier, without sockets: every error number
in Linux, macOS and Windows numbering, the order of the checks, and
sentences written for a person (the error numbers only in the details).
Also the connect form's decisions (chatgui.app.lan) and the controller's
calls into them."""
from __future__ import annotations

import errno
import socket
import sys

import pytest

from chatgui.app import doctor, lan
from chatgui.app.doctor import Facts, classify
from chatgui.app.settings import Settings
from chatgui.app.view import ConnectValues, LAN_LABEL, TLS_LABEL
from chatgui.net.discovery import Found, ScanResult
from server.discovery.codec import RoomInfo

# What each system calls each number, written out here (not read from the
# tables under test): (numbering, number, name, what the doctor should say
# on the same network).
CONNECT_ERRORS = [
    # Linux
    ("linux", 111, "ECONNREFUSED", "refused"), ("linux", 110, "ETIMEDOUT", "no_answer"),
    ("linux", 113, "EHOSTUNREACH", "isolated"), ("linux", 112, "EHOSTDOWN", "isolated"),
    ("linux", 101, "ENETUNREACH", "other_network"), ("linux", 100, "ENETDOWN", "offline"),
    ("linux", 99, "EADDRNOTAVAIL", "offline"), ("linux", 13, "EACCES", "blocked_here"),
    ("linux", 1, "EPERM", "blocked_here"), ("linux", 104, "ECONNRESET", "connect_failed"),
    ("linux", 103, "ECONNABORTED", "connect_failed"), ("linux", 102, "ENETRESET", "connect_failed"),
    ("linux", 105, "ENOBUFS", "connect_failed"), ("linux", 32, "EPIPE", "connect_failed"),
    ("linux", 22, "EINVAL", "connect_failed"), ("linux", 97, "EAFNOSUPPORT", "connect_failed"),
    ("linux", 98, "EADDRINUSE", "connect_failed"),
    # macOS
    ("darwin", 61, "ECONNREFUSED", "refused"), ("darwin", 60, "ETIMEDOUT", "no_answer"),
    ("darwin", 65, "EHOSTUNREACH", "isolated"), ("darwin", 64, "EHOSTDOWN", "isolated"),
    ("darwin", 51, "ENETUNREACH", "other_network"), ("darwin", 50, "ENETDOWN", "offline"),
    ("darwin", 49, "EADDRNOTAVAIL", "offline"), ("darwin", 13, "EACCES", "blocked_here"),
    ("darwin", 1, "EPERM", "blocked_here"), ("darwin", 54, "ECONNRESET", "connect_failed"),
    ("darwin", 53, "ECONNABORTED", "connect_failed"), ("darwin", 52, "ENETRESET", "connect_failed"),
    ("darwin", 55, "ENOBUFS", "connect_failed"), ("darwin", 32, "EPIPE", "connect_failed"),
    ("darwin", 22, "EINVAL", "connect_failed"), ("darwin", 47, "EAFNOSUPPORT", "connect_failed"),
    ("darwin", 48, "EADDRINUSE", "connect_failed"),
    # Windows: Winsock numbers, and the Win32 ones
    ("win32", 10061, "ECONNREFUSED", "refused"), ("win32", 10060, "ETIMEDOUT", "no_answer"),
    ("win32", 10065, "EHOSTUNREACH", "isolated"), ("win32", 10064, "EHOSTDOWN", "isolated"),
    ("win32", 10051, "ENETUNREACH", "other_network"), ("win32", 10050, "ENETDOWN", "offline"),
    ("win32", 10049, "EADDRNOTAVAIL", "offline"), ("win32", 10013, "EACCES", "blocked_here"),
    ("win32", 10054, "ECONNRESET", "connect_failed"), ("win32", 10053, "ECONNABORTED", "connect_failed"),
    ("win32", 10052, "ENETRESET", "connect_failed"), ("win32", 10055, "ENOBUFS", "connect_failed"),
    ("win32", 10022, "EINVAL", "connect_failed"), ("win32", 10047, "EAFNOSUPPORT", "connect_failed"),
    ("win32", 10048, "EADDRINUSE", "connect_failed"),
    ("win32", 1225, "ECONNREFUSED", "refused"), ("win32", 121, "ETIMEDOUT", "no_answer"),
    ("win32", 1231, "ENETUNREACH", "other_network"), ("win32", 1232, "EHOSTUNREACH", "isolated"),
    ("win32", 1236, "ECONNABORTED", "connect_failed"),
]

LOOKUP_ERRORS = [
    ("linux", -2, "EAI_NONAME", "name_unknown"), ("linux", -5, "EAI_NODATA", "name_unknown"),
    ("linux", -3, "EAI_AGAIN", "name_lookup_down"), ("linux", -4, "EAI_FAIL", "name_lookup_down"),
    ("linux", -11, "EAI_SYSTEM", "name_lookup_down"), ("linux", -10, "EAI_MEMORY", "name_lookup_down"),
    ("linux", -6, "EAI_FAMILY", "name_unknown"), ("linux", -8, "EAI_SERVICE", "name_unknown"),
    ("linux", -9, "EAI_ADDRFAMILY", "name_unknown"), ("linux", -1, "EAI_BADFLAGS", "name_unknown"),
    ("linux", -7, "EAI_SOCKTYPE", "name_unknown"),
    ("darwin", 8, "EAI_NONAME", "name_unknown"), ("darwin", 7, "EAI_NODATA", "name_unknown"),
    ("darwin", 2, "EAI_AGAIN", "name_lookup_down"), ("darwin", 4, "EAI_FAIL", "name_lookup_down"),
    ("darwin", 11, "EAI_SYSTEM", "name_lookup_down"), ("darwin", 6, "EAI_MEMORY", "name_lookup_down"),
    ("darwin", 5, "EAI_FAMILY", "name_unknown"), ("darwin", 9, "EAI_SERVICE", "name_unknown"),
    ("darwin", 1, "EAI_ADDRFAMILY", "name_unknown"), ("darwin", 3, "EAI_BADFLAGS", "name_unknown"),
    ("darwin", 10, "EAI_SOCKTYPE", "name_unknown"),
    ("win32", 11001, "EAI_NONAME", "name_unknown"), ("win32", 11004, "EAI_NODATA", "name_unknown"),
    ("win32", 11002, "EAI_AGAIN", "name_lookup_down"), ("win32", 11003, "EAI_FAIL", "name_lookup_down"),
    ("win32", 8, "EAI_MEMORY", "name_lookup_down"), ("win32", 10047, "EAI_FAMILY", "name_unknown"),
    ("win32", 10109, "EAI_SERVICE", "name_unknown"), ("win32", 10044, "EAI_SOCKTYPE", "name_unknown"),
    ("win32", 10022, "EAI_BADFLAGS", "name_unknown"),
]


def failed(number, platform="linux", route="same_network", **kw) -> Facts:
    return Facts(host="198.51.100.1", port=30000, platform=platform, addresses=["198.51.100.1"], route=route,
                 connected=False, connect_errno=number, networks=["198.51.100.0/24 (eth0)"], **kw)


def assert_for_a_person(d: doctor.Diagnosis) -> None:
    """Sentences name no error constant; the details do."""
    for text in (d.sentence, d.advice):
        assert "errno" not in text and not any(w.startswith(("E", "WSA")) and w[1:].isupper() and len(w) > 3
                                               for w in text.replace(",", " ").replace(".", " ").split()), text
    assert d.sentence.endswith((".", "?"))


def test_the_tables_name_every_number_the_tests_list_and_nothing_else():
    listed = {(p, n): name for p, n, name, _ in CONNECT_ERRORS}
    tables = {(p, n): name for p, names in doctor.ERRNO_NAMES.items() for n, name in names.items()}
    assert tables == listed
    listed = {(p, n): name for p, n, name, _ in LOOKUP_ERRORS}
    assert {(p, n): name for p, names in doctor.GAI_NAMES.items() for n, name in names.items()} == listed


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="checks the Linux numbering against Linux")
def test_the_linux_numbers_are_this_systems():
    for p, number, name, _ in CONNECT_ERRORS:
        if p == "linux":
            assert getattr(errno, name) == number, name
    for p, number, name, _ in LOOKUP_ERRORS:
        if p == "linux":
            assert getattr(socket, name) == number, name


@pytest.mark.parametrize("platform,number,name,kind", CONNECT_ERRORS)
def test_every_connect_error_on_every_system(platform, number, name, kind):
    d = classify(failed(number, platform))
    assert d.kind == kind and not d.ok
    assert_for_a_person(d)
    shown = "WSA" + name if platform == "win32" and number > 10000 else name
    detail = next(line for line in d.details if line.startswith("TCP "))
    assert f"error {number} on {platform}" in detail
    assert shown in detail or (platform == "win32" and number < 10000 and "ERROR_" in detail)


@pytest.mark.parametrize("platform,number,name,kind", LOOKUP_ERRORS)
def test_every_lookup_error_on_every_system(platform, number, name, kind):
    d = classify(Facts(host="room.example", port=30000, platform=platform, resolve_error=number))
    assert d.kind == kind and "room.example" in d.sentence
    assert_for_a_person(d)
    assert f"{name}, error {number} on {platform}" in d.details[0]


def test_the_route_decides_what_a_failure_means():
    assert classify(failed(110, route="other_network")).kind == "other_network"
    assert classify(failed(113, route="other_network")).kind == "other_network"
    assert classify(failed(None, route="no_route", timed_out=True)).kind == "other_network"
    assert classify(failed(None, route="same_network", timed_out=True)).kind == "no_answer"
    d = classify(failed(101, route="no_route", route_errno=101))
    assert "different networks" in d.sentence and "198.51.100.0/24" in d.sentence
    assert "VPN" in d.advice


def test_a_refusal_says_the_room_may_be_open_to_that_computer_only():
    d = classify(failed(111))
    assert "open to that computer only" in d.advice and f"\"{LAN_LABEL}\"" in d.advice
    d = classify(failed(111, route="this_computer", local_room=True))
    assert d.kind == "local_only" and "127.0.0.1" in d.advice and "this computer only" in d.sentence
    assert "127.0.0.1:30000: a room answers" in d.details
    d = classify(Facts("127.0.0.1", 4000, addresses=["127.0.0.1"], route="loopback", connected=False,
                       connect_errno=111))
    assert d.kind == "refused" and "No room runs on this computer at port 4000" in d.sentence


def test_on_a_mac_the_local_network_permission_is_named():
    assert "Privacy & Security > Local Network" in classify(failed(65, "darwin")).advice
    assert "Local Network" not in classify(failed(113, "linux")).advice
    assert "Local Network" in classify(connected(answer="welcome", discovery_seen=False, platform="darwin")).advice


def test_isolation_and_silence_are_told_apart():
    assert "keeps devices apart" in classify(failed(113)).sentence
    assert "firewall" in classify(failed(110)).sentence


def connected(**kw) -> Facts:
    return Facts(host="198.51.100.1", port=30000, addresses=["198.51.100.1"], route="same_network",
                 connected=True, **kw)


@pytest.mark.parametrize("facts,kind,words", [
    (connected(answer="error", error_code="server_full"), "room_full", "is full"),
    (connected(answer="error", error_code="too_many_connections"), "room_full", "more connections"),
    (connected(tls=True, tls_failed="plain_server"), "tls_client_only", f"Untick \"{TLS_LABEL}\""),
    (connected(tls=True, tls_failed="other", tls_message="wrong version"), "tls_failed", "handshake failed"),
    (connected(answer="tls_required", error_code="tls_required"), "tls_server_only", f"Tick \"{TLS_LABEL}\""),
    (connected(tls=True, fingerprint="B" * 4, pinned="A" * 4), "cert_changed", "has changed"),
    (connected(answer="error", error_code="auth_failed", password_given=True), "password_wrong", "wrong"),
    (connected(answer="error", error_code="auth_failed"), "password_needed", "needs a password"),
    (connected(answer="error", error_code="bad_nick"), "bad_nick", "nickname"),
    (connected(answer="other", first_bytes="SSH-2.0-OpenSSH"), "not_natter", "not a chat room"),
    (connected(answer="silent"), "not_natter", "said nothing"),
    (connected(answer="closed"), "not_natter", "hung up"),
    (connected(answer="welcome", discovery_seen=True), "ok", "you can join it"),
    (connected(answer="error", error_code="nick_taken", discovery_seen=True), "ok", "nickname is in use"),
    (connected(answer="welcome", discovery_seen=False), "discovery_blocked", "discovery does not work"),
    (connected(tls=True, answer="unverified", fingerprint="AB12"), "ok_unverified", "nothing was sent to it"),
])
def test_what_answered_in_order(facts, kind, words):
    d = classify(facts)
    assert d.kind == kind and words in d.text(), d.text()
    assert d.ok is (kind in ("ok", "discovery_blocked", "ok_unverified"))
    assert_for_a_person(d)


def test_a_full_room_comes_before_everything_else_it_said():
    assert classify(connected(tls=True, tls_failed="plain_server", answer="error",
                              error_code="server_full")).kind == "room_full"


def test_discovery_that_answers_directly_but_not_by_broadcast_names_the_network():
    d = classify(connected(answer="welcome", discovery_seen=False, discovery_unicast="answered"))
    assert "does not pass broadcasts" in d.sentence and "198.51.100.1, port 30000" in d.advice
    assert "discovery query to 198.51.100.1: answered" in d.details


def test_a_stranger_s_words_stay_in_the_details():
    d = classify(connected(answer="other", first_bytes="HTTP/1.1 400"))
    assert "HTTP" not in d.sentence and any("HTTP/1.1 400" in line for line in d.details)


def test_the_json_form_has_the_sentences_and_the_details():
    d = classify(failed(111))
    out = d.as_json()
    assert out["kind"] == "refused" and out["sentence"] == d.sentence and out["details"] == list(d.details)
    assert Facts("h", 1).as_json()["host"] == "h"


# -- the connect form's decisions ----------------------------------------------------------

def found(name="alice's room", host="198.51.100.1", port=30000, tls=False, password=False, rid="r1", users=2):
    return Found(host, RoomInfo(rid, name, port, tls, "AB12 " * 15 + "AB12" if tls else None, users, password, 1),
                 "0a1b2c3d")


def test_the_list_adds_rooms_as_they_answer_and_each_scan_replaces_it():
    m = lan.LanList()
    assert m.status().startswith("Looking for rooms")
    assert m.update(("found", found()))
    assert [r.name for r in m.rows()] == ["alice's room"]
    assert not m.update(("found", found()))                 # the same again: nothing to redraw
    assert m.update(("done", ScanResult(rooms=[found(name="bob", rid="r2")], sent=["x"])))
    assert [r.name for r in m.rows()] == ["bob"] and m.status().startswith("1 room on your network")
    assert m.update(("done", ScanResult(sent=["x"])))       # a stopped room is gone after the next scan
    assert m.rows() == [] and m.status().startswith("No rooms found")
    m.update(("done", ScanResult(errors=[("0.0.0.0", 101, "Network is unreachable")])))
    assert "Network is unreachable" in m.status()


def test_rows_show_host_people_and_locks_safely():
    m = lan.LanList()
    m.update(("found", found(name="evil\u202e\x1b[2Jname", tls=True, password=True)))
    m.update(("found", found(name="here", host="127.0.0.1", rid="r2")))
    rows = {r.id: r for r in m.rows()}
    assert "\x1b" not in rows["r1"].name and "\u202e" not in rows["r1"].name
    assert rows["r1"].locks == "TLS · password" and rows["r1"].people == "2"
    assert rows["r2"].host == "this computer" and rows["r2"].locks == ""
    assert lan.LanList(astral_ok=True).rows() == []
    m2 = lan.LanList(astral_ok=True)
    m2.update(("found", found(tls=True)))
    assert m2.rows()[0].locks == "\U0001F512 TLS"


def test_a_double_click_fills_the_form_and_joins_or_asks_for_the_password():
    m = lan.LanList()
    m.update(("found", found(tls=True)))
    m.update(("found", found(name="maths", password=True, rid="r2", port=4000)))
    form = ConnectValues(host="10.0.0.9", port="1", nick="bob", host_room=True)
    values, ask = m.join("r1", form)
    assert ask is None and (values.host, values.port, values.tls, values.host_room, values.nick) == \
        ("198.51.100.1", "30000", True, False, "bob")
    values, ask = m.join("r2", form)
    assert values.port == "4000" and "maths needs a password" in ask
    values, ask = m.join("r2", ConnectValues(nick="bob", password="s3cret"))
    assert ask is None and values.password == "s3cret"
    assert m.join("gone", form) == (None, None)


def test_recent_rooms_are_kept_newest_first_without_repeats():
    s = Settings()
    for host in ["a", "b", "a", "::1"]:
        lan.remember_recent(s, host, 30000)
    assert s.recent == ["[::1]:30000", "a:30000", "b:30000"]
    for i in range(20):
        lan.remember_recent(s, f"h{i}", 1)
    assert len(s.recent) == lan.MAX_RECENT and s.recent[0] == "h19:1"


def test_the_doctor_runs_on_its_own_thread_and_posts_its_verdict():
    import queue
    import threading
    q = queue.Queue()
    seen = []

    def fake(host, port, **kw):
        seen.append((threading.current_thread().name, host, port, kw))
        return classify(failed(111))
    lan.start_doctor(q.put, "198.51.100.1", 30000, tls=True, nick="bob", password="", diagnose=fake).join(5)
    what, verdict = q.get(timeout=1)
    assert what == "doctor" and verdict.kind == "refused"
    assert seen == [("doctor", "198.51.100.1", 30000, {"tls": True, "nick": "bob", "password": None})]

    def broken(host, port, **kw):
        raise RuntimeError("bug")
    lan.start_doctor(q.put, "h", 1, diagnose=broken).join(5)
    assert q.get(timeout=1)[1].kind == "doctor_failed"


def test_a_failed_join_asks_the_view_for_the_doctor_only_for_connection_failures():
    from tests.fakes import FakeView
    view = FakeView()
    params = dict(host="198.51.100.1", port=30000, nick="bob", password=None, tls=False, accept=None)
    lan.offer_doctor(view, params, "refused")
    lan.offer_doctor(view, params, "auth_failed")           # the message says it all
    lan.offer_doctor(view, None, "refused")
    lan.offer_doctor(object(), params, "refused")           # a view without a doctor
    assert view.doctor_runs == [("198.51.100.1", 30000, False, "bob", None)]


def test_the_controller_runs_the_doctor_after_a_failed_join_and_remembers_recent_rooms():
    from chatgui.app.controller import Controller
    from chatgui.net import events as ev
    from tests.fakes import FakeClient, FakeRoom, FakeView
    view = FakeView()
    c = Controller(view, Settings(), client_factory=FakeClient, host_factory=FakeRoom, save_settings=lambda s: True)
    c.begin()
    c.connect(ConnectValues(host="198.51.100.1", port="4000", nick="bob"))
    assert c.settings.recent == ["198.51.100.1:4000"]
    c.handle(ev.ConnectFailed("refused", "Nothing accepted the connection.", None))
    assert view.screen == "connect" and view.doctor_runs == [("198.51.100.1", 4000, False, "bob", None)]
    c.connect(ConnectValues(port="4001", nick="alice", host_room=True, host_lan=True))
    c.shutdown(timeout=5)
    room = FakeRoom.started[-1]
    assert room.name == "alice's room" and c.settings.recent == ["198.51.100.1:4000"]   # hosting is not recent
