"""The connect form's "Rooms on your network" in the real window under Xvfb:
a room hosted by a second process shows within 3 s and a double-click
joins it; a password room asks first; a stopped room leaves the list;
"Why can't I connect?" and a failed join show the doctor's sentences; the
scan runs on its own thread only while the form shows.

Discovery stays on loopback (the suite's NATTER_DISCOVERY_SCOPE=local) on
the session's own UDP port (NATTER_DISCOVERY_PORT), which the second
process inherits."""
from __future__ import annotations

import os
import subprocess
import sys
import threading
import time

import pytest

from chatgui.app.controller import ConnectValues
from chatgui.app.settings import Settings
from tests.gui.conftest import wait_until
from tests.packaging_support import connect_when_listening, free_port

pytestmark = pytest.mark.gui

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def row_names(w) -> dict:
    tree = w.form.lan.tree
    return {tree.item(iid, "text"): iid for iid in tree.get_children()}


def double_click(w, iid: str) -> None:
    tree = w.form.lan.tree
    tree.see(iid)
    w.root.update()
    x, y, width, height = tree.bbox(iid)
    # Tk cannot generate a <Double-Button-1>: two clicks in a row make one.
    for _ in range(2):
        tree.event_generate("<ButtonPress-1>", x=x + 10, y=y + height // 2)
        tree.event_generate("<ButtonRelease-1>", x=x + 10, y=y + height // 2)
    w.root.update()


def scanning() -> bool:
    return any(t.name == "lan-scan" and t.is_alive() for t in threading.enumerate())


@pytest.mark.timeout(90)
def test_a_room_hosted_by_another_process_shows_within_3_s_and_a_double_click_joins(make_window, display,
                                                                                    tmp_path):
    w = make_window(None, Settings(nick="bob"))
    wait_until(w.root, lambda: w.form.lan.model.scans >= 1, timeout=10, what="a first scan")
    assert scanning()
    port = free_port()
    env = dict(os.environ, NATTER_HOME=str(tmp_path / "alice-home"), DISPLAY=display)
    host = subprocess.Popen([sys.executable, "-m", "chatgui", "--host-room", "--lan", "--port", str(port),
                             "--nick", "alice"], cwd=ROOT, env=env, stdin=subprocess.DEVNULL,
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        connect_when_listening(port, timeout=30).close()
        up = time.monotonic()
        wait_until(w.root, lambda: "alice's room" in row_names(w), timeout=3.0,
                   what="the hosted room in the list within 3 s")
        print(f"the hosted room showed {time.monotonic() - up:.2f} s after it listened")
        iid = row_names(w)["alice's room"]
        assert w.form.lan.tree.item(iid, "values")[0] == "this computer"
        double_click(w, iid)
        wait_until(w.root, lambda: w.controller.connected, timeout=15, what="joining the room")
        assert w.controller.address == f"127.0.0.1:{port}" and w.controller.me == "bob"
        wait_until(w.root, lambda: "alice" in w.chat.users, timeout=10, what="alice in the people list")
        wait_until(w.root, lambda: not scanning(), timeout=5, what="the scan to stop with the form hidden")
        assert f"127.0.0.1:{port}" in w.controller.settings.recent
    finally:
        host.terminate()
        host.wait(15)


def test_a_password_room_asks_for_it_and_a_stopped_room_leaves_the_list(make_window, make_server):
    srv = make_server(discovery=True, discovery_port=int(os.environ["NATTER_DISCOVERY_PORT"]),
                      name="Maths 4B", password="pw", rate_limit=0)
    other = make_server(discovery=True, discovery_port=int(os.environ["NATTER_DISCOVERY_PORT"]), name="Gone soon")
    w = make_window(None, Settings(nick="bob"))
    wait_until(w.root, lambda: {"Maths 4B", "Gone soon"} <= set(row_names(w)), timeout=10, what="both rooms")
    assert w.form.lan.tree.item(row_names(w)["Maths 4B"], "values")[2] == "password"
    other.shutdown()
    wait_until(w.root, lambda: "Gone soon" not in row_names(w), timeout=10, what="the stopped room to go")
    double_click(w, row_names(w)["Maths 4B"])
    assert "Maths 4B needs a password" in w.form.error_label.cget("text")
    assert not w.controller.client and w.form.port.get() == str(srv.port)
    w.form.password.set("pw")
    w.form.submit()
    wait_until(w.root, lambda: w.controller.connected, timeout=15, what="joining with the password")
    assert w.controller.address == f"127.0.0.1:{srv.port}"


def test_why_cant_i_connect_shows_the_doctors_sentences_off_the_tk_thread(make_window, monkeypatch):
    from chatgui.net import probes
    real, threads = probes.diagnose, []

    def diagnose(*args, **kw):
        threads.append(threading.current_thread().name)
        return real(*args, **kw)
    monkeypatch.setattr(probes, "diagnose", diagnose)
    port = free_port()
    w = make_window(None, Settings(nick="bob", host="127.0.0.1", port=port))
    lan = w.form.lan
    lan.doctor_button.invoke()
    assert lan.doctor_label.cget("text") == f"Checking 127.0.0.1:{port}…" and lan.doctor_busy
    wait_until(w.root, lambda: not lan.doctor_busy, timeout=20, what="the doctor's answer")
    assert threads == ["doctor"]
    assert lan.doctor_label.cget("text").startswith(f"No room runs on this computer at port {port}.")
    assert "ECONNREFUSED" in lan.details_label.cget("text")
    w.form.host.set("")
    lan.doctor_button.invoke()
    assert lan.doctor_label.cget("text").startswith("Type the room's address")


def test_a_failed_join_runs_the_doctor_by_itself(make_window):
    port = free_port()
    w = make_window(ConnectValues(host="127.0.0.1", port=str(port), nick="bob"))
    wait_until(w.root, lambda: w.form.error_label.cget("text"), what="the error on the form")
    wait_until(w.root, lambda: w.form.lan.doctor_label.cget("text").startswith("No room runs"), timeout=20,
               what="the doctor's sentence")


def test_the_address_field_offers_the_recent_rooms(make_window):
    w = make_window(None, Settings(nick="bob", recent=["198.51.100.7:4000", "[fd00::5]:30000"]))
    form = w.form
    form._fill_recent()                   # what opening the drop-down does
    assert list(form.host_entry.cget("values")) == ["198.51.100.7:4000", "[fd00::5]:30000"]
    for chosen, host, port in (("198.51.100.7:4000", "198.51.100.7", "4000"), ("[fd00::5]:30000", "fd00::5", "30000")):
        form.host.set(chosen)
        form.host_entry.event_generate("<<ComboboxSelected>>")
        w.root.update()
        assert (form.host.get(), form.port.get()) == (host, port)
