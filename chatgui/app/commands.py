"""What the user typed -> a command, without I/O. Shared by the window and the terminal.

:func:`parse` takes the text of the input box (one line, or several when
Shift+Enter was used) and returns one of the small frozen classes below;
the caller acts on it (``Say`` -> ``client.say``...). Nothing here sends.

- plain text -> :class:`Say` (trailing whitespace dropped; blank -> :class:`Empty`)
- ``//text`` -> :class:`Say` of ``/text`` (a literal line starting with '/')
- ``/me waves`` -> :class:`Action`; its :attr:`Action.wire` is what to ``say``
- ``/msg NICK text`` -> :class:`Direct`
- ``/nick NEW`` -> :class:`Nick` (checked with the protocol's nick rules)
- ``/who``, ``/clear``, ``/help``, ``/quit`` -> :class:`Who`, :class:`Clear`,
  :class:`Help`, :class:`Quit`
- ``/join NAME [key]``, ``/part [NAME]``, ``/topic [text]``, ``/rooms`` ->
  :class:`Join`, :class:`Part`, :class:`Topic`, :class:`Rooms` (room names
  with or without their ``#``, checked with the protocol's room rules)
- moderation (issue 11): ``/kick NICK [reason]``, ``/ban NICK [duration]
  [reason]``, ``/unban NICK``, ``/mute NICK [duration] [reason]``,
  ``/unmute``, ``/op``, ``/deop``, ``/voice``, ``/devoice`` -> :class:`Mod`;
  ``/mode [NAME VALUE ...]`` -> :class:`Mode`; ``/delete [ID] [reason]``,
  ``/edit [#ID] text``, ``/release [ID]`` -> :class:`Delete`,
  :class:`Edit`, :class:`Release` (no id: our last message, the oldest
  waiting question); ``/forget``, ``/audit`` -> :class:`Forget`,
  :class:`Audit`. A duration is ``30s``, ``5m``, ``2h``, ``1d`` or ``1w``
  (a number alone counts minutes).
- anything else starting with '/' -> :class:`Invalid` with a helpful
  message (never sent)

Command names are case-insensitive; ``/exit`` is ``/quit``, ``/m`` and
``/query`` are ``/msg``, ``/action`` is ``/me``, ``/names`` is ``/who``,
``/j`` is ``/join``, ``/leave`` is ``/part``, ``/list`` is ``/rooms``.

Actions on the wire: ``/me waves`` is sent as a room message whose text is
``"/me waves"``. A receiver shows a message whose text starts with
``"/me "`` as an action ("* alice waves"): :func:`action_body`. The IRC
way (U+0001 around the text) is refused by the server, which forbids
control characters, and plain ``/me`` text still reads well in a client
that does not know the convention.

Text is cleaned of what the server would refuse: ``\\r\\n`` and ``\\r``
become ``\\n``; other control characters (C0 and C1, DEL), which a paste
can carry, are removed. Tab and newline stay. Surrogate pairs, which Tk
8.6 gives for an emoji, are joined into the character they encode.

Thread: pure functions, any thread.
"""
from __future__ import annotations

import difflib
import re
from dataclasses import dataclass

from server import protocol

ACTION_PREFIX = "/me "


@dataclass(frozen=True)
class Say:
    text: str


@dataclass(frozen=True)
class Action:
    text: str               # what follows /me

    @property
    def wire(self) -> str:
        """The text to send with ``say``."""
        return ACTION_PREFIX + self.text


@dataclass(frozen=True)
class Direct:
    to: str
    text: str


@dataclass(frozen=True)
class Nick:
    nick: str


@dataclass(frozen=True)
class Who:
    pass


@dataclass(frozen=True)
class Clear:
    pass


@dataclass(frozen=True)
class Help:
    text: str               # the help to show (for one command, or all), laid out in spaces
    table: str = ""         # the same as "head" then "usage<TAB>what" rows (a window lines them up)


@dataclass(frozen=True)
class Quit:
    pass


@dataclass(frozen=True)
class Join:
    room: str               # bare name, checked
    key: str | None = None


@dataclass(frozen=True)
class Part:
    room: str | None = None   # None: the conversation on screen


