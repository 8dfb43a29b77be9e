"""The terminal mode's moderation (issue 11), as a real subprocess against
a server the test plays (frames by hand, to DESIGN-11): the identity in
the hello (the config directory's file, made on first run), the
moderation commands' frames, their events as sentences, a question and
its release, refusals as sentences, and /help."""
from __future__ import annotations

import os
import stat

import pytest

from chatgui.net import identity
from server import protocol
from tests.played import played  # noqa: F401 (a fixture)
from tests.test_cli import _env
from tests.test_cli_rooms import TS, echo, finish, online, run

pytestmark = pytest.mark.timeout(60)


def identity_file() -> str:
    """The identity file the subprocess uses (its NATTER_HOME is the test's)."""
    home = _env().get("NATTER_HOME") or os.environ["NATTER_HOME"]
    return os.path.join(home, "config", identity.FILE_NAME)


def test_the_terminal_moderates_and_says_what_happened_in_sentences(played):
    srv = played()
    proc = run(srv.port, "teacher", "", "--ids", "--room", "maths")
    proc.stdin.write("/mute bob 5m chatting\n/mode questions on slow 30\n/kick eve\n"
                     "typo here\n/edit #3 fixed here\n/delete 3\n/release\n/audit\n")
    proc.stdin.close()
    try:
        conn = srv.accept()
        hello = online(conn, nick="teacher", rooms=("maths",))
        path = identity_file()
        assert hello["identity"] == open(path).read().strip()          # made on first run, then sent
        assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
        mute = conn.recv()              # the session was in maths already: no join, the lines go there
        assert {k: mute[k] for k in ("type", "room", "action", "nick", "reason", "duration")} == \
            {"type": "mod", "room": "maths", "action": "mute", "nick": "bob", "reason": "chatting", "duration": 300}
        conn.send({"type": "moderated", "room": "maths", "action": "mute", "nick": "bob", "by": "teacher",
                   "reason": "chatting", "until": TS + 300, "id": 1, "ts": TS, "ref": mute["ref"]})
        mode = conn.recv()
        assert (mode["type"], mode["questions"], mode["slow"]) == ("mode", True, 30)
        conn.send({"type": "mode", "room": "maths", "questions": True, "slow": 30, "by": "teacher",
                   "modes": {"questions": True, "slow": 30}, "id": 2, "ts": TS, "ref": mode["ref"]})
        kick = conn.recv()
        conn.send({"type": "error", "code": "forbidden", "message": "eve is an owner here.", "ref": kick["ref"]})
        said = conn.recv()
        echo(conn, said, 3, nick="teacher")
        edit = conn.recv()
        assert (edit["type"], edit["id"], edit["text"]) == ("edit", 3, "fixed here")
        conn.send({"type": "edited", "room": "maths", "id": 3, "text": "fixed here", "edited_ts": TS + 4,
                   "seq": 4, "ref": edit["ref"]})
        delete = conn.recv()
        assert (delete["type"], delete["id"]) == ("delete", 3)
        conn.send({"type": "deleted", "room": "maths", "id": 3, "by": "teacher", "seq": 5, "ref": delete["ref"]})
        conn.send(dict(protocol.message_frame(6, TS + 6, "bob", "what is a half of a half?", room="maths"),
                       question=True))
        # /release (the oldest waiting) was typed before the question came: it found none.
        audit = conn.recv()
        assert audit == {"type": "audit", "room": "maths", "ref": audit["ref"]}
        conn.send({"type": "audit", "room": "maths", "ref": audit["ref"], "entries": [
            {"ts": TS, "by": "teacher", "action": "mute", "nick": "bob", "reason": "chatting"}]})
        out, err = finish(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    assert "-- teacher muted bob in #maths for 5 minutes: chatting" in out
    assert "-- teacher turned on questions in #maths: members' messages go to the ops first" in out
    assert "-- teacher turned on slow mode in #maths: one message every 30 seconds per member." in out
    assert "-- You cannot remove eve from #maths: eve is an owner here." in err
    assert "[3] <teacher> typo here" in out
    assert "-- message 3 edited: fixed here" in out and "-- message 3 removed by teacher" in out
    assert "[question 6] <bob> what is a half of a half?" in out
    assert "-- no question waits in #maths" in err
    assert "-- moderation of #maths, oldest first (1):" in out and "teacher mute bob: chatting" in out
    assert proc.returncode == 1             # the kick was refused


def test_a_muted_member_is_told_for_how_long(played):
    srv = played()
    proc = run(srv.port, "bob", "")
    proc.stdin.write("can I talk?\n")
    proc.stdin.close()
    try:
        conn = srv.accept()
        online(conn, nick="bob")
        said = conn.recv()
        import time
        conn.send({"type": "error", "code": "muted", "message": "You are muted.", "until": time.time() + 230,
                   "ref": said["ref"]})
        out, err = finish(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    assert "-- not sent: You are muted in #lobby for 4 more minutes." in err
    assert proc.returncode == 1


def test_help_in_the_terminal_lists_the_moderation_commands(played):
    srv = played()
    proc = run(srv.port, "ci", "")
    proc.stdin.write("/help\n/help mute\n")
    proc.stdin.close()
    try:
        conn = srv.accept()
        online(conn)
        out, err = finish(proc)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    for usage in ("/kick NICK [reason]", "/ban NICK [time] [reason]", "/unban NICK", "/op NICK", "/voice NICK",
                  "/mode [NAME VALUE ...]", "/delete [ID] [reason]", "/edit [#ID] text", "/release [ID]",
                  "/audit", "/forget"):
        assert usage in out
    assert "/mute NICK [time] [reason]: (ops) NICK may read but not speak here" in out
