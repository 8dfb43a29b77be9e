"""Fakes for testing the controller without Tk or a network.

:class:`FakeView` implements :class:`chatgui.app.view.View` by recording
what the controller asked for, one conversation per room id
(:attr:`FakeView.lines` is the visible one's); :class:`FakeClient` stands
in for :class:`chatgui.net.client.ChatClient` and records what would have
been sent.
"""
from __future__ import annotations

import itertools
import threading


class FakeView:
    def __init__(self):
        self.convos = {None: []}   # room id -> its Line objects, in order (None: before any show_room)
        self.visible = None        # the room id show_room made visible
        self.headers = {}          # room id -> (title, topic) of its last show_room
        self.shown = []            # room ids, in the order show_room was called
        self.rooms = []            # the RoomEntry list of the last set_rooms
        self.active = None         # and its active id
        self.forgotten = []        # room ids forget_room dropped
        self.markers = {}          # room id -> msg id of the "new messages" line (None: removed)
        self.prepends = []         # (room id, [Line], more), in order
        self.starts = set()        # room ids told "the conversation starts here" (prepend more=False)
        self.extends = []          # (room id, [Line], live), in order
        self.below = {}            # room id -> live messages counted by arrived_below, not drawn
        self.browsers = []         # each show_room_browser's list of RoomChoice
        self.pending = {}          # key -> Line
        self.pending_room = {}     # key -> room id given to add_pending
        self.users = []
        self.me = ""
        self.online = None
        self.status = ("", "")
        self.statuses = []
        self.action = None
        self.title = ""
        self.bells = 0
        self.input = ("", None)
        self.theme = None
        self.font_size = None
        self.quit_called = False
        self.screen = None         # "connect" | "chat"
        self.form = None           # (values, error, busy)
        self.doctor_runs = []      # (host, port, tls, nick, password) the doctor was asked about
        self.roles = {}            # the roles given with the last set_users
        self.updates = []          # (room id, msg id, Line) of each update_line, in order
        self.powers = {}           # room id -> its last RoomPowers
        self.questions = {}        # room id -> its last list of Question
        self.settings_shown = []   # each RoomSettings show_room_settings opened
        self.identity = None       # the fingerprint set_identity gave
        self.clipboard = None      # the last copy_text
        self.cards = {}            # file id -> the last FileCard shown or updated
        self.transfers = {}        # tid -> the last TransferView shown (removed by end_transfer)
        self.transfers_ended = []  # tids, in order
        self.save_answer = None    # what ask_save_path answers (a path, or None: cancelled)
        self.save_asked = []       # (name, folder) of each ask_save_path
        self.files_answer = []     # what ask_files answers
        self.pictures = []         # (title, png) of each show_picture

    def show_connect(self, values, error, busy, focus=None, trust=None, trust_label=None):
        self.screen = "connect"
        self.form = (values, error, busy)
        self.focus = focus
        self.trust = trust
        self.trust_label = trust_label

    def show_chat(self):
        self.screen = "chat"

    @property
    def lines(self):
        """The visible conversation's lines."""
        return self.convos.setdefault(self.visible, [])

    def room_lines(self, room):
        return self.convos.get(room, [])

    def set_rooms(self, rooms, active):
        ids = [r.id for r in rooms]
        assert len(set(ids)) == len(ids), f"a room listed twice: {ids}"
        assert active is None or active in ids, f"active {active!r} not in {ids}"
        self.rooms, self.active = list(rooms), active

    def show_room(self, room, title, topic):
        self.visible = room
        self.convos.setdefault(room, [])
        self.headers[room] = (title, topic)
        self.shown.append(room)

    def forget_room(self, room):
        self.convos.pop(room, None)
        self.forgotten.append(room)

    def append(self, line, room=None):
        self.convos.setdefault(self.visible if room is None else room, []).append(line)
        if line.card is not None:
            self.cards[line.card.fid] = line.card

    # issue 12
    def update_card(self, card):
        assert card.fid in self.cards, f"update of a card never shown: {card.fid}"
        self.cards[card.fid] = card

    def show_transfer(self, transfer):
        self.transfers[transfer.tid] = transfer

    def end_transfer(self, tid):
        self.transfers.pop(tid, None)
        self.transfers_ended.append(tid)

    def ask_save_path(self, name, folder):
        self.save_asked.append((name, folder))
        return self.save_answer

    def ask_files(self):
        return list(self.files_answer)

    def show_picture(self, title, png):
        self.pictures.append((title, png))

    def prepend(self, room, lines, more):
        self.prepends.append((room, list(lines), more))
        self.cards.update({ln.card.fid: ln.card for ln in lines if ln.card is not None})
        self.convos[room] = list(lines) + self.convos.get(room, [])
        if not more:
            self.starts.add(room)

    def extend(self, room, lines, live):
        self.extends.append((room, list(lines), live))
        self.convos[room] = self.convos.get(room, []) + list(lines)

    def arrived_below(self, room):
        self.below[room] = self.below.get(room, 0) + 1

    def set_unread_marker(self, room, msg_id):
        self.markers[room] = msg_id

    def show_room_browser(self, rooms):
        self.browsers.append(list(rooms))

    def add_pending(self, key, line, room=None):
        assert key not in self.pending
        self.pending[key] = line
        self.pending_room[key] = room

    def remove_pending(self, key):
        self.pending.pop(key, None)
        self.pending_room.pop(key, None)

    def clear(self, room=None):
        self.convos[self.visible if room is None else room] = []

    def set_users(self, users, me, online=True, roles=None):
        self.users, self.me, self.online = list(users), me, online
        self.roles = dict(roles or {})
        assert set(self.roles) <= set(self.users), f"roles for people not listed: {self.roles}"

    def update_line(self, room, msg_id, line):
        """Replaces the line of ``msg_id`` in ``room`` (if shown), like the window."""
        self.updates.append((room, msg_id, line))
        lines = self.convos.get(room, [])
        for i, old in enumerate(lines):
            if old.msg_id == msg_id:
                lines[i] = line

    def set_powers(self, room, powers):
        self.powers[room] = powers

    def set_questions(self, room, questions):
        self.questions[room] = list(questions)

    def show_room_settings(self, settings):
        self.settings_shown.append(settings)

    def set_identity(self, fingerprint):
        self.identity = fingerprint

    def copy_text(self, text):
        self.clipboard = text

    def set_status(self, text, state, action=None):
        self.status = (text, state)
        self.action = action
        self.statuses.append(self.status)

    def set_title(self, title):
        self.title = title

    def bell(self):
        self.bells += 1

    def set_input(self, text, cursor=None):
        self.input = (text, len(text) if cursor is None else cursor)

    def set_theme(self, name):
        self.theme = name

    def set_font_size(self, size):
        self.font_size = size

    def quit(self):
        self.quit_called = True

    def run_doctor(self, host, port, tls, nick, password):
        self.doctor_runs.append((host, port, tls, nick, password))

    # helpers for assertions
    def texts(self, kind=None, room=False):
        """The texts of the visible conversation (or of ``room``)."""
        lines = self.lines if room is False else self.room_lines(room)
        return [ln.text for ln in lines if kind is None or ln.kind == kind]

    def entry(self, room):
        """The RoomEntry of ``room`` in the last set_rooms, or None."""
        return next((r for r in self.rooms if r.id == room), None)

    def kinds(self):
        return [ln.kind for ln in self.lines]

    def line_of(self, room, msg_id):
        """The Line of message ``msg_id`` in ``room``, or None."""
        return next((ln for ln in self.room_lines(room) if ln.msg_id == msg_id), None)


