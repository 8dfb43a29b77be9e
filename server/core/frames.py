"""Stored events as the frames clients get: the same frame live, in a replay
and in a history page."""
from __future__ import annotations

from .. import protocol as p
from ..store import DIRECT, MESSAGE, TOPIC
from .redaction import stored_frame

_V2_KINDS = (MESSAGE, DIRECT, TOPIC)


def event_frame(event, session: int | None, rooms: dict) -> dict:
    """The wire frame of a stored event for ``session``: the sender's own
    session gets its ref back, so a client that lost an acknowledgement in
    a disconnect knows its message arrived and does not send it again.
    ``rooms`` maps room keys to rooms (for the name a room was created with)."""
    ref = event.ref if event.ref is not None and session is not None and session == event.from_session else None
    if event.extra is not None or event.kind not in _V2_KINDS:     # issue 11's kinds, edited or released messages
        room = rooms.get(event.room)
        return stored_frame(event, session, room.name if room is not None else event.room, ref)
    if event.kind == DIRECT:
        return p.dm_frame(event.id, event.ts, event.sender, event.recipient, event.text, ref)
    room = rooms.get(event.room)
    name = room.name if room is not None else event.room
    if event.kind == TOPIC:
        return p.topic_frame(name, event.text, event.sender, event.id, event.ts, ref)
    return p.message_frame(event.id, event.ts, event.sender, event.text, ref, name)
