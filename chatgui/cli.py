"""Terminal mode: ``python -m chatgui --cli --host H --port P --nick N``.

Lines typed on stdin are sent (commands too: :mod:`chatgui.app.commands`) to
the current room; the rooms go to stdout, one line per event, with
timestamps, a room other than the current one named before the line::

    [14:02] <alice> hello
    [14:02] * alice waves
    [14:02] #maths <dave> half of a half
    [14:03] [private] <bob> are you there?
    [14:03] [private to bob] <alice> yes
    [14:04] -- carol joined
    [14:04] #maths -- erin joined
             | the second line of a message is indented under it

Rooms (a server with rooms): the current room is the lobby, or ``--room
R``, which is joined first (``--room-key`` for a room with a key) before
any line is sent; ``/join NAME [key]`` joins a room and makes it the
current one, ``/part [NAME]`` leaves one, ``/rooms`` lists them all,
``/topic [text]`` shows or sets the current room's topic. With a terminal
on stdin a prompt on stderr says the current room (``#maths> ``). The
session is resumed across runs (:mod:`chatgui.net.sessions`), so the rooms
it was in come back.

Moderation (issue 11): ``/kick /ban /unban /mute /unmute /op /deop /voice
/devoice /mode /delete /edit /release /audit /forget`` (``/help`` says
how); moderation events print as sentences in their room (``-- teacher
muted bob in #maths for 5 minutes.``), a member's question shows to the
ops as ``[question 57] <bob> ...`` (``/release 57``), a removed message
as ``-- message 12 removed by X``, an edit as ``-- message 12 edited:
...``. ``/delete`` and ``/edit`` without a number act on our own last
message in the current room; ``--ids`` prints every message's number
(``[14:02] [12] <alice> hello``) for an op who removes others' messages.
Every refusal is a sentence on stderr ("You are muted in #maths for 4
more minutes."). The identity (:mod:`chatgui.net.identity`) is the
window's: the same file, so a nick reserved in the window is the
terminal's too.

Files (issue 12, :mod:`chatgui.cli_files`): ``/send PATH`` sends a file
to the current room; a file someone sent prints as ``<ann> [file ID]
report.pdf (1.2 MiB): /get ID``; ``/get ID [PATH]`` saves it (to the
current folder by default). Progress goes to stderr; the end of input
waits for the transfers as it waits for messages.

Connection status, refusals and errors go to stderr, so a script reading
stdout gets only the room.

Lines typed before the server has welcomed us (``printf '/who\nhi\n' |
...``) wait and run, in order, once connected. The messages from before
we joined are printed when stdout is a terminal; in a pipe they are not
unless ``--history`` (``--no-history`` leaves them out on a terminal).

``--tls`` encrypts. The first time a server is met, nothing is sent to it
until its certificate is trusted: the fingerprint is printed to stderr
(even with ``--quiet``) to compare with the one the server printed at
start. With a terminal on stdin the client asks "Trust this certificate
and join? [y/N]" (the answer is not sent as a message) and, on yes,
connects trusting that certificate and pins it (:mod:`chatgui.net.pins`); in
a pipe it says how to run again with ``--trust-fingerprint`` and exits
1. If a pinned certificate later changes, the client refuses, prints a
warning with both fingerprints and exits 1 having sent nothing.
``--trust-fingerprint "3F2A 9B1C ..."`` connects only to a server showing
that certificate and pins it: the way to accept a new certificate, or a
first one, after comparing it. Everything a peer wrote is made
terminal-safe (:func:`chatgui.app.formatting.safe_text`): no escape sequence
from the network reaches the terminal, and no field of a server frame can
crash the terminal (a time it cannot show prints as ``--:--``).

``/quit`` or the end of stdin ends the session, but only once everything
sent has been acknowledged by the server (or ``--wait`` seconds have
passed), so ``echo "build finished" | python -m chatgui --cli --nick ci``
really posts. Exit status: 0 when every message was delivered; 1 when the
connection failed or something was refused or not confirmed (the reason is
on stderr); 2 for a bad command line.

Threads: the main thread runs :class:`Session` (it reads the event queue
and prints); ``cli-stdin`` reads stdin and puts each line on the same
queue; the network client has its own two (:mod:`chatgui.net.client`).
"""
from __future__ import annotations

import argparse
import os
import queue
import sys
import threading
import time
from dataclasses import dataclass

