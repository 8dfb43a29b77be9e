"""The history in Redis Streams: the :class:`~server.store.Store` of a deployment of several servers.

Every node of a deployment (``python -m server --redis redis://...``) opens
one :class:`RedisStore` on the same Redis. Every stored event (room message,
private message, topic, moderation event) is appended to one stream,
``natter:log``, by one Lua script (:data:`APPEND`) that takes the next
number of ``natter:seq`` and adds the entry with the explicit id ``0-N``: ids
are one gapless integer sequence for the whole deployment, and ``since``
means the same on every node. The script is also the idempotent append: an
event with a ``ref`` from a session is appended once; a retry with the same
session and ref (a lost reply, a resume on another node) gets the first
one's id and appends nothing. A hub pass's room messages are queued
(:meth:`RedisStore.queue_message`) and appended together when the pass ends
(:meth:`RedisStore.flush_appends`): one round trip, a pipeline of the same
script per message, so each is still its own gapless, idempotent append, in
order; what Redis did not take is refused with ``unavailable``.

The store is *shared* (``shared = True``): the core does not deliver an
event when it appends it; every node reads the stream in order
(:class:`~server.store.redis_feed.StreamReader`) and the hub delivers each
entry to its own clients when it applies it (:mod:`server.core.feed`), the
sender's acknowledgement included. ``last_id`` is the id this node's hub
has applied (:meth:`advance`), so reads (catch-up, history pages) stop
there: a client catching up joins the live feed exactly where its replay
ends, and no id reaches it twice or never.

The stream keeps the newest ``keep`` entries (``--redis-keep``, default
1 000 000): the append script moves each entry more than ``keep`` behind
the new one to the hash ``archive`` (id -> its fields) in the same atomic
step, so every id is in exactly one of the two and reads (pages, catch-up,
a reader that fell behind) take it from either: a trim loses nothing and
leaves no hole. Only :meth:`RedisStore.drop_before` (an operator's step)
forgets history; it records ``floor``, and a ``since`` below it is told
``history_gone``.

Beside the stream (names under ``natter:``): each event's text in the hash
``text`` (so a deletion erases it: a stream entry cannot change), later
changes of an event (an edit, a deletion) in ``edits``, the ids of each
room's events and each session's private messages in sorted sets (``idx:``),
so pages read only their own entries; sessions, their rooms and read
markers; rooms; nick bindings, roles, bans, mutes, modes; and the online
nicks of every node (``online``, with each node's ``node:ID`` key kept alive
by its reader, so a node that dies without a word loses its nicks when the
key expires); who is in which room on each node and the stream of its
changes, beside the log (:mod:`.redis_presence`). Files and pictures: their
records, their bytes and the quota's totals (:mod:`.redis_files`).

Redis unreachable: a write the chat depends on (an event, a session, a
nick) raises :class:`~server.store.Unavailable`, and the client is told
``unavailable``; nothing is acknowledged that Redis did not store.
Bookkeeping (the rooms of a session, read markers, releasing a nick, a
presence change written while Redis was away) waits in memory and is
written at the next :meth:`commit` that reaches Redis.

redis-py is imported only here, and only the server's ``--redis`` mode
imports this module (``pip install natter[redis]``).

Thread: the hub thread, except the reader (its own thread and connection).
"""
from __future__ import annotations

import contextlib
import hashlib
import heapq
import json
import logging
import secrets
import time
import uuid

try:
    import redis
    from redis.backoff import NoBackoff
    from redis.retry import Retry
except ImportError:     # the extra is not installed: RedisStore says so when it is opened
    redis = None

from ..protocol import nick_key
from . import DIRECT, LOBBY, MESSAGE, TOPIC, Event, HistoryError, RoomRecord, Unavailable
from .moderation import DELETE, EDIT
from .redis_files import RedisFileRecords
from .redis_moderation import RedisModeration
from .redis_online import CLAIM, RELEASE, RedisOnline
from .redis_presence import SHARE, SNAPSHOT, RedisPresence
from .redis_keys import NODE, P

log = logging.getLogger("natter.server")

