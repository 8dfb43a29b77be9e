"""Several servers sharing the rooms through one real redis-server (docs/scaling.md).

Nodes run in this process (make_node), or as ``python -m server --redis``
processes (tests/redistools.NodeProcess) where a test SIGKILLs one. The
checks are the issue's: every acknowledged ref is in the stream exactly
once, and every client's ids strictly increase and equal the stream's from
its first id on.
"""
from __future__ import annotations

import time

import pytest

from tests.netclient import LineClient
from tests.redistools import NodeProcess, check_gap_free, event_ids, read_until_stored, stream
from tests.servertools import expect, expect_error, wait_until


def welcomed(port: int, nick: str, **hello) -> LineClient:
    """A v2 client, welcomed and caught up (its frames so far in .frames)."""
    c = LineClient(port, timeout=10)
    c.hello(nick, v=2, **hello)
    c.recv_type("caught_up")
    return c


def read_until(client: LineClient, done, timeout: float = 20.0) -> None:
    """Read frames until done(client.frames) or the timeout (which fails)."""
    deadline = time.monotonic() + timeout
    while not done(client.frames):
        left = deadline - time.monotonic()
        if left <= 0:
            raise AssertionError(f"timed out; last frames {client.frames[-3:]}")
        try:
            client.recv(left)
        except TimeoutError:
            pass


def answer(client: LineClient, ref: str) -> dict:
    """The first frame with this ref, whatever came before it (presence, say)."""
    read_until(client, lambda fr: any(f.get("ref") == ref for f in fr))
    return next(f for f in client.frames if f.get("ref") == ref)


def acked_refs(frames) -> list[str]:
    out = []
    for f in frames:
        if f["type"] == "replay":
            out.extend(e["ref"] for e in f["frames"] if "ref" in e)
        elif f["type"] == "message" and "ref" in f:
            out.append(f["ref"])
    return out


def resend_until_acked(client: LineClient, ref: str, text: str | None = None, timeout: float = 30) -> dict:
    """Send a say again until its ack comes (each try waits for its answer:
    an ``unavailable`` with this ref, or the ack, which for a message stored
    before may come from the log without a new copy); returns the ack."""
    deadline = time.monotonic() + timeout
    while ref not in acked_refs(client.frames):
        assert time.monotonic() < deadline, f"{ref} was never acknowledged"
        start = len(client.frames)
        client.send({"type": "say", "text": text or ref, "ref": ref})
        read_until(client, lambda fr: ref in acked_refs(fr) or any(
            f["type"] == "error" and f.get("ref") == ref for f in fr[start:]), timeout=10)
        assert all(f["code"] == "unavailable" for f in client.frames[start:] if f["type"] == "error")
    return next(f for f in client.frames if f["type"] == "message" and f.get("ref") == ref)


def lobby_ids(url: str) -> list[int]:
    return [e["id"] for e in stream(url) if e["room"] == "lobby"]


@pytest.mark.timeout(90)
def test_clients_on_three_nodes_get_every_message_in_the_same_order(make_node, redis_server):
    nodes = [make_node() for _ in range(3)]
    clients = [welcomed(node.port, f"u{n}{i}") for n, node in enumerate(nodes) for i in range(2)]
    per_client = 40
    for k in range(per_client):                 # all of them at once, on every node
        for i, c in enumerate(clients):
            c.send({"type": "say", "text": f"{i}:{k}", "ref": f"c{i}-{k}"})
    total = per_client * len(clients)
    for c in clients:
        read_until(c, lambda fr: len([f for f in fr if f["type"] == "message"]) >= total)
    orders = [[f["id"] for f in c.frames if f["type"] == "message"] for c in clients]
    log = lobby_ids(redis_server.url)
    assert len(log) == total
    for ids in orders:
        assert ids == log                       # the same order everywhere: the stream's
    for i, c in enumerate(clients):             # each its own acks, once, with its refs
        assert acked_refs(c.frames) == [f"c{i}-{k}" for k in range(per_client)]
    refs = [e["ref"] for e in stream(redis_server.url)]
    assert len(refs) == len(set(refs)) == total


def test_a_nick_taken_on_one_node_is_taken_on_another(make_node):
    one, two = make_node(), make_node()
    ann = welcomed(one.port, "ann")
    other = LineClient(two.port)
    other.send({"type": "hello", "nick": "ANN", "v": 2})
    expect_error(other, "nick_taken")
    ann.send({"type": "bye"})
    ann.closed_by_server()
    wait_until(lambda: "ann" not in one.hub.chat.nicks, what="ann to leave node one")
    wait_until(lambda: one.history.online_holder("ann") is None, what="node one to free the nick")
    other.hello("ann", v=2)                         # free again, on the other node


