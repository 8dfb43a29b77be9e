"""The conversations part of the controller: rooms and private
conversations, what each one shows, switching between them, unread counts
and the "new messages" marker, read markers, loading older messages, and
the room commands (``/join``, ``/part``, ``/topic``, ``/rooms``).

:class:`Conversations` is mixed into :class:`chatgui.app.controller.Controller`
(it uses the controller's ``view``, ``client``, ``settings``, ``me``,
``connected``, ``focused`` and line helpers); the state of each
conversation is a :class:`chatgui.app.rooms.RoomModel`.

Routing: a room's messages, joins, leaves and topic changes go to its room
(``#`` + room key); private messages to the ``@`` + nick key conversation
with the other person, made on the first message either way and listed
after the rooms; connection notices, command output and errors to the
conversation on screen. A server without rooms (protocol 1) has only the
lobby: the same code runs with one room and no history requests.

Paging: the view asks for older pages at its top (``load_older``); when
it drops its newest lines to keep its cap (``dropped_newest``), the
conversation is not at its live end (``RoomModel.live`` False): live
messages are counted, not drawn, and the view asks for newer pages at the
bottom of what it holds (``load_newer``) until a page says there is nothing
newer; ``to_live`` (the "new messages" button, our own message coming
back) starts over from the newest page.

Remembered per server (``Settings.rooms``, ``host:port``): the rooms we
are in and the private conversations, so a restarted window lists them
again, re-joins the rooms the server did not restore, and loads the
private conversations' newest messages.

Thread: the Tk thread, like the controller.
"""
from __future__ import annotations

import time
from dataclasses import replace

from server import protocol as p

from chatgui.app import commands, formatting
from chatgui.app.moderation_text import speak_refusal
from chatgui.app.rooms import Rooms, RoomModel, Shown
from chatgui.app.view import ERROR, MENTION, OTHER, OWN, PRIVATE, SYSTEM, Line, Modes, RoomChoice
from chatgui.net import events as ev
from chatgui.net import moderation as mod
from chatgui.net.inbound import NO_ROOMS
from chatgui.net.pins import server_key

HISTORY_PAGE = 50        # messages per "load older" request
_SHOWN = (p.Message, p.Direct)
# Stored moderation events a catch-up may hold (handled by chatgui.app.moderation).
_MOD_EVENTS = (mod.Moderated, mod.ModeChanged, mod.Deleted, mod.Edited)


