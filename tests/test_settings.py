"""The settings file: round trip, atomic write, tolerance of damage."""
from __future__ import annotations

import json
import os

from chatgui.app import settings as st


def test_defaults_when_there_is_no_file(tmp_path):
    assert st.load(str(tmp_path / "none.json")) == st.Settings()


def test_round_trip_in_the_config_dir():
    s = st.Settings(host="10.1.2.3", port=4000, nick="zoë", theme="dark", font_size=15, host_room=True)
    assert st.save(s)
    assert os.path.dirname(st.settings_path()).endswith("config")   # NATTER_HOME from conftest
    assert st.load() == s
    assert os.listdir(os.path.dirname(st.settings_path())) == ["client.json"]    # no temporary file left
    if os.name == "posix":
        assert os.stat(st.settings_path()).st_mode & 0o777 == 0o600


def test_a_corrupt_file_gives_the_defaults(tmp_path):
    for junk in (b"{not json", b"\xff\xfe\x00", b"[1, 2]", b"", b"null"):
        path = tmp_path / "c.json"
        path.write_bytes(junk)
        assert st.load(str(path)) == st.Settings()


def test_one_bad_field_costs_only_itself(tmp_path):
    path = tmp_path / "c.json"
    path.write_text(json.dumps({"nick": "bob", "port": "30000", "font_size": 500, "theme": "neon",
                                "host_room": 1, "extra": [1, 2], "host": "h"}))
    s = st.load(str(path))
    assert (s.nick, s.host) == ("bob", "h")
    d = st.Settings()
    assert (s.port, s.theme, s.host_room) == (d.port, d.theme, d.host_room)
    assert s.font_size == st.MAX_FONT


def test_save_into_an_unwritable_place_returns_false(tmp_path):
    blocker = tmp_path / "file"
    blocker.write_text("x")
    assert st.save(st.Settings(), str(blocker / "sub" / "c.json")) is False


def test_the_password_is_never_stored():
    assert "password" not in {f for f in st.Settings().__dataclass_fields__}


def test_remembered_rooms_round_trip_and_bad_names_are_dropped(tmp_path):
    path = str(tmp_path / "c.json")
    s = st.Settings(rooms={"10.0.0.5:30000": {"rooms": ["lobby", "Maths"], "private": ["bob"]}})
    assert st.save(s, path)
    assert st.load(path).rooms == s.rooms
    with open(path, encoding="utf-8") as f:
        raw = json.load(f)
    raw["rooms"] = {"a:1": {"rooms": ["ok", "#hash", "two words", 5, "x" * 40], "private": ["bo b", "eve"]},
                    "b:2": "not an object", "c:3": {"rooms": "lobby"}, "d:4": {}}
    with open(path, "w", encoding="utf-8") as f:
        json.dump(raw, f)
    assert st.load(path).rooms == {"a:1": {"rooms": ["ok"], "private": ["eve"]},
                                   "c:3": {"rooms": [], "private": []}, "d:4": {"rooms": [], "private": []}}
