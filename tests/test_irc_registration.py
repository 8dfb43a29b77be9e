"""IRC registration with no sockets: CAP LS 302 / REQ / END, SASL PLAIN,
PASS (room password or nick:secret), NICK validity with a sentence for a
nick valid on one side only (server/doors/irc/caps.py, registration.py,
names.py)."""
from __future__ import annotations

import base64

import pytest
from hypothesis import given, strategies as st

from server import protocol as p
from server.doors.irc import caps as c
from server.doors.irc.names import Refused, check_irc_nick
from server.doors.irc.registration import Login, Registration
from server.doors.irc.wire import parse, serialise

S = "irc.test"


def _reg(sasl=True):
    neg = c.CapNegotiation(S, c.available_caps(sasl=sasl, roles=False))
    return Registration(S, neg, c.SaslPlain(S) if sasl else None)


def _send(reg, *lines):
    """Feed lines; return (every reply as bytes, the Logins handed out)."""
    replies, logins = [], []
    for line in lines:
        out, login = reg.handle(parse(line))
        replies += [serialise(m) for m in out]      # every reply must serialise
        if login:
            logins.append(login)
    return replies, logins


def _b64(*parts: str) -> str:
    return base64.b64encode("\0".join(parts).encode()).decode()


# -- CAP ---------------------------------------------------------------------

def test_cap_ls_302_shows_values_and_suspends_registration():
    reg = _reg()
    out, logins = _send(reg, b"CAP LS 302", b"NICK alice", b"USER a 0 * :Alice")
    assert out == [b":irc.test CAP * LS :batch draft/chathistory echo-message message-tags sasl=PLAIN server-time\r\n"]
    assert logins == [] and reg.caps.suspended
    out, logins = _send(reg, b"CAP REQ :server-time message-tags", b"CAP END")
    assert out == [b":irc.test CAP alice ACK :server-time message-tags\r\n"]
    assert logins == [Login("alice", "a", "Alice")] and reg.caps.enabled == {"server-time", "message-tags"}


def test_cap_ls_without_302_hides_values():
    out, _ = _send(_reg(), b"CAP LS")
    assert b"sasl " in out[0] + b" " and b"sasl=" not in out[0]


def test_cap_req_is_granted_whole_or_not_at_all_and_minus_disables():
    reg = _reg(sasl=False)
    out, _ = _send(reg, b"CAP REQ :server-time sasl")
    assert out == [b":irc.test CAP * NAK :server-time sasl\r\n"] and reg.caps.enabled == set()
    _send(reg, b"CAP REQ :server-time batch", b"CAP REQ -batch")
    assert reg.caps.enabled == {"server-time"}
    out, _ = _send(reg, b"CAP LIST")
    assert out == [b":irc.test CAP * LIST server-time\r\n"]


def test_a_long_302_list_is_split_with_a_star():
    neg = c.CapNegotiation(S, {f"vendor.example/cap-number-{i:03d}": None for i in range(40)})
    lines = [serialise(m) for m in neg.handle(("LS", "302"), None, False)]
    assert len(lines) > 1 and all(len(x) <= 512 for x in lines)
    assert all(b" LS * :" in x for x in lines[:-1]) and b" LS * " not in lines[-1]
    assert sum(x.count(b"cap-number-") for x in lines) == 40


def test_cap_odd_input_gets_an_answer_not_a_crash():
    out, _ = _send(_reg(), b"CAP LS \xc2\xb2", b"CAP", b"CAP :FROB a b")
    assert b" LS :" in out[0]
    assert b" 461 * CAP " in out[1] and b" 410 * FROB_a_b " in out[2]


# -- SASL PLAIN --------------------------------------------------------------

def test_sasl_plain_waits_for_the_core_before_903():
    reg = _reg()
    _send(reg, b"CAP LS 302", b"NICK alice", b"USER a 0 * :A", b"CAP REQ sasl")
    out, _ = _send(reg, b"AUTHENTICATE PLAIN")
    assert out == [b"AUTHENTICATE +\r\n"]
    out, logins = _send(reg, b"AUTHENTICATE " + _b64("alice", "alice", "s3cret").encode(), b"CAP END")
    assert out == [] and logins == []                       # nothing claimed yet, registration waits
    assert reg.sasl.presented == c.Credentials("alice", "s3cret")
    ok = [serialise(m) for m in reg.sasl.verified("alice", True)]
    assert ok == [b":irc.test 900 alice alice!u@natter alice :You are now logged in as alice\r\n",
                  b":irc.test 903 alice :SASL authentication successful\r\n"]
    assert reg.retry() == Login("alice", "a", "A", None, c.Credentials("alice", "s3cret"))


