"""Discovery and the doctor on a LAN the test builds itself (tests/netlab.py:
network namespaces, a bridge, veth pairs, RFC 5737 addresses, no route out):

- ``a`` 198.51.100.1 hosts rooms, ``b`` 198.51.100.2 is another computer of
  the same network, ``c`` 203.0.113.2 is on the same wire but another
  subnet, ``d`` 198.51.100.4 is a host whose answers are blackholed.

The real programs run inside (``python -m server``, ``python -m chatgui
--scan --json`` / ``--doctor``); skipped, with the reason printed, only where
``ip netns`` is not allowed."""
from __future__ import annotations

import json
import sys
import time

import pytest

from tests import netlab

pytestmark = pytest.mark.timeout(240)

HOSTS = {"a": "198.51.100.1/24", "b": "198.51.100.2/24", "c": "203.0.113.2/24", "d": "198.51.100.4/24"}
A = "198.51.100.1"


@pytest.fixture(scope="module")
def lan(tmp_path_factory):
    with netlab.lab(str(tmp_path_factory.mktemp("lab")), HOSTS) as the_lab:
        rooms = {}
        for name, host in (("Room A", "0.0.0.0"), ("Room A2", "0.0.0.0"), ("Local A", "127.0.0.1")):
            rooms[name] = the_lab.server("a", "--host", host, "--name", name)[1]
        the_lab.rooms = rooms
        yield the_lab


def names(found: list[dict]) -> dict:
    return {f["name"]: (f["host"], f["port"]) for f in found}


def test_a_room_is_found_from_another_computer_and_a_local_room_only_on_its_own(lan):
    r = lan.rooms
    assert names(lan.scan("b")) == {"Room A": (A, r["Room A"]), "Room A2": (A, r["Room A2"])}
    assert names(lan.scan("a")) == {"Room A": ("127.0.0.1", r["Room A"]), "Room A2": ("127.0.0.1", r["Room A2"]),
                                    "Local A": ("127.0.0.1", r["Local A"])}


def test_two_rooms_on_one_computer_both_answer_a_unicast_query_from_its_own_address(lan):
    out = lan.python("b", "-c", "import json; from chatgui.net import discovery as d; "
                                f"s, rooms, e = d.unicast_query({A!r}); "
                                "print(json.dumps([s, [r.as_json() for r in rooms]]))")
    status, rooms = json.loads(out.stdout)
    assert status == "answered" and names(rooms) == {"Room A": (A, lan.rooms["Room A"]),
                                                     "Room A2": (A, lan.rooms["Room A2"])}
    # Each reply came from the address asked (the relayed one too), so it
    # names where to connect.
    out = lan.python("b", "-c", "import socket, json; from server.discovery import codec; "
                                "s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM); s.settimeout(1); "
                                f"s.sendto(codec.encode_query('0a1b2c3d'), ({A!r}, 30000)); got = []\n"
                                "try:\n while True: d, src = s.recvfrom(600); got.append(src[0])\n"
                                "except socket.timeout: print(json.dumps(got))")
    assert json.loads(out.stdout) == [A, A]


def test_the_doctor_from_another_computer_on_a_room_open_to_its_own_computer_only(lan):
    d = lan.doctor("b", f"{A}:{lan.rooms['Local A']}")
    assert d["kind"] == "refused" and "open to that computer only" in d["advice"]
    d = lan.doctor("a", f"{A}:{lan.rooms['Local A']}")
    assert d["kind"] == "local_only" and "open to this computer only" in d["sentence"]
    d = lan.doctor("b", f"{A}:{lan.rooms['Room A']}")
    assert d["kind"] == "ok" and "discovery scan: 2 room(s) found, this one among them" in d["details"]


def test_not_found_across_subnets_and_the_doctor_says_different_networks(lan):
    assert lan.scan("c") == []
    d = lan.doctor("c", f"{A}:{lan.rooms['Room A']}")
    assert d["kind"] == "other_network" and "different networks" in d["sentence"]
    assert "203.0.113.0/24" in d["sentence"] and d["facts"]["route"] == "no_route"


def test_with_bridge_isolation_the_room_is_not_found_and_the_doctor_says_why(lan):
    lan.isolate("a")
    lan.isolate("b")
    try:
        lan.ip("b", "neigh", "flush", "all")        # what b learnt of a before
        assert lan.scan("b") == []
        d = lan.doctor("b", f"{A}:{lan.rooms['Room A']}")
    finally:
        lan.isolate("a", False)
        lan.isolate("b", False)
    assert d["kind"] == "isolated" and "keeps devices apart" in d["sentence"]
    assert "guest Wi-Fi" in d["sentence"] and "EHOSTUNREACH, error 113 on linux" in " ".join(d["details"])
    assert names(lan.scan("b"))                     # and back once isolation is off


