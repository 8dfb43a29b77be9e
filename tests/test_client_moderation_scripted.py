"""The network client's issue 11 against servers the test plays by hand
(frames written to DESIGN-11): the identity in the hello, and never
before the TLS certificate is trusted; every request frame; every new
server frame, live, in a replay and in a history page; ``since`` counting
``seq``; refusals with their times; a reserved nick at the hello."""
from __future__ import annotations

import json

import pytest

from chatgui.net import events as ev
from chatgui.net import moderation as mod
from chatgui.net.pins import PinStore
from server import protocol, tls
from tests.played import played  # noqa: F401 (a fixture)
from tests.servertools import wait_until
from tests.test_client_rooms_scripted import QUICK, TS, msg, online, quiet, room, until, welcome2
from tests.test_client_tls import TlsRecorder, other_certificate

pytestmark = pytest.mark.timeout(60)

SECRET = "k" * 20 + "-_" + "Z9" * 11           # 44 printable characters


def test_the_hello_carries_the_identity_and_a_client_without_one_sends_none(make_chat_clients, played):
    srv = played()
    make_chat_clients(srv.port, "ann", identity=SECRET, **QUICK)
    make_chat_clients(srv.port, "bob", **QUICK)
    hellos = sorted((srv.accept().recv() for _ in range(2)), key=lambda h: h["nick"])
    assert hellos[0]["identity"] == SECRET
    assert "identity" not in hellos[1]
    with pytest.raises(ValueError):
        make_chat_clients(srv.port, "eve", identity="too short")


def test_no_hello_and_so_no_identity_reaches_an_untrusted_certificate(make_chat_clients, tmp_path):
    cert, key = other_certificate(tmp_path, "untrusted")
    shown = tls.cert_fingerprint(cert)
    rec = TlsRecorder(cert, key)
    try:
        a, ae = make_chat_clients(rec.port, "ann", tls=True, identity=SECRET, password="pw")
        assert ae.wait(ev.ConnectFailed).kind == "tls_new"
        assert rec.until_ended(0) == b""            # the handshake happened, then not one byte
        # A pinned certificate that changed: nothing either.
        PinStore().pin("127.0.0.1", rec.port, tls.cert_fingerprint(other_certificate(tmp_path, "old")[0]))
        b, be = make_chat_clients(rec.port, "ann", tls=True, identity=SECRET)
        assert be.wait(ev.ConnectFailed).kind == "tls_changed"
        assert rec.until_ended(1) == b""
        # Once the person trusts it, the hello goes, with the identity.
        c, ce = make_chat_clients(rec.port, "ann", tls=True, identity=SECRET, accept_fingerprint=shown)
        wait_until(lambda: len(rec.received) > 2 and b"\n" in rec.received[2], what="the hello")
        hello = json.loads(bytes(rec.received[2]).split(b"\n")[0])
        assert (hello["type"], hello["identity"]) == ("hello", SECRET)
    finally:
        rec.close()