def test_sasl_refused_by_the_core_says_why_and_registers_without_identity():
    reg = _reg()
    _send(reg, b"CAP REQ sasl", b"NICK bob", b"USER b 0 * :B", b"AUTHENTICATE PLAIN",
          b"AUTHENTICATE " + _b64("", "bob", "wrong").encode())
    out = [serialise(m) for m in reg.sasl.verified("bob", False, "That secret does not match the nick bob")]
    assert out == [b":irc.test 904 bob :That secret does not match the nick bob\r\n"]
    _, logins = _send(reg, b"CAP END")
    assert logins == [Login("bob", "b", "B")]


def test_sasl_chunks_of_400_and_the_bad_forms():
    s = c.SaslPlain(S)
    secret = "x" * 400
    data = _b64("carol", "carol", secret)
    s.handle(("PLAIN",), "carol")
    chunks = [data[i:i + 400] for i in range(0, len(data), 400)]
    assert len(chunks[-1]) < 400
    for chunk in chunks:
        assert s.handle((chunk,), "carol") == []
    assert s.presented == c.Credentials("carol", secret)
    for bad, code in ((["PLAIN", "!!notbase64"], "904"), (["PLAIN", _b64("a", "b", "pw")], "904"),
                      (["PLAIN", _b64("a", "pw")], "904"), (["SCRAM-SHA-256"], "908"),
                      (["PLAIN", "A" * 401], "905"), (["PLAIN", "*"], "906")):
        s = c.SaslPlain(S)
        out = []
        for arg in bad:
            out += s.handle((arg,), "carol")
        assert code in {m.command for m in out}, (bad, out)
        assert s.presented is None


def test_authenticate_without_the_cap_is_refused_with_a_sentence():
    out, _ = _send(_reg(), b"AUTHENTICATE PLAIN")
    assert out[0].startswith(b":irc.test 904 * :Request the sasl capability")


# -- PASS --------------------------------------------------------------------

def test_pass_carries_the_server_password():
    _, logins = _send(_reg(), b"PASS :room pass", b"NICK dora", b"USER d 0 * :D")
    assert logins == [Login("dora", "d", "D", password="room pass")]


def test_pass_nick_colon_secret_is_an_identity_for_that_nick_only():
    _, logins = _send(_reg(), b"PASS Dora:s3:cret", b"NICK dora", b"USER d 0 * :D")
    assert logins == [Login("dora", "d", "D", None, c.Credentials("Dora", "s3:cret"))]
    _, logins = _send(_reg(), b"PASS eve:x", b"NICK dora", b"USER d 0 * :D")
    assert logins == [Login("dora", "d", "D", password="eve:x")]       # not her nick: a password


# -- NICK --------------------------------------------------------------------

@pytest.mark.parametrize("nick, words", [
    ("bob[away]", "'[' ']' are fine on IRC but not here"),
    ("b.o.b", "'.' is fine on IRC but not here"),
    ("раsha", "Nick mixes"),                 # Cyrillic р, а with Latin s, h: IRC takes it
    ("a" * 33, "Nick is longer than 32 characters"),
    ("bob!x", "IRC nicks may not hold '!'"),
    ("#bob", "IRC nicks may not start with '#'"),
])
def test_a_nick_one_side_refuses_gets_432_with_the_rule(nick, words):
    with pytest.raises(Refused) as e:
        check_irc_nick(nick)
    assert words in e.value.text
    out, _ = _send(_reg(), b"NICK " + nick.encode())
    assert out[0].startswith(b":irc.test 432 * ") and words.encode() in out[0]


def test_432_echoes_an_unsendable_nick_safely():
    out, _ = _send(_reg(), b"NICK ::-) x")
    assert out == [b":irc.test 432 * -)_x :IRC nicks may not hold ' '\r\n"]


@given(st.text(min_size=1, max_size=20))
def test_every_natter_nick_is_an_irc_nick(nick):
    try:
        natter = p.check_nick(nick)
    except p.ProtocolError:
        return
    assert check_irc_nick(nick) == natter


def test_nick_in_use_then_another_nick_makes_a_new_login():
    reg = _reg()
    _, logins = _send(reg, b"NICK alice", b"USER a 0 * :A")
    assert [x.nick for x in logins] == ["alice"]
    reg.refused()                                  # the core said: nick_taken
    assert reg.retry() is None                     # nothing to try until a new NICK
    _, logins = _send(reg, b"NICK alice2")
    assert [x.nick for x in logins] == ["alice2"]
    assert reg.welcomed("alice2") is None and reg.registered


def test_a_nick_sent_while_the_core_decides_is_handed_back():
    reg = _reg()
    _send(reg, b"NICK alice", b"USER a 0 * :A", b"NICK alicia")
    assert reg.welcomed("alice") == "alicia"


def test_user_twice_and_short_user_are_refused():
    out, _ = _send(_reg(), b"USER a 0 *", b"USER a 0 * :A", b"USER b 0 * :B")
    assert b" 461 * USER " in out[0] and b" 462 * " in out[1]
