"""Text with emoji in a Tk ``Text`` widget: emoji go in as pictures and come
out again as the characters they stand for.

- :class:`EmojiImages` keeps one ``PhotoImage`` per picture, as tall as a
  line of the given font. Pictures are drawn lazily, at most
  :data:`DRAW_BUDGET` seconds of drawing per turn of the event loop (a
  message naming thousands of different emoji must not freeze the window);
  one not drawn yet shows as an empty square until its turn. :meth:`resize`
  redraws them in place after the font changed, so every copy on screen
  follows at once.
- :class:`EmojiText` puts text into a widget at an index with tags (emoji
  as embedded images with the same tags), gets the real text of a range
  back, copies a selection with its emoji, and, for an input box, turns
  emoji that arrive as text (typed with an input method, pasted: Tk 8.6
  holds them as two UTF-16 halves it cannot draw) into pictures.

An embedded image is named after its characters (``emoji:1f469-200d-1f467``,
Tk adds ``#2`` ... to repeats), so the widget itself remembers what each
picture stands for: nothing to keep in step when lines are deleted.

Thread: the Tk thread only.
"""
from __future__ import annotations

import logging
import time
import tkinter as tk

from chatgui.app import emoji, formatting
from chatgui.app.commands import join_surrogates

log = logging.getLogger("natter.client")

DRAW_BUDGET = 0.012        # seconds of picture drawing per turn of the event loop
MAX_PICTURES = 300         # per insert (a line): the rest of a flood shows as text stand-ins
_PREFIX = "emoji:"
_MARK, _START, _PART = "emoji_at", "emoji_start", "emoji_part"


def image_name(chars: str) -> str:
    return _PREFIX + "-".join(f"{ord(c):x}" for c in chars)


def chars_of(name: str) -> str:
    """The characters an embedded image stands for ("" for other images)."""
    if not name.startswith(_PREFIX):
        return ""
    try:
        return "".join(chr(int(h, 16)) for h in name[len(_PREFIX):].split("#", 1)[0].split("-"))
    except ValueError:
        return ""


class EmojiImages:
    """The pictures, sized to ``font``'s line height, owned by ``widget``
    (their drawing is scheduled on it and stops when it is destroyed)."""

    def __init__(self, widget: tk.Misc, font):
        self.widget = widget
        self.font = font
        self.size = self._wanted_size()
        self._photos: dict[str, tk.PhotoImage] = {}
        self._todo: dict[str, None] = {}        # stems waiting to be drawn, in order
        self._failed: set[str] = set()
        self._spent = 0.0                       # drawing time this turn
        self._after = None
        self._closed = False
        widget.bind("<Destroy>", self._on_destroy, add="+")

    def _wanted_size(self) -> int:
        return max(8, min(128, int(self.font.metrics("linespace"))))

    def photo(self, stem: str) -> tk.PhotoImage:
        """The image of ``stem``: drawn now if this turn's budget allows, else soon."""
        p = self._photos.get(stem)
        if p is None:
            p = self._photos[stem] = tk.PhotoImage(master=self.widget, width=self.size, height=self.size)
            if self._spent < DRAW_BUDGET:
                self._draw(stem)
            else:
                self._todo[stem] = None
            self._schedule()
        return p

    def pending(self) -> int:
        """Pictures waiting to be drawn (for tests)."""
        return len(self._todo)

    def resize(self) -> None:
        """Follow the font's new size: every picture is redrawn in place."""
        size = self._wanted_size()
        if size == self.size:
            return
        self.size = size
        self._todo = dict.fromkeys(self._photos)
        self._schedule()

    def _schedule(self) -> None:
        if self._after is None and not self._closed:
            self._after = self.widget.after_idle(self._turn)

    def _turn(self) -> None:
        """An idle moment: a new budget, spent on the waiting pictures."""
        self._after = None
        self._spent = 0.0
        while self._todo and self._spent < DRAW_BUDGET:
            stem = next(iter(self._todo))
            del self._todo[stem]
            self._draw(stem)
        if self._todo and not self._closed:
            # after(), not after_idle(): let the events queued meanwhile in first.
            self._after = self.widget.after(1, self._turn)
        else:
            self._spent = 0.0

    def _draw(self, stem: str) -> None:
        start = time.perf_counter()
        try:
            png = emoji.render_png(stem, self.size)
            p = self._photos[stem]
            p.configure(width=self.size, height=self.size)
            p.configure(data=png)
        except Exception as e:      # noqa: BLE001 - a bad file must not break the conversation
            if stem not in self._failed:
                self._failed.add(stem)
                log.warning("cannot draw the emoji %s: %s", stem, e)
        self._spent += time.perf_counter() - start

    def _on_destroy(self, event) -> None:
        if event.widget is self.widget:
            self._closed = True
            self._todo.clear()
            if self._after is not None:
                try:
                    self.widget.after_cancel(self._after)
                except tk.TclError:
                    pass
                self._after = None


