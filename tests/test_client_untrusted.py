"""Every field of a server frame is untrusted: whatever JSON a server puts
in any field of any frame that ``protocol.parse_server`` accepts (and
issue 11's frames, which :func:`chatgui.net.moderation.upgrade` parses:
moderated, mode, deleted, edited, audit, forgotten, the marks on
messages, the room frame's modes and roles, the times of errors), the
network client, the terminal and the window's controller go on (no
exception), and the terminal prints nothing raw.

Frames go the way a real one goes: the parsed event into
``ChatClient``'s own handlers (``_on_welcome`` / ``_on_event``, as its
reader calls them), then every event the client put on its queue into the
terminal's :class:`~chatgui.cli.Session` and into the
:class:`~chatgui.app.controller.Controller` with a fake view.
"""
from __future__ import annotations

import io
import queue

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from chatgui import cli
from chatgui.net import events as ev
from chatgui.app.controller import ConnectValues, Controller
from chatgui.net.client import ChatClient
from chatgui.net import moderation as mod
from chatgui.app.settings import Settings
from server import protocol
from tests.fakes import FakeClient, FakeView

# Any value a JSON document can hold once decoded; json.loads("1e400") is
# infinity and "\ud800" a lone surrogate, so both are in.
scalars = (st.none() | st.booleans()
           | st.integers(min_value=-(10 ** 30), max_value=10 ** 30)
           | st.floats(allow_nan=False)
           | st.sampled_from([1e300, -1e300, 1e20, -1e20, float("inf"), float("-inf"), 2 ** 63, -1, 0])
           | st.text(st.characters(blacklist_categories=()), max_size=30))
json_values = st.recursive(scalars, lambda inner: st.lists(inner, max_size=4)
                           | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)

nicks = st.sampled_from(["ann", "bob", "ANN", "", "x" * 200, "\u202eann", "a\nb", "\x1b[2J"]) | st.text(max_size=12)
texts = st.sampled_from(["hi", "/me waves", "ann: look", "\x1b]0;pwned\x07", "a\n-- carol left",
                         "https://x.y/" + ")" * 50, "\ud83d"]) | st.text(st.characters(blacklist_categories=()),
                                                                        max_size=40)
times = st.sampled_from([1e300, -1e300, float("inf"), float("-inf"), 0, -1, 1.7e9, 2 ** 62]) | st.floats(
    allow_nan=False)
ids = st.integers(min_value=-5, max_value=10 ** 20) | st.sampled_from([0, 1, 2, 3])
rooms = st.sampled_from(["lobby", "maths", "Maths", "", "#x", "\x1b[2Jroom", "\u202eroom", "a\nb", "x" * 300]) \
    | st.text(max_size=12)
refs = st.sampled_from(["r1", "r2", "abc-1"]) | st.text(max_size=70)


def field(plausible):
    """A field's value: mostly of the right kind (so most frames parse), any JSON otherwise."""
    return st.integers(0, 9).flatmap(lambda i: json_values if i == 0 else plausible)


def optional(plausible):
    return st.one_of(st.just(None), field(plausible))


def frame_of(kind: str, fields: dict):
    def build(values):
        f = {"type": kind}
        for key, value in values.items():
            if value is not None:
                f[key] = value
        return f
    return st.fixed_dictionaries({k: v for k, v in fields.items()}).map(build)


def message_frames(kind: str):
    fields = {"id": field(ids), "ts": field(times), "from": field(nicks), "text": field(texts),
              "ref": optional(refs)}
    if kind == "dm":
        fields["to"] = field(nicks)
    else:
        fields["room"] = optional(rooms)
    return frame_of(kind, fields)


topic_frames = frame_of("topic", {"room": field(rooms), "topic": optional(texts), "by": optional(nicks),
                                  "id": optional(ids), "ts": optional(times), "ref": optional(refs)})
history = st.lists(message_frames("message") | message_frames("dm"), max_size=4)

# Issue 11 (DESIGN-11): every new frame, each field plausible or any JSON.
actions = st.sampled_from(list(mod.ACTIONS) + ["behead", ""])
roles_ = st.sampled_from(["owner", "op", "voice", "member", "emperor"])
modes_ = st.fixed_dictionaries({}, optional={k: field(st.booleans() | st.integers(-5, 10 ** 6))
                                             for k in mod.MODE_DEFAULTS})
moderated_frames = frame_of("moderated", {"room": field(rooms), "action": field(actions), "nick": field(nicks),
                                          "by": optional(nicks), "reason": optional(texts),
                                          "until": optional(times), "id": optional(ids), "ts": optional(times),
                                          "ref": optional(refs)})
