"""Fakes for testing the controller without Tk or a network.

:class:`FakeView` implements :class:`chatgui.app.controller.View` by recording
what the controller asked for; :class:`FakeClient` stands in for
:class:`chatgui.net.client.ChatClient` and records what would have been sent.
"""
from __future__ import annotations

import itertools
import threading


class FakeView:
    def __init__(self):
        self.lines = []            # Line objects, in order
        self.pending = {}          # key -> Line
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

    def show_connect(self, values, error, busy, focus=None, trust=None, trust_label=None):
        self.screen = "connect"
        self.form = (values, error, busy)
        self.focus = focus
        self.trust = trust
        self.trust_label = trust_label

    def show_chat(self):
        self.screen = "chat"

    def append(self, line):
        self.lines.append(line)

    def add_pending(self, key, line):
        assert key not in self.pending
        self.pending[key] = line

    def remove_pending(self, key):
        self.pending.pop(key, None)

    def clear(self):
        self.lines.clear()

    def set_users(self, users, me, online=True):
        self.users, self.me, self.online = list(users), me, online

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
    def texts(self, kind=None):
        return [ln.text for ln in self.lines if kind is None or ln.kind == kind]

    def kinds(self):
        return [ln.kind for ln in self.lines]


class FakeClient:
    instances: list = []

    def __init__(self, host, port, nick, *, events, password=None, tls=False, accept_fingerprint=None):
        self.host, self.port, self.nick, self.events, self.password = host, port, nick, events, password
        self.tls, self.accept_fingerprint = tls, accept_fingerprint
        self.sent = []             # (kind, args, ref)
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

    def say(self, text):
        ref = self._ref()
        self.sent.append(("say", text, ref))
        return ref

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

    def close(self, timeout=1.0):
        self.closed = True
        return True


class FakeRoom:
    """Stands in for chatgui.app.hosting.HostedRoom; records on which thread
    it was started and stopped, and in what order (``log``)."""
    started: list = []
    log: list = []              # ("start" | "stop", port), in the order they happened

    def __init__(self, port, password=None, lan=False, tls=False, name=None):
        self.requested_port, self.password, self.lan, self.tls, self.name = port, password, lan, tls, name
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
