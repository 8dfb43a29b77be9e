"""SASL PLAIN on the IRC door over real loopback sockets (--irc-port 0):
CAP LS 302 offers sasl=PLAIN; the account is the nick and the password an
identity secret, checked by the core as PASS nick:secret is (a reserved
nick, a secret's form) before 900/903; registration waits for CAP END; the
identity binds the nick and carries its roles; 904 with a sentence for bad
base64, another account, a wrong secret, an unknown mechanism (and 908);
906 for an abort; 400-byte chunks with '+'; 905 for too long; 907 again;
and WeeChat headless logging in with SASL as the admin identity, which
makes it an op in a room it did not create."""
from __future__ import annotations

import base64

import pytest

from server import protocol as p
from tests.ircclients import WeeChat
from tests.irctools import IrcClient
from tests.servertools import answer, expect, hello_v2

pytestmark = pytest.mark.timeout(30)

SECRET = "s" * 40           # an identity secret: 32 to 128 printable ASCII characters
OTHER = "o" * 40


@pytest.fixture
def srv(make_server):
    return make_server(rate_limit=0, irc_port=0)


@pytest.fixture
def irc(srv):
    made = []

    def make() -> IrcClient:
        c = IrcClient(srv.door_port("irc"))
        made.append(c)
        return c

    yield make
    for c in made:
        c.close()


def _b64(*parts: str) -> str:
    return base64.b64encode("\0".join(parts).encode("utf-8")).decode()


def _begin(c: IrcClient, nick: str) -> None:
    """CAP LS 302, NICK, USER, CAP REQ sasl (ACKed), AUTHENTICATE PLAIN (prompted)."""
    c.send("CAP LS 302")
    c.send(f"NICK {nick}")
    c.send(f"USER {nick} 0 * :{nick}")
    c.send("CAP REQ sasl")
    c.expect("CAP", nick, "ACK", "sasl")
    c.send("AUTHENTICATE PLAIN")
    assert c.expect("AUTHENTICATE").params == ("+",)


def _end(c: IrcClient) -> None:
    """CAP END, and the welcome up to its 422."""
    c.send("CAP END")
    c.expect("001")
    c.expect("422")


def _names(c: IrcClient, chan: str) -> set:
    c.send(f"JOIN {chan}")
    out = set()
    while True:
        m = c.recv()
        if m.command == "353" and m.params[2] == chan:
            out |= set(m.params[-1].split())
        if m.command == "366" and m.params[1] == chan:
            return out


def test_cap_ls_302_offers_sasl_plain(irc):
    c = irc()
    c.send("CAP LS 302")
    assert "sasl=PLAIN" in c.expect("CAP", "*", "LS").params[-1].split()


def test_sasl_login_binds_the_nick_and_gives_its_roles(irc, srv, connect):
    c = irc()
    _begin(c, "alice")
    c.send("AUTHENTICATE " + _b64("alice", "alice", SECRET))
    m900 = c.expect("900")
    assert m900.params[:3] == ("alice", "alice!u@natter", "alice")
    c.expect("903")
    c.send("PING :before-end")              # nothing registers before CAP END
    c.expect("PONG", "natter.local", "before-end")
    assert not any(m.command == "001" for m in c.seen)
    _end(c)
    assert "@alice" in _names(c, "#den")    # an identity owns the room it creates
    c.send("AUTHENTICATE PLAIN")
    c.expect("907")
    c.send("QUIT")
    c.expect("ERROR")                       # written after the pass that applied the QUIT: alice is free
    # The nick is bound to that identity now: a window without it is refused.
    w = connect(srv=srv)
    w.send({"type": "hello", "nick": "alice", "v": 2})
    assert w.recv()["code"] == p.NICK_RESERVED
    w2 = connect(srv=srv)
    hello_v2(w2, "alice", identity=SECRET)  # with it, welcome


def test_without_sasl_the_same_client_owns_nothing(irc):
    """The control for the test above: no identity, no role."""
    c = irc()
    c.register("alice", "server-time")
    assert "alice" in _names(c, "#den") and "@alice" not in _names(c, "#den2")


