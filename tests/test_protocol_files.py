"""File frames without sockets (issue 12): the offer, the transfer lines and
their answers, the file object on message and dm, and hypothesis for what
a hostile client may send."""
from __future__ import annotations

import base64
import hashlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from server import protocol as p
from tests.frametools import client, server

pytestmark = pytest.mark.timeout(60)
# No deadline: a loaded machine must not fail a property (as tests/test_protocol.py).
PROPS = settings(max_examples=200, deadline=None, suppress_health_check=[HealthCheck.too_slow])

SHA = hashlib.sha256(b"hello").hexdigest()
PNG = base64.b64encode(b"\x89PNG\r\n\x1a\n" + b"\0" * 40).decode()




def refused(frame: dict) -> p.ProtocolError:
    with pytest.raises(p.ProtocolError) as info:
        p.parse_client(frame)     # not through encode: a lone surrogate cannot be encoded
    return info.value


def test_every_client_builder_round_trips():
    assert client(p.upload_frame("a.png", 5, SHA.upper(), "Image/PNG", room="maths", thumb=PNG, ref="u1")) == \
        p.Upload("a.png", 5, SHA, "image/png", "maths", None, PNG, "u1")
    assert client(p.upload_frame("notes.txt", 0, SHA, to="bob")) == \
        p.Upload("notes.txt", 0, SHA, p.DEFAULT_MIME, None, "bob")
    assert client(p.upload_frame("x", 1, SHA)).room == "lobby"
    assert client(p.put_frame("F1d-_", "tok", 7)) == p.Put("F1d-_", "tok", 7)
    assert client(p.get_frame("F1", "sess", 3)) == p.Get("F1", "sess", 3)
    assert client({"type": "get", "file": "F1", "resume": "s"}) == p.Get("F1", "s", 0)


def test_every_server_builder_round_trips():
    assert server(p.upload_ready_frame("F1", "tok", 10, "u1")) == p.UploadReady("F1", "tok", 10, "u1")
    assert server(p.put_ok_frame("F1")) == p.PutOk("F1")
    assert server(p.blob_frame("F1", 99)) == p.Blob("F1", 99)
    obj = p.file_object("F1", "a.png", 5, "image/png", SHA, PNG)
    m = server(dict(p.message_frame(3, 1.5, "ann", "a.png", room="maths"), file=obj))
    assert m.file == p.FileInfo("F1", "a.png", 5, "image/png", SHA, PNG)
    d = server(dict(p.dm_frame(4, 1.5, "ann", "bob", "x.bin"), file=p.file_object("F2", "x.bin", 1, p.DEFAULT_MIME,
                                                                                  SHA, expired=True)))
    assert d.file.expired and d.file.thumb is None
    assert server(p.message_frame(5, 1.0, "ann", "plain")).file is None


def test_a_path_like_name_is_only_metadata():
    assert client(p.upload_frame("../../etc/passwd", 1, SHA)).name == "../../etc/passwd"
    assert client(p.upload_frame("C:\\Windows\\x.exe", 1, SHA)).name == "C:\\Windows\\x.exe"


@pytest.mark.parametrize("frame, field", [
    ({"name": "a\nb"}, "name"), ({"name": ""}, "name"), ({"name": " "}, "name"), ({"name": "x" * 256}, "name"),
    ({"name": 5}, "name"), ({"name": "\ud800"}, "name"), ({"name": "a\tb"}, "name"),
    ({"size": -1}, "size"), ({"size": 1.5}, "size"), ({"size": True}, "size"), ({"size": None}, "size"),
    ({"sha256": "g" * 64}, "sha256"), ({"sha256": SHA[:-1]}, "sha256"), ({"sha256": None}, "sha256"),
    ({"mime": "image"}, "mime"), ({"mime": "a/b c"}, "mime"), ({"mime": 3}, "mime"),
    ({"thumb": "notapng="}, "thumb"), ({"thumb": "iVBORw0KGgo" + "A" * p.MAX_THUMB_B64}, "thumb"),
    ({"thumb": PNG[:-1]}, "thumb"), ({"thumb": "iVBORw0KGgo!"}, "thumb"),
    ({"to": 5}, "to"), ({"to": "bob", "room": "maths"}, "room"),
])
def test_a_bad_offer_is_refused_with_its_ref(frame, field):
    base = {"type": "upload", "name": "a", "size": 1, "sha256": SHA, "ref": "r9"}
    e = refused({**base, **frame})
    assert e.code in (p.BAD_FRAME, p.BAD_NICK, p.BAD_ROOM) and e.ref == "r9"
    assert field in e.message or e.code != p.BAD_FRAME


