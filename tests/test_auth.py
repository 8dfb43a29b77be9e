"""Room password: hashing, constant-cost checks, and the server using them."""
from __future__ import annotations

import subprocess
import sys
import time

import pytest

from server import auth
from tests.netclient import LineClient


def test_hash_verifies_only_the_right_password():
    h = auth.hash_password("correct horse")
    assert auth.is_hash(h) and "correct horse" not in h
    assert auth.verify_hash("correct horse", h)
    assert not auth.verify_hash("correct hors", h)
    assert not auth.verify_hash("", h)
    assert auth.hash_password("correct horse") != h   # salted


def test_corrupt_hash_never_verifies():
    assert not auth.verify_hash("x", "scrypt$16384$8$1$not-base64!$zz")


def test_check_caches_success_but_wrong_guesses_still_pay_scrypt():
    check = auth.PasswordCheck(auth.hash_password("pw"))
    t = time.perf_counter()
    assert check("pw")
    first = time.perf_counter() - t
    t = time.perf_counter()
    assert check("pw")
    cached = time.perf_counter() - t
    t = time.perf_counter()
    assert not check("pv")
    wrong = time.perf_counter() - t
    assert cached < first / 5
    assert wrong > first / 5, (first, wrong)


def test_plain_password_check():
    check = auth.PasswordCheck("plain")
    assert check("plain") and not check("plai") and not check(None) and not check("plain ")


def test_server_with_hashed_password_file(make_server, tmp_path):
    path = tmp_path / "pw"
    path.write_text(auth.hash_password("s3cret") + "\n")
    from server.config import from_args
    cfg = from_args(["--password-file", str(path)])
    srv = make_server(password=cfg.password)
    bad = LineClient(srv.port)
    bad.send({"type": "hello", "nick": "mallory", "password": "guess"})
    err = bad.recv()
    assert err["type"] == "error" and err["code"] == "auth_failed"
    assert err["message"] == "Wrong room password."
    assert bad.nothing_for(0.3)             # open, for another try after the delay
    good = LineClient(srv.port)
    assert good.hello("alice", password="s3cret")["nick"] == "alice"
    bad.close()
    good.close()