@pytest.mark.timeout(60)
def test_one_nick_asked_on_two_nodes_at_once_is_given_to_one(make_node):
    """The claim is one Redis script: of two hellos with the same nick on two
    nodes at the same moment, one is welcomed and the other nick_taken."""
    one, two = make_node(), make_node()
    for i in range(10):
        nick = f"twin{i}"
        a, b = LineClient(one.port, timeout=10), LineClient(two.port, timeout=10)
        a.send({"type": "hello", "nick": nick, "v": 2})
        b.send({"type": "hello", "nick": nick, "v": 2})
        firsts = [c.recv() for c in (a, b)]
        assert sorted(f["type"] for f in firsts) == ["error", "welcome"], firsts
        assert next(f for f in firsts if f["type"] == "error")["code"] == "nick_taken"
        a.close()
        b.close()


@pytest.mark.timeout(60)
def test_a_nick_bound_to_an_identity_on_one_node_is_reserved_on_another(make_node):
    from tests.moderationtools import secret
    one, two = make_node(), make_node()
    ann = welcomed(one.port, "ann", identity=secret("ann"))
    ann.send({"type": "bye"})
    ann.closed_by_server()
    wait_until(lambda: one.history.online_holder("ann") is None, what="node one to free the nick")
    other = LineClient(two.port, timeout=10)
    other.send({"type": "hello", "nick": "ann", "v": 2, "identity": secret("mallory")})
    expect_error(other, "nick_reserved")
    bare = LineClient(two.port, timeout=10)
    bare.send({"type": "hello", "nick": "Ann", "v": 2})
    expect_error(bare, "nick_reserved")
    welcomed(two.port, "ann", identity=secret("ann"))     # its identity takes it on any node


@pytest.mark.slow
@pytest.mark.timeout(60)
def test_the_online_list_of_a_welcome_has_every_node_and_drops_a_dead_one(tmp_path, redis_server, make_node):
    one = make_node()
    doomed = NodeProcess(str(tmp_path / "doomed"), redis_server.url)
    try:
        ann = welcomed(one.port, "ann")
        bob = welcomed(doomed.port, "bob")
        assert LineClient(doomed.port).hello("carl", v=2)["users"] == ["ann", "bob", "carl"]
        assert ann and bob
        doomed.kill()                           # without a word: its key expires (NODE_TTL_MS)
        from server.store.redis import NODE_TTL_MS
        start = time.monotonic()
        wait_until(lambda: LineClient(one.port).hello(f"d{time.monotonic_ns()}", v=2)["users"][:1] == ["ann"]
                   and "bob" not in one.history.online_nicks([]), timeout=NODE_TTL_MS / 1000 + 10, interval=0.5,
                   what="the dead node's nicks to leave the list")
        assert time.monotonic() - start < NODE_TTL_MS / 1000 + 10
        LineClient(one.port).hello("bob", v=2)  # and its nicks are free
    finally:
        doomed.kill()


def test_a_rename_claims_the_nick_on_every_node(make_node):
    one, two = make_node(), make_node()
    ann = welcomed(one.port, "ann")   # kept: a closed client would free the nick
    bob = welcomed(two.port, "bob")
    # (bob may first get ann's joined: node two may learn her presence after bob's welcome)
    bob.send({"type": "nick", "nick": "ann", "ref": "n1"})
    no = answer(bob, "n1")
    assert (no["type"], no["code"]) == ("error", "nick_taken")
    bob.send({"type": "nick", "nick": "carl", "ref": "n2"})
    yes = answer(bob, "n2")
    assert (yes["type"], yes["new"]) == ("renamed", "carl")
    late = LineClient(one.port)
    late.send({"type": "hello", "nick": "carl", "v": 2})
    expect_error(late, "nick_taken")
    late.hello("bob", v=2)                          # the old nick was let go
    # ann (online on node one all along) saw bob come on node two, rename, and a new bob here:
    expect(ann, "joined", nick="bob")
    expect(ann, "renamed", old="bob", new="carl")
    expect(ann, "joined", nick="bob")


def test_a_session_made_on_one_node_resumes_on_another_with_its_rooms(make_node):
    one, two = make_node(), make_node()
    ann = welcomed(one.port, "ann")
    ann.send({"type": "join", "room": "Maths", "ref": "j"})
    expect(ann, "room", room="Maths", ref="j")
    ann.send({"type": "say", "room": "Maths", "text": "x", "ref": "s"})
    seen = ann.recv_type("message")
    assert seen["ref"] == "s"
    seen = seen["id"]
    token = ann.frames[0]["session"]
    ann.close()
    wait_until(lambda: not one.hub.chat.nicks, what="node one to see ann go")
    bob = welcomed(two.port, "bob")
    bob.send({"type": "join", "room": "maths", "ref": "j"})   # a room node two did not know
    expect(bob, "room", room="Maths", ref="j")
    bob.send({"type": "say", "room": "maths", "text": "while you were away", "ref": "b"})
    assert bob.recv_type("message")["ref"] == "b"
    back = LineClient(two.port, timeout=10)
    w = back.hello("ann", v=2, resume=token, since=seen)
    assert w["rooms"] == ["lobby", "Maths"] and w["session"] == token
    back.recv_type("caught_up")
    replayed = [e for f in back.frames if f["type"] == "replay" for e in f["frames"]]
    assert [e["text"] for e in replayed] == ["while you were away"]