def test_a_thumb_at_the_limit_is_accepted_and_one_over_is_not():
    png = b"\x89PNG\r\n\x1a\n"
    at = base64.b64encode(png + b"\0" * (p.MAX_THUMB - len(png))).decode()
    assert client(p.upload_frame("a.png", 1, SHA, thumb=at)).thumb == at
    over = base64.b64encode(png + b"\0" * (p.MAX_THUMB - len(png) + 3)).decode()
    assert refused(p.upload_frame("a.png", 1, SHA, thumb=over)).code == p.BAD_FRAME


@pytest.mark.parametrize("frame", [
    {"type": "put", "token": "t"}, {"type": "put", "file": "../x", "token": "t"},
    {"type": "put", "file": "F", "token": ""}, {"type": "put", "file": "F", "token": "t", "offset": -1},
    {"type": "put", "file": "F", "token": "é"}, {"type": "get", "file": "F"},
    {"type": "get", "file": "F" * 65, "resume": "s"}, {"type": "get", "file": "F", "resume": "s", "offset": "0"},
])
def test_bad_transfer_lines_are_refused(frame):
    assert refused(frame).code == p.BAD_FRAME


def test_a_server_file_object_that_is_malformed_is_a_bad_frame():
    with pytest.raises(p.ProtocolError):
        server(dict(p.message_frame(1, 1.0, "a", "x"), file={"id": "F", "name": "x", "size": -1, "mime": "a/b",
                                                              "sha256": SHA}))
    with pytest.raises(p.ProtocolError):
        server(dict(p.message_frame(1, 1.0, "a", "x"), file="F"))


def test_the_transfer_types_are_the_first_line_kinds():
    assert p.TRANSFER_TYPES == {"put", "get"}
    assert {"upload", "put", "get"} <= p.CLIENT_TYPES


_json = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
                     lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(), kids, max_size=3),
                     max_leaves=8)
_fields = st.fixed_dictionaries({}, optional={k: _json | st.text() for k in
                                              ("name", "size", "sha256", "mime", "room", "to", "thumb", "ref",
                                               "file", "token", "offset", "resume")})


@PROPS
@given(kind=st.sampled_from(["upload", "put", "get"]), fields=_fields)
def test_any_file_frame_parses_or_is_refused_with_a_sentence(kind, fields):
    try:
        event = p.parse_client({"type": kind, **fields})
    except p.ProtocolError as e:
        assert e.code and e.message.strip()
        return
    assert type(event) in (p.Upload, p.Put, p.Get)
    if type(event) is p.Upload:
        assert 0 < len(event.name) <= p.MAX_FILE_NAME and event.name.isprintable()
        assert len(event.sha256) == 64 and event.sha256 == event.sha256.lower()
        assert (event.room is None) != (event.to is None)
        assert event.thumb is None or len(event.thumb) <= p.MAX_THUMB_B64
    else:
        assert event.offset >= 0


@PROPS
@given(name=st.text(min_size=1, max_size=p.MAX_FILE_NAME).filter(lambda s: s.isprintable() and s.strip()),
       size=st.integers(0, 1 << 40), offset=st.integers(0, 1 << 40),
       fid=st.from_regex(r"[A-Za-z0-9_-]{1,64}", fullmatch=True))
def test_names_sizes_and_ids_survive_the_wire(name, size, offset, fid):
    up = client(p.upload_frame(name, size, SHA))
    assert (up.name, up.size) == (name, size)
    assert client(p.put_frame(fid, "tok", offset)) == p.Put(fid, "tok", offset)
    assert server(p.blob_frame(fid, size)) == p.Blob(fid, size)
    info = server(dict(p.message_frame(1, 1.0, "a", name), file=p.file_object(fid, name, size, "a/b", SHA))).file
    assert (info.id, info.name, info.size) == (fid, name, size)