def test_every_request_frame_and_its_answer(make_chat_clients, played):
    srv = played()
    a, ae = make_chat_clients(srv.port, "ann", identity=SECRET, **QUICK)
    conn = srv.accept()
    online(conn, rooms=("lobby", "maths"))
    until(ae, ev.CaughtUp)
    refs = [a.mod("maths", "mute", "bob", "noise", 300), a.mod("maths", "kick", "bob"),
            a.mode("maths", moderated=True, slow=30, key=""), a.delete(7, "spam"), a.edit(8, "fixed"),
            a.release(9), a.audit("maths"), a.forget()]
    got = [conn.recv() for _ in refs]
    assert got == [
        {"type": "mod", "room": "maths", "action": "mute", "nick": "bob", "reason": "noise", "duration": 300,
         "ref": refs[0]},
        {"type": "mod", "room": "maths", "action": "kick", "nick": "bob", "ref": refs[1]},
        {"type": "mode", "room": "maths", "moderated": True, "slow": 30, "key": "", "ref": refs[2]},
        {"type": "delete", "id": 7, "reason": "spam", "ref": refs[3]},
        {"type": "edit", "id": 8, "text": "fixed", "ref": refs[4]},
        {"type": "release", "id": 9, "ref": refs[5]},
        {"type": "audit", "room": "maths", "ref": refs[6]},
        {"type": "forget", "ref": refs[7]}]
    conn.send({"type": "moderated", "room": "maths", "action": "mute", "nick": "bob", "by": "ann",
               "reason": "noise", "until": TS + 300, "id": 20, "ts": TS, "ref": refs[0]})
    conn.send({"type": "error", "code": "forbidden", "message": "bob is an op.", "ref": refs[1]})
    conn.send({"type": "mode", "room": "maths", "moderated": True, "slow": 30, "key": False, "by": "ann",
               "modes": {"moderated": True, "questions": False, "announce": False, "slow": 30, "dm": True,
                         "key": False}, "id": 21, "ts": TS, "ref": refs[2]})
    conn.send({"type": "deleted", "room": "maths", "id": 7, "by": "ann", "seq": 22, "ref": refs[3]})
    conn.send({"type": "edited", "room": "maths", "id": 8, "text": "fixed", "edited_ts": TS + 5, "seq": 23,
               "ref": refs[4]})
    conn.send(dict(msg(24, "a question", room="maths", sender="bob"), question=9, released_by="ann",
                   ref=refs[5]))
    conn.send({"type": "audit", "room": "maths", "ref": refs[6],
               "entries": [{"ts": TS, "by": "ann", "action": "mute", "nick": "bob", "reason": "noise"}]})
    conn.send({"type": "forgotten", "nick": "ann", "ref": refs[7]})
    ae.wait(lambda e: isinstance(e, ev.Acked) and e.ref == refs[7])
    kinds = [(type(e).__name__, getattr(e, "ref", None)) for e in ae.seen if not isinstance(e, ev.Acked)]
    assert kinds[-8:] == [("Moderated", refs[0]), ("Refused", refs[1]), ("ModeChanged", refs[2]),
                          ("Deleted", refs[3]), ("Edited", refs[4]), ("MarkedMessage", refs[5]),
                          ("Audit", refs[6]), ("Forgotten", refs[7])]
    assert {e.ref for e in ae.of(ev.Acked)} >= set(refs) - {refs[1]}
    moderated = ae.of(mod.Moderated)[0]
    assert (moderated.action, moderated.nick, moderated.by, moderated.until, moderated.id) == \
        ("mute", "bob", "ann", TS + 300, 20)
    mode = ae.of(mod.ModeChanged)[0]
    assert mode.changed == {"moderated": True, "slow": 30, "key": False} and mode.modes["slow"] == 30
    released = ae.of(mod.MarkedMessage)[0]
    assert (released.released_from, released.released_by, released.question) == (9, "ann", False)
    assert ae.of(mod.Audit)[0].entries == (mod.AuditEntry(TS, "ann", "mute", "bob", "noise"),)
    assert a.pending() == 0
    # Answered, so not sent again after a reconnect; and since counts the seq ids.
    conn.close()
    again = srv.accept()
    assert again.recv()["since"] == 24
    again.send(welcome2(rooms=["lobby", "maths"], last_id=24))
    again.send(protocol.caught_up_frame(24))
    assert quiet(again) == []


def test_refusals_carry_their_times_and_bad_requests_are_refused_before_sending(make_chat_clients, played):
    srv = played()
    a, ae = make_chat_clients(srv.port, "ann", **QUICK)
    conn = srv.accept()
    online(conn, rooms=("lobby", "maths"))
    until(ae, ev.CaughtUp)
    muted, slow = a.say("hi", "maths"), a.say("again", "maths")
    conn.recv(), conn.recv()
    conn.send({"type": "error", "code": "muted", "message": "You are muted.", "until": TS + 240, "ref": muted})
    conn.send({"type": "error", "code": "slow_mode", "message": "Slow down.", "retry_after": 12, "ref": slow})
    got = [ae.wait(ev.Refused) for _ in range(2)]
    assert [(r.code, r.until, r.retry_after) for r in got] == [("muted", TS + 240, None), ("slow_mode", None, 12.0)]
    bad = [a.mod("maths", "behead", "bob"), a.mod("maths", "ban", "bob", duration=-5),
           a.mode("maths", slow=999_999), a.mode("maths", colour="red"), a.mod("#no such room", "kick", "bob")]
    refused = [ae.wait(ev.Refused) for _ in bad]
    assert [r.ref for r in refused] == bad
    assert [r.code for r in refused][:4] == ["bad_mod"] * 4
    assert quiet(conn) == []                        # none of them went out
    with pytest.raises(ValueError):
        a.delete("seven")