mode_frames = frame_of("mode", {"room": field(rooms), "moderated": optional(st.booleans()),
                                "questions": optional(st.booleans()), "announce": optional(st.booleans()),
                                "slow": optional(st.integers(-5, 10 ** 6)), "dm": optional(st.booleans()),
                                "key": optional(st.booleans() | st.text(max_size=5)), "modes": optional(modes_),
                                "by": optional(nicks), "id": optional(ids), "ts": optional(times),
                                "ref": optional(refs)})
deleted_frames = frame_of("deleted", {"room": optional(rooms), "with": optional(nicks), "id": field(ids),
                                      "by": field(nicks), "seq": optional(ids), "ref": optional(refs)})
edited_frames = frame_of("edited", {"room": optional(rooms), "with": optional(nicks), "id": field(ids),
                                    "text": field(texts), "edited_ts": optional(times), "seq": optional(ids),
                                    "ref": optional(refs)})
audit_frames = frame_of("audit", {"room": field(rooms), "ref": optional(refs), "entries": field(st.lists(
    frame_of("x", {"ts": optional(times), "by": optional(nicks), "action": field(actions),
                   "nick": optional(nicks), "reason": optional(texts)}) | json_values, max_size=3))})
forgotten_frames = frame_of("forgotten", {"nick": field(nicks), "ref": optional(refs)})
marked_messages = st.tuples(message_frames("message"),
                            st.fixed_dictionaries({}, optional={"question": field(st.booleans() | ids),
                                                                "released_by": field(nicks),
                                                                "edited_ts": field(times)})).map(
    lambda pair: {**pair[0], **pair[1]})
moderation_frames = (moderated_frames | mode_frames | deleted_frames | edited_frames | marked_messages)

stored = st.lists(message_frames("message") | message_frames("dm") | topic_frames | moderation_frames
                  | st.fixed_dictionaries({"type": st.text(max_size=8)}), max_size=4)

server_frames = st.one_of(
    frame_of("welcome", {"nick": field(nicks), "users": field(st.lists(nicks, max_size=4)),
                         "history": field(history), "last_id": field(ids), "session": optional(st.text()),
                         "missed": optional(st.integers(min_value=-10 ** 20, max_value=10 ** 20)),
                         "limits": optional(st.fixed_dictionaries({"max_line": json_values})),
                         "epoch": optional(st.text(max_size=8)), "reset": optional(st.booleans()),
                         "protocol": optional(st.integers(0, 3)), "replay": optional(st.booleans()),
                         "rooms": optional(st.lists(rooms, max_size=3))}),
    message_frames("message"),
    message_frames("dm"),
    frame_of("joined", {"nick": field(nicks), "room": optional(rooms)}),
    frame_of("left", {"nick": field(nicks), "reason": optional(texts), "room": optional(rooms),
                      "ref": optional(refs)}),
    frame_of("room", {"room": field(rooms), "topic": optional(texts), "users": field(st.lists(nicks, max_size=4)),
                      "last_id": optional(ids), "read": optional(ids), "key": optional(st.booleans()),
                      "ref": optional(refs), "role": optional(roles_),
                      "roles": optional(st.dictionaries(nicks, roles_, max_size=3)), "modes": optional(modes_)}),
    moderation_frames, audit_frames, forgotten_frames,
    topic_frames,
    frame_of("rooms", {"rooms": field(st.lists(frame_of("x", {"room": field(rooms), "topic": optional(texts),
                                                               "users": optional(ids), "last_id": optional(ids),
                                                               "key": optional(st.booleans())}), max_size=3)),
                       "ref": optional(refs)}),
    frame_of("history", {"room": optional(rooms), "with": optional(nicks), "messages": field(stored),
                         "more": optional(st.booleans()), "ref": optional(refs)}),
    frame_of("replay", {"frames": field(stored)}),
    frame_of("caught_up", {"last_id": field(ids)}),
    frame_of("renamed", {"old": field(nicks), "new": field(nicks)}),
    frame_of("error", {"code": field(st.sampled_from(["rate_limited", "replaced", "no_such_user", "x", "muted",
                                                      "slow_mode", "forbidden", "banned", "edit_window",
                                                      "no_identity", "not_in_room", "nick_reserved"])),
                       "message": optional(texts), "ref": optional(st.sampled_from(["r1", "abc-1"])),
                       "until": optional(times), "retry_after": optional(times)}),
    frame_of("notice", {"code": optional(st.text(max_size=8)), "text": field(texts)}),
    frame_of("ping", {}), frame_of("pong", {}),
    st.fixed_dictionaries({"type": st.text(max_size=8)}, optional={"x": json_values}),
)


