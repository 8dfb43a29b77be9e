"""The controller's files and pictures (issue 12) with a fake view, a fake
network client and fake transfers: cards for file messages, pictures from
the sender's thumbnail decoded off the Tk thread (broken-image cards for
malformed ones and bombs), what attaching, pasting, saving and cancelling
do, expired files (marked in history, or a fetch answered no_such_file),
and that nothing received is opened by itself."""
from __future__ import annotations

import base64
import hashlib
import io
import os
import queue
import re
import struct
import sys
import threading
import time
import zlib
from dataclasses import replace

import pytest
from PIL import Image

from chatgui.app import images
from chatgui.app.controller import ERROR, SYSTEM, Controller
from chatgui.app.filecards import EXPIRED_NOTE, GONE_NOTE, ClipboardImage, grab_clipboard_image
from chatgui.app.settings import Settings
from chatgui.net import events as ev
from chatgui.net import files
from server import protocol as p
from tests.fakes import FakeClient, FakeTransfers, FakeView
from tests.test_controller_rooms import start

pytestmark = pytest.mark.timeout(30)


@pytest.fixture
def env():
    FakeClient.instances.clear()
    FakeTransfers.made.clear()
    view = FakeView()
    opened = []
    grabs = []
    c = Controller(view, Settings(), client_factory=FakeClient, save_settings=lambda s: None,
                   transfers_factory=FakeTransfers, open_folder=opened.append,
                   open_url=opened.append, grab_clipboard=lambda path: grabs.pop(0)(path))
    c.opened, c.grabs = opened, grabs
    yield c, view
    c.shutdown(timeout=2)


def png(w=64, h=48, colour=(200, 40, 40)) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (w, h), colour).save(buf, "PNG")
    return buf.getvalue()


def info(fid="f1", name="report.pdf", size=123_456, mime="application/pdf", thumb=None, data=None):
    digest = hashlib.sha256(data if data is not None else b"x").hexdigest()
    return p.FileInfo(fid, name, size, mime, digest, base64.b64encode(thumb).decode() if thumb else None)


def file_msg(id, sender, f, room="lobby"):
    return p.Message(id, 1_700_000_000.0 + id, sender, f.name, None, room, f)


def pump(c, cond, timeout=10.0):
    """Hand the controller what its threads posted, until cond()."""
    deadline = time.monotonic() + timeout
    while not cond():
        try:
            c.handle(c.events.get(timeout=0.05))
        except queue.Empty:
            pass
        assert time.monotonic() < deadline, "timed out"


def test_a_file_message_shows_a_card_with_name_size_and_id_instead_of_its_text(env):
    c, view = env
    start(c)
    c.handle(file_msg(5, "bob", info()))
    line = view.lines[-1]
    assert line.card is not None and line.text == "" and line.msg_id == 5 and line.who == "bob"
    assert (line.card.fid, line.card.name, line.card.size) == ("f1", "report.pdf", "120.6 KiB")
    assert not line.card.image and not line.card.runnable and not line.card.saved
    assert c.opened == [] and FakeTransfers.made[-1].fetched == []     # nothing fetched, nothing opened


def test_a_program_s_card_says_it_is_one_and_nothing_opens_it(env):
    c, view = env
    start(c)
    c.handle(file_msg(6, "bob", info("f2", "setup.exe", mime="application/x-msdownload")))
    card = view.cards["f2"]
    assert card.runnable and "program" in card.note and "bob" in card.note and "never opens it" in card.note
    assert c.opened == [] and FakeTransfers.made[-1].fetched == []


def test_a_picture_shows_the_senders_thumbnail_made_safe_off_the_tk_thread(env):
    c, view = env
    start(c)
    c.handle(file_msg(7, "bob", info("f3", "cat.png", 900_000, "image/png", thumb=png(200, 100))))
    assert view.cards["f3"].image and view.cards["f3"].picture is None     # not decoded on this thread
    pump(c, lambda: view.cards["f3"].picture is not None or view.cards["f3"].broken)
    card = view.cards["f3"]
    assert not card.broken
    shown = Image.open(io.BytesIO(card.picture))
    assert shown.format == "PNG" and max(shown.size) <= images.SHOWN_SIDE
    assert [t.name for t in threading.enumerate() if t.name == "image-decode"] == ["image-decode"]


