"""Files and pictures in the real window (issue 12) under Xvfb, two windows
against the real server on loopback: a file attached with the attach button
shows a progress bar and arrives in the other window as a card; a picture
pasted with Ctrl+V (put on the X clipboard by xclip) shows inline in the
other window (screenshot kept for a person to look at); a malformed picture
shows the broken-picture card and the window goes on; where tkdnd cannot
load, the attach button's tooltip says dropping does not work and the
button still sends; a file the server no longer has shows a card without
Save, both when a Save is answered no_such_file and in a later joiner's
history."""
from __future__ import annotations

import base64
import os
import shutil
import subprocess
import sys
import time

import pytest
from PIL import Image

from chatgui.app.controller import ConnectValues
from chatgui.app.filecards import EXPIRED_NOTE, GONE_NOTE
from chatgui.tk.chatpane import ATTACH_TIP_NO_DROP
from chatgui.tk.cards import BROKEN
from tests import filetools
from tests.gui.conftest import wait_until
from tests.netclient import LineClient

pytestmark = [pytest.mark.gui, pytest.mark.timeout(90)]

SHOTS = os.environ.get("NATTER_SHOTS")     # a folder to keep the screenshots in (else the test's tmp)


def join(make_window, port, nick):
    w = make_window(ConnectValues(host="127.0.0.1", port=str(port), nick=nick))
    wait_until(w.root, lambda: w.controller.connected and w.controller.rooms.current is not None,
               timeout=15, what=f"{nick} to join")
    return w


def pump(windows, cond, timeout=20.0, what=""):
    deadline = time.monotonic() + timeout
    while not cond():
        for w in windows:
            w.root.update()
        assert time.monotonic() < deadline, f"timed out waiting for {what() if callable(what) else what or cond}"
        time.sleep(0.005)


def cards(w) -> list:
    conv = w.chat.current
    return [c for ws in conv.cards.values() for c in ws if c.winfo_exists()]


def test_an_attached_file_shows_a_progress_bar_and_arrives_in_the_other_window_as_a_card(
        make_window, make_server, tmp_path):
    srv = make_server(rate_limit=0, upload_rate=1_000_000)        # a second or two: the bar is seen
    ann = join(make_window, srv.port, "ann")
    bob = join(make_window, srv.port, "bob")
    path = tmp_path / "report.pdf"
    path.write_bytes(os.urandom(1_500_000))
    ann.ask_files = lambda: [str(path)]           # what the file chooser would answer
    ann.chat.attach_button.invoke()
    bars = ann.chat.transfer_bars
    pump([ann, bob], lambda: any((bars.value(t) or 0) > 0.05 for t in bars.rows), what="the progress bar to move")
    assert bars.winfo_ismapped()
    label, _, detail, cancel = next(iter(bars.rows.values()))
    assert label.cget("text") == "Sending report.pdf to #lobby"
    assert " of 1.4 MiB" in detail.cget("text") and cancel.cget("text") == "Cancel"
    pump([ann, bob], lambda: cards(bob), what="the card in bob's window")
    card = cards(bob)[0]
    assert card.name.cget("text") == "report.pdf" and card.meta.cget("text").startswith("1.4 MiB · file ")
    assert card.winfo_ismapped() and str(card.save_button.cget("state")) == "normal"
    pump([ann, bob], lambda: not bars.rows, what="the bar to go when the upload is done")
    assert cards(ann)                                      # the sender sees its own card too
    assert not ann.errors and not bob.errors


