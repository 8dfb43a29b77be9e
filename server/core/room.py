"""A room: its members and the frames queued for them during one hub pass.

Fan-out cost is deliveries, so a room does not copy each frame into each
member's queue. During a pass it appends encoded frames to one list; at the
end of the pass :meth:`Room.seal` joins them into one blob that every member
with nothing special shares. Only members who joined mid-pass, or who have a
personal frame in the pass (their own message with its ``ref``, a private
message, an error), get a blob of their own.

Order is exact: a member receives the frames broadcast after it joined, with
its personal frames at the point they were queued. In a big pass a personal
share is memoryviews of the shared blob around the member's own frames, so
forty senders in one pass do not make forty copies of it.

Thread: the hub thread only.
"""
from __future__ import annotations

import itertools

VIEW_MIN = 64 * 1024    # a pass this big shares its blob with personal shares too


class Room:
    __slots__ = ("name", "members", "_frames", "_custom", "_late")

    def __init__(self, name: str):
        self.name = name
        # member -> index in _frames where its share of this pass starts
        self.members: dict = {}
        self._frames: list[bytes] = []
        # member -> [(index, data, replaces_frame_at_index)] for this pass
        self._custom: dict = {}
        self._late: list = []   # members whose start index is not 0

    def __len__(self) -> int:
        return len(self.members)

    def __contains__(self, member) -> bool:
        return member in self.members

    def add(self, member) -> None:
        start = len(self._frames)
        self.members[member] = start
        if start:
            self._late.append(member)

    def remove(self, member) -> bytes:
        """Forget a member; returns its own frames queued in this pass (its
        acknowledgements, an error before a disconnect) so the caller can
        still deliver them. Others' broadcasts of this pass are not: it is
        leaving, and handing them over would make a mass disconnect cost
        members x frames."""
        self.members.pop(member, None)
        mine = self._custom.pop(member, None)
        return b"".join(data for _, data, _ in mine) if mine else b""

    def broadcast(self, data: bytes, sender=None, sender_data: bytes | None = None) -> None:
        """Queue a frame for every member; ``sender`` gets ``sender_data``
        in its place when given (its acknowledgement, with its ref)."""
        if sender_data is not None and sender in self.members:
            self._custom.setdefault(sender, []).append((len(self._frames), sender_data, True))
        self._frames.append(data)

    def unicast(self, member, data: bytes) -> None:
        """Queue a frame for one member, after everything queued so far."""
        self._custom.setdefault(member, []).append((len(self._frames), data, False))

    def discard(self) -> None:
        """Forget what was queued in this pass (it must not be sent)."""
        self._frames, self._custom = [], {}
        for member in self._late:
            if member in self.members:
                self.members[member] = 0
        self._late = []

    @property
    def busy(self) -> bool:
        return bool(self._frames or self._custom)

    def seal(self):
        """End the pass: yield (member, data, shared) for each member with
        output. data is bytes, or a list of bytes and memoryviews of the
        shared blob (delivery.Outbox.push_parts); shared says data is the blob that
        other members get too."""
        frames, custom = self._frames, self._custom
        if not frames and not custom:
            return
        self._frames, self._custom = [], {}
        blob = b"".join(frames)
        offsets = None
        members = self.members
        for member, start in members.items():
            mine = custom.get(member) if custom else None
            if mine is not None:
                if len(blob) < VIEW_MIN:
                    yield member, _personal(frames, start, mine), False
                else:
                    if offsets is None:
                        offsets = list(itertools.accumulate(map(len, frames), initial=0))
                    yield member, _personal_views(memoryview(blob), offsets, start, mine), False
            elif start == 0:
                if blob:
                    yield member, blob, True
            elif start < len(frames):
                yield member, b"".join(frames[start:]), False
        for member in self._late:
            if member in members:
                members[member] = 0
        self._late = []


def _personal_views(blob: memoryview, offsets: list, start: int, custom: list) -> list:
    """As _personal, but the shared runs are views of the pass's blob."""
    parts = []
    pos = start
    for index, data, replaces in custom:
        if index > pos:
            parts.append(blob[offsets[pos]:offsets[index]])
        parts.append(data)
        pos = index + 1 if replaces else index
    if pos < len(offsets) - 1:
        parts.append(blob[offsets[pos]:])
    return parts


def _personal(frames: list[bytes], start: int, custom: list) -> bytes:
    parts = []
    pos = start
    for index, data, replaces in custom:
        parts.extend(frames[pos:index])
        parts.append(data)
        pos = index + 1 if replaces else index
    parts.extend(frames[pos:])
    return b"".join(parts)