class FakeClient:
    instances: list = []

    def __init__(self, host, port, nick, *, events, password=None, tls=False, accept_fingerprint=None,
                 identity=None):
        self.host, self.port, self.nick, self.events, self.password = host, port, nick, events, password
        self.tls, self.accept_fingerprint, self.identity = tls, accept_fingerprint, identity
        self.sent = []             # (kind, args, ref); read markers as ("read", (room, upto), None)
        self.said_in = {}          # ref of a say -> the room it was said in
        self.started = False
        self.closed = False
        self.retries = 0
        self._refs = itertools.count(1)
        FakeClient.instances.append(self)

    def start(self):
        self.started = True
        return self

    def _ref(self):
        return f"r{next(self._refs)}"

    def say(self, text, room="lobby"):
        ref = self._ref()
        self.sent.append(("say", text, ref))
        self.said_in[ref] = room
        return ref

    def join(self, room, key=None, topic=None):
        ref = self._ref()
        self.sent.append(("join", (room, key), ref))
        return ref

    def part(self, room):
        ref = self._ref()
        self.sent.append(("part", room, ref))
        return ref

    def topic(self, room, text):
        ref = self._ref()
        self.sent.append(("topic", (room, text), ref))
        return ref

    def history(self, room=None, with_=None, before=None, after=None, limit=None):
        ref = self._ref()
        self.sent.append(("history", dict(room=room, with_=with_, before=before, after=after, limit=limit), ref))
        return ref

    def rooms(self):
        ref = self._ref()
        self.sent.append(("rooms", None, ref))
        return ref

    def read(self, room, upto):
        self.sent.append(("read", (room, upto), None))

    def of(self, kind):
        """What was sent of one kind: [(args, ref)]."""
        return [(args, ref) for k, args, ref in self.sent if k == kind]

    def dm(self, to, text):
        ref = self._ref()
        self.sent.append(("dm", (to, text), ref))
        return ref

    def set_nick(self, nick):
        ref = self._ref()
        self.sent.append(("nick", nick, ref))
        return ref

    def retry_now(self):
        self.retries += 1

    # issue 11
    def forget(self):
        ref = self._ref()
        self.sent.append(("forget", None, ref))
        return ref

    def mod(self, room, action, nick, reason=None, duration=None):
        ref = self._ref()
        self.sent.append(("mod", (room, action, nick, reason, duration), ref))
        return ref

    def mode(self, room, **changes):
        ref = self._ref()
        self.sent.append(("mode", (room, changes), ref))
        return ref

    def delete(self, msg_id, reason=None):
        ref = self._ref()
        self.sent.append(("delete", (msg_id, reason), ref))
        return ref

    def edit(self, msg_id, text):
        ref = self._ref()
        self.sent.append(("edit", (msg_id, text), ref))
        return ref

    def release(self, question_id):
        ref = self._ref()
        self.sent.append(("release", question_id, ref))
        return ref

    def audit(self, room, before=None):
        ref = self._ref()
        self.sent.append(("audit", room if before is None else (room, before), ref))
        return ref

    def close(self, timeout=1.0):
        self.closed = True
        return True