def _x_clipboard(path, env, windows) -> subprocess.Popen:
    """Own the X clipboard with a PNG (xclip stays in the foreground: stopped
    by its pid). Until xclip has taken it, the owner may be a Tk window of
    this process, which answers only while it is pumped: each look is short,
    and the windows are pumped in between."""
    proc = subprocess.Popen(["xclip", "-quiet", "-selection", "clipboard", "-t", "image/png", "-i", str(path)],
                            env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    deadline = time.monotonic() + 60
    while True:
        try:
            out = subprocess.run(["xclip", "-selection", "clipboard", "-t", "TARGETS", "-o"], env=env,
                                 capture_output=True, timeout=2).stdout
        except subprocess.TimeoutExpired:
            out = b""
        if b"image/png" in out:
            return proc
        assert time.monotonic() < deadline, "xclip did not take the clipboard"
        for w in windows:
            w.root.update()
        time.sleep(0.05)


@pytest.mark.skipif(not shutil.which("xclip"), reason="pasting a picture needs xclip (scripts/test.sh installs it)")
def test_a_pasted_picture_shows_inline_in_the_other_window(make_window, make_server, tmp_path):
    srv = make_server(rate_limit=0, upload_rate=0)
    ann = join(make_window, srv.port, "ann")
    bob = join(make_window, srv.port, "bob")
    pic = Image.new("RGB", (320, 200), (230, 30, 30))      # red, with a blue band to recognise
    pic.paste((20, 60, 220), (0, 80, 320, 120))
    src = tmp_path / "clip.png"
    pic.save(src)
    proc = _x_clipboard(src, dict(os.environ), [ann, bob])
    try:
        ann.root.focus_force()
        ann.chat.input.focus_force()
        ann.root.update()
        ann.chat.input.event_generate("<<Paste>>")
        pump([ann, bob], lambda: any(c.photo is not None for c in cards(bob)), timeout=30,
             what=lambda: "the picture inline in bob's window; ann's window says: "
                          + ann.chat.current.text.get("1.0", "end")[-300:])
    finally:
        proc.kill()
        proc.wait(5)
    card = next(c for c in cards(bob) if c.photo is not None)
    assert card.name.cget("text").startswith("screenshot-") and card.name.cget("text").endswith(".png")
    assert card.photo.width() == 240 and card.photo.height() == 150        # the thumbnail, scaled to fit
    bob.root.update()
    shot = os.path.join(SHOTS or str(tmp_path), "pasted-picture-in-bob.png")
    subprocess.run(["import", "-window", bob.root.wm_frame(), shot], check=True, timeout=30,
                   env=dict(os.environ))
    seen = Image.open(shot).convert("RGB")
    colours = seen.getcolors(1 << 20)
    red = sum(n for n, (r, g, b) in colours if r > 200 and g < 60 and b < 60)
    blue = sum(n for n, (r, g, b) in colours if r < 50 and 40 < g < 90 and b > 190)
    assert red > 240 * 100 and blue > 240 * 20, (red, blue)     # the picture is on the screen
    assert not ann.errors and not bob.errors


def test_a_malformed_picture_shows_the_broken_picture_card_and_the_window_goes_on(
        make_window, make_server, tmp_path):
    srv = make_server(rate_limit=0, upload_rate=0)
    bob = join(make_window, srv.port, "bob")
    mallory = LineClient(srv.port)
    mallory.send({"type": "hello", "nick": "mallory", "v": 2})
    assert mallory.recv()["type"] == "welcome"
    mallory.recv_type("caught_up")
    junk = b"\x89PNG\r\n\x1a\n\0\0\0\x0dIHDR" + os.urandom(3000)   # a PNG beginning, then noise
    thumb = base64.b64encode(junk).decode()
    ready = filetools.offer(mallory, junk, "evil.png", mime="image/png", thumb=thumb)
    assert ready["type"] == "upload_ready", ready
    assert filetools.put(srv.port, ready, junk)["type"] == "put_ok"
    pump([bob], lambda: any(c.card.broken for c in cards(bob)), what="the broken-picture card")
    card = next(c for c in cards(bob) if c.card.broken)
    assert card.picture.cget("text") == BROKEN and card.photo is None
    assert "cannot be shown" in card.note.cget("text")
    mallory.send({"type": "say", "text": "still here", "ref": "s1"})
    pump([bob], lambda: "still here" in bob.chat.text.get("1.0", "end"), what="the chat to go on")
    assert not bob.errors
    mallory.close()


def test_files_dropped_on_the_conversation_are_sent(make_window, tmp_path):
    """tkdnd loads into the window's Tk, and a drop on the conversation (a
    child of the chat screen, the drop target) hands its paths to attach().
    The drop is driven through tkdnd's own generic layer (enter, position,
    drop), the code an XDND drag from a file manager ends in; the X11
    protocol part before it needs a second toolkit as the drag source."""
    w = make_window()
    assert w.drop_problem is None
    got = []
    w.controller.attach = lambda paths: got.append(list(paths))
    w.controller.view.show_chat()
    w.root.update()
    target = str(w.chat.current.text)
    x, y = w.chat.current.text.winfo_rootx() + 20, w.chat.current.text.winfo_rooty() + 20
    tcl = w.root.tk.call
    types = ("text/uri-list",)
    tcl("tkdnd::generic::HandleEnter", target, 0, types, types, ("copy",), ())
    tcl("tkdnd::generic::SetDroppedData", tcl("list", "/tmp/a b/c.png", "/tmp/{odd}.txt", "/tmp/plain"))
    tcl("tkdnd::generic::HandlePosition", target, 0, (), x, y, "copy")
    action = tcl("tkdnd::generic::HandleDrop", target, 0, (), x, y, 0)
    w.root.update()
    assert str(action) == "copy"
    assert got == [["/tmp/a b/c.png", "/tmp/{odd}.txt", "/tmp/plain"]]


def test_the_settings_dialog_sets_the_size_of_pictures_fetched_without_asking(make_window):
    saved = []
    w = make_window(save_settings=saved.append)
    w.open_settings()
    d = w.settings_dialog
    assert d.picture_mib.get() == "5"
    d.picture_box.delete(0, "end")
    d.picture_box.insert(0, "12")
    w.root.update()
    assert w.controller.settings.auto_image_bytes == 12 << 20 and saved[-1].auto_image_bytes == 12 << 20
    d.close()


@pytest.mark.parametrize("missing", ["the tkdnd library", "tkinterdnd2"])
def test_without_tkdnd_the_attach_tooltip_says_so_and_the_button_still_sends(
        make_window, make_server, tmp_path, monkeypatch, missing):
    """tkdnd fails to load the way it does where it is missing: its Tcl
    package is not where tkinterdnd2 looks (a platform its wheel has no
    build for), or tkinterdnd2 is not there at all (a build without it)."""
    import tkinterdnd2.TkinterDnD
    if missing == "tkinterdnd2":
        monkeypatch.setitem(sys.modules, "tkinterdnd2", None)         # import fails: ImportError
    else:
        monkeypatch.setattr(tkinterdnd2.TkinterDnD, "__file__", str(tmp_path / "TkinterDnD.py"))
    srv = make_server(rate_limit=0, upload_rate=0)
    ann = join(make_window, srv.port, "ann")
    bob = join(make_window, srv.port, "bob")
    assert ann.drop_problem.startswith("dropping files is off: the tkdnd package could not be loaded")
    assert ("Unable to load tkdnd library" if missing != "tkinterdnd2" else "tkinterdnd2") in ann.drop_problem
    tip = ann.chat.attach_tip
    tip.show()
    ann.root.update()
    assert tip.label.cget("text") == ATTACH_TIP_NO_DROP == \
        "Send a file (or paste a picture with Ctrl+V; dropping files does not work here)"
    tip.hide()
    assert bob.chat.attach_tip.text == ann.chat.attach_tip.text     # both windows came up the same way
    path = tmp_path / "notes.txt"
    path.write_bytes(b"hello\n" * 1000)
    ann.ask_files = lambda: [str(path)]
    ann.chat.attach_button.invoke()
    pump([ann, bob], lambda: cards(bob), what="the card in bob's window")
    assert cards(bob)[0].name.cget("text") == "notes.txt"
    assert not ann.errors and not bob.errors


def test_a_file_the_server_no_longer_has_shows_a_card_without_save(make_window, make_server, tmp_path):
    """Three files where the server keeps room for two: the oldest expires.
    Bob saw its card live; his Save is answered no_such_file and the card
    turns gone. Carol, joining later, gets it marked expired in history."""
    srv = make_server(rate_limit=0, upload_rate=0, files_quota=3000, max_file_size=2000)
    bob = join(make_window, srv.port, "bob")
    ann = LineClient(srv.port)
    ann.send({"type": "hello", "nick": "ann", "v": 2})
    assert ann.recv()["type"] == "welcome"
    ann.recv_type("caught_up")
    for i in range(3):
        data = os.urandom(1200)
        ready = filetools.offer(ann, data, f"f{i}.txt", ref=f"u{i}")
        assert ready["type"] == "upload_ready", ready
        assert filetools.put(srv.port, ready, data)["type"] == "put_ok"
    pump([bob], lambda: len(cards(bob)) == 3, what="three cards in bob's window")

    def card_of(w, name):
        return next(c for c in cards(w) if c.name.cget("text") == name)
    old = card_of(bob, "f0.txt")
    assert old.save_button.winfo_ismapped()
    bob.ask_save_path = lambda name, folder: str(tmp_path / name)
    old.save_button.invoke()
    pump([bob], lambda: old.card.gone, what="the card to turn gone")
    bob.root.update()
    assert old.note.cget("text") == GONE_NOTE and old.note.winfo_ismapped()
    assert not old.save_button.winfo_ismapped() and not old.buttons.winfo_ismapped()
    assert "no longer has this file" in bob.chat.current.text.get("1.0", "end")
    assert not (tmp_path / "f0.txt").exists()
    carol = join(make_window, srv.port, "carol")
    pump([bob, carol], lambda: len(cards(carol)) == 3, what="three cards in carol's window")
    carol.root.update()
    gone, kept = card_of(carol, "f0.txt"), card_of(carol, "f1.txt")
    assert gone.card.gone and gone.note.cget("text") == EXPIRED_NOTE and not gone.save_button.winfo_ismapped()
    assert not kept.card.gone and kept.save_button.winfo_ismapped()
    assert not bob.errors and not carol.errors
    ann.close()