def test_a_blackholed_host_gives_no_answer(lan):
    port = lan.server("d", "--host", "0.0.0.0", "--name", "Room D")[1]
    lan.ip("d", "route", "add", "blackhole", "198.51.100.2/32")     # d drops all it would send to b
    try:
        assert "Room D" not in names(lan.scan("b"))
        d = lan.doctor("b", f"198.51.100.4:{port}")
    finally:
        lan.ip("d", "route", "del", "blackhole", "198.51.100.2/32")
    assert d["kind"] == "no_answer" and "No answer from 198.51.100.4" in d["sentence"]
    assert "firewall" in d["sentence"] and d["facts"]["route"] == "same_network"
    assert names(lan.scan("b"))["Room D"] == ("198.51.100.4", port)


def test_a_name_that_nobody_can_look_up_is_the_name_service_s_fault(lan):
    d = lan.doctor("b", "room.example:30000")
    assert d["kind"] in ("name_lookup_down", "name_unknown") and "'room.example'" in d["sentence"]


HOSTER = """
import json, time
from chatgui.app import lan
from chatgui.app.hosting import HostedRoom
room = HostedRoom(0, lan=True, name=lan.hosted_name("alice")).start()
print(json.dumps({"t": time.time(), "port": room.port}), flush=True)
time.sleep(60)          # the lab stops it
"""

WATCHER = """
import json, time
from chatgui.net.discovery import ScanLoop
def post(event):
    what, payload = event
    if what == "found":
        print(json.dumps({"t": time.time(), "name": payload.room.name, "host": payload.host,
                          "port": payload.room.port}), flush=True)
    else:
        print(json.dumps({"t": time.time(), "done": len(payload.rooms)}), flush=True)
ScanLoop(post).start()
time.sleep(60)
"""


def test_a_hosted_room_is_found_by_the_other_computer_within_3_s(lan):
    watcher = netlab.Lines(lan.popen("b", [sys.executable, "-c", WATCHER]))
    while "done" not in json.loads(watcher.get(30)):        # one whole scan first: the steady state
        pass
    hoster = netlab.Lines(lan.popen("a", [sys.executable, "-c", HOSTER]))
    up = json.loads(hoster.get(30))
    deadline = time.monotonic() + 10
    while True:
        event = json.loads(watcher.get(max(0.1, deadline - time.monotonic())))
        if event.get("name") == "alice's room":
            break
    took = event["t"] - up["t"]
    print(f"the hosted room was found {took:.2f} s after it started")
    assert (event["host"], event["port"]) == (A, up["port"])
    assert took < 3.0, f"found {took:.2f} s after it started"


LISTEN = """
import json, select, socket
socks = {}
for address in ("0.0.0.0", "198.51.100.1", "198.51.100.255"):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    s.bind((address, 39999))
    socks[s] = address
print("ready", flush=True)
heard = {}
while True:
    ready, _, _ = select.select(list(socks), [], [], 3)
    if not ready:
        break
    for s in ready:
        data, _ = s.recvfrom(100)
        heard.setdefault(data.decode(), []).append(socks[s])
print(json.dumps({k: sorted(v) for k, v in heard.items()}), flush=True)
"""

SEND = """
import socket, time
s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
s.setsockopt(socket.SOL_SOCKET, socket.SO_BROADCAST, 1)
s.bind(("198.51.100.2", 0))
for dest in ("255.255.255.255", "198.51.100.255", "198.51.100.1"):
    s.sendto(dest.encode(), (dest, 39999))
    time.sleep(0.1)
"""


def test_on_linux_a_broadcast_is_heard_only_on_the_wildcard_or_the_broadcast_address(lan):
    """Why a LAN room's responder binds 0.0.0.0 and not its own address."""
    listener = netlab.Lines(lan.popen("a", [sys.executable, "-c", LISTEN]))
    assert listener.get(30).strip() == "ready"
    assert lan.python("b", "-c", SEND).returncode == 0
    heard = json.loads(listener.get(30))
    assert heard == {"255.255.255.255": ["0.0.0.0"], "198.51.100.255": ["0.0.0.0", "198.51.100.255"],
                     "198.51.100.1": ["198.51.100.1"]}
