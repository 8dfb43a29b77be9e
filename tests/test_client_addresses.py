"""Several addresses for one room (issue 15): the list is read in one place
(:func:`chatgui.netcheck.split_addresses`), and the network client tries
them in turn, against real in-process servers on loopback.
"""
from __future__ import annotations

import socket

import pytest
from hypothesis import given, strategies as st

from chatgui.net import events as ev
from chatgui.net.backoff import Backoff
from chatgui.net.client import ChatClient
from chatgui.netcheck import join_addresses, split_addresses
from server import protocol


def refused_port() -> int:
    """A loopback port nobody listens on (bound, then closed)."""
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


@pytest.fixture
def listed(make_chat_clients):
    """make(addresses, nick, **kw) -> (ChatClient, Events), started; all closed after."""
    def make(addresses, nick, **kw):
        kw.setdefault("keep_session", False)
        return make_chat_clients(protocol.DEFAULT_PORT, nick, host=addresses, **kw)
    return make


# -- the list ---------------------------------------------------------------

def test_a_list_of_addresses_with_and_without_ports():
    assert split_addresses("a,b:7000,[::1]:7001", 30000) == [("a", 30000), ("b", 7000), ("::1", 7001)]
    assert split_addresses(" a , b ", 5) == [("a", 5), ("b", 5)]
    assert split_addresses("a,a:5,b", 5) == [("a", 5), ("b", 5)]      # a repeat counts once
    assert split_addresses("::1", 5) == [("::1", 5)]                    # one bare IPv6 address


@pytest.mark.parametrize("text, words", [
    ("a,,b", "Address 2 of 3 is empty"),
    ("a,b,", "Address 3 of 3 is empty"),
    ("a,b:0", "Address 2 of 2 is not right: 'b:0': the port must be a number from 1 to 65535."),
    ("a,b:x", "Address 2 of 2 is not right"),
    ("[::1,b", "Address 1 of 2 is not right: '[::1': an IPv6 address in brackets needs its closing ']'."),
    ("a,[::1]7", "Address 2 of 2 is not right: '[::1]7': write [address]:port."),
    (",", "Address 1 of 2 is empty"),
])
def test_a_bad_entry_is_named_in_a_sentence(text, words):
    with pytest.raises(ValueError) as e:
        split_addresses(text, 30000)
    assert words in str(e.value) and str(e.value).endswith(".")


hosts = st.one_of(
    st.from_regex(r"[a-z][a-z0-9.-]{0,20}", fullmatch=True),
    st.ip_addresses(v=4).map(str),
    st.ip_addresses(v=6).map(str))
address_lists = st.lists(st.tuples(hosts, st.integers(1, 65535)), min_size=1, max_size=5, unique=True)


@given(address_lists)
def test_a_list_written_out_reads_back_the_same(addresses):
    assert split_addresses(join_addresses(addresses), 30000) == addresses


@given(st.text(max_size=40))
def test_any_text_is_a_list_or_a_sentence(text):
    try:
        got = split_addresses(text, 30000)
    except ValueError as e:
        assert str(e).endswith(".")
    else:
        assert got and all(h and 0 < p < 65536 for h, p in got)


def test_the_client_refuses_a_bad_list_at_once():
    with pytest.raises(ValueError, match="Address 2 of 2 is empty"):
        ChatClient("a,", 30000, "ann", events=None)


# -- the client over real servers -------------------------------------------

def test_a_refused_first_address_costs_no_backoff_and_the_second_is_used(make_server, listed):
    srv = make_server()
    dead1, dead2 = refused_port(), refused_port()
    backoff = Backoff(first=60.0, rng=lambda: 1.0)     # a backoff wait would fail the test
    c, evs = listed(f"127.0.0.1:{dead1},127.0.0.1:{dead2},127.0.0.1:{srv.port}", "ann", backoff=backoff)
    con = evs.wait(ev.Connected)
    assert (con.host, con.port) == ("127.0.0.1", srv.port) == (c.host, c.port)
    tried = [(e.host, e.port) for e in evs.of(ev.Connecting)]
    assert tried == [("127.0.0.1", dead1), ("127.0.0.1", dead2), ("127.0.0.1", srv.port)]
    assert not evs.of(ev.ConnectFailed) and backoff.attempts == 0


def test_when_every_address_fails_the_first_time_one_final_failure_names_them_all(listed):
    dead1, dead2 = refused_port(), refused_port()
    c, evs = listed([("127.0.0.1", dead1), ("127.0.0.1", dead2)], "ann")
    failed = evs.wait(ev.ConnectFailed)
    assert failed.retry_in is None and failed.kind == "refused"
    assert f"127.0.0.1:{dead1}" in failed.message and f"127.0.0.1:{dead2}" in failed.message
    assert (failed.host, failed.port) == ("127.0.0.1", dead2)
    assert isinstance(evs.next(), ev.Closed)


def test_a_lost_server_costs_a_reconnect_to_the_next_and_the_chat_goes_on(make_server, listed):
    first, second = make_server(), make_server()
    quick = Backoff(first=0.05, base=0.05, cap=0.1)
    c, evs = listed(f"127.0.0.1:{first.port},127.0.0.1:{second.port}", "ann", backoff=quick)
    assert evs.wait(ev.Connected).port == first.port
    evs.caught_up()
    watcher, wevs = listed([("127.0.0.1", second.port)], "bob")
    wevs.wait(ev.Connected)
    wevs.caught_up()

    first.shutdown()
    assert evs.wait(ev.Disconnected).retry_in is not None
    again = evs.wait(ev.Connected, timeout=10)
    # A plain server has no shared sessions: the welcome is fresh, and that is fine.
    assert (again.host, again.port) == ("127.0.0.1", second.port) and not again.resumed
    evs.caught_up()
    ref = c.say("still here")
    mine = evs.wait(protocol.Message)
    assert mine.ref == ref and evs.wait(ev.Acked) == ev.Acked(ref, mine.id)
    assert wevs.wait(lambda e: isinstance(e, protocol.Message) and e.text == "still here").sender == "ann"
