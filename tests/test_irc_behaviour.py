"""More of the IRC door over real loopback sockets (--irc-port 0): NOTICE
delivered and never answered with an error (PRIVMSG keeps its numerics),
--irc-server-name in 001 and WHOIS, the limits (405 for too many rooms,
407 for too many targets), a room kept when empty (and over a restart),
the server's own PING (a PONG keeps the client, silence drops it), and
CHATHISTORY of a private conversation."""
from __future__ import annotations

import time

import pytest

from tests.irctools import irc, json_client  # noqa: F401 (fixtures)
from tests.servertools import expect

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def srv(make_server):
    return make_server(rate_limit=0, irc_port=0)


def _list(c) -> dict:
    """LIST -> {channel: (users, topic)} from its 322 lines up to 323."""
    c.send("LIST")
    entries = {}
    while True:
        m = c.recv()
        if m.command == "322":
            entries[m.params[1]] = (m.params[2], m.params[3])
        if m.command == "323":
            return entries


def test_notice_reaches_a_channel_and_a_nick(irc, json_client):
    bob = json_client("bob", "rust")
    carol = irc("carol")
    carol.join("#rust")
    expect(bob, "joined", nick="carol")
    alice = irc("alice")
    alice.join("#rust")
    expect(bob, "joined", nick="alice")
    alice.send("NOTICE #rust :hear ye")
    assert expect(bob, "message", text="hear ye")["from"] == "alice"
    m = carol.expect("PRIVMSG", "#rust")        # Natter has no notices: delivered as a message
    assert m.params[1] == "hear ye" and m.source.startswith("alice!")
    alice.send("NOTICE bob :psst")
    assert expect(bob, "dm", text="psst")["from"] == "alice"
    alice.send("NOTICE carol :psst too")
    m = carol.expect("PRIVMSG", "carol")
    assert m.params[1] == "psst too" and m.source.startswith("alice!")


def test_notice_gets_no_error_replies_and_privmsg_keeps_them(irc, srv):
    """RFC 2812 3.3.2: automatic replies must never be sent in response to
    a NOTICE. The core still decides (nothing is delivered); the door does
    not answer."""
    owner = irc("owner", password="owner:" + "o" * 40)
    owner.join("#quiet")
    owner.send("MODE #quiet +m")
    owner.expect("MODE", "#quiet", "+m")
    alice = irc("alice")
    alice.join("#quiet")
    owner.expect("JOIN", "#quiet")
    wrong = ["nobody :x",                       # no such nick
             "#elsewhere :x",                   # a room alice is not in
             "#quiet :x",                       # a moderated room
             "#bad!name :x",                    # not a room name
             "a,b,c,d,e :x",                    # too many targets
             "#quiet :\x02\x0f",                # no text once the formatting is removed
             "#quiet", "", ":x"]                # no text, no recipient
    for params in wrong:
        alice.send(f"NOTICE {params}".rstrip())
    assert alice.sync() == []                   # nothing came back
    assert owner.sync() == []                   # and nothing was delivered
    for params, numeric in [("nobody :x", "401"), ("#elsewhere :x", "404"), ("#quiet :x", "404"),
                            ("#bad!name :x", "403"), ("a,b,c,d,e :x", "407"), ("#quiet :\x02\x0f", "FAIL"),
                            ("#quiet", "412"), ("", "411")]:
        alice.send(f"PRIVMSG {params}".rstrip())
        assert [m.command for m in alice.sync()] == [numeric], params


def test_the_configured_server_name_in_001_and_whois(make_server, irc):
    srv = make_server(rate_limit=0, irc_port=0, irc_server_name="chat.lan")
    alice = irc("alice", srv=srv)
    welcome = alice.seen[0]
    assert welcome.command == "001" and welcome.source == "chat.lan"
    alice.send("PING :x")
    alice.expect("PONG", "chat.lan", "x")
    bob = irc("bob", srv=srv)
    alice.send("WHOIS bob")
    m = alice.expect("312")
    assert m.source == "chat.lan" and m.params[:3] == ("alice", "bob", "chat.lan")
    alice.expect("318", "alice", "bob")


