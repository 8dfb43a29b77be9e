"""The client's pure decisions: backoff, offline queue, de-duplication, ack
matching, failure wording. No sockets."""
from __future__ import annotations

import errno
import socket

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from chatgui.net.backoff import Backoff
from chatgui.net.failures import classify_os_error, classify_refusal
from chatgui.net.outbox import Outbox, QueueFull, SeenIds
from server import protocol


# -- backoff ---------------------------------------------------------------

def test_backoff_windows_grow_exponentially_to_the_cap():
    b = Backoff(first=0.5, base=1.0, cap=30.0)
    assert [b.window(n) for n in range(7)] == [0.5, 2.0, 4.0, 8.0, 16.0, 30.0, 30.0]
    assert b.window(10_000) == 30.0


def test_backoff_full_jitter_spans_the_whole_window():
    lo = Backoff(rng=lambda: 0.0)
    hi = Backoff(rng=lambda: 0.999999)
    assert [lo.next_delay() for _ in range(4)] == [0.0, 0.0, 0.0, 0.0]
    assert [round(hi.next_delay(), 3) for _ in range(4)] == [0.5, 2.0, 4.0, 8.0]


@settings(max_examples=200, deadline=None)
@given(st.integers(min_value=0, max_value=200), st.integers(min_value=0, max_value=2**32))
def test_backoff_delay_always_within_zero_and_cap(n, seed):
    import random
    rng = random.Random(seed)
    b = Backoff(first=0.5, base=1.0, cap=30.0, rng=rng.random)
    b.attempts = n
    d = b.next_delay()
    assert 0.0 <= d <= min(30.0, b.window(n))
    assert b.attempts == n + 1


def test_backoff_first_retry_is_quick_and_reset_starts_over():
    b = Backoff(first=0.5, rng=lambda: 0.999)
    assert b.next_delay() < 0.5
    for _ in range(10):
        b.next_delay()
    assert b.next_delay() > 25
    b.reset()
    assert b.next_delay() < 0.5


def test_backoff_jitter_spreads_a_room_of_clients():
    import random
    rng = random.Random(7)
    delays = [Backoff(rng=rng.random).next_delay() for _ in range(1000)]
    # A thousand clients that lost the same server: spread over the window,
    # not all at once (each fifth of the window gets roughly its share).
    buckets = [0] * 5
    for d in delays:
        buckets[min(4, int(d / 0.5 * 5))] += 1
    assert all(150 < n < 250 for n in buckets), buckets


def test_backoff_rejects_nonsense():
    with pytest.raises(ValueError):
        Backoff(base=0)
    with pytest.raises(ValueError):
        Backoff(base=10, cap=5)


# -- offline queue and ack matching -----------------------------------------

def _say(ref, text="x"):
    return protocol.say_frame(text, ref)


def test_outbox_sends_in_order_once_per_connection():
    o = Outbox()
    o.add("r1", "say", _say("r1", "one"))
    o.add("r2", "say", _say("r2", "two"))
    assert [i.ref for i in o.take_unsent()] == ["r1", "r2"]
    assert o.take_unsent() == []          # not twice on the same connection
    o.add("r3", "say", _say("r3"))
    assert [i.ref for i in o.take_unsent()] == ["r3"]
    assert len(o) == 3 and o.refs() == ["r1", "r2", "r3"]


def test_outbox_ack_removes_and_rewind_resends_only_unacknowledged_in_order():
    o = Outbox()
    for r in ("r1", "r2", "r3", "r4"):
        o.add(r, "say", _say(r))
    o.take_unsent()
    # the connection drops; the resumed welcome's replay carries r1 and r3
    assert o.ack("r1").ref == "r1"
    assert o.ack("r3") is not None
    assert o.ack("r3") is None            # a second ack (a replayed copy) is harmless
    assert o.ack("not-ours") is None and o.ack(None) is None
    o.rewind()
    assert [i.ref for i in o.take_unsent()] == ["r2", "r4"]
    assert "r2" in o and "r1" not in o


def test_outbox_items_carry_their_wire_frame():
    o = Outbox()
    item = o.add("r1", "dm", protocol.dm_request_frame("bob", "hi", "r1"))
    assert protocol.parse_client(protocol.decode_frame(item.data[:-1])) == \
        protocol.SendDirect("bob", "hi", "r1")


def test_outbox_is_bounded_and_refs_unique():
    o = Outbox(limit=2)
    o.add("a", "say", _say("a"))
    with pytest.raises(ValueError):
        o.add("a", "say", _say("a"))
    o.add("b", "say", _say("b"))
    with pytest.raises(QueueFull):
        o.add("c", "say", _say("c"))
    o.ack("a")
    o.add("c", "say", _say("c"))


def test_outbox_expected_nick_and_noop_renames():
    o = Outbox()
    o.add("n1", "nick", {"type": "nick", "nick": "bob", "ref": "n1"})
    o.add("s1", "say", _say("s1"))
    o.add("n2", "nick", {"type": "nick", "nick": "ann", "ref": "n2"})
    assert o.expected_nick("ann") == "ann"
    # after a reconnect as "ann": ann->bob is real, bob->ann is real too
    assert o.drop_noop_renames("ann") == []
    # reconnected already as "bob" (the first rename had taken effect): it is a no-op
    assert o.drop_noop_renames("bob") == ["n1"]
    assert o.refs() == ["s1", "n2"]


@settings(max_examples=100, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(["add", "send", "ack", "drop"]), st.integers(0, 9)),
                max_size=60))
