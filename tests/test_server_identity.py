"""Identity without accounts over real sockets: nick bindings (also across a
restart, and their expiry), forget, fingerprints, admins by fingerprint and
by admin password."""
from __future__ import annotations

import time

import pytest

from server import auth
from server import protocol as p
from tests.moderationtools import Person, fp, reply, secret
from tests.netclient import LineClient
from tests.servertools import expect_error, wait_until

pytestmark = pytest.mark.timeout(30)


def hello_error(srv, nick: str, **hello) -> dict:
    c = LineClient(srv.port)
    try:
        c.send({"type": "hello", "nick": nick, "v": 2, **hello})
        f = c.recv()
        assert f["type"] == "error", f
        assert f["message"].strip()
        return f
    finally:
        c.close()


def gone(srv, nick: str):
    wait_until(lambda: p.nick_key(nick) not in srv.hub.chat.nicks, what=f"{nick} to be gone")


def test_a_nick_used_with_an_identity_is_reserved_for_it(make_server):
    srv = make_server(rate_limit=0)
    ann = Person(srv, "Ann")
    assert ann.welcome["fingerprint"] == fp("Ann") == p.fingerprint(secret("Ann"))
    assert ann.welcome["admin"] is False
    ann.close()
    gone(srv, "Ann")
    for nick, hello in [("Ann", {"identity": secret("Eve")}), ("ANN", {}), ("ａnn", {"identity": secret("Eve")})]:
        f = hello_error(srv, nick, **hello)
        assert f["code"] == p.NICK_RESERVED
        assert "reserved by another computer" in f["message"] and "/forget" in f["message"]
    again = Person(srv, "ann", identity=secret("Ann"))     # the same identity, any case
    assert again.welcome["nick"] == "ann"
    # The secret itself is nowhere in the file: only its fingerprint.
    data = open(srv.config.db, "rb").read() + _wal(srv)
    assert secret("Ann").encode() not in data and fp("Ann").encode() in data


def _wal(srv) -> bytes:
    try:
        return open(srv.config.db + "-wal", "rb").read()
    except FileNotFoundError:
        return b""


def test_a_nick_used_without_identity_binds_nothing(make_server):
    srv = make_server(rate_limit=0)
    bob = Person(srv, "bob", identity=False)
    assert "fingerprint" not in bob.welcome and bob.welcome["admin"] is False
    bob.close()
    gone(srv, "bob")
    Person(srv, "bob", identity=secret("other")).close()      # free, and now bound to "other"
    gone(srv, "bob")
    assert hello_error(srv, "bob")["code"] == p.NICK_RESERVED


def test_a_rename_to_a_reserved_nick_is_refused_with_its_ref(make_server):
    srv = make_server(rate_limit=0)
    Person(srv, "carol").close()
    gone(srv, "carol")
    dan = Person(srv, "dan")
    f = reply(dan.c, {"type": "nick", "nick": "Carol"})
    assert (f["type"], f["code"]) == ("error", p.NICK_RESERVED)
    f = reply(dan.c, {"type": "nick", "nick": "dan2"})
    assert f["type"] == "renamed" and f["new"] == "dan2"


def test_a_reservation_survives_a_restart(make_server, tmp_path):
    db = str(tmp_path / "kept.db")
    srv = make_server(rate_limit=0, db=db)
    Person(srv, "ann").close()
    srv.shutdown()
    srv2 = make_server(rate_limit=0, db=db)
    assert hello_error(srv2, "ann", identity=secret("eve"))["code"] == p.NICK_RESERVED
    assert Person(srv2, "ann").welcome["nick"] == "ann"


def test_a_reservation_unused_for_the_expiry_is_free_again(make_server):
    srv = make_server(rate_limit=0, nick_expiry=90)
    Person(srv, "ann").close()
    gone(srv, "ann")
    now = time.time()
    srv.hub.chat.clock = lambda: now + 89 * 86400
    assert hello_error(srv, "ann", identity=secret("eve"))["code"] == p.NICK_RESERVED
    srv.hub.chat.clock = lambda: now + 91 * 86400
    eve = Person(srv, "ann", identity=secret("eve"))       # free: and now eve's
    eve.close()
    gone(srv, "ann")
    assert hello_error(srv, "ann", identity=secret("ann"))["code"] == p.NICK_RESERVED