@pytest.mark.timeout(60)
def test_a_retry_after_a_lost_reply_on_another_node_is_stored_once_and_not_delivered_twice(make_node,
                                                                                          redis_server):
    one, two = make_node(), make_node()
    watcher = welcomed(two.port, "watcher")
    ann = welcomed(one.port, "ann")
    token = ann.frames[0]["session"]
    ann.send({"type": "say", "text": "once", "ref": "x"})
    first = ann.recv_type("message")
    assert first["ref"] == "x"
    ann.close()         # as if the ack never reached the client: it resumes from before it, and resends
    back = LineClient(two.port, timeout=10)
    back.hello("ann", v=2, resume=token, since=first["id"] - 1)
    back.send({"type": "say", "text": "once", "ref": "x"})
    back.send({"type": "say", "text": "then", "ref": "y"})
    read_until(back, lambda fr: "y" in acked_refs(fr))
    assert acked_refs(back.frames) == ["x", "y"]            # x once (its stored copy), y
    log = stream(redis_server.url)
    assert [e["ref"] for e in log] == ["x", "y"] and log[0]["id"] == first["id"]
    read_until(watcher, lambda fr: "then" in texts(fr))
    assert texts(watcher.frames) == ["once", "then"]


def test_a_private_message_reaches_a_nick_on_another_node(make_node):
    one, two = make_node(), make_node()
    ann, bob = welcomed(one.port, "ann"), welcomed(two.port, "bob")
    expect(ann, "joined", nick="bob")               # presence across nodes (tests/test_scaleout_presence.py)
    bob.send({"type": "dm", "to": "ann", "text": "psst", "ref": "d"})
    mine = expect(bob, "dm", ref="d", text="psst")
    got = expect(ann, "dm", text="psst", id=mine["id"])
    assert "ref" not in got


@pytest.mark.timeout(60)
def test_messages_private_messages_topics_and_moderation_from_three_nodes_are_one_gapless_sequence(
        make_node, redis_server):
    nodes = [make_node() for _ in range(3)]
    from tests.moderationtools import secret
    own, bob, carl = (welcomed(n.port, nick, identity=secret(nick)) for n, nick in zip(nodes, ("own", "bob", "carl")))
    for c in (own, bob, carl):      # own makes the room: its owner
        c.send({"type": "join", "room": "maths", "ref": "j"})
        read_until(c, lambda fr: any(f["type"] == "room" and f.get("ref") == "j" for f in fr))
    read_until(own, lambda fr: {f.get("nick") for f in fr if f["type"] == "joined" and f.get("room") == "maths"}
               >= {"bob", "carl"})
    kinds = ("message", "dm", "topic", "moderated")
    own.send({"type": "say", "room": "maths", "text": "one", "ref": "a"})
    bob.send({"type": "say", "room": "maths", "text": "two", "ref": "b"})
    own.send({"type": "topic", "room": "maths", "topic": "fractions", "ref": "t"})
    carl.send({"type": "dm", "to": "own", "text": "psst", "ref": "d"})
    own.send({"type": "mod", "room": "maths", "action": "mute", "nick": "bob", "ref": "m"})
    own.send({"type": "mod", "room": "maths", "action": "unmute", "nick": "bob", "ref": "u"})
    carl.send({"type": "say", "room": "maths", "text": "three", "ref": "c"})

    def seen(frames) -> list[tuple[int, str]]:
        return [(f["id"], f["type"]) for f in frames if f["type"] in kinds and "id" in f]
    log = []
    wait_until(lambda: len(log.__setitem__(slice(None), stream(redis_server.url)) or log) >= 7,
               what="the seven events in the stream")
    assert not [f for c in (own, bob, carl) for f in c.frames if f["type"] == "error"]
    assert [e["id"] for e in log] == list(range(log[0]["id"], log[0]["id"] + 7))     # one gapless sequence
    assert sorted(e["kind"] for e in log) == sorted(["message"] * 3 + ["dm", "topic", "moderated", "moderated"])
    room_ids = [e["id"] for e in log if e["room"] == "maths"]
    for c in (own, bob, carl):      # each member: the room's events, the stream's ids, in its order
        read_until(c, lambda fr: {i for i, _ in seen(fr)} >= set(room_ids))
        assert [i for i, k in seen(c.frames) if k != "dm"] == room_ids
    dm_id = next(e["id"] for e in log if e["kind"] == "dm")
    for c in (own, carl):           # the private message: both ends, the same id
        assert (dm_id, "dm") in seen(c.frames)
    assert (dm_id, "dm") not in seen(bob.frames)
    assert not [f for c in (own, bob, carl) for f in c.frames if f["type"] == "error"]