def parsed(frames: list) -> list:
    """(frame, event) for each frame the client's reader accepts (parse_server,
    then issue 11's upgrade, as the reader does; it skips the others)."""
    out = []
    for f in frames:
        try:
            out.append((f, mod.upgrade(protocol.parse_server(f), f)))
        except protocol.ProtocolError:
            pass
    return out


def through_the_client(frames: list) -> list:
    """What a welcomed ChatClient puts on its queue for these frames."""
    q: queue.Queue = queue.Queue()
    client = ChatClient("127.0.0.1", 30000, "ann", events=q)
    first = protocol.parse_server({"type": "welcome", "nick": "ann", "users": ["ann", "bob"], "history": [],
                                   "last_id": 2, "session": "s", "epoch": "e1"})
    client._on_welcome(first, {}, None, None)
    client.say("pending one")       # so refs and acknowledgements have something to match
    client.history(room="maths")
    client.join("maths")
    client.mod("maths", "kick", "bob")
    client.delete(3)
    for frame, event in parsed(frames):
        if type(event) is protocol.Welcome:
            client._on_welcome(event, frame, "s", None)
        else:
            client._on_event(event, frame)
    out = []
    while not q.empty():
        out.append(q.get_nowait())
    return out


def to_the_terminal(events: list) -> str:
    out, err = io.StringIO(), io.StringIO()
    term = cli.Terminal(out, err, "ann", history=True)
    session = cli.Session(lambda accept: FakeClient("127.0.0.1", 30000, "ann", events=queue.Queue()),
                          queue.Queue(), term, wait=1.0)
    session.handle(cli._Line("typed before the welcome"))
    for e in events:
        session.handle(e)
    term.who()
    for line in ("/mode", "/release", "/delete", "/edit again", "/audit"):
        session.command(line)
    return out.getvalue() + err.getvalue()


def to_the_controller(events: list) -> FakeView:
    view = FakeView()
    c = Controller(view, Settings(), client_factory=FakeClient, save_settings=lambda s: None)
    c.connect(ConnectValues(host="127.0.0.1", port="30000", nick="ann"))
    c.join_room("maths")                # so answers (refs r1, r2) have requests to match
    for e in events:
        c.handle(e)
        c.tick()
        for rid in list(c.rooms._all):
            c.load_older(rid)
            c.seen_bottom(rid)
    for rid in list(c.rooms._all):
        # What the window may ask of any room and any line it shows.
        for nick in list(c.rooms.get(rid).people.values())[:3]:
            for item in c.person_menu(rid, nick):
                c.person_action(rid, nick, item.action)
        for msg_id in list(c.rooms.get(rid).shown)[:3]:
            for item in c.message_menu(rid, msg_id):
                c.message_action(rid, msg_id, item.action)
        c.room_settings(rid)
    c.submit("/who")
    c.submit("/topic")
    c.submit("/mode")
    c.submit("/release")
    return view


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(server_frames, min_size=1, max_size=6))
def test_any_server_frames_never_crash_the_client_the_terminal_or_the_window(frames):
    events = through_the_client(frames)
    shown = to_the_terminal(events)
    # Nothing from the network reaches the terminal raw: no escape, no bell,
    # no carriage return, no bidi override.
    assert not set(shown) & {"\x1b", "\x07", "\r", "\u202e", "\x00"}
    view = to_the_controller(events)
    shown = [ln.text for lines in view.convos.values() for ln in lines]
    shown += [ln.text for _, lines, _ in view.prepends for ln in lines]
    shown += [r.label for r in view.rooms] + [t for header in view.headers.values() for t in header]
    shown += [c.topic for choices in view.browsers for c in choices]
    shown += [q.text for qs in view.questions.values() for q in qs] + [q.who for qs in view.questions.values()
                                                                       for q in qs]
    shown += [u[2].text for u in view.updates] + list(view.roles) + [s.topic for s in view.settings_shown]
    for text in shown:
        assert "\x1b" not in text and "\u202e" not in text and "\x07" not in text