class FakeRoom:
    """Stands in for chatgui.app.hosting.HostedRoom; records on which thread
    it was started and stopped, and in what order (``log``)."""
    started: list = []
    log: list = []              # ("start" | "stop", port), in the order they happened

    def __init__(self, port, password=None, lan=False, tls=False, name=None, admin_fingerprint=None):
        self.requested_port, self.password, self.lan, self.tls, self.name = port, password, lan, tls, name
        self.admin_fingerprint = admin_fingerprint
        self.stopped = False
        self.connect_host = "127.0.0.1"
        self.fingerprint = "AB12 CD34" if tls else None
        self.start_thread = self.stop_thread = None

    @property
    def port(self):
        return self.requested_port

    def start(self):
        self.start_thread = threading.current_thread().name
        FakeRoom.log.append(("start", self.requested_port))
        FakeRoom.started.append(self)
        return self

    def matches(self, port, password, lan, tls=False):
        return not self.stopped and (port, password or None, lan, tls) == \
            (self.requested_port, self.password, self.lan, self.tls)

    def describe(self):
        return f"You are hosting this room on port {self.port}."

    def stop(self):
        if not self.stopped:
            self.stop_thread = threading.current_thread().name
            FakeRoom.log.append(("stop", self.requested_port))
        self.stopped = True


class FakeTransfers:
    """Stands in for chatgui.net.transfers.Transfers in controller tests:
    records what was asked; the test puts the events on the queue itself."""
    made: list = []

    def __init__(self, client, events, thumbnailer=None):
        self.client, self.events, self.thumbnailer = client, events, thumbnailer
        self.sent = []           # (tid, path, room, to, name)
        self.fetched = []        # (tid, FileInfo, dest)
        self.cancelled = []
        self.closed = False
        self._ids = itertools.count(1)
        FakeTransfers.made.append(self)

    def send(self, path, room=None, to=None, name=None):
        tid = f"up{next(self._ids)}"
        self.sent.append((tid, path, room, to, name))
        return tid

    def fetch(self, info, dest):
        tid = f"down{next(self._ids)}"
        self.fetched.append((tid, info, dest))
        return tid

    def cancel(self, tid):
        self.cancelled.append(tid)

    def on_event(self, event):
        return False

    def close(self, timeout=2.0):
        self.closed = True
        return True