def test_hash_password_command_prints_a_hash_from_stdin():
    out = subprocess.run([sys.executable, "-m", "server", "--hash-password"], input="pw\n",
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 0
    assert auth.verify_hash("pw", out.stdout.strip())


def test_password_and_password_file_together_is_an_error(tmp_path):
    out = subprocess.run([sys.executable, "-m", "server", "--password", "a", "--password-file",
                          str(tmp_path / "x")], capture_output=True, text=True, timeout=30)
    assert out.returncode == 2 and "not both" in out.stderr


@pytest.mark.parametrize("content", ["", "\n"])
def test_empty_password_file_is_refused(tmp_path, content):
    path = tmp_path / "pw"
    path.write_text(content)
    out = subprocess.run([sys.executable, "-m", "server", "--password-file", str(path)],
                         capture_output=True, text=True, timeout=30)
    assert out.returncode == 2 and "empty" in out.stderr


@pytest.mark.parametrize("nick", ["alice", "Алиса", "Taro太郎", "たろう_Taro", "김민수", "Zoë", "राम", "ΑΒΓ"])
def test_single_script_nicks_and_latin_with_cjk_are_allowed(nick):
    from server.protocol import check_nick
    assert check_nick(nick) == nick


@pytest.mark.parametrize("nick", ["pаypal", "abcΑ", "Ρeter"])   # Cyrillic а, Greek Α, Greek Ρ
def test_mixed_script_look_alikes_are_refused(nick):
    from server.protocol import BAD_NICK, ProtocolError, check_nick
    with pytest.raises(ProtocolError) as e:
        check_nick(nick)
    assert e.value.code == BAD_NICK and "imitate" in e.value.message


def test_look_alike_nick_cannot_join_beside_the_original(connect):
    connect("Bob")
    for spoof in ["bob", "BOB", "Ｂｏｂ", "𝐁ob"]:
        c = connect()
        c.send({"type": "hello", "nick": spoof})
        assert c.recv()["code"] == "nick_taken", spoof


# The look-alikes of issue 9: with "bob" online, each drew exactly "bob" and was welcomed.
INVISIBLE_CLONES = ["bob\u034f", "bob\ufe0f", "bob\U000e0100", "bob\u180b", "bob\u17b4", "bob\u3164",
                    "bob\uffa0", "bob\u115f"]


@pytest.mark.parametrize("spoof", INVISIBLE_CLONES, ids=lambda n: f"U+{ord(n[-1]):04X}")
def test_an_invisible_character_cannot_clone_a_nick_that_is_online(connect, spoof):
    bob = connect("bob")
    c = connect()
    c.send({"type": "hello", "nick": spoof})
    f = c.recv()
    assert (f["type"], f["code"]) == ("error", "bad_nick"), f
    assert f"U+{ord(spoof[-1]):04X}" in f["message"] and "invisible" in f["message"]
    assert c.hello("bobby")["users"] == ["bob", "bobby"]      # the connection stays usable
    assert bob.recv_type("joined")["nick"] == "bobby"


@pytest.mark.parametrize("nick", ["\u3164", "\u3164\u3164\u3164", "\uffa0\u115f\u1160", "\u115f"])
def test_a_nick_of_hangul_fillers_only_is_refused(connect, nick):
    c = connect()
    c.send({"type": "hello", "nick": nick})
    f = c.recv()
    assert (f["type"], f["code"]) == ("error", "bad_nick"), f


def _count_hashes(monkeypatch) -> list:
    """Record the time of every scrypt check the server makes."""
    hashes = []
    real = auth.verify_hash

    def counted(password, stored):
        hashes.append(time.monotonic())
        return real(password, stored)
    monkeypatch.setattr(auth, "verify_hash", counted)
    return hashes


def test_a_burst_of_wrong_hellos_pays_one_hash_and_the_delay_doubles(make_server, monkeypatch):
    from server import protocol as p
    from tests.servertools import expect_error, wait_until
    hashes = _count_hashes(monkeypatch)
    base, cap = 0.2, 0.4
    srv = make_server(password=auth.hash_password("right"), rate_limit=0, auth_delay=base, auth_delay_max=cap)
    c = LineClient(srv.port)
    # Eight guesses in one write: before, eight scrypt runs (one per delay).
    c.send_raw(b"".join(p.encode({"type": "hello", "nick": "mallory", "password": f"guess{i}"})
                        for i in range(8)))
    expect_error(c, p.AUTH_FAILED)
    failed = time.monotonic()       # the delay runs from the answer at the latest
    for _ in range(7):
        f = expect_error(c, p.RATE_LIMITED)     # answered at once, unhashed
        assert "wait" in f["message"]
    assert len(hashes) == 1
    # After the delay the next guess is checked; the delay then doubles.
    wait_until(lambda: time.monotonic() >= failed + base, what="the first delay")
    c.send({"type": "hello", "nick": "mallory", "password": "guess8"})
    expect_error(c, p.AUTH_FAILED)
    failed = time.monotonic()
    assert len(hashes) == 2
    wait_until(lambda: time.monotonic() >= hashes[1] + base * 1.1, what="one base delay")
    c.send({"type": "hello", "nick": "mallory", "password": "right"})
    expect_error(c, p.RATE_LIMITED)             # 2 x base not over yet: still no hash
    assert len(hashes) == 2
    wait_until(lambda: time.monotonic() >= failed + 2 * base, what="the doubled delay")
    assert c.hello("mallory", password="right")["nick"] == "mallory"
    assert len(hashes) == 3
    c.close()


def test_the_right_password_in_the_same_write_as_a_wrong_one_waits_for_the_delay(make_server, monkeypatch):
    from server import protocol as p
    from tests.servertools import expect_error, wait_until
    hashes = _count_hashes(monkeypatch)
    srv = make_server(password=auth.hash_password("right"), rate_limit=0, auth_delay=0.3)
    c = LineClient(srv.port)
    c.send_raw(p.encode({"type": "hello", "nick": "ann", "password": "wrong"}) +
               p.encode({"type": "hello", "nick": "ann", "password": "right"}))
    expect_error(c, p.AUTH_FAILED)
    failed = time.monotonic()
    expect_error(c, p.RATE_LIMITED)
    assert len(hashes) == 1
    wait_until(lambda: time.monotonic() >= failed + 0.3, what="the delay")
    assert c.hello("ann", password="right")["type"] == "welcome"
    c.close()
