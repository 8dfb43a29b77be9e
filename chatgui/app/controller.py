"""Every UI decision of the chat window, with no Tk in sight.

The :class:`Controller` turns what the network layer reports
(:mod:`chatgui.net.events` and the protocol's ``Message``, ``Direct``,
``Joined``, ``Left``, ``Renamed``, ``Notice``, ``ServerError``) and what
the user does (Enter, Up/Down, Tab, a double-click, a key) into calls on a
small :class:`View` interface. The Tk window implements that interface and
only builds widgets and forwards; a fake implements it in the tests, so
nearly all of the client's behaviour is tested without a display.

What it decides:

- the line kinds (:data:`OWN`, :data:`OTHER`, :data:`SYSTEM`,
  :data:`MENTION`, :data:`PRIVATE`, :data:`ERROR`) and the display text of
  each line, made safe by :mod:`chatgui.app.formatting` so that nothing a peer
  sends can crash the window or look like a system notice;
- what is waiting to be sent (shown greyed until the server acknowledges
  it by ``ref``, then shown once in its place among the messages);
- the status line (connected to host:port as nick / reconnecting in N s /
  offline), the title with the unread count, and the bell;
- the conversations: rooms and private ones, each with its lines, people,
  topic, draft, unread count and "new messages" marker, switching between
  them, loading older messages, read markers, the room commands
  (:mod:`chatgui.app.conversations`, mixed in here; the state of each is a
  :class:`chatgui.app.rooms.RoomModel`);
- the people of the conversation on screen, the input history (Up/Down)
  and nick completion;
- the connect form's checks and the "Host a room on this computer" room;
- the words of what the window shows: where the network layer's sentences
  name a command-line flag, the window names the form's control instead
  (:func:`for_window`);
- font size and theme, saved to the settings file.

Thread: every method runs on the Tk thread (the window's pump calls
:meth:`handle` with each event it takes off :attr:`events`), except
:meth:`shutdown`, which the program calls after the window has gone.
Network clients are made by ``client_factory`` and never block the caller.
A hosted room is started and stopped on short-lived threads of
:mod:`chatgui.app.hosting`, which post the outcome on :attr:`events`; the chat
starts only once the room is up.
"""
from __future__ import annotations

import logging
import math
import queue
import re
import threading
import time
import webbrowser
from dataclasses import replace

from server import protocol as p

from chatgui.app import commands, formatting, hosting, lan
from chatgui.app import settings as settings_mod
from chatgui.app.conversations import Conversations, lower_first as _lower_first, stamp as _stamp
from chatgui.app.filecards import Files
from chatgui.app.hosting import HostedRoom
from chatgui.app.moderation import Moderation
from chatgui.app.inputline import InputHistory, NickCompleter
# The view contract; imported here too, so ``from chatgui.app.controller import Line`` works.
from chatgui.app.view import (APP_NAME, ERROR, KINDS, MENTION, OFFLINE, ONLINE, OTHER, OWN, PRIVATE,  # noqa: F401
                              SYSTEM, WAITING, HOST_LABEL, LAN_LABEL, TLS_LABEL, ConnectValues, Line, View)
from chatgui.net import events as ev
from chatgui.net import identity as identity_mod
from chatgui.netcheck import join_addresses, split_addresses

log = logging.getLogger("natter.client")

INPUT_HISTORY = 200     # lines Up/Down can recall
LOAD = object()         # Controller(identity=LOAD): read (or make) this computer's identity file


