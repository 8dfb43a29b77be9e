"""A worker process for the reconnect-storm test: hosts a share of the
ChatClients and answers the test over a pipe. Run by multiprocessing."""
from __future__ import annotations

import collections
import queue
import time

from chatgui.net import events as ev
from chatgui.net.client import ChatClient
from server import protocol as p

START_GAP = 0.04     # seconds between two first starts in one worker (8 workers: 200 clients/s)


def run(conn, port: int, first: int, count: int) -> None:
    queues = [queue.Queue() for _ in range(count)]
    # 125 clients share this process's GIL on a machine of 2 cores, so a
    # client's welcome can wait here longer than the 10 s a client on its
    # own computer allows before it gives up and dials again (which makes
    # the storm feed itself): the harness gives them a minute.
    clients = [ChatClient("127.0.0.1", port, f"user{first + i}", events=q, handshake_timeout=60.0,
                          ping_timeout=60.0) for i, q in enumerate(queues)]
    state = [("new", False)] * count
    ids = [[] for _ in range(count)]
    # Why clients left "online" or failed to get there: reason -> count, so a
    # failed wait says what happened instead of only "not all".
    why = collections.Counter()

    def pump():
        for i, q in enumerate(queues):
            while True:
                try:
                    e = q.get_nowait()
                except queue.Empty:
                    break
                if isinstance(e, ev.Connected):
                    state[i] = ("online", e.resumed)
                elif isinstance(e, ev.Disconnected):
                    state[i] = ("offline", False)
                    why["disconnected: " + e.reason[:80]] += 1
                elif isinstance(e, ev.ConnectFailed):
                    why[f"failed ({e.kind}): " + e.message[:80]] += 1
                elif isinstance(e, ev.Backlog):
                    ids[i].extend(m.id for m in e.messages if isinstance(m, p.Message))
                elif isinstance(e, p.Message):
                    ids[i].append(e.id)

    def wait(cond, secs):
        deadline = time.monotonic() + secs
        while time.monotonic() < deadline:
            pump()
            if cond():
                return True
            time.sleep(0.02)
        pump()
        return cond()

    # The first joins arrive as a class does, over a few seconds (the
    # storm is the restart, when every client redials at once): 125 threads
    # dialling in the same instant on one interpreter lock spent their
    # connect and handshake timeouts waiting for it, on a loaded machine.
    for c in clients:
        c.start()
        time.sleep(START_GAP)
    try:
        while True:
            cmd, arg = conn.recv()
            if cmd == "online":
                ok = wait(lambda: all(s[0] == "online" for s in state), arg)
                conn.send((ok, sum(1 for s in state if s[0] != "online"), dict(why)))
            elif cmd == "say":
                clients[0].say(arg)
                conn.send(True)
            elif cmd == "messages":
                n, secs = arg
                conn.send(wait(lambda: all(len(x) >= n for x in ids), secs))
            elif cmd == "offline":
                conn.send(wait(lambda: all(s[0] == "offline" for s in state), arg))
            elif cmd == "back":     # arg: the monotonic deadline (system-wide clock)
                ok = wait(lambda: all(s == ("online", True) for s in state), arg - time.monotonic())
                conn.send((ok, time.monotonic(), sum(1 for s in state if s != ("online", True))))
            elif cmd == "ids":
                conn.send(ids)
            elif cmd == "quit":
                break
    finally:
        for c in clients:
            c.close(timeout=0.01)
        conn.send("bye")
