"""The discovery format and the responder's decisions, without sockets:
sizes, fields, junk of every kind (hypothesis), rate limits, the relay of
unicast queries between the rooms of one computer, and a log that junk
cannot flood."""
from __future__ import annotations

import json

from hypothesis import given, settings, strategies as st

from server.discovery import codec
from server.discovery.responder import LOG_EVERY, LOOPBACK_BROADCAST, Responder, TokenBuckets

FP = " ".join(["3F2A"] * 16)
ROOM = codec.RoomInfo(id="7d3c2b1a-0000-4000-8000-000000000001", name="alice's room", port=30000, tls=True,
                      fp=FP, users=0, password=True, rooms=0)
DP = 30000


class Clock:
    def __init__(self):
        self.now = 1000.0

    def __call__(self):
        return self.now


def responder(chat_host="0.0.0.0", room=ROOM, **kw) -> tuple[Responder, Clock]:
    clock = Clock()
    return Responder(room, lambda: (3, 1), chat_host=chat_host, port=DP, clock=clock, **kw), clock


# -- the format -----------------------------------------------------------------------

def test_a_query_is_the_magic_and_json_padded_to_128_bytes():
    data = codec.encode_query("0a1b2c3d")
    assert len(data) == 128 and data.startswith(b"NATTER1 {")
    assert json.loads(data[8:]) == {"t": "q", "nonce": "0a1b2c3d"}
    assert codec.parse_query(data) == codec.Query("0a1b2c3d")


def test_only_queries_of_128_to_512_bytes_are_queries():
    body = b'NATTER1 {"t":"q","nonce":"0a1b2c3d"}'
    assert codec.parse_query(body.ljust(127)) is None
    assert codec.parse_query(body.ljust(128)) is not None
    assert codec.parse_query(body.ljust(512)) is not None
    assert codec.parse_query(body.ljust(513)) is None


def test_a_reply_carries_every_field_and_comes_back_the_same():
    data = codec.encode_reply("0a1b2c3d", ROOM)
    obj = json.loads(data[8:])
    assert data.startswith(b"NATTER1 ") and set(obj) == {"t", "nonce", "id", "name", "port", "tls", "fp", "users",
                                                         "password", "rooms"}
    assert obj["t"] == "room" and obj["fp"] == FP
    assert codec.parse_reply(data) == codec.Reply("0a1b2c3d", ROOM)
    plain = codec.encode_reply("0a1b2c3d", codec.RoomInfo("x", "n", 1, False, None, 0, False, 1))
    assert json.loads(plain[8:])["fp"] is None


def test_no_reply_is_over_512_bytes_so_none_is_over_four_times_its_query():
    longest = codec.RoomInfo(id="i" * codec.MAX_ID, name="\U0001F600" * 200, port=65535, tls=True, fp=FP,
                             users=2 ** 31 - 1, password=True, rooms=2 ** 31 - 1)
    data = codec.encode_reply("ffffffff", longest)
    assert len(data) <= codec.MAX_DATAGRAM <= 4 * codec.MIN_QUERY
    reply = codec.parse_reply(data)
    assert reply is not None and 0 < len(reply.room.name) <= codec.MAX_NAME
    assert set(reply.room.name) == {"\U0001F600"}       # shortened by whole characters


def test_names_lose_control_and_format_characters():
    assert codec.clean_name("  alice\x00's\u202e  room\n ") == "alice 's room"
    assert codec.clean_name("x" * 100) == "x" * codec.MAX_NAME
    assert codec.clean_name("\u200b\x1b") == ""


def _reply_with(**changes) -> bytes:
    obj = {"t": "room", "nonce": "0a1b2c3d", "id": "abc", "name": "n", "port": 5, "tls": False, "fp": None,
           "users": 1, "password": False, "rooms": 1}
    obj.update(changes)
    return b"NATTER1 " + json.dumps(obj).encode()