def texts(frames) -> list[str]:
    """The texts of the messages among frames, replays opened."""
    out = []
    for f in frames:
        if f["type"] == "replay":
            out.extend(e["text"] for e in f["frames"] if e.get("type") == "message")
        elif f["type"] == "message":
            out.append(f["text"])
    return out


@pytest.mark.timeout(90)
def test_resumes_across_nodes_every_few_messages_leave_no_gap(make_node, redis_server):
    nodes = [make_node() for _ in range(3)]
    talker = welcomed(nodes[0].port, "talker")
    hop = LineClient(nodes[1].port, timeout=10)
    token = hop.hello("hopper", v=2)["session"]
    frames: list = []           # everything the hopper read, over all its connections
    sent = 0
    for round_ in range(15):
        for _ in range(5):
            talker.send({"type": "say", "text": f"m{sent}", "ref": f"t{sent}"})
            sent += 1
        read_until(hop, lambda fr: f"m{sent - 3}" in texts(fr))
        frames += hop.frames
        hop.close()             # what the server sent after m{sent-3} is lost with the connection
        hop = LineClient(nodes[round_ % 3].port, timeout=10)
        hop.hello("hopper", v=2, resume=token, since=event_ids(frames)[-1])
    read_until(hop, lambda fr: f"m{sent - 1}" in texts(fr))
    frames += hop.frames
    log = lobby_ids(redis_server.url)
    assert len(log) == sent
    check_gap_free(event_ids(frames), log)
    assert event_ids(frames) == log             # all of it, once, in order
    assert texts(frames) == [f"m{i}" for i in range(sent)]
    read_until(talker, lambda fr: len(acked_refs(fr)) >= sent)
    assert acked_refs(talker.frames) == [f"t{i}" for i in range(sent)]


@pytest.mark.timeout(120)
def test_senders_cut_off_and_resuming_on_another_node_every_few_messages_store_each_ref_once(make_node, redis_server):
    """Two clients each send a few messages without waiting, lose their
    connection as soon as the first is acknowledged (the rest in flight),
    resume on the next node with since and resume, and send again what was
    not acknowledged, as the window's outbox does; many times. Every ref is
    in the stream once, each sender's ids are the stream's from its first on,
    and each ref reached its sender once."""
    nodes = [make_node() for _ in range(3)]
    watcher = welcomed(nodes[2].port, "watcher")
    senders = []
    for i, name in enumerate(("hopa", "hopb")):
        c = LineClient(nodes[i].port, timeout=10)
        token = c.hello(name, v=2)["session"]
        c.recv_type("caught_up")
        senders.append({"name": name, "c": c, "token": token, "frames": [], "refs": [], "at": i})
    resent = []
    for round_ in range(20):
        for s in senders:
            for k in range(4):
                ref = f"{s['name']}-{round_}-{k}"
                s["refs"].append(ref)
                s["c"].send({"type": "say", "text": ref, "ref": ref})
        for s in senders:
            first = f"{s['name']}-{round_}-0"
            read_until(s["c"], lambda fr: first in acked_refs(s["frames"] + fr))
            s["frames"] += s["c"].frames
            s["c"].close()                  # the rest of the round is in flight, or unread
            s["at"] = (s["at"] + 1) % 3
            s["c"] = LineClient(nodes[s["at"]].port, timeout=10)
            s["c"].hello(s["name"], v=2, resume=s["token"], since=event_ids(s["frames"])[-1])
            read_until(s["c"], lambda fr: any(f["type"] == "caught_up" for f in fr))
            acked = set(acked_refs(s["frames"] + s["c"].frames))
            for ref in s["refs"]:
                if ref not in acked:        # sent again: stored once, whichever node had it
                    resent.append(ref)
                    s["c"].send({"type": "say", "text": ref, "ref": ref})
    for s in senders:
        read_until(s["c"], lambda fr: set(acked_refs(s["frames"] + fr)) >= set(s["refs"]), timeout=30)
        s["frames"] += s["c"].frames
    log = stream(redis_server.url)
    log_ids = [e["id"] for e in log]
    everyone = [r for s in senders for r in s["refs"]]
    assert sorted(e["ref"] for e in log) == sorted(everyone)    # every ref once: none lost, none twice
    assert resent, "no connection was cut with a message in flight"
    print(f"{len(resent)} resent, {len(everyone)} refs")
    for s in senders:
        check_gap_free(event_ids(s["frames"]), log_ids)
        assert sorted(acked_refs(s["frames"])) == sorted(s["refs"])   # each ack reached its sender once
    read_until(watcher, lambda fr: len(event_ids(fr)) >= len(log), timeout=30)
    assert event_ids(watcher.frames) == log_ids


