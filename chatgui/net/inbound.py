"""What the server's frames mean for the UI's event queue: each message
shown once, our queued items acknowledged by their ``ref``, and the
catch-up after a welcome followed to its end (see :mod:`chatgui.net.events`
for the order it produces).

:class:`Inbound` is pure (no sockets, no threads, no lock): the network
client calls it on its reader thread with its own lock held, and puts the
events each method returns on the queue, in order.

The catch-up of a server with rooms (protocol v2) comes after the welcome:
``room`` frames, ``replay`` frames, then ``caught_up``. Until then our
unacknowledged items must not be sent again, since the replay may show the
server already has them (:attr:`Inbound.replaying`); and the last id seen
only moves as replayed messages arrive, so a connection lost in the middle
resumes from where the replay had got to.
"""
from __future__ import annotations

import dataclasses

from server import protocol

from chatgui.net import events as ev
from chatgui.net import moderation as mod
from chatgui.net.outbox import Outbox, SeenIds

ROOM_KINDS = frozenset({"join", "part", "topic", "history", "rooms"})
NO_ROOMS = "no_rooms"
NO_ROOMS_MESSAGE = ("This server has only one room (it runs an older version of Natter): rooms, topics "
                    "and older history need a newer server.")
_SHOWN = (protocol.Message, protocol.Direct, protocol.Topic,
          mod.Moderated, mod.ModeChanged, mod.Deleted, mod.Edited)


def needs_rooms(kind: str, frame: dict) -> bool:
    """True for an item only a server with rooms understands (a say to a
    room other than the lobby carries its room)."""
    return kind in ROOM_KINDS or kind in mod.KINDS or (kind == "say" and "room" in frame)


class Inbound:
    def __init__(self, outbox: Outbox, seen: SeenIds):
        self.outbox = outbox
        self.seen = seen
        self.rooms: bool | None = None   # None before the first welcome; True: the server has rooms
        self.replaying = False           # v2: welcomed, caught_up not yet come

    def welcome(self, w: protocol.Welcome) -> list:
        """The events that follow ``Connected`` for this welcome (the history
        check is done). Marks every unacknowledged item to be sent again."""
        out: list = []
        self.rooms = w.replay
        self.replaying = w.replay
        if not w.replay:
            out.append(ev.Backlog(tuple(m for m in w.history if self._new(m)), max(0, w.missed)))
            out += self._acks(w.history)
            self.seen.advance(w.last_id)
            for item in self.outbox.take(lambda item: needs_rooms(item.kind, item.frame)):
                out.append(ev.Refused(item.ref, NO_ROOMS, NO_ROOMS_MESSAGE))
        out += [ev.Acked(ref, None) for ref in self.outbox.drop_noop_renames(w.nick)]
        self.outbox.rewind()
        if not w.replay:
            out.append(ev.CaughtUp(w.last_id))
        return out

    def replay(self, r: protocol.Replay) -> list:
        """A replay frame: its new messages as one Backlog, then the acks."""
        new = tuple(e for e in r.events if isinstance(e, _SHOWN) and self._new(e))
        return ([ev.Backlog(new)] if new else []) + self._acks(r.events)

    def caught_up(self, c: protocol.CaughtUp) -> list:
        self.seen.advance(c.last_id)
        self.replaying = False
        return [ev.CaughtUp(c.last_id)]

    def live(self, event) -> list:
        """A Message, Direct, Topic or stored moderation event as it
        happens: shown once, then its ack."""
        return ([event] if self._new(event) else []) + self._acks((event,))

    def answer(self, event, ref) -> list:
        """The answer to a request of ours (RoomState, Left, HistoryPage,
        RoomList), then its Acked when the ref is one we wait for."""
        out = [event]
        if type(ref) is str and self.outbox.ack(ref) is not None:
            out.append(ev.Acked(ref, None))
        return out

    def upload_ready(self, ready) -> list:
        """The answer to an offer (issue 12), with its ref; from a server
        that does not echo the ref, it answers our oldest offer sent."""
        ref = ready.ref
        if ref is None:
            ref = next((r for r in self.outbox.refs() if self._is_sent_upload(r)), None)
            if ref is not None:
                ready = dataclasses.replace(ready, ref=ref)
        return self.answer(ready, ref)

    def _is_sent_upload(self, ref) -> bool:
        item = self.outbox.get(ref)
        return item is not None and item.kind == "upload" and item.sent

    def _new(self, event) -> bool:
        # A deletion or edit is its own stored event (seq); the id it names is
        # the message's, seen already.
        msg_id = getattr(event, "seq", None) or getattr(event, "id", None)
        return True if msg_id is None else self.seen.add(msg_id)

    def _acks(self, events) -> list:
        return [ev.Acked(e.ref, e.id) for e in events
                if getattr(e, "ref", None) is not None and self.outbox.ack(e.ref) is not None]
