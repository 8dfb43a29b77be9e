"""chatgui.net.files, pure: a peer's file name as a safe file name (never a
path, a hidden file or a device), what counts as a program,
the transfer connection's answers, the thumbnail's bytes."""
from __future__ import annotations

import base64

import pytest
from hypothesis import given, strategies as st

from chatgui.net import files
from server import protocol as p


@given(st.text(max_size=300))
def test_prop_a_peers_name_never_becomes_a_path_or_a_hidden_file(name):
    safe = files.safe_filename(name)
    assert safe and "/" not in safe and "\\" not in safe and not safe.startswith(".")
    assert safe.isprintable() and len(safe) <= files.MAX_NAME
    assert safe.split(".")[0].upper() not in {"CON", "PRN", "AUX", "NUL"}


@pytest.mark.parametrize("name, safe", [
    ("../../etc/passwd", "passwd"), ("..\\..\\boot.ini", "boot.ini"), (".bashrc", "bashrc"),
    ("NUL.txt", "_NUL.txt"), ("com1", "_com1"), ("a\x1b[31mb.txt", "a[31mb.txt"), ("", "file"),
    ("report final.pdf", "report final.pdf"), ('what?<>|:*".txt', "what.txt"),
])
def test_safe_filename_examples(name, safe):
    assert files.safe_filename(name) == safe


@pytest.mark.parametrize("name, mime, runnable", [
    ("setup.exe", "", True), ("SETUP.EXE", "", True), ("run.sh", "", True), ("x.py", "", True),
    ("evil.exe.", "", True), ("thing", "application/x-msdownload", True), ("Natter.AppImage", "", True),
    ("photo.png", "image/png", False), ("notes.txt", "text/plain", False), ("exe", "", False),
])
def test_programs_are_told_apart(name, mime, runnable):
    assert files.is_runnable(name, mime) is runnable


def test_the_transfer_answers_are_parsed_and_anything_else_refused():
    assert files.parse_reply(b'{"type":"blob","file":"abc","size":12}\n') == p.Blob("abc", 12)
    assert files.parse_reply(b'{"type":"put_ok","file":"abc"}\n') == p.PutOk("abc")
    err = files.parse_reply(b'{"type":"error","code":"no_such_file","message":"gone"}\n')
    assert (err.code, err.message) == ("no_such_file", "gone")
    for bad in (b'{"type":"message","id":1,"ts":1,"from":"a","text":"x"}\n', b'{"type":"blob","file":"a"}\n',
                b"not json\n"):
        with pytest.raises(p.ProtocolError):
            files.parse_reply(bad)


def test_a_thumbnail_that_is_not_base64_gives_none():
    ok = p.FileInfo("a", "x.png", 1, "image/png", "0" * 64, base64.b64encode(b"\x89PNGxx").decode())
    assert files.thumb_bytes(ok) == b"\x89PNGxx"
    assert files.thumb_bytes(p.FileInfo("a", "x.png", 1, "image/png", "0" * 64, None)) is None
    assert files.thumb_bytes(p.FileInfo("a", "x.png", 1, "image/png", "0" * 64, "@@@@")) is None


def test_refusals_in_words_name_the_cause():
    assert files.refusal_words("quota_full", "") == "the server's space for files is full"
    assert "larger than this server takes (max 10 MB)" in files.refusal_words("file_too_large", "max 10 MB.")
    assert files.refusal_words("weird", "Something else.") == "Something else."