@pytest.mark.timeout(120)
def test_resumes_while_another_node_streams_messages_leave_no_gap_and_no_repeat(make_node, redis_server):
    """The resume's two rules under traffic: a talker on node one streams
    without pause while the hopper is cut off and resumes on nodes two and
    three again and again (each resume attaches to the live feed while
    messages arrive); the hopper's ids are the stream's, once each, in order."""
    import threading
    nodes = [make_node() for _ in range(3)]
    talker = welcomed(nodes[0].port, "talker")
    hop = LineClient(nodes[1].port, timeout=10)
    token = hop.hello("hopper", v=2)["session"]
    total, stop = 600, threading.Event()

    def stream_messages():
        for i in range(total):
            if stop.is_set():
                return
            talker.send({"type": "say", "text": f"s{i}", "ref": f"s{i}"})
            stop.wait(0.003)
    sender = threading.Thread(target=stream_messages, daemon=True)
    sender.start()
    frames: list = []
    hops = 0
    try:
        while True:
            have = len(event_ids(frames))
            read_until(hop, lambda fr: len(event_ids(frames + fr)) >= min(have + 5, total))
            if len(event_ids(frames + hop.frames)) >= total:
                break
            frames += hop.frames
            hop.close()         # cut off with messages arriving
            hops += 1
            hop = LineClient(nodes[1 + hops % 2].port, timeout=10)
            hop.hello("hopper", v=2, resume=token, since=event_ids(frames)[-1])
        sender.join(30)
        read_until(hop, lambda fr: len(event_ids(frames + fr)) >= total, timeout=30)
        frames += hop.frames
    finally:
        stop.set()
        sender.join(5)
    assert hops >= 5, f"only {hops} resumes while the talker streamed"
    print(f"{hops} resumes while the talker streamed")
    log = lobby_ids(redis_server.url)
    assert len(log) == total
    check_gap_free(event_ids(frames), log)
    assert event_ids(frames) == log                     # from the first on: all, once, in order
    assert texts(frames) == [f"s{i}" for i in range(total)]


@pytest.mark.slow
@pytest.mark.timeout(120)
def test_sigkill_of_a_node_mid_burst_loses_and_repeats_nothing(tmp_path, redis_server, make_node):
    doomed = NodeProcess(str(tmp_path / "doomed"), redis_server.url)
    try:
        survivor, third = make_node(), make_node()         # three nodes, one killed
        watcher = welcomed(survivor.port, "watcher")
        other_watcher = welcomed(third.port, "other")
        sender = LineClient(doomed.port, timeout=10)
        w = sender.hello("sender", v=2)
        token = w["session"]
        sender.recv_type("caught_up")
        refs = [f"r{i}" for i in range(2000)]
        for ref in refs:                        # a burst the node will not finish
            sender.send({"type": "say", "text": ref, "ref": ref})
        read_until_stored(redis_server.url, 100, sender)
        doomed.kill()
        # (400 and a kill after 50 acks read: the node had stored them all by then)
        assert len(stream(redis_server.url)) < len(refs), "the node finished the burst before it was killed"
        seen = event_ids(sender.frames)
        acked = acked_refs(sender.frames)
        # The client reconnects to another node with its since and resume:
        back = LineClient(third.port, timeout=10)
        back.hello("sender", v=2, resume=token, since=seen[-1] if seen else 0)
        back.recv_type("caught_up")
        acked += acked_refs(back.frames)
        # ...and sends again what was never acknowledged (the idempotent append
        # keeps one copy of anything the dead node appended but could not ack).
        unacked = [r for r in refs if r not in set(acked)]
        for ref in unacked:
            back.send({"type": "say", "text": ref, "ref": ref})
        read_until(back, lambda fr: set(acked_refs(fr)) >= set(unacked))
        ids = seen + event_ids(back.frames)
        log = stream(redis_server.url)
        check_gap_free(ids, [e["id"] for e in log])
        log_refs = [e["ref"] for e in log]
        assert sorted(log_refs) == sorted(refs)          # every ref once: none lost, none twice
        for w in (watcher, other_watcher):
            read_until(w, lambda fr: len(event_ids(fr)) >= len(log))
            assert event_ids(w.frames) == [e["id"] for e in log]
    finally:
        doomed.kill()