@dataclass(frozen=True)
class Topic:
    text: str | None = None   # None: show it; "": clear it


@dataclass(frozen=True)
class Rooms:
    pass


@dataclass(frozen=True)
class Mod:
    """A moderation action on a person of the room on screen."""
    action: str             # kick ban unban mute unmute op deop voice devoice
    nick: str
    reason: str | None = None
    duration: int | None = None     # seconds (ban, mute); None: until lifted


@dataclass(frozen=True)
class Mode:
    """Set modes of the room on screen; no changes: show them."""
    changes: tuple = ()     # of (name, value): moderated/questions/announce/dm bool, slow int, key str


@dataclass(frozen=True)
class Delete:
    msg_id: int | None = None       # None: our last message here
    reason: str | None = None


@dataclass(frozen=True)
class Edit:
    text: str
    msg_id: int | None = None       # None: our last message here


@dataclass(frozen=True)
class Release:
    question_id: int | None = None  # None: the oldest question waiting


@dataclass(frozen=True)
class Forget:
    pass


@dataclass(frozen=True)
class Audit:
    older: bool = False     # "/audit more": the page before the last one shown


@dataclass(frozen=True)
class SendFile:
    path: str               # as typed (~ expanded by whoever opens it)


@dataclass(frozen=True)
class GetFile:
    file: str               # the file's id, as the card or the terminal shows it
    path: str | None = None   # where to save it; None: the downloads folder


@dataclass(frozen=True)
class Empty:
    """Nothing to do (a blank line)."""


@dataclass(frozen=True)
class Invalid:
    """Not a valid command: show ``message`` to the user; send nothing."""
    message: str


# name -> (usage, one-line description)
COMMANDS = {
    "msg": ("/msg NICK text", "send a private message to NICK"),
    "me": ("/me action", "say what you are doing: /me waves shows as “*\u00a0alice waves” when you are alice"),
    "nick": ("/nick NEW", "change your nick"),
    "who": ("/who", "list the people in this room"),
    "join": ("/join NAME [key]", "join the room NAME (made if it does not exist), or go to it; "
                                 "a room with a key needs it"),
    "part": ("/part [NAME]", "leave this room (or NAME); in a private conversation, close it"),
    "topic": ("/topic [text]", "show this room's topic, or set it; /topic - clears it"),
    "rooms": ("/rooms", "list the rooms on the server, to join one"),
    "kick": ("/kick NICK [reason]", "(ops) put NICK out of this room"),
    "ban": ("/ban NICK [time] [reason]", "(ops) put NICK out and keep them out, for a time "
                                         "(30s, 5m, 2h, 1d, 1w) or until /unban; a new nick does not help"),
    "unban": ("/unban NICK", "(ops) let NICK (the nick the ban was made under) in again"),
    "mute": ("/mute NICK [time] [reason]", "(ops) NICK may read but not speak here, for a time or until /unmute"),
    "unmute": ("/unmute NICK", "(ops) let NICK speak again"),
    "op": ("/op NICK", "(owner) make NICK an op of this room (a helper who can moderate)"),
    "deop": ("/deop NICK", "(owner) NICK is an op no more"),
    "voice": ("/voice NICK", "(ops) NICK may speak while the room is moderated"),
    "devoice": ("/devoice NICK", "(ops) take NICK's voice away"),
    "mode": ("/mode [NAME VALUE ...]", "show this room's modes, or (ops) set them: moderated on|off, "
                                       "questions on|off, announce on|off, slow SECONDS|off, dm on|off, "
                                       "key KEY|-"),
    "delete": ("/delete [ID] [reason]", "remove your last message here (or message ID; ops: anyone's)"),
    "edit": ("/edit [#ID] text", "replace the text of your last message here (or of message ID), "
                                 "within minutes of sending it"),
    "release": ("/release [ID]", "(ops) let question ID (or the oldest waiting) go to the whole room"),
    "audit": ("/audit [more]", "(ops) show who moderated what in this room; more: older entries"),
    "forget": ("/forget", "stop reserving your nick for this computer"),
    "send": ("/send PATH", "send the file at PATH to this room (or, in a private conversation, to that person)"),
    "get": ("/get ID [PATH]", "save the file whose card shows ID in PATH, or in your downloads folder"),
    "clear": ("/clear", "clear the conversation on your screen"),
    "help": ("/help [command]", "show this help"),
    "quit": ("/quit", "leave the room"),
}
ALIASES = {"exit": "quit", "m": "msg", "query": "msg", "w": "msg", "action": "me", "names": "who",
           "h": "help", "?": "help", "cls": "clear", "q": "quit", "j": "join", "leave": "part",
           "list": "rooms", "del": "delete", "timeout": "mute", "modes": "mode"}


