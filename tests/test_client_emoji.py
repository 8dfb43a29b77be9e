"""Emoji as pictures, without Tk: splitting text into emoji sequences, what
:func:`formatting.tk_safe` keeps, drawing a picture, the bundle's zip."""
from __future__ import annotations

import struct
import sys
import zipfile

import pytest
from hypothesis import given, settings, strategies as st

from chatgui.app import emoji
from chatgui.app import formatting as f

GRIN = "\U0001F600"
FAMILY = "\U0001F469\u200d\U0001F469\u200d\U0001F467"          # 👩‍👩‍👧
FR = "\U0001F1EB\U0001F1F7"                                      # 🇫🇷
ENGLAND = "\U0001F3F4\U000E0067\U000E0062\U000E0065\U000E006E\U000E0067\U000E007F"


def shown(text: str) -> list:
    """Segments as plain strings and (characters, file) pairs."""
    return [s if type(s) is str else (s.chars, s.stem) for s in emoji.segments(text)]


def test_the_artwork_and_rasteriser_are_installed():
    # Project dependencies: without them the window falls back to stand-ins,
    # which is not what a user of this checkout should get.
    assert emoji.available()
    assert len(emoji.catalogue()) > 3000


@pytest.mark.parametrize("text, expected", [
    ("hi \U0001F600!", ["hi ", ("\U0001F600", "1F600"), "!"]),
    (FR + " flag", [(FR, "1F1EB-1F1F7"), " flag"]),
    (FAMILY, [(FAMILY, "1F469-200D-1F469-200D-1F467")]),
    ("\U0001F44D\U0001F3FD", [("\U0001F44D\U0001F3FD", "1F44D-1F3FD")]),            # skin tone
    ("#\ufe0f\u20e3 1\u20e3 x", [("#\ufe0f\u20e3", "0023-FE0F-20E3"), " ", ("1\u20e3", "0031-FE0F-20E3"), " x"]),
    (ENGLAND, [(ENGLAND, "1F3F4-E0067-E0062-E0065-E006E-E0067-E007F")]),            # subdivision flag
    ("\U0001F3F3\ufe0f\u200d\U0001F308", [("\U0001F3F3\ufe0f\u200d\U0001F308", "1F3F3-FE0F-200D-1F308")]),
    ("\U0001F3C3\u200d\u2640", [("\U0001F3C3\u200d\u2640", "1F3C3-200D-2640-FE0F")]),   # FE0F left out
    ("\u2764\ufe0f\u200d\U0001F525", [("\u2764\ufe0f\u200d\U0001F525", "2764-FE0F-200D-1F525")]),
    # A BMP symbol is text unless asked to be an emoji; some are emoji by default.
    ("\u00a9 \u2122 \u263a \u00a9\ufe0f \u2615", ["\u00a9 \u2122 \u263a ", ("\u00a9\ufe0f", "00A9"), " ",
                                                  ("\u2615", "2615")]),
    ("\u2615\ufe0e a-b 7", ["\u2615\ufe0e a-b 7"]),                                   # FE0E: text
    ("\u261d\U0001F3FD", [("\u261d\U0001F3FD", "261D-1F3FD")]),
])
def test_emoji_sequences_are_one_picture_each(text, expected):
    assert shown(text) == expected


def test_unknown_sequences_fall_back_without_losing_a_character():
    # Not a country: each regional indicator is its letter.
    assert shown("\U0001F1E6\U0001F1E6") == [("\U0001F1E6", "1F1E6"), ("\U0001F1E6", "1F1E6")]
    # A joined run with no picture: the longest start that has one, the ZWJ
    # kept with it, then the rest.
    family4 = "\U0001F468\u200d\U0001F469\u200d\U0001F467\u200d\U0001F466"
    assert shown(family4 + "\u200d\U0001F600") == [
        (family4, "1F468-200D-1F469-200D-1F467-200D-1F466"), "\u200d", ("\U0001F600", "1F600")]
    assert shown("\U0001F600\u200d\U0001F600") == [("\U0001F600", "1F600"), "\u200d", ("\U0001F600", "1F600")]
    # A skin tone the face has no artwork for stays a separate picture.
    assert shown("\U0001F600\U0001F3FD") == [("\U0001F600", "1F600"), ("\U0001F3FD", "1F3FD")]