@pytest.mark.timeout(90)
def test_redis_down_refuses_with_unavailable_and_recovers(make_node, redis_server):
    one, two = make_node(), make_node()
    ann, bob = welcomed(one.port, "ann"), welcomed(two.port, "bob")
    expect(ann, "joined", nick="bob")               # presence across nodes (tests/test_scaleout_presence.py)
    ann.send({"type": "say", "text": "before", "ref": "a1"})
    expect(ann, "message", ref="a1")
    expect(bob, "message", text="before")
    redis_server.kill()
    ann.send({"type": "say", "text": "during", "ref": "a2"})
    err = expect_error(ann, "unavailable", ref="a2")
    assert "nothing was stored" in err["message"]
    redis_server.restart()
    # The client sends it again (the window's outbox does): stored and delivered once.
    mine = resend_until_acked(ann, "a2", "during")
    got = bob.recv_type("message", 15)
    assert got["text"] == "during" and got["id"] == mine["id"]
    assert [e["ref"] for e in stream(redis_server.url)] == ["a1", "a2"]


@pytest.mark.timeout(90)
def test_redis_down_refuses_every_kind_of_write_and_a_hello_with_unavailable(make_node, redis_server):
    one, two = make_node(), make_node()
    ann, bob = welcomed(one.port, "ann"), welcomed(two.port, "bob")
    expect(ann, "joined", nick="bob")
    redis_server.kill()
    tries = [{"type": "dm", "to": "bob", "text": "x", "ref": "d1"},
             {"type": "topic", "room": "lobby", "topic": "t", "ref": "t1"},
             {"type": "join", "room": "maths", "ref": "j1"},
             {"type": "nick", "nick": "anna", "ref": "n1"}]
    for f in tries:
        ann.send(f)
        assert expect_error(ann, "unavailable", ref=f["ref"])
    late = LineClient(one.port, timeout=10)
    late.send({"type": "hello", "nick": "zed", "v": 2})
    assert expect_error(late, "unavailable")
    redis_server.restart()
    assert stream(redis_server.url) == []                   # nothing was stored
    ann.send({"type": "dm", "to": "bob", "text": "x", "ref": "d1"})
    deadline = time.monotonic() + 20
    while True:         # sent again, as the window's outbox does, until it is acknowledged
        f = ann.recv(10)
        if f["type"] == "dm" and f.get("ref") == "d1":
            break
        assert f["type"] == "error" and f["code"] == "unavailable" and time.monotonic() < deadline, f
        ann.send({"type": "dm", "to": "bob", "text": "x", "ref": "d1"})
    assert bob.recv_type("dm", 15)["id"] == f["id"]
    assert [e["ref"] for e in stream(redis_server.url)] == ["d1"]


@pytest.mark.slow
@pytest.mark.timeout(180)
def test_sigkill_of_redis_mid_burst_loses_no_acknowledged_message(make_node, redis_server):
    one, two, three = make_node(), make_node(), make_node()
    ann, bob, carl = welcomed(one.port, "ann"), welcomed(two.port, "bob"), welcomed(three.port, "carl")
    # Long enough that the kill lands mid-burst: the hub stores a pass's
    # says in one round trip, and 2000 were once all stored first.
    refs = [f"r{i}" for i in range(4000)]
    for ref in refs:
        ann.send({"type": "say", "text": ref, "ref": ref})
    read_until_stored(redis_server.url, 100, ann)
    redis_server.kill()
    # Every say is handled before this ping (stored before the kill, whether
    # its ack came yet or not, or refused after it):
    ann.send({"type": "ping"})
    read_until(ann, lambda fr: any(f["type"] == "pong" for f in fr), timeout=60)
    acked = acked_refs(ann.frames)
    refused = [f["ref"] for f in ann.frames if f["type"] == "error"]
    assert refused, "Redis was killed after the burst was stored"
    assert {f["code"] for f in ann.frames if f["type"] == "error"} <= {"unavailable"}
    redis_server.restart()
    log_refs = [e["ref"] for e in stream(redis_server.url)]
    assert set(acked) <= set(log_refs)                       # appendonly kept every ack
    assert len(log_refs) == len(set(log_refs))
    deadline = time.monotonic() + 60
    while True:                                              # the client sends the refused ones again
        assert time.monotonic() < deadline, "the refused messages were never acknowledged"
        missing = [r for r in refused if r not in set(acked_refs(ann.frames))]
        if not missing:
            break
        start = len(ann.frames)
        for ref in missing:
            ann.send({"type": "say", "text": ref, "ref": ref})
        read_until(ann, lambda fr: set(acked_refs(fr)) >= set(refs) or len(
            [f for f in fr[start:] if f["type"] == "error"]) + len(set(missing) & set(acked_refs(fr))) >= len(missing),
            timeout=30)                                      # each one acked, or refused again
        assert {f["code"] for f in ann.frames[start:] if f["type"] == "error"} <= {"unavailable"}
        refused = [f["ref"] for f in ann.frames[start:] if f["type"] == "error"] or refused
    read_until(ann, lambda fr: set(acked_refs(fr)) >= set(refs), timeout=30)   # the stored ones' acks too
    log = stream(redis_server.url)
    assert sorted(e["ref"] for e in log) == sorted(refs)
    check_gap_free(event_ids(ann.frames), [e["id"] for e in log])
    for c in (bob, carl):           # the other nodes' readers read on from their last id
        read_until(c, lambda fr: len(event_ids(fr)) >= len(log), timeout=30)
        assert event_ids(c.frames) == [e["id"] for e in log]