_HELP_FOOT = ("Anything else you type is said to the room on screen (or, in a private conversation, "
              "to that person); "
              "start a line with // to say something that begins with /.")


def help_text(command: str | None = None) -> str:
    """The help for one command, or for all of them, for a fixed-width font."""
    one = _one_command(command)
    if one:
        return f"{one[0]}: {one[1]}"
    width = max(len(u) for u, _ in COMMANDS.values())
    lines = ["Commands:"]
    lines += [f"  {usage.ljust(width)}  {what}" for usage, what in COMMANDS.values()]
    lines += [_HELP_FOOT]
    return "\n".join(lines)


def help_table(command: str | None = None) -> str:
    """The same help as a table: a head line, then "usage<TAB>what" rows
    (see :attr:`chatgui.app.view.Line.table`), then the last word."""
    one = _one_command(command)
    if one:
        return f"Help for /{one[0].split()[0].lstrip('/')}:\n{one[0]}\t{one[1]}"
    rows = [f"{usage}\t{what}" for usage, what in COMMANDS.values()]
    return "\n".join(["Commands:", *rows, _HELP_FOOT])


def _one_command(command: str | None):
    if command:
        name = ALIASES.get(command.lower().lstrip("/"), command.lower().lstrip("/"))
        return COMMANDS.get(name)
    return None


_HEAD = re.compile(r"/(\S*)[ \t]*(.*)", re.DOTALL)    # "/name args..."
_CONTROLS = re.compile(r"[\x00-\x08\x0b-\x1f\x7f-\x9f]")


_SURROGATE = re.compile("[\ud800-\udfff]")


def join_surrogates(text: str) -> str:
    """Surrogate pairs (Tk 8.6 hands emoji over as two UTF-16 halves) joined
    into the one character they mean; a lone half becomes U+FFFD."""
    if not _SURROGATE.search(text):
        return text
    return text.encode("utf-16-le", "surrogatepass").decode("utf-16-le", "replace")


def clean_text(text: str) -> str:
    """Text as the server accepts it: surrogate halves joined, newlines
    normalised, other control characters removed."""
    text = join_surrogates(text).replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROLS.sub("", text)


def parse(line: str) -> object:
    """One input -> Say | Action | Direct | Nick | Who | Clear | Help | Quit | Join | Part |
    Topic | Rooms | Mod | Mode | Delete | Edit | Release | Forget | Audit | SendFile | GetFile |
    Empty | Invalid."""
    line = clean_text(line)
    if not line.startswith("/"):
        text = line.rstrip()
        return Say(text) if text.strip() else Empty()
    if line.startswith("//"):
        text = line[1:].rstrip()
        return Say(text) if text.strip() else Empty()
    head, rest = _HEAD.match(line).groups()
    name = ALIASES.get(head.lower(), head.lower())
    handler = _HANDLERS.get(name)
    if handler is None:
        return _unknown(head)
    return handler(rest)


def _unknown(head: str) -> Invalid:
    shown = head[:30] if head.isprintable() else repr(head[:30])
    if not head:
        return Invalid("A lone '/' is not a command. Type /help for the commands, "
                       "or start with // to say something that begins with /.")
    near = difflib.get_close_matches(head.lower(), list(COMMANDS) + list(ALIASES), n=1, cutoff=0.6)
    hint = f" Did you mean /{ALIASES.get(near[0], near[0])}?" if near else ""
    return Invalid(f"Unknown command /{shown}.{hint} Type /help for the list, "
                   f"or //{shown} to say it as text.")


def _usage(name: str, problem: str) -> Invalid:
    return Invalid(f"{problem} Usage: {COMMANDS[name][0]}")