def test_astral_characters_without_a_picture_stay_plain():
    assert shown("\U0001D400 \U0010FFFF \U000E0067") == ["\U0001D400 \U0010FFFF \U000E0067"]
    assert shown("\U000F0000\ue000") == ["\U000F0000\ue000"]       # OpenMoji's private-use extras


def test_plain_says_whether_a_text_has_no_picture():
    assert emoji.plain("") and emoji.plain("ascii only") and emoji.plain("caf\u00e9 \u00a9 \u2615\ufe0e")
    assert emoji.plain("\U0001D400 astral, no picture")
    assert not emoji.plain("a \U0001F600 face") and not emoji.plain("\u2615")


_ALPHABET = st.sampled_from(
    list("ab #*1-\n\u200d\ufe0f\ufe0e\u20e3\u00a9\u2615\u2640\u2764\u261d\u202e")
    + ["\U0001F600", "\U0001F469", "\U0001F467", "\U0001F1EB", "\U0001F1F7", "\U0001F3FD", "\U0001F3F4",
       "\U000E0067", "\U000E007F", "\U0001F308", "\U0001F3F3", "\U0001D400", "\U0010FFFF"])


@settings(max_examples=300, deadline=None)
@given(st.lists(_ALPHABET, max_size=30).map("".join) | st.text(max_size=40))
def test_joining_the_segments_gives_the_text_back(text):
    segs = emoji.segments(text)
    assert "".join(s if type(s) is str else s.chars for s in segs) == text
    assert all(s for s in segs if type(s) is str)                  # no empty runs
    cat = emoji.catalogue()
    assert all(s.stem in cat.stems for s in segs if type(s) is not str)


@settings(max_examples=300, deadline=None)
@given(st.lists(_ALPHABET, max_size=30).map("".join) | st.text(max_size=40))
def test_tk_safe_keeps_pictures_and_nothing_else_astral(text):
    kept = f.tk_safe(text, emoji=True)
    assert f.tk_safe(kept, emoji=True) == kept                      # idempotent
    plain = "".join(s for s in emoji.segments(kept) if type(s) is str)
    assert all(ord(c) <= 0xFFFF for c in plain)
    assert not any(c in kept for c in "\u202e\x1b")


def test_tk_safe_keeps_emoji_and_still_escapes_controls_and_bidi():
    text = f"\u202e\U0001F600\x1b {FR} {FAMILY} \U0001D400"
    assert f.tk_safe(text, emoji=True) == f"\\u202e\U0001F600\\x1b {FR} {FAMILY} A"
    assert f.tk_safe(text) == "\\u202e:grinning face:\\x1b [FR] :woman:\u200d:woman:\u200d:girl: A"


@pytest.mark.timeout(20)
@pytest.mark.parametrize("text", [
    "\U0001F600\u200d" * 30000, "\U0001F1EB" * 60000, "\U0001F3F4" + "\U000E0067" * 60000,
    "\U0001F600\U0001F3FD" * 30000, FAMILY * 12000, "-\u00e9" * 30000, "\u00a9\u200d" * 30000,
])
def test_splitting_is_linear_on_a_full_line_of_adversarial_text(text):
    """The largest line the protocol carries (64 KiB) of the worst patterns:
    about 0.3 s each here; a quadratic split would take minutes."""
    segs = emoji.segments(text)
    assert "".join(s if type(s) is str else s.chars for s in segs) == text


def _png_size(data: bytes) -> tuple[int, int]:
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    return struct.unpack(">II", data[16:24])


