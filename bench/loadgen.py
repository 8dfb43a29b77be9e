"""The Python load generator behind ``bench/fanout.py``.

N clients join one chat room (or, with ``Plan.rooms``, one of R rooms:
client i in room i % R, protocol v2), K of them send, and every client
counts the chat lines it receives and the latency of each. The clients are shared out
over several worker *processes* (one per core by default); each worker runs
all of its sockets non-blocking under one ``selectors`` loop in one thread,
so no client waits behind another's thread and the GIL is not shared.

Each text carries its send time as ``time.monotonic_ns()``, which on Linux is
one clock for every process on the machine, so a receiver in another worker
can subtract it. A burst sender stamps each line as it builds it; a paced
sender stamps the time the line was *due*, so a late generator shows up as
latency instead of hiding (as in the Rust yardstick).

The hot path does as little Python per delivery as it can: a chunk from
``recv`` is searched with one compiled regex for the time stamps, which are
appended to an array with the chunk's arrival time. Latencies are worked
out after the run, off the clock.

Coordination (main process <-> workers, over a Pipe each):

    worker -> ("ready", ok_clients, ok_senders, failures)   all handshakes done
    main   -> ("go", t0_ns, ok_senders_total)              start at t0
    worker -> ("done", result dict)

Protocols: ``jsonl`` (this project's: hello/welcome, say/message; a sender
gets its own message back) and ``irc`` (NICK/USER/JOIN #bench, PRIVMSG; a
sender does not), the latter only to measure this generator's own ceiling
against a C server (ngircd).
"""
from __future__ import annotations

import array
import collections
import errno
import json
import math
import os
import re
import selectors
import socket
import time
from dataclasses import dataclass

RECV_SIZE = 256 * 1024
MAX_HANDSHAKING = 128     # connections between connect() and welcome, per worker
SETTLE_NS = 3_000_000_000  # stop when nothing arrived for this long after our sends
NS = 1_000_000_000


@dataclass(frozen=True)
class Plan:
    """One scenario, as every worker sees it."""
    host: str
    port: int
    proto: str              # "jsonl" | "irc"
    clients: int
    senders: int            # client ids 0..senders-1 send
    mode: str               # "burst" | "rate"
    msgs: int = 100         # burst: messages per sender
    rate: float = 100.0     # rate: messages per second in the whole room
    secs: float = 5.0       # rate: for this long
    timeout: float = 60.0   # seconds from go to giving up on missing deliveries
    connect_timeout: float = 90.0
    connect_gap: float = 0.0  # seconds between two connects (whole generator)
    nonce: str = "x"
    rooms: int = 0          # jsonl: 0 = protocol v1 in the lobby; N = v2, client i joins room "r{i % N}"
    ports: tuple = ()       # several servers (bench/scaleout.py): client i connects to ports[i % len]; () = port

    def port_of(self, cid: int) -> int:
        return self.ports[cid % len(self.ports)] if self.ports else self.port

    @property
    def per_sender(self) -> int:
        if self.mode == "burst":
            return self.msgs
        return max(1, round(self.rate * self.secs / self.senders))

    def nick(self, cid: int) -> str:
        return f"lg{cid}x{self.nonce}"

    def room(self, cid: int) -> bytes:
        return b"r%d" % (cid % self.rooms)

    def expected_for(self, cids, ok_senders: int) -> int:
        """Deliveries the clients ``cids`` should count (jsonl echoes to the sender)."""
        total = ok_senders * self.per_sender
        if not self.rooms:
            return total * len(cids)
        # Senders are ids 0..senders-1, each in room id % rooms.
        in_room = [len(range(r, self.senders, self.rooms)) for r in range(self.rooms)]
        return sum(in_room[cid % self.rooms] for cid in cids) * self.per_sender


class _Client:
    __slots__ = ("cid", "sock", "state", "buf", "out", "events")

    def __init__(self, cid, sock):
        self.cid = cid
        self.sock = sock
        self.state = "connecting"   # -> handshake -> ready | failed
        self.buf = b""
        self.out = b""
        self.events = selectors.EVENT_WRITE


def worker(plan: Plan, cids: list, pipe, n_workers: int) -> None:
    """Run in a worker process: connect ``cids``, wait for go, drive, report."""
    try:
        _Worker(plan, cids, pipe, n_workers).run()
    except BaseException as e:  # report, never hang the main process
        try:
            pipe.send(("error", f"{type(e).__name__}: {e}"))
        except OSError:
            pass
        raise