from server import protocol

from chatgui.app import commands
from chatgui.app import moderation_text as modwords
from chatgui.app.formatting import safe_text, timestamp
from chatgui.app.view import Modes
from chatgui.net import events as ev
from chatgui.net import identity as identity_mod
from chatgui.net import moderation as mod
from chatgui.net.client import ChatClient
from chatgui.net.transfers import Transfers
from chatgui.cli_files import TerminalFiles
from chatgui.net.pins import normalize_fingerprint
from chatgui.netcheck import split_addresses


@dataclass(frozen=True)
class _Line:
    text: str


@dataclass(frozen=True)
class _EndOfInput:
    pass


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        prog="python -m chatgui --cli",
        description="Natter in a terminal: lines from stdin are sent, the room is printed to stdout.")
    ap.add_argument("--cli", action="store_true", help="terminal mode (this one)")
    ap.add_argument("--host", default="127.0.0.1",
                    help="server address (default %(default)s); several nodes of one deployment as a "
                         "comma-separated list, a,b:7000,[::1]:7001, tried in turn")
    ap.add_argument("--port", type=int, default=protocol.DEFAULT_PORT, help="server port (default %(default)s)")
    ap.add_argument("--nick", required=True, help="your nick in the room")
    ap.add_argument("--room", type=_room_arg, default=None,
                    help="the room to send the lines to (joined first); default: the lobby")
    ap.add_argument("--room-key", default=None, help="with --room: the key of a room that has one")
    ap.add_argument("--password", default=os.environ.get("NATTER_PASSWORD"),
                    help="room password (or set NATTER_PASSWORD)")
    ap.add_argument("--wait", type=float, default=10.0,
                    help="seconds to wait at the end for the server to confirm what was sent "
                         "(default %(default)s)")
    ap.add_argument("--timeout", type=float, default=5.0, help="seconds to wait for a connection (default %(default)s)")
    shown = ap.add_mutually_exclusive_group()
    shown.add_argument("--history", dest="history", action="store_true", default=None,
                       help="print the messages from before you joined (the default on a terminal, "
                            "not in a pipe)")
    shown.add_argument("--no-history", dest="history", action="store_false",
                       help="do not print the messages from before you joined")
    ap.add_argument("--quiet", action="store_true", help="no connection status on stderr (errors still)")
    ap.add_argument("--ids", action="store_true",
                    help="print each message's number, for /delete ID and /edit #ID")
    ap.add_argument("--tls", action="store_true",
                    help="encrypt (the server runs with --tls); a certificate never seen before is "
                         "shown to compare first, then pinned")
    ap.add_argument("--trust-fingerprint", metavar='"XXXX XXXX ..."', type=_fingerprint_arg, default=None,
                    help="trust the server's certificate only if it has this fingerprint, and pin it "
                         "(to accept a first or a changed certificate after comparing it); implies --tls")
    return ap


def _room_arg(text: str) -> str:
    try:
        return protocol.check_room(text[1:] if text.startswith("#") else text)
    except protocol.ProtocolError as e:
        raise argparse.ArgumentTypeError(e.message) from None