def test_a_wrong_secret_for_a_reserved_nick_gets_904_and_no_identity(irc, srv, connect):
    owner = connect(srv=srv)
    hello_v2(owner, "alice", identity=OTHER)     # binds alice to another identity
    owner.send({"type": "bye"})
    assert owner.closed_by_server()              # and leaves: alice is reserved, not in use
    c = irc()
    _begin(c, "alice")
    c.send("AUTHENTICATE " + _b64("", "alice", SECRET))
    fail = c.expect("904")
    assert "reserved by another computer" in fail.params[-1]
    assert not any(m.command in ("900", "903") for m in c.seen)
    c.send("CAP END")                            # registering alice without the identity: 433
    assert "reserved" in c.expect("433").params[-1]
    c.send("NICK alice2")
    c.expect("001")
    assert "@alice2" not in _names(c, "#x")      # and it has no identity


def test_the_account_must_be_the_nick(irc):
    c = irc()
    _begin(c, "alice")
    c.send("AUTHENTICATE " + _b64("bob", "bob", SECRET))
    assert "must be your nick, alice" in c.expect("904").params[-1]
    c.send("AUTHENTICATE PLAIN")                 # another try, the right account (case folded as nicks are)
    c.expect("AUTHENTICATE", "+")
    c.send("AUTHENTICATE " + _b64("", "ALICE", SECRET))
    c.expect("903")
    _end(c)


def test_authenticate_before_nick_is_refused_with_a_sentence(irc):
    c = irc()
    c.send("CAP REQ sasl")
    c.expect("CAP", "*", "ACK")
    c.send("AUTHENTICATE PLAIN")
    c.expect("AUTHENTICATE", "+")
    c.send("AUTHENTICATE " + _b64("alice", "alice", SECRET))
    assert "Send your NICK before AUTHENTICATE" in c.expect("904").params[-1]


@pytest.mark.parametrize("payload, words", [
    ("!!not-base64!!", "not base64"),
    (_b64("alice", "pw"), "three fields"),
    (_b64("", "alice", "short"), "32 to 128 printable ASCII"),        # the core's rule for a secret
    (_b64("bob", "alice", SECRET), "authorisation identity"),
    (base64.b64encode(b"\xff\0alice\0" + SECRET.encode()).decode(), "UTF-8"),
])
def test_bad_payloads_get_904_with_a_sentence_then_registration_goes_on(irc, payload, words):
    c = irc()
    _begin(c, "alice")
    c.send("AUTHENTICATE " + payload)
    assert words in c.expect("904").params[-1]
    assert not any(m.command in ("900", "903") for m in c.seen)
    _end(c)
    assert "@alice" not in _names(c, "#plain")


def test_an_unknown_mechanism_gets_908_and_904(irc):
    c = irc()
    c.send("CAP REQ sasl")
    c.send("NICK alice")
    c.send("AUTHENTICATE SCRAM-SHA-256")
    assert c.expect("908").params[1] == "PLAIN"
    assert "only PLAIN" in c.expect("904").params[-1]


def test_abort_with_star_and_with_cap_end(irc):
    c = irc()
    _begin(c, "alice")
    c.send("AUTHENTICATE *")
    c.expect("906")
    c.send("AUTHENTICATE PLAIN")
    c.expect("AUTHENTICATE", "+")
    c.send("CAP END")                            # registering mid-exchange aborts it
    c.expect("906")
    c.expect("001")
    assert not any(m.command in ("900", "903") for m in c.seen)


@pytest.mark.parametrize("nick, secret, chunks", [
    ("日" * 30, "k" * 118, ["400", "+"]),         # exactly 400 bytes of base64: '+' ends it
    ("日" * 32, "k" * 128, ["400", "32"]),         # 432: a full chunk and a short one
])
def test_chunks_of_400_bytes(irc, nick, secret, chunks):
    data = _b64(nick, nick, secret)
    pieces = [data[i:i + 400] for i in range(0, len(data), 400)]
    if len(pieces[-1]) == 400:
        pieces.append("+")
    assert [str(len(x)) if x != "+" else "+" for x in pieces] == chunks
    c = irc()
    _begin(c, nick)
    for piece in pieces[:-1]:
        c.send("AUTHENTICATE " + piece)
    c.send("PING :mid")                          # a full chunk waits for more: no answer yet
    c.expect("PONG", "natter.local", "mid")
    assert not any(m.command in ("900", "903", "904") for m in c.seen)
    c.send("AUTHENTICATE " + pieces[-1])
    assert c.expect("900").params[2] == nick
    c.expect("903")
    _end(c)


