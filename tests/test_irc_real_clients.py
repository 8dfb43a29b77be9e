"""Real IRC clients against the real server's IRC door: WeeChat headless
and irssi in tmux (tests/ircclients.py) each join a room, exchange messages
both ways with a window-protocol (JSON) client and with a plain-text
client (a raw socket on the text port, as nc), and show a message sent
before they joined at its own time (the JOIN replay with server-time)."""
from __future__ import annotations

import re
import types

import pytest

from server.store import sqlite as store_mod
from tests.ircclients import Irssi, WeeChat
from tests.servertools import answer, expect, hello_v2
from tests.test_text_listener import TextClient

pytestmark = pytest.mark.timeout(90)

OLD = 1577934245.0          # 2020-01-02 03:04:05 UTC: a time no live message has


@pytest.fixture
def room(make_server, connect, monkeypatch, tmp_path):
    """A server with the IRC and text doors, a JSON client 'bob' in #rust
    who said something 'long ago', and a text client in #rust."""
    monkeypatch.setenv("TZ", "UTC")           # the clients show times in UTC
    srv = make_server(rate_limit=0, irc_port=0, text_port=0)
    bob = connect(srv=srv)
    hello_v2(bob, "bob")
    bob.send({"type": "join", "room": "rust", "ref": "j"})
    answer(bob, "room", "j")
    expect(bob, "joined", nick="bob")
    real = store_mod.time
    monkeypatch.setattr(store_mod, "time", types.SimpleNamespace(time=lambda: OLD))
    bob.send({"type": "say", "room": "rust", "text": "old news", "ref": "old"})
    expect(bob, "message", ref="old")
    monkeypatch.setattr(store_mod, "time", real)
    text = TextClient(srv.door_port("text"))
    text.until(r"^In #lobby")
    text.send(b"/join rust\r\n")
    text.until(r"^In #rust")
    guest = until(bob, "joined", room="rust")["nick"]
    yield types.SimpleNamespace(srv=srv, bob=bob, text=text, guest=guest)
    text.close()


def _both_ways(r, say, sees, nick: str) -> None:
    """The IRC client's line reaches bob and the text client; theirs reach it."""
    say(f"hello from {nick}, ünïcode ☕")
    got = answer_message(r.bob, f"hello from {nick}, ünïcode ☕")
    assert got["from"] == nick and got["room"] == "rust"
    assert re.search(rf"^\d\d:\d\d <{nick}> hello from {nick}, ünïcode ☕$", r.text.until(f"hello from {nick}"))
    r.bob.send({"type": "say", "room": "rust", "text": f"hi {nick}, from json"})
    sees("bob", f"hi {nick}, from json")
    r.text.send(f"hi {nick}, from nc\r\n".encode())
    sees(r.guest, f"hi {nick}, from nc")


def answer_message(client, text: str) -> dict:
    return until(client, "message", text=text)


def until(client, kind: str, **fields) -> dict:
    """Skip frames until one of this type with these fields (each recv has a timeout)."""
    while True:
        f = client.recv()
        if f["type"] == kind and all(f.get(k) == v for k, v in fields.items()):
            return f


def test_weechat_in_a_room_with_json_and_nc(room, tmp_path):
    r = room
    with WeeChat(tmp_path / "weechat", "127.0.0.1", r.srv.door_port("irc"), "wee") as wee:
        wee.wait_log("server", "Welcome to Natter, wee")
        wee.send("/join #rust", "irc.server.test")
        log = wee.wait_log("#rust", "old news")
        # server-time: the replayed line carries its own time, not now's.
        assert "03:04:05\tbob\told news" in log, log
        until(r.bob, "joined", room="rust", nick="wee")

        def sees(who, text):
            assert f"\t{who}\t{text}" in wee.wait_log("#rust", text)
        _both_ways(r, lambda text: wee.say("#rust", text), sees, "wee")


def test_irssi_in_a_room_with_json_and_nc(room, tmp_path):
    r = room
    with Irssi(tmp_path / "irssi", "127.0.0.1", r.srv.door_port("irc"), "irs") as irs:
        irs.wait_screen("Welcome to Natter, irs")
        assert "server-time" in r.srv.hub.chat.nicks["irs"].door.caps.enabled
        irs.type("/set show_server_time on")      # irssi takes the tag's time only when told to
        irs.type("/join #rust")
        screen = irs.wait_screen("old news")
        line = next(x for x in screen.splitlines() if "old news" in x)
        assert "2 Jan 03:04 < bob> old news" in line, line     # server-time: its own date and time
        until(r.bob, "joined", room="rust", nick="irs")

        def sees(who, text):
            screen = irs.wait_screen(text)
            assert any(who in x and text in x for x in screen.splitlines())
        _both_ways(r, irs.type, sees, "irs")