class EmojiText:
    """Emoji-aware insert and get for one ``tk.Text``. With ``typed`` (an
    input box), emoji arriving as text become pictures (Tk's undo history is
    cleared then: it cannot undo over an embedded image)."""

    def __init__(self, text: tk.Text, images: EmojiImages, *, typed: bool = False):
        self.text = text
        self.images = images
        self.typed = typed
        self._busy = False
        self._serial = 0
        # How many index positions Tk gives a character outside the BMP: 2 in
        # Tk 8.6 (UTF-16 halves), 1 where Tcl holds full code points.
        self._wide = int(text.tk.call("string", "length", "\U0001F600"))
        text.bind("<<Copy>>", self.copy, add="+")
        if typed:
            text.bind("<<Cut>>", self.cut, add="+")
            text.bind("<<Modified>>", self.picture_typed, add="+")

    # -- in and out ---------------------------------------------------------------

    def insert(self, index: str, *parts) -> None:
        """Like ``Text.insert(index, chars, tags, chars, tags, ...)``; emoji
        become pictures carrying the same tags. All or nothing: when Tk
        refuses a part, what was inserted is removed and the error raised."""
        t = self.text
        if all(emoji.plain(parts[k]) for k in range(0, len(parts), 2)):
            # No picture in any part (the common case): one Tk call, which
            # converts every argument before it inserts anything.
            t.insert(index, *parts)
            return
        t.mark_set(_MARK, index)
        t.mark_gravity(_MARK, "right")
        t.mark_set(_START, index)
        t.mark_gravity(_START, "left")
        pictures = 0
        try:
            for k in range(0, len(parts), 2):
                chars = parts[k]
                tags = parts[k + 1] if k + 1 < len(parts) else ()
                tags = (tags,) if isinstance(tags, str) else tuple(tags)
                batch, drawn = [], False
                t.mark_set(_PART, _MARK)
                t.mark_gravity(_PART, "left")
                for seg in emoji.segments(chars):
                    if type(seg) is str:
                        batch.append(seg)
                    elif pictures >= MAX_PICTURES and not self.typed:
                        batch.append(formatting.tk_safe(seg.chars))
                    else:
                        if batch:
                            t.insert(_MARK, "".join(batch), ())
                            batch = []
                        self._picture(_MARK, seg)
                        pictures += 1
                        drawn = True
                if not drawn:
                    t.insert(_MARK, "".join(batch), tags)
                    continue
                if batch:
                    t.insert(_MARK, "".join(batch), ())
                # Tagged once for the whole part, not picture by picture:
                # every tag boundary is a segment Tk walks over later.
                for tag in tags:
                    t.tag_add(tag, _PART, _MARK)
            if self.typed and pictures:
                t.edit_reset()      # Tk's undo cannot step over an embedded image
        except BaseException:
            t.delete(_START, _MARK)
            raise
        finally:
            t.mark_unset(_MARK, _START, _PART)

    def _picture(self, index: str, seg: emoji.Emoji) -> None:
        # A name of our own that is free (Tk would probe "#2", "#3"... for a
        # repeat, which is quadratic in the number of repeats).
        self._serial += 1
        self.text.image_create(index, image=self.images.photo(seg.stem), align="center",
                               name=f"{image_name(seg.chars)}#{self._serial}")

    def get(self, start: str, end: str) -> str:
        """The characters from ``start`` to ``end``, pictures as what they stand for."""
        out = []
        for key, value, _index in self.text.dump(start, end, text=True, image=True):
            out.append(value if key == "text" else chars_of(value))
        return join_surrogates("".join(out))

    # -- the clipboard ----------------------------------------------------------------

    def copy(self, event=None):
        """<<Copy>>: the selection with its emoji as characters."""
        t = self.text
        if t.tag_ranges("sel"):
            chars = self.get("sel.first", "sel.last")
            t.clipboard_clear()
            t.clipboard_append(chars)
        return "break"

    def cut(self, event=None):
        t = self.text
        if t.tag_ranges("sel") and str(t.cget("state")) != "disabled":
            self.copy()
            t.delete("sel.first", "sel.last")
        return "break"

    # -- the input box ------------------------------------------------------------------

    def picture_typed(self, event=None) -> None:
        """Turn emoji that came in as text into pictures, keeping the cursor
        where it was among the characters. Idempotent; cheap when there is
        nothing to do (plain text, or every emoji already a picture)."""
        if self._busy:
            return
        t = self.text
        if t.get("1.0", "end-1c").isascii():        # the text between the pictures: no emoji there
            return
        atoms = self._atoms()
        real = "".join(chars for _k, chars, _i in atoms)
        segs = emoji.segments(real)
        # Offsets where the widget has an atom boundary, and where the
        # segments have one; a range cut at points in both is safe to redraw.
        atom_cuts, pictures, pos = {0}, {}, 0
        for kind, chars, index in atoms:
            if kind == "image":
                pictures[pos] = pos + len(chars)
            pos += len(chars)
            atom_cuts.add(pos)
        seg_cuts, wrong, spans, wanted, pos = {0}, [], [], {}, 0
        for seg in segs:
            chars = seg if type(seg) is str else seg.chars
            end = pos + len(chars)
            spans.append((pos, end, seg))
            if type(seg) is not str:
                wanted[pos] = end
                if pictures.get(pos) != end:
                    wrong.append((pos, end))         # an emoji not (yet) one picture
            seg_cuts.add(end)
            pos = end
        wrong += [(start, end) for start, end in pictures.items() if wanted.get(start) != end]
        if not wrong:
            return
        cuts = sorted(atom_cuts & seg_cuts)
        lo = max(c for c in cuts if c <= min(s for s, _e in wrong))
        hi = min(c for c in cuts if c >= max(e for _s, e in wrong))
        cursor = len(self.get("1.0", "insert"))
        self._busy = True
        try:
            first, last = self._index_of(atoms, lo), self._index_of(atoms, hi)
            t.mark_set(_START, first)
            t.mark_gravity(_START, "left")
            t.delete(first, last)
            t.mark_set(_MARK, _START)
            t.mark_gravity(_MARK, "right")
            placed = cursor <= lo or cursor >= hi
            for start, end, seg in spans:
                if end <= lo or start >= hi:
                    continue
                if type(seg) is str:
                    t.insert(_MARK, seg, ())
                else:
                    self._picture(_MARK, seg)
                if not placed and cursor <= end:
                    t.mark_set("insert", _MARK)
                    placed = True
            if cursor <= lo:
                t.mark_set("insert", _START)
            t.mark_unset(_MARK, _START)
            t.edit_reset()
            t.see("insert")
        finally:
            self._busy = False

    def _atoms(self) -> list:
        """(kind, characters, index) of each run of text and each image, in order."""
        atoms = []
        for key, value, index in self.text.dump("1.0", "end-1c", text=True, image=True):
            if key == "text":
                if atoms and atoms[-1][0] == "text":
                    atoms[-1] = ("text", atoms[-1][1] + value, atoms[-1][2])
                else:
                    atoms.append(("text", value, index))
            elif key == "image":
                atoms.append(("image", chars_of(value), index))
        return [(k, join_surrogates(c) if k == "text" else c, i) for k, c, i in atoms]

    def _index_of(self, atoms: list, offset: int) -> str:
        """The Tk index of the character at ``offset`` in the real text
        (which must fall at an atom start or inside a text atom)."""
        pos = 0
        for _kind, chars, index in atoms:
            if offset < pos + len(chars):
                if offset == pos:
                    return index
                units = sum(self._wide if ord(c) > 0xFFFF else 1 for c in chars[:offset - pos])
                return f"{index}+{units}c"
            pos += len(chars)
        return "end-1c"