def _fingerprint_arg(text: str) -> str:
    try:
        return normalize_fingerprint(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


class Terminal:
    """Turns events into lines on ``out`` (the room) and ``err`` (status).

    Thread: the main thread only.
    """

    def __init__(self, out, err, nick: str, history: bool = True, quiet: bool = False, prompt: bool = False,
                 ids: bool = False):
        self.out = out
        self.ids = ids                  # print each message's number (--ids)
        self.modes: dict = {}           # room key -> Modes
        self.questions: dict = {}       # room key -> ids of the questions waiting (we are an op there)
        self.last_own: dict = {}        # room key -> id of our last message there
        self.err = err
        self.nick = nick
        self.history = history
        self.quiet = quiet
        self.users: set = set()         # online (a server without rooms: everyone in the room)
        self.current = protocol.LOBBY   # the room typed lines go to
        self.people: dict = {}          # room key -> set of nicks, of each room we are in
        self.names: dict = {}           # room key -> the room's name as the server spells it
        self.topics: dict = {}          # room key -> topic
        self.prompting = prompt         # stdin is a terminal: show "#room> " (once ready)
        self.files: TerminalFiles | None = None     # set by the Session (issue 12)
        self._prompt_shown = False

    # -- output helpers --------------------------------------------------

    def _room(self, ts, text: str, room: str | None = None) -> None:
        """One event of ``room``: named before the text when it is not the current one."""
        prefix = f"[{_stamp(ts)}] "
        if room is not None and protocol.room_key(room) != protocol.room_key(self.current):
            text = f"#{safe_text(room)} {text}"
        first, *rest = text.split("\n")
        lines = [prefix + first] + [" " * len(prefix) + "| " + more for more in rest]
        self._unprompt()
        self.out.write("\n".join(lines) + "\n")
        self.out.flush()

    def status(self, text: str) -> None:
        if not self.quiet:
            self.error(text)

    def error(self, text: str) -> None:
        self._unprompt()
        self.err.write(f"-- {text}\n")
        self.err.flush()

    def info(self, text: str) -> None:
        self._unprompt()
        self.out.write(text + "\n")
        self.out.flush()

    def prompt(self) -> None:
        """Show ``#room> `` on stderr (a terminal only), after the output."""
        if self.prompting and not self._prompt_shown:
            self.err.write(f"#{safe_text(self.current)}> ")
            self.err.flush()
            self._prompt_shown = True

    def _unprompt(self) -> None:
        """Output is coming: take the prompt off its line first (the
        program's own text, so no peer controls reach the terminal)."""
        if self._prompt_shown:
            self.err.write("\r\x1b[K")
            self.err.flush()
            self._prompt_shown = False

    def in_room(self, room: str) -> bool:
        return protocol.room_key(room) in self.people

    def name_of(self, room: str) -> str:
        return self.names.get(protocol.room_key(room), room)

    # -- events ----------------------------------------------------------

    def show(self, e) -> None:
        kind = type(e)
        s = safe_text
        if issubclass(kind, protocol.Message):
            key = protocol.room_key(e.room)
            number = f"[{e.id}] " if self.ids else ""
            if getattr(e, "question", False):
                if e.sender != self.nick:
                    self.questions.setdefault(key, []).append(e.id)
                number = f"[question {e.id}] "
            released = getattr(e, "released_from", None)
            if released is not None and released in self.questions.get(key, ()):
                self.questions[key].remove(released)
            if e.sender == self.nick:
                self.last_own[key] = e.id
            tail = " (edited)" if getattr(e, "edited_ts", None) is not None else ""
            if released is not None and e.released_by:
                tail += f" (released by {s(e.released_by)})"
            action = commands.action_body(e.text)
            if getattr(e, "file", None) is not None and self.files is not None:
                self._room(e.ts, f"{number}<{s(e.sender)}> {self.files.line(e)}", e.room)
            elif action is not None:
                self._room(e.ts, f"{number}* {s(e.sender)} {s(action)}{tail}", e.room)
            else:
                self._room(e.ts, f"{number}<{s(e.sender)}> {s(e.text)}{tail}", e.room)
        elif kind is mod.Moderated:
            ours = protocol.nick_key(e.nick) == protocol.nick_key(self.nick)
            self._room(e.ts, "-- " + modwords.moderated_sentence(e, f"#{s(e.room)}", ours, s, time.time()), e.room)
        elif kind is mod.ModeChanged:
            key = protocol.room_key(e.room)
            now = e.modes if e.modes is not None else {**modwords.vars_of(self.modes.get(key, Modes())),
                                                       **e.changed}
            self.modes[key] = Modes(**now)
            for name, value in e.changed.items():
                self._room(e.ts, "-- " + modwords.mode_sentence(s(e.by) if e.by else None, name, value,
                                                                 f"#{s(e.room)}"), e.room)
        elif kind is mod.Deleted:
            self._room(None, f"-- message {e.id} removed by {s(e.by)}", e.room)
        elif kind is mod.Edited:
            self._room(e.edited_ts, f"-- message {e.id} edited: {s(e.text)}", e.room)
        elif kind is mod.Audit:
            self.info(f"-- moderation of #{s(e.room)}, oldest first ({len(e.entries)}):")
            for x in e.entries:
                self.info(f"--   [{_stamp(x.ts)}] {modwords.audit_words(x, s)}")
        elif kind is mod.Forgotten:
            self.info(f"-- the nick {s(e.nick)} is no longer reserved for this computer")
        elif kind is protocol.Topic:
            self.topics[protocol.room_key(e.room)] = e.topic
            said = f"set the topic: {s(e.topic)}" if e.topic else "cleared the topic"
            self._room(e.ts, f"-- {s(e.by) or 'someone'} {said}", e.room)
        elif kind is ev.RoomState:
            info = e.info
            key = protocol.room_key(info.room)
            self.people[key], self.names[key], self.topics[key] = set(info.users), info.room, info.topic
            if e.powers is not None:
                self.modes[key] = Modes(**dict(e.powers.modes))
        elif issubclass(kind, protocol.Direct):
            text = (self.files.line(e) if getattr(e, "file", None) is not None and self.files is not None
                    else s(e.text))
            if e.sender == self.nick and e.to != self.nick:
                self._room(e.ts, f"[private to {s(e.to)}] <{s(e.sender)}> {text}")
            else:
                self._room(e.ts, f"[private] <{s(e.sender)}> {text}")
        elif kind is protocol.Joined:
            self.users.add(e.nick)
            self.people.setdefault(protocol.room_key(e.room), set()).add(e.nick)
            if e.nick != self.nick:
                self._room(None, f"-- {s(e.nick)} joined", e.room)
        elif kind is protocol.Left:
            self.people.get(protocol.room_key(e.room), set()).discard(e.nick)
            if e.nick == self.nick:
                return              # our own part: the session says where we are now
            if not any(e.nick in members for members in self.people.values()):
                self.users.discard(e.nick)
            if e.reason in ("kick", "ban"):
                return              # the moderated line said who and why
            reason = f" ({s(e.reason)})" if e.reason and e.reason != "part" else ""
            self._room(None, f"-- {s(e.nick)} left{reason}", e.room)
        elif kind is protocol.RoomList:
            self.info(f"-- {len(e.rooms)} room{'s' * (len(e.rooms) != 1)} (join one with /join NAME):")
            for r in e.rooms:
                here = ", you are in it" if self.in_room(r.room) else ""
                key = ", needs a key" if r.key else ""
                topic = f": {s(r.topic)}" if r.topic else ""
                self.info(f"--   #{s(r.room)} ({r.users} in it{key}{here}){topic}")
        elif kind is protocol.Renamed:
            self.users.discard(e.old)
            self.users.add(e.new)
            for members in self.people.values():
                if e.old in members:
                    members.discard(e.old)
                    members.add(e.new)
            if e.old == self.nick:
                self.nick = e.new
            self._room(None, f"-- {s(e.old)} is now known as {s(e.new)}")
        elif kind is protocol.Notice:
            self._room(None, f"-- server: {s(e.text)}")
        elif kind is protocol.ServerError:
            self.error(f"server: {s(e.message)}")
        elif kind is ev.Connecting:
            if e.attempt == 1:
                self.status(f"connecting to {_where(e.host, e.port)}...")
        elif kind is ev.Connected:
            self.nick = e.nick
            self.users = set(e.users)
            again = "reconnected" if e.resumed else "connected"
            secure = ", encrypted" if e.fingerprint else ""
            self.status(f"{again} to {_where(e.host, e.port)} as {s(e.nick)} ({len(e.users)} online{secure})")
            self.people = {}
            if e.protocol < 2:
                self.people[protocol.LOBBY] = set(e.users)
            elif len(e.rooms) > 1:
                self.status("in " + ", ".join(f"#{s(r)}" for r in e.rooms))
            if e.first_use:
                # Not subject to --quiet: this is the one chance to compare.
                # (Only a client made with trust_first_use gets here.)
                self.error(f"first encrypted connection to {_where(e.host, e.port)}; "
                           "its certificate fingerprint is now remembered:")
                self.error(f"    {s(e.fingerprint)}")
                self.error("compare it with the fingerprint the server printed at start (read it aloud); "
                           "a different certificate will be refused from now on")
        elif kind is ev.Backlog:
            if e.missed:
                self.status(f"{e.missed} older messages could not be replayed")
            if self.history:
                for m in e.messages:
                    self.show(m)
        elif kind is ev.ConnectFailed:
            when = f"; retrying in {e.retry_in:.0f} s" if e.retry_in is not None else ""
            self.error(f"cannot connect: {s(e.message)}{when}")
            if e.kind == "tls_changed" and e.fingerprint:
                self.error(f"the server shows:  {s(e.fingerprint)}")
                self.error(f"expected:          {s(e.pinned)}")
                self.error("only if whoever runs the server confirms the new one, connect with "
                           f'--trust-fingerprint "{s(e.fingerprint)}"')
            elif e.kind == "tls_new" and e.fingerprint:
                self.error(f"    {s(e.fingerprint)}")
                self.error("if it is the one the server printed at start, connect with "
                           f'--trust-fingerprint "{s(e.fingerprint)}"')
        elif kind is ev.Disconnected:
            when = f"; reconnecting in {e.retry_in:.0f} s" if e.retry_in is not None else ""
            self.error(f"disconnected: {s(e.reason)}{when}")
        elif kind is ev.Refused:
            self.error(f"not sent: {s(e.message)}")

    def ask_trust(self, e: ev.ConnectFailed) -> None:
        """A first use with a person at the terminal: the fingerprint, then
        the question (not subject to --quiet; the answer is the next line)."""
        self.error(safe_text(e.message))
        self.error(f"    {safe_text(e.fingerprint)}")
        self.err.write("Trust this certificate and join? [y/N] ")
        self.err.flush()

    def who(self) -> None:
        members = self.people.get(protocol.room_key(self.current))
        names = sorted(self.users if members is None else members, key=str.casefold)
        where = f"in #{safe_text(self.current)}" if members is not None and len(self.people) > 1 else "online"
        self.info(f"-- {len(names)} {where}: " + ", ".join(safe_text(n) for n in names))

    def clear(self) -> None:
        if getattr(self.out, "isatty", lambda: False)():
            self.out.write("\x1b[2J\x1b[H")
            self.out.flush()


def _where(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


class Session:
    """The main loop: input lines -> client calls; events -> the terminal.

    ``make_client(accept_fingerprint)`` makes a network client (not
    started) on ``events`` (``make_client(fingerprint, (host, port))`` when
    the client has several addresses: the one the fingerprint is for); a second one is made when the person trusts a
    certificate met for the first time (``ask``: stdin is a terminal).
    Lines typed before the first welcome wait in :attr:`held` and run once
    the backlog is shown.

    Thread: the caller's (main) thread; it reads ``events``, which both the
    network client and the stdin thread feed.
    """

    def __init__(self, make_client, events: queue.Queue, term: Terminal, wait: float, ask: bool = False,
                 room: str | None = None, room_key: str | None = None):
        self.make_client = make_client
        self.room = room                 # --room: joined before any line is sent
        self.room_key = room_key
        self.joining: str | None = None  # ref of that join, until answered
        self.asked: dict = {}            # ref -> (what, room) of /join and /part
        self.requests: dict = {}         # ref -> (kind, room, detail) of a moderation command
        self.said: dict = {}             # ref -> room of a message, to say why it was refused
        self.client = make_client(None)
        self.clients = [self.client]     # every client made, to close them all at the end
        self.events = events
        self.term = term
        self.files = term.files = TerminalFiles(term, lambda client: Transfers(client, events, _thumbnailer()))
        self.files.use(self.client)
        self.wait = wait
        self.ask = ask
        self.unconfirmed: set = set()   # refs sent and not yet acknowledged or refused
        self.rc = 0
        self.quitting = False            # /quit or the end of input: leave once confirmed
        self.quit_typed = False          # /quit: lines after it are not sent
        self.deadline = 0.0
        self.closing = False
        self.ready = False               # welcomed and the backlog shown, at least once
        self.held: list = []             # lines typed before that
        self.asking: str | None = None   # a first-use fingerprint waiting for y/N
        self.retired = 0                 # replaced clients whose Closed is still to come
        self.done = False                # end the loop now
        self.stopped = False             # the client gave up by itself

    def run(self) -> int:
        self.client.start()
        while not self.done:
            try:
                e = self.events.get(timeout=0.1)
            except queue.Empty:
                e = None
            if e is not None:
                if type(e) is ev.Closed:
                    if self.retired:
                        self.retired -= 1
                        continue
                    break
                self.handle(e)
            if self.quitting and not self.closing:
                if (self.ready or self.stopped) and not self.unconfirmed and not self.files.busy:
                    self._close()
                elif time.monotonic() >= self.deadline:
                    n = len(self.unconfirmed)
                    if n:
                        why = f"{n} message{'s' * (n != 1)} not confirmed by the server"
                    elif self.files.busy and (self.ready or self.stopped):
                        why = "a file transfer had not finished (give it more time with --wait)"
                    else:
                        why = "not connected"
                    self.term.error(f"gave up after {self.wait:g} s: {why}")
                    self.rc = 1
                    self._close()
        if (self.unconfirmed or self.held or self.files.busy or self.files.failed) and self.rc == 0:
            self.rc = 1
        return self.rc

    def close_all(self, timeout: float) -> None:
        """Close every client made (main thread, at the very end)."""
        deadline = time.monotonic() + timeout
        self.files.close(timeout=max(0.0, deadline - time.monotonic()))
        for c in self.clients:
            c.close(timeout=max(0.0, deadline - time.monotonic()))

    def _close(self) -> None:
        self.closing = True
        self.client.close(timeout=0)

    def _quit(self) -> None:
        if not self.quitting:
            self.quitting = True
            self.deadline = time.monotonic() + self.wait

    def handle(self, e) -> None:
        kind = type(e)
        if self.files.handle(e):
            if self.ready:
                self.term.prompt()
            return
        if kind is _Line:
            if self.asking is not None:
                self._answer(e.text)
            elif not self.ready or self.joining is not None:
                self.held.append(e.text)
            elif not self.quit_typed:
                self.command(e.text)
            return
        if kind is _EndOfInput:
            if self.asking is not None:
                self._answer("")
            self._quit()
            return
        if kind is ev.CaughtUp:
            if not self.ready and self.joining is None:
                if self.room and not self.term.in_room(self.room):
                    self.joining = self.client.join(self.room, self.room_key)
                    self.unconfirmed.add(self.joining)
                else:
                    if self.room:
                        self.term.current = self.term.name_of(self.room)
                    self._ready()
            self.term.prompt()
            return
        if kind is ev.RoomState:
            self.term.show(e)
            what = self.asked.pop(e.info.ref, None) if e.info.ref else None
            if e.info.ref is not None and e.info.ref == self.joining:
                self.joining = None
                self.term.current = e.info.room
                if what is not None:
                    topic = self.term.topics.get(protocol.room_key(e.info.room))
                    self.term.info(f"-- now in #{safe_text(e.info.room)} ({len(e.info.users)} in it)"
                                   + (f": {safe_text(topic)}" if topic else ""))
                self._ready()
            self.term.prompt()
            return
        if kind is protocol.Left and e.nick == self.term.nick:
            self.term.show(e)
            self.term.people.pop(protocol.room_key(e.room), None)
            if protocol.room_key(e.room) == protocol.room_key(self.term.current):
                rooms = list(self.term.people)
                self.term.current = self.term.name_of(protocol.LOBBY if protocol.LOBBY in rooms or not rooms
                                                      else rooms[0])
                self.term.info(f"-- left #{safe_text(e.room)}; now in #{safe_text(self.term.current)}")
            self.term.prompt()
            return
        if kind is ev.Acked:
            self.unconfirmed.discard(e.ref)
        elif kind is ev.Refused:
            if e.ref == self.joining:
                self._join_refused(e)
            if e.ref in self.unconfirmed:
                self.unconfirmed.discard(e.ref)
                self.rc = 1
            words = self._refusal_words(e)
            if words:
                self.term.error(words)
                self.term.prompt()
                return
        elif kind is ev.ConnectFailed and e.kind == "tls_new" and e.fingerprint and self.ask \
                and not self.closing:
            self.retired += 1               # this client has stopped; its Closed follows
            self.asking = e.fingerprint
            self.asking_at = (e.host, e.port) if e.host is not None else None
            self.term.ask_trust(e)
            return
        elif kind in (ev.ConnectFailed, ev.Disconnected) and e.retry_in is None:
            self.stopped = True
            if not self.closing:
                self.rc = 1
            self._quit()
        self.term.show(e)
        if self.stopped and self.held and not self.ready:
            n = len(self.held)
            self.term.error(f"not sent: {n} line{'s' * (n != 1)} typed before the connection")
            self.held = []
            self.rc = 1
        if self.ready:
            self.term.prompt()

    def _ready(self) -> None:
        """Welcomed, caught up and in the room joined last (--room, /join):
        run the lines held until now, until one is a /join again."""
        self.ready = True
        while self.held and self.joining is None:
            line = self.held.pop(0)
            if self.quit_typed:     # a /quit among them: the rest is not sent
                self.held = []
                break
            self.command(line)

    def _join_refused(self, e: ev.Refused) -> None:
        """The room the next lines were meant for cannot be joined: they are
        not sent anywhere else. For --room that ends the session."""
        room = self.asked.pop(e.ref, ("join", self.room))[1]
        self.joining = None
        self.term.error(f"cannot join #{safe_text(room)}: {safe_text(e.message)}")
        if self.held:
            n = len(self.held)
            self.term.error(f"not sent: {n} line{'s' * (n != 1)} meant for #{safe_text(room)}")
            self.held = []
            self.rc = 1
        if not self.ready:
            self.stopped = True
            self.rc = 1
            self._quit()
    def _refusal_words(self, e: ev.Refused) -> str | None:
        """A sentence for a refused moderation command or message, or None."""
        s = safe_text
        req = self.requests.pop(e.ref, None)
        if req is not None:
            kind, room, detail = req
            return modwords.request_refusal(kind, detail, e.code, e.message, f"#{s(room)}", s)
        room = self.said.pop(e.ref, None)
        if room is None:
            return None
        words = modwords.speak_refusal(e.code, s(e.message), f"#{s(room)}", e.until, e.retry_after, time.time(),
                                       self.term.modes.get(protocol.room_key(room), Modes()))
        return f"not sent: {words}" if words else None

    def _request(self, kind: str, ref: str, room, detail=None) -> None:
        self.requests[ref] = (kind, room, detail)
        self.unconfirmed.add(ref)

    def _moderate(self, cmd, room: str) -> None:
        """The moderation commands (Tk's are in chatgui.app.moderation)."""
        c, kind, key = self.client, type(cmd), protocol.room_key(room)
        if kind is commands.Mod:
            self._request("mod", c.mod(room, cmd.action, cmd.nick, cmd.reason, cmd.duration), room,
                          (cmd.action, cmd.nick))
        elif kind is commands.Mode and not cmd.changes:
            self.term.info(f"-- modes of #{safe_text(room)}: "
                           f"{modwords.describe_modes(self.term.modes.get(key, Modes()))}")
        elif kind is commands.Mode:
            self._request("mode", c.mode(room, **dict(cmd.changes)), room)
        elif kind in (commands.Delete, commands.Edit):
            msg_id = cmd.msg_id if cmd.msg_id is not None else self.term.last_own.get(key)
            if msg_id is None:
                return self.term.error(f"you have sent nothing in #{safe_text(room)} yet; give the "
                                       "message's number (see --ids)")
            if kind is commands.Delete:
                self._request("delete", c.delete(msg_id, cmd.reason), room, msg_id)
            else:
                self._request("edit", c.edit(msg_id, cmd.text), room, msg_id)
        elif kind is commands.Release:
            waiting = self.term.questions.get(key, [])
            qid = cmd.question_id if cmd.question_id is not None else (waiting[0] if waiting else None)
            if qid is None:
                return self.term.error(f"no question waits in #{safe_text(room)}")
            self._request("release", c.release(qid), room, qid)
        elif kind is commands.Audit:
            self._request("audit", c.audit(room), room)
        elif kind is commands.Forget:
            self._request("forget", c.forget(), room)

    def _answer(self, text: str) -> None:
        """The person's answer to "Trust this certificate and join?"."""
        fingerprint, self.asking = self.asking, None
        if text.strip().lower() in ("y", "yes"):
            self.term.status("trusting that certificate; connecting again...")
            at = getattr(self, "asking_at", None)
            several = len(getattr(self.client, "addresses", ())) > 1
            self.client = self.make_client(fingerprint, at) if several and at else self.make_client(fingerprint)
            self.clients.append(self.client)
            self.files.use(self.client)
            self.client.start()
            return
        self.term.error("not connected: the certificate was not trusted, and nothing was sent")
        self.rc = 1
        self.done = True

    def command(self, line: str) -> None:
        cmd = commands.parse(line)
        kind = type(cmd)
        c = self.client
        room = self.term.current
        if kind is commands.Say:
            ref = c.say(cmd.text, room)
            self.unconfirmed.add(ref)
            self.said[ref] = room
        elif kind is commands.Action:
            ref = c.say(cmd.wire, room)
            self.unconfirmed.add(ref)
            self.said[ref] = room
        elif kind in (commands.Mod, commands.Mode, commands.Delete, commands.Edit, commands.Release,
                      commands.Audit, commands.Forget):
            self._moderate(cmd, room)
        elif kind is commands.Join:
            if self.term.in_room(cmd.room):
                self.term.current = self.term.name_of(cmd.room)
                self.term.info(f"-- now in #{safe_text(self.term.current)}")
            else:
                # The lines after it are for that room: they wait for the answer.
                self.joining = ref = c.join(cmd.room, cmd.key)
                self.asked[ref] = ("join", cmd.room)
                self.unconfirmed.add(ref)
        elif kind is commands.Part:
            self.unconfirmed.add(c.part(cmd.room or room))
        elif kind is commands.Rooms:
            self.unconfirmed.add(c.rooms())
        elif kind is commands.Topic:
            if cmd.text is None:
                topic = self.term.topics.get(protocol.room_key(room))
                self.term.info(f"-- topic of #{safe_text(room)}: {safe_text(topic) if topic else 'none'}")
            else:
                self.unconfirmed.add(c.topic(room, cmd.text))
        elif kind is commands.Direct:
            self.unconfirmed.add(c.dm(cmd.to, cmd.text))
        elif kind is commands.Nick:
            self.unconfirmed.add(c.set_nick(cmd.nick))
        elif kind is commands.Who:
            self.term.who()
        elif kind is commands.Clear:
            self.term.clear()
        elif kind is commands.Help:
            self.term.info(cmd.text)
        elif kind is commands.Quit:
            self.quit_typed = True
            self._quit()
        elif kind is commands.SendFile:
            self.files.send(cmd.path, room)
        elif kind is commands.GetFile:
            self.files.get(cmd.file, cmd.path)
        elif kind is commands.Invalid:
            self.term.error(cmd.message)
        self.term.prompt()


def _read_stdin(stream, events: queue.Queue) -> None:
    """cli-stdin thread: every line onto the queue, then the end of input."""
    try:
        for line in stream:
            events.put(_Line(line.rstrip("\n")))
    except (OSError, ValueError):
        pass
    finally:
        events.put(_EndOfInput())


def _tidy_streams() -> None:
    for stream, errors in ((sys.stdout, "backslashreplace"), (sys.stderr, "backslashreplace"),
                           (sys.stdin, "replace")):
        try:
            stream.reconfigure(errors=errors)
        except (AttributeError, ValueError):
            pass


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        addresses = split_addresses(args.host, args.port)
    except ValueError as e:
        print(f"natter: --host: {e}", file=sys.stderr)
        return 2
    _tidy_streams()
    events: queue.Queue = queue.Queue()

    try:
        identity = identity_mod.load_identity()
    except identity_mod.IdentityError as e:
        print(f"-- {e}", file=sys.stderr)
        identity = None

    def make_client(accept, at=None):
        return ChatClient(addresses, args.port, args.nick, events=events, password=args.password,
                          connect_timeout=args.timeout, tls=args.tls,
                          accept_fingerprint=accept or args.trust_fingerprint, identity=identity,
                          accept_at=at)
    history = args.history if args.history is not None else _isatty(sys.stdout)
    term = Terminal(sys.stdout, sys.stderr, args.nick, history=history, quiet=args.quiet,
                    prompt=_isatty(sys.stdin) and _isatty(sys.stderr), ids=args.ids)
    session = Session(make_client, events, term, wait=args.wait, ask=_isatty(sys.stdin), room=args.room,
                      room_key=args.room_key)
    threading.Thread(target=_read_stdin, args=(sys.stdin, events), name="cli-stdin", daemon=True).start()
    try:
        return session.run()
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        # stdout went away (| head): say nothing more, and let the interpreter
        # not trip over the dead pipe when it flushes at exit.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 1
    finally:
        session.close_all(timeout=1.0)


def _thumbnailer():
    """The sender's thumbnails, with Pillow imported only when a picture is
    sent (on its transfer thread), so the terminal starts as fast as before."""
    def thumb(path, mime):
        from chatgui.app import images
        return images.make_thumb(path, mime) if images.PILLOW else None
    return thumb


def _isatty(stream) -> bool:
    try:
        return bool(stream is not None and stream.isatty())
    except (AttributeError, ValueError, OSError):
        return False


def _stamp(ts) -> str:
    """HH:MM of a server's time, or "--:--" for one no clock can show
    (1e300, infinity: the server's fields are untrusted)."""
    try:
        return timestamp(ts)
    except (OverflowError, ValueError, OSError, TypeError):
        return "--:--"


if __name__ == "__main__":
    sys.exit(main())
