"""Identity and moderation frames without sockets: parsing, errors with the
frame's ref, the round trip of every builder through bytes, and hypothesis
for what a hostile client may send."""
from __future__ import annotations

import hashlib
import string

import pytest
from hypothesis import given
from hypothesis import strategies as st

from server import protocol as p
from tests.frametools import client

pytestmark = pytest.mark.timeout(60)



def refused(frame: dict) -> p.ProtocolError:
    with pytest.raises(p.ProtocolError) as info:
        client(frame)
    return info.value


def test_every_client_builder_round_trips():
    assert client(p.forget_frame("f1")) == p.Forget("f1")
    assert client(p.mod_frame("maths", "mute", "bob", "noise", 300, "m1")) == \
        p.Mod("maths", "mute", "bob", "noise", 300.0, "m1")
    assert client(p.mod_frame("maths", "kick", "bob")) == p.Mod("maths", "kick", "bob")
    assert client(p.mode_request_frame("maths", "x", moderated=True, slow=5, key="")) == \
        p.SetMode("maths", moderated=True, slow=5, key="", ref="x")
    assert client(p.release_frame(7, "r")) == p.Release(7, "r")
    assert client(p.delete_frame(7, "spam", "d")) == p.Delete(7, "spam", "d")
    assert client(p.edit_frame(7, "new text")) == p.Edit(7, "new text")
    assert client(p.audit_request_frame("maths")) == p.Audit("maths")
    h = client(p.hello_frame("ann", v=2, identity="i" * 43, admin_password="pw"))
    assert (h.identity, h.admin_password, h.admin) == ("i" * 43, "pw", False)


def test_a_client_cannot_claim_to_be_admin():
    h = client({"type": "hello", "nick": "ann", "admin": True})
    assert h.admin is False


def test_mode_changes_are_the_fields_given():
    assert p.SetMode("r", questions=False, dm=True).changes() == {"questions": False, "dm": True}


@pytest.mark.parametrize("frame, code", [
    ({"type": "mod", "room": "r", "action": "zap", "nick": "b"}, p.BAD_MOD),
    ({"type": "mod", "room": "r", "action": "kick"}, p.BAD_MOD),
    ({"type": "mod", "room": "r", "action": "kick", "nick": "b", "duration": 5}, p.BAD_MOD),
    ({"type": "mod", "room": "r", "action": "ban", "nick": "b", "duration": 0}, p.BAD_MOD),
    ({"type": "mod", "room": "r", "action": "ban", "nick": "b", "duration": True}, p.BAD_MOD),
    ({"type": "mod", "room": "r", "action": "mute", "nick": "b", "duration": 1e12}, p.BAD_MOD),
    ({"type": "mod", "room": "r", "action": "kick", "nick": "b", "reason": "a\nb"}, p.BAD_FRAME),
    ({"type": "mod", "room": "r", "action": "kick", "nick": "b", "reason": "x" * 301}, p.BAD_FRAME),
    ({"type": "mod", "room": "#r", "action": "kick", "nick": "b"}, p.BAD_ROOM),
    ({"type": "mod", "room": "r", "action": "kick", "nick": "b c"}, p.BAD_NICK),
    ({"type": "mode", "room": "r"}, p.BAD_FRAME),
    ({"type": "mode", "room": "r", "slow": -1}, p.BAD_FRAME),
    ({"type": "mode", "room": "r", "slow": 1.5}, p.BAD_FRAME),
    ({"type": "mode", "room": "r", "dm": 0}, p.BAD_FRAME),
    ({"type": "mode", "room": "r", "key": "k" * 129}, p.BAD_FRAME),
    ({"type": "delete", "id": 0}, p.BAD_FRAME),
    ({"type": "delete", "id": "3"}, p.BAD_FRAME),
    ({"type": "edit", "id": 3}, p.BAD_FRAME),
    ({"type": "edit", "id": 3, "text": "  "}, p.BAD_TEXT),
    ({"type": "release"}, p.BAD_FRAME),
    ({"type": "audit"}, p.BAD_ROOM),
    ({"type": "hello", "nick": "a", "identity": "short"}, p.BAD_IDENTITY),
    ({"type": "hello", "nick": "a", "admin_password": 5}, p.BAD_FRAME),
])
def test_bad_frames_are_refused_with_a_sentence_and_the_ref(frame, code):
    e = refused(dict(frame, ref="the-ref"))
    assert e.code == code and e.message.strip()
    if frame["type"] != "hello":
        assert e.ref == "the-ref"