def test_a_picture_is_drawn_as_a_png_of_the_asked_size():
    for stem, size in (("1F600", 19), ("1F1EB-1F1F7", 24), ("1F469-200D-1F469-200D-1F467", 64)):
        assert _png_size(emoji.render_png(stem, size)) == (size, size)
    with pytest.raises(KeyError):
        emoji.render_png("../../etc/passwd", 20)


@pytest.fixture
def fresh_catalogue(monkeypatch):
    """Let a test change where the artwork comes from; restored after."""
    monkeypatch.setattr(emoji, "_catalogue", None)
    emoji.segments.cache_clear()
    yield
    emoji.segments.cache_clear()


def test_the_bundle_pack_holds_every_picture_and_is_read_from_a_bundle(tmp_path, monkeypatch, fresh_catalogue):
    installed = emoji.catalogue()
    (tmp_path / emoji.BUNDLE_DIR).mkdir()
    path = tmp_path / emoji.BUNDLE_DIR / emoji.BUNDLE_PACK
    assert emoji.write_bundle_pack(str(path)) == len(installed.stems)
    with zipfile.ZipFile(path) as z:
        blocks = [n for n in z.namelist() if n.endswith(".xz")]
    assert len(blocks) > 10                    # read a block at a time, not all at once
    # As a PyInstaller bundle: the pack, not the installed package.
    monkeypatch.setattr(sys, "_MEIPASS", str(tmp_path), raising=False)
    monkeypatch.setattr(emoji, "_catalogue", None)
    bundled = emoji.catalogue()
    assert bundled.artwork.path == str(path)
    assert bundled.keys == installed.keys
    for stem in sorted(installed.stems)[::97]:
        assert bundled.artwork.read(stem) == installed.artwork.read(stem), stem
    assert _png_size(emoji.render_png("1F600", 20)) == (20, 20)


def test_without_the_artwork_nothing_is_a_picture_and_stand_ins_come_back(monkeypatch, fresh_catalogue):
    monkeypatch.setattr(emoji, "_artwork", lambda: None)
    assert len(emoji.catalogue()) == 0 and not emoji.available()
    assert emoji.segments("a \U0001F600") == ("a \U0001F600",)
    assert f.tk_safe("a \U0001F600", emoji=True) == "a :grinning face:"


def test_available_asks_for_the_rasteriser_without_reading_the_catalogue(monkeypatch, fresh_catalogue):
    import importlib.util
    real = importlib.util.find_spec
    assert emoji.available() and emoji._catalogue is None
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None if name == "resvg_py" else real(name))
    assert not emoji.available()


def test_the_controller_keeps_emoji_for_the_conversation_only():
    """With a view that draws pictures, a message keeps its emoji (and its
    links' offsets match the text the view gets); what goes to labels, the
    title and the people list still gets stand-ins, as Tk cannot draw them."""
    from chatgui.net import events as ev
    from chatgui.app.controller import ConnectValues, Controller
    from chatgui.app.settings import Settings
    from server.protocol import Joined, Message
    from tests.fakes import FakeClient, FakeView

    view = FakeView()
    c = Controller(view, Settings(), client_factory=FakeClient, save_settings=lambda s: None, emoji_ok=True)
    c.connect(ConnectValues(host="127.0.0.1", port="30000", nick="alice"))
    c.handle(ev.Connected("127.0.0.1", 30000, "alice", ("alice",), False))
    c.handle(ev.Backlog(()))
    c.handle(Message(1, 1_700_000_000.0, "bob", f"{GRIN} see https://x.org/{FR} \u202e"))
    line = view.lines[-1]
    assert line.text == f"{GRIN} see https://x.org/{FR} \\u202e"
    assert [line.text[a:b] for a, b, _url in line.links] == [f"https://x.org/{FR}"]
    c.handle(Joined("\U0001F600bob"))               # a nick no server should let through
    assert view.users == ["alice", ":grinning face:bob"]
    assert ":grinning face:bob joined." not in view.texts()    # the notice keeps the picture
    assert f"{GRIN}bob joined." in view.texts()
    assert all(ord(ch) <= 0xFFFF for ch in view.title + view.status[0])