LOG, SEQ, TEXT, EDITS = P + "log", P + "seq", P + "text", P + "edits"
ARCHIVE, FLOOR = P + "archive", P + "floor"     # id -> an entry trimmed off the stream; ids <= floor are gone
EPOCH, SESSIONS, SESSION_SEQ, ROOMS = P + "epoch", P + "sessions", P + "session_seq", P + "rooms"
SESSION_TOKENS, SESSION_USED = P + "session_tokens", P + "session_used"   # id -> token hash; id by last use
TOUCH_EVERY = 3600.0     # a session's last use is written at most this often
NODE_TTL_MS = 10_000     # a node's key lives this long unless its reader renews it (about every second)
REF_TTL = 7 * 86400      # seconds a (session, ref) is remembered for the idempotent append
TIMEOUT = 3.0            # seconds a Redis call of the hub may take before the store says unavailable
CHUNK = 500              # ids read per round trip when a page has to skip hidden kinds
DOWN_PAUSE = 0.5         # seconds the store refuses at once after Redis failed it
KEEP = 1_000_000         # entries the stream keeps (--redis-keep); the older ones are in the archive
FLUSH_MAX = 256          # queued appends per round trip (flush_appends)
ARCHIVE_STEP = 100       # entries one append moves to the archive at most (a lowered keep catches up gradually)
UNAVAILABLE = ("The chat's shared log (Redis) cannot be reached right now: nothing was stored. "
               "Send it again in a moment.")

# KEYS: log, seq, text, ref key or "", archive, then the index sets of the event.
# ARGV: ref ttl, text, keep, archive step, then the entry's field/value pairs.
# The entries more than `keep` behind the new one move from the stream to the
# archive hash (id -> the entry's field/value list as JSON) in the same
# atomic step, so every id is always in exactly one of the two.
APPEND = """
if KEYS[4] ~= '' then
  local old = redis.call('GET', KEYS[4])
  if old then return {tonumber(old), 1} end
end
local id = redis.call('INCR', KEYS[2])
local fields = {}
for i = 5, #ARGV do fields[#fields + 1] = ARGV[i] end
redis.call('XADD', KEYS[1], '0-' .. id, unpack(fields))
redis.call('HSET', KEYS[3], id, ARGV[2])
for i = 6, #KEYS do redis.call('ZADD', KEYS[i], id, id) end
if KEYS[4] ~= '' then redis.call('SET', KEYS[4], id, 'EX', ARGV[1]) end
local upto = id - tonumber(ARGV[3])
if upto > 0 then
  local old = redis.call('XRANGE', KEYS[1], '-', '0-' .. upto, 'COUNT', tonumber(ARGV[4]))
  for _, entry in ipairs(old) do
    redis.call('HSET', KEYS[5], string.sub(entry[1], 3), cjson.encode(entry[2]))
    redis.call('XDEL', KEYS[1], entry[1])
  end
end
return {id, 0}
"""
_FIELDS = ("ts", "room", "sender", "recipient", "from_session", "to_session", "ref", "kind", "extra")
_INTS = ("from_session", "to_session")


def connect(url: str, timeout: float = TIMEOUT):
    """A redis-py client for ``url`` that fails fast and never retries on
    its own: a retried append after a lost reply could be a second copy."""
    if redis is None:
        raise HistoryError("--redis needs the redis client library, which is not installed: "
                           "pip install 'natter[redis]' (or pip install redis)")
    try:
        return redis.Redis.from_url(url, socket_timeout=timeout, socket_connect_timeout=timeout,
                                    retry=Retry(NoBackoff(), 0), health_check_interval=0)
    except ValueError as e:
        raise HistoryError(f"the Redis address {url!r} cannot be used ({e}); write it as "
                           "redis://HOST:PORT/DB (rediss:// for TLS, redis://:PASSWORD@HOST...)") from None


def archived_fields(raw: bytes) -> dict:
    """An archived entry's fields (the JSON list the append script wrote), as the stream gives them."""
    flat = json.loads(raw)
    return {flat[i].encode(): flat[i + 1].encode() for i in range(0, len(flat) - 1, 2)}


def decode(entry_id, fields: dict, text, change) -> Event:
    """An Event from a stream entry, its text, and its later change (JSON or None)."""
    f = {k.decode(): v.decode() for k, v in fields.items()}
    values = {name: f.get(name) for name in _FIELDS}
    for name in _INTS:
        if values[name] is not None:
            values[name] = int(values[name])
    values["ts"] = float(values["ts"])
    values["kind"] = values["kind"] or MESSAGE
    text = text.decode() if text is not None else ""
    if change is not None:
        c = json.loads(change)
        text = c.get("text", text)
        for name in ("kind", "extra", "ref"):
            if name in c:
                values[name] = c[name]
    sid = entry_id.decode() if isinstance(entry_id, bytes) else entry_id
    return Event(int(sid.split("-")[1]), values["ts"], values["room"] or "", values["sender"], values["recipient"],
                 text, values["from_session"], values["to_session"], values["ref"], values["kind"], values["extra"])