def test_the_hub_prunes_expired_reservations(make_server):
    srv = make_server(rate_limit=0, nick_expiry=1)
    Person(srv, "ann").close()
    gone(srv, "ann")
    store = srv.history
    assert store.nick_binding("ann") is not None
    srv.hub.chat.clock = lambda: time.time() + 2 * 86400
    srv.hub._next_prune = 0                  # the daily prune, due now (the hub's timer runs it)
    wait_until(lambda: srv.hub._next_prune > 0, what="the prune to run")
    wait_until(lambda: store.nick_binding("ann") is None, what="the binding to be pruned")


def test_forget_releases_the_nick(make_server):
    srv = make_server(rate_limit=0)
    ann = Person(srv, "ann")
    f = reply(ann.c, {"type": "forget"})
    assert f == {"type": "forgotten", "nick": "ann", "ref": f["ref"]}
    ann.close()
    gone(srv, "ann")
    assert Person(srv, "ann", identity=secret("eve")).welcome["nick"] == "ann"


def test_forget_without_identity_says_there_is_nothing_to_forget(make_server):
    srv = make_server(rate_limit=0)
    bob = Person(srv, "bob", identity=False)
    f = reply(bob.c, {"type": "forget"})
    assert (f["type"], f["code"]) == ("error", p.NO_IDENTITY) and "no identity" in f["message"]


def test_no_reserve_nicks_turns_binding_off(make_server):
    srv = make_server(rate_limit=0, reserve_nicks=False)
    Person(srv, "ann").close()
    gone(srv, "ann")
    assert Person(srv, "ann", identity=secret("eve")).welcome["nick"] == "ann"


@pytest.mark.parametrize("identity", ["short", "x" * 129, "é" * 40, 12345, "tab\there" + "x" * 30])
def test_a_bad_identity_is_refused_with_a_sentence(make_server, identity):
    srv = make_server(rate_limit=0)
    f = hello_error(srv, "ann", identity=identity)
    assert f["code"] == p.BAD_IDENTITY and "printable ASCII" in f["message"]


def test_an_admin_by_fingerprint_is_an_owner_of_every_room(make_server):
    srv = make_server(rate_limit=0, admin_identities=(fp("teacher"),))
    ann = Person(srv, "ann")
    ann.join("maths")                                   # ann creates it: ann owns it
    teacher = Person(srv, "teacher")
    assert teacher.welcome["admin"] is True
    room = teacher.join("maths")
    assert room["role"] == "owner" and room["roles"] == {"ann": "owner", "teacher": "owner"}
    bob = Person(srv, "bob")
    bob.join("maths")
    f = teacher.mod("maths", "op", "bob")
    assert f["type"] == "moderated" and f["action"] == "op" and f["by"] == "teacher"


def test_an_admin_by_password_and_a_wrong_admin_password(make_server, monkeypatch):
    checks = []
    real = auth.verify_hash
    monkeypatch.setattr(auth, "verify_hash", lambda pw, h: checks.append(pw) or real(pw, h))
    srv = make_server(rate_limit=0, admin_password=auth.hash_password("sesame"), auth_delay=0.05)
    c = LineClient(srv.port)
    c.send({"type": "hello", "nick": "mallory", "v": 2, "admin_password": "guess"})
    f = expect_error(c, p.AUTH_FAILED)
    assert "admin password" in f["message"]
    c.close()
    boss = Person(srv, "boss", admin_password="sesame")
    assert boss.welcome["admin"] is True
    assert checks == ["guess", "sesame"]                 # one hash per hello
    plain = Person(srv, "pat")
    assert plain.welcome["admin"] is False


def test_an_admin_password_on_a_server_without_one_fails(make_server):
    srv = make_server(rate_limit=0)
    c = LineClient(srv.port)
    c.send({"type": "hello", "nick": "x", "admin_password": "anything"})
    expect_error(c, p.AUTH_FAILED)
    c.close()


def test_the_command_line_takes_admin_identities_and_refuses_bad_ones(tmp_path):
    from server.config import from_args
    path = tmp_path / "admin"
    path.write_text(auth.hash_password("pw") + "\n")
    cfg = from_args(["--admin-identity", fp("a").upper(), "--admin-identity", fp("b"), "--admin-password-file",
                     str(path), "--no-reserve-nicks", "--nick-expiry", "7", "--edit-window", "60"])
    assert cfg.admin_identities == (fp("a"), fp("b"))
    assert auth.verify_hash("pw", cfg.admin_password)
    assert (cfg.reserve_nicks, cfg.nick_expiry, cfg.edit_window) == (False, 7, 60)
    assert from_args([]).reserve_nicks is True and from_args([]).nick_expiry == 90
    with pytest.raises(SystemExit):
        from_args(["--admin-identity", "abc"])