def test_405_for_too_many_rooms_and_407_for_too_many_targets(make_server, irc):
    srv = make_server(rate_limit=0, irc_port=0, max_rooms_per_client=2)
    alice = irc("alice", srv=srv)
    alice.join("#one")
    alice.join("#two")
    alice.send("JOIN #three")
    m = alice.expect("405")
    assert m.params[:2] == ("alice", "#three") and m.params[-1]
    alice.send("JOIN #four,#five")              # each of a list is refused
    assert [m.params[1] for m in alice.sync() if m.command == "405"] == ["#four", "#five"]
    bob = irc("bob", srv=srv)
    bob.join("#one")
    alice.send("PRIVMSG #one,#two,bob,#one,bob :five at once")     # TARGMAX=PRIVMSG:4
    m = alice.expect("407")
    assert m.params[1] == "#one,#two,bob,#one,bob"
    alice.send("PRIVMSG #one,bob :two at once")
    got = [bob.expect("PRIVMSG").params for _ in range(2)]
    assert sorted(got) == [("#one", "two at once"), ("bob", "two at once")]


def test_an_empty_room_stays_listed_and_survives_a_restart(make_server, irc, tmp_path):
    db = str(tmp_path / "kept.db")
    srv = make_server(rate_limit=0, irc_port=0, db=db)
    alice, bob = irc("alice", srv=srv), irc("bob", srv=srv)
    for c in (alice, bob):
        c.join("#kept")
    alice.send("TOPIC #kept :still here")
    bob.expect("TOPIC", "#kept")
    alice.send("PART #kept")
    alice.expect("PART", "#kept")
    assert bob.expect("PART", "#kept").source.startswith("alice!")
    bob.send("PART #kept")
    assert bob.expect("PART", "#kept").source.startswith("bob!")     # its own, not alice's
    assert _list(alice)["#kept"] == ("0", "still here")
    alice.close()
    bob.close()
    srv.shutdown()
    again = make_server(rate_limit=0, irc_port=0, db=db)
    carol = irc("carol", srv=again)
    assert _list(carol)["#kept"] == ("0", "still here")
    carol.join("#kept")
    carol.send("TOPIC #kept")
    assert carol.expect("332").params[-1] == "still here"


@pytest.mark.timeout(40)
def test_the_servers_ping_a_pong_keeps_the_client_and_silence_drops_it(make_server, irc):
    # The timer runs about once a second: pinged after 2 s of silence, dropped after 4.
    srv = make_server(rate_limit=0, irc_port=0, idle_timeout=4.0)
    alice = irc("alice", srv=srv)
    alice.join("#idle")
    start = time.monotonic()                    # alice's last word before her PONGs
    quiet = irc("quiet", srv=srv)
    quiet.join("#idle")
    pings, quit_ = 0, None
    deadline = time.monotonic() + 25
    while (pings < 2 or quit_ is None) and time.monotonic() < deadline:
        m = alice.recv(timeout=max(0.01, deadline - time.monotonic()))
        if m.command == "PING":
            assert m.params == (srv.config.irc_server_name,)
            alice.send(f"PONG :{m.params[0]}")
            pings += 1
        elif m.command == "QUIT" and m.source.startswith("quiet!"):
            quit_ = m
    assert pings >= 2 and quit_ is not None, (pings, quit_)
    assert "timed out" in quit_.params[0].lower()
    assert time.monotonic() - start > 4.0       # alice, who said nothing but PONG, outlived the timeout
    alice.sync()                                # and is still served
    quiet.expect("PING", srv.config.irc_server_name)
    err = quiet.expect("ERROR")
    assert "4" in err.params[-1]
    with pytest.raises(EOFError):
        while True:
            quiet.recv()


def test_chathistory_of_a_private_conversation(irc, json_client):
    bob = json_client("bob")
    alice = irc("alice", "server-time message-tags batch draft/chathistory")
    texts = []
    for i in range(3):
        alice.send(f"PRIVMSG bob :to bob {i}")
        expect(bob, "dm", text=f"to bob {i}")
        bob.send({"type": "dm", "to": "alice", "text": f"to alice {i}", "ref": f"d{i}"})
        expect(bob, "dm", ref=f"d{i}")
        alice.expect("PRIVMSG", "alice")
        texts += [("alice", "bob", f"to bob {i}"), ("bob", "alice", f"to alice {i}")]
    alice.send("CHATHISTORY LATEST bob * 10")
    got = alice.batch()
    assert [(m.source.split("!")[0], m.params[0], m.params[1]) for m in got] == texts
    assert all(m.command == "PRIVMSG" and "msgid" in m.tags and "time" in m.tags for m in got)
    alice.send(f"CHATHISTORY BEFORE bob msgid={got[2].tags['msgid']} 10")
    assert [m.params[1] for m in alice.batch()] == ["to bob 0", "to alice 0"]
