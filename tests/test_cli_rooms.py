"""The terminal mode's rooms, as real subprocesses against a server the
test plays (protocol v2): --room, /join, /part, /rooms, lines of other
rooms named, and the prompt that says the current room."""
from __future__ import annotations

import os
import subprocess

import pytest

from server import protocol
from tests.played import played  # noqa: F401 (a fixture)
from tests.test_cli import ROOT, STAMP, Cli, PtyReader, _env, cli_cmd

pytestmark = pytest.mark.timeout(60)

TS = 1_700_000_000.0


def welcome2(nick, rooms=("lobby",)) -> dict:
    return {"type": "welcome", "nick": nick, "users": [nick, "bob"], "history": [], "last_id": 0,
            "session": "s1", "protocol": 2, "replay": True, "rooms": list(rooms), "epoch": "e1"}


def online(conn, nick="ci", rooms=("lobby",)) -> dict:
    hello = conn.recv()
    conn.send(welcome2(nick, rooms))
    for name in rooms:
        conn.send(protocol.room_frame(name, "", [nick, "bob"], 0, 0, False))
    conn.send(protocol.caught_up_frame(0))
    return hello


def echo(conn, frame: dict, msg_id: int, nick="ci") -> None:
    """Answer a say as the server would: our copy with its ref."""
    conn.send(protocol.message_frame(msg_id, TS + msg_id, nick, frame["text"], frame["ref"],
                                     frame.get("room", "lobby")))


def run(port, nick, stdin, *extra):
    return subprocess.Popen(cli_cmd(port, nick, *extra), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, encoding="utf-8", cwd=ROOT, env=_env())


def finish(proc) -> tuple:
    """Wait for a run whose stdin is closed; (stdout, stderr)."""
    proc.wait(15)
    return proc.stdout.read(), proc.stderr.read()


def test_room_joins_first_and_the_piped_lines_go_there(played):
    srv = played()
    proc = run(srv.port, "ci", "", "--room", "#builds")
    proc.stdin.write("build 41 passed\nbuild 42 failed\n")
    proc.stdin.close()
    try:
        conn = srv.accept()
        assert online(conn)["v"] == 2
        join = conn.recv()
        assert (join["type"], join["room"]) == ("join", "builds"), "the room is joined before any line"
        conn.send(protocol.room_frame("builds", "CI", ["ci"], 0, 0, False, ref=join["ref"]))
        conn.send(protocol.joined_frame("ci", "builds"))
        for i in (1, 2):
            said = conn.recv()
            assert (said["type"], said["room"]) == ("say", "builds")
            echo(conn, said, i)
        out, err = finish(proc)
        assert proc.returncode == 0, err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


def test_a_room_that_cannot_be_joined_sends_nothing_and_exits_1(played):
    srv = played()
    proc = run(srv.port, "ci", "", "--room", "staff")
    proc.stdin.write("secret\n")
    proc.stdin.close()
    try:
        conn = srv.accept()
        online(conn)
        join = conn.recv()
        conn.send(protocol.error_frame(protocol.BAD_KEY, "The room staff needs its key.", join["ref"]))
        out, err = finish(proc)
        assert proc.returncode == 1
        assert "cannot join #staff: The room staff needs its key." in err
        assert "not sent: 1 line meant for #staff" in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
    # Nothing but the join (and the bye) ever reached the server.
    rest = []
    try:
        while True:
            rest.append(conn.recv())
    except (EOFError, OSError):
        pass
    assert [f["type"] for f in rest] in ([], ["bye"])


