"""Where the history lives: the store the hub appends to and pages from.

The core talks to one small interface, :class:`Store`; :mod:`.sqlite` is
the embedded default (one file, one process), and :mod:`.redis` the store
of a deployment of several servers sharing one Redis (``--redis``). A store must resume gap-free:
ids strictly increase in the order events were appended, are never reused,
and every read sees every committed event.

Every store raises :class:`HistoryError` with a sentence when its history
cannot be used.

Thread: a store belongs to the hub thread.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Protocol

LOBBY = "lobby"            # the room every store has
MESSAGE, DIRECT, TOPIC = "message", "dm", "topic"   # kinds of stored events (later: deleted, edited...)


class HistoryError(Exception):
    """The history file cannot be opened or used; the message says why, as a
    clause that reads after "natter server: " or "Could not host a room: "."""


class Unavailable(Exception):
    """A shared store cannot reach its backend right now: nothing was stored.
    The message is a sentence for the client (``unavailable``); the server
    goes on, and the client sends again later."""


class HistoryInUse(HistoryError):
    """Another server has the history file open; ``pid`` is that process."""

    def __init__(self, path: str, pid: int | None):
        who = f"process {pid}" if pid is not None else "a process that did not say its id"
        super().__init__(f"the history file {path} is in use by another Natter server ({who})")
        self.path = path
        self.pid = pid


class Event:
    """One stored event: a room message, a private message (``recipient``
    set, ``room`` empty) or a topic change (``text`` is the topic, ``sender``
    who set it). ``room`` is the room's key (:func:`server.protocol.room_key`);
    ``ref`` is the sender's, replayed to the sender's session only."""

    __slots__ = ("id", "ts", "room", "sender", "recipient", "text", "from_session", "to_session", "ref",
                 "kind", "extra")

    def __init__(self, id, ts, room, sender, recipient, text, from_session, to_session, ref=None,
                 kind=MESSAGE, extra=None):
        self.id = id
        self.ts = ts
        self.room = room
        self.sender = sender
        self.recipient = recipient
        self.text = text
        self.from_session = from_session
        self.to_session = to_session
        self.ref = ref
        self.kind = kind
        self.extra = extra

    def __repr__(self) -> str:
        return f"<Event {self.id} {self.kind} {self.room or self.recipient!r} {self.text[:20]!r}>"


@dataclass
class RoomRecord:
    """A room as stored: ``key`` its identity, ``name`` as created, the topic
    and who set it when, and ``key_hash`` (a salted SHA-256 of its key, the
    password to join; None for an open room)."""
    key: str
    name: str
    topic: str = ""
    topic_by: str | None = None
    topic_ts: float | None = None
    key_hash: str | None = None
    created: float = 0.0


class Store(Protocol):
    """What the core calls. Appends are pending until :meth:`commit`, which
    writes them in one transaction (and raises, leaving them pending, when it
    cannot); reads see committed events only, so the hub reads after it
    commits. Pages come oldest first.

    A ``shared`` store (several servers append to one log) appends at once
    and raises :class:`Unavailable` when it cannot; the core does not deliver
    what it appends: the store's reader posts every appended event, from
    every server, in log order (:class:`server.core.events.Logged`), and the
    core delivers it then and calls :meth:`advance`. Its ``last_id`` is the
    last id delivered, and its reads stop there. A shared store with
    ``batches`` (the Redis one) also has ``queue_message(owner, sender,
    text, room, session, ref)``, which the core calls for a say instead of
    :meth:`add_message`, and ``flush_appends()``, which the hub calls before
    it commits a pass (and before answering anything else of a client whose
    says wait): it appends them in one round trip and returns ``(owner,
    sentence)`` for each it could not store."""

    path: str
    epoch: str       # the identity of this history: ids are comparable within one epoch
    last_id: int     # the largest id handed out (shared: delivered by this server)
    shared: bool     # events are delivered from the store's reader, not when appended
    history_floor: int   # the ids up to this one are gone (0: none): a since below it is told history_gone

    # -- events
    def add_message(self, sender: str, text: str, room: str = LOBBY, session: int | None = None,
                    ref: str | None = None) -> tuple[int, float]: ...
    def add_direct(self, sender: str, to: str, text: str, from_session: int | None,
                   to_session: int | None, ref: str | None = None) -> tuple[int, float]: ...
    def add_topic(self, room: str, by: str, topic: str, session: int | None,
                  ref: str | None = None) -> tuple[int, float]: ...
    def commit(self) -> int: ...
    @property
    def newest_id(self) -> int: ...      # the largest id in the history (shared: perhaps not delivered yet)
    def advance(self, upto: int) -> None: ...             # shared: the core delivered every id up to here
    def start_reader(self, post) -> None: ...             # shared: post(Logged) from its own thread

    # -- pages (indexes only)
    def page_room(self, room: str, before: int | None = None, after: int | None = None, limit: int = 50,
                  messages_only: bool = False) -> tuple[list[Event], bool]: ...
    def page_direct(self, session: int, peer_key: str, before: int | None = None, after: int | None = None,
                    limit: int = 50) -> tuple[list[Event], bool]: ...
    def catch_up(self, rooms: dict, session: int | None, dm_floor: int | None, after: int,
                 limit: int) -> tuple[list[Event], bool]: ...
    def recent_floor(self, room: str, n: int) -> int: ...
    def last_message_id(self, room: str) -> int: ...
    def first_id_after(self, ts: float, inclusive: bool = False) -> int: ...

    # -- sessions
    def new_session(self) -> tuple[int, str]: ...
    def find_session(self, token: str) -> int | None: ...
    def prune_sessions(self, max_age_days: float, keep=()) -> int: ...
    def session_rooms(self, session: int) -> dict: ...
    def join_room(self, session: int, room: str, read_upto: int) -> None: ...
    def part_room(self, session: int, room: str) -> None: ...
    def mark_read(self, session: int, room: str, upto: int) -> None: ...

    # -- rooms
    def rooms(self) -> list[RoomRecord]: ...
    def create_room(self, record: RoomRecord) -> None: ...
    def update_room(self, record: RoomRecord) -> None: ...
    def find_room(self, key: str) -> RoomRecord | None: ...   # one made since rooms() (by another server)

    # -- the nicks online on every server (None: free for this one)
    def claim_online(self, key: str, nick: str, session: int | None, fp: str | None = None,
                     admin: bool = False) -> str | None: ...
    def release_online(self, key: str) -> None: ...
    def online_holder(self, key: str) -> tuple[str, int | None] | None: ...
    def online_elsewhere(self, key: str) -> tuple | None: ...   # (nick, session, fp, admin) on another server
    def online_nicks(self, here: list) -> list: ...     # ``here``: this server's; returns everyone's

    # -- files (issue 12: the rows of server.store.files.FileRecord; the bytes are FileBlobs')
    def add_file(self, record) -> None: ...
    def set_file_state(self, file_id: str, state: str, completed: float | None = None,
                       msg_id: int | None = None) -> None: ...
    def mark_expired(self, record) -> None: ...
    def get_file(self, file_id: str): ...
    def files_in_state(self, state: str) -> list: ...
    # shared stores only (server.store.redis_files): the deployment's bytes, totals and quota steps
    #   file_blobs() -> the bytes' store (FileBlobs' interface); file_totals() -> (used, reserved);
    #   expire_oldest(limit) -> the files expired; stale_partials(before) -> uploads without progress;
    #   set_file_token(id, token), file_token_is(id, token): the latest offer's token, for a put on any node

    def close(self) -> None: ...
