"""Core frames -> IRC lines for one client (no I/O).

:func:`encode` takes one frame dict the core sent this client (``message``,
``dm``, ``joined``, ``left``, ``renamed``, ``topic``, ``room``, ``rooms``,
``history``, ``replay``, ``error``, ``notice``, ``ping``, and the
moderation's ``moderated`` and ``mode``) and returns an
:class:`~.view.Outcome`: the lines, given the client's capabilities, and
the events that follow from it (a ``room`` answer to a JOIN asks for the
recent messages when the client cannot ask for history itself). It keeps
the client's :class:`~.view.View` up to date on the way.

:func:`message_lines` is the part of a room message that is the same for
every recipient with the same tag capabilities, so a door can cache it
per room and per :func:`tag_variant`.

Thread: the hub thread.
"""
from __future__ import annotations

from ... import protocol as p
from . import caps as c
from . import numerics as n
from .content import to_irc
from .errors import error_lines
from .names import channel_of, format_time, hostmask, msgid
from .view import Outcome, RoomView, View
from .wire import MAX_BODY, Message, fit, serialise_body

JOIN_REPLAY = 50                 # messages replayed on JOIN to a client without chathistory
REPLAY_REF = "JOINREPLAY "       # ref prefix of that history request
HISTORY_REF = "CHATHISTORY "     # ref prefix of a CHATHISTORY request (+ the batch label)
LIST_REF = "LIST "               # ref prefix of a LIST (+ its label)

def tag_variant(caps: set) -> tuple:
    """(time tags?, msgid tags?) for a client with these capabilities."""
    return (c.SERVER_TIME in caps or c.MESSAGE_TAGS in caps, c.MESSAGE_TAGS in caps)


def message_lines(frame: dict, variant: tuple, epoch: str, target: str | None = None,
                  batch: str | None = None) -> list:
    """The PRIVMSG lines of a ``message`` or ``dm`` frame. ``target``: the
    channel or nick the lines are addressed to (default: the frame's room,
    or its ``to``)."""
    if target is None:
        target = channel_of(frame.get("room", p.LOBBY)) if frame["type"] == "message" else frame["to"]
    source = hostmask(frame["from"])
    budget = MAX_BODY - 2 - len(serialise_body(Message("PRIVMSG", (target, "x x"), source))) + len("x x")
    with_time, with_id = variant
    out = []
    for i, piece in enumerate(to_irc(p.shown_text(frame), budget), 1):
        tags = {}
        if batch is not None:
            tags["batch"] = batch
        if with_time:
            tags["time"] = format_time(frame["ts"])
        if with_id and epoch:
            tags["msgid"] = msgid(epoch, frame["id"], i)
        out.append(Message("PRIVMSG", (target, piece), source, tags))
    return out


def _event_tags(view: View, frame: dict) -> dict:
    with_time, with_id = tag_variant(view.caps)
    tags = {}
    if with_time and frame.get("ts") is not None:
        tags["time"] = format_time(frame["ts"])
    if with_id and view.epoch and frame.get("id") is not None:
        tags["msgid"] = msgid(view.epoch, frame["id"])
    return tags


def encode(frame: dict, view: View) -> Outcome:
    kind = frame.get("type")
    handler = _HANDLERS.get(kind)
    return handler(frame, view) if handler is not None else Outcome()


def _message(frame: dict, view: View) -> Outcome:
    if view.room(frame.get("room", p.LOBBY)) is None:
        return Outcome()
    if view.is_me(frame["from"]) and c.ECHO_MESSAGE not in view.caps:
        return Outcome()
    return Outcome(message_lines(frame, tag_variant(view.caps), view.epoch))


def _dm(frame: dict, view: View) -> Outcome:
    if view.is_me(frame["from"]):
        if c.ECHO_MESSAGE not in view.caps and not view.is_me(frame["to"]):
            return Outcome()
        return Outcome(message_lines(frame, tag_variant(view.caps), view.epoch, frame["to"]))
    return Outcome(message_lines(frame, tag_variant(view.caps), view.epoch, view.target))


def _joined(frame: dict, view: View) -> Outcome:
    room = view.room(frame["room"])
    if room is None or view.is_me(frame["nick"]) or room.has(frame["nick"]):
        return Outcome()   # its own JOIN went out with the room frame
    room.add(frame["nick"])
    return Outcome([Message("JOIN", (channel_of(room.name),), hostmask(frame["nick"]))])


