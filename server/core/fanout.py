"""One hub pass's output: which client gets which frames, blobs shared.

Fan-out cost is deliveries, so a pass does not copy each frame into each
member's queue. During a pass the core appends :class:`Out` frames to one
list, each broadcast to some rooms (:meth:`Pass.broadcast`) or queued for
one client (:meth:`Pass.unicast`). At the end of the pass,
:meth:`Pass.seal` gives every member of the busy rooms its share: members
with the same busy rooms and the same encoder share one blob (a room of a
thousand gets one ``b"".join``); only members who joined or left a room
mid-pass, or who have frames of their own in the pass (their message with
its ``ref``, a private message, an error), get a share of their own. In a
big pass a personal share is memoryviews of the shared blob around the
member's own frames, so forty senders in one pass do not make forty copies.

Order is exact: a member's share is the pass's frames in the order they
were queued, those of its rooms only (a frame sent to several of them,
``renamed``, once), with its own frames at the point they were queued. So
ids strictly increase in every client's stream, across rooms too, and a
client that resumes from the last id it saw misses nothing.

A client that is catching up (:mod:`server.core.catchup`) is present in its
rooms but not in their fan-out: frames with an id reach it through its
catch-up cursor, which reads the store, so a broadcast gives it only the
frames without an id (``joined``, ``left``, ...), as frames of its own. A
client whose welcome is not out yet gets nothing of a broadcast (its
welcome is built after the pass, from the state then); frames for it alone
wait until just after its welcome.

Encoders: a member's ``encoder`` turns an :class:`Out` into its bytes (the
JSON-lines door's, ``server.doors.jsonl``; the IRC and text doors' in
``server.doors.irc.session`` and ``server.doors.text.session``). A blob is
built once per encoder; an encoder that writes a pass's frames exactly as
their JSON lines (:meth:`lines_only`) shares the plain blob. The IRC and
text doors' encoders are one per connection (what a client is sent
depends on what it was told: its rooms, its nick), so they cache what is
the same for many of them on the frame itself (``Out.cache``, by
variant): a room message becomes PRIVMSG lines once per set of IRC tag
capabilities, not once per member. Such an encoder says ``per_client``:
it sees each frame once, in order (no blob is built beside a share).

Thread: the hub thread only.
"""
from __future__ import annotations

import bisect
import itertools
from collections import Counter

from .. import protocol as p

VIEW_MIN = 64 * 1024    # a pass this big shares its blob with personal shares too
_UNSET = object()
RAW = "_raw"            # the kind of an Out that holds a door's own bytes (Out.raw)


def encoded(conn, out: "Out") -> bytes:
    """``out`` as ``conn``'s bytes: its JSON line, or its encoder's."""
    enc = conn.encoder
    return out.line if enc.lines_only((out.kind,)) else enc.encode(out)


class Out:
    """One frame for clients: its dict, its JSON line, and its id (None for a
    frame that is not a stored event: ``joined``, an error...)."""

    __slots__ = ("frame", "line", "id", "kind", "cache")

    def __init__(self, frame: dict, line: bytes, id: int | None = None):
        self.frame = frame
        self.line = line
        self.id = id
        self.kind = frame["type"]
        self.cache = None       # an encoder's own bytes of this frame, by its variant (see encoded)

    @classmethod
    def of(cls, frame: dict, id: int | None = None) -> "Out":
        return cls(frame, p.encode(frame), id)

    @classmethod
    def raw(cls, data: bytes) -> "Out":
        """Bytes a door wrote itself for its client (an IRC numeric, a text
        line): in the client's stream in order with the core's frames."""
        return cls({"type": RAW}, data)

    def with_ref(self, ref: str) -> "Out":
        """The same frame with "ref" added: the sender's acknowledgement."""
        return Out(dict(self.frame, ref=ref), self.line[:-2] + b',"ref":' + p.encode(ref)[:-1] + b"}\n", self.id)


