"""The session tokens file (chatgui.net.sessions): per server and nick,
mode 0600, atomic, and a damaged file costs a new session, never a crash."""
from __future__ import annotations

import json
import os

import pytest

from chatgui.net.sessions import SessionStore

pytestmark = pytest.mark.timeout(30)


def test_tokens_are_kept_per_server_and_nick(tmp_path):
    store = SessionStore(str(tmp_path / "s.json"))
    store.put("Example.LAN", 30000, "Ann", "t1")
    store.put("example.lan", 30001, "ann", "t2")
    store.put("::1", 30000, "bob", "t3")
    assert store.get("example.lan", 30000, "ANN") == "t1"      # host lower-cased, nick folded
    assert store.get("example.lan", 30001, "ann") == "t2"
    assert store.get("::1", 30000, "bob") == "t3"
    assert store.get("example.lan", 30000, "bob") is None
    assert SessionStore(str(tmp_path / "s.json")).get("example.lan", 30000, "ann") == "t1"   # a new process
    assert store.forget("example.lan", 30000, "ann") and not store.forget("example.lan", 30000, "ann")
    assert store.get("example.lan", 30000, "ann") is None and store.get("example.lan", 30001, "ann") == "t2"
    doc = json.loads((tmp_path / "s.json").read_text())
    assert doc["servers"]["[::1]:30000"] == {"bob": {"nick": "bob", "session": "t3"}}
    if os.name == "posix":
        assert os.stat(tmp_path / "s.json").st_mode & 0o777 == 0o600
    assert sorted(os.listdir(tmp_path)) == ["s.json"]       # no temporary file left behind


@pytest.mark.parametrize("junk", [b"{not json", b"\xff\xfe", b"[]", b'{"servers": 5}',
                                  b'{"servers": {"a:1": {"ann": {"nick": "ann", "session": 7}}}}'])
def test_a_damaged_file_means_no_token_and_is_replaced_on_the_next_save(tmp_path, junk):
    path = tmp_path / "s.json"
    path.write_bytes(junk)
    store = SessionStore(str(path))
    assert store.get("a", 1, "ann") is None
    store.put("a", 1, "ann", "fresh")
    assert store.get("a", 1, "ann") == "fresh"


def test_a_token_that_a_hello_could_not_carry_is_refused(tmp_path):
    store = SessionStore(str(tmp_path / "s.json"))
    for bad in ("", "x" * 129, None):
        with pytest.raises(ValueError):
            store.put("a", 1, "ann", bad)
    assert not os.path.exists(tmp_path / "s.json")


def test_a_rename_moves_the_token_in_one_write(tmp_path, monkeypatch):
    from chatgui.net import sessions
    store = SessionStore(str(tmp_path / "s.json"))
    store.put("host", 1, "ann", "t1")
    writes = []
    real = sessions.write_json
    monkeypatch.setattr(sessions, "write_json", lambda *a, **k: (writes.append(a[1]), real(*a, **k)))
    store.put("host", 1, "anna", "t1", instead_of="ann")
    assert len(writes) == 1 and list(writes[0]["servers"]["host:1"]) == ["anna"]   # never both, nor neither
    assert store.get("host", 1, "anna") == "t1" and store.get("host", 1, "ann") is None
    store.put("host", 1, "ANNA", "t1", instead_of="anna")      # the same nick folded: kept, not dropped
    assert store.get("host", 1, "anna") == "t1"
