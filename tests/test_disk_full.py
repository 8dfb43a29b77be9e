"""When history cannot be saved (disk full), nothing unsaved is acknowledged
or delivered: the server stops with a notice and a reason, and what it had
saved is intact. SQLite itself refuses the write (PRAGMA max_page_count),
no mock."""
from __future__ import annotations

import sqlite3
import subprocess
import sys

import pytest

from tests.netclient import LineClient


def fill_disk(srv) -> None:
    """Let the history file grow no more: the next big write fails with SQLITE_FULL."""
    db = srv.history._db
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    db.execute(f"PRAGMA max_page_count = {pages}")


@pytest.mark.timeout(30)
def test_a_message_that_cannot_be_saved_is_never_acknowledged_or_delivered(make_server, tmp_path):
    db = str(tmp_path / "h.db")
    srv = make_server(db=db, rate_limit=0)
    alice, bob = LineClient(srv.port), LineClient(srv.port)
    alice.hello("alice")
    bob.hello("bob")
    alice.send({"type": "say", "text": "saved", "ref": "ok"})
    saved = alice.recv_type("message")
    assert saved["ref"] == "ok"
    assert bob.recv_type("message")["text"] == "saved"

    fill_disk(srv)
    alice.send({"type": "say", "text": "x" * 60_000, "ref": "lost"})
    for c in (alice, bob):
        frames = []
        try:
            while True:
                frames.append(c.recv(10))
        except (EOFError, ConnectionResetError):
            pass
        assert not any(f["type"] == "message" for f in frames), f"an unsaved message went out: {[(f['type'], f.get('text', '')[:20]) for f in frames]}"
        notice = [f for f in frames if f["type"] == "notice"]
        assert notice and notice[0]["code"] == "shutdown" and "could not save" in notice[0]["text"]
    assert "could not save the chat history" in srv.failure
    srv.shutdown()                        # does not raise, idempotent with the hub's own stop

    stored = [r[0] for r in sqlite3.connect(db).execute("SELECT text FROM messages")]
    assert stored == ["saved"]
    again = make_server(db=db, rate_limit=0)
    w = LineClient(again.port).hello("alice")
    assert [m["text"] for m in w["history"]] == ["saved"] and w["last_id"] == saved["id"]


@pytest.mark.timeout(30)
def test_the_process_exits_1_with_the_reason(tmp_path):
    """python -m server, made to fail the same way, says why and exits 1."""
    script = f"""
import sys
sys.argv = ["server", "--port", "0", "--db", {str(tmp_path / "h.db")!r}, "--rate-limit", "0"]
import server.app as app
real = app.ChatServer.start
def start(self):
    real(self)
    import socket, json
    c = socket.create_connection(self.address)
    c.sendall(b'{{"type":"hello","nick":"a"}}\\n')
    c.recv(65536)
    db = self.history._db
    db.execute("PRAGMA max_page_count = %d" % db.execute("PRAGMA page_count").fetchone()[0])
    c.sendall(json.dumps({{"type": "say", "text": "x" * 60000}}).encode() + b"\\n")
    return self
app.ChatServer.start = start
from server.main import main
sys.exit(main(sys.argv[1:]))
"""
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=25)
    assert out.returncode == 1, out.stderr[-2000:]
    assert "stopped: could not save the chat history" in out.stderr