class Pass:
    def __init__(self):
        self.frames: list[Out] = []
        self.kinds: set = set()       # frame types queued in this pass
        self._busy: dict = {}         # room -> indexes of the frames broadcast to it
        self._custom: dict = {}       # client -> [(index, Out, replaces the frame at index)]
        self._late: list = []         # (room, client): joined mid-pass (start index > 0)
        self._gone: dict = {}         # client -> [(room, start, end)]: left busy rooms mid-pass

    @property
    def busy(self) -> bool:
        return bool(self.frames or self._custom)

    def has_output(self, conn) -> bool:
        return conn in self._custom

    # -- queueing (during the pass) ------------------------------------------

    def broadcast(self, out: Out, rooms, sender=None, sender_out: Out | None = None) -> None:
        """Queue a frame for everyone in these rooms (once each); ``sender``
        gets ``sender_out`` in its place (its acknowledgement, with its ref)."""
        index = len(self.frames)
        self.frames.append(out)
        self.kinds.add(out.kind)
        direct = out.id is None
        seen = set() if len(rooms) > 1 else None
        live_sender = False
        for room in rooms:
            indexes = self._busy.get(room)
            if indexes is None:
                self._busy[room] = [index]
            else:
                indexes.append(index)
            if sender is not None and sender in room.members:
                live_sender = True
            if direct and room.waiting:
                for conn in room.waiting:
                    if conn is not sender and (seen is None or conn not in seen):
                        if seen is not None:
                            seen.add(conn)
                        self._queue(conn, out, False)
        if sender_out is not None:
            if live_sender:
                self._queue(sender, sender_out, True)
            else:
                self.unicast(sender, sender_out)

    def unicast(self, conn, out: Out) -> None:
        """Queue a frame for one client, after everything queued so far."""
        if out.id is not None and conn.cursor is not None:
            return              # it is catching up: its cursor brings every event with an id
        if conn.held is not None:
            conn.held.append(out)    # its welcome is not out yet
            return
        self._queue(conn, out, False)

    def _queue(self, conn, out: Out, replaces: bool) -> None:
        self.kinds.add(out.kind)
        entry = (len(self.frames) - 1 if replaces else len(self.frames), out, replaces)
        mine = self._custom.get(conn)
        if mine is None:
            self._custom[conn] = [entry]
        else:
            mine.append(entry)

    def join(self, room, conn) -> None:
        """conn joins the fan-out of room now: it gets the broadcasts from here on."""
        start = len(self.frames)
        room.members[conn] = start
        if start:
            self._late.append((room, conn))

    def part(self, room, conn) -> None:
        """conn leaves the fan-out of room now; it still gets what was broadcast before."""
        start = room.members.pop(conn, None)
        if start is not None and room in self._busy and start < len(self.frames):
            self._gone.setdefault(conn, []).append((room, start, len(self.frames)))

    def forget(self, conn) -> None:
        """conn gets nothing more of this pass (it is being dropped)."""
        self._custom.pop(conn, None)
        self._gone.pop(conn, None)

    def discard(self) -> None:
        """Forget everything queued in this pass (it must not be sent)."""
        self._reset()

    def _reset(self) -> None:
        for room, conn in self._late:
            if conn in room.members:
                room.members[conn] = 0
        self.frames, self.kinds, self._busy, self._custom, self._late, self._gone = [], set(), {}, {}, [], {}

    # -- the end of the pass --------------------------------------------------

    def seal(self):
        """Yield (client, data, shared) for every client with output, and
        start the next pass. data is bytes, or a list of bytes and
        memoryviews of a shared blob (Outbox.push_parts); shared says data
        is a blob that other clients get too."""
        frames, busy, custom, gone = self.frames, self._busy, self._custom, self._gone
        kinds = self.kinds
        if not frames and not custom:
            self._reset()
            return
        encoders: dict = {}  # a client's encoder -> the one its blobs use (None: the JSON lines as they are)
        # The common case first, at a cost of a few dict lookups per member: a
        # member of one busy room for the whole pass shares that room's blob.
        # The others (in several busy rooms, joined or left mid-pass) are
        # gathered in ranges: client -> [(room, start, end)].
        counts = Counter(itertools.chain.from_iterable(room.members for room in busy)) if len(busy) > 1 else None
        ranges: dict = {}
        for room, indexes in busy.items():
            per_encoder: dict = {}    # encoder -> [blob, indexes, offsets] of this room
            for conn, start in room.members.items():
                if (start or (counts is not None and counts[conn] > 1) or conn in gone
                        or conn.encoder.per_client):   # a door's: each frame encoded once, below
                    ranges.setdefault(conn, []).append((room, start, None))
                    continue
                enc = conn.encoder
                e = encoders.get(enc, _UNSET)
                if e is _UNSET:
                    e = encoders[enc] = None if enc.lines_only(kinds) else enc
                shared = per_encoder.get(e)
                if shared is None:
                    shared = per_encoder[e] = [_join(frames, indexes, e), indexes, None]
                own = custom.pop(conn, None) if custom else None
                if own is None:
                    if shared[0]:
                        yield conn, shared[0], True
                    continue
                yield conn, _personal(frames, indexes, own, e, shared), False
        for conn, left in gone.items():
            ranges.setdefault(conn, []).extend(left)
        blobs: dict = {}    # (rooms, encoder) -> [blob, indexes, offsets]
        for conn, mine in ranges.items():
            plain = True              # a member of each room for the whole pass
            for room, start, end in mine:
                if start or end is not None:
                    plain = False
                    break
            enc = conn.encoder
            if enc.lines_only(kinds):
                enc = None
            own = custom.pop(conn, None)
            if plain:
                key = (tuple(room for room, _, _ in mine), enc)
                shared = blobs.get(key)
                if shared is None:
                    shared = blobs[key] = [None, _merge([busy[room] for room, _, _ in mine]), None]
                if shared[0] is None and (own is None or enc is None or not enc.per_client):
                    shared[0] = _join(frames, shared[1], enc)
                if own is None:
                    if shared[0]:
                        yield conn, shared[0], True
                    continue
                # Its own frames in the shared ones: views of the blob,
                # but a door's encoder is one client's and keeps its state
                # (per_client): it encodes each frame once, here.
                yield conn, _personal(frames, shared[1], own, enc, shared if shared[0] is not None else None), False
            else:
                indexes = _merge([_between(busy[room], start, end) for room, start, end in mine])
                data = _personal(frames, indexes, own or [], enc)
                if data:
                    yield conn, data, False
        for conn, own in custom.items():      # clients in no busy room: their own frames only
            enc = None if conn.encoder.lines_only(kinds) else conn.encoder
            data = b"".join([out.line if enc is None else enc.encode(out) for _, out, _ in own])
            if data:
                yield conn, data, False
        self._reset()


