"""Questions, delete, edit, release and audit: changes to messages already sent.

- In a ``questions`` room a member's ``say`` is stored as a ``question``:
  only the room's ops and its author see it (live, in catch-up and in
  history, :meth:`RedactionRules.hidden_from`). An op's ``release`` stores
  it again as a message to everyone, with ``released_by`` and ``question``.
- ``delete``: the author within the edit window, or an op of the room, at
  any time. The row's text is erased in the file (:meth:`Store.erase`); the
  row stays as a tombstone, shown in history and catch-up as ``deleted``
  in the message's place; a new event (kind ``delete``, its own id, the
  ``seq`` of the frame) carries the change to live clients and catch-ups.
- ``edit``: the author within ``--edit-window``: the row gets the new text
  and ``edited_ts``; an ``edit`` event carries it (``edited``, with ``seq``).
- Private messages: their author may delete or edit them; the frames carry
  ``with`` (the other side, for each receiver) instead of ``room``.
- ``audit``: an op reads the room's last 200 moderation events (mods,
  modes, deletions by someone other than the author), newest last.

The author is the session that sent the message.

Thread: the hub thread only.
"""
from __future__ import annotations

import json

from .. import protocol as p
from ..store import DIRECT, MESSAGE
from ..store.moderation import DELETE, DELETED, EDIT, MODE, QUESTION
from .fanout import Out
from .moderation import moderation_frame

AUDIT_ENTRIES = 200


def _extra(event) -> dict:
    return json.loads(event.extra) if event.extra else {}


def _with(event, session, author: str) -> str:
    """The other side of a private conversation for the receiver ``session``."""
    return event.recipient if session == event.from_session else author


def stored_frame(event, session, name: str, ref) -> dict:
    """The frame of a stored event of the kinds of issue 11, or of a message
    an edit or a release gave extra fields (``event_frame`` calls it)."""
    kind, extra = event.kind, _extra(event)
    if kind in (MESSAGE, QUESTION):
        f = p.message_frame(event.id, event.ts, event.sender, event.text, ref, name)
        if kind == QUESTION:
            f["question"] = True
        for k in ("released_by", "question", "edited_ts", "file"):
            if k in extra:
                f[k] = extra[k]
        return f
    if kind == DIRECT:
        f = p.dm_frame(event.id, event.ts, event.sender, event.recipient, event.text, ref)
        for k in ("edited_ts", "file"):
            if k in extra:
                f[k] = extra[k]
        return f
    dm = event.recipient is not None
    if kind == DELETED:      # the tombstone, in the message's place
        return p.deleted_frame(event.id, extra.get("by", ""), room=None if dm else name,
                               with_=_with(event, session, event.sender) if dm else None)
    if kind == DELETE:       # the deleter's (editor's) own session: with its ref, its acknowledgement
        f = p.deleted_frame(extra["id"], event.sender, room=None if dm else name,
                            with_=_with(event, session, extra.get("author", "")) if dm else None, seq=event.id)
        return dict(f, ref=ref) if ref is not None else f
    if kind == EDIT:
        f = p.edited_frame(extra["id"], event.text, event.ts, room=None if dm else name,
                           with_=_with(event, session, event.sender) if dm else None, seq=event.id)
        return dict(f, ref=ref) if ref is not None else f
    return moderation_frame(event, name)