def test_a_protocol_1_client_and_an_irc_client_chat_across_nodes(make_node):
    one, two = make_node(), make_node(irc_port=0)
    old = LineClient(one.port)
    old.hello("old")                                    # protocol 1: the lobby only
    irc = LineClient(two.door_port("irc"))
    irc.send_raw(b"NICK ircer\r\nUSER ircer 0 * :I R C\r\n")
    wait_until(lambda: b" 001 " in irc.sock.recv(65536), what="the IRC welcome")
    irc.send_raw(b"JOIN #lobby\r\n")
    wait_until(lambda: "ircer" in two.hub.chat.rooms["lobby"].nicks(), what="the IRC client to join")
    old.send({"type": "say", "text": "hello irc", "ref": "o1"})
    assert old.recv_type("message")["ref"] == "o1"
    got = b""
    deadline = time.monotonic() + 10
    while b"hello irc" not in got and time.monotonic() < deadline:
        got += irc.sock.recv(65536)
    assert b"PRIVMSG #lobby :hello irc" in got
    irc.send_raw(b"PRIVMSG #lobby :hello old\r\n")
    m = old.recv_type("message")
    assert (m["from"], m["text"]) == ("ircer", "hello old")


@pytest.mark.timeout(60)
def test_the_window_s_client_keeps_an_unavailable_message_and_sends_it_once_redis_is_back(
        make_node, redis_server, make_chat_clients):
    from chatgui.net import events as ev
    node = make_node()
    client, events = make_chat_clients(node.port, "ann")
    events.wait(ev.CaughtUp, 15)
    redis_server.kill()
    ref = client.say("kept for later")
    # The node refuses it (nothing stored); the client keeps it and tries again...
    # (seen in its queue; before it kept them, the window was told Refused and it was lost)
    wait_until(lambda: events.drain() is not None and events.of(ev.Refused) or any(
        getattr(item, "retries", 0) for item in client._outbox._items.values()), timeout=15,
        what="the node's unavailable refusal")
    assert not events.of(ev.Refused), events.of(ev.Refused)
    redis_server.restart()
    acked = events.wait(lambda e: isinstance(e, ev.Acked) and e.ref == ref, 30, "the ack once Redis is back")
    assert not [e for e in events.seen if isinstance(e, ev.Refused)]
    log = stream(redis_server.url)
    assert [e["ref"] for e in log] == [ref] and log[0]["id"] == acked.id


def test_a_node_leaves_the_files_folder_of_this_computer_alone(make_node, tmp_path):
    """A node keeps its files in Redis (tests/test_scaleout_files.py): it must
    not sweep a files folder that a server of this computer without --redis
    keeps its files in."""
    folder = tmp_path / "files"
    folder.mkdir()
    (folder / "kept-by-another-server").write_bytes(b"not a node's")
    one = make_node(files_dir=str(folder))
    assert "shared files in Redis at redis://" in one.describe() and str(folder) not in one.describe()
    assert (folder / "kept-by-another-server").read_bytes() == b"not a node's"


