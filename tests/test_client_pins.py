"""The pin store and the TLS wording, without a network."""
from __future__ import annotations

import json
import os
import ssl

import pytest

from chatgui.net.pins import PinStore, normalize_fingerprint, server_key
from chatgui.net.failures import FINAL_KINDS, classify_tls_error, tls_changed_message
from server import tls

pytestmark = pytest.mark.timeout(30)

FP1 = tls.fingerprint(b"one")
FP2 = tls.fingerprint(b"two")


def test_fingerprints_are_normalised_from_what_people_type():
    assert normalize_fingerprint(FP1) == FP1
    assert normalize_fingerprint(FP1.lower().replace(" ", "")) == FP1
    assert normalize_fingerprint(FP1.replace(" ", ":")) == FP1
    assert normalize_fingerprint("  " + FP1.replace(" ", "-") + "\n") == FP1
    for bad in ("", "3F2A 9B1C", FP1 + " 00", FP1.replace("A", "G", 1) if "A" in FP1 else "G" + FP1[1:]):
        with pytest.raises(ValueError, match="64 hexadecimal digits"):
            normalize_fingerprint(bad)


def test_servers_are_keyed_by_host_and_port():
    assert server_key("Chat.Local", 5050) == "chat.local:5050"
    assert server_key("::1", 5050) == "[::1]:5050"
    store = PinStore()
    store.pin("chat.local", 5050, FP1)
    assert store.get("CHAT.local", 5050) == FP1
    assert store.get("chat.local", 5051) is None
    assert store.get("192.168.1.20", 5050) is None


def test_pins_live_in_the_config_folder_and_survive_a_new_store():
    PinStore().pin("127.0.0.1", 5050, FP1.lower())
    path = os.path.join(os.environ["NATTER_HOME"], "config", "known_servers.json")
    with open(path, encoding="utf-8") as f:
        doc = json.load(f)
    assert doc["version"] == 1 and doc["servers"]["127.0.0.1:5050"]["fingerprint"] == FP1
    assert PinStore().get("127.0.0.1", 5050) == FP1
    assert PinStore().servers() == {"127.0.0.1:5050": FP1}


def test_replace_and_forget():
    store = PinStore()
    store.pin("h", 1, FP1)
    store.replace("h", 1, FP2)
    assert store.get("h", 1) == FP2
    assert store.forget("h", 1) is True and store.get("h", 1) is None
    assert store.forget("h", 1) is False


def test_writes_are_atomic_and_leave_no_temporary_files(tmp_path):
    store = PinStore(str(tmp_path / "pins" / "known_servers.json"))
    for port in range(20):
        store.pin("h", port, FP1)
    assert sorted(os.listdir(tmp_path / "pins")) == ["known_servers.json"]
    assert len(store.servers()) == 20


def test_a_failed_write_keeps_the_old_file(tmp_path, monkeypatch):
    path = tmp_path / "known_servers.json"
    store = PinStore(str(path))
    store.pin("h", 1, FP1)

    def broken(*_a, **_k):
        raise OSError(28, "No space left on device")
    monkeypatch.setattr(os, "fsync", broken)
    with pytest.raises(OSError):
        store.pin("h", 2, FP2)
    assert store.servers() == {"h:1": FP1}
    assert os.listdir(tmp_path) == ["known_servers.json"]


@pytest.mark.parametrize("content", [b"{not json", b"", b"\xff\xfe", b'["a list"]',
                                     b'{"servers": ["x"]}', b'{"version": 1}'])
def test_a_damaged_file_is_set_aside_and_the_store_starts_over(tmp_path, content, caplog):
    path = tmp_path / "known_servers.json"
    path.write_bytes(content)
    store = PinStore(str(path))
    assert store.get("h", 1) is None
    store.pin("h", 1, FP1)
    assert store.get("h", 1) == FP1
    assert (tmp_path / "known_servers.json.bad").read_bytes() == content
    assert "known servers file" in caplog.text


def test_malformed_entries_are_skipped_and_the_rest_kept(tmp_path, caplog):
    path = tmp_path / "known_servers.json"
    path.write_text(json.dumps({"version": 1, "servers": {
        "good:1": {"fingerprint": FP1}, "short:1": {"fingerprint": "ABCD"},
        "none:1": {}, "list:1": ["x"]}}))
    store = PinStore(str(path))
    assert store.servers() == {"good:1": FP1}
    assert "malformed entry" in caplog.text


def test_changed_certificate_warning_names_both_fingerprints():
    msg = tls_changed_message("192.168.1.20", 5050, FP1, FP2)
    assert FP1 in msg and FP2 in msg and "192.168.1.20:5050" in msg
    assert msg.startswith("Warning:") and "changed" in msg and "nothing was sent" in msg
    given = tls_changed_message("::1", 5050, FP1, FP2, given=True)
    assert "[::1]:5050" in given and "not the one you said to trust" in given
    assert "tls_changed" in FINAL_KINDS


def test_handshake_failures_are_classified():
    kind, msg = classify_tls_error(ssl.SSLEOFError(8, "eof"), b"", "h", 1)
    assert kind == "tls" and "does not use encryption" in msg and "untick" in msg
    kind, msg = classify_tls_error(ConnectionResetError(104, "reset"), b"", "h", 1)
    assert "does not use encryption" in msg
    kind, msg = classify_tls_error(ssl.SSLError(1, "wrong version"), b'{"type":"notice"}', "h", 1)
    assert "does not use encryption" in msg
    err = ssl.SSLError(1, "[SSL: WRONG_VERSION_NUMBER] wrong version number")
    kind, msg = classify_tls_error(err, b"SSH-2.0", "h", 1)
    assert kind == "tls" and "handshake with h:1 failed" in msg and "--tls" in msg