def test_too_long_gets_905(irc):
    c = irc()
    _begin(c, "alice")
    c.send("AUTHENTICATE " + "A" * 401)          # one chunk over 400 bytes
    c.expect("905")
    c.send("AUTHENTICATE PLAIN")
    c.expect("AUTHENTICATE", "+")
    for _ in range(5):                           # 2000 bytes in full chunks: over the exchange's limit
        c.send("AUTHENTICATE " + "A" * 400)
    c.expect("905")
    c.send("AUTHENTICATE PLAIN")                 # the exchange is over: a new one works
    c.expect("AUTHENTICATE", "+")
    c.send("AUTHENTICATE " + _b64("alice", "alice", SECRET))
    c.expect("903")
    _end(c)


def test_authenticate_needs_the_cap_and_is_refused_after_registration(irc):
    c = irc()
    c.send("NICK alice")
    c.send("AUTHENTICATE PLAIN")
    assert "CAP REQ sasl" in c.expect("904").params[-1]
    c.send("USER alice 0 * :alice")
    c.expect("422")
    c.send("AUTHENTICATE PLAIN")
    assert "before registration" in c.expect("904").params[-1]


@pytest.mark.timeout(90)
@pytest.mark.parametrize("sasl", [True, False], ids=["sasl", "control-without-sasl"])
def test_weechat_logs_in_with_sasl_and_is_an_op_as_the_admin_identity(make_server, connect, tmp_path, sasl):
    """The admin identity (--admin-identity, as the hosting client passes
    its own) is an owner in every room: WeeChat presenting it with SASL
    shows as @ in #rust, which a window client without identity created,
    and may kick. Without SASL the same WeeChat is an ordinary member."""
    srv = make_server(rate_limit=0, irc_port=0, admin_identities=(p.fingerprint(SECRET),))
    bob = connect(srv=srv)
    hello_v2(bob, "bob")
    bob.send({"type": "join", "room": "rust", "ref": "j"})
    assert answer(bob, "room", "j")["role"] == "member"
    expect(bob, "joined", nick="bob")
    with WeeChat(tmp_path / "weechat", "127.0.0.1", srv.door_port("irc"), "wee",
                 sasl=("wee", SECRET) if sasl else None) as wee:
        server_log = wee.wait_log("server", "Welcome to Natter, wee")
        assert ("SASL authentication successful" in server_log) is sasl
        wee.send("/join #rust", "irc.server.test")
        log = wee.wait_log("#rust", "Channel #rust: 2 nicks")
        joined = next(line for line in log.splitlines() if "Channel #rust: 2 nicks" in line)
        assert ("1 op" in joined) is sasl, joined
        wee.send("/kick bob out you go", "irc.test.#rust")
        if sasl:
            f = bob.recv_type("left")
            assert (f["nick"], f["reason"], f["by"]) == ("bob", "kick", "wee")
        else:
            wee.wait_log("#rust", "Only an op of #rust may kick")        # the core's sentence, with 482
            assert "bob" in srv.hub.chat.rooms["rust"].nicks()


def test_a_login_binds_nothing_until_the_hello(irc, srv, connect):
    """903, then the client leaves before CAP END: the nick stays free."""
    c = irc()
    _begin(c, "alice")
    c.send("AUTHENTICATE " + _b64("alice", "alice", SECRET))
    c.expect("903")
    c.send("QUIT")
    c.expect("ERROR")
    w = connect(srv=srv)
    hello_v2(w, "alice")                    # no identity, and welcome: alice was never reserved