def _bomb(w, h) -> bytes:
    """A valid PNG header for w x h pixels, with a tiny stream of zeros."""
    def chunk(kind, data):
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))
    comp = zlib.compressobj(9)
    body = b"".join(comp.compress(b"\0" * (w + 1)) for _ in range(50)) + comp.flush()
    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 0, 0, 0, 0))
            + chunk(b"IDAT", body) + chunk(b"IEND", b""))


@pytest.mark.parametrize("thumb, why", [
    (_bomb(100_000, 100_000), "far too large"),
    (b"\x89PNG\r\n\x1a\n" + b"garbage" * 20, "cannot be shown"),
    (png()[:60], "cannot be shown"),                     # cut short
])
def test_a_malformed_or_bomb_thumbnail_gives_a_broken_picture_card(env, thumb, why):
    c, view = env
    start(c)
    c.handle(file_msg(8, "mallory", info("f4", "evil.png", 1000, "image/png", thumb=thumb)))
    started = time.monotonic()
    pump(c, lambda: view.cards["f4"].broken or view.cards["f4"].picture is not None)
    assert time.monotonic() - started < 5
    card = view.cards["f4"]
    assert card.broken and card.picture is None and why in card.note


def test_a_picture_without_a_thumbnail_is_fetched_when_small_and_shrunk_here(env, tmp_path):
    c, view = env
    start(c)
    c.handle(file_msg(9, "bob", info("f5", "photo.jpg", 2_000_000, "image/jpeg")))
    tr = FakeTransfers.made[-1]
    (tid, got, dest), = tr.fetched
    assert got.id == "f5"
    Image.new("RGB", (1200, 900), (10, 120, 30)).save(dest, "JPEG")
    c.handle(ev.TransferDone(tid, "f5", dest))
    pump(c, lambda: view.cards["f5"].picture is not None or view.cards["f5"].broken)
    assert max(Image.open(io.BytesIO(view.cards["f5"].picture)).size) <= images.SHOWN_SIDE
    c.handle(file_msg(10, "bob", info("f6", "huge.jpg", 9_000_000, "image/jpeg")))
    assert [f[1].id for f in tr.fetched] == ["f5"]        # over 5 MiB: not fetched unasked


def test_clicking_a_picture_fetches_the_original_and_shows_it_in_a_window(env):
    c, view = env
    start(c)
    c.handle(file_msg(11, "bob", info("f7", "cat.png", 3_000_000, "image/png", thumb=png())))
    pump(c, lambda: view.cards["f7"].picture is not None)
    c.card_action("f7", "view")
    tr = FakeTransfers.made[-1]
    (tid, _, dest), = tr.fetched
    assert tid in view.transfers                      # its progress bar
    Image.new("RGB", (3000, 2000), (0, 0, 200)).save(dest, "PNG")
    c.handle(ev.TransferDone(tid, "f7", dest))
    pump(c, lambda: view.pictures)
    title, shown = view.pictures[0]
    assert title == "cat.png" and max(Image.open(io.BytesIO(shown)).size) == images.VIEW_SIDE
    assert c.opened == []


def test_save_asks_where_fetches_there_and_then_offers_the_folder(env, tmp_path):
    c, view = env
    start(c)
    c.handle(file_msg(12, "bob", info("f8", "../../etc/passwd")))
    view.save_answer = str(tmp_path / "passwd")
    c.card_action("f8", "save")
    assert view.save_asked[0][0] == "passwd"          # a name, never a path
    (tid, got, dest), = FakeTransfers.made[-1].fetched
    assert dest == str(tmp_path / "passwd") and view.cards["f8"].busy
    c.handle(ev.TransferProgress(tid, 50_000, 123_456, 1_000_000.0, 0.07, "receiving"))
    assert view.transfers[tid].fraction == pytest.approx(50_000 / 123_456)
    c.handle(ev.TransferDone(tid, "f8", dest))
    assert tid not in view.transfers and view.cards["f8"].saved and not view.cards["f8"].busy
    assert "Saved ../../etc/passwd as" in view.texts(SYSTEM)[-1]
    c.card_action("f8", "open_folder")
    assert c.opened == [str(tmp_path)]