def test_join_part_rooms_and_lines_of_other_rooms_named(played):
    srv = played()
    cli = Cli(srv.port, "ann")
    try:
        conn = srv.accept()
        online(conn, "ann", rooms=("lobby", "maths"))
        conn.send(protocol.message_frame(1, TS, "bob", "in the lobby", room="lobby"))
        conn.send(protocol.message_frame(2, TS, "dave", "half of a half", room="maths"))
        cli.expect(STAMP + r"<bob> in the lobby$")
        cli.expect(STAMP + r"#maths <dave> half of a half$")
        cli.send("/join physics")
        cli.send("F = ma")                          # waits for the join's answer
        join = conn.recv()
        assert (join["type"], join["room"]) == ("join", "physics")
        conn.send(protocol.room_frame("physics", "Forces", ["ann", "erin"], 0, 0, False, ref=join["ref"]))
        cli.expect(r"^-- now in #physics \(2 in it\): Forces$")
        said = conn.recv()
        assert (said["type"], said["room"], said["text"]) == ("say", "physics", "F = ma")
        echo(conn, said, 3, "ann")
        conn.send(protocol.message_frame(4, TS, "bob", "back in the lobby", room="lobby"))
        cli.expect(STAMP + r"#lobby <bob> back in the lobby$")
        conn.send(protocol.joined_frame("carol", "maths"))
        cli.expect(STAMP + r"#maths -- carol joined$")
        cli.send("/who")
        cli.expect(r"^-- 2 in #physics: ann, erin$")
        cli.send("/rooms")
        ask = conn.recv()
        assert ask["type"] == "rooms"
        conn.send(protocol.rooms_frame([{"room": "lobby", "topic": "", "users": 3, "last_id": 4, "key": False},
                                        {"room": "staff", "topic": "Teachers", "users": 2, "last_id": 0,
                                         "key": True}], ref=ask["ref"]))
        cli.expect(r"^-- 2 rooms \(join one with /join NAME\):$")
        cli.expect(r"^--   #lobby \(3 in it, you are in it\)$")
        cli.expect(r"^--   #staff \(2 in it, needs a key\): Teachers$")
        cli.send("/part")
        part = conn.recv()
        assert (part["type"], part["room"]) == ("part", "physics")
        conn.send(protocol.left_frame("ann", "part", "physics", ref=part["ref"]))
        cli.expect(r"^-- left #physics; now in #lobby$")
        cli.send("hello lobby")
        said = conn.recv()
        assert (said["type"], said.get("room"), said["text"]) == ("say", None, "hello lobby")
        echo(conn, said, 5, "ann")
        cli.proc.stdin.close()
        assert cli.proc.wait(15) == 0
    finally:
        if cli.proc.poll() is None:
            cli.proc.kill()
            cli.proc.wait(5)


def test_the_prompt_at_a_terminal_says_the_current_room(played):
    import pty
    srv = played()
    master, slave = pty.openpty()
    proc = subprocess.Popen(cli_cmd(srv.port, "ann"), stdin=slave, stdout=slave, stderr=slave, cwd=ROOT,
                            env=_env())
    os.close(slave)
    term = PtyReader(master)
    try:
        conn = srv.accept()
        online(conn, "ann")
        term.expect(r"#lobby> $")
        os.write(master, b"/join maths\n")
        join = conn.recv()
        conn.send(protocol.room_frame("maths", "", ["ann"], 0, 0, False, ref=join["ref"]))
        term.expect(r"#maths> $")
        conn.send(protocol.message_frame(1, TS, "bob", "meanwhile", room="lobby"))
        term.expect(STAMP + r"#lobby <bob> meanwhile\r?\n#maths> $")    # the prompt comes back under it
        os.write(master, b"/quit\n")
        assert proc.wait(15) == 0
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        os.close(master)


def test_a_piped_run_shows_no_prompt(played):
    srv = played()
    proc = run(srv.port, "ci", "")
    proc.stdin.close()
    try:
        online(srv.accept())
        out, err = finish(proc)
        assert proc.returncode == 0 and "> " not in err and "\x1b" not in err
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)


def test_a_bad_room_argument_exits_2():
    proc = subprocess.run(cli_cmd(9, "ci", "--room", "two words"), capture_output=True, text=True, cwd=ROOT,
                          env=_env(), timeout=30)
    assert proc.returncode == 2 and "room name may hold letters" in proc.stderr
