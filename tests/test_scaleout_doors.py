"""The IRC and text doors of a node sharing the rooms through a real
redis-server: every line a door's client says is stored and reaches the
clients of the other nodes, the same text twice included.

The Redis store takes a ref its session repeats for a retry of the same
message and stores it once (docs/scaling.md); the doors give each stored
event a ref of its own (server.doors.irc.errors.ref_for), or all but the
first of a door client's messages would be lost.
"""
from __future__ import annotations

import re

import pytest

from tests.irctools import IrcClient
from tests.redistools import stream
from tests.test_scaleout import read_until, welcomed
from tests.test_text_listener import TextClient


def _messages(frames, sender: str) -> list[str]:
    return [f["text"] for f in frames if f["type"] == "message" and f.get("from") == sender]


@pytest.mark.timeout(60)
def test_irc_lines_said_on_one_node_are_all_stored_and_reach_another(make_node, redis_server):
    a, b = make_node(irc_port=0), make_node()
    bob = welcomed(b.port, "bob")
    carol = IrcClient(a.door_port("irc"))
    carol.register("carol")
    carol.join("#lobby")
    texts = ["same", "same", "other", "same"]
    for t in texts:
        carol.send(f"PRIVMSG #lobby :{t}")
    carol.send("TOPIC #lobby :first")
    carol.send("TOPIC #lobby :second")
    read_until(bob, lambda fr: len(_messages(fr, "carol")) >= len(texts)
               and len([f for f in fr if f["type"] == "topic"]) >= 2)
    assert _messages(bob.frames, "carol") == texts
    assert [f["topic"] for f in bob.frames if f["type"] == "topic"] == ["first", "second"]
    refs = [e["ref"] for e in stream(redis_server.url) if e["room"] == "lobby"]
    assert len(refs) == len(texts) + 2 and len(set(refs)) == len(refs), refs     # bob said nothing
    carol.close()
    bob.close()


@pytest.mark.timeout(60)
def test_an_irc_error_still_names_its_target_with_the_numbered_ref(make_node):
    a = make_node(irc_port=0)
    carol = IrcClient(a.door_port("irc"))
    carol.register("carol")
    carol.send("PRIVMSG #nowhere :hello")        # not in that room: 442/404 names the channel
    reply = carol.expect("404")
    assert reply.params[1] == "#nowhere"
    carol.close()


@pytest.mark.timeout(60)
def test_text_door_lines_said_on_one_node_are_all_stored_and_reach_another(make_node, redis_server):
    a, b = make_node(text_port=0), make_node()
    bob = welcomed(b.port, "bob")
    t = TextClient(a.door_port("text"))
    guest = re.match(r"Welcome to Natter, (guest-\d+)!", t.line()).group(1)
    t.until(r"^In #lobby: ")
    for line in ("again", "again", "again"):
        t.send(line.encode() + b"\n")
    read_until(bob, lambda fr: len(_messages(fr, guest)) >= 3)
    assert _messages(bob.frames, guest) == ["again"] * 3
    t.close()
    bob.close()