def test_a_blank_reason_counts_as_none():
    assert client(p.mod_frame("r", "kick", "b", reason="   ")).reason is None


@given(st.text(alphabet=st.characters(max_codepoint=0x2FF), max_size=140))
def test_an_identity_is_32_to_128_printable_ascii(s):
    ok = 32 <= len(s) <= 128 and all(c in string.printable[:-5] or c == " " for c in s) \
        and not any(c in "\t\n\r\x0b\x0c" for c in s)
    try:
        assert p.check_identity(s) == s and ok
    except p.ProtocolError as e:
        assert not ok and e.code == p.BAD_IDENTITY


@given(st.text(alphabet=string.ascii_letters + string.digits + "-_", min_size=32, max_size=128))
def test_a_fingerprint_is_the_sha256_hex_of_the_secret(s):
    f = p.fingerprint(s)
    assert f == hashlib.sha256(s.encode()).hexdigest() and p.is_fingerprint(f)


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False, allow_infinity=False)
                     | st.text(max_size=20), lambda children: st.lists(children, max_size=3)
                     | st.dictionaries(st.text(max_size=5), children, max_size=3), max_leaves=8)


@given(st.sampled_from(["forget", "mod", "mode", "release", "delete", "edit", "audit", "hello"]),
       st.dictionaries(st.sampled_from(["room", "action", "nick", "reason", "duration", "id", "text", "moderated",
                                        "questions", "announce", "slow", "dm", "key", "ref", "identity",
                                        "admin_password", "admin"]), _json, max_size=8))
def test_any_moderation_frame_parses_or_is_refused_never_crashes(kind, fields):
    frame = dict(fields, type=kind)
    try:
        event = p.parse_client(frame)
    except p.ProtocolError as e:
        assert e.code in {p.BAD_FRAME, p.BAD_MOD, p.BAD_ROOM, p.BAD_NICK, p.BAD_TEXT, p.BAD_IDENTITY}, e
        assert e.message.strip()
        return
    assert type(event).__name__ in {"Forget", "Mod", "SetMode", "Release", "Delete", "Edit", "Audit", "Hello"}
    if isinstance(event, p.Hello):
        assert event.admin is False


@given(st.sampled_from(p.MOD_ACTIONS), st.one_of(st.none(), st.text(max_size=300)),
       st.one_of(st.none(), st.floats(min_value=1e-3, max_value=p.MAX_DURATION)))
def test_valid_mods_parse(action, reason, duration):
    frame = p.mod_frame("maths", action, "bob", reason, duration if action in ("ban", "mute") else None)
    try:
        m = client(frame)
    except p.ProtocolError as e:          # only a reason that is no text (controls, newlines)
        assert reason is not None and e.code in (p.BAD_FRAME, p.BAD_TEXT)
        return
    assert (m.room, m.action, m.nick) == ("maths", action, "bob")


def test_server_builders_encode_and_old_clients_see_unknown_frames():
    frames = [p.moderated_frame("r", "mute", "bob", "t", None, 1.5e9, 3, 1.5e9),
              p.mode_frame("r", {"slow": 5}, {"slow": 5}, "t", 4, 1.5e9),
              p.deleted_frame(3, "t", room="r", seq=5), p.deleted_frame(3, "t", with_="ann"),
              p.edited_frame(3, "x", 1.5e9, room="r", seq=6), p.audit_frame("r", []), p.forgotten_frame("ann")]
    for f in frames:
        (line,) = p.LineDecoder(p.MAX_SERVER_LINE).feed(p.encode(f))
        back = p.decode_frame(line)
        assert back == f
        assert isinstance(p.parse_server(back), p.Unknown)
    assert p.deleted_frame(3, "t", with_="ann") == {"type": "deleted", "with": "ann", "id": 3, "by": "t"}
    assert p.removed_frame("r", "bob", "kick", "t", None) == {"type": "left", "room": "r", "nick": "bob",
                                                              "reason": "kick", "by": "t", "note": None}