def test_a_file_the_server_marks_expired_shows_a_card_that_says_so_and_fetches_nothing(env):
    c, view = env
    start(c)
    c.handle(file_msg(14, "bob", replace(info("f11", "old.png", 900_000, "image/png", thumb=png()), expired=True)))
    card = view.cards["f11"]
    assert card.gone and card.note == EXPIRED_NOTE and card.picture is None
    c.card_action("f11", "save")
    c.card_action("f11", "view")
    c.submit("/get f11")
    assert FakeTransfers.made[-1].fetched == [] and view.save_asked == []     # nothing asked, nothing fetched
    assert view.texts(ERROR)[-1] == "The server no longer has old.png."


def test_a_card_shown_again_in_history_as_expired_turns_to_the_expired_card(env):
    c, view = env
    start(c)
    f = info("f12", "notes.txt")
    c.handle(file_msg(15, "bob", f))
    assert not view.cards["f12"].gone
    c.rooms.current.forget_lines()          # the view dropped its lines: paging back shows them again
    c.handle(file_msg(15, "bob", replace(f, expired=True)))
    assert view.cards["f12"].gone and view.cards["f12"].note == EXPIRED_NOTE


@pytest.mark.parametrize("purpose", ["save", "preview"])
def test_a_fetch_the_server_answers_no_such_file_turns_the_card_to_gone(env, tmp_path, purpose):
    c, view = env
    start(c)
    if purpose == "save":
        c.handle(file_msg(16, "bob", info("f13", "slides.pdf")))
        view.save_answer = str(tmp_path / "slides.pdf")
        c.card_action("f13", "save")
    else:                                   # a small picture without a thumbnail, fetched unasked
        c.handle(file_msg(16, "bob", info("f13", "slides.png", 40_000, "image/png")))
    (tid, _, _), = FakeTransfers.made[-1].fetched
    c.handle(ev.TransferFailed(tid, f"Cannot fetch slides: {files.refusal_words(p.NO_SUCH_FILE, '')}.",
                               code=p.NO_SUCH_FILE))
    card = view.cards["f13"]
    assert card.gone and not card.busy and card.note == GONE_NOTE
    assert "no longer has this file" in view.texts(ERROR)[-1]
    c.card_action("f13", "save")
    assert len(FakeTransfers.made[-1].fetched) == 1                 # not tried again


def test_a_fetch_that_fails_otherwise_leaves_the_card_as_it_was(env, tmp_path):
    c, view = env
    start(c)
    c.handle(file_msg(17, "bob", info("f14", "slides.pdf")))
    view.save_answer = str(tmp_path / "slides.pdf")
    c.card_action("f14", "save")
    (tid, _, _), = FakeTransfers.made[-1].fetched
    c.handle(ev.TransferFailed(tid, "The transfer stopped: connection reset (tried 5 times)."))
    assert not view.cards["f14"].gone and not view.cards["f14"].busy and view.cards["f14"].note == ""

def test_attach_sends_to_the_room_on_screen_with_a_progress_bar_that_counts_down(env, tmp_path):
    c, view = env
    start(c)
    path = tmp_path / "notes.txt"
    path.write_bytes(b"hello" * 1000)
    c.attach([str(path)])
    (tid, sent, room, to, name), = FakeTransfers.made[-1].sent
    assert (sent, room, to, name) == (str(path), "lobby", None, "notes.txt")
    assert view.transfers[tid].label == "Sending notes.txt to #lobby" and view.transfers[tid].fraction is None
    c.handle(ev.TransferProgress(tid, 2 << 20, 10 << 20, float(1 << 20), 8.0, "sending"))
    bar = view.transfers[tid]
    assert bar.fraction == pytest.approx(0.2) and bar.detail == "2.0 MiB of 10.0 MiB · 1.0 MiB/s · 8 s left"
    c.handle(ev.TransferDone(tid, "f9"))
    assert tid not in view.transfers


def test_attach_in_a_private_conversation_sends_to_that_person(env, tmp_path):
    c, view = env
    start(c)
    c.submit("/msg bob hi")
    path = tmp_path / "a.bin"
    path.write_bytes(b"1")
    c.submit(f"/send {path}")
    (_, _, room, to, _), = FakeTransfers.made[-1].sent
    assert (room, to) == (None, "bob")


def test_a_missing_file_is_refused_in_words(env, tmp_path):
    c, view = env
    start(c)
    c.attach([str(tmp_path / "nope.txt")])
    assert FakeTransfers.made[-1].sent == []
    assert "there is no file" in view.texts(ERROR)[-1]