def test_a_reply_with_a_bad_field_is_refused():
    assert codec.parse_reply(_reply_with()) is not None
    for bad in [dict(t="q"), dict(nonce="xyz"), dict(nonce=12345678), dict(id=""), dict(id="a\nb"),
                dict(id=5), dict(name=None), dict(port=0), dict(port=65536), dict(port="5"), dict(port=5.0),
                dict(tls=1), dict(password="no"), dict(users=-1), dict(users=True), dict(rooms=1.5),
                dict(fp="3F2A"), dict(fp=FP.lower()), dict(fp=7)]:
        assert codec.parse_reply(_reply_with(**bad)) is None, bad
    assert codec.parse_reply(_reply_with(fp=FP)).room.fp == FP
    assert codec.parse_reply(_reply_with(name="a\x1b[31mb")).room.name == "a [31mb"
    assert codec.parse_reply(b"NATTER1 " + b"{" * 5000) is None           # too big, never parsed
    assert codec.parse_reply(b"NATTER1 " + b"[" * 400 + b"]" * 100) is None


def test_relays_carry_addresses_only():
    fwd = codec.Forward("0a1b2c3d", "198.51.100.2", 40000, "198.51.100.1", "abc")
    data = codec.encode_forward(fwd)
    assert len(data) >= codec.MIN_QUERY and codec.parse_forward(data) == fwd
    obj = json.loads(data[8:])
    for bad in [dict(to=3325256706), dict(to="example.org"), dict(dst=None), dict(tport=0), dict(by="")]:
        assert codec.parse_forward(b"NATTER1 " + json.dumps({**obj, **bad}).encode().ljust(130)) is None, bad


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=700))
def test_junk_bytes_are_never_a_query_a_reply_or_a_reason_to_answer(data):
    r, _ = responder()
    assert codec.parse_reply(data) is None or data.startswith(b"NATTER1 ")
    out = r.datagram(data, ("198.51.100.9", 5555), "198.51.100.1", "198.51.100.1")
    if codec.parse_query(data) is None:
        assert out == [] and r.malformed == 1


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600))
def test_junk_after_the_magic_is_never_answered(tail):
    r, _ = responder()
    data = codec.MAGIC + tail
    if codec.parse_query(data) is None and codec.parse_forward(data) is None:
        assert r.datagram(data, ("127.0.0.1", DP), "127.0.0.1", "127.0.0.1") == []


json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
                           lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(), inner, max_size=4),
                           max_leaves=10)


@settings(max_examples=150, deadline=None)
@given(st.dictionaries(st.text(max_size=8), json_values, max_size=6), st.integers(0, 300))
def test_json_objects_of_any_shape_are_answered_only_when_they_are_queries(obj, pad):
    r, _ = responder()
    data = (b"NATTER1 " + json.dumps(obj).encode()).ljust(128 + pad)
    out = r.datagram(data, ("198.51.100.9", 5555))
    is_query = obj.get("t") == "q" and type(obj.get("nonce")) is str and len(obj["nonce"]) == 8 and \
        all(c in "0123456789abcdefABCDEF" for c in obj["nonce"]) and len(data) <= 512
    assert bool(out) == is_query


@settings(max_examples=100, deadline=None)
@given(st.text("0123456789abcdef", min_size=8, max_size=8), st.integers(0, 384),
       st.dictionaries(st.sampled_from(["v", "x", "want"]), st.integers(-10 ** 6, 10 ** 6), max_size=3))
def test_every_well_formed_query_is_answered_with_its_nonce(nonce, pad, extra):
    r, _ = responder()
    data = (b"NATTER1 " + json.dumps({"t": "q", "nonce": nonce, **extra}).encode()).ljust(128 + pad)
    (out,) = r.datagram(data, ("198.51.100.9", 5555))
    reply = codec.parse_reply(out.data)
    assert out.to == ("198.51.100.9", 5555) and reply.nonce == nonce
    assert (reply.room.users, reply.room.rooms) == (3, 1)      # the counts at reply time


# -- the responder's rules --------------------------------------------------------------

def query(nonce="0a1b2c3d") -> bytes:
    return codec.encode_query(nonce)


def test_queries_are_rate_limited_per_source_and_refill_with_time():
    r, clock = responder(rate=5.0, burst=10.0)
    answers = [bool(r.datagram(query(), ("198.51.100.9", 1))) for _ in range(30)]
    assert answers == [True] * 10 + [False] * 20 and r.limited == 20
    assert r.datagram(query(), ("198.51.100.10", 1))          # another source is not slowed
    clock.now += 1.0                                          # 5 tokens back
    assert sum(bool(r.datagram(query(), ("198.51.100.9", 1))) for _ in range(10)) == 5


