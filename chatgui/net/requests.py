"""What the UI can ask of the server: the request half of
:class:`chatgui.net.client.ChatClient`.

Each method checks its arguments the way the server would (a bad room
name, nick or text becomes a ``Refused`` event for its ref, never an
exception; a caller's type bug is a ValueError), builds the frame and
hands it to the client's outbox; it returns the request's ref at once.
Sent now when online, or after the next welcome. Any thread.

The host class provides ``_new_ref()``, ``_refuse(ref, code, message)``
and ``_submit(ref, kind, frame, text=None)``.
"""
from __future__ import annotations

from server import protocol

from chatgui.app.commands import join_surrogates
from chatgui.net import moderation as mod


class Requests:
    """Mixin: the request methods of a chat client (see the module docstring)."""

    def say(self, text: str, room: str = protocol.LOBBY) -> str:
        """Queue a message to ``room``; returns its ref. Sent now, or after the next welcome."""
        ref = self._new_ref()
        text = _text(text)
        try:
            room = protocol.check_room(_text(room))
        except protocol.ProtocolError as e:
            return self._refuse(ref, e.code, e.message)
        # The lobby needs no name: a server without rooms understands that say too.
        to = None if protocol.room_key(room) == protocol.LOBBY else room
        return self._submit(ref, "say", protocol.say_frame(text, ref, to), text=text)

    def join(self, room: str, key: str | None = None, topic: str | None = None) -> str:
        """Queue a join (``topic`` is used if the join creates the room); returns
        its ref. Answered by ``RoomState`` then ``Acked``, or ``Refused``
        (bad_room, bad_key, too_many_rooms)."""
        ref = self._new_ref()
        try:
            room = protocol.check_room(_text(room))
            topic = None if topic is None else protocol.check_topic(_text(topic))
        except protocol.ProtocolError as e:
            return self._refuse(ref, e.code, e.message)
        if key is not None and (type(key) is not str or not 0 < len(key) <= protocol.MAX_ROOM_KEY):
            return self._refuse(ref, protocol.BAD_KEY, f"A room key is 1 to {protocol.MAX_ROOM_KEY} characters.")
        return self._submit(ref, "join", protocol.join_frame(room, _text(key), topic, ref))

    def part(self, room: str) -> str:
        """Queue leaving ``room``; answered by our own ``Left`` then ``Acked``."""
        ref = self._new_ref()
        try:
            room = protocol.check_room(_text(room))
        except protocol.ProtocolError as e:
            return self._refuse(ref, e.code, e.message)
        return self._submit(ref, "part", protocol.part_frame(room, ref))

    def topic(self, room: str, text: str) -> str:
        """Queue setting ``room``'s topic ("" clears it); answered by ``Topic`` then ``Acked``."""
        ref = self._new_ref()
        try:
            room = protocol.check_room(_text(room))
            text = protocol.check_topic(_text(text))
        except protocol.ProtocolError as e:
            return self._refuse(ref, e.code, e.message)
        return self._submit(ref, "topic", protocol.topic_request_frame(room, text, ref))

    def history(self, room: str | None = None, with_: str | None = None, before: int | None = None,
                after: int | None = None, limit: int | None = None) -> str:
        """Queue a request for a page of ``room``'s history, or of the private
        conversation ``with_`` a nick: ``before`` or ``after`` an id, or the
        newest page. Answered by a ``HistoryPage`` with this ref, then
        ``Acked``. Naming both or neither of room and with_, or both of
        before and after, is a ValueError (a caller's bug)."""
        if (room is None) == (with_ is None):
            raise ValueError("history() pages a room or a private conversation (with_): one of them")
        if before is not None and after is not None:
            raise ValueError("history() pages before an id or after one, not both")
        ref = self._new_ref()
        try:
            room = None if room is None else protocol.check_room(_text(room))
            with_ = None if with_ is None else protocol.check_nick(_text(with_))
        except protocol.ProtocolError as e:
            return self._refuse(ref, e.code, e.message)
        return self._submit(ref, "history", protocol.history_request_frame(room, with_, before, after, limit, ref))

    def rooms(self) -> str:
        """Queue a request for every room on the server; answered by a ``RoomList`` then ``Acked``."""
        ref = self._new_ref()
        return self._submit(ref, "rooms", protocol.rooms_request_frame(ref))

    def dm(self, to: str, text: str) -> str:
        """Queue a private message to ``to``; returns its ref."""
        ref = self._new_ref()
        to, text = _text(to), _text(text)
        frame = protocol.dm_request_frame(to, text, ref)
        try:
            protocol.check_nick(to)
        except protocol.ProtocolError as e:
            return self._refuse(ref, e.code, f"Nobody can be called {to!r}: {e.message}")
        return self._submit(ref, "dm", frame, text=text)

    def set_nick(self, nick: str) -> str:
        """Queue a rename; returns its ref. ``Renamed`` + ``Acked`` confirm it."""
        ref = self._new_ref()
        try:
            nick = protocol.check_nick(_text(nick))
        except protocol.ProtocolError as e:
            return self._refuse(ref, e.code, e.message)
        return self._submit(ref, "nick", {"type": "nick", "nick": nick, "ref": ref})

    # -- identity and moderation (issue 11) ---------------------------------

    def forget(self) -> str:
        """Queue releasing our nick's binding to this identity; answered by
        ``Forgotten`` then ``Acked``."""
        ref = self._new_ref()
        return self._submit(ref, "forget", mod.forget_frame(ref))

    def mod(self, room: str, action: str, nick: str, reason: str | None = None,
            duration: int | None = None) -> str:
        """Queue a moderation action on ``nick`` in ``room`` (kick, ban, unban,
        mute, unmute, op, deop, voice, devoice; ``duration`` seconds for a
        timed ban or mute). Answered by ``Moderated`` then ``Acked``, or
        ``Refused`` (forbidden, not_in_room, no_identity, bad_mod ...)."""
        ref = self._new_ref()
        try:
            room = protocol.check_room(_text(room))
            nick = protocol.check_nick(_text(nick))
            reason = None if not reason else protocol.check_text(_text(reason), "reason")
            frame = mod.mod_frame(room, action, nick, reason, duration, ref)
        except protocol.ProtocolError as e:
            return self._refuse(ref, e.code, e.message)
        except ValueError as e:
            return self._refuse(ref, mod.BAD_MOD, str(e))
        return self._submit(ref, "mod", frame)

    def mode(self, room: str, **changes) -> str:
        """Queue setting modes of ``room`` (moderated, questions, announce,
        dm: bool; slow: seconds; key: text, "" to clear). Answered by
        ``ModeChanged`` then ``Acked``."""
        ref = self._new_ref()
        try:
            room = protocol.check_room(_text(room))
            if type(changes.get("key")) is str:
                changes["key"] = _text(changes["key"])
            frame = mod.mode_frame(room, changes, ref)
        except protocol.ProtocolError as e:
            return self._refuse(ref, e.code, e.message)
        except ValueError as e:
            return self._refuse(ref, mod.BAD_MOD, str(e))
        return self._submit(ref, "mode", frame)

    def delete(self, msg_id: int, reason: str | None = None) -> str:
        """Queue removing message ``msg_id``; answered by ``Deleted`` then ``Acked``."""
        ref = self._new_ref()
        _message_id(msg_id)
        try:
            reason = None if not reason else protocol.check_text(_text(reason), "reason")
        except protocol.ProtocolError as e:
            return self._refuse(ref, e.code, e.message)
        return self._submit(ref, "delete", mod.delete_frame(msg_id, reason, ref))

    def edit(self, msg_id: int, text: str) -> str:
        """Queue replacing the text of our message ``msg_id``; answered by
        ``Edited`` then ``Acked`` (``edit_window`` once it is too late)."""
        ref = self._new_ref()
        _message_id(msg_id)
        text = _text(text)
        return self._submit(ref, "edit", mod.edit_frame(msg_id, text, ref), text=text)

    def release(self, question_id: int) -> str:
        """Queue releasing a question to its room; answered by the released
        message (a ``MarkedMessage`` with ``released_from``) then ``Acked``."""
        ref = self._new_ref()
        _message_id(question_id)
        return self._submit(ref, "release", mod.release_frame(question_id, ref))

    def audit(self, room: str, before: int | None = None) -> str:
        """Queue asking for ``room``'s moderation trail (the page older than
        the event id ``before``, if given); answered by ``Audit`` then ``Acked``."""
        ref = self._new_ref()
        try:
            room = protocol.check_room(_text(room))
        except protocol.ProtocolError as e:
            return self._refuse(ref, e.code, e.message)
        return self._submit(ref, "audit", mod.audit_frame(room, before, ref))

    # -- files (issue 12) -------------------------------------------------

    def upload(self, name: str, size: int, sha256: str, mime: str, room: str | None = None,
               to: str | None = None, thumb: str | None = None) -> str:
        """Queue the offer of a file to ``room`` or to the person ``to``
        (``thumb``: base64 PNG). Answered by :class:`server.protocol.UploadReady`
        with this ref then ``Acked``, or ``Refused`` (file_too_large,
        quota_full, forbidden...). The bytes go on :meth:`open_transfer`."""
        ref = self._new_ref()
        try:
            room = None if room is None else protocol.check_room(_text(room))
            to = None if to is None else protocol.check_nick(_text(to))
            if (room is None) == (to is None):
                raise ValueError("a file goes to a room or to a person: one of them")
            name = protocol.check_file_name(_text(name))
            frame = protocol.upload_frame(name, size, sha256, mime, room, to, thumb, ref)
        except protocol.ProtocolError as e:
            return self._refuse(ref, e.code, e.message)
        return self._submit(ref, "upload", frame)


def _message_id(value) -> None:
    """A message id from the UI: a caller's bug otherwise (ValueError)."""
    if type(value) is not int or value < 0:
        raise ValueError("a message id is an int >= 0")


def _text(value):
    """A string from the UI with Tk's surrogate halves joined (see commands)."""
    return join_surrogates(value) if type(value) is str else value