class Controller(Conversations, Moderation, Files):
    def __init__(self, view: View, settings: settings_mod.Settings | None = None, *,
                 client_factory=None, host_factory=HostedRoom, clock=time.monotonic,
                 open_url=None, save_settings=settings_mod.save, astral_ok: bool = False,
                 emoji_ok: bool = False, identity=LOAD, wall=time.time, transfers_factory=None,
                 grab_clipboard=None, open_folder=None):
        """``identity``: this computer's secret (:mod:`chatgui.net.identity`),
        None for none; by default read from (or made in) the config
        directory. ``wall``: the wall clock, for mute and ban times.
        ``transfers_factory(client, events, thumbnailer)``, ``grab_clipboard(path)``
        and ``open_folder(folder)``: see :mod:`chatgui.app.filecards` (tests pass fakes)."""
        self.view = view
        self.settings = settings or settings_mod.Settings()
        self.client_factory = client_factory or _default_client_factory
        self.host_factory = host_factory
        self.clock = clock
        self.wall = wall
        self.open_url = open_url or open_in_browser
        self.save_settings = save_settings
        self.astral_ok = astral_ok      # the Tk shows characters outside the BMP (8.7+)
        self.emoji_ok = emoji_ok        # the conversation draws emoji as pictures
        self.events: queue.Queue = queue.Queue()
        self.client = None
        self._retired: list = []        # clients closed while the window lives
        self.hosted: HostedRoom | None = None      # the room we host, once it is up
        self._room_starting = None          # the room a host-room-start thread is starting
        self._room_join: dict | None = None  # how to join it once it is up
        self._room_jobs: list = []          # host-room-start/-stop threads (joined in shutdown)
        self.values = ConnectValues()
        self._params: dict | None = None    # how the current client was made (for Reconnect)
        self._changed: str | None = None    # a changed certificate's fingerprint, offered to trust
        self._changed_at: tuple | None = None   # the address it is for, when several were given
        self.screen = ""                    # what the view shows: "connect" or "chat"
        self.fingerprint: str | None = None  # of the server's certificate, when encrypted
        self.tls = False
        self.me = ""                    # our nick as the server spelled it
        self.address = ""               # "host:port" we connect to
        self.connected = False
        self.ever_connected = False     # this client was welcomed once
        self.in_chat = False            # the conversation is on screen
        self.closing = False
        self.focused = True
        self.pending: dict[str, tuple] = {}     # ref -> (kind, payload, line, room id)
        self._init_conversations()
        self._identity_problem = ""
        if identity is LOAD:
            try:
                identity = identity_mod.load_identity()
            except identity_mod.IdentityError as e:
                log.warning("%s", e)
                identity, self._identity_problem = None, str(e)
        self._init_moderation(identity)
        self._init_files(transfers_factory, grab_clipboard, open_folder)
        self._drops = 0                         # connections lost so far
        self._online = 0                        # people online at the welcome
        self._greet = False                     # the welcome line is due after the backlog
        self._retry_at: float | None = None
        self._status = ("", "", None)
        self._last_failure = ""
        self._last_notice = ""                  # the server's last notice (often why it hung up)
        self.history = InputHistory(INPUT_HISTORY)
        self.completer = NickCompleter()

    def safe(self, text, emoji: bool = True) -> str:
        """Peer text as the window may show it (see :func:`formatting.tk_safe`):
        in the conversation, emoji stay when the view draws them; labels,
        the title and the people list (``emoji=False``) get stand-ins."""
        return formatting.tk_safe(text if type(text) is str else str(text), self.astral_ok,
                                  emoji and self.emoji_ok)

    # ------------------------------------------------------------------
    # Start and connect

    def begin(self, values: ConnectValues | None = None) -> None:
        """Open with the connect form, or connect at once when ``values``
        came from the command line."""
        self.view.set_theme(self.settings.theme)
        self.view.set_font_size(self.settings.font_size)
        if self.identity_fingerprint:
            self._tell("set_identity", self.identity_fingerprint)
        self._set_title()
        if values is not None:
            self.connect(values)
        else:
            s = self.settings
            self.values = ConnectValues(s.host, str(s.port), s.nick, "", s.host_room, s.host_lan, s.tls)
            self._show_form(None, focus="nick" if not s.nick else None)

    def connect(self, values: ConnectValues) -> None:
        """The connect form's button: check, maybe host, start the client."""
        self.values = values
        error, field, host, port, nick = self._check_form(values)
        if error:
            self._show_form(error, focus=field)
            return
        if self._room_starting is not None:
            return                      # the form is busy until that room is up or failed
        password = values.password or None
        room = None
        if values.host_room:
            # Saved as the address: where this room is joined, so the next
            # start never shows an address that failed before hosting.
            host = values.host = hosting.CONNECT_HOST
        s = self.settings
        s.host, s.nick, s.port, s.host_room, s.host_lan, s.tls = (host, nick, port, values.host_room,
                                                                  values.host_lan, values.tls)
        if not values.host_room:
            lan.remember_recent(s, host, port)
        self.save_settings(s)
        if values.host_room:
            if self.hosted is not None and self.hosted.matches(port, password, values.host_lan, values.tls):
                self._join_hosted(nick, password, values.tls)
                return
            # A new room (or new choices): started off the Tk thread; the
            # chat starts when RoomStarted comes back (on_RoomStarted).
            replacing, self.hosted = self.hosted, None
            self._retire_client()
            room = self.host_factory(port, password, values.host_lan, values.tls, name=lan.hosted_name(nick),
                                     admin_fingerprint=self.identity_fingerprint)
            self._room_starting = room
            self._room_join = dict(nick=nick, password=password, tls=values.tls)
            stopping = self._live_jobs()
            self._room_jobs.append(hosting.start_room(room, self._post, replacing=replacing, after=stopping))
            self._show_form(None, busy=f"Starting the room on port {port}…")
            return
        if self.hosted is not None:
            self._stop_hosting()
        self._start_client(host, port, nick, password, values.tls)
        self._show_form(None, busy=f"Connecting to {_addr(host, port)}…")

    def _join_hosted(self, nick: str, password: str | None, tls: bool) -> None:
        room = self.hosted
        # Our own room: its certificate is known here, no need to pin on trust.
        self._start_client(room.connect_host, room.port, nick, password, tls, room.fingerprint)
        self._show_form(None, busy=f"Connecting to {_addr(room.connect_host, room.port)}…")

    def history_note(self, port: str) -> str:
        """The form's line under the hosting choices: which history a room
        hosted on this port keeps (each port is a room of its own)."""
        try:
            number = int(port.strip())
        except ValueError:
            number = 0
        if not 0 < number < 65536:
            return "Each port is a room with a history of its own."
        return f"History of the room on port {number}: {hosting.shown_path(hosting.room_history_path(number))}"

    def _post(self, event) -> None:
        """For the hosting threads: put an event on the current queue (only a
        ``put``: nothing of the window is touched from there). No client is
        started while a room starts, so RoomStarted and RoomFailed always
        reach the queue the pump reads; a RoomStopped may land in a queue
        already given up, which costs nothing (it only prunes finished jobs)."""
        self.events.put(event)

    def _live_jobs(self) -> list:
        self._room_jobs = [t for t in self._room_jobs if t.is_alive()]
        return list(self._room_jobs)

    def trust_certificate(self) -> None:
        """The form's "trust the new certificate" button, after the user
        compared the fingerprint with the one the server shows."""
        if self._changed is None or self._params is None:
            return
        fingerprint, self._changed = self._changed, None
        params = dict(self._params, accept=fingerprint, tls=True, accept_at=self._changed_at)
        self._start_client(**params)
        self._show_form(None, busy=f"Connecting to {self.address}…")

    def _show_form(self, error: str | None, *, busy: str | None = None, focus: str | None = None,
                   trust: str | None = None, trust_label: str | None = None) -> None:
        self.screen = "connect"
        self.view.show_connect(self.values, error, busy, focus, trust, trust_label)

    def _check_form(self, values: ConnectValues):
        host = values.host.strip()
        nick = values.nick.strip()
        if not nick:
            return "Type a nickname.", "nick", host, 0, nick
        try:
            nick = p.check_nick(nick)
        except p.ProtocolError as e:
            return f"Choose another nickname: {_lower_first(e.message)}.", "nick", host, 0, nick
        if not host and not values.host_room:
            return ("Type the address of the computer that hosts the room (like 192.168.1.20), "
                    f"or tick \"{HOST_LABEL}\".", "host", host, 0, nick)
        try:
            port = int(values.port.strip())
        except ValueError:
            return "The port must be a number, like 30000.", "port", host, 0, nick
        if not 0 < port < 65536:
            return "The port must be a number from 1 to 65535.", "port", host, port, nick
        if "," in host and not values.host_room:
            try:
                split_addresses(host, port)
            except ValueError as e:
                return str(e), "host", host, port, nick
        return None, None, host, port, nick

    def _start_client(self, host: str, port: int, nick: str, password: str | None, tls: bool = False,
                      accept: str | None = None, accept_at: tuple | None = None) -> None:
        """``host`` may be a comma-separated list of addresses (checked by
        :meth:`_check_form`; the client tries them in turn); ``accept_at``
        is the one of them ``accept`` is for."""
        self._retire_client()
        # A fresh queue per client: a closing client's last events go to a
        # queue nobody reads, so they cannot be mistaken for the new one's.
        self.events = queue.Queue()
        self._params = dict(host=host, port=port, nick=nick, password=password, tls=tls, accept=accept,
                            accept_at=accept_at)
        self.tls = tls
        self.address = join_addresses(split_addresses(host, port)) if "," in host else _addr(host, port)
        self.me = nick
        self.connected = False
        self.ever_connected = False
        self._retry_at = None
        self._last_failure = ""
        self._rooms_new_client()
        kw = {"tls": True, "accept_fingerprint": accept} if tls or accept else {}
        if accept_at is not None:
            kw["accept_at"] = accept_at
        if self.identity is not None:
            kw["identity"] = self.identity
        self.client = self.client_factory(host, port, nick, events=self.events, password=password, **kw)
        self._files_new_client()
        self.client.start()
        self._set_status(f"connecting to {self.address}…", WAITING)

    def _retire_client(self) -> None:
        if self.client is not None:
            self.client.close(timeout=0)      # never blocks; joined in shutdown()
            self._retired.append(self.client)
            self.client = None

    def _stop_hosting(self) -> None:
        """Stop our room off the Tk thread (it waits for lingering clients)."""
        if self.hosted is not None:
            self._retire_client()
            self._room_jobs.append(hosting.stop_room(self.hosted, self._post))
            self.hosted = None

    def on_RoomStarted(self, e: hosting.RoomStarted) -> None:
        if e.room is not self._room_starting or self.closing:
            # Nobody waits for this room any more.
            self._room_jobs.append(hosting.stop_room(e.room))
            return
        self._room_starting = None
        self.hosted = e.room
        self._join_hosted(**self._room_join)

    def on_RoomFailed(self, e: hosting.RoomFailed) -> None:
        if e.room is not self._room_starting:
            return
        self._room_starting = None
        if not self.closing:
            self._show_form(for_window(e.message), focus="port")

    def on_RoomStopped(self, e: hosting.RoomStopped) -> None:
        self._live_jobs()

    # ------------------------------------------------------------------
    # Events from the network (the pump calls this, Tk thread)

    def handle(self, event) -> None:
        if self._files_event(event):
            return
        # By class name, or a base class's: a MarkedMessage is a Message.
        method = next((m for m in (getattr(self, "on_" + cls.__name__, None) for cls in type(event).__mro__)
                       if m is not None), None)
        if method is None:
            log.debug("ignored event %r", event)
            return
        method(event)

    def on_Connecting(self, e: ev.Connecting) -> None:
        self._retry_at = None
        word = "reconnecting" if self.ever_connected or self.in_chat else "connecting"
        self._set_status(f"{word} to {self.address}…", WAITING)

    def on_Connected(self, e: ev.Connected) -> None:
        self.connected = self.ever_connected = True
        self._retry_at = None
        self._last_failure = ""
        self.me = e.nick
        self.admin = e.admin
        self.address = _addr(e.host, e.port)
        self._online = len(e.users)
        if not self.in_chat:
            self.in_chat = True
            self._greet = True          # after the backlog, so it reads in order
            if self._identity_problem:
                self._error(self._identity_problem)
        elif not e.resumed:
            self._system(f"Connected again as {self.safe(self.me)}.")
        else:
            self._system("Reconnected.")
        if self.screen != "chat":
            self.screen = "chat"
            self.view.show_chat()
        self._rooms_connected(e)
        self.fingerprint = e.fingerprint
        if e.fingerprint and e.first_use and self.hosted is None:
            self._system(f"First visit to {self.address}: its certificate fingerprint is "
                         f"{self.safe(e.fingerprint)}. Compare it with the one the server shows "
                         "(read it aloud); from now on this computer checks it on every connection.")
        self._push_users()
        self._set_status(self._online_text(), ONLINE)
        self._set_title()

    def _online_text(self) -> str:
        where = f"connected to {self.address} as {self.me}"
        return where + " · encrypted" if self.fingerprint else where

    def on_CaughtUp(self, e: ev.CaughtUp) -> None:
        self._rooms_caught_up()
        if self._greet:
            self._greet = False
            if self.hosted is not None:
                self._system(self.hosted.describe())
            others = self._online - 1
            self._system(f"You joined as {self.safe(self.me)}. "
                         + ("Nobody else is here yet." if others < 1 else
                            f"{others} other{'s are' if others != 1 else ' is'} online.")
                         + " Type /help for the commands.")

    def on_Disconnected(self, e: ev.Disconnected) -> None:
        self.connected = False
        self._drops += 1
        if self.closing:
            return
        self._push_users()
        reason = self.safe(e.reason).rstrip(".")
        if not reason or e.reason == self._last_notice:     # the notice already said why
            self._system("Disconnected.")
        else:
            self._system(f"Disconnected: {_lower_first(reason)}.")
        self._waiting(e.retry_in)

    def on_ConnectFailed(self, e: ev.ConnectFailed) -> None:
        self.connected = False
        if self.closing:
            return
        if e.kind in ("tls_changed", "tls_new") and e.fingerprint:
            # A security stop, even in the middle of a conversation: the form
            # shows the warning (or, on a first visit, the fingerprint to
            # compare) and offers to trust the certificate once the user has
            # compared it. Nothing was sent. The conversation stays, out of sight.
            self._retire_client()
            self._changed = e.fingerprint
            # With several addresses, the fingerprint is that node's.
            several = "," in self._params["host"] if self._params else False
            self._changed_at = (e.host, e.port) if several and e.host is not None else None
            self._set_status("offline", OFFLINE)
            label = "I compared it: trust and join" if e.kind == "tls_new" else None
            self._show_form(self.safe(e.message, False), trust=self.safe(e.fingerprint, False),
                            trust_label=label)
            return
        if not self.in_chat and e.retry_in is None:
            # The first try failed and the client gave up: back to the form,
            # with the reason in words and the button to try again.
            self._retire_client()
            self._set_status("offline", OFFLINE)
            self._show_form(for_window(self.safe(e.message, False)), focus=_FIELD_FOR_FAILURE.get(e.kind))
            lan.offer_doctor(self.view, self._params, e.kind)
            return
        if e.retry_in is None:
            # The client gave up on this room (a wrong password, say): the
            # whole sentence, as an error; Reconnect starts over.
            self._error(for_window(e.message))
        elif e.kind != self._last_failure:
            # Retrying: a short line per kind of failure, not per attempt.
            self._last_failure = e.kind
            self._system(f"Not back yet: {_lower_first(self.safe(for_window(_first_sentence(e.message))))}")
        self._waiting(e.retry_in)

    def on_Closed(self, e: ev.Closed) -> None:
        self.connected = False
        self._retry_at = None
        if not self.closing:
            self._set_status("offline", OFFLINE)
            self._push_users()

    def on_Acked(self, e: ev.Acked) -> None:
        if self._room_request_answered(e.ref):
            return
        item = self.pending.pop(e.ref, None)
        if item is None:
            return
        kind, payload, line, room = item
        self.view.remove_pending(e.ref)
        model = self.rooms.get(room)
        if kind in ("say", "dm") and e.id is not None and model is not None \
                and model.add(e.id, None, True, False):
            # The network client puts our copy of the message before the
            # Acked, so this happens only if that copy was lost: show the
            # line we kept rather than nothing.
            self.view.append(replace(line, pending=False, msg_id=e.id), room)

    def on_Refused(self, e: ev.Refused) -> None:
        if self._mod_refused(e) or self._room_request_refused(e):
            return
        item = self.pending.pop(e.ref, None)
        if item is None:
            self._error(e.message)
            return
        kind, payload, _line, room = item
        self.view.remove_pending(e.ref)
        model = self.rooms.get(room)
        words = None if kind == "nick" else self._speak_refused_words(
            e, model, kind, model.name if model is not None and model.private else None)
        if kind == "nick":
            self._error(e.message)
        elif words:
            self._error(f"{words} Not sent: {self._quote(payload)}", room)
        elif e.code == p.NOT_IN_ROOM and self.rooms.get(room) is not None:
            label = self.safe(self.rooms.get(room).label)
            self._error(f"Not sent: you are not in {label}; /join {label.lstrip('#')} to talk there "
                        f"({self._quote(payload)})", room)
        else:
            self._error(f"Not sent: {_lower_first(self.safe(e.message))} ({self._quote(payload)})", room)

    def on_Renamed(self, e: p.Renamed) -> None:
        ours = p.nick_key(e.old) == p.nick_key(self.me)
        if ours:
            self.me = e.new
        touched = self._rooms_renamed(e.old, e.new)
        if ours:
            self.settings.nick = e.new
            self.save_settings(self.settings)
            self._system(f"You are now known as {self.safe(e.new)}.")
            self._set_status(self._online_text(), ONLINE)
            self._set_title()
            self._push_users()
            return
        for room in [m.id for m in touched] or [None]:
            self._system(f"{self.safe(e.old)} is now known as {self.safe(e.new)}.", room)

    def on_Notice(self, n: p.Notice) -> None:
        self._last_notice = n.text
        self._system(f"Server: {self.safe(n.text)}")

    def on_ServerError(self, e: p.ServerError) -> None:
        if e.ref is not None and e.ref in self.pending:
            self.on_Refused(ev.Refused(e.ref, e.code, e.message))
        elif e.code == p.HISTORY_GONE:      # a resume older than the server keeps: say so, not a silent gap
            self._error("Some of what you missed is no longer kept on the server: the oldest messages since "
                        "you were last here cannot be shown. What follows is everything it still has.")
        else:
            self._error(self.safe(e.message) or f"The server reported {self.safe(e.code)}.")

    # ------------------------------------------------------------------
    # What the user does (the view forwards, Tk thread)

    def submit(self, text: str) -> None:
        """Enter in the input box: a message, or a command."""
        if not text.strip():
            return
        self.history.add(text)
        self.completer.reset()
        cmd = commands.parse(text)
        handler = getattr(self, "_cmd_" + type(cmd).__name__, None)
        if handler is None:
            log.error("no handler for the command %r", cmd)
            return
        # After /quit the window is gone: nothing of it may be touched.
        if handler(cmd) is not False and not self.closing:
            self.view.set_input("")

    def recall(self, step: int, current: str) -> None:
        """Up (-1) and Down (+1): walk through what was sent; Down past
        the newest gives back what was being typed."""
        text = self.history.step(step, current)
        if text is not None:
            self.view.set_input(text)

    def complete(self, text: str, cursor: int) -> None:
        """Tab: complete the nick before the cursor (not our own); Tab
        again cycles through the others that fit."""
        me = p.nick_key(self.me)
        result = self.completer.complete(text, cursor, [n for n in self.users.values() if p.nick_key(n) != me])
        if result is not None:
            self.view.set_input(*result)

    def user_activated(self, nick: str) -> None:
        """A double-click on a name: start a private message."""
        self.view.set_input(f"/msg {nick} ")

    def link_clicked(self, text: str) -> None:
        """A click on a link: open it in the browser (http and https only)."""
        urls = formatting.find_urls(text)
        if not urls:
            return
        url = urls[0][2]
        self.open_url(url)

    def focus_changed(self, focused: bool) -> None:
        self.focused = focused
        current = self.rooms.current
        if focused and current is not None and (current.unread or current.mention):
            current.seen()              # it is on screen: read (the window says when to tell the server)
            self._push_list()
            self._set_title()

    def zoom(self, step: int) -> None:
        """Ctrl+plus (+1), Ctrl+minus (-1), Ctrl+0 (0: back to the default)."""
        s = self.settings
        size = settings_mod.Settings().font_size if step == 0 else s.font_size + step
        size = min(settings_mod.MAX_FONT, max(settings_mod.MIN_FONT, size))
        if size != s.font_size:
            s.font_size = size
            self.view.set_font_size(size)
            self.save_settings(s)

    def toggle_theme(self) -> None:
        s = self.settings
        s.theme = "dark" if s.theme == "light" else "light"
        self.view.set_theme(s.theme)
        self.save_settings(s)

    def retry(self) -> None:
        """The status line's button: retry now while waiting to reconnect,
        or, once the client has given up, connect again as before."""
        if self.client is not None and not self.connected and self._retry_at is not None:
            self.client.retry_now()
        elif self.client is None or self._status[1] == OFFLINE:
            if self._params is not None:
                self._start_client(**dict(self._params, nick=self.me or self._params["nick"]))

    def tick(self) -> None:
        """Called often by the window (each pump tick): the countdown."""
        if self._retry_at is not None:
            left = max(0, math.ceil(self._retry_at - self.clock()))
            self._set_status(f"reconnecting in {left} s", WAITING)

    def close(self, geometry: str | None = None) -> None:
        """The window is closing: remember its size, disconnect (never blocks)."""
        if self.closing:
            return
        self.closing = True
        if geometry:
            self.settings.geometry = geometry
            self.save_settings(self.settings)
        self._retire_client()

    def shutdown(self, timeout: float = 5.0) -> bool:
        """After the window has gone (main thread): wait for the network
        threads to end, then stop the hosted room. Blocks at most about
        ``timeout`` seconds plus the room's own shutdown. True when every
        client thread ended."""
        self.close()
        deadline = time.monotonic() + timeout
        ended = True
        for client in self._retired:
            ended = client.close(timeout=max(0.0, deadline - time.monotonic())) and ended
        self._retired.clear()
        if not ended:
            log.warning("the network client's threads did not end within %g s", timeout)
        for job in self._room_jobs:         # a room still starting or stopping
            job.join(max(0.0, deadline - time.monotonic()))
            if job.is_alive():
                log.warning("the %s thread did not end within %g s", job.name, timeout)
        self._room_jobs.clear()
        for room in (self._room_starting, self.hosted):
            if room is not None:
                room.stop()
        self._room_starting = self.hosted = None
        self._files_shutdown(deadline)
        return ended

    # ------------------------------------------------------------------
    # Commands (chatgui.app.commands parses; these act)

    def _cmd_Say(self, c: commands.Say) -> None:
        self._say(c.text, c.text, action=False)

    def _cmd_Action(self, c: commands.Action) -> None:
        self._say(c.wire, c.text, action=True)

    def _cmd_Direct(self, c: commands.Direct) -> None:
        if self.client is None:
            return self._error("You are not connected.")
        try:
            model = self._private_model(p.check_nick(c.to))
        except p.ProtocolError:
            model = self.rooms.current      # the client refuses it, with the reason, there
        if model is not None and model.id != self.rooms.active:
            self._activate(model)
        self._send("dm", (c.to, c.text), c.text, action=False, model=model)

    def _say(self, wire: str, text: str, action: bool) -> None:
        """Plain text and /me: to the room on screen, or to the person of a
        private conversation."""
        model = self.rooms.current
        if model is not None and model.private:
            return self._send("dm", (model.name, wire), text, action=action, model=model)
        if model is not None and not model.joined:
            return self._error(f"You are not in {self.safe(model.label)} any more: /join "
                               f"{self.safe(model.name)} to talk there, or /rooms.")
        self._send("say", wire, text, action=action, model=model)

    def _cmd_Nick(self, c: commands.Nick) -> None:
        if self.client is None:
            return self._error("You are not connected.")
        ref = self.client.set_nick(c.nick)
        self.pending[ref] = ("nick", c.nick, None, None)

    def _cmd_Who(self, c: commands.Who) -> None:
        names = sorted(self.users.values(), key=str.casefold)
        model = self.rooms.current
        where = f"In {self.safe(model.label)}" if self.rooms_ok and model is not None else "Online"
        self._system(f"{where} ({len(names)}): " + ", ".join(self.safe(n) for n in names))

    def _cmd_Clear(self, c: commands.Clear) -> None:
        self.view.clear(self.rooms.active)

    def _cmd_Help(self, c: commands.Help) -> None:
        # As a table: the window's font is proportional, so spaces cannot line it up.
        self.view.append(Line(SYSTEM, _stamp(time.time()), "", c.table or c.text, table=bool(c.table)),
                         self.rooms.active)

    def _cmd_Quit(self, c: commands.Quit) -> None:
        self.view.quit()

    def _cmd_Empty(self, c: commands.Empty) -> None:
        pass

    def _cmd_Invalid(self, c: commands.Invalid) -> bool:
        self._error(c.message)
        return False        # keep the input so it can be fixed

    def _send(self, kind: str, payload, text: str, action: bool, model) -> None:
        if self.client is None:
            return self._error("You are not connected.")
        room = model.id if model is not None else None
        if kind == "say":
            ref = self.client.say(payload, model.name if model is not None else p.LOBBY)
            line = self._line(OWN, time.time(), self.safe(self.me), text, action=action, pending=True,
                              who_key=p.nick_key(self.me))
        else:
            to, body = payload
            ref = self.client.dm(to, body)
            line = self._line(PRIVATE, time.time(), f"you → {self.safe(to)}", text, action=action,
                              pending=True, who_key=p.nick_key(to))
        self.pending[ref] = (kind, text, line, room)
        self.view.add_pending(ref, line, room)

    # ------------------------------------------------------------------
    # Helpers

    def _line(self, kind: str, ts: float, who: str, text: str, *, who_key: str, action: bool = False,
              pending: bool = False, msg_id: int | None = None) -> Line:
        """``who`` is already safe; ``text`` is made safe here."""
        body = self.safe(text)
        return Line(kind=kind, stamp=_stamp(ts), who=who, text=body, links=tuple(formatting.find_urls(body)),
                    who_key=who_key, action=action, pending=pending, msg_id=msg_id)

    def _quote(self, text: str, limit: int = 60) -> str:
        text = self.safe(text).replace("\n", " ")
        return f"“{text[:limit]}…”" if len(text) > limit else f"“{text}”"

    def _resolve_pending(self, ref: str | None) -> bool:
        """Our own message came back: its waiting line goes."""
        if ref is None or ref not in self.pending:
            return False
        del self.pending[ref]
        self.view.remove_pending(ref)
        return True

    def _waiting(self, retry_in: float | None) -> None:
        if retry_in is None:
            self._retry_at = None
            self._set_status("offline", OFFLINE)
        else:
            self._retry_at = self.clock() + retry_in
            self.tick()

    def _set_status(self, text: str, state: str) -> None:
        text = self.safe(text, False)
        if state == WAITING and self._retry_at is not None:
            action = "Retry now"
        elif state == OFFLINE and self.in_chat and not self.closing:
            action = "Reconnect"
        else:
            action = None
        if (text, state, action) != self._status:
            self._status = (text, state, action)
            self.view.set_status(text, state, action)

    def _set_title(self) -> None:
        title = APP_NAME
        if self.me and self.address and self.in_chat:
            title = f"{self.safe(self.me, False)} @ {self.address} — {APP_NAME}"
        if self.unread:
            title = f"({self.unread}) {title}"
        self.view.set_title(title)

