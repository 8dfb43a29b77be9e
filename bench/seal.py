#!/usr/bin/env python3
"""The cost of sealing a hub pass per member (server.core.fanout.Pass.seal), no sockets.

    .venv/bin/python bench/seal.py

One message per room per pass, 50 passes, for one room of 10 000 members
and for 20 rooms of 50: microseconds of the hub thread per member that
gets its share (the blob it shares is built once per room and encoder).
"""
from __future__ import annotations

import os
import sys
import time

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from server.core.fanout import Out, Pass  # noqa: E402
from server.core.rooms import Room  # noqa: E402
from server.doors.jsonl import JSONL_V1  # noqa: E402
from server.store import RoomRecord  # noqa: E402


class Member:
    __slots__ = ("encoder", "cursor", "held")

    def __init__(self):
        self.encoder, self.cursor, self.held = JSONL_V1, None, None


def per_member_us(n_rooms: int, members: int, passes: int = 50) -> float:
    rooms = [Room(RoomRecord(f"r{i}", f"r{i}")) for i in range(n_rooms)]
    fan = Pass()
    for i in range(members * n_rooms):
        fan.join(rooms[i % n_rooms], Member())
    shares = 0
    t0 = time.perf_counter()
    for p in range(passes):
        for k, room in enumerate(rooms):
            msg_id = p * n_rooms + k + 1
            fan.broadcast(Out.of({"type": "message", "id": msg_id, "text": "x", "room": room.name}, msg_id), [room])
        shares += sum(1 for _ in fan.seal())
    return (time.perf_counter() - t0) / shares * 1e6


def main() -> int:
    for n_rooms, members in ((1, 10_000), (20, 50)):
        best = min(per_member_us(n_rooms, members) for _ in range(3))
        print(f"{n_rooms} room(s) of {members}: {best:.2f} us per member (best of 3)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
