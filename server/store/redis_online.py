"""The nicks online on every node of a deployment: :class:`RedisOnline`,
mixed into :class:`~server.store.redis.RedisStore`.

The hash ``natter:online`` maps a nick key to ``[nick, node, session, fp,
admin]`` (the client's identity's fingerprint or None, and whether it is an
admin: what a ``mod`` on another node needs to know of its target). A
node claims a nick for one of its clients with the Lua script
:data:`CLAIM`: it fails while another live node's client of another session
holds it; a node is live while its key ``natter:node:ID`` exists (its stream
reader renews it every second, :data:`~server.store.redis.NODE_TTL_MS`), so a
node that dies without a word loses its nicks when the key expires, and a
client resuming its own session takes its nick back at once. Releasing waits
for the store's next commit, and removes only this node's entry.

Thread: the hub thread only.
"""
from __future__ import annotations

import json

from . import Unavailable
from .redis_keys import NODE, P

ONLINE = P + "online"

# KEYS: online. ARGV: nick key, the entry (JSON [nick, node, session]), this node,
# the session ('' for none), the prefix of node keys. Returns the holder's entry
# when another live node's client (of another session) holds the nick, else nil.
CLAIM = """
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if cur then
  local c = cjson.decode(cur)
  if c[2] ~= ARGV[3] and (ARGV[4] == '' or tostring(c[3]) ~= ARGV[4])
     and redis.call('EXISTS', ARGV[5] .. c[2]) == 1 then
    return cur
  end
end
redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
return false
"""
# KEYS: online. ARGV: nick key, this node. Only this node's entry is removed.
RELEASE = """
local cur = redis.call('HGET', KEYS[1], ARGV[1])
if cur and cjson.decode(cur)[2] == ARGV[2] then redis.call('HDEL', KEYS[1], ARGV[1]) end
return 0
"""


class RedisOnline:
    """The online part of the Redis store (uses its ``_db``, ``_calls``, ``_lua``, ``_ops``, ``node``)."""

    def _w_release(self, pipe, key):
        self._lua["release"](keys=[ONLINE], args=[key, self.node], client=pipe)

    def claim_online(self, key: str, nick: str, session: int | None, fp: str | None = None,
                     admin: bool = False) -> str | None:
        """Take the nick (key) for a client of this node; None when it is ours
        now, else the nick as its holder on another live node has it."""
        entry = json.dumps([nick, self.node, session, fp, bool(admin)])
        # A release still waiting for this nick (its old holder here was just
        # replaced) must not remove the new holder when it is written.
        self._ops = [op for op in self._ops if op != ("release", (key,))]
        with self._calls():
            held = self._lua["claim"](keys=[ONLINE], args=[key, entry, self.node, "" if session is None else session,
                                                          NODE])
        return json.loads(held)[0] if held else None

    def release_online(self, key: str) -> None:
        """This node's client no longer holds the nick (written at the next commit)."""
        self._ops.append(("release", (key,)))

    def online_holder(self, key: str) -> tuple[str, int | None] | None:
        """(nick, session) of whoever holds the nick on a live node, or None."""
        with self._calls():
            cur = self._db.hget(ONLINE, key)
            if cur is None:
                return None
            nick, node, session = json.loads(cur)[:3]
            if node != self.node and not self._db.exists(NODE + node):
                return None
        return nick, session

    def online_elsewhere(self, key: str) -> tuple | None:
        """(nick, session, fingerprint, admin) of the client holding the nick
        on another live node, or None (free, or held on this node)."""
        with self._calls():
            cur = self._db.hget(ONLINE, key)
            if cur is None:
                return None
            entry = json.loads(cur)
            if entry[1] == self.node or not self._db.exists(NODE + entry[1]):
                return None
        nick, _node, session = entry[:3]
        fp, admin = entry[3:5] if len(entry) >= 5 else (None, False)     # (an older node's entry has neither)
        return nick, session, fp, bool(admin)

    def online_nicks(self, here: list) -> list[str]:
        """Every nick online on a live node of the deployment (``here``, this
        node's own, when Redis cannot be asked: a welcome still goes out)."""
        try:
            with self._calls():
                entries = self._live_entries()
        except Unavailable:
            return here             # (the store logged why)
        return list(here) + [e[0] for e in entries if e[1] != self.node]

    def online_sessions(self) -> list:
        """The sessions online on the live nodes (raises Unavailable)."""
        with self._calls():
            return [e[2] for e in self._live_entries()]

    def _live_entries(self) -> list:
        """[nick, node, session] of every nick held on a live node (in _calls)."""
        entries = [json.loads(v) for v in self._db.hvals(ONLINE)]
        nodes = sorted({e[1] for e in entries} - {self.node})
        pipe = self._db.pipeline(transaction=False)
        for n in nodes:
            pipe.exists(NODE + n)
        alive = dict(zip(nodes, pipe.execute())) if nodes else {}
        return [e for e in entries if e[1] == self.node or alive.get(e[1])]