class FakeFileServer:
    """A loopback TCP server that speaks only issue 12's transfer lines
    (put / get), for testing chatgui.net.transfers without the real server.

    ``files``: file id -> bytes it holds (complete, for get); ``held``: file
    id -> bytes of an upload so far; ``expect``: file id -> (size, sha256)
    of an offer. ``cut_after``: a transfer connection is cut after this many
    bytes of body (once; then None). ``replies`` counts what it answered.
    Thread: ``fake-file-server`` accepts, one ``fake-file-conn`` per connection.
    """

    def __init__(self):
        import socket
        self.sock = socket.socket()
        self.sock.bind(("127.0.0.1", 0))
        self.sock.listen(16)
        self.port = self.sock.getsockname()[1]
        self.files, self.held, self.expect = {}, {}, {}
        self.tokens = {}
        self.sessions = {"sess-1"}
        self.cut_after = None
        self.stall_after = None      # get: send this many bytes, then wait for the client to hang up
        self.answer_put = threading.Event()     # cleared by a test: put_ok waits for it
        self.answer_put.set()
        self.lines = []
        self.lock = threading.Lock()
        self._closing = False
        self._thread = threading.Thread(target=self._accept, name="fake-file-server", daemon=True)
        self._thread.start()

    def close(self):
        import socket
        self._closing = True
        try:
            self.sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        self.sock.close()
        self._thread.join(5)

    def offer(self, fid, data_size, sha256):
        """What the real server does on upload: a token and the bytes held."""
        import secrets
        with self.lock:
            self.expect[fid] = (data_size, sha256)
            token = self.tokens[fid] = secrets.token_hex(8)
            return token, len(self.held.get(fid, b""))

    def _accept(self):
        while not self._closing:
            try:
                conn, _ = self.sock.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(conn,), name="fake-file-conn", daemon=True).start()

    def _serve(self, conn):
        import hashlib
        import json
        with conn:
            buf = b""
            while b"\n" not in buf:
                data = conn.recv(65536)
                if not data:
                    return
                buf += data
            line, _, rest = buf.partition(b"\n")
            frame = json.loads(line)
            with self.lock:
                self.lines.append(frame)
                cut, self.cut_after = self.cut_after, None
            fid = frame["file"]
            if frame["type"] == "get":
                body = self.files.get(fid)
                if frame.get("resume") not in self.sessions or body is None:
                    conn.sendall(b'{"type":"error","code":"no_such_file","message":"No such file."}\n')
                    return
                tail = body[frame["offset"]:]
                conn.sendall(json.dumps({"type": "blob", "file": fid, "size": len(tail)}).encode() + b"\n")
                stall, self.stall_after = self.stall_after, None
                if stall is not None:
                    conn.sendall(tail[:stall])
                    conn.recv(1)              # until the client hangs up
                    return
                conn.sendall(tail if cut is None else tail[:cut])
                return
            size, digest = self.expect[fid]
            if frame["token"] != self.tokens.get(fid):
                conn.sendall(b'{"type":"error","code":"forbidden","message":"Stale token."}\n')
                return
            held = bytearray(self.held.get(fid, b""))
            if frame["offset"] != len(held):
                conn.sendall(b'{"type":"error","code":"bad_frame","message":"Wrong offset."}\n')
                return
            data = rest
            while True:
                held += data
                if cut is not None and len(held) - frame["offset"] >= cut:
                    del held[frame["offset"] + cut:]
                    with self.lock:
                        self.held[fid] = bytes(held)
                    return                    # cut in the middle: no answer
                if len(held) >= size:
                    break
                data = conn.recv(65536)
                if not data:
                    with self.lock:
                        self.held[fid] = bytes(held)
                    return
            held = bytes(held[:size])
            with self.lock:
                self.held.pop(fid, None)
            if hashlib.sha256(held).hexdigest() != digest:
                conn.sendall(b'{"type":"error","code":"bad_file","message":"The checksum does not match."}\n')
                return
            with self.lock:
                self.files[fid] = held
            self.answer_put.wait(30)        # a test may hold the answer back (the server "checking")
            conn.sendall(json.dumps({"type": "put_ok", "file": fid}).encode() + b"\n")


class FakeTransferClient:
    """What Transfers needs of a ChatClient, against a FakeFileServer: an
    offer is answered at once (UploadReady on ``events``, as the network
    client would put it), open_transfer dials the fake server (plain TCP),
    ``session`` is the token the fake server knows. ``refuse``: an error
    code to refuse offers with instead."""

    def __init__(self, server, events):
        self.server, self.events = server, events
        self.session = "sess-1"
        self.offers = []
        self.refuse = None
        self.dials = 0
        self._ids = itertools.count(1)

    def upload(self, name, size, sha256, mime, room=None, to=None, thumb=None):
        from server import protocol as p
        from chatgui.net import events as ev
        ref = f"u{next(self._ids)}"
        self.offers.append(dict(name=name, size=size, sha256=sha256, mime=mime, room=room, to=to,
                                thumb=thumb, ref=ref))
        if self.refuse:
            self.events.put(ev.Refused(ref, self.refuse, "The file is larger than this server takes."))
            return ref
        fid = "f" + sha256[:8]
        token, offset = self.server.offer(fid, size, sha256)
        self.events.put(p.UploadReady(fid, token, offset, ref))
        self.events.put(ev.Acked(ref, None))
        return ref

    def open_transfer(self, stopping, timeout=None):
        import socket
        from chatgui.net.transport import PlainTransport
        self.dials += 1
        return PlainTransport(socket.create_connection(("127.0.0.1", self.server.port), timeout=5))