class RedactionRules:
    """questions, release, delete, edit, audit (mixed into Chat)."""

    def asked(self, conn, room, say: p.Say) -> bool:
        """In a questions room a member's say becomes a question: True when it did."""
        if not self.mod_of(room.key).modes["questions"] or self.is_op(conn, room):
            return False
        q_id, ts = self.store.add_event(QUESTION, room.key, conn.nick, say.text, conn.session, ref=say.ref)
        out = Out.of(dict(p.message_frame(q_id, ts, conn.nick, say.text, room=room.name), question=True), q_id)
        self._to_question_audience(room, conn, out, say.ref)
        return True

    def _to_question_audience(self, room, author_conn, out: Out, ref=None) -> None:
        """A frame about a question: to the room's ops and to the connection that asked it."""
        for c in room.people:
            if c is author_conn:
                self.fanout.unicast(c, out.with_ref(ref) if ref is not None else out)
            elif self.is_op(c, room):
                self.fanout.unicast(c, out)

    def hidden_from(self, conn, event) -> bool:
        """A question (or an edit of one) that conn may not see."""
        if event.kind == QUESTION or (event.kind == EDIT and _extra(event).get("question")):
            if event.from_session == conn.session and event.kind == QUESTION:
                return False
            if event.kind == EDIT and _extra(event).get("author_session") == conn.session:
                return False
            room = self.rooms.get(event.room)
            return room is None or not self.is_op(conn, room)
        return False

    def _message(self, conn, msg_id: int, ref):
        """The committed message (room message, question or dm) conn may see, or None (conn told)."""
        self.store.commit()     # a message of this very pass counts too
        e = self.store.get_event(msg_id)
        if e is not None and e.kind in (MESSAGE, QUESTION) and not self.hidden_from(conn, e):
            room = self.rooms.get(e.room)
            if room is not None and conn in room.people:
                return e, room
            if room is not None:
                self._present(conn, room.name, ref)
                return None
        elif e is not None and e.kind == DIRECT and conn.session in (e.from_session, e.to_session):
            return e, None
        self.error(conn, p.ProtocolError(p.NO_SUCH_MESSAGE, f"There is no message {msg_id} you can see (it may "
                                                            "have been deleted).", ref), counts=False)
        return None

    def _send_change(self, conn, e, room, out_of, ref) -> None:
        """A deleted/edited frame (``out_of(session)`` -> Out) to those who saw e."""
        if room is None:                     # a private message: its two ends, wherever online
            for c in list(self.nicks.values()):
                if c.session in (e.from_session, e.to_session):
                    out = out_of(c.session)
                    self.fanout.unicast(c, out.with_ref(ref) if c is conn and ref is not None else out)
            return
        out = out_of(conn.session)
        if e.kind == QUESTION:
            for c in room.people:
                if c is conn or self.is_op(c, room) or c.session == e.from_session:
                    self.fanout.unicast(c, out.with_ref(ref) if c is conn and ref is not None else out)
            return
        self.fanout.broadcast(out, [room], conn, out.with_ref(ref) if ref is not None else None)

    def _routing(self, e) -> dict:
        return {"recipient": e.recipient, "to_session": e.to_session} if e.recipient is not None else {}

    def _target(self, conn, ask, what: str):
        """(e, room, mine) for a delete/edit of ``ask.id``, or None once the
        client was told why not (v1, no such message)."""
        if not self._v2(conn, ask, what):
            return None
        found = self._message(conn, ask.id, ask.ref)
        if found is None:
            return None
        e, room = found
        return e, room, e.from_session is not None and e.from_session == conn.session

    def on_delete(self, conn, ask: p.Delete) -> None:
        target = self._target(conn, ask, "delete")
        if target is None:
            return
        e, room, mine = target
        op = room is not None and self.is_op(conn, room)
        if not op and not self._author_in_window(conn, e, mine, "delete", ask.ref):
            return
        self.file_deleted(e)        # a file's message: its bytes go too (server.core.files)
        self.store.erase(e, {"by": conn.nick, "author": e.sender})
        extra = {"id": e.id, "author": e.sender, "reason": ask.reason, "self": mine}
        # The ref goes into the log too: a shared store's deleter gets its copy with it (server.core.feed).
        seq, _ = self.store.add_event(DELETE, e.room, conn.nick, "", e.from_session if room is None else conn.session,
                                      extra, ref=ask.ref, **self._routing(e))
        name = room.name if room is not None else None

        def out_of(session):
            return Out.of(p.deleted_frame(e.id, conn.nick, room=name,
                                          with_=_with(e, session, e.sender) if room is None else None, seq=seq), seq)
        self._send_change(conn, e, room, out_of, ask.ref)

    def _author_in_window(self, conn, e, mine: bool, what: str, ref) -> bool:
        if not mine:
            self.error(conn, p.ProtocolError(p.FORBIDDEN, f"Only the author of a message (or an op of its room) may "
                                                          f"{what} it.", ref), counts=False)
            return False
        window = self.config.edit_window
        if self.clock() - e.ts > window:
            self.error(conn, p.ProtocolError(p.EDIT_WINDOW, f"A message can be changed for {window:g} s after it "
                                                            "was sent; this one is older.", ref), counts=False)
            return False
        return True

    def on_edit(self, conn, ask: p.Edit) -> None:
        target = self._target(conn, ask, "edit")
        if target is None:
            return
        e, room, mine = target
        if not self._author_in_window(conn, e, mine, "edit", ask.ref):
            return
        extra = {"id": e.id}
        if e.kind == QUESTION:
            extra.update(question=True, author_session=e.from_session)
        seq, ts = self.store.add_event(EDIT, e.room, conn.nick, ask.text, e.from_session, extra, ref=ask.ref,
                                       **self._routing(e))
        self.store.replace_text(e.id, ask.text, dict(_extra(e), edited_ts=ts))
        name = room.name if room is not None else None

        def out_of(session):
            return Out.of(p.edited_frame(e.id, ask.text, ts, room=name,
                                         with_=_with(e, session, e.sender) if room is None else None, seq=seq), seq)
        self._send_change(conn, e, room, out_of, ask.ref)

    def on_release(self, conn, ask: p.Release) -> None:
        if not self._v2(conn, ask, "release"):
            return
        found = self._message(conn, ask.id, ask.ref)
        if found is None:
            return
        e, room = found
        if room is None or not self.may_act(conn, room, "op", "release questions", ask.ref):
            return
        if e.kind != QUESTION:
            return self.error(conn, p.ProtocolError(p.NO_SUCH_MESSAGE, f"Message {ask.id} is not a question.",
                                                    ask.ref), counts=False)
        extra = {"released_by": conn.nick, "question": e.id}
        msg_id, ts = self.store.add_event(MESSAGE, room.key, e.sender, e.text, e.from_session, extra)
        room.last_id = msg_id
        f = p.message_frame(msg_id, ts, e.sender, e.text, room=room.name)
        f.update(extra)
        out = Out.of(f, msg_id)
        self.fanout.broadcast(out, [room], conn, out.with_ref(ask.ref) if ask.ref is not None else None)

    def on_audit(self, conn, ask: p.Audit) -> None:
        if not self._v2(conn, ask, "audit"):
            return
        room = self._present(conn, ask.room, ask.ref)
        if room is None or not self.may_act(conn, room, "op", "read its audit", ask.ref):
            return
        self.store.commit()
        events = self.store.audit_events(room.key, lambda e: e.kind != DELETE or not _extra(e).get("self"),
                                         AUDIT_ENTRIES + 1, ask.before)
        more = len(events) > AUDIT_ENTRIES
        events = events[-AUDIT_ENTRIES:]
        self.send(conn, p.audit_frame(room.name, [dict(_entry(e), event=e.id) for e in events], more, ask.ref))


def _entry(e) -> dict:
    extra = _extra(e)
    if e.kind == MODE:
        return {"ts": e.ts, "by": e.sender, "action": "mode", "nick": None, "reason": None,
                "modes": extra["changed"]}
    if e.kind == DELETE:
        return {"ts": e.ts, "by": e.sender, "action": "delete", "nick": extra.get("author"),
                "reason": extra.get("reason"), "id": extra["id"]}
    return {"ts": e.ts, "by": extra["by"], "action": extra["action"], "nick": extra["nick"],
            "reason": extra["reason"], "until": extra["until"]}
