"""Files and pictures (issue 12): offers, transfers' first lines, announcements.

- ``upload`` (the chat connection): checked like a ``say`` to its room or
  a ``dm`` to its nick, then against ``--max-file-size`` and
  ``--files-quota``; answered ``upload_ready``. An upload in progress is a
  :class:`Pending` (its record, its current token, its transfer thread).
  A session that offers the same file again (same SHA-256, size and
  target) gets the same id and the bytes held as its offset.
- A transfer connection's first line (:meth:`FileRules.on_handoff`): a
  ``put`` with the current token starts an :class:`~server.transfer.Upload`,
  a ``get`` from a session that may see the file a
  :class:`~server.transfer.Download`; anything else gets one error line.
- A checked upload (``FileDone``) is announced: a ``message`` to its room or
  a ``dm`` to its two ends, stored with its ``file`` object, so catch-up
  and history carry it; the uploader's ``put_ok`` goes after the commit.
  Finished files past the quota expire, oldest first (their messages get
  ``"expired": true``).
- Deleting a file's message deletes its bytes (:meth:`file_deleted`, from
  :mod:`server.core.redaction`).
- With a shared store (``--redis``) the records, the bytes and the quota's
  totals are the deployment's (:mod:`server.store.redis_files`): the rules
  are the same, but what this node holds in memory is only its own uploads
  in progress; the quota is counted and made room for in the store, one
  atomic step at a time, and an upload another node started (or one this
  node had before a restart) is taken up again when its session offers it
  here.

The bytes never pass through here: the hub only checks, records and hands
sockets to transfer threads.

Thread: the hub thread only.
"""
from __future__ import annotations

import hmac
import json
import os
import secrets
import tempfile
import time

from .. import protocol as p
from ..store import DIRECT, MESSAGE, Unavailable
from ..store.files import COMPLETE, DELETED, DROPPED, PARTIAL, FileBlobs, FileRecord, file_of
from ..transfer import ByteBucket, Channel, Download, Refusal, TransferSet, Upload
from .fanout import Out

PARTIAL_EXPIRY = 24 * 3600.0     # seconds without progress before a partial upload is given up
SWEEP_EVERY = 60.0               # shared store: seconds between two looks for stale uploads of any node
MAX_TRANSFERS_PER_SESSION = 8    # transfer connections one session may have at once


class Pending:
    """An upload in progress (hub). ``touched`` is also set by its transfer
    thread (a float store is atomic)."""

    __slots__ = ("record", "token", "transfer", "touched")

    def __init__(self, record: FileRecord, token: str):
        self.record = record
        self.token = token
        self.transfer = None
        self.touched = time.monotonic()


def files_dir(config) -> str:
    """``--files-dir``, or ``files`` beside the history file."""
    if config.files_dir:
        return config.files_dir
    db = config.db_path()
    if db == ":memory:":
        return tempfile.mkdtemp(prefix="natter-files-")
    return os.path.join(os.path.dirname(os.path.abspath(db)), "files")