class RedisStore(RedisModeration, RedisOnline, RedisPresence, RedisFileRecords):
    """The shared history of a deployment; see the module docstring."""

    shared = True
    batches = True      # room messages are queued and appended at the end of the hub's pass (queue_message)
    clock = staticmethod(time.time)     # the wall clock of session expiry (tests set their own)

    def __init__(self, url: str, *, require_durable: bool = False, keep: int = KEEP):
        self.url = url
        self.keep = max(1, keep)    # stream entries kept; the older ones are read from the archive
        self.path = _safe_url(url)
        self.node = uuid.uuid4().hex[:12]
        self._db = connect(url)
        self._lua = {}
        self._ops: list = []        # bookkeeping not yet written: (method name, args)
        self._pending: list = []    # room messages queued for flush_appends: (owner, keys, args)
        self._failed: list = []     # owners of queued messages Redis did not take, for flush_appends
        self._down_until = 0.0      # monotonic time until which calls fail at once (see _calls)
        self.durable: bool | None = None
        self.reader = None
        self.presence_after, self.members_seen = None, ()  # (.redis_presence: presence_members)
        with self._calls(start=True):
            self._db.ping()
            self.durable = self._check_durable(require_durable)
            self._lua = {name: self._db.register_script(src) for name, src in
                         (("append", APPEND), ("claim", CLAIM), ("release", RELEASE),   # (.redis_online)
                                          ("share", SHARE), ("members", SNAPSHOT))}     # (.redis_presence)
            self._db.set(EPOCH, secrets.token_urlsafe(12), nx=True)
            self.epoch = self._db.get(EPOCH).decode()
            self.last_id = int(self._db.get(SEQ) or 0)
            self._db.hsetnx(ROOMS, LOBBY, _room_json(RoomRecord(LOBBY, LOBBY, created=time.time())))
            self._db.set(self.node_key, b"1", px=NODE_TTL_MS)

    @property
    def node_key(self) -> str:
        return NODE + self.node

    def _check_durable(self, require: bool) -> bool | None:
        """True when Redis writes an append-only file; warns (or refuses) when not."""
        try:
            reply = self._db.config_get("appendonly")
            value = {(k.decode() if isinstance(k, bytes) else k): (v.decode() if isinstance(v, bytes) else v)
                     for k, v in reply.items()}.get("appendonly")
        except redis.ResponseError:       # CONFIG is disabled (a managed Redis): say so, do not guess
            value = None
        if value == "yes":
            return True
        why = ("its CONFIG command is disabled, so whether it keeps an append-only file is unknown"
               if value is None else "appendonly is off")
        if require:
            raise HistoryError(f"the Redis at {self.path} may lose acknowledged messages if it crashes ({why}); "
                               "set appendonly yes in its configuration, or start without --require-durable")
        log.warning("Redis at %s: %s; acknowledged messages survive a Redis crash only with appendonly yes",
                    self.path, why)
        return None if value is None else False

    @contextlib.contextmanager
    def _calls(self, start: bool = False):
        """Redis errors -> Unavailable with a sentence (HistoryError while opening:
        the server does not start). After a failure, calls fail at once for
        DOWN_PAUSE seconds: a Redis that does not answer must not hold the hub
        thread for TIMEOUT on every frame."""
        if not start and time.monotonic() < self._down_until:
            raise Unavailable(UNAVAILABLE)
        try:
            yield
        except (redis.RedisError, OSError) as e:
            if start:
                verb = "refused a command" if isinstance(e, redis.ResponseError) else "cannot be reached"
                raise HistoryError(f"the Redis at {self.path} {verb} ({e})") from None
            self._down_until = time.monotonic() + DOWN_PAUSE
            log.warning("Redis at %s: %s", self.path, e)
            raise Unavailable(UNAVAILABLE) from None

    # -- events (appended at once; delivered by the reader) ------------------------

    def add_message(self, sender: str, text: str, room: str = LOBBY, session: int | None = None,
                    ref: str | None = None) -> tuple[int, float]:
        return self._add(room, sender, None, text, session, None, ref, MESSAGE)

    def add_direct(self, sender: str, to: str, text: str, from_session: int | None,
                   to_session: int | None, ref: str | None = None) -> tuple[int, float]:
        return self._add("", sender, to, text, from_session, to_session, ref, DIRECT)

    def add_topic(self, room: str, by: str, topic: str, session: int | None,
                  ref: str | None = None) -> tuple[int, float]:
        return self._add(room, by, None, topic, session, None, ref, TOPIC)

    def add_event(self, kind: str, room: str, sender: str, text: str = "", session: int | None = None,
                  extra: dict | None = None, recipient: str | None = None, to_session: int | None = None,
                  ref: str | None = None) -> tuple[int, float]:
        return self._add(room, sender, recipient, text, session, to_session, ref, kind,
                         json.dumps(extra, separators=(",", ":")) if extra is not None else None)

    def _add(self, room, sender, recipient, text, from_session, to_session, ref, kind, extra=None):
        """Append one event (one round trip); returns (id, ts). A (session,
        ref) seen before returns the first append's id and appends nothing.
        The messages queued before it (:meth:`queue_message`) are appended
        first, in one round trip: the log keeps this node's order."""
        keys, args, ts = self._append_args(room, sender, recipient, text, from_session, to_session, ref, kind,
                                           extra)
        if self._pending:
            self._flush_pending()
        with self._calls():
            event_id, _dup = self._lua["append"](keys=keys, args=args)
        return int(event_id), ts

    def _append_args(self, room, sender, recipient, text, from_session, to_session, ref, kind, extra=None):
        """The append script's keys and arguments for one event, and its ts."""
        ts = round(time.time(), 3)
        values = {"ts": repr(ts), "room": room, "sender": sender, "recipient": recipient,
                  "from_session": from_session, "to_session": to_session, "ref": ref, "kind": kind, "extra": extra}
        fields = []
        for name in _FIELDS:
            if values[name] is not None:
                fields += [name, str(values[name])]
        keys = [LOG, SEQ, TEXT, f"{P}ref:{from_session}:{ref}" if ref is not None and from_session is not None
                else "", ARCHIVE]
        if recipient is None:
            keys.append(f"{P}idx:room:{room}")
        else:
            keys += sorted({f"{P}idx:dm:{s}" for s in (from_session, to_session) if s is not None})
        if kind == EDIT and extra is not None:
            keys.append(f"{P}idx:edits:{json.loads(extra)['id']}")
        return keys, [REF_TTL, text, self.keep, ARCHIVE_STEP, *fields], ts

    # -- a pass's messages, appended together (the hub's flush_appends) ------------

    def queue_message(self, owner, sender: str, text: str, room: str = LOBBY, session: int | None = None,
                      ref: str | None = None) -> None:
        """Queue a room message for :meth:`flush_appends`, which the hub
        calls at the end of its pass: the pass's messages go to Redis in one
        round trip (a pipeline of the append script, each entry still its
        own idempotent, gapless append, in order). ``owner`` is what the
        hub gets back for each message Redis did not take (the client and
        its ref). Nothing is delivered or acknowledged here: the message is
        acknowledged when this node's reader reads it from the stream.
        Raises Unavailable at once while Redis is known to be away."""
        if time.monotonic() < self._down_until:
            raise Unavailable(UNAVAILABLE)
        keys, args, _ts = self._append_args(room, sender, None, text, session, None, ref, MESSAGE)
        self._pending.append((owner, keys, args))

    def flush_appends(self) -> list:
        """Append every queued message (:meth:`queue_message`), in order,
        in one round trip per FLUSH_MAX; returns (owner, sentence) for each
        Redis did not take (each gets ``unavailable``: nothing of it is
        acknowledged; a message Redis did store although its reply was lost
        is found by its ref when the client sends it again), with the ones
        an earlier flush in this pass failed (before a synchronous append)."""
        if self._pending:
            self._flush_pending()
        failed, self._failed = self._failed, []
        return [(owner, UNAVAILABLE) for owner in failed]

    def _flush_pending(self) -> None:
        pending, self._pending = self._pending, []
        for start in range(0, len(pending), FLUSH_MAX):
            chunk = pending[start:start + FLUSH_MAX]
            if time.monotonic() < self._down_until:
                self._failed += [owner for owner, _k, _a in chunk]
                continue
            try:
                with self._calls():
                    replies = self._pipeline_appends(chunk)
            except Unavailable:
                self._failed += [owner for owner, _k, _a in chunk]
                continue
            for (owner, _k, _a), reply in zip(chunk, replies):
                if isinstance(reply, Exception):
                    log.warning("Redis refused an append: %s", reply)
                    self._failed.append(owner)

    def _pipeline_appends(self, chunk: list) -> list:
        """EVALSHA of the append script for each entry of chunk, in one
        round trip, after a SCRIPT LOAD of it (cheap when Redis has it): a
        Redis restarted without its scripts runs every entry, in order, with
        no NOSCRIPT to retry around (a retry could reorder the entries)."""
        sha = self._lua["append"].sha
        pipe = self._db.pipeline(transaction=False)
        pipe.script_load(APPEND)
        for _owner, keys, args in chunk:
            pipe.evalsha(sha, len(keys), *keys, *args)
        loaded, *replies = pipe.execute(raise_on_error=False)
        if isinstance(loaded, Exception):
            raise loaded
        return replies

    def advance(self, upto: int) -> None:
        """The hub has delivered every event up to ``upto``: reads may see them."""
        if upto > self.last_id:
            self.last_id = upto

    @property
    def newest_id(self) -> int:
        """The largest id in the stream, which this node may not have applied yet."""
        with self._calls():
            return int(self._db.get(SEQ) or 0)

    def commit(self) -> int:
        """Write the bookkeeping that waits (rooms of sessions, read markers,
        released nicks, presence) in one pipeline; it waits on when Redis is away.
        Events are not pending here: they were appended at once."""
        ops, self._ops = self._ops, []
        if not ops:
            return 0
        try:
            pipe = self._db.pipeline(transaction=False)
            for op, args in ops:
                getattr(self, "_w_" + op)(pipe, *args)
            pipe.execute()
        except (redis.RedisError, OSError) as e:
            self._ops = ops + self._ops
            log.warning("Redis: %d bookkeeping writes wait until it is back (%s)", len(ops), e)
        return 0

    # -- reading (up to last_id: what this node has delivered) -------------------

    def _fetch(self, ids: list) -> list[Event]:
        """The events of these ids (ascending), in one round trip: from the
        stream, or from the archive once trimmed off it. The archive is read
        after the stream: an entry the append script moved in between is
        found there (it moves both ways in one atomic step)."""
        if not ids:
            return []
        with self._calls():
            pipe = self._db.pipeline(transaction=False)
            for i in ids:
                pipe.xrange(LOG, f"0-{i}", f"0-{i}", count=1)
            pipe.hmget(ARCHIVE, ids)
            pipe.hmget(TEXT, ids)
            pipe.hmget(EDITS, ids)
            *entries, archived, texts, changes = pipe.execute()
        out = []
        for i, found, old, text, change in zip(ids, entries, archived, texts, changes):
            if found:
                out.append(decode(found[0][0], found[0][1], text, change))
            elif old is not None:
                out.append(decode(f"0-{i}", archived_fields(old), text, change))
        return out

    @property
    def history_floor(self) -> int:
        """The ids up to this one are gone from the deployment (0: none is):
        only :meth:`drop_before` removes history; trimming the stream moves
        entries to the archive and loses nothing."""
        with self._calls():
            return int(self._db.get(FLOOR) or 0)

    def drop_before(self, upto: int) -> int:
        """An operator's step (docs/scaling.md): forget the archived events
        with ids up to ``upto`` (their texts and changes too; entries still in
        the stream stay) and record the floor, so a ``since`` below it is told
        ``history_gone`` instead of getting a silent gap. Returns how many
        were forgotten. ValueError (nothing dropped) when ``upto`` is still
        in the stream, or beyond the newest id."""
        with self._calls():
            self._check_archived(upto)
            dropped = 0
            for start in range(1, upto + 1, CHUNK):
                ids = list(range(start, min(upto, start + CHUNK - 1) + 1))
                pipe = self._db.pipeline(transaction=False)
                pipe.hdel(ARCHIVE, *ids)
                pipe.hdel(TEXT, *ids)
                pipe.hdel(EDITS, *ids)
                dropped += pipe.execute()[0]
            floor = int(self._db.get(FLOOR) or 0)
            if upto > floor:
                self._db.set(FLOOR, upto)
        return dropped

    def _check_archived(self, upto: int) -> None:
        """ValueError unless every id up to ``upto`` has left the stream for the archive."""
        newest = int(self._db.get(SEQ) or 0)
        first = self._db.xrange(LOG, "-", "+", count=1)
        first_id = int(first[0][0].split(b"-")[1]) if first else newest + 1
        if upto > newest:
            raise ValueError(f"id {upto} is beyond the newest id of the history ({newest})")
        if upto >= first_id:
            raise ValueError(f"id {upto} is still in the stream, which holds ids {first_id} to {newest}: only "
                             f"archived history can be dropped, so give an id below {first_id} (a lower "
                             "--redis-keep on the nodes moves more of it to the archive)")

    def _ids(self, index: str, low: int, high: int, limit: int, newest: bool) -> list[int]:
        """Up to ``limit`` ids of an index set with low < id <= high, the oldest
        (or the newest) first."""
        high = min(high, self.last_id)
        if high <= low:
            return []
        with self._calls():
            if newest:
                raw = self._db.zrevrangebyscore(index, high, f"({low}", start=0, num=limit)
            else:
                raw = self._db.zrangebyscore(index, f"({low}", high, start=0, num=limit)
        return [int(x) for x in raw]

    def _walk(self, index: str, low: int, high: int, want: int, newest: bool, keep) -> list[Event]:
        """Events of an index between low and high for which keep(event) holds,
        ``want`` of them at most, read CHUNK ids at a time."""
        out: list = []
        while len(out) < want:
            ids = self._ids(index, low, high, CHUNK, newest)
            if not ids:
                break
            events = self._fetch(sorted(ids))
            if newest:
                events.reverse()
                high = ids[-1] - 1
            else:
                low = ids[-1]
            out.extend(e for e in events if keep(e))
        return out[:want]

    def page_room(self, room: str, before: int | None = None, after: int | None = None, limit: int = 50,
                  messages_only: bool = False) -> tuple[list[Event], bool]:
        """As :meth:`SqliteStore.page_room <server.store.sqlite.SqliteStore.page_room>`."""
        def keep(e):
            return e.kind == MESSAGE if messages_only else e.kind not in (DELETE, EDIT)
        return self._page(f"{P}idx:room:{room}", keep, before, after, limit)

    def page_direct(self, session: int, peer_key: str, before: int | None = None, after: int | None = None,
                    limit: int = 50) -> tuple[list[Event], bool]:
        def keep(e):
            if e.kind in (DELETE, EDIT):
                return False
            return ((e.from_session == session and nick_key(e.recipient) == peer_key)
                    or (e.to_session == session and nick_key(e.sender) == peer_key))
        return self._page(f"{P}idx:dm:{session}", keep, before, after, limit)

    def _page(self, index, keep, before, after, limit):
        if after is not None:
            events = self._walk(index, after, self.last_id, limit + 1, False, keep)
            return events[:limit], len(events) > limit
        high = before - 1 if before is not None else self.last_id
        events = self._walk(index, 0, high, limit + 1, True, keep)
        more = len(events) > limit
        events = events[:limit]
        events.reverse()
        return events, more

    def catch_up(self, rooms: dict, session: int | None, dm_floor: int | None, after: int,
                 limit: int) -> tuple[list[Event], bool]:
        """As :meth:`SqliteStore.catch_up <server.store.sqlite.SqliteStore.catch_up>`:
        one index range per source, merged. A cursor past what this node has
        applied (a client that saw newer ids on another node) gets nothing and
        ``more``: it waits for this node's reader to pass its ``since``."""
        if after > self.last_id:
            return [], True
        sources = []
        for room, (floor, ceiling) in rooms.items():
            start = max(after, floor)
            high = self.last_id if ceiling is None else min(ceiling, self.last_id)
            sources.append(self._ids(f"{P}idx:room:{room}", start, high, limit + 1, False))
        if dm_floor is not None and session is not None:
            sources.append(self._ids(f"{P}idx:dm:{session}", max(after, dm_floor), self.last_id, limit + 1, False))
        ids = list(dict.fromkeys(heapq.merge(*sources)))
        more = len(ids) > limit or any(len(s) > limit for s in sources)
        return self._fetch(ids[:limit]), more

    def recent_floor(self, room: str, n: int) -> int:
        found = self._walk(f"{P}idx:room:{room}", 0, self.last_id, n, True, lambda e: e.kind == MESSAGE)
        return found[n - 1].id - 1 if len(found) == n else 0

    def last_message_id(self, room: str) -> int:
        found = self._walk(f"{P}idx:room:{room}", 0, self.last_id, 1, True, lambda e: e.kind == MESSAGE)
        return found[0].id if found else 0

    def first_id_after(self, ts: float, inclusive: bool = False) -> int:
        """As SqliteStore's: a binary search of point reads on the stream."""
        def first_from(i):
            found = self._fetch([i])        # every id is in the stream or the archive, unless dropped
            if found:
                return found[0]
            with self._calls():
                got = self._db.xrange(LOG, f"0-{i}", f"0-{self.last_id}", count=1)
            return decode(got[0][0], got[0][1], None, None) if got else None

        def later(t):
            return t > ts or (inclusive and t == ts)
        lo, hi = self.history_floor + 1, self.last_id + 1     # every id from there on is held
        while lo < hi:
            mid = (lo + hi) // 2
            e = first_from(mid)
            if e is None or later(e.ts):
                hi = mid
            else:
                lo = e.id + 1
        e = first_from(lo) if lo <= self.last_id else None
        return e.id if e is not None else self.last_id + 1

    def get_event(self, event_id: int) -> Event | None:
        if not 0 < event_id <= self.last_id:
            return None
        found = self._fetch([event_id])
        return found[0] if found else None

    def erase(self, event: Event, extra: dict) -> None:
        """The event becomes a ``deleted`` tombstone now; its text and that of
        its edits leave the text hash (the stream never held them)."""
        with self._calls():
            edits = [int(x) for x in self._db.zrange(f"{P}idx:edits:{event.id}", 0, -1)]
            pipe = self._db.pipeline(transaction=True)
            pipe.hset(EDITS, event.id, json.dumps({"text": "", "ref": None, "kind": "deleted", "extra":
                                                   json.dumps(extra, separators=(",", ":"))}))
            pipe.hdel(TEXT, event.id, *edits)
            pipe.execute()

    def replace_text(self, event_id: int, text: str, extra: dict) -> None:
        with self._calls():
            self._db.hset(EDITS, event_id, json.dumps({"text": text, "extra": json.dumps(extra, separators=(",", ":"))}))

    def audit_events(self, room: str, keep, limit: int = 200, before: int | None = None) -> list[Event]:
        """As :meth:`ModerationStore.audit_events <server.store.moderation.ModerationStore.audit_events>`."""
        high = self.last_id if before is None else min(self.last_id, before - 1)
        events = self._walk(f"{P}idx:room:{room}", 0, high, limit, True,
                            lambda e: e.kind in ("moderated", "mode", "delete") and keep(e))
        events.reverse()
        return events

    # -- sessions -----------------------------------------------------------------

    def new_session(self) -> tuple[int, str]:
        """A resume session of the deployment; returns (id, secret token)."""
        token = secrets.token_urlsafe(24)
        digest = _hash(token)
        with self._calls():
            sid = int(self._db.incr(SESSION_SEQ))
            pipe = self._db.pipeline(transaction=True)
            pipe.hset(SESSIONS, digest, sid)
            pipe.hset(SESSION_TOKENS, sid, digest)
            pipe.zadd(SESSION_USED, {sid: self.clock()})
            pipe.execute()
        return sid, token

    def find_session(self, token: str) -> int | None:
        """The session of a resume token, or None; records its use (to the hour)."""
        with self._calls():
            sid = self._db.hget(SESSIONS, _hash(token))
            if sid is None:
                return None
            now = self.clock()
            used = self._db.zscore(SESSION_USED, sid)
            if used is None or now - used > TOUCH_EVERY:
                self._db.zadd(SESSION_USED, {sid: now})
        return int(sid)

    def prune_sessions(self, max_age_days: float, keep=()) -> int:
        """Forget sessions unused for more than ``max_age_days`` (0: never),
        with their rooms and read markers; those in ``keep`` (online on this
        node) and those online on any live node count as used now. Returns
        how many were forgotten."""
        if max_age_days <= 0:
            return 0
        now = self.clock()
        with self._calls():
            keep = set(keep) | {s for s in self.online_sessions() if s is not None}
            if keep:
                self._db.zadd(SESSION_USED, {sid: now for sid in keep})
            old = [int(x) for x in self._db.zrangebyscore(SESSION_USED, "-inf", f"({now - max_age_days * 86400.0}")]
            if not old:
                return 0
            digests = self._db.hmget(SESSION_TOKENS, old)
            pipe = self._db.pipeline(transaction=True)
            pipe.hdel(SESSIONS, *[d for d in digests if d is not None] or [b""])
            pipe.hdel(SESSION_TOKENS, *old)
            pipe.zrem(SESSION_USED, *old)
            pipe.delete(*[f"{P}sjoin:{sid}" for sid in old], *[f"{P}sread:{sid}" for sid in old])
            pipe.execute()
        log.info("history: %d sessions unused for %g days expired", len(old), max_age_days)
        return len(old)

    def session_rooms(self, session: int) -> dict:
        self.commit()
        with self._calls():
            rooms = [r.decode() for r in self._db.zrange(f"{P}sjoin:{session}", 0, -1)]
            reads = self._db.hmget(f"{P}sread:{session}", rooms) if rooms else []
        return {room: int(read or 0) for room, read in zip(rooms, reads)}

    def join_room(self, session: int, room: str, read_upto: int) -> None:
        self._ops.append(("join", (session, room, read_upto, time.time())))

    def part_room(self, session: int, room: str) -> None:
        self._ops.append(("part", (session, room)))

    def mark_read(self, session: int, room: str, upto: int) -> None:
        self._ops.append(("read", (session, room, upto)))

    def _w_join(self, pipe, session, room, read_upto, when):
        pipe.zadd(f"{P}sjoin:{session}", {room: when}, nx=True)
        pipe.hsetnx(f"{P}sread:{session}", room, read_upto)

    def _w_part(self, pipe, session, room):
        pipe.zrem(f"{P}sjoin:{session}", room)
        pipe.hdel(f"{P}sread:{session}", room)

    def _w_read(self, pipe, session, room, upto):
        pipe.hset(f"{P}sread:{session}", room, upto)

    # -- rooms ----------------------------------------------------------------------

    def rooms(self) -> list[RoomRecord]:
        with self._calls():
            records = [_room_record(v) for v in self._db.hvals(ROOMS)]
        return sorted(records, key=lambda r: r.created)

    def find_room(self, key: str) -> RoomRecord | None:
        """A room another node may have created since this one started."""
        with self._calls():
            value = self._db.hget(ROOMS, key)
        return _room_record(value) if value is not None else None

    def create_room(self, record: RoomRecord) -> None:
        with self._calls():
            self._db.hsetnx(ROOMS, record.key, _room_json(record))

    def update_room(self, record: RoomRecord) -> None:
        with self._calls():
            self._db.hset(ROOMS, record.key, _room_json(record))

    # -- the reader and the end -------------------------------------------------------

    def start_reader(self, post) -> None:
        """Start this node's reader of the stream from ``last_id``: it calls
        ``post(Logged)`` (any thread) with each batch, in stream order."""
        from .redis_feed import StreamReader
        self.reader = StreamReader(self.url, self.last_id, post, self.node_key, NODE_TTL_MS,
                                   self.presence_after, self.members_seen)
        self.reader.start()

    def close(self) -> None:
        """Stop the reader, write what waits, and let this node's nicks go
        (its node key is deleted: its entries count as free). Idempotent."""
        reader, self.reader = self.reader, None
        if reader is not None:
            reader.stop()
        if self._db is None:
            return
        try:
            self.commit()
            self.forget_presence()
            self._db.delete(self.node_key)
        except (redis.RedisError, OSError) as e:
            log.warning("Redis: could not say goodbye (%s); this node's nicks free up within %d s",
                        e, NODE_TTL_MS // 1000)
        finally:
            self._db.close()
            self._db = None


def _room_json(r: RoomRecord) -> str:
    return json.dumps([r.key, r.name, r.topic, r.topic_by, r.topic_ts, r.key_hash, r.created])


def _room_record(value) -> RoomRecord:
    return RoomRecord(*json.loads(value))


def _hash(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def _safe_url(url: str) -> str:
    """The URL without its password, for logs and messages."""
    if "@" in url:
        scheme, _, rest = url.partition("://")
        return f"{scheme}://***@{rest.rpartition('@')[2]}"
    return url