def test_all_sources_together_have_a_limit_too():
    r, clock = responder(rate=5.0, burst=10.0, total_rate=50.0)
    answered = sum(bool(r.datagram(query(), (f"198.51.{i // 250}.{i % 250}", 1))) for i in range(200))
    assert answered == 50


def test_the_table_of_sources_is_bounded():
    buckets = TokenBuckets(rate=1, burst=1, total_rate=10 ** 9, max_keys=100)
    for i in range(1000):
        buckets.allow(i, 0.0)
    assert len(buckets._keys) == 100


def test_a_unicast_query_is_answered_and_relayed_once_a_broadcast_is_not():
    r, _ = responder()
    direct, relay = r.datagram(query(), ("198.51.100.9", 5555), "198.51.100.1", "198.51.100.1")
    assert direct.to == ("198.51.100.9", 5555) and direct.source == "198.51.100.1"
    assert relay.to == (LOOPBACK_BROADCAST, DP)
    assert codec.parse_forward(relay.data) == codec.Forward("0a1b2c3d", "198.51.100.9", 5555, "198.51.100.1",
                                                            ROOM.id)
    (only,) = r.datagram(query(), ("198.51.100.9", 5555), "198.51.100.255", "198.51.100.1")
    assert only.source == "198.51.100.1"                     # the interface's address, not the broadcast's


def test_a_relay_is_answered_by_the_other_rooms_only_from_loopback():
    me, _ = responder()
    other = codec.RoomInfo(**{**ROOM.__dict__, "id": "other-room"})
    them, _ = responder(room=other)
    relay = me.datagram(query(), ("198.51.100.9", 5555), "198.51.100.1", "198.51.100.1")[1]
    (answer,) = them.datagram(relay.data, ("127.0.0.1", DP), LOOPBACK_BROADCAST, "127.0.0.1")
    assert answer.to == ("198.51.100.9", 5555) and answer.source == "198.51.100.1"
    assert codec.parse_reply(answer.data).room.id == "other-room"
    assert me.datagram(relay.data, ("127.0.0.1", DP)) == []                  # not its own
    assert them.datagram(relay.data, ("198.51.100.9", DP)) == []             # not from the LAN
    assert them.datagram(relay.data, ("127.0.0.1", DP + 1)) == []            # not from another port
    assert them.relayed == 0                                                 # never relayed again


def test_a_room_on_loopback_answers_loopback_only():
    r, _ = responder(chat_host="127.0.0.1")
    assert r.datagram(query(), ("127.0.0.1", 5555), "127.0.0.1", "127.0.0.1")[0].to == ("127.0.0.1", 5555)
    lan_relay = codec.encode_forward(codec.Forward("0a1b2c3d", "198.51.100.9", 5555, "198.51.100.1", "x"))
    assert r.datagram(lan_relay, ("127.0.0.1", DP)) == []
    local_relay = codec.encode_forward(codec.Forward("0a1b2c3d", "127.0.0.1", 5555, "127.0.0.1", "x"))
    (answer,) = r.datagram(local_relay, ("127.0.0.1", DP))
    assert answer.to == ("127.0.0.1", 5555) and answer.source is None


def test_a_room_on_one_lan_address_answers_queries_that_arrived_there():
    r, _ = responder(chat_host="198.51.100.1")
    assert r.datagram(query(), ("198.51.100.9", 1), "198.51.100.255", "198.51.100.1")
    assert not [s for s in r.datagram(query(), ("203.0.113.9", 1), "203.0.113.255", "203.0.113.1")
                if s.to[0] == "203.0.113.9"]
    assert r.datagram(query(), ("198.51.100.9", 1))         # destination unknown: answer


def test_junk_gives_one_summary_a_minute_at_most():
    r, clock = responder()
    for i in range(1000):
        r.datagram(b"junk %d" % i, ("198.51.100.9", 1))
    for _ in range(40):
        r.datagram(query(), ("198.51.100.9", 1))
    assert r.summary() is None                               # not before a minute has passed
    clock.now += LOG_EVERY
    line = r.summary()
    assert "1000 malformed" in line and "30 query(ies) over the rate limit" in line
    clock.now += 1
    r.datagram(b"more junk", ("198.51.100.9", 1))
    assert r.summary() is None
    clock.now += LOG_EVERY
    assert "1 malformed" in r.summary()
    clock.now += LOG_EVERY
    assert r.summary() is None                               # nothing new: nothing said