@pytest.mark.parametrize("ts", [1e300, -1e300, float("inf"), float("-inf"), 2 ** 62])
def test_a_time_no_clock_can_show_prints_as_dashes(ts):
    frames = [{"type": "message", "id": 3, "ts": ts, "from": "bob", "text": "from the far future"},
              {"type": "welcome", "nick": "ann", "users": ["ann"], "last_id": 9, "reset": True,
               "history": [{"type": "dm", "id": 1, "ts": ts, "from": "bob", "to": "ann", "text": "old"}]}]
    shown = to_the_terminal(through_the_client(frames))
    assert "[--:--] <bob> from the far future" in shown
    assert "[--:--] [private] <bob> old" in shown
    view = to_the_controller(through_the_client(frames))
    assert [ln.stamp for ln in view.lines if ln.text == "from the far future"] == ["--:--"]


def test_a_hostile_room_name_and_topic_in_a_v2_catch_up_reach_nothing_raw():
    bad = "\x1b]0;pwned\x07\u202e"
    frames = [{"type": "welcome", "nick": "ann", "users": ["ann"], "history": [], "last_id": 3, "session": "s",
               "protocol": 2, "replay": True, "rooms": ["lobby", bad]},
              protocol.room_frame(bad, bad, ["ann", bad], 3, 0, True),
              protocol.replay_frame([protocol.message_frame(2, 1.7e9, "bob", "hi", room=bad),
                                     protocol.topic_frame(bad, bad, bad, 3, 1.7e9)]),
              protocol.caught_up_frame(3),
              protocol.joined_frame(bad, bad)]
    events = through_the_client(frames)
    assert [type(e).__name__ for e in events].count("RoomState") == 1
    shown = to_the_terminal(events)
    assert "<bob> hi" in shown and not set(shown) & {"\x1b", "\x07", "\u202e"}
    view = to_the_controller(events)
    assert len(view.rooms) == 2
    texts = [r.label for r in view.rooms] + [t for h in view.headers.values() for t in h]
    texts += [ln.text for lines in view.convos.values() for ln in lines]
    assert "hi" in texts and not any(set(t) & {"\x1b", "\x07", "\u202e"} for t in texts)


def test_every_malformed_issue_11_frame_is_skipped_alone():
    """Each new frame with a required field missing or of the wrong type is
    refused by the parser (the reader skips it and logs), and one bad entry
    in a replay costs only itself."""
    bad = [{"type": "moderated", "room": "maths", "action": "behead", "nick": "bob"},
           {"type": "moderated", "room": "maths", "action": "kick", "nick": 5},
           {"type": "moderated", "room": "maths", "action": "kick", "nick": "bob", "by": ["x"]},
           {"type": "mode", "room": 3},
           {"type": "mode", "room": "maths", "slow": "fast"},
           {"type": "mode", "room": "maths", "modes": "all"},
           {"type": "deleted", "room": "maths", "by": "ann"},
           {"type": "deleted", "id": 3, "by": "ann"},
           {"type": "deleted", "room": "maths", "id": -3, "by": "ann"},
           {"type": "edited", "room": "maths", "id": 3},
           {"type": "edited", "room": "maths", "id": 3, "text": "x", "seq": "later"},
           {"type": "audit", "room": "maths", "entries": "none"},
           {"type": "forgotten"}]
    for frame in bad:
        with pytest.raises(protocol.ProtocolError):
            mod.upgrade(protocol.parse_server(frame), frame)
    good = protocol.message_frame(4, 1.7e9, "bob", "kept")
    replay = protocol.replay_frame(bad + [good])
    client = ChatClient("127.0.0.1", 30000, "ann", events=queue.Queue())
    client._on_welcome(protocol.parse_server({"type": "welcome", "nick": "ann", "users": ["ann"], "history": [],
                                              "last_id": 0, "protocol": 2, "replay": True}), {}, None, None)
    client._on_event(protocol.parse_server(replay), replay)
    backlog = _drain(client._events, ev.Backlog)
    assert [m.text for b in backlog for m in b.messages] == ["kept"]
    # Odd optional fields fall back to their defaults instead.
    room = protocol.room_frame("maths", "", ["ann"], 0, 0, False)
    powers = mod.parse_room_powers(dict(room, role="emperor", roles={"ann": "god", "bob": "op"},
                                        modes={"slow": -4, "moderated": "yes", "dm": False}))
    assert (powers.role, powers.roles, dict(powers.modes)) == ("member", (("bob", "op"),),
                                                               dict(mod.MODE_DEFAULTS, dm=False))
    marked = mod.upgrade(protocol.parse_server(good), dict(good, question="yes", edited_ts=float("inf"),
                                                           released_by=4))
    assert type(marked) is protocol.Message         # no valid mark: a plain message


def _drain(q, kind) -> list:
    out = []
    while not q.empty():
        e = q.get_nowait()
        if isinstance(e, kind):
            out.append(e)
    return out