def test_stored_moderation_events_in_a_replay_and_a_history_page(make_chat_clients, played):
    srv = played()
    a, ae = make_chat_clients(srv.port, "ann", **QUICK)
    conn = srv.accept()
    conn.recv()
    conn.send(welcome2(rooms=["maths"], last_id=9))
    conn.send(dict(room("maths"), role="op", roles={"ann": "op", "bob": "voice", "eve": "emperor"},
                   modes={"moderated": True, "slow": 10, "dm": False, "questions": "yes"}))
    conn.send(protocol.replay_frame([
        msg(3, "hi", room="maths"),
        dict(msg(4, "why?", room="maths"), question=True),
        {"type": "moderated", "room": "maths", "action": "voice", "nick": "bob", "by": "ann", "reason": None,
         "until": None, "id": 5, "ts": TS},
        {"type": "deleted", "room": "maths", "id": 3, "by": "ann", "seq": 6},
        {"type": "deleted", "room": "maths", "by": "ann", "seq": 7},          # no id: this one alone is skipped
        {"type": "edited", "room": "maths", "id": 4, "text": "why not?", "edited_ts": TS + 1, "seq": 8},
        {"type": "mode", "room": "maths", "announce": True, "by": "ann", "id": 9, "ts": TS}]))
    conn.send(protocol.caught_up_frame(9))
    seen = until(ae, ev.CaughtUp)
    state = next(e for e in seen if isinstance(e, ev.RoomState))
    assert state.powers == mod.RoomPowersInfo("op", (("ann", "op"), ("bob", "voice")),
                                              tuple(dict(mod.MODE_DEFAULTS, moderated=True, slow=10,
                                                         dm=False).items()))
    backlog = [m for e in seen if isinstance(e, ev.Backlog) for m in e.messages]
    assert [type(m).__name__ for m in backlog] == ["Message", "MarkedMessage", "Moderated", "Deleted", "Edited",
                                                   "ModeChanged"]
    assert backlog[1].question and backlog[4].text == "why not?" and backlog[5].modes is None
    ref = a.history(room="maths")
    assert conn.recv()["type"] == "history"
    conn.send(protocol.history_frame([{"type": "deleted", "room": "maths", "id": 3, "by": "ann"},
                                      dict(msg(4, "why not?", room="maths"), edited_ts=TS + 1)],
                                     False, room="maths", ref=ref))
    page = ae.wait(protocol.HistoryPage)
    assert [type(m).__name__ for m in page.messages] == ["Deleted", "MarkedMessage"]
    assert page.messages[0] == mod.Deleted("maths", None, 3, "ann")
    assert page.messages[1].edited_ts == TS + 1
    # Live: a deletion already seen in the replay is not delivered twice.
    conn.send({"type": "deleted", "room": "maths", "id": 3, "by": "ann", "seq": 6})
    conn.send({"type": "edited", "with": "bob", "id": 10, "text": "private fix", "edited_ts": TS, "seq": 11})
    edited = ae.wait(mod.Edited)
    assert (edited.room, edited.with_, edited.seq) == (None, "bob", 11)
    assert len([e for e in ae.seen if isinstance(e, mod.Deleted)]) == 0   # the replay's came inside Backlogs


def test_the_welcome_says_whether_we_are_an_admin(make_chat_clients, played):
    srv = played()
    a, ae = make_chat_clients(srv.port, "ann", identity=SECRET, **QUICK)
    conn = srv.accept()
    conn.recv()
    conn.send(welcome2(admin=True, fingerprint="f" * 64))
    conn.send(protocol.caught_up_frame(0))
    assert ae.wait(ev.Connected).admin is True


def test_a_reserved_nick_at_the_hello_is_final_and_says_so(make_chat_clients, played):
    srv = played()
    a, ae = make_chat_clients(srv.port, "ann", identity=SECRET, **QUICK)
    conn = srv.accept()
    conn.recv()
    words = ("The nick ann is reserved by another computer; choose another, or use /forget on the computer "
             "that holds it.")
    conn.send({"type": "error", "code": "nick_reserved", "message": words})
    failed = ae.wait(ev.ConnectFailed)
    assert (failed.kind, failed.message, failed.retry_in) == ("nick_reserved", words, None)
    assert isinstance(ae.next(), ev.Closed)


def test_an_older_server_without_rooms_gets_no_moderation_frames(make_chat_clients, played):
    srv = played()
    a, ae = make_chat_clients(srv.port, "ann", **QUICK)
    conn = srv.accept()
    conn.recv()
    conn.send({"type": "welcome", "nick": "ann", "users": ["ann"], "history": [], "last_id": 0})
    ae.wait(ev.CaughtUp)
    ref = a.mod("lobby", "kick", "bob")
    assert ae.wait(ev.Refused).ref == ref and ae.seen[-1].code == "no_rooms"
    assert quiet(conn) == []