@pytest.mark.timeout(90)
def test_the_client_with_a_list_of_nodes_resumes_on_another_when_its_node_dies(make_node, redis_server):
    """Issue 15: the window's/terminal's client given every node's address
    loses a node and costs a reconnect only: same session, no gap."""
    from chatgui.net import events as ev
    from chatgui.net.backoff import Backoff
    from chatgui.net.client import ChatClient
    from server import protocol
    from tests.chatclients import Events
    nodes = [make_node() for _ in range(3)]
    talker = welcomed(nodes[2].port, "talker")
    evs = Events()
    client = ChatClient([("127.0.0.1", n.port) for n in nodes], 0, "hopper", events=evs.q,
                        keep_session=False, backoff=Backoff(first=0.05, base=0.05, cap=0.1))
    client.start()
    try:
        assert evs.wait(ev.Connected, timeout=10).port == nodes[0].port
        evs.caught_up()
        sent = 0
        for _ in range(10):
            talker.send({"type": "say", "text": f"m{sent}", "ref": f"t{sent}"})
            sent += 1
        evs.wait(lambda e: isinstance(e, protocol.Message) and e.text == "m4", timeout=10)
        nodes[0].shutdown()
        for _ in range(10):             # sent while the hopper is between nodes
            talker.send({"type": "say", "text": f"m{sent}", "ref": f"t{sent}"})
            sent += 1
        again = evs.wait(ev.Connected, timeout=20)
        assert again.port == nodes[1].port and again.resumed
        ref = client.say("after the move")
        evs.wait(lambda e: isinstance(e, ev.Acked) and e.ref == ref, timeout=10)
        read_until(talker, lambda fr: len(acked_refs(fr)) >= sent and "after the move" in texts(fr))
        log = lobby_ids(redis_server.url)
        assert len(log) == sent + 1

        def shown():
            got = []
            for e in evs.seen:
                if isinstance(e, ev.Backlog):
                    got += [m for m in e.messages if isinstance(m, protocol.Message)]
                elif isinstance(e, protocol.Message):
                    got.append(e)
            return got
        while len(shown()) < len(log):
            evs.wait(lambda e: isinstance(e, (ev.Backlog, protocol.Message)), timeout=10)
        got = shown()
        ids = [m.id for m in got]
        check_gap_free(ids, log)
        assert ids == log                                   # from the first message on, all, once
        assert sorted(m.text for m in got) == sorted([f"m{i}" for i in range(sent)] + ["after the move"])
    finally:
        client.close(timeout=3)


def _says(refs, text="t") -> bytes:
    """Frames written at once, so the node's hub takes many in one pass (one batch of appends)."""
    import json
    return b"".join(json.dumps({"type": "say", "text": f"{text} {ref}", "ref": ref}).encode() + b"\n"
                    for ref in refs)


def test_says_written_at_once_are_acknowledged_once_each_and_a_retried_ref_stored_once(make_node, redis_server):
    one, two = make_node(), make_node()
    ann, bob = welcomed(one.port, "ann"), welcomed(two.port, "bob")
    refs = [f"r{i}" for i in range(40)]
    ann.send_raw(_says(refs[:20] + ["r5", "r0"] + refs[20:]) + b'{"type":"ping"}\n')
    read_until(ann, lambda fr: set(acked_refs(fr)) >= set(refs) and any(f["type"] == "pong" for f in fr))
    assert not [f for f in ann.frames if f["type"] == "error"]
    log = stream(redis_server.url)
    assert [e["ref"] for e in log] == refs                        # in order, each once
    assert [e["id"] for e in log] == list(range(1, 41))           # gapless
    assert sorted(acked_refs(ann.frames)) == sorted(refs)         # one acknowledgement each
    read_until(bob, lambda fr: len(event_ids(fr)) >= 40)
    assert event_ids(bob.frames) == event_ids(ann.frames) == [e["id"] for e in log]


def test_says_written_at_once_while_redis_is_down_are_each_refused_before_the_pong(make_node, redis_server):
    one, two = make_node(), make_node()
    ann, bob = welcomed(one.port, "ann"), welcomed(two.port, "bob")
    ann.send({"type": "say", "text": "before", "ref": "a0"})
    read_until(ann, lambda fr: "a0" in acked_refs(fr))      # (bob's joined from the other node may come first)
    redis_server.kill()
    refs = [f"d{i}" for i in range(8)]
    ann.send_raw(_says(refs) + b'{"type":"ping"}\n')
    read_until(ann, lambda fr: any(f["type"] == "pong" for f in fr), timeout=30)
    pong = next(i for i, f in enumerate(ann.frames) if f["type"] == "pong")
    errors = [f for f in ann.frames[:pong] if f["type"] == "error"]
    assert [(f["code"], f["ref"]) for f in errors] == [("unavailable", ref) for ref in refs]
    assert not set(acked_refs(ann.frames)) & set(refs)            # nothing of them acknowledged
    redis_server.restart()
    assert [e["ref"] for e in stream(redis_server.url)] == ["a0"]  # nor stored
    for ref in refs:                                               # the client sends them again
        resend_until_acked(ann, ref)
    log = stream(redis_server.url)
    assert [e["ref"] for e in log] == ["a0"] + refs
    assert [e["id"] for e in log] == list(range(1, 10))
    read_until(bob, lambda fr: len(event_ids(fr)) >= 9, timeout=30)
    assert event_ids(bob.frames) == [e["id"] for e in log]
    check_gap_free(event_ids(ann.frames), [e["id"] for e in log])