class FileRules:
    """upload, transfers and announcements (mixed into Chat)."""

    def _load_files(self) -> None:
        self.transfers = TransferSet()
        self.uploads: dict = {}          # file id -> Pending
        self.files_used = 0              # bytes of the finished files kept
        self._buckets: dict = {}         # session -> ByteBucket, for its uploads' rate
        self._verdicts: list = []        # (Verdict, frame): answered after the pass commits
        self._finished: dict = {}        # file id -> FileRecord, oldest first (the quota's order)
        self._next_sweep = 0.0           # shared store: when to look for stale uploads of any node
        if self.store.shared:
            # Records, bytes and totals are the deployment's, in the store; a
            # node keeps nothing on disk (and never sweeps a folder that a
            # server of this computer without --redis may use).
            self.blobs = self.store.file_blobs()
            return
        self.blobs = FileBlobs(files_dir(self.config))
        known = set()
        for rec in self.store.files_in_state(PARTIAL):
            self.uploads[rec.id] = Pending(rec, secrets.token_urlsafe(24))   # its old token died with the server
            known.add(rec.id)
        for rec in self.store.files_in_state(COMPLETE):
            self._finished[rec.id] = rec
            self.files_used += rec.size
            known.add(rec.id)
        for name in self.blobs.names():   # left by a crash between a disk change and its commit
            if name not in known:
                self.blobs.remove(name)

    @property
    def files_reserved(self) -> int:
        """Bytes the uploads in progress will need (shared store: on every node)."""
        if self.store.shared:
            return self.store.file_totals()[1]
        return sum(u.record.size for u in self.uploads.values())

    # -- the offer ------------------------------------------------------------

    def on_upload(self, conn, up: p.Upload) -> None:
        if not self._v2(conn, up, "upload"):
            return
        room = target = None
        if up.room is not None:
            room = self._present(conn, up.room, up.ref)
            if room is None or self.speaking_refused(conn, room, up.ref):
                return
            if self.mod_of(room.key).modes["questions"] and not self.is_op(conn, room):
                return self._refuse(conn, f"#{room.name} takes questions: files there come from its ops.", up.ref)
        else:
            target = self.direct_target(p.nick_key(up.to))     # here, or on another node of a shared store
            if target is None:
                return self.error(conn, p.ProtocolError(p.NO_SUCH_USER, f"Nobody called {up.to[:40]!r} is online.",
                                                        up.ref), counts=False)
            if self.dm_refused(conn, target, up.ref):
                return
        cfg = self.config
        if up.size > cfg.max_file_size:
            why = (f"The file is {p.human_size(up.size)}; this server takes files up to "
                   f"{p.human_size(cfg.max_file_size)}.")
            return self.error(conn, p.ProtocolError(p.FILE_TOO_LARGE, why, up.ref), counts=False)
        pending = self._same_offer(conn, up, room, target)
        if pending is None:
            if self.files_reserved + up.size > cfg.files_quota:
                return self.error(conn, p.ProtocolError(p.QUOTA_FULL, "The server's space for files is taken by "
                                                                      "uploads in progress; try again later.", up.ref),
                                  counts=False)
            rec = FileRecord(secrets.token_urlsafe(16), up.name, up.size, up.sha256, up.mime, up.thumb, conn.nick,
                             conn.session, room.key if room is not None else None,
                             target.nick if target is not None else None,
                             target.session if target is not None else None, PARTIAL, round(self.clock(), 3))
            self.store.add_file(rec)
            pending = self.uploads[rec.id] = Pending(rec, "")
        pending.token = secrets.token_urlsafe(24)     # the latest offer's: an older put is refused
        pending.touched = time.monotonic()
        if self.store.shared:       # so that the put may reach any node (a DNS name of several)
            self.store.set_file_token(pending.record.id, pending.token)
        held = min(self.blobs.held(pending.record.id), pending.record.size)
        self.send(conn, p.upload_ready_frame(pending.record.id, pending.token, held, up.ref))

    def _same_offer(self, conn, up: p.Upload, room, target) -> Pending | None:
        """This session's upload in progress of the same file to the same place
        (shared store: also one begun on another node, or before a restart,
        which this node takes up)."""
        def same(rec):
            return rec.session == conn.session and rec.sha256 == up.sha256 and rec.size == up.size and \
                rec.room == (room.key if room is not None else None) and \
                rec.to_session == (target.session if target is not None else None)
        for pending in list(self.uploads.values()):
            if same(pending.record):
                if self.store.shared and self._finished_elsewhere(pending):
                    continue
                return pending
        if self.store.shared:
            for rec in self.store.files_in_state(PARTIAL):
                if same(rec):
                    pending = self.uploads[rec.id] = Pending(rec, "")
                    return pending
        return None

    # -- a transfer connection's first line --------------------------------------

    def on_handoff(self, sock, tls, unsent: bytes, event, rest: bytes) -> None:
        """A socket the JSON door gave up (``rest``: what its reader read
        after the first line): start its transfer thread, or its refusal."""
        channel = Channel(sock, tls, unsent, rest)
        if type(event) is p.Put:
            transfer = self._upload(channel, event)
        else:
            transfer = self._download(channel, event)
        transfer.begin()

    def _refusal(self, channel, code: str, message: str, fid: str) -> Refusal:
        return Refusal(channel, self.transfers, dict(p.error_frame(code, message), file=fid))

    def _upload(self, channel, put: p.Put):
        pending = self.uploads.get(put.file)
        if self.store.shared and (pending is None or not hmac.compare_digest(pending.token, put.token)):
            found = self._offered_elsewhere(put)
            pending = found or pending
            if found is False and pending is None:      # in progress, offered again since: as the token check below
                return self._refusal(channel, p.FORBIDDEN, "That token is not the latest one given for this file: "
                                                           "use the token of your last upload_ready.", put.file)
        if pending is None:
            return self._refusal(channel, p.NO_SUCH_FILE, "No upload of that file is in progress (it finished, was "
                                                          "given up, or was never offered): offer it again.", put.file)
        if not hmac.compare_digest(pending.token, put.token):
            return self._refusal(channel, p.FORBIDDEN, "That token is not the latest one given for this file: use "
                                                       "the token of your last upload_ready.", put.file)
        rec = pending.record
        busy = self._busy(channel, rec.session, put.file)
        if busy is not None:
            return busy
        bucket = None
        if self.config.upload_rate > 0:
            bucket = self._buckets.get(rec.session)
            if bucket is None:
                bucket = self._buckets[rec.session] = ByteBucket(self.config.upload_rate)
        previous = pending.transfer if pending.transfer is not None and pending.transfer.is_alive() else None
        pending.transfer = Upload(channel, self.transfers, self.config.idle_timeout, self.hub, self.blobs, pending,
                                  put.offset, bucket, previous)
        pending.transfer.session = rec.session
        pending.transfer.durable = self.config.sync == "full"
        pending.touched = time.monotonic()
        return pending.transfer

    def _download(self, channel, get: p.Get):
        session = self.store.find_session(get.resume)
        if session is None:
            return self._refusal(channel, p.FORBIDDEN, "That session is unknown here: give the session string of "
                                                       "your welcome as 'resume'.", get.file)
        busy = self._busy(channel, session, get.file)
        if busy is not None:
            return busy
        rec = self.store.get_file(get.file)
        if rec is None or not self._may_see(session, rec):
            return self._refusal(channel, p.NO_SUCH_FILE, "There is no file with that id you can fetch.", get.file)
        if rec.state != COMPLETE:
            why = {PARTIAL: "its upload has not finished", DELETED: "its message was deleted",
                   DROPPED: "its upload was given up"}.get(rec.state, "it expired to make room for newer files")
            return self._refusal(channel, p.NO_SUCH_FILE, f"That file cannot be fetched: {why}.", get.file)
        if get.offset > rec.size:
            return self._refusal(channel, p.BAD_FRAME, f"'offset' is beyond the file's {rec.size} bytes.", get.file)
        download = Download(channel, self.transfers, self.config.idle_timeout, self.blobs, rec.id, get.offset)
        download.session = session
        return download

    def _finished_elsewhere(self, pending: Pending) -> bool:
        """(Shared store) True, and this node forgets it, when an upload it
        holds is no longer in progress in the store (another node took it
        up and finished it, or it was given up)."""
        if pending.transfer is not None and pending.transfer.is_alive():
            return False
        rec = self.store.get_file(pending.record.id)
        if rec is not None and rec.state == PARTIAL:
            return False
        del self.uploads[pending.record.id]
        return True

    def _offered_elsewhere(self, put: p.Put):
        """(Shared store) An upload in progress whose latest offer, on any
        node, gave this put's token: this node takes it up (its Pending).
        False: it is in progress, but that is not its latest token; None:
        no such upload in progress."""
        rec = self.store.get_file(put.file)
        if rec is None or rec.state != PARTIAL:
            return None
        if not self.store.file_token_is(put.file, put.token):
            return False
        pending = self.uploads.get(put.file)
        if pending is None:
            pending = self.uploads[put.file] = Pending(rec, put.token)
        pending.token = put.token
        return pending

    def _busy(self, channel, session: int, fid: str):
        """A refusal when the session has MAX_TRANSFERS_PER_SESSION transfers
        running, or the server as many as --max-clients; else None."""
        running = self.transfers.running()
        if len(running) >= self.config.max_clients or \
                sum(1 for t in running if t.session == session) >= MAX_TRANSFERS_PER_SESSION:
            return self._refusal(channel, p.TOO_MANY_CONNECTIONS, f"At most {MAX_TRANSFERS_PER_SESSION} transfers "
                                                                  "at once per session: wait for one to end.", fid)
        return None

    def _may_see(self, session: int, rec: FileRecord) -> bool:
        """A room file: the session is in its room; a private file: it is one of its two ends."""
        if rec.room is None:
            return session in (rec.session, rec.to_session)
        return rec.room in self.store.session_rooms(session)

    # -- what the transfer threads post -------------------------------------------

    def on_file_done(self, _conn, done) -> None:
        """A checked upload: announce it; its put_ok goes once that is committed."""
        pending = self.uploads.get(done.file)
        if pending is None or pending.transfer is not done.thread:
            done.verdict.set(dict(p.error_frame(p.NO_SUCH_FILE, "This upload was given up meanwhile."), file=done.file))
            return
        rec = pending.record
        obj = p.file_object(rec.id, rec.name, rec.size, rec.mime, rec.sha256, rec.thumb)
        extra = {"file": obj}
        try:
            self._announce_file(rec, obj, extra)
        except Unavailable as e:     # a shared store's backend is away: nothing announced; a new offer finishes it
            done.verdict.set(dict(p.error_frame(p.UNAVAILABLE, f"{e} Offer the file again: its bytes are kept."),
                                  file=done.file, offset=rec.size))
            return
        del self.uploads[done.file]
        try:
            self._make_room()
        except Unavailable:         # the files stay over the quota until the next upload makes room
            self.log.warning("files: could not make room under the quota (Redis away)")
        self._verdicts.append((done.verdict, p.put_ok_frame(rec.id)))
        self.log.info("%s shared %s (%d bytes) as %s", rec.sender, json.dumps(rec.name), rec.size, rec.id)

    def _announce_file(self, rec: FileRecord, obj: dict, extra: dict) -> None:
        """Store (and, with one server, queue) the message of a checked upload, and its record's new state."""
        if rec.room is not None:
            room = self.rooms[rec.room]          # rooms are kept, empty ones too
            msg_id, ts = self.store.add_event(MESSAGE, room.key, rec.sender, rec.name, rec.session, extra)
            room.last_id = msg_id
            out = Out.of(dict(p.message_frame(msg_id, ts, rec.sender, rec.name, room=room.name), file=obj), msg_id)
            self.fanout.broadcast(out, [room])
        else:
            msg_id, ts = self.store.add_event(DIRECT, "", rec.sender, rec.name, rec.session, extra,
                                              recipient=rec.recipient, to_session=rec.to_session)
            out = Out.of(dict(p.dm_frame(msg_id, ts, rec.sender, rec.recipient, rec.name), file=obj), msg_id)
            for session in dict.fromkeys((rec.session, rec.to_session)):   # its two ends, once each
                c = self.by_session.get(session)
                if c is not None:
                    self.fanout.unicast(c, out)
        self.pass_out += len(out.line)
        self.stats["messages"] += 1
        rec.state, rec.completed, rec.msg_id = COMPLETE, round(self.clock(), 3), msg_id
        self.store.set_file_state(rec.id, COMPLETE, rec.completed, msg_id)
        if not self.store.shared:            # a shared store counts the deployment's files itself
            self._finished[rec.id] = rec
            self.files_used += rec.size

    def on_file_dropped(self, _conn, dropped) -> None:
        pending = self.uploads.get(dropped.file)
        if pending is not None and pending.transfer is dropped.thread:
            try:
                self._give_up(pending)
            except Unavailable:     # its record stays an upload in progress: the stale ones' sweep drops it
                self.log.warning("file %s: could not record its dropped upload (Redis away)", dropped.file)

    def _give_up(self, pending: Pending) -> None:
        del self.uploads[pending.record.id]
        self.blobs.remove(pending.record.id)
        self.store.set_file_state(pending.record.id, DROPPED)

    def files_committed(self) -> None:
        """(After the pass committed) the uploads announced in it get their put_ok."""
        if not self._verdicts:
            return              # every pass calls this: most have no upload
        verdicts, self._verdicts = self._verdicts, []
        for verdict, frame in verdicts:
            verdict.set(frame)

    # -- the quota, expiry, deletion ------------------------------------------------

    def _make_room(self) -> None:
        """Expire the oldest finished files until the quota holds them and the uploads in progress."""
        quota = self.config.files_quota
        if self.store.shared:       # the deployment's files, oldest first, each step atomic in the store
            for rec in self.store.expire_oldest(quota):
                self.log.info("file %s (%d bytes) expired to make room", rec.id, rec.size)
            return
        reserved = self.files_reserved
        while self._finished and self.files_used + reserved > quota:
            rec = self._finished.pop(next(iter(self._finished)))
            self.files_used -= rec.size
            self.blobs.remove(rec.id)
            self.store.mark_expired(rec)
            self.log.info("file %s (%d bytes) expired to make room", rec.id, rec.size)

    def expire_uploads(self, now: float) -> None:
        """(tick) Give up partial uploads without progress for PARTIAL_EXPIRY seconds."""
        if self.store.shared:
            if now >= self._next_sweep:
                self._next_sweep = now + SWEEP_EVERY
                self._sweep_shared()
        else:
            for pending in list(self.uploads.values()):
                t = pending.transfer
                if (t is None or not t.is_alive()) and now - pending.touched > PARTIAL_EXPIRY:
                    self._give_up(pending)
        if not any(u.transfer is not None and u.transfer.is_alive() for u in self.uploads.values()):
            self._buckets.clear()

    def _sweep_shared(self) -> None:
        """(Shared store, once a minute) Give up the uploads of every node, a
        dead one's too, with no progress for PARTIAL_EXPIRY seconds (their
        progress is the store's: any node may have taken one up); forget the
        uploads this node holds that are no longer in progress."""
        for rec in self.store.stale_partials(self.clock() - PARTIAL_EXPIRY):
            pending = self.uploads.get(rec.id)
            if pending is None or pending.transfer is None or not pending.transfer.is_alive():
                self.store.set_file_state(rec.id, DROPPED)
        for pending in list(self.uploads.values()):
            self._finished_elsewhere(pending)

    def file_deleted(self, event) -> None:
        """The message ``event`` is being deleted: so are its file's bytes."""
        f = file_of(event.extra)
        if f is None:
            return
        rec = self._finished.pop(f.get("id"), None)
        if rec is not None:
            self.files_used -= rec.size
        self.blobs.remove(f["id"])
        self.store.set_file_state(f["id"], DELETED)