def _msg(rest: str):
    to, text = _HEAD.match("/" + rest).groups()
    text = text.strip()
    if not to:
        return _usage("msg", "Who to? Give a nick.")
    if not text:
        return _usage("msg", f"What do you want to tell {to}?")
    return Direct(to.lstrip("@"), text)


def _me(rest: str):
    text = rest.strip()
    if not text:
        return _usage("me", "Say what you are doing, e.g. /me waves.")
    return Action(text)


def _nick(rest: str):
    parts = rest.split()
    if not parts:
        return _usage("nick", "Give the new nick.")
    if len(parts) > 1:
        return _usage("nick", "A nick cannot contain spaces.")
    try:
        return Nick(protocol.check_nick(parts[0]))
    except protocol.ProtocolError as e:
        return Invalid(f"Cannot use that nick: {e.message}.")


def _audit(rest: str):
    word = rest.strip().lower()
    if word in ("", "more"):
        return Audit(older=word == "more")
    return _usage("audit", f"/audit takes nothing, or 'more' for older entries, not {rest.strip()[:30]!r}.")


def _room_name(name: str, command: str):
    """A room name as typed ('#maths' or 'maths') -> the bare name, or Invalid."""
    try:
        return protocol.check_room(name[1:] if name.startswith("#") else name)
    except protocol.ProtocolError as e:
        why = "it " + e.message[len("room name "):] if e.message.startswith("room name ") else e.message
        return Invalid(f"{name[:40]!r} cannot be a room name: {why}. Usage: {COMMANDS[command][0]}")


def _join(rest: str):
    parts = rest.split()
    if not parts:
        return _usage("join", "Which room? Give its name.")
    if len(parts) > 2:
        return _usage("join", "A room name cannot contain spaces.")
    room = _room_name(parts[0], "join")
    if type(room) is Invalid:
        return room
    return Join(room, parts[1] if len(parts) == 2 else None)


def _part(rest: str):
    parts = rest.split()
    if len(parts) > 1:
        return _usage("part", "A room name cannot contain spaces.")
    if not parts:
        return Part()
    room = _room_name(parts[0], "part")
    return room if type(room) is Invalid else Part(room)


def _topic(rest: str):
    text = rest.strip()
    if not text:
        return Topic()
    if text == "-":
        return Topic("")
    try:
        return Topic(protocol.check_topic(text))
    except protocol.ProtocolError as e:
        return Invalid(f"That topic cannot be used: {e.message}.")


def _help(rest: str):
    topic = rest.strip() or None
    return Help(help_text(topic), help_table(topic))


_DURATION = re.compile(r"(\d{1,9})([smhdw]?)", re.IGNORECASE)
_UNITS = {"s": 1, "m": 60, "": 60, "h": 3600, "d": 86_400, "w": 7 * 86_400}
MAX_DURATION = 10 * 365 * 86_400


def parse_duration(word: str) -> int | None:
    """'30s', '5m', '2h', '1d', '1w', or a number of minutes -> seconds; None
    when ``word`` is not a duration."""
    m = _DURATION.fullmatch(word)
    if not m:
        return None
    seconds = int(m.group(1)) * _UNITS[m.group(2).lower()]
    return seconds if 0 < seconds <= MAX_DURATION else None


def _mod(action: str):
    timed = action in ("ban", "mute")
    with_reason = action in ("kick", "ban", "mute")

    def parse(rest: str):
        words = rest.split(None, 1)
        if not words:
            return _usage(action, "Who? Give a nick.")
        nick = words[0].lstrip("@")
        try:
            nick = protocol.check_nick(nick)
        except protocol.ProtocolError as e:
            return _usage(action, f"Nobody can be called {nick[:40]!r}: {e.message}.")
        tail = words[1].strip() if len(words) > 1 else ""
        duration = None
        if timed and tail:
            first, _, more = tail.partition(" ")
            duration = parse_duration(first)
            if duration is not None:
                tail = more.strip()
            elif re.fullmatch(r"\d+[a-zA-Z]*", first):
                return _usage(action, f"{first[:20]!r} is not a time: write 30s, 5m, 2h, 1d or 1w "
                                      "(up to ten years).")
        if tail and not with_reason:
            return _usage(action, "Give only the nick.")
        return Mod(action, nick, tail or None, duration)
    return parse


