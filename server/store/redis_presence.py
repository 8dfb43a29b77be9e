"""Presence in Redis: who is in which room on each node, and the stream of its changes.

:class:`RedisPresence` (mixed into :class:`~server.store.redis.RedisStore`,
hub thread) writes a presence frame about a client of this node (``joined``,
``left``, ``renamed``) with one Lua call, :data:`SHARE`, in one atomic step:

- the client's entry in this node's hash ``natter:members:NODE`` (nick key ->
  ``[nick, session, fp, admin, [room keys]]``; removed once it is in no
  room), and the node in the set ``natter:nodes``;
- the frame appended to the stream ``natter:presence`` with the explicit id
  ``0-K`` (``K`` from ``natter:presence_seq``) and the fields ``node``,
  ``at`` (the newest id of ``natter:log`` at that moment) and ``data``.

Why a stream of its own: presence carries no id, so it must not take a
number of the log's sequence; a stream, not pub/sub, because a reader that
lost Redis for a moment reads on from its last id and misses nothing, and
because each node's reader reads it in the same blocking ``XREAD`` as the
log (one round trip, one wait), where ``at`` places each frame between the
log's entries: a joiner's ``joined`` before its first message, a leaver's
``left`` after its last, on every node. It keeps about :data:`KEEP`
entries; a reader further behind than that (its next id was trimmed) reads
the members hashes instead (:data:`SNAPSHOT`), as a node does when it starts.

:class:`PresenceReader` is the reader's part (thread ``redis-feed``, its own
connection): it decodes the stream, holds a frame until the log's entries
before it are handed on, and about once a second checks the nodes it has
seen members of: one whose key ``natter:node:ID`` expired (it died without a
word) is buried (its members hash deleted) and handed to the hub as
:class:`~server.core.events.NodeGone`. When its own node's key had expired
(Redis away for longer than the key's lifetime), it hands on
:class:`~server.core.events.Revived`: the others buried this node, and the
hub shares its clients again.

Redis unreachable: a write waits in the store's bookkeeping and goes at the
next commit that reaches Redis, in order; the reader retries as for the log.
"""
from __future__ import annotations

import json
import logging
import time

from ..core.events import Members, NodeGone, Presence, Revived
from . import Unavailable
from .redis_keys import NODE, P
from .redis_online import ONLINE

log = logging.getLogger("natter.server")

PRESENCE, PRESENCE_SEQ = P + "presence", P + "presence_seq"
LOG_SEQ = P + "seq"      # the log's counter (server.store.redis.SEQ): a frame's "at"
MEMBERS, NODES = P + "members:", P + "nodes"      # + a node's id: its clients in rooms; the nodes with such a hash
KEEP = 10_000            # entries the presence stream keeps, about (XADD MAXLEN ~): a few MB
CHECK_EVERY = 1.0        # seconds between two looks at whether the nodes seen are alive

# KEYS: this node's members hash, nodes, presence stream, presence seq, the log's seq.
# ARGV: node, a nick key to remove ('' for none), the nick key, its entry ('' removes it), data, keep.
SHARE = """
if ARGV[2] ~= '' then redis.call('HDEL', KEYS[1], ARGV[2]) end
if ARGV[4] == '' then redis.call('HDEL', KEYS[1], ARGV[3]) else redis.call('HSET', KEYS[1], ARGV[3], ARGV[4]) end
redis.call('SADD', KEYS[2], ARGV[1])
local k = redis.call('INCR', KEYS[4])
local at = redis.call('GET', KEYS[5]) or '0'
redis.call('XADD', KEYS[3], 'MAXLEN', '~', ARGV[6], '0-' .. k, 'node', ARGV[1], 'at', at, 'data', ARGV[5])
return k
"""
# KEYS: nodes, presence seq, the online hash. ARGV: prefix of node keys, prefix of members hashes.
# Returns {presence seq, node, entry, node, entry, ...}: the members of the live nodes
# (an entry only while its node holds the nick: a client that moved is listed
# where it is now); the hashes of dead nodes are deleted on the way.
SNAPSHOT = """
local out = {redis.call('GET', KEYS[2]) or '0'}
for _, n in ipairs(redis.call('SMEMBERS', KEYS[1])) do
  if redis.call('EXISTS', ARGV[1] .. n) == 1 then
    local flat = redis.call('HGETALL', ARGV[2] .. n)
    for i = 1, #flat, 2 do
      local holder = redis.call('HGET', KEYS[3], flat[i])
      if holder and cjson.decode(holder)[2] == n then
        out[#out + 1] = n
        out[#out + 1] = flat[i + 1]
      end
    end
  else
    redis.call('DEL', ARGV[2] .. n)
    redis.call('SREM', KEYS[1], n)
  end
end
return out
"""
# KEYS: nodes. ARGV: the node, its key, its members hash. Only a node whose key is gone.
BURY = """
if redis.call('EXISTS', ARGV[2]) == 1 then return 0 end
redis.call('DEL', ARGV[3])
redis.call('SREM', KEYS[1], ARGV[1])
return 1
"""