def test_outbox_every_item_delivered_exactly_once_whatever_the_drops(ops):
    """Model: the server accepts what it receives; a drop loses what was in
    flight unacknowledged; the replay acknowledges what the server got."""
    o = Outbox()
    server_got: list = []
    made = []
    for op, n in ops:
        if op == "add":
            ref = f"r{len(made)}"
            made.append(ref)
            o.add(ref, "say", _say(ref))
        elif op == "send":
            for item in o.take_unsent()[: n + 1]:
                server_got.append(item.ref)   # some of a batch gets there ...
                # (the rest of the batch is lost with the connection)
                break
        elif op == "ack":
            for ref in list(dict.fromkeys(server_got))[:n]:
                o.ack(ref)
        else:   # drop and resume: the replay acknowledges what the server has
            for ref in server_got:
                o.ack(ref)
            o.rewind()
    # finally a good connection: send all, everything arrives
    for ref in server_got:
        o.ack(ref)
    o.rewind()
    server_got += [item.ref for item in o.take_unsent()]
    assert sorted(server_got, key=lambda r: int(r[1:])) == made
    assert len(server_got) == len(set(server_got))


# -- de-duplication ------------------------------------------------------------

def test_seen_ids_deliver_each_id_once_and_track_since():
    s = SeenIds()
    assert s.since is None
    assert [s.add(i) for i in (1, 2, 2, 3, 1)] == [True, True, False, True, False]
    assert s.last == 3 and s.since == 3
    s.advance(10)                 # a welcome said the room is at id 10
    assert s.since == 10
    assert s.add(7) is True        # a replayed dm we had not seen is still new
    assert s.last == 10


def test_seen_ids_stay_bounded_and_old_ids_count_as_seen():
    s = SeenIds(keep=100)
    for i in range(1, 1001):
        assert s.add(i)
    assert len(s._set) == 100 and s.floor == 900
    assert not s.add(5) and not s.add(900) and not s.add(1000)
    assert s.add(1001)


def test_seen_ids_reset_when_the_server_history_restarts():
    s = SeenIds()
    s.add(50)
    s.reset()
    assert s.since is None and s.add(1)


@settings(max_examples=100, deadline=None)
@given(st.lists(st.integers(1, 300), max_size=300))
def test_seen_ids_never_deliver_twice(ids):
    s = SeenIds(keep=50)
    delivered = [i for i in ids if s.add(i)]
    assert len(delivered) == len(set(delivered))


# -- failures in words ---------------------------------------------------------

def test_classify_connect_errors():
    kind, msg = classify_os_error(ConnectionRefusedError(errno.ECONNREFUSED, "refused"), "10.0.0.5", 30000, 5)
    assert kind == "refused" and "10.0.0.5:30000" in msg and "--host 0.0.0.0" in msg
    kind, msg = classify_os_error(TimeoutError(errno.ETIMEDOUT, "timed out"), "10.0.0.5", 30000, 5)
    assert kind == "timeout" and "firewall" in msg and "5 s" in msg
    kind, msg = classify_os_error(socket.gaierror(-2, "Name or service not known"), "sevrer", 30000, 5)
    assert kind == "dns" and "'sevrer'" in msg
    kind, msg = classify_os_error(OSError(errno.ENETUNREACH, "Network is unreachable"), "10.9.9.9", 1, 5)
    assert kind == "unreachable" and "Network is unreachable" in msg
    kind, msg = classify_os_error(ConnectionResetError(errno.ECONNRESET, "Connection reset"), "h", 1, 5)
    assert kind == "unreachable" and "Connection reset" in msg
    kind, msg = classify_os_error(ConnectionRefusedError(errno.ECONNREFUSED, "x"), "::1", 7, 5)
    assert "[::1]:7" in msg


def test_classify_refusals():
    assert classify_refusal("nick_taken", "in use", "ann", False)[0] == "nick_taken"
    assert "pick another" in classify_refusal("nick_taken", "in use", "ann", False)[1]
    assert classify_refusal("bad_nick", "nick is empty", "", False)[0] == "bad_nick"
    kind, msg = classify_refusal("auth_failed", "Wrong room password.", "ann", True)
    assert kind == "auth_failed" and "Wrong room password" in msg
    assert "needs a password" in classify_refusal("auth_failed", "x", "ann", False)[1]
    assert classify_refusal("server_full", "full", "ann", False)[0] == "server_full"
    assert classify_refusal("too_many_connections", "At most 20", "ann", False)[0] == "server_full"
    kind, msg = classify_refusal("weird", "something", "ann", False)
    assert kind == "protocol" and "weird" in msg


def test_tls_required_is_final_and_explained():
    from chatgui.net.failures import FINAL_KINDS
    kind, msg = classify_refusal("tls_required", "This server only speaks TLS", "ann", False)
    assert kind == "tls" and "encrypt" in msg and kind in FINAL_KINDS


def test_an_item_refused_as_unavailable_waits_then_goes_again_in_order():
    from chatgui.net.outbox import RETRY_FIRST, RETRY_MAX, Outbox
    box = Outbox()
    for ref in ("a", "b", "c"):
        box.add(ref, "say", {"type": "say", "text": ref, "ref": ref})
    assert [i.ref for i in box.take_unsent(0.0)] == ["a", "b", "c"]
    box.retry_later("b", now=100.0)
    box.retry_later("c", now=100.0)
    assert box.take_unsent(100.0) == [] and box.next_retry() == 100.0 + RETRY_FIRST
    assert [i.ref for i in box.take_unsent(100.0 + RETRY_FIRST)] == ["b", "c"]   # b first: order kept
    delays = []
    for _ in range(8):
        box.retry_later("b", now=0.0)
        delays.append(box.next_retry())
        box.take_unsent(1e9)
    assert delays[:4] == [2 * RETRY_FIRST, 4 * RETRY_FIRST, 8 * RETRY_FIRST, RETRY_MAX] and max(delays) == RETRY_MAX
    assert box.retry_later("nobody", now=0.0) is None