def _left(frame: dict, view: View) -> Outcome:
    room = view.room(frame["room"])
    nick = frame["nick"]
    if room is None:
        return Outcome()
    chan = channel_of(room.name)
    reason = frame.get("reason") or ""
    if view.is_me(nick) and reason not in ("kick", "ban"):
        del view.rooms[p.room_key(room.name)]
        return Outcome([Message("PART", (chan,), hostmask(view.nick))])
    if reason in ("kick", "ban"):
        # Removed by an op: a kick was shown by its `moderated` frame; a ban
        # (shown as MODE +b) is a KICK too, as IRC servers do it.
        line = Message("KICK", (chan, nick, frame.get("note") or "Banned"), hostmask(frame.get("by") or view.server))
        if view.is_me(nick):
            del view.rooms[p.room_key(room.name)]
        else:
            room.discard(nick)
        return Outcome([line] if reason == "ban" else [])
    if not room.has(nick):
        return Outcome()    # already told: one QUIT covers every room
    if reason == "part":
        room.discard(nick)
        return Outcome([Message("PART", (chan,), hostmask(nick))])
    view.forget(nick)
    return Outcome([Message("QUIT", ("Quit" if reason == "quit" else reason.capitalize() or "Gone",),
                            hostmask(nick))])


def _renamed(frame: dict, view: View) -> Outcome:
    old, new = frame["old"], frame["new"]
    if old == new:
        return Outcome()
    line = Message("NICK", (new,), hostmask(old))
    if view.is_me(old):
        view.nick = new
    view.rename(old, new)
    return Outcome([line])


def _topic(frame: dict, view: View) -> Outcome:
    room = view.room(frame["room"])
    if room is None:
        return Outcome()
    room.topic, room.topic_by, room.topic_ts = frame["topic"], frame.get("by", ""), frame.get("ts") or 0.0
    return Outcome([fit(Message("TOPIC", (channel_of(room.name), frame["topic"]),
                                hostmask(frame.get("by") or view.server), _event_tags(view, frame)))])


def _room(frame: dict, view: View) -> Outcome:
    key = p.room_key(frame["room"])
    known = view.rooms.get(key)
    room = RoomView(frame["room"], frame.get("topic", ""), key=bool(frame.get("key")),
                    modes=dict(frame.get("modes") or {}))
    for nick in frame.get("users", ()):
        room.add(nick)
    for nick, role in (frame.get("roles") or {}).items():
        room.roles[p.nick_key(nick)] = role
    if known is not None:           # joined again: IRC shows nothing
        room.topic_by, room.topic_ts = known.topic_by, known.topic_ts
        view.rooms[key] = room
        return Outcome()
    view.rooms[key] = room
    chan = channel_of(room.name)
    out = Outcome([Message("JOIN", (chan,), hostmask(view.nick))])
    if room.topic:
        out.lines += topic_lines(view, room)
    out.lines += names_lines(view, room)
    last = frame.get("last_id") or 0
    if c.CHATHISTORY not in view.caps and last:
        # Up to the newest message as of the join: what comes after reaches
        # the client live, so nothing is shown twice.
        out.events.append(p.HistoryRequest(room=room.name, before=last + 1, limit=JOIN_REPLAY,
                                           ref=REPLAY_REF + chan))
    return out


def topic_lines(view: View, room: RoomView) -> list:
    chan = channel_of(room.name)
    if not room.topic:
        return [n.standard(view.server, view.target, n.RPL_NOTOPIC, chan)]
    lines = [n.numeric(view.server, view.target, n.RPL_TOPIC, chan, room.topic)]
    if room.topic_by:
        lines.append(n.numeric(view.server, view.target, n.RPL_TOPICWHOTIME, chan, room.topic_by,
                               str(int(room.topic_ts))))
    return lines


def names_lines(view: View, room: RoomView) -> list:
    """353 lines (as many as the nicks need, each within 512 bytes) and 366."""
    chan = channel_of(room.name)
    nicks = [room.prefix(nick) + nick for nick in sorted(room.users.values(), key=str.casefold)]
    lines, batch = [], []
    for nick in nicks:
        trial = Message(n.RPL_NAMREPLY, (view.target, "=", chan, " ".join(batch + [nick])), view.server)
        if batch and len(serialise_body(trial)) + 2 > MAX_BODY:
            lines.append(n.numeric(view.server, view.target, n.RPL_NAMREPLY, "=", chan, " ".join(batch)))
            batch = []
        batch.append(nick)
    if batch:
        lines.append(n.numeric(view.server, view.target, n.RPL_NAMREPLY, "=", chan, " ".join(batch)))
    lines.append(n.standard(view.server, view.target, n.RPL_ENDOFNAMES, chan))
    return lines


# Moderation (issue 11) as IRC shows it: roles and bans as MODE, a kick as KICK.
_ROLE_MODES = {"op": "+o", "deop": "-o", "voice": "+v", "devoice": "-v", "ban": "+b", "unban": "-b"}
_ROLE_OF = {"op": "op", "voice": "voice"}
# The core's room modes that IRC has letters for.
MODE_LETTERS = {"moderated": "m", "questions": "U", "key": "k"}