class RedisPresence:
    """The presence part of the Redis store (uses its ``_db``, ``_calls``, ``_lua``, ``_ops``, ``node``)."""

    def share_presence(self, key: str, member: list | None, data: dict, old_key: str | None = None) -> None:
        """Hub thread: a presence frame about this node's client ``key`` (its
        entry now, None once it is in no room; ``old_key`` its key before a
        rename) for the other nodes. Never raises: while Redis is away it
        waits, in order, for the next commit that reaches it."""
        args = (key, json.dumps(member) if member is not None else "",
                json.dumps(data, separators=(",", ":")), old_key or "")
        if any(op == "presence" for op, _ in self._ops):
            self._ops.append(("presence", args))       # after those waiting: in order
            return
        try:
            with self._calls():
                self._w_presence(self._db, *args)
        except Unavailable:
            self._ops.append(("presence", args))

    def _w_presence(self, client, key, member, data, old_key):
        self._lua["share"](keys=[MEMBERS + self.node, NODES, PRESENCE, PRESENCE_SEQ, LOG_SEQ],
                           args=[self.node, old_key, key, member, data, KEEP], client=client)

    def nick_node(self, key: str) -> str | None:
        """The node whose client holds the nick now (live or not), or None;
        raises Unavailable."""
        with self._calls():
            cur = self._db.hget(ONLINE, key)
        return json.loads(cur)[1] if cur is not None else None

    def presence_members(self) -> Members:
        """Hub thread, at start: everyone in a room on the other live nodes;
        this node's reader reads the presence stream on from there."""
        with self._calls():
            self.presence_after, self.members_seen = read_members(self._lua["members"], self.node)
        return Members(self.last_id, self.members_seen)

    def forget_presence(self) -> None:
        """This node stops (its clients are told, not the others): its members go
        with its key, and the others tell their clients (NodeGone)."""
        self._db.delete(MEMBERS + self.node)
        self._db.srem(NODES, self.node)


def read_members(script, own: str) -> tuple[int, tuple]:
    """(the presence id it was read at, the members of the other live nodes as
    in :class:`~server.core.events.Members`), by the :data:`SNAPSHOT` script."""
    reply = script(keys=[NODES, PRESENCE_SEQ, ONLINE], args=[NODE, MEMBERS])
    after, flat, members = int(reply[0]), reply[1:], []
    for i in range(0, len(flat), 2):
        node = flat[i].decode()
        if node != own:
            nick, session, fp, admin, rooms = json.loads(flat[i + 1])
            members.append((node, nick, session, fp, admin, tuple(rooms)))
    return after, tuple(members)


class PresenceReader:
    """The reader's part of presence (thread ``redis-feed``; see the module docstring).

    ``after`` is the last presence id accounted for; ``held`` the frames read
    whose ``at`` the log's reader has not passed yet; ``nodes`` the other
    nodes whose members were seen, watched for their death."""

    def __init__(self, db, node: str, after: int | None, members: tuple = ()):
        self._db, self.node = db, node
        self._snapshot = db.register_script(SNAPSHOT)
        self._bury = db.register_script(BURY)
        self.after = after                  # the store's presence_members read up to here (None: not read)
        self.held: list = []
        self.nodes: set = {m[0] for m in members}
        self._checked = 0.0

    def streams(self) -> dict:
        """What the reader's XREAD adds: the presence stream from its last id,
        unless frames are held (the log is read alone until they are out)."""
        return {} if self.held else {PRESENCE: f"0-{self.after}"}

    def restart(self, log_after: int) -> None:
        """After a trimmed gap: the members of every live node, at the presence
        id they were read at, instead of what the gap held."""
        self.after, members = read_members(self._snapshot, self.node)
        self.nodes.update(m[0] for m in members)
        self.held = [Members(log_after, members)] + [h for h in self.held if type(h) in (NodeGone, Revived)]

    def take(self, entries: list, log_after: int) -> None:
        """Entries of the presence stream (after ``after``, in order) read by one XREAD."""
        if not entries:
            return
        first = int(entries[0][0].split(b"-")[1])
        if first > self.after + 1:          # trimmed before this reader got them
            self.restart(log_after)
            return
        for entry_id, fields in entries:
            try:
                node = fields[b"node"].decode()
                if node != self.node:
                    data = json.loads(fields[b"data"])
                    self.held.append(Presence(node, int(fields[b"at"]), data["frame"], tuple(data["rooms"]),
                                              data["session"], data["fp"], data["admin"], data["routed"]))
                    self.nodes.add(node)
            except (KeyError, TypeError, ValueError) as e:
                # Not one this reader can read (another version's node): skipped,
                # not the end of the thread that hands this node the whole log.
                log.warning("redis-feed: presence entry %s skipped (%r)", entry_id, e)
            self.after = int(entry_id.split(b"-")[1])

    def check(self, now: float | None = None) -> None:
        """About once a second: a node seen whose key is gone is buried and held
        as NodeGone, after what was read of it."""
        now = time.monotonic() if now is None else now
        if now - self._checked < CHECK_EVERY or not self.nodes:
            return
        self._checked = now
        nodes = sorted(self.nodes)
        pipe = self._db.pipeline(transaction=False)
        for n in nodes:
            pipe.exists(NODE + n)
        for n, alive in zip(nodes, pipe.execute()):
            if not alive:
                self._bury(keys=[NODES], args=[n, NODE + n, MEMBERS + n])
                self.nodes.discard(n)
                at = max([h.at for h in self.held], default=0)
                self.held.append(NodeGone(at, n))

    def revived(self, log_after: int) -> None:
        """This node's key was gone when the reader renewed it: the hub shares
        its clients' presence again (after what is held)."""
        self.held.append(Revived(max([log_after] + [h.at for h in self.held])))

    def due(self, upto: int) -> list:
        """The held items the log's reader has passed (it handed on every id up
        to ``upto``), in order; those after wait."""
        ready = [h for h in self.held if h.at <= upto]
        if ready:
            self.held = [h for h in self.held if h.at > upto]
        return ready
