"""The moderation part of the controller (issue 11): roles and modes per
room, what the user may do (the person and message menus, the settings
dialog), the lines of ``moderated`` and ``mode`` events, edited and
removed lines, the questions list, the moderation commands, and a
sentence for every refusal ("You are muted in #maths for 4 more
minutes."; the words are in :mod:`chatgui.app.moderation_text`, shared
with the terminal).

:class:`Moderation` is mixed into :class:`chatgui.app.controller.Controller`
beside :class:`chatgui.app.conversations.Conversations`, whose helpers it
uses (``_system``, ``_error``, ``_ask``, ``_push_users``...). The state of
each room is on its :class:`chatgui.app.rooms.RoomModel` (``role``,
``roles``, ``modes``, ``muted``, ``questions``, ``shown``).

Who may do what (DESIGN-11 section 2), as the menus offer it; the server
decides, and its refusal is shown as a sentence: owner > op > voice >
member, a server admin counts as owner everywhere; op and up kick, ban,
mute, give voice, set modes, delete others' messages, release questions
and read the audit trail; only an owner makes ops; nobody acts on an equal
or higher rank; authors edit and delete their own messages within the
edit window.

Thread: the Tk thread, like the controller.
"""
from __future__ import annotations

from dataclasses import replace

from server import protocol as p

from chatgui.app import commands, formatting
from chatgui.app.conversations import stamp
from chatgui.app.moderation_text import (EDIT_WINDOW, audit_words, describe_modes, how_long, mode_sentence,
                                         moderated_sentence, request_refusal, speak_refusal, vars_of)
from chatgui.app.rooms import RoomModel, Shown
from chatgui.app.view import (MEMBER, OP, OWNER, ROLES, SYSTEM, VOICE, Line, MenuItem, Modes, Question,
                              RoomPowers, RoomSettings)
from chatgui.net import moderation as mod
from chatgui.net.identity import fingerprint

RANK = {MEMBER: 0, VOICE: 1, OP: 2, OWNER: 3}
MOD_KINDS = ("mod", "mode", "delete", "edit", "release", "audit", "forget")
MUTE_CHOICES = ((300, "Mute for 5 minutes"), (3600, "Mute for 1 hour"), (86_400, "Mute for a day"))



