"""Server basics over real loopback sockets: chat, ack by ref, history."""
from __future__ import annotations


def test_two_clients_chat_and_sender_gets_ack_with_ref(connect):
    alice = connect("alice")
    bob = connect("bob")
    assert alice.recv_type("joined")["nick"] == "bob"
    alice.send({"type": "say", "text": "hi bob", "ref": "r1"})
    mine = alice.recv_type("message")
    theirs = bob.recv_type("message")
    assert mine["ref"] == "r1" and "ref" not in theirs
    assert mine["id"] == theirs["id"] and theirs["from"] == "alice" and theirs["text"] == "hi bob"


def test_history_survives_restart_and_ids_keep_growing(make_server, tmp_path):
    from tests.netclient import LineClient
    db = str(tmp_path / "h.db")
    srv = make_server(db=db, rate_limit=0)
    c = LineClient(srv.port)
    c.hello("ann")
    for i in range(3):
        c.send({"type": "say", "text": f"m{i}"})
    ids = [c.recv_type("message")["id"] for _ in range(3)]
    c.close()
    srv.shutdown()
    srv2 = make_server(db=db, rate_limit=0)
    c2 = LineClient(srv2.port)
    w = c2.hello("ann")
    assert [m["id"] for m in w["history"]] == ids and w["last_id"] == ids[-1]
    c2.send({"type": "say", "text": "after"})
    assert c2.recv_type("message")["id"] > ids[-1]
    c2.close()