def test_cancel_stops_the_transfer_and_a_failure_says_why(env, tmp_path):
    c, view = env
    start(c)
    path = tmp_path / "big.iso"
    path.write_bytes(b"0" * 10)
    c.attach([str(path)])
    tid = FakeTransfers.made[-1].sent[0][0]
    c.cancel_transfer(tid)
    assert FakeTransfers.made[-1].cancelled == [tid]
    c.handle(ev.TransferFailed(tid, "Cancelled.", cancelled=True))
    assert tid in view.transfers_ended and "Stopped: sending big.iso" in view.texts(SYSTEM)[-1]
    c.attach([str(path)])
    tid2 = FakeTransfers.made[-1].sent[-1][0]
    c.handle(ev.TransferFailed(tid2, "Not sent: the file is larger than this server takes."))
    assert "Sending big.iso to #lobby: Not sent: the file is larger" in view.texts(ERROR)[-1]


def test_a_pasted_picture_is_sent_as_screenshot_with_the_time(env, tmp_path):
    c, view = env
    start(c)

    def grab(path):
        Image.new("RGB", (40, 30), (1, 2, 3)).save(path, "PNG")
        return ClipboardImage(path)
    c.grabs.append(grab)
    c.paste_image()
    pump(c, lambda: FakeTransfers.made[-1].sent)
    (_, path, room, _, name), = FakeTransfers.made[-1].sent
    assert re.fullmatch(r"screenshot-\d{8}-\d{6}\.png", name) and room == "lobby"
    assert Image.open(path).size == (40, 30)
    c.grabs.append(lambda path: ClipboardImage(None, "the clipboard holds no picture."))
    c.paste_image()
    pump(c, lambda: "Nothing pasted" in (view.texts(SYSTEM) or [""])[-1])
    assert len(FakeTransfers.made[-1].sent) == 1



@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="Pillow runs xclip / wl-paste on Linux only")
def test_without_xclip_or_wl_paste_a_pasted_picture_says_so(env, monkeypatch, tmp_path):
    """What docs/packaging.md quotes: the bundle has neither program."""
    import PIL.ImageGrab
    monkeypatch.setattr(PIL.ImageGrab.shutil, "which", lambda name: None)
    monkeypatch.setenv("DISPLAY", ":99")
    monkeypatch.delenv("WAYLAND_DISPLAY", raising=False)
    c, view = env
    start(c)
    c.grabs.append(grab_clipboard_image)
    c.paste_image()
    pump(c, lambda: "Nothing pasted" in (view.texts(SYSTEM) or [""])[-1])
    assert view.texts(SYSTEM)[-1] == ("Nothing pasted: the clipboard holds no picture Natter can read "
                                      "(wl-paste or xclip is required for ImageGrab.grabclipboard() on Linux).")
    assert FakeTransfers.made[-1].sent == []

def test_get_by_id_saves_in_the_folder_given(env, tmp_path):
    c, view = env
    start(c)
    c.handle(file_msg(13, "bob", info("f10", "data.csv")))
    c.submit(f"/get f10 {tmp_path}")
    (_, got, dest), = FakeTransfers.made[-1].fetched
    assert dest == os.path.join(str(tmp_path), "data.csv")
    c.submit("/get nosuch")
    assert "No file nosuch" in view.texts(ERROR)[-1]


def test_the_size_fetched_without_asking_is_the_users_and_is_saved(tmp_path):
    view, saved = FakeView(), []
    c = Controller(view, Settings(), client_factory=FakeClient, save_settings=saved.append,
                   transfers_factory=FakeTransfers)
    start(c)
    c.set_auto_image_mib(0.5)
    assert c.settings.auto_image_bytes == 512 * 1024 and saved[-1].auto_image_bytes == 512 * 1024
    c.handle(file_msg(20, "bob", info("g1", "photo.jpg", 600_000, "image/jpeg")))
    assert FakeTransfers.made[-1].fetched == []               # over the user's size: not fetched
    c.card_action("g1", "view")
    assert FakeTransfers.made[-1].fetched == []
    assert "Save it to see it" in view.texts(SYSTEM)[-1]
    c.set_auto_image_mib(5000)
    assert c.settings.auto_image_bytes == 1000 << 20          # capped
    c.shutdown(timeout=2)
