"""Identity and moderation in Redis: :class:`RedisModeration`, mixed into
:class:`~server.store.redis.RedisStore` (as :mod:`.moderation` is into the
SQLite store).

Hashes under ``natter:``: ``bindings`` (nick key -> [fingerprint, last
used]), ``roles`` ([room, fingerprint] -> role), ``bans`` and ``mutes``
([room, who] -> [room, who, nick, until, by, reason]), ``modes`` (room ->
its modes). Each write goes to Redis at once (they are small, and a node
reads them back at start); Redis unreachable raises
:class:`~server.store.Unavailable` through the store's ``_calls``.

Thread: the hub thread only.
"""
from __future__ import annotations

import json
from .redis_keys import P

BINDINGS, ROLES, MODES = P + "bindings", P + "roles", P + "modes"
_LISTS = ("bans", "mutes")


class RedisModeration:
    """The moderation part of the Redis store (uses its ``_db`` and ``_calls``)."""

    def nick_binding(self, key: str) -> tuple[str, float] | None:
        with self._calls():
            value = self._db.hget(BINDINGS, key)
        return tuple(json.loads(value)) if value is not None else None

    def bind_nick(self, key: str, fp: str, now: float) -> None:
        with self._calls():
            self._db.hset(BINDINGS, key, json.dumps([fp, now]))

    def unbind_nick(self, key: str) -> None:
        with self._calls():
            self._db.hdel(BINDINGS, key)

    def prune_bindings(self, max_age_days: float, now: float) -> int:
        with self._calls():
            old = [k for k, v in self._db.hgetall(BINDINGS).items()
                   if json.loads(v)[1] < now - max_age_days * 86400.0]
            if old:
                self._db.hdel(BINDINGS, *old)
        return len(old)

    def room_roles(self) -> list[tuple[str, str, str]]:
        with self._calls():
            return [tuple(json.loads(k)) + (v.decode(),) for k, v in self._db.hgetall(ROLES).items()]

    def set_role(self, room: str, fp: str, role: str | None) -> None:
        with self._calls():
            if role is None:
                self._db.hdel(ROLES, json.dumps([room, fp]))
            else:
                self._db.hset(ROLES, json.dumps([room, fp]), role)

    def restrictions(self, table: str) -> list[tuple]:
        assert table in _LISTS
        with self._calls():
            return [tuple(json.loads(v)) for v in self._db.hvals(P + table)]

    def restrict(self, table: str, room: str, who: str, nick: str, until: float | None, by: str | None,
                 reason: str | None) -> None:
        assert table in _LISTS
        with self._calls():
            self._db.hset(P + table, json.dumps([room, who]), json.dumps([room, who, nick, until, by, reason]))

    def lift(self, table: str, room: str, who: str) -> None:
        assert table in _LISTS
        with self._calls():
            self._db.hdel(P + table, json.dumps([room, who]))

    def room_modes(self) -> dict:
        with self._calls():
            return {k.decode(): json.loads(v) for k, v in self._db.hgetall(MODES).items()}

    def set_modes(self, room: str, modes: dict) -> None:
        with self._calls():
            self._db.hset(MODES, room, json.dumps(modes))