# Which field of the form to put the cursor in after a failed connect.
_FIELD_FOR_FAILURE = {"refused": "host", "timeout": "host", "unreachable": "host", "dns": "host",
                      "nick_taken": "nick", "bad_nick": "nick", "auth_failed": "password",
                      "nick_reserved": "nick"}


def open_in_browser(url: str) -> None:
    """Open a link without blocking the caller: ``webbrowser`` waits for the
    browser to exit when $BROWSER names one, so it runs on a short-lived
    ``open-link`` thread, which touches nothing but ``webbrowser``."""
    def run():
        try:
            if not webbrowser.open(url):
                log.warning("no browser opened %s", url)
        except Exception:
            log.exception("opening %s failed", url)
    threading.Thread(target=run, name="open-link", daemon=True).start()


def _default_client_factory(host, port, nick, *, events, password=None, **kw):
    """``kw``: ``tls=True`` and ``accept_fingerprint`` when encrypting, ``identity``."""
    from chatgui.net.client import ChatClient
    return ChatClient(host, port, nick, events=events, password=password, **kw)


# The network layer's sentences (chatgui.net.failures, chatgui.net.client, server.tls)
# are shared with the terminal, so they name command-line flags; the window
# names its own controls instead. Each pair: a phrase there -> the window's.
_WINDOW_WORDS = [
    (re.compile(r"it may listen on localhost only: start it with --host 0\.0\.0\.0\."),
     f"it may be open to that computer only: whoever hosts it can tick \"{LAN_LABEL}\"."),
    (re.compile(r"turn on TLS \(tick the TLS box, or add --tls in the terminal\)"),
     f"tick \"{TLS_LABEL}\""),
    (re.compile(r"Turn TLS off \(untick the TLS box, or leave out --tls\)"), f"Untick \"{TLS_LABEL}\""),
    (re.compile(r"(?i)is that a Natter server started with --tls\?"),
     f"is that an encrypted Natter room? If it is not, untick \"{TLS_LABEL}\"."),
    (re.compile(r", or pass --cert and --key"), ""),
]


def for_window(text: str) -> str:
    """A sentence of the network layer as the window says it: the form's
    controls by their labels instead of command-line flags."""
    for pattern, words in _WINDOW_WORDS:
        text = pattern.sub(lambda m: _same_case(m.group(), words), text)
    return text


def _same_case(found: str, words: str) -> str:
    """Keep the case of the first letter of the phrase replaced."""
    if found[:1].islower() and words[:1].isupper():
        return words[:1].lower() + words[1:]
    if found[:1].isupper() and words[:1].islower():
        return words[:1].upper() + words[1:]
    return words


def _first_sentence(text: str) -> str:
    end = text.find(". ")
    return text if end < 0 else text[:end + 1]


def _addr(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"