class Conversations:
    def _init_conversations(self) -> None:
        self.rooms = Rooms()
        self.rooms_ok = False           # the server has rooms (welcome protocol 2)
        self._catching_up = False       # between Connected and CaughtUp
        self._loud_in_catchup = False   # a mention or private message came in the catch-up
        self._asked: dict = {}          # ref -> (kind, room id or name, detail): our room requests
        self._list_shown = None         # the last set_rooms arguments
        self._server = ""               # Settings.rooms key of the server

    # ------------------------------------------------------------------
    # What the window calls (Tk thread)

    def switch_room(self, room_id: str | None, draft: str = "") -> None:
        """A click in the room list, Ctrl+PgUp/PgDn, Alt+1..9: show that
        conversation; ``draft`` (the input box's text) is kept for when the
        user comes back, and the new one's draft goes in the box."""
        model = self.rooms.get(room_id)
        if model is None:
            return
        if model.id == self.rooms.active:
            model.draft = draft
            return
        self._activate(model, draft)

    def next_room(self, step: int) -> str | None:
        """The id of the conversation ``step`` rows after (+1) or before (-1)
        the one on screen, wrapping; the window passes it to switch_room."""
        return self.rooms.step(step)

    def room_at(self, n: int) -> str | None:
        """The id of the n-th row of the room list (Alt+n), or None."""
        return self.rooms.at(n)

    def seen_bottom(self, room_id: str) -> None:
        """The user is at the bottom of this conversation: everything in it
        is read. Sends the read marker (rooms; the client coalesces).
        Ignored while the window has no focus: nobody is looking."""
        model = self.rooms.get(room_id)
        if model is None or not self.focused:
            return
        if model.newest is not None and model.newest > model.read:
            model.read = model.newest
            self._send_read(model)
        if model.unread or model.mention:
            model.seen()
            self._push_list()
            self._set_title()

    def load_older(self, room_id: str) -> None:
        """The conversation was scrolled to its top: ask for the page before
        its oldest message (one request at a time per conversation)."""
        model = self.rooms.get(room_id)
        if model is None or model.loading is not None or not model.more:
            return
        if not (self.rooms_ok and self.client is not None and (model.private or model.joined)):
            return
        self._load_page(model, before=model.oldest)

    def load_newer(self, room_id: str) -> None:
        """The view reached the bottom of what it holds while the live end
        is not loaded: ask for the page after its newest message (one
        request at a time per conversation, shared with load_older)."""
        model = self.rooms.get(room_id)
        if model is None or model.live or model.loading is not None or model.newest is None:
            return
        if not (self.rooms_ok and self.client is not None and (model.private or model.joined)):
            return
        self._load_page(model, before=None, after=model.newest)

    def dropped_newest(self, room_id: str, newest_id: int | None) -> None:
        """The window dropped the newest lines of a conversation, far below
        its view, to keep its cap while paging back: ``newest_id`` is the
        newest message it still shows. Live messages are no longer appended
        (only counted) until paging forward reaches the live end again."""
        model = self.rooms.get(room_id)
        if model is None:
            return
        if newest_id is None:
            return self.to_live(room_id)        # nothing left to page forward from
        model.trim_newest(newest_id)

    def to_live(self, room_id: str) -> None:
        """Show the live end of a conversation whose newest lines are not
        loaded (the "N new messages ↓" button, or our own message coming
        back): the simplest correct way, everything shown is dropped and
        the newest page asked for again; a page in flight is forgotten."""
        model = self.rooms.get(room_id)
        if model is None or model.live:
            return
        for ref, req in list(self._asked.items()):
            if req[0] == "history" and req[1] == model.id:
                del self._asked[ref]
        model.loading = None
        marker = model.marker
        self.view.clear(model.id)
        model.forget_lines()                    # live again
        model.marker = marker
        self.view.set_unread_marker(model.id, marker)
        if self.rooms_ok and self.client is not None and (model.private or model.joined):
            self._load_page(model, before=None)

    def trimmed(self, room_id: str, oldest_id: int | None) -> None:
        """The window dropped the oldest lines of a conversation (its
        scrollback cap): ``oldest_id`` is the oldest message it still shows,
        so loading older messages goes on from there."""
        model = self.rooms.get(room_id)
        if model is not None:
            model.trim(oldest_id)
            model.more = self.rooms_ok          # a server without rooms has no history to page

    def join_room(self, name: str, key: str | None = None) -> None:
        """Join a room (from the rooms browser, or /join), or show it when we
        are in it already; the answer shows it."""
        try:
            name = p.check_room(name[1:] if name.startswith("#") else name)
        except p.ProtocolError as e:
            return self._error(f"{name[:40]!r} cannot be a room name: {e.message}.")
        model = self.rooms.room(name)
        if model is not None and model.joined:
            return self._activate(model)
        if self.client is None:
            return self._error("You are not connected.")
        if self.ever_connected and not self.rooms_ok:
            return self._error(_NO_ROOMS_WORDS)
        self._system(f"Joining #{self.safe(name)}…")
        self._ask("join", self.client.join(name, key or None), name, "switch-key" if key else "switch")

    def browse_rooms(self) -> None:
        """The rooms button, /rooms: ask for the list, then show the browser."""
        if self.client is None:
            return self._error("You are not connected.")
        if self.ever_connected and not self.rooms_ok:
            return self._error(_NO_ROOMS_WORDS)
        self._ask("rooms", self.client.rooms(), None, None)

    @property
    def unread(self) -> int:
        """Unread messages of every conversation (the title's count)."""
        return self.rooms.total_unread()

    @property
    def users(self) -> dict:
        """nick_key -> nick of the conversation on screen (for completion, /who)."""
        model = self.rooms.current
        if model is None:
            return {}
        if model.private:
            return {p.nick_key(n): n for n in (self.me, model.name) if n}
        return model.people

    # ------------------------------------------------------------------
    # Network events

    def _rooms_connected(self, e: ev.Connected) -> None:
        """From on_Connected: the conversations a welcome brings."""
        self.rooms_ok = e.protocol >= 2
        self._catching_up = True
        self._loud_in_catchup = False
        self._server = server_key(e.host, e.port)
        for model in self.rooms:
            model.caught = 0
        if not self.rooms_ok:
            lobby = self._room_model(p.LOBBY)
            lobby.people = {p.nick_key(n): n for n in e.users if type(n) is str}
        else:
            restored = {p.room_key(r) for r in e.rooms if type(r) is str}
            rejoining = {p.room_key(req[1]) for req in self._asked.values() if req[0] == "join"}
            for name in self._remembered("rooms"):
                if p.room_key(name) not in restored | rejoining:
                    self._ask("join", self.client.join(name), name, "rejoin")
            for nick in self._remembered("private"):
                self._private_model(nick, show=False)      # the rooms' frames come next

    def on_RoomState(self, e: ev.RoomState) -> None:
        info = e.info
        model = self._room_model(info.room)
        model.name, model.topic, model.key, model.last_id = info.room, info.topic, info.key, info.last_id
        model.joined = True
        model.people = {p.nick_key(n): n for n in info.users if type(n) is str}
        self._powers_from_room(model, e.powers)
        if info.read > model.read:
            model.read = info.read
            if model.recount():
                self.view.set_unread_marker(model.id, model.marker)
        elif model.read_sent > info.read:
            self._send_read(model)          # the server did not get our last marker
        if info.last_id == 0:
            model.more = False              # an empty room: nothing older to load
        req = self._asked.get(info.ref) if info.ref else None
        if req is not None and req[0] == "join":
            self._remember("rooms", model.name, True)
            if model.newest is not None:
                # We were out of it (the server had forgotten our session):
                # what was said meanwhile is not in our lines, so start over.
                self.view.clear(model.id)
                model.forget_lines()
            if info.last_id:
                self._load_page(model, before=None)
            if req[2] in ("switch", "switch-key"):
                self._activate(model)
        if model.id == self.rooms.active:
            self.view.show_room(model.id, self.safe(model.label, False), self._header_topic(model))
            self._push_users()
        self._push_list()
        self._set_title()

    def _rooms_caught_up(self) -> None:
        """From on_CaughtUp: the catch-up is over."""
        self._catching_up = False
        for model in self.rooms:
            if self._drops and model.caught:
                n = model.caught
                self._system(f"That was what you missed while away ({n} message{'s' if n != 1 else ''}).",
                             model.id)
            model.caught = 0
            if model.private and model.newest is None and model.more and model.loading is None and self.rooms_ok:
                self._load_page(model, before=None)
        if self.rooms_ok:
            for name in self.rooms.names():
                self._remember("rooms", name, True)
        if self.rooms.current is None and len(self.rooms):
            self._activate(self.rooms.ordered()[0])
        current = self.rooms.current
        if current is not None and self.focused:
            current.seen()
        if self._loud_in_catchup and not self.focused:
            self.view.bell()
        self._push_list()
        self._set_title()

    def on_Backlog(self, e: ev.Backlog) -> None:
        if e.missed:
            self._system(f"{e.missed} older messages were too old to replay; they are not shown.")
        for m in e.messages:
            if type(m) is p.Topic:
                self.on_Topic(m)
            elif isinstance(m, _SHOWN):
                self._show_message(m, backlog=True)
            elif isinstance(m, _MOD_EVENTS):
                self.handle(m)

    def on_Message(self, m: p.Message) -> None:
        self._show_message(m)

    def on_Direct(self, d: p.Direct) -> None:
        self._show_message(d)

    def on_Topic(self, t: p.Topic) -> None:
        model = self.rooms.room(t.room)
        if model is None or not model.add(t.id, t.ts, True, False):
            return
        model.topic = t.topic
        by = self.safe(t.by) or "Someone"
        self._system(f"{by} set the topic: {self.safe(t.topic)}" if t.topic else f"{by} cleared the topic.",
                     model.id, t.ts)
        if model.id == self.rooms.active:
            self.view.show_room(model.id, self.safe(model.label, False), self._header_topic(model))

    def on_HistoryPage(self, page: p.HistoryPage) -> None:
        req = self._asked.pop(page.ref, None) if page.ref else None
        model = self.rooms.get(req[1]) if req is not None and req[0] == "history" else None
        if model is None:
            return
        model.loading = None
        newer = req[2] == "newer"
        lines = []
        for m in page.messages:
            if type(m) is mod.Deleted:
                if m.id not in model.shown and model.add(m.id, None, True, False):
                    line = self._tombstone(m.by, m.id)
                    model.shown[m.id] = Shown(line, "", "", False, None, removed=True)
                    lines.append(line)
            elif isinstance(m, _SHOWN) and getattr(m, "question", False) and not self._mine(m):
                self._question_or_release(model, m, False)
            elif isinstance(m, _SHOWN):
                got = self._record(model, m)
                if got is not None:
                    lines.append(got[0])
                    # A newer page holds what was counted when it came live.
                    if not got[1] and not newer:
                        self._count_unread(model, m.id, got[2])
            elif type(m) is p.Topic and model.add(m.id, m.ts, True, False):
                by = self.safe(m.by) or "Someone"
                lines.append(Line(SYSTEM, stamp(m.ts), "", f"{by} set the topic: {self.safe(m.topic)}"
                                  if m.topic else f"{by} cleared the topic."))
        if newer:
            model.live = not page.more
            self.view.extend(model.id, lines, model.live)
        else:
            model.more = page.more
            self.view.prepend(model.id, lines, page.more)
        self._push_list()
        self._set_title()

    def on_RoomList(self, rl: p.RoomList) -> None:
        req = self._asked.pop(rl.ref, None) if rl.ref else None
        if req is None or req[0] != "rooms":
            return
        wanted = req[1]
        choices = [RoomChoice(r.room, self.safe(r.topic, False), r.users, r.key, self._in_room(r.room))
                   for r in rl.rooms]
        if wanted is not None:      # asking again for one room's key
            choices = [c for c in choices if p.room_key(c.name) == p.room_key(wanted)] or choices
        self.view.show_room_browser(choices)

    def on_Joined(self, e: p.Joined) -> None:
        model = self._room_model(e.room)
        key = p.nick_key(e.nick)
        known = key in model.people
        model.people[key] = e.nick
        if model.id == self.rooms.active:
            self._push_users()
        if key != p.nick_key(self.me) and not known:
            self._system(f"{self.safe(e.nick)} joined.", model.id)

    def on_Left(self, e: p.Left) -> None:
        model = self.rooms.room(e.room)
        if model is None:
            return
        if p.nick_key(e.nick) == p.nick_key(self.me):
            if self.rooms_ok:
                self._left_room(model)
                if e.reason in ("kick", "ban"):
                    # The room's lines may be gone with it: say why where the user is now.
                    self._error(self._farewell.pop(model.id, None)
                                or f"You were removed from {self.safe(model.label)}.")
            return
        model.people.pop(p.nick_key(e.nick), None)
        if model.id == self.rooms.active:
            self._push_users()
        if e.reason in ("kick", "ban"):
            return                  # the moderated line said who and why
        reason = f" ({self.safe(e.reason)})" if e.reason and e.reason not in ("quit", "part") else ""
        self._system(f"{self.safe(e.nick)} left{reason}.", model.id)

    def _rooms_renamed(self, old: str, new: str) -> list:
        """From on_Renamed: the conversations where the rename is news."""
        touched = self.rooms.renamed(old, new)
        self._push_list()
        if self.rooms.current in touched:
            self._push_users()
        return touched

    def _rooms_new_client(self) -> None:
        """From _start_client: the requests of the client before are gone with it."""
        self._asked.clear()
        for model in self.rooms:
            model.loading = None

    def _room_request_answered(self, ref: str) -> bool:
        """From on_Acked: one of our room requests is done (its answer came first)."""
        return self._asked.pop(ref, None) is not None

    def _room_request_refused(self, e: ev.Refused) -> bool:
        """From on_Refused: say why a room request failed, as a sentence.
        False when the ref is not one of ours."""
        req = self._asked.pop(e.ref, None)
        if req is None:
            return False
        kind, target, detail = req
        if e.code == NO_ROOMS:
            self._error(_NO_ROOMS_WORDS)
        elif kind == "join":
            self._join_refused(target, detail, e)
        elif kind == "part":
            model = self.rooms.room(target)
            if e.code == p.NOT_IN_ROOM and model is not None:
                self._left_room(model)          # out already (a part sent again after a reconnect)
            else:
                self._error(f"Could not leave #{self.safe(target)}: {self.safe(e.message)}")
        elif kind == "topic":
            if e.code == p.NOT_IN_ROOM:
                self._error(f"You are not in #{self.safe(target)}, so you cannot set its topic: "
                            f"/join {self.safe(target)} first.")
            else:
                self._error(f"The topic of #{self.safe(target)} was not changed: "
                            f"{lower_first(self.safe(e.message))}")
        elif kind == "history":
            model = self.rooms.get(target)
            if model is not None and detail == "newer":
                model.loading = None
                self._error(f"Newer messages cannot be loaded here: {lower_first(self.safe(e.message))}",
                            model.id)
            elif model is not None:
                model.loading = None
                model.more = False
                self._error(f"Older messages cannot be loaded here: {lower_first(self.safe(e.message))}",
                            model.id)
        else:
            self._error(f"The list of rooms is not available: {lower_first(self.safe(e.message))}")
        return True

    def _join_refused(self, name: str, detail, e: ev.Refused) -> None:
        room = f"#{self.safe(name)}"
        if e.code == mod.BANNED:
            self._error(speak_refusal(e.code, self.safe(e.message), room, e.until, None, self.wall(), Modes()))
        elif e.code == p.BAD_KEY:
            self._error(f"{room} needs its key (a password) to join"
                        + (", and the one given is not it." if detail == "switch-key" else ".")
                        + " Type it in the list of rooms that opens now.")
            self._ask("rooms", self.client.rooms(), name, None)
        elif e.code == p.TOO_MANY_ROOMS:
            self._error(f"Could not join {room}: you are in as many rooms as the server allows, or it holds "
                        f"as many as it can ({lower_first(self.safe(e.message)).rstrip('.')}). "
                        "Leave one with /part and try again.")
        elif e.code == p.BAD_ROOM:
            self._error(f"There can be no room {room}: {lower_first(self.safe(e.message))}")
        else:
            self._error(f"Could not join {room}: {lower_first(self.safe(e.message))}")
        if detail == "rejoin" and e.code in (p.BAD_ROOM, p.BAD_KEY):
            self._remember("rooms", name, False)     # asked about now; not again on every start

    # ------------------------------------------------------------------
    # Commands

    def _cmd_Join(self, c: commands.Join) -> None:
        self.join_room(c.room, c.key)

    def _cmd_Part(self, c: commands.Part) -> None:
        model = self.rooms.room(c.room) if c.room else self.rooms.current
        if model is None:
            return self._error(f"You are not in #{self.safe(c.room)}." if c.room else "There is nothing to leave.")
        if model.private:
            self._remember("private", model.name, False)
            return self._left_room(model)
        if not model.joined:
            return self._error(f"You are not in {self.safe(model.label)} any more.")
        if self.client is None:
            return self._error("You are not connected.")
        self._ask("part", self.client.part(model.name), model.name, None)

    def _cmd_Topic(self, c: commands.Topic) -> None:
        model = self.rooms.current
        if model is None or model.private:
            return self._error("A private conversation has no topic." if model else "You are not in a room.")
        if c.text is None:
            shown = self.safe(model.topic) if model.topic else "none yet"
            return self._system(f"Topic of {self.safe(model.label)}: {shown}. Set it with /topic text.")
        if self.client is None:
            return self._error("You are not connected.")
        if self.ever_connected and not self.rooms_ok:
            return self._error(_NO_ROOMS_WORDS)
        self._ask("topic", self.client.topic(model.name, c.text), model.name, None)

    def _cmd_Rooms(self, c: commands.Rooms) -> None:
        self.browse_rooms()

    # ------------------------------------------------------------------
    # Helpers

    def _ask(self, kind: str, ref: str, target, detail) -> None:
        self._asked[ref] = (kind, target, detail)

    def _room_model(self, name: str) -> RoomModel:
        model, made = self.rooms.ensure_room(name)
        if made:
            model.more = self.rooms_ok
            if self.rooms.active is None:
                self._activate(model)
            self._push_list()
        return model

    def _private_model(self, nick: str, show: bool = True) -> RoomModel:
        model, made = self.rooms.ensure_private(nick)
        if made:
            model.more = self.rooms_ok
            model.people = {p.nick_key(nick): nick}
            self._remember("private", nick, True)
            if show and self.rooms.active is None:
                self._activate(model)
            self._push_list()
        return model

    def _in_room(self, name: str) -> bool:
        model = self.rooms.room(name)
        return model is not None and model.joined

    def _activate(self, model: RoomModel, draft: str | None = None) -> None:
        """Show ``model``. With ``draft`` (the user switched): keep it for the
        one left and put the new one's in the input box; without (the
        program switched): the input box stays as it is."""
        old = self.rooms.current
        if draft is not None and old is not None and old is not model:
            old.draft = draft
        self.rooms.active = model.id
        self.view.show_room(model.id, self.safe(model.label, False), self._header_topic(model))
        if draft is not None:
            self.view.set_input(model.draft)
        if self.focused:
            model.seen()
        self._push_users()
        self._push_list()
        self._set_title()

    def _header_topic(self, model: RoomModel) -> str:
        if model.private:
            return f"Private conversation with {self.safe(model.name, False)}"
        if not model.joined:
            return "You are not in this room any more."
        return self.safe(model.topic, False)

    def _left_room(self, model: RoomModel) -> None:
        """We are out of a room (or closed a private conversation): it goes,
        unless it is the last conversation, which stays with its lines."""
        if not model.private:
            self._remember("rooms", model.name, False)
        order = self.rooms.ordered()
        if len(order) <= 1:
            model.joined = False
            model.people = {}
            self._system(f"You left {self.safe(model.label)}. Type /join NAME to talk in a room again "
                         "(/rooms lists them).", model.id)
            self._activate(model)
            return
        at = order.index(model)
        was_active = model.id == self.rooms.active
        self.rooms.remove(model.id)
        self.view.forget_room(model.id)
        if was_active:
            self._activate(order[at - 1] if at > 0 else order[1])
        if not model.private:
            self._system(f"You left {self.safe(model.label)}.")
        self._push_list()
        self._set_title()

    def _load_page(self, model: RoomModel, before: int | None, after: int | None = None) -> None:
        """Ask for a page: ``before`` an id (older), ``after`` one (newer),
        or neither (the newest)."""
        if self.client is None:
            return
        where = dict(with_=model.name) if model.private else dict(room=model.name)
        if after is not None:
            ref = self.client.history(**where, after=after, limit=HISTORY_PAGE)
        else:
            ref = self.client.history(**where, before=before, limit=HISTORY_PAGE)
        model.loading = ref
        self._ask("history", ref, model.id, "newer" if after is not None else None)

    def _send_read(self, model: RoomModel) -> None:
        if model.private or not model.joined or not self.rooms_ok or self.client is None:
            return
        if model.read > model.read_sent:
            model.read_sent = model.read
        self.client.read(model.name, model.read_sent)

    def _remembered(self, what: str) -> list:
        entry = self.settings.rooms.get(self._server) if self._server else None
        return list(entry.get(what, [])) if type(entry) is dict else []

    def _remember(self, what: str, name: str, present: bool) -> None:
        """Add or drop a room ("rooms") or private conversation ("private")
        in this server's remembered list, saving the settings if it changed."""
        if not (self._server and self.rooms_ok):
            return
        entry = self.settings.rooms.setdefault(self._server, {})
        names = [n for n in entry.get(what, []) if p.nick_key(n) != p.nick_key(name)]
        if present:
            old = [p.nick_key(n) for n in entry.get(what, [])]
            names.insert(old.index(p.nick_key(name)) if p.nick_key(name) in old else len(names), name)
        if names != entry.get(what, []):
            entry[what] = names
            self.save_settings(self.settings)

    def _show_message(self, m, backlog: bool = False) -> None:
        """A live (or caught-up) Message or Direct, in its conversation."""
        if isinstance(m, p.Direct):
            mine = self._mine(m)
            model = self._private_model(m.to if mine else m.sender)
        else:
            model = self._room_model(m.room)
        if type(m) is mod.MarkedMessage and self._question_or_release(model, m, self._mine(m)):
            self._resolve_pending(m.ref)
            return
        if not model.live:
            return self._below_view(model, m, backlog)
        got = self._record(model, m)
        if got is None:
            return
        line, mine, loud = got
        self._resolve_pending(m.ref)
        self.view.append(line, model.id)
        if backlog:
            model.caught += 1
        if not mine and self._count_unread(model, m.id, loud, backlog):
            if backlog:
                self._loud_in_catchup = self._loud_in_catchup or loud
            elif loud:
                self.view.bell()

    def _below_view(self, model: RoomModel, m, backlog: bool) -> None:
        """A live message for a conversation whose newest lines are not
        loaded: not drawn (paging forward brings it from the history), but
        counted; our own one takes the conversation to its live end."""
        mine = self._mine(m)
        self._resolve_pending(m.ref)
        if mine:
            return self.to_live(model.id)
        loud = isinstance(m, p.Direct) or bool(self.me and formatting.mentions(_unwrap_action(m.text)[0], self.me))
        self.view.arrived_below(model.id)
        if self._count_unread(model, m.id, loud, backlog) and loud and not backlog:
            self.view.bell()

    def _mine(self, m) -> bool:
        return m.ref in self.pending or p.nick_key(m.sender) == p.nick_key(self.me)

    def _record(self, model: RoomModel, m) -> tuple | None:
        """(line, ours, loud) for a Message or Direct in ``model``, or None
        when it was shown there already."""
        text, action = _unwrap_action(m.text)
        mine = self._mine(m)
        if isinstance(m, p.Direct):
            kind = PRIVATE
            who, key = ((f"you → {self.safe(m.to)}", p.nick_key(m.to)) if mine
                        else (f"{self.safe(m.sender)} → you", p.nick_key(m.sender)))
        else:
            kind = OWN if mine else MENTION if self.me and formatting.mentions(text, self.me) else OTHER
            who, key = self.safe(m.sender), p.nick_key(m.sender)
        if not model.add(m.id, m.ts, mine, kind == MENTION):
            return None
        line = self._line(kind, m.ts, who, text, action=action, msg_id=m.id, who_key=key)
        if getattr(m, "file", None) is not None:
            line = self._file_line(line, m)     # issue 12: a card instead of the text
        if getattr(m, "edited_ts", None) is not None or getattr(m, "question", False):
            line = replace(line, edited=getattr(m, "edited_ts", None) is not None,
                           question=getattr(m, "question", False))
        self._shown(model, m, line, mine)
        return line, mine, kind in (MENTION, PRIVATE)

    def _count_unread(self, model: RoomModel, msg_id: int, loud: bool, backlog: bool = False) -> bool:
        """Someone else's message shown in ``model``: count it unless the
        user is looking at it (a caught-up one still moves the "new
        messages" line there). True when it counted (no bell otherwise)."""
        if self.focused and model.id == self.rooms.active:
            if backlog and model.mark_missed(msg_id):
                self.view.set_unread_marker(model.id, model.marker)
            return False
        if model.count(msg_id, loud):
            self.view.set_unread_marker(model.id, model.marker)
        self._push_list()
        self._set_title()
        return True

    def _push_list(self) -> None:
        entries = self.rooms.entries(lambda m: self.safe(m.label, False))
        if (entries, self.rooms.active) != self._list_shown:
            self._list_shown = (entries, self.rooms.active)
            self.view.set_rooms(list(entries), self.rooms.active)

    def _push_users(self) -> None:
        """The people of the conversation on screen; while disconnected,
        who was there, as offline."""
        names = sorted(self.users.values(), key=str.casefold)
        roles = self._roles_shown()
        # roles only when someone has one: a window built before issue 11 takes no roles.
        self.view.set_users([self.safe(n, False) for n in names], self.safe(self.me, False),
                            online=self.connected, **({"roles": roles} if roles else {}))

    def _system(self, text: str, room: str | None = None, ts: float | None = None) -> None:
        """A notice of ours in ``room`` (None: the one on screen); peer parts
        of ``text`` were made safe by the caller."""
        self.view.append(Line(SYSTEM, stamp(time.time() if ts is None else ts), "", text,
                              links=tuple(formatting.find_urls(text))), room or self.rooms.active)

    def _error(self, text: str, room: str | None = None) -> None:
        self.view.append(Line(ERROR, stamp(time.time()), "", self.safe(text)), room or self.rooms.active)


_NO_ROOMS_WORDS = ("This server has only one room (it runs an older version of Natter): "
                   "/join, /part, /topic and /rooms need a newer server.")


def stamp(ts: float) -> str:
    try:
        return formatting.timestamp(ts)
    except (OverflowError, ValueError, OSError, TypeError):   # a nonsense time from the server
        return "--:--"


def lower_first(text: str) -> str:
    """'The server closed' -> 'the server closed' (not for 'TLS ...')."""
    if text[:2].isupper():
        return text
    return text[:1].lower() + text[1:]


def _unwrap_action(text: str) -> tuple[str, bool]:
    body = commands.action_body(text)
    return (text, False) if body is None else (body, True)
