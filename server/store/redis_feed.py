"""A node's reader of the deployment's stream: the only way events reach its clients.

:class:`StreamReader` (thread ``redis-feed``) reads ``natter:log`` in order
from the last id it handed on (``XREAD BLOCK``), decodes a batch, and posts
it to the hub as one :class:`~server.core.events.Logged`; it reads the next
batch only once the hub has applied that one (``Logged.applied``), so a busy
hub slows the reader instead of piling batches up in memory.

When Redis is unreachable it logs it once, retries with a growing pause (up
to a second), and goes on from its last id when Redis is back: nothing is
skipped and nothing is read twice. A reader that fell more than the
stream's ``--redis-keep`` entries behind (the append script moved the
entries it had not read yet to the archive) reads those from the archive
first, in order: a trim never leaves it a hole. On each round it also renews the node's
key (``natter:node:ID``, :data:`~server.store.redis.NODE_TTL_MS`), which keeps
this node's nicks taken.

In the same ``XREAD`` it reads the presence stream (the other nodes'
``joined``, ``left``, ``renamed``; :mod:`.redis_presence`): each such frame goes
in the batch (``Logged.presence``) that hands on the log's entries up to
its ``at``, and about once a second the nodes seen are checked for death.

Thread: its own, with its own Redis connection.
"""
from __future__ import annotations

import logging
import threading

from ..core.events import Logged
from .redis import ARCHIVE, EDITS, LOG, TEXT, archived_fields, connect, decode, redis
from .redis_keys import NODE
from .redis_presence import PRESENCE, PresenceReader

log = logging.getLogger("natter.server")

BATCH = 500          # entries per read
BLOCK_MS = 1000      # how long one read waits for new entries (and how often the node key is renewed)


class StreamReader:
    def __init__(self, url: str, after: int, post, node_key: str, node_ttl_ms: int,
                 presence_after: int | None = None, members: tuple = ()):
        self.after = after              # the last id handed to the hub
        self._post = post
        self._node_key, self._node_ttl = node_key, node_ttl_ms
        self._db = connect(url, timeout=BLOCK_MS / 1000 + 5)
        self.presence = PresenceReader(self._db, node_key[len(NODE):], presence_after, members)
        self._stopping = threading.Event()
        self.thread = threading.Thread(target=self.run, name="redis-feed", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        """Any thread: end the reader within about BLOCK_MS and close its connection."""
        self._stopping.set()
        if self.thread.ident is not None and self.thread is not threading.current_thread():
            self.thread.join(BLOCK_MS / 1000 + 6)
        self._db.close()

    def run(self) -> None:
        pause, lost = 0.05, False
        while not self._stopping.is_set():
            try:
                alive = self._db.set(self._node_key, b"1", px=self._node_ttl, get=True)
                presence = self.presence
                if alive is None:               # it expired: the others buried this node
                    presence.revived(self.after)
                if presence.after is None:      # the store could not read the members at start
                    presence.restart(self.after)
                got = dict(self._db.xread({LOG: f"0-{self.after}", **presence.streams()}, count=BATCH,
                                          block=BLOCK_MS))
                entries = got.get(LOG.encode())
                events, upto = self._events(entries) if entries else ([], self.after)
                presence.take(got.get(PRESENCE.encode()), upto)
                presence.check()
            except (redis.RedisError, OSError) as e:
                if not lost:
                    log.warning("redis-feed: Redis is unreachable (%s); reading on from id %d when it is back",
                                e, self.after)
                lost = True
                self._stopping.wait(pause)
                pause = min(1.0, pause * 2)
                continue
            if lost:
                log.warning("redis-feed: Redis is back; reading on from id %d", self.after)
                lost, pause = False, 0.05
            shared = presence.due(upto)
            if not events and not shared:
                self.after = upto       # ids dropped from the archive (below the floor): nothing to hand on
                continue
            batch = Logged(events, shared)
            self._post(batch)
            while not batch.applied.wait(0.5):
                if self._stopping.is_set():
                    return
            self.after = upto

    def _events(self, entries: list) -> tuple[list, int]:
        """The events of a read of the stream, and the last id they account
        for. When the first entry is not the next id, the ids between were
        trimmed to the archive before this reader got them: those come first
        (at most BATCH of them, the stream's entries on the next round)."""
        first = int(entries[0][0].split(b"-")[1])
        if first > self.after + 1:
            ids = list(range(self.after + 1, min(first, self.after + 1 + BATCH)))
            pipe = self._db.pipeline(transaction=False)
            pipe.hmget(ARCHIVE, ids)
            pipe.hmget(TEXT, ids)
            pipe.hmget(EDITS, ids)
            archived, texts, changes = pipe.execute()
            return [decode(f"0-{i}", archived_fields(old), text, change)
                    for i, old, text, change in zip(ids, archived, texts, changes) if old is not None], ids[-1]
        ids = [int(entry_id.split(b"-")[1]) for entry_id, _ in entries]
        pipe = self._db.pipeline(transaction=False)
        pipe.hmget(TEXT, ids)
        pipe.hmget(EDITS, ids)
        texts, changes = pipe.execute()
        return [decode(entry_id, fields, text, change)
                for (entry_id, fields), text, change in zip(entries, texts, changes)], ids[-1]