class _Worker:
    def __init__(self, plan, cids, pipe, n_workers):
        self.plan = plan
        self.cids = cids
        self.pipe = pipe
        self.gap_ns = int(plan.connect_gap * n_workers * NS)
        self.sel = selectors.DefaultSelector()
        self.sel.register(pipe.fileno(), selectors.EVENT_READ, None)
        self.clients: list[_Client] = []
        self.failures: list[str] = []
        self.pat = re.compile(b"LG" + plan.nonce.encode() + rb" (\d+)")
        self.stamps = array.array("q")   # send times found, in arrival order
        self.marks: list = []            # (len(stamps) after a chunk, arrival ns)
        self.received = 0
        self.chunks = 0                  # recv calls that returned data, after go
        self.sent = 0
        self.last_delivery = 0
        self.go = None
        if plan.proto == "jsonl":
            self.ping, self.pong = b'{"type":"ping"}', b'{"type":"pong"}\n'
        else:
            self.ping, self.pong = b"PING ", b"PONG :bench\r\n"

    # -- phase 1: connect and handshake --------------------------------

    def run(self) -> None:
        self.connect_all()
        ok = [c for c in self.clients if c.state == "ready"]
        senders = sum(1 for c in ok if c.cid < self.plan.senders)
        self.pipe.send(("ready", len(ok), senders, self.failures[:5] + (
            [f"... {len(self.failures) - 5} more"] if len(self.failures) > 5 else [])))
        deadline = time.monotonic() + self.plan.connect_timeout * 2 + 30
        while self.go is None:          # keep draining (joined frames) until go
            if time.monotonic() > deadline:
                raise TimeoutError("no go from the main process")
            self.poll(0.2)
        t0, ok_senders = self.go[1], self.go[2]
        self.drive(t0, ok_senders, ok)

    def connect_all(self) -> None:
        plan = self.plan
        todo = collections.deque(self.cids)
        handshaking = 0
        deadline = time.monotonic() + plan.connect_timeout
        next_connect = 0
        while (todo or handshaking) and time.monotonic() < deadline:
            now = time.monotonic_ns()
            while todo and handshaking < MAX_HANDSHAKING and now >= next_connect:
                self.start_connect(todo.popleft())
                handshaking += 1
                next_connect = now + self.gap_ns
            wait = 0.2 if not self.gap_ns else max(0.0, min(0.2, (next_connect - now) / NS))
            for key, _ in self.sel.select(wait):
                c = key.data
                if c is None:
                    self.read_pipe()
                    continue
                before = c.state
                self.handshake_step(c)
                if before in ("connecting", "handshake") and c.state in ("ready", "failed"):
                    handshaking -= 1
        for c in self.clients:
            if c.state in ("connecting", "handshake"):
                self.fail(c, "no welcome before the connect timeout")
        for cid in todo:
            self.failures.append(f"client {cid}: never started (connect timeout)")

    def start_connect(self, cid: int) -> None:
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        s.setblocking(False)
        s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        c = _Client(cid, s)
        self.clients.append(c)
        err = s.connect_ex((self.plan.host, self.plan.port_of(cid)))
        if err not in (0, errno.EINPROGRESS):
            self.fail(c, f"connect: {os.strerror(err)}", registered=False)
            return
        self.sel.register(s, selectors.EVENT_WRITE, c)

    def handshake_step(self, c: _Client) -> None:
        nick = self.plan.nick(c.cid)
        if c.state == "connecting":
            err = c.sock.getsockopt(socket.SOL_SOCKET, socket.SO_ERROR)
            if err:
                return self.fail(c, f"connect: {os.strerror(err)}")
            if self.plan.proto == "jsonl" and self.plan.rooms:
                hello = b'{"type":"hello","nick":"%s","v":2}\n' % nick.encode()
            elif self.plan.proto == "jsonl":
                hello = b'{"type":"hello","nick":"%s"}\n' % nick.encode()
            else:
                hello = b"NICK %s\r\nUSER %s 0 * :lg\r\n" % (nick.encode(), nick.encode())
            c.state = "handshake"
            self.set_events(c, selectors.EVENT_READ)
            self.write(c, hello)
            return
        data = self.recv(c)
        if data is None:
            return
        if c.state != "handshake":
            return                       # ready: what comes before go is not counted
        c.buf += data
        *lines, c.buf = c.buf.split(b"\n")
        for line in lines:
            if self.plan.proto == "jsonl" and self.plan.rooms:
                # v2: caught up, then join its room; ready on the room frame.
                if b'"type":"caught_up"' in line:
                    self.write(c, b'{"type":"join","room":"%s","ref":"lg"}\n' % self.plan.room(c.cid))
                elif b'"type":"room"' in line and b'"ref":"lg"' in line:
                    c.state, c.buf = "ready", b""
                    return
                elif b'"type":"error"' in line:
                    return self.fail(c, line.decode(errors="replace")[:200])
            elif self.plan.proto == "jsonl":
                if b'"type":"welcome"' in line:
                    c.state, c.buf = "ready", b""
                    return
                if b'"type":"error"' in line:
                    return self.fail(c, line.decode(errors="replace")[:200])
            else:
                if line.startswith(b"PING"):
                    self.write(c, b"PONG" + line[4:].rstrip(b"\r") + b"\r\n")
                elif b" 001 " in line:
                    self.write(c, b"JOIN #bench\r\n")
                elif b" 366 " in line:
                    c.state, c.buf = "ready", b""
                    return
                elif line.startswith(b"ERROR") or b" 433 " in line:
                    return self.fail(c, line.decode(errors="replace")[:200])

    # -- socket helpers --------------------------------------------------

    def fail(self, c: _Client, why: str, registered: bool = True) -> None:
        c.state = "failed"
        self.failures.append(f"client {c.cid}: {why}")
        if registered:
            try:
                self.sel.unregister(c.sock)
            except (KeyError, ValueError):
                pass
        c.sock.close()

    def set_events(self, c: _Client, events: int) -> None:
        if events != c.events:
            c.events = events
            self.sel.modify(c.sock, events, c)

    def write(self, c: _Client, data: bytes) -> None:
        """Send now what the socket takes; keep the rest for EVENT_WRITE."""
        if c.out:
            c.out += data
            return
        try:
            n = c.sock.send(data)
        except BlockingIOError:
            n = 0
        except OSError as e:
            return self.fail(c, f"send: {e}")
        if n < len(data):
            c.out = data[n:]
            self.set_events(c, selectors.EVENT_READ | selectors.EVENT_WRITE)

    def flush(self, c: _Client) -> None:
        try:
            n = c.sock.send(c.out)
        except BlockingIOError:
            return
        except OSError as e:
            return self.fail(c, f"send: {e}")
        c.out = c.out[n:]
        if not c.out:
            self.set_events(c, selectors.EVENT_READ)

    def recv(self, c: _Client):
        try:
            data = c.sock.recv(RECV_SIZE)
        except BlockingIOError:
            return None
        except OSError as e:
            self.fail(c, f"recv: {e}")
            return None
        if not data:
            self.fail(c, "closed by the server")
            return None
        return data

    def read_pipe(self) -> None:
        msg = self.pipe.recv()
        if msg[0] == "go":
            self.go = msg

    def poll(self, timeout: float) -> None:
        """One selector round in the run phase: read, count, flush, answer pings."""
        pat, stamps, marks = self.pat, self.stamps, self.marks
        for key, events in self.sel.select(timeout):
            c = key.data
            if c is None:
                self.read_pipe()
                continue
            if events & selectors.EVENT_WRITE and c.out:
                self.flush(c)
                if c.state == "failed":
                    continue
            if not events & selectors.EVENT_READ:
                continue
            if c.state != "ready":
                self.handshake_step(c)
                continue
            data = self.recv(c)
            if data is None:
                continue
            now = time.monotonic_ns()
            self.chunks += 1
            if c.buf:
                data = c.buf + data
            cut = data.rfind(b"\n") + 1
            c.buf = data[cut:]
            found = pat.findall(data, 0, cut)
            if found:
                stamps.extend(map(int, found))
                marks.append((len(stamps), now))
                self.received += len(found)
                self.last_delivery = now
            if self.ping in data:    # the server's idle check: answer it
                self.write(c, self.pong)

    # -- phase 2: send and count -----------------------------------------

    def drive(self, t0: int, ok_senders: int, ok: list) -> None:
        plan = self.plan
        per = plan.per_sender
        mine = {c.cid: c for c in ok if c.cid < plan.senders}
        total = ok_senders * per
        if plan.proto == "jsonl":
            expected = plan.expected_for([c.cid for c in ok], ok_senders)
        else:   # IRC does not echo a message to its sender
            expected = total * len(ok) - len(mine) * per
        while time.monotonic_ns() < t0:
            self.poll(max(0.0, (t0 - time.monotonic_ns()) / NS))
        cpu0 = time.process_time()
        first_send = 0
        tag = b"LG" + plan.nonce.encode()
        if plan.proto == "jsonl" and plan.rooms:
            rooms = {cid: plan.room(cid) for cid in mine}
            fmt = _RoomSay(rooms)
        elif plan.proto == "jsonl":
            fmt = b'{"type":"say","text":"%s %d %d %d"}\n'
        else:
            fmt = b"PRIVMSG #bench :%s %d %d %d\r\n"
        if plan.mode == "burst":
            first_send = time.monotonic_ns()
            clock = time.monotonic_ns
            for cid, c in mine.items():
                self.write(c, b"".join([fmt % (tag, clock(), cid, seq) for seq in range(per)]))
                if c.state != "failed":
                    self.sent += per
            sending_done = True
            j = n_due = 0
        else:
            step = NS / plan.rate
            k = plan.senders
            j, n_due = 0, per * k    # global index: sender j % k, its message j // k
            sending_done = False
        deadline = t0 + int(plan.timeout * NS)
        while True:
            now = time.monotonic_ns()
            if not sending_done:
                while j < n_due and t0 + int(j * step) <= now:
                    c = mine.get(j % k)
                    if c is not None and c.state == "ready":
                        due = t0 + int(j * step)
                        first_send = first_send or due
                        self.write(c, fmt % (tag, due, j % k, j // k))
                        self.sent += 1
                    j += 1
                sending_done = j >= n_due
            if sending_done and self.received >= expected:
                break
            if now > deadline:
                break
            # Settled: nothing for SETTLE_NS since the last delivery. Before
            # the first one only the timeout counts: a burst of 40 000
            # messages is one long hub pass before anything arrives.
            if sending_done and self.last_delivery and now - self.last_delivery > SETTLE_NS \
                    and (plan.mode == "burst" or now - t0 > plan.secs * NS + SETTLE_NS):
                break
            wait = 0.05 if sending_done else max(0.0, min(0.05, (t0 + j * step - now) / NS))
            self.poll(wait)
        cpu = time.process_time() - cpu0
        hist, worst = self.latencies()
        self.pipe.send(("done", {
            "ok_clients": len(ok), "sent": self.sent, "received": self.received,
            "first_send": first_send, "last_delivery": self.last_delivery,
            "cpu_s": cpu, "chunks": self.chunks, "hist": hist, "max_us": worst,
            "dropped": sum(1 for c in ok if c.state == "failed"), "expected": expected,
            "failures": self.failures[-5:],
        }))
        for c in self.clients:
            if c.state != "failed":
                c.sock.close()

    def latencies(self):
        """Histogram of latencies in microseconds, kept to 8 significant
        bits above 1 ms (under 0.8 % error), and the exact maximum."""
        hist: collections.Counter = collections.Counter()
        stamps, start, worst = self.stamps, 0, 0
        for end, now in self.marks:
            us = [(now - t) // 1000 for t in stamps[start:end]]
            start = end
            worst = max(worst, max(us))
            hist.update(u if u < 1024 else (u >> (s := u.bit_length() - 8)) << s for u in us)
        return dict(hist), worst


class _RoomSay:
    """``fmt % (tag, ts, cid, seq)`` for a v2 say in the sender's room."""

    def __init__(self, rooms: dict):
        self.rooms = rooms

    def __mod__(self, args) -> bytes:
        tag, ts, cid, seq = args
        return b'{"type":"say","room":"%s","text":"%s %d %d %d"}\n' % (self.rooms[cid], tag, ts, cid, seq)


def finish(rows: list, json_path: str | None) -> int:
    """The end of a benchmark's run: the raw rows to ``json_path`` if given;
    the exit status, 1 if any row failed or lost deliveries."""
    if json_path:
        with open(json_path, "w") as f:
            json.dump(rows, f, indent=1)
    return 1 if any("error" in r or r.get("lost") for r in rows) else 0


def merged(done: list) -> dict:
    """The workers' results as one row: what was sent and delivered, the
    span from the first send to the last delivery, the latency quantiles of
    their merged histograms, the generator's CPU and the first failures."""
    firsts = [d["first_send"] for d in done if d["first_send"]]
    last = max((d["last_delivery"] for d in done), default=0)
    span = (last - min(firsts)) / 1e9 if firsts and last else 0.0
    hist: dict = {}
    for d in done:
        for us, n in d["hist"].items():
            hist[us] = hist.get(us, 0) + n
    total = sum(hist.values())
    sent = sum(d["sent"] for d in done)
    delivered = sum(d["received"] for d in done)
    return dict(sent=sent, delivered=delivered, span_s=span,
                deliveries_per_s=delivered / span if span > 0 else 0.0,
                messages_per_s=sent / span if span > 0 else 0.0,
                p50_ms=percentile(hist, total, 0.50), p99_ms=percentile(hist, total, 0.99),
                max_ms=max(d["max_us"] for d in done) / 1000 if total else float("nan"),
                loadgen_cpu_s=sum(d["cpu_s"] for d in done),
                failures=[f for d in done for f in d["failures"]])


def proc_cpu_seconds(pid: int) -> float:
    """utime + stime of every thread of a process, from /proc/PID/stat
    (OSError once it is gone)."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def percentile(hist: dict, total: int, p: float) -> float:
    """The p-quantile (0..1) of a merged histogram, in milliseconds."""
    if total <= 0:
        return float("nan")
    target = max(1, math.ceil(p * total))
    acc = 0
    for us in sorted(hist):
        acc += hist[us]
        if acc >= target:
            return us / 1000
    return max(hist) / 1000