def _moderated(frame: dict, view: View) -> Outcome:
    room = view.room(frame["room"])
    if room is None:
        return Outcome()
    chan, action, nick = channel_of(room.name), frame["action"], frame["nick"]
    source = hostmask(frame.get("by") or view.server) if frame.get("by") else view.server
    tags = _event_tags(view, frame)
    if action == "kick":
        return Outcome([Message("KICK", (chan, nick, frame.get("reason") or "Kicked"), source, tags)])
    mode = _ROLE_MODES.get(action)
    if mode is not None:
        if action in ("op", "voice"):
            room.roles[p.nick_key(nick)] = _ROLE_OF[action]
        elif action in ("deop", "devoice"):
            room.roles.pop(p.nick_key(nick), None)
        target = f"{nick}!*@*" if action in ("ban", "unban") else nick
        return Outcome([Message("MODE", (chan, mode, target), source, tags)])
    # mute / unmute: IRC has no standard mode for them: a notice in the channel.
    what = {"mute": "muted", "unmute": "unmuted"}.get(action, action)
    by = f" by {frame['by']}" if frame.get("by") else ""
    why = f": {frame['reason']}" if frame.get("reason") else ""
    return Outcome([fit(Message("NOTICE", (chan, f"{nick} was {what}{by}{why}"), view.server, tags))])


def _mode(frame: dict, view: View) -> Outcome:
    room = view.room(frame["room"])
    if room is None:
        return Outcome()
    room.modes = dict(frame.get("modes") or room.modes)
    room.key = bool(room.modes.get("key", room.key))
    plus, minus, others = "", "", []
    for name, letter in MODE_LETTERS.items():
        if name in frame:
            if frame[name]:
                plus += letter
            else:
                minus += letter
    for name in ("announce", "slow", "dm"):
        if name in frame:
            others.append(f"{name}={frame[name]}")
    chan = channel_of(room.name)
    source = hostmask(frame["by"]) if frame.get("by") else view.server
    tags = _event_tags(view, frame)
    lines = []
    if plus or minus:
        change = (f"+{plus}" if plus else "") + (f"-{minus}" if minus else "")
        params = (chan, change, "*") if "k" in plus else (chan, change)     # a key is not shown to the room
        lines.append(Message("MODE", params, source, tags))
    if others:
        lines.append(Message("NOTICE", (chan, f"{frame.get('by') or 'The server'} set {', '.join(others)}"),
                             view.server, tags))
    return Outcome(lines)


def mode_string(room: RoomView) -> str:
    """324's modes of a room: +m, +U, +k as the core has them."""
    return "+" + "".join(letter for name, letter in MODE_LETTERS.items()
                         if (room.key if name == "key" else room.modes.get(name)))


def _rooms(frame: dict, view: View) -> Outcome:
    ref = frame.get("ref") or ""
    wanted = view.lists.pop(ref[len(LIST_REF):], None) if ref.startswith(LIST_REF) else None
    out = Outcome([n.numeric(view.server, view.target, n.RPL_LISTSTART, "Channel", "Users  Name")])
    for r in frame.get("rooms", ()):
        if wanted and p.room_key(r["room"]) not in wanted:
            continue
        topic = ("[+k] " if r.get("key") else "") + (r.get("topic") or "")
        out.lines.append(n.numeric(view.server, view.target, n.RPL_LIST, channel_of(r["room"]),
                                   str(r.get("users", 0)), topic))
    out.lines.append(n.standard(view.server, view.target, n.RPL_LISTEND))
    return out


def _history(frame: dict, view: View) -> Outcome:
    ref = frame.get("ref") or ""
    if ref.startswith(HISTORY_REF):
        label = ref[len(HISTORY_REF):]
        target, above = view.history.pop(label, (None, 0))
        if target is None:
            return Outcome()
    elif ref.startswith(REPLAY_REF):
        label, target, above = view.label(), ref[len(REPLAY_REF):], 0
    else:
        return Outcome()
    batched = c.BATCH in view.caps
    out = Outcome()
    if batched:
        out.lines.append(Message("BATCH", ("+" + label, "chathistory", target), view.server))
    variant = tag_variant(view.caps)
    for m in frame.get("messages", ()):
        if m.get("type") not in ("message", "dm") or m.get("id", 0) <= above:
            continue
        to = target if m["type"] == "message" else (view.target if not view.is_me(m["from"]) else m["to"])
        out.lines += message_lines(m, variant, view.epoch, to, label if batched else None)
    if batched:
        out.lines.append(Message("BATCH", ("-" + label,), view.server))
    return out


def _replay(frame: dict, view: View) -> Outcome:
    out = Outcome()
    for f in frame.get("frames", ()):
        out.extend(encode(f, view))
    return out


def _notice(frame: dict, view: View) -> Outcome:
    return Outcome([Message("NOTICE", (view.target, frame.get("text", "")), view.server)])


_HANDLERS = {
    "message": _message,
    "dm": _dm,
    "joined": _joined,
    "left": _left,
    "renamed": _renamed,
    "topic": _topic,
    "room": _room,
    "rooms": _rooms,
    "history": _history,
    "replay": _replay,
    "error": error_lines,
    "notice": _notice,
    "moderated": _moderated,
    "mode": _mode,
    "ping": lambda f, v: Outcome([Message("PING", (v.server,))]),
}