_ON = {"on": True, "yes": True, "true": True, "1": True, "+": True,
       "off": False, "no": False, "false": False, "0": False, "-": False}
_MODE_NAMES = {"moderated": "moderated", "m": "moderated", "questions": "questions", "q": "questions",
               "announce": "announce", "a": "announce", "slow": "slow", "dm": "dm", "key": "key"}


def _mode(rest: str):
    words = rest.split()
    changes = []
    while words:
        name = _MODE_NAMES.get(words.pop(0).lower())
        if name is None or not words:
            return _usage("mode", "Give each mode a value: moderated on, slow 30, key - ...")
        value = words.pop(0)
        if name == "key":
            changes.append((name, "" if value == "-" else value))
        elif name == "slow":
            seconds = 0 if value.lower() in ("off", "0") else (int(value) if value.isdigit() else
                                                               parse_duration(value) if value[-1:].isalpha() else None)
            if seconds is None or not 0 <= seconds <= 86_400:
                return _usage("mode", f"Slow mode takes seconds (up to 86400, a day), or off; not {value[:20]!r}.")
            changes.append((name, seconds))
        elif value.lower() in _ON:
            changes.append((name, _ON[value.lower()]))
        else:
            return _usage("mode", f"{name} is on or off, not {value[:20]!r}.")
    return Mode(tuple(changes))


def _msg_id(word: str) -> int | None:
    word = word[1:] if word.startswith("#") else word
    return int(word) if word.isdigit() and len(word) < 16 else None


def _delete(rest: str):
    words = rest.split(None, 1)
    msg_id = _msg_id(words[0]) if words else None
    reason = (words[1] if len(words) > 1 else "") if msg_id is not None else rest.strip()
    return Delete(msg_id, reason.strip() or None)


def _edit(rest: str):
    text = rest.strip()
    msg_id = None
    if text.startswith("#"):
        first, _, more = text.partition(" ")
        msg_id = _msg_id(first)
        if msg_id is None:
            return _usage("edit", f"{first[:20]!r} is not a message number.")
        text = more.strip()
    if not text:
        return _usage("edit", "Give the new text.")
    return Edit(text, msg_id)


def _release(rest: str):
    word = rest.strip()
    if not word:
        return Release()
    msg_id = _msg_id(word)
    return Release(msg_id) if msg_id is not None else _usage("release", f"{word[:20]!r} is not a question number.")


def _send(rest: str):
    path = _unquote(rest.strip())
    return SendFile(path) if path else _usage("send", "Give the path of the file to send.")


def _get(rest: str):
    fid, _, path = rest.strip().partition(" ")
    if not fid:
        return _usage("get", "Give the id of the file (its card shows it).")
    return GetFile(fid, _unquote(path.strip()) or None)


def _unquote(text: str) -> str:
    """A path as typed or pasted: one pair of surrounding quotes dropped."""
    if len(text) >= 2 and text[0] == text[-1] and text[0] in "'\"":
        return text[1:-1]
    return text


_HANDLERS = {
    "msg": _msg,
    "me": _me,
    "nick": _nick,
    "who": lambda rest: Who(),
    "clear": lambda rest: Clear(),
    "help": _help,
    "quit": lambda rest: Quit(),
    "join": _join,
    "part": _part,
    "topic": _topic,
    "rooms": lambda rest: Rooms(),
    **{action: _mod(action) for action in ("kick", "ban", "unban", "mute", "unmute", "op", "deop",
                                            "voice", "devoice")},
    "mode": _mode,
    "delete": _delete,
    "edit": _edit,
    "release": _release,
    "forget": lambda rest: Forget(),
    "audit": lambda rest: _audit(rest),
    "send": _send,
    "get": _get,
}


def action_body(text: str) -> str | None:
    """The action of a received message ('waves' for '/me waves'), or None."""
    if text.startswith(ACTION_PREFIX) and text[len(ACTION_PREFIX):].strip():
        return text[len(ACTION_PREFIX):]
    return None
