"""Terminal mode's /send and /get (issue 12) as real subprocesses through
pipes against the real server: a piped /send posts the file and exits 0
once it is stored; another terminal sees its line with the id and /get
saves it byte for byte; a missing file and an unknown id are sentences and
exit 1."""
from __future__ import annotations

import hashlib
import os
import re

import pytest

from tests.test_cli import cli, run_cli  # noqa: F401  (the fixture)

pytestmark = pytest.mark.timeout(60)


@pytest.fixture
def srv(make_server):
    return make_server(rate_limit=0, upload_rate=0)


def test_send_posts_a_file_and_get_saves_it_in_another_terminal(srv, cli, tmp_path):  # noqa: F811
    data = os.urandom(300_000)
    src = tmp_path / "report.pdf"
    src.write_bytes(data)
    bob = cli(srv.port, "bob")
    bob.expect(r"connected to", stream="err")
    r = run_cli(srv.port, "ann", f"/send {src}\n")
    assert r.returncode == 0, r.stderr
    assert "sending report.pdf: done" in r.stderr
    line = bob.expect(r"<ann> \[file ")
    fid = re.search(r"\[file (\S+)\] report\.pdf \(293\.0 KiB\): /get (\S+)", line).group(1)
    out = tmp_path / "got"
    out.mkdir()
    bob.send(f"/get {fid} {out}")
    bob.expect(r"receiving report\.pdf: done, saved as .*report\.pdf", stream="err")
    assert hashlib.sha256((out / "report.pdf").read_bytes()).digest() == hashlib.sha256(data).digest()


def test_a_missing_file_and_an_unknown_id_are_sentences_and_exit_1(srv, tmp_path):
    r = run_cli(srv.port, "ann", f"/send {tmp_path / 'nope.bin'}\n/get abc\n")
    assert r.returncode == 1
    assert "not sent: there is no file" in r.stderr
    assert "no file abc was shown in this session" in r.stderr
