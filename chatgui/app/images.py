"""Pictures (issue 12) with Pillow, made safe for a window that must not
freeze or crash on what a peer sends.

- :func:`make_thumb` (the sender, on its transfer thread): a small PNG of
  an image file, base64, at most :data:`server.protocol.MAX_THUMB_B64`
  characters, or None when the file is not a picture Pillow may read.
- :func:`preview` (a receiver, on the ``image-decode`` thread): any bytes
  -> the PNG bytes of the picture scaled to fit a box, made by us, which
  Tk then shows; :class:`BrokenImage` for anything else.
- :class:`Decoder`: the ``image-decode`` thread: jobs from the Tk thread,
  each answered on the UI's events queue with one :class:`ImageReady`.

Every decode opens the image with the formats of issue 12 only (PNG, JPEG,
GIF, WebP: ``Image.open(fp, formats=FORMATS)``), refuses more than
:data:`MAX_PIXELS` pixels before decoding a single one (and Pillow's own
``MAX_IMAGE_PIXELS`` is set to the same cap, its ``DecompressionBombError``
and ``DecompressionBombWarning`` are caught), and turns any other failure
of Pillow into :class:`BrokenImage`: a decompression bomb or a malformed
file becomes a broken-image card, never an exception in the window.
"""
from __future__ import annotations

import base64
import io
import logging
import queue
import threading
import warnings
from dataclasses import dataclass

from server import protocol as p

log = logging.getLogger("natter.client")

FORMATS = ("PNG", "JPEG", "GIF", "WEBP")
MAX_PIXELS = 32_000_000        # a 8000 x 4000 photo; more is refused unseen
THUMB_SIDE = 240               # the sender's thumbnail fits this square
SHOWN_SIDE = 240               # a card's picture
VIEW_SIDE = 1600               # the picture viewer's

try:
    from PIL import Image, ImageFile
    Image.MAX_IMAGE_PIXELS = MAX_PIXELS
    ImageFile.LOAD_TRUNCATED_IMAGES = False
    # Over the cap Pillow only warns (an error from twice the cap): make it an
    # error, once here (catch_warnings inside a thread is not thread-safe).
    warnings.filterwarnings("error", category=Image.DecompressionBombWarning)
    PILLOW = True
except ImportError:            # the window still works; pictures show as file cards
    PILLOW = False


class BrokenImage(Exception):
    """Not a picture this client shows; ``str()`` says why, for a person."""


def _open(fp):
    """An image opened lazily (header only) after the checks; BrokenImage otherwise."""
    if not PILLOW:
        raise BrokenImage("pictures need Pillow, which this Natter lacks")
    try:
        im = Image.open(fp, formats=FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise BrokenImage("the picture is far too large to show") from None
    except Exception as e:     # Pillow raises many kinds for a malformed file
        raise BrokenImage(f"not a picture that can be shown ({type(e).__name__})") from None
    w, h = im.size
    if w <= 0 or h <= 0 or w * h > MAX_PIXELS:
        im.close()
        raise BrokenImage(f"the picture is far too large to show ({w} x {h} pixels)")
    return im


def _fit(im, side: int):
    """Decode ``im`` (its first frame) into RGB(A) scaled to fit ``side``."""
    try:
        if im.format == "JPEG":
            im.draft("RGB", (side, side))      # decode at a fraction of the size
        im.seek(0)
        im.load()
        out = im.convert("RGBA" if im.mode in ("RGBA", "LA", "P", "PA") else "RGB")
        out.thumbnail((side, side))
        return out
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise BrokenImage("the picture is far too large to show") from None
    except Exception as e:
        raise BrokenImage(f"the picture is damaged ({type(e).__name__})") from None


def preview(data: bytes, side: int) -> bytes:
    """PNG bytes of the picture in ``data``, scaled to fit ``side`` x
    ``side``; BrokenImage when it is not one we show."""
    with _open(io.BytesIO(data)) as im:
        out = _fit(im, side)
    buf = io.BytesIO()
    out.save(buf, "PNG")
    return buf.getvalue()


def preview_file(path: str, side: int) -> bytes:
    """:func:`preview` of a file on disk (read by Pillow, not into memory first)."""
    try:
        fp = open(path, "rb")
    except OSError as e:
        raise BrokenImage(f"cannot read it ({e.strerror or e})") from None
    with fp, _open(fp) as im:
        out = _fit(im, side)
    buf = io.BytesIO()
    out.save(buf, "PNG")
    return buf.getvalue()


def make_thumb(path: str, mime: str = "") -> str | None:
    """The sender's thumbnail of the image at ``path``: a PNG as base64 of
    at most MAX_THUMB_B64 characters (smaller sizes, then fewer colours,
    are tried until it fits), or None (logged) when it cannot be made."""
    try:
        with open(path, "rb") as fp, _open(fp) as im:
            pic = _fit(im, THUMB_SIDE)
    except (BrokenImage, OSError) as e:
        log.info("no thumbnail for %s: %s", path, e)
        return None
    for side in (THUMB_SIDE, 180, 128, 96, 64):
        for colours in (None, 64):
            small = pic.copy()
            small.thumbnail((side, side))
            if colours:
                small = small.convert("RGB").quantize(colours)
            buf = io.BytesIO()
            small.save(buf, "PNG", optimize=True)
            text = base64.b64encode(buf.getvalue()).decode("ascii")
            if len(text) <= p.MAX_THUMB_B64:
                return text
    return None


@dataclass(frozen=True)
class ImageReady:
    """The answer to a :class:`Decoder` job: ``png`` the picture to show,
    or None and ``why`` (a broken image)."""
    key: object
    png: bytes | None
    why: str = ""


class Decoder:
    """The ``image-decode`` thread: :meth:`decode` (Tk thread) queues a job,
    the thread makes the preview and puts :class:`ImageReady` on ``events``.
    One picture at a time: a slow one delays the others, never the window."""

    def __init__(self, events: queue.Queue):
        self.events = events
        self._jobs: queue.Queue = queue.Queue()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def decode(self, key, side: int, data: bytes | None = None, path: str | None = None) -> None:
        """Queue one picture (``data`` bytes or the file at ``path``)."""
        with self._lock:
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="image-decode", daemon=True)
                self._thread.start()
        self._jobs.put((key, side, data, path))

    def close(self, timeout: float = 2.0) -> None:
        self._jobs.put(None)
        with self._lock:
            t = self._thread
        if t is not None:
            t.join(timeout)

    def _run(self) -> None:
        while (job := self._jobs.get()) is not None:
            key, side, data, path = job
            try:
                png = preview(data, side) if data is not None else preview_file(path, side)
                self.events.put(ImageReady(key, png))
            except BrokenImage as e:
                self.events.put(ImageReady(key, None, str(e)))
            except Exception as e:       # a bug in here: a broken card, and the log says why
                log.exception("decoding a picture failed")
                self.events.put(ImageReady(key, None, f"it could not be shown ({e!r})"))