def _between(indexes: list, start: int, end: int | None) -> list:
    """The indexes (ascending) from ``start`` up to ``end`` (None: to the last)."""
    lo = bisect.bisect_left(indexes, start) if start else 0
    return indexes[lo:] if end is None else indexes[lo:bisect.bisect_left(indexes, end, lo)]


def _merge(lists: list) -> list:
    """Indexes of several rooms in order, each once."""
    if len(lists) == 1:
        return lists[0]
    return sorted(set(itertools.chain.from_iterable(lists)))


def _join(frames: list, indexes: list, enc) -> bytes:
    if enc is None:
        return b"".join([frames[i].line for i in indexes])
    return b"".join([enc.encode(frames[i]) for i in indexes])


def _personal(frames: list, indexes: list, own: list, enc, shared: list | None = None):
    """A client's share: the frames at ``indexes`` with its own frames
    inserted (or in place of the frame they replace). Views of the shared
    blob of those indexes (``shared``) when it is big, else one bytes."""
    if shared is not None and len(shared[0]) >= VIEW_MIN:
        blob = shared[0]
        offsets = shared[2]
        if offsets is None:
            line = (lambda i: frames[i].line) if enc is None else (lambda i: enc.encode(frames[i]))
            offsets = shared[2] = list(itertools.accumulate((len(line(i)) for i in indexes), initial=0))
        view = memoryview(blob)
        parts = []
        pos = 0                                  # position in indexes
        for index, out, replaces in own:
            k = bisect.bisect_left(indexes, index, pos)
            if k > pos:
                parts.append(view[offsets[pos]:offsets[k]])
            parts.append(out.line if enc is None else enc.encode(out))
            pos = k + 1 if replaces and k < len(indexes) and indexes[k] == index else k
        if pos < len(indexes):
            parts.append(view[offsets[pos]:])
        return parts
    parts = []
    pos = 0
    for index, out, replaces in own:
        k = bisect.bisect_left(indexes, index, pos)
        parts.extend(frames[i].line if enc is None else enc.encode(frames[i]) for i in indexes[pos:k])
        parts.append(out.line if enc is None else enc.encode(out))
        pos = k + 1 if replaces and k < len(indexes) and indexes[k] == index else k
    parts.extend(frames[i].line if enc is None else enc.encode(frames[i]) for i in indexes[pos:])
    return b"".join(parts)