class Moderation:
    def _init_moderation(self, identity: str | None) -> None:
        self.identity = identity
        self.identity_fingerprint = mod_fingerprint(identity)
        self.admin = False              # the welcome said our identity is a server admin
        self._settings_topic: dict = {}   # room id -> the topic the settings dialog was given
        self._farewell: dict = {}         # room id -> why we were removed from it (until our left comes)
        self._audit_oldest: dict = {}     # room id -> the event id /audit more pages before

    # ------------------------------------------------------------------
    # What the window asks (Tk thread)

    def person_menu(self, room_id: str, nick: str) -> list:
        """The entries of a right-click on ``nick`` in the people list of
        ``room_id``: private message and mention, and, where we may, the
        moderation actions (see the module docstring)."""
        model = self.rooms.get(room_id)
        me = p.nick_key(nick) == p.nick_key(self.me)
        items = [] if me else [MenuItem("msg", "Private message"), MenuItem("mention", "Mention")]
        if model is None or model.private or not model.joined or me:
            return items
        mine, theirs = self._rank(model), RANK.get(model.roles.get(p.nick_key(nick), MEMBER), 0)
        if mine < RANK[OP] or theirs >= mine:
            return items
        acts = [MenuItem("kick", "Remove from the room")]
        if p.nick_key(nick) in model.muted:
            acts.append(MenuItem("unmute", "Unmute"))
        else:
            acts += [MenuItem(f"mute:{s}", label) for s, label in MUTE_CHOICES]
        acts.append(MenuItem("ban", "Ban from the room"))
        if mine >= RANK[OWNER]:
            acts.append(MenuItem("deop", "Remove op") if theirs == RANK[OP] else MenuItem("op", "Make op"))
        if theirs < RANK[OP]:
            acts.append(MenuItem("devoice", "Take voice away") if theirs == RANK[VOICE]
                        else MenuItem("voice", "Give voice"))
        acts[0] = replace(acts[0], separator_before=bool(items))
        return items + acts

    def person_action(self, room_id: str, nick: str, action: str) -> None:
        """An entry of :meth:`person_menu` was chosen."""
        if action == "msg":
            return self.view.set_input(f"/msg {nick} ")
        if action == "mention":
            return self.view.set_input(f"{nick}: ")
        model = self.rooms.get(room_id)
        if model is None or model.private:
            return
        name, _, seconds = action.partition(":")
        if name not in mod.ACTIONS:
            return
        self._mod(model, name, nick, None, int(seconds) if seconds.isdigit() else None)

    def message_menu(self, room_id: str, msg_id: int) -> list:
        """The entries of a right-click on the line of message ``msg_id``:
        reply with a quote, copy, and edit / delete where allowed."""
        model = self.rooms.get(room_id)
        shown = model.shown.get(msg_id) if model is not None else None
        if shown is None or shown.removed:
            return []
        items = [MenuItem("reply", "Reply with a quote"), MenuItem("copy", "Copy text")]
        fresh = shown.own and self._in_edit_window(shown)
        if fresh:
            items.append(MenuItem("edit", "Edit", separator_before=True))
        if fresh or (not model.private and self._rank(model) >= RANK[OP]):
            items.append(MenuItem("delete", "Delete", separator_before=not fresh))
        return items

    def message_action(self, room_id: str, msg_id: int, action: str) -> None:
        """An entry of :meth:`message_menu` was chosen."""
        model = self.rooms.get(room_id)
        shown = model.shown.get(msg_id) if model is not None else None
        if shown is None:
            return
        if action == "copy":
            self._tell("copy_text", shown.text)
        elif action == "reply":
            first = shown.text.split("\n", 1)[0]
            quote = first if len(first) <= 80 else first[:80] + "…"
            self.view.set_input(f"> {shown.author}: {quote}\n")
        elif action == "edit":
            self.view.set_input(f"/edit #{msg_id} {shown.text}")
        elif action == "delete":
            self._delete(model, msg_id, None)

    def room_settings(self, room_id: str) -> None:
        """The room's settings button: the dialog, for ops."""
        model = self.rooms.get(room_id)
        if model is None or model.private:
            return self._error("A private conversation has no settings.")
        if self._rank(model) < RANK[OP]:
            return self._error(f"Only the ops of {self.safe(model.label)} can change its settings.", model.id)
        # The dialog edits the topic as the window can show it; what it gives
        # back is compared with that, so a topic with emoji (shown as
        # stand-ins) is not "changed" to its stand-ins by a Save.
        shown = self.safe(model.topic, False)
        self._settings_topic[model.id] = shown
        self._tell("show_room_settings", RoomSettings(model.id, self.safe(model.label, False), model.modes, shown))

    def apply_room_settings(self, room_id: str, modes: Modes, topic: str, key: str | None = None) -> None:
        """The settings dialog's OK: send what changed (one ``mode`` frame,
        and a topic change)."""
        model = self.rooms.get(room_id)
        if model is None or model.private:
            return
        old = model.modes
        changes = {name: getattr(modes, name) for name in ("moderated", "questions", "announce", "dm", "slow")
                   if getattr(modes, name) != getattr(old, name)}
        if key is not None:
            changes["key"] = key
        if changes:
            self._send_mode(model, changes)
        if topic.strip() != self._settings_topic.pop(model.id, model.topic).strip():
            if self.client is None:
                return self._error("You are not connected.")
            try:
                text = p.check_topic(topic.strip())
            except p.ProtocolError as e:
                return self._error(f"That topic cannot be used: {e.message}.", model.id)
            self._ask("topic", self.client.topic(model.name, text), model.name, None)

    def release_question(self, room_id: str, question_id: int) -> None:
        """A Release button of the questions list."""
        model = self.rooms.get(room_id)
        if model is not None:
            self._release(model, question_id)

    # ------------------------------------------------------------------
    # Network events

    def _powers_from_room(self, model: RoomModel, info) -> None:
        """From on_RoomState: the ``room`` frame's role, roles and modes."""
        if info is None:
            return
        model.role = info.role
        model.roles = {p.nick_key(n): r for n, r in info.roles if r != MEMBER}
        model.modes = Modes(**dict(info.modes))
        self._push_powers(model)

    def on_Moderated(self, e: mod.Moderated) -> None:
        model = self.rooms.room(e.room)
        if model is None:
            return
        key = p.nick_key(e.nick)
        ours = key == p.nick_key(self.me)
        if e.action in ("op", "voice"):
            if RANK.get(model.roles.get(key, MEMBER), 0) < RANK[e.action]:
                model.roles[key] = e.action
        elif e.action in ("deop", "devoice") and model.roles.get(key) == ("op" if e.action == "deop" else "voice"):
            model.roles.pop(key)
        elif e.action == "mute":
            model.muted[key] = e.until
        elif e.action == "unmute":
            model.muted.pop(key, None)
        if ours and e.action in ("op", "voice", "deop", "devoice"):
            model.role = model.roles.get(key, MEMBER)
        words = self._moderated_words(e, model, ours)
        self._system(words, model.id, e.ts)
        if ours and e.action in ("kick", "ban"):
            self._farewell[model.id] = words
        self._push_powers(model)
        if model.id == self.rooms.active:
            self._push_users()

    def on_ModeChanged(self, e: mod.ModeChanged) -> None:
        model = self.rooms.room(e.room)
        if model is None:
            return
        now = dict(e.modes) if e.modes is not None else {**vars_of(model.modes), **e.changed}
        model.modes = Modes(**now)
        by = self.safe(e.by) if e.by else "Someone"
        for name, value in e.changed.items():
            self._system(mode_sentence(by, name, value, self.safe(model.label)), model.id, e.ts)
        self._push_powers(model)

    def on_Deleted(self, e: mod.Deleted) -> None:
        model = self.rooms.room(e.room) if e.room is not None else self.rooms.private(e.with_)
        if model is None:
            return
        if model.questions.pop(e.id, None) is not None:
            self._push_questions(model)
        shown = model.shown.get(e.id)
        if shown is None and e.seq is None and model.add(e.id, None, True, False):
            # A catch-up's tombstone in the place of a message we never saw.
            line = self._tombstone(e.by, e.id)
            model.shown[e.id] = Shown(line, "", "", False, None, removed=True)
            self.view.append(line, model.id)
            return
        if shown is None or shown.removed:
            return
        line = self._tombstone(e.by, e.id, shown.line)
        model.shown[e.id] = replace(shown, line=line, text="", removed=True)
        self._tell("update_line", model.id, e.id, line)

    def on_Edited(self, e: mod.Edited) -> None:
        model = self.rooms.room(e.room) if e.room is not None else self.rooms.private(e.with_)
        if model is None:
            return
        q = model.questions.get(e.id)
        if q is not None:
            model.questions[e.id] = replace(q, text=self.safe(e.text))
            self._push_questions(model)
        shown = model.shown.get(e.id)
        if shown is None or shown.removed:
            return
        body = self.safe(e.text)
        line = replace(shown.line, text=body, links=tuple(formatting.find_urls(body)), edited=True)
        model.shown[e.id] = replace(shown, line=line, text=e.text)
        self._tell("update_line", model.id, e.id, line)

    def on_Audit(self, a: mod.Audit) -> None:
        self._asked.pop(a.ref, None)
        model = self.rooms.room(a.room)
        where = model.id if model is not None else None
        label = f"#{self.safe(a.room)}"
        if where is not None:
            if a.more and a.oldest is not None:
                self._audit_oldest[where] = a.oldest
            else:
                self._audit_oldest.pop(where, None)
        if not a.entries:
            return self._system(f"Nothing was moderated in {label} yet.", where)
        rows = [f"Moderation of {label}, oldest first ({len(a.entries)}):"]
        rows += [f"{_stamp_or(x.ts)}  {audit_words(x, self.safe)}" for x in a.entries]
        if a.more and a.oldest is not None:
            rows.append("There are older entries: /audit more shows them.")
        self._system("\n".join(rows), where)

    def on_Forgotten(self, f: mod.Forgotten) -> None:
        self._asked.pop(f.ref, None)
        self._system(f"The nick {self.safe(f.nick)} is no longer reserved for this computer: anyone may "
                     "take it once you leave.")

    def _question_or_release(self, model: RoomModel, m, mine: bool) -> bool:
        """A message with issue 11's marks: True when it was dealt with here
        (a question for the ops' list, or our own released question, which
        takes the place of its line)."""
        if getattr(m, "question", False) and not mine:
            if m.id not in model.questions and model.add(m.id, m.ts, False, False):
                text, _ = _unwrap(m.text)
                model.questions[m.id] = Question(m.id, self.safe(m.sender, False), self.safe(text),
                                                 _stamp_or(m.ts))
                self._push_questions(model)
                self._system(f"{self.safe(m.sender)} asked a question: it waits in the questions list "
                             "for you to release it.", model.id, m.ts)
            return True
        qid = getattr(m, "released_from", None)
        if qid is None:
            return False
        q = model.questions.get(qid)
        if q is not None:
            model.questions[qid] = replace(q, released_by=self.safe(m.released_by or "", False) or "an op")
            self._push_questions(model)
        asked = model.shown.get(qid)
        if asked is not None and asked.own and not asked.removed:
            got = self._record(model, m)
            if got is not None:
                model.shown.pop(qid, None)
                self._tell("update_line", model.id, qid, got[0])
            return True
        return False

    def _mod_refused(self, e) -> bool:
        """From on_Refused: a moderation request of ours was refused; say
        why as a sentence. False when the ref is not one of those."""
        req = self._asked.get(e.ref)
        if req is None or req[0] not in MOD_KINDS:
            return False
        del self._asked[e.ref]
        kind, target, detail = req
        self._error(self._refusal_words(kind, target, detail, e), self._where_id(target))
        return True

    def _speak_refused_words(self, e, model: RoomModel | None, kind: str, to: str | None) -> str | None:
        """A say or dm refused for a moderation reason -> the sentence, or None."""
        label = self.safe(model.label) if model is not None and not model.private else "this room"
        modes = model.modes if model is not None else Modes()
        return speak_refusal(e.code, self.safe(e.message), label, e.until, e.retry_after, self.wall(), modes,
                             kind == "dm", self.safe(to) if to else None)

    # ------------------------------------------------------------------
    # Commands

    def _cmd_Mod(self, c: commands.Mod) -> None:
        model = self._mod_room()
        if model is not None:
            self._mod(model, c.action, c.nick, c.reason, c.duration)

    def _cmd_Mode(self, c: commands.Mode) -> None:
        model = self._mod_room()
        if model is None:
            return
        if not c.changes:
            return self._system(f"Modes of {self.safe(model.label)}: {describe_modes(model.modes)}. "
                                "Ops set them with /mode NAME VALUE (/help mode).")
        self._send_mode(model, dict(c.changes))

    def _cmd_Delete(self, c: commands.Delete) -> None:
        model = self.rooms.current
        if model is None:
            return self._error("There is nothing to remove here.")
        msg_id = c.msg_id if c.msg_id is not None else self._last_own(model)
        if msg_id is None:
            return self._error("You have sent nothing here to remove; give the message's number: /delete ID.")
        self._delete(model, msg_id, c.reason)

    def _cmd_Edit(self, c: commands.Edit) -> None:
        model = self.rooms.current
        if model is None:
            return self._error("There is nothing to edit here.")
        msg_id = c.msg_id if c.msg_id is not None else self._last_own(model)
        if msg_id is None:
            return self._error("You have sent nothing here to edit.")
        shown = model.shown.get(msg_id)
        if shown is not None and not shown.own:
            return self._error("You can only edit your own messages.")
        if self.client is None:
            return self._error("You are not connected.")
        self._ask("edit", self.client.edit(msg_id, c.text), model.id, msg_id)

    def _cmd_Release(self, c: commands.Release) -> None:
        model = self._mod_room()
        if model is None:
            return
        qid = c.question_id
        if qid is None:
            waiting = sorted(q.id for q in model.questions.values() if q.released_by is None)
            if not waiting:
                return self._error(f"No question waits in {self.safe(model.label)}.")
            qid = waiting[0]
        self._release(model, qid)

    def _cmd_Forget(self, c: commands.Forget) -> None:
        if self.client is None:
            return self._error("You are not connected.")
        self._ask("forget", self.client.forget(), None, None)

    def _cmd_Audit(self, c: commands.Audit) -> None:
        model = self._mod_room()
        if model is None or self.client is None:
            return
        before = None
        if c.older:
            before = self._audit_oldest.get(model.id)
            if before is None:
                return self._error("Nothing older to show: type /audit first; its last line says when there is more.")
        self._ask("audit", self.client.audit(model.name, before), model.id, None)

    # ------------------------------------------------------------------
    # Helpers

    def _tell(self, method: str, *args) -> None:
        """Call one of the View's issue 11 methods. They are optional: a
        window built before issue 11 lacks them and simply shows no
        moderation parts (its conversation and people list work as before)."""
        call = getattr(self.view, method, None)
        if call is not None:
            call(*args)

    def _rank(self, model: RoomModel) -> int:
        return RANK[OWNER] if self.admin else RANK.get(model.role, 0)

    def _powers(self, model: RoomModel) -> RoomPowers:
        rank = self._rank(model)
        why = self._silenced(model, rank)
        roles = {self.safe(model.people.get(k, k), False): r for k, r in model.roles.items() if k in model.people}
        return RoomPowers(OWNER if self.admin else model.role, model.modes, roles, rank >= RANK[OP],
                          rank >= RANK[OWNER], not why, why)

    def _silenced(self, model: RoomModel, rank: int) -> str:
        """Why we may not speak in ``model`` now ("" when we may)."""
        label = self.safe(model.label)
        me = p.nick_key(self.me)
        if me in model.muted:
            until = model.muted[me]
            if until is None or until > self.wall():
                return f"You are muted in {label} {self._for_how_long(until, 'until an op unmutes you')}."
        if model.modes.announce and rank < RANK[OP]:
            return f"Only the ops can speak in {label}: it is for announcements."
        if model.modes.moderated and rank < RANK[VOICE]:
            return f"Only ops and people with voice can speak in {label} now (it is moderated)."
        return ""

    def _push_powers(self, model: RoomModel) -> None:
        if not model.private:
            self._tell("set_powers", model.id, self._powers(model))
            self._push_questions(model)

    def _push_questions(self, model: RoomModel) -> None:
        if self._rank(model) >= RANK[OP] or model.questions:
            self._tell("set_questions", model.id, sorted(model.questions.values(), key=lambda q: q.id))

    def _roles_shown(self) -> dict:
        """For set_users: the roles of the people of the room on screen."""
        model = self.rooms.current
        if model is None or model.private:
            return {}
        return {self.safe(model.people[k], False): r for k, r in model.roles.items()
                if k in model.people and r in ROLES and r != MEMBER}

    def _mod_room(self) -> RoomModel | None:
        model = self.rooms.current
        if model is None or model.private or not model.joined:
            self._error("Moderation works in a room: switch to one first.")
            return None
        if self.client is None:
            self._error("You are not connected.")
            return None
        return model

    def _mod(self, model: RoomModel, action: str, nick: str, reason, duration) -> None:
        if self.client is None:
            return self._error("You are not connected.")
        ref = self.client.mod(model.name, action, nick, reason, duration)
        self._ask("mod", ref, model.id, (action, nick))

    def _send_mode(self, model: RoomModel, changes: dict) -> None:
        if self.client is None:
            return self._error("You are not connected.")
        self._ask("mode", self.client.mode(model.name, **changes), model.id, None)

    def _delete(self, model: RoomModel, msg_id: int, reason) -> None:
        if self.client is None:
            return self._error("You are not connected.")
        self._ask("delete", self.client.delete(msg_id, reason), model.id, msg_id)

    def _release(self, model: RoomModel, qid: int) -> None:
        if self.client is None:
            return self._error("You are not connected.")
        self._ask("release", self.client.release(qid), model.id, qid)

    def _last_own(self, model: RoomModel) -> int | None:
        own = [i for i, s in model.shown.items() if s.own and not s.removed]
        return max(own) if own else None

    def _in_edit_window(self, shown: Shown) -> bool:
        return shown.ts is not None and self.wall() - shown.ts < EDIT_WINDOW

    def _where_id(self, target) -> str | None:
        return target if type(target) is str and self.rooms.get(target) is not None else None

    def _shown(self, model: RoomModel, m, line, mine: bool) -> None:
        """Record a message line for the menus and updates (from _record)."""
        text, _ = _unwrap(m.text)
        model.shown[m.id] = Shown(line, text, m.sender, mine, m.ts)

    def _tombstone(self, by: str, msg_id: int, old=None):
        who = "you" if p.nick_key(by or "") == p.nick_key(self.me) else (self.safe(by) or "an op")
        text = f"message removed by {who}"
        if old is None:
            return Line(SYSTEM, "", "", text, msg_id=msg_id, removed=True)
        return replace(old, text=text, links=(), removed=True, edited=False, action=False, question=False)

    def _for_how_long(self, until: float | None, otherwise: str) -> str:
        return how_long(until, self.wall(), otherwise)

    def _moderated_words(self, e: mod.Moderated, model: RoomModel, ours: bool) -> str:
        return moderated_sentence(e, self.safe(model.label), ours, self.safe, self.wall())

    def _refusal_words(self, kind: str, target, detail, e) -> str:
        model = self.rooms.get(target) if type(target) is str else None
        label = self.safe(model.label) if model is not None else "this room"
        return request_refusal(kind, detail, e.code, e.message, label, self.safe)


def mod_fingerprint(identity: str | None) -> str | None:
    return fingerprint(identity) if identity else None


def _stamp_or(ts) -> str:
    return stamp(ts) if ts is not None else "--:--"


def _unwrap(text: str) -> tuple:
    body = commands.action_body(text)
    return (text, False) if body is None else (body, True)
