"""The IRC door's hub-thread half: one client's registration, commands and
encoder.

:class:`IrcSession` takes what the reader posted (a parsed
:class:`~.wire.Message`, a ``(PASS message, verdict)`` or a
:class:`~.wire.LineError`) and answers it: registration with
:class:`~.registration.Registration` until the core's welcome (SASL
credentials are put to the core as they arrive, the same pass, since this
is the hub thread: ``Chat.identity_refusal``), then each
command becomes the core's event (``PRIVMSG #rust`` -> ``say``, ``JOIN`` ->
``join``, ...), applied at once, with ``ref = "COMMAND target"`` so the
core's errors are answered with the numeric IRC clients know
(:mod:`.errors`). What IRC asks of the server and the window keeps on its
side (``NAMES``, ``WHO``, reading a ``TOPIC``, ``MOTD``, ``PING``) the door
answers itself, from its :class:`~.view.View` (built from the frames the
core sent it) or, for ``WHO``/``WHOIS`` of a nick, from who is online.

It is also the connection's encoder (:mod:`server.core.fanout`): the
core's frames become IRC lines (:mod:`.outbound`), in order with the
door's own lines (``Out.raw``). A room message's lines are the same for
every member with the same tag capabilities, so they are kept on the
frame (``Out.cache``) and built once per variant. Events a frame leads to
(the recent messages replayed on JOIN to a client without chathistory, a
nick asked for while the core was registering it) are posted to the hub
for its next pass.

No rule lives here: nicks, rooms, keys, text, history and limits are the
core's; the door translates.

Thread: the hub thread.
"""
from __future__ import annotations

import itertools
import logging
import time

from ... import protocol as p
from ...core.events import DoorHello, HistoryAt
from ...core.fanout import RAW, Out
from ..jsonl import DoorInput
from . import numerics as n
from . import outbound
from .caps import CapNegotiation, SaslPlain, available_caps
from .chathistory import HistoryFail, parse_chathistory
from .content import CtcpRequest, from_irc
from .errors import ref_for
from .isupport import Features, isupport_lines, myinfo
from .names import Refused, channel_of, check_irc_nick, hostmask, is_channel, room_of
from .registration import PRE_REGISTRATION, Registration
from .view import View
from .wire import LineError, Message, serialise

log = logging.getLogger("natter.server")

_RETRY = object()       # posted after the core refused a registration: try the nick asked for since


def features(config) -> Features:
    """What the door announces, from the server's settings (built once, when
    the door opens: 003 says when)."""
    return Features(server_name=config.irc_server_name, created=time.strftime("%Y-%m-%d %H:%M:%S UTC",
                                                                               time.gmtime()),
                    max_rooms_per_client=config.max_rooms_per_client, roles=True, list_modes="b",
                    flag_modes="mU", sasl=True)


class IrcSession:
    def __init__(self, conn, features: Features, password_required: bool):
        self.conn = conn
        self.features = features
        server = self.features.server_name
        self.server = server
        self.caps = CapNegotiation(server, available_caps(sasl=features.sasl, roles=False))
        self.view = View(self.features, caps=self.caps.enabled)
        self.sasl = SaslPlain(server) if features.sasl else None
        self.reg = Registration(server, self.caps, self.sasl)
        self.password_required = password_required
        self.pass_ok = False            # a PASS with the server's password came
        self._stored = itertools.count(1)   # numbers the refs of what the core stores (errors.ref_for)

    # -- the encoder (server.core.fanout) ------------------------------------

    per_client = True       # it keeps this client's state: each frame encoded once (fanout)

    def lines_only(self, kinds) -> bool:
        return False

    def encode(self, out: Out) -> bytes:
        kind = out.kind
        if kind == RAW:
            return out.line
        frame = out.frame
        view = self.view
        if kind == "welcome":
            return self._welcome(frame)
        if kind == "error" and not self.reg.registered:
            # The core refused the registration (a nick in use, a nick it
            # cannot take): the client picks another, and the next NICK tries again.
            self.reg.refused(keep_nick=frame.get("code") not in (p.NICK_TAKEN, p.BAD_NICK))
            # A NICK sent meanwhile is the next try (two clients racing for a nick).
            self.conn.hub.post(self.conn, [DoorInput(_RETRY)], wait=False)
        if kind == "message" and not view.is_me(frame["from"]) and view.room(frame.get("room", p.LOBBY)):
            variant = outbound.tag_variant(view.caps)
            cache = out.cache
            if cache is None:
                cache = out.cache = {}
            data = cache.get(variant)
            if data is None:
                data = cache[variant] = _bytes(outbound.message_lines(frame, variant, view.epoch))
            return data
        outcome = outbound.encode(frame, view)
        if outcome.events:
            self.conn.hub.post(self.conn, outcome.events, wait=False)
        return _bytes(outcome.lines)

    def _welcome(self, frame: dict) -> bytes:
        view, f = self.view, self.features
        nick = frame["nick"]
        view.nick, view.epoch = nick, frame.get("epoch") or ""
        view.user, view.realname = self.reg.user or "u", self.reg.realname
        asked = self.reg.welcomed(nick)
        lines = [n.numeric(self.server, nick, n.RPL_WELCOME, f"Welcome to {f.network}, {hostmask(nick)}"),
                 n.numeric(self.server, nick, n.RPL_YOURHOST, f"Your host is {self.server}, running version "
                                                              f"{f.version}"),
                 n.numeric(self.server, nick, n.RPL_CREATED, f"This server was created {f.created}"),
                 myinfo(f, nick)]
        lines += isupport_lines(f, nick)
        lines.append(self._motd())
        if asked is not None:       # a NICK sent while the core was registering the first one
            self.conn.hub.post(self.conn, [p.ChangeNick(asked, "NICK " + asked)], wait=False)
        return _bytes(lines)

    def _motd(self) -> Message:
        return n.numeric(self.server, self.view.target, n.ERR_NOMOTD,
                         "No message of the day here. Channels are Natter's rooms: /join #lobby, or /list")

    # -- input (what the reader posted) ---------------------------------------

    def on_input(self, chat, data) -> None:
        if data is _RETRY:
            login = self.reg.retry()
            if login is not None:
                self._login(chat, login)
            return
        if isinstance(data, LineError):
            return self._line_error(chat, data)
        if type(data) is tuple:                 # a PASS and the reader's verdict on it
            msg, ok = data
            self.pass_ok = self.pass_ok or ok
            if not ok:
                self._say(chat, n.numeric(self.server, self.view.target, n.ERR_PASSWDMISMATCH,
                                          "Wrong server password"))
        else:
            msg = data
        cmd = msg.command
        if not self.reg.registered:
            if cmd in PRE_REGISTRATION:
                replies, login = self.reg.handle(msg)
                if self.sasl is not None and self.sasl.presented is not None:
                    replies += self._sasl_verdict(chat)
                    login = login or self.reg.retry()
                self._say(chat, *replies)
                if login is not None:
                    self._login(chat, login)
            elif cmd == "PING":
                self._ping(chat, msg)
            elif cmd == "QUIT":
                self._quit(chat, msg)
            elif cmd != "PONG":
                self._say(chat, n.standard(self.server, self.view.target, n.ERR_NOTREGISTERED))
            return
        handler = _COMMANDS.get(cmd)
        if handler is None:
            return self._say(chat, n.standard(self.server, self.view.target, n.ERR_UNKNOWNCOMMAND, cmd))
        handler(self, chat, msg)

    def _line_error(self, chat, e: LineError) -> None:
        if e.numeric is not None:
            self._say(chat, n.numeric(self.server, self.view.target, e.numeric, e.text))
        else:
            self._say(chat, n.fail(self.server, e.command, e.fail or "ERROR", text=e.text))

    def _sasl_verdict(self, chat) -> list:
        """SASL credentials were presented: the core says whether their
        secret may be this nick's identity (the check PASS nick:secret
        meets in the hello), and only then 900/903, or 904 saying why."""
        creds = self.sasl.presented
        reason = self.reg.account_refusal(creds.account)
        if reason is None:
            refusal = chat.identity_refusal(self.reg.nick, creds.secret, "AUTHENTICATE")
            if refusal is not None:
                reason = refusal.message
                if refusal.code == p.BAD_IDENTITY:
                    reason = "The SASL password is your identity secret, and " + reason
        return self.sasl.verified(self.reg.nick, reason is None, reason or "")

    def _login(self, chat, login) -> None:
        if self.password_required and not self.pass_ok:
            self._say(chat, n.numeric(self.server, login.nick, n.ERR_PASSWDMISMATCH,
                                      "This server has a password: give it with PASS (in your client's "
                                      "server settings) and connect again"),
                      Message("ERROR", ("Closing link: no server password",)))
            return chat.hub.drop(self.conn, "auth failed")
        identity = (login.identity.account, login.identity.secret) if login.identity is not None else None
        self._core(chat, DoorHello(login.nick, (), identity, "NICK " + login.nick))

    # -- helpers ---------------------------------------------------------------

    def _say(self, chat, *lines: Message) -> None:
        """Lines of the door's own, in order with the core's frames."""
        data = _bytes(lines)
        if data:
            chat.fanout.unicast(self.conn, Out.raw(data))

    def _core(self, chat, event) -> None:
        """Apply a core event now, as if the client had sent its frame."""
        chat.handlers[type(event)](chat, self.conn, event)

    def _need(self, chat, msg: Message, count: int) -> bool:
        if len(msg.params) >= count and all(msg.params[:count]):
            return True
        self._say(chat, n.standard(self.server, self.view.target, n.ERR_NEEDMOREPARAMS, msg.command))
        return False

    def _room(self, chat, channel: str, numeric: str = n.ERR_NOSUCHCHANNEL, reply=None) -> str | None:
        try:
            return room_of(channel)
        except Refused as e:
            (reply or self._say)(chat, n.numeric(self.server, self.view.target, numeric, channel, e.text))
            return None

    # -- commands (registered) -------------------------------------------------

    def _ping(self, chat, msg: Message) -> None:
        if not msg.params:
            return self._say(chat, n.standard(self.server, self.view.target, n.ERR_NOORIGIN))
        self._say(chat, Message("PONG", (self.server, msg.params[0]), self.server))

    def _pong(self, chat, msg: Message) -> None:
        self._core(chat, p.Pong())

    def _quit(self, chat, msg: Message) -> None:
        self._say(chat, Message("ERROR", ("Closing link: quit",)))
        self._core(chat, p.Bye())

    def _nick(self, chat, msg: Message) -> None:
        if not msg.params or not msg.params[0]:
            return self._say(chat, n.standard(self.server, self.view.target, n.ERR_NONICKNAMEGIVEN))
        try:
            nick = check_irc_nick(msg.params[0])
        except Refused as e:
            return self._say(chat, n.numeric(self.server, self.view.target, n.ERR_ERRONEUSNICKNAME,
                                             msg.params[0], e.text))
        self._core(chat, p.ChangeNick(nick, "NICK " + nick))

    def _join(self, chat, msg: Message) -> None:
        if not self._need(chat, msg, 1):
            return
        if msg.params[0] == "0":            # JOIN 0: leave every channel
            for room in list(self.view.rooms.values()):
                self._core(chat, p.Part(room.name, "PART " + channel_of(room.name)))
            return
        keys = msg.params[1].split(",") if len(msg.params) > 1 else []
        for i, channel in enumerate(msg.params[0].split(",")):
            room = self._room(chat, channel, n.ERR_BADCHANNAME)
            if room is not None:
                key = keys[i] if i < len(keys) and keys[i] else None
                self._core(chat, p.Join(room, key, None, "JOIN " + channel))

    def _part(self, chat, msg: Message) -> None:
        if not self._need(chat, msg, 1):
            return
        for channel in msg.params[0].split(","):
            room = self._room(chat, channel)
            if room is not None:
                self._core(chat, p.Part(room, "PART " + channel))

    def _privmsg(self, chat, msg: Message) -> None:
        """PRIVMSG and NOTICE: both are the core's say or dm. A NOTICE is
        never answered with an error (RFC 2812 3.3.2: no automatic reply to
        a NOTICE), neither the door's here nor the core's (:mod:`.errors`);
        the core still decides whether it is delivered."""
        target = self.view.target
        reply = self._say if msg.command == "PRIVMSG" else _unanswered
        if not msg.params or not msg.params[0]:
            return reply(chat, n.numeric(self.server, target, n.ERR_NORECIPIENT,
                                         f"No recipient given ({msg.command})"))
        if len(msg.params) < 2 or not msg.params[1]:
            return reply(chat, n.standard(self.server, target, n.ERR_NOTEXTTOSEND))
        targets = msg.params[0].split(",")
        if len(targets) > self.features.max_targets:
            return reply(chat, n.numeric(self.server, target, n.ERR_TOOMANYTARGETS, msg.params[0],
                                         f"At most {self.features.max_targets} targets at once"))
        text = from_irc(msg.params[1])
        if isinstance(text, CtcpRequest):
            return          # VERSION, PING...: nobody on the Natter side can answer
        try:
            text = p.check_text(text)
        except p.ProtocolError as e:
            return reply(chat, n.fail(self.server, msg.command, e.code.upper(), text=e.message))
        for to in targets:
            ref = ref_for(msg.command, to, next(self._stored))
            if is_channel(to):
                room = self._room(chat, to, reply=reply)
                if room is not None:
                    self._core(chat, p.Say(text, ref, room))
            else:
                self._core(chat, p.SendDirect(to, text, ref))

    def _topic(self, chat, msg: Message) -> None:
        if not self._need(chat, msg, 1):
            return
        channel = msg.params[0]
        room = self._room(chat, channel)
        if room is None:
            return
        if len(msg.params) == 1:
            known = self.view.room(room)
            if known is None:
                return self._say(chat, n.standard(self.server, self.view.target, n.ERR_NOTONCHANNEL, channel))
            return self._say(chat, *outbound.topic_lines(self.view, known))
        try:
            topic = p.check_topic(msg.params[1])
        except p.ProtocolError as e:
            return self._say(chat, n.fail(self.server, "TOPIC", e.code.upper(), channel, text=e.message))
        self._core(chat, p.SetTopic(room, topic, ref_for("TOPIC", channel, next(self._stored))))

    def _names(self, chat, msg: Message) -> None:
        channel = msg.params[0].split(",")[0] if msg.params and msg.params[0] else "*"
        known = self.view.room(channel[1:]) if channel.startswith("#") and len(channel) > 1 else None
        if known is not None:
            return self._say(chat, *outbound.names_lines(self.view, known))
        self._say(chat, n.standard(self.server, self.view.target, n.RPL_ENDOFNAMES, channel))

    def _who(self, chat, msg: Message) -> None:
        mask = msg.params[0] if msg.params and msg.params[0] else "*"
        lines = []
        if is_channel(mask):
            known = self.view.room(mask[1:]) if len(mask) > 1 else None
            nicks = sorted(known.users.values(), key=str.casefold) if known is not None else []
            for nick in nicks:
                lines.append(self._who_line(mask, nick))
        else:
            holder = chat.nicks.get(p.nick_key(mask)) if _nickish(mask) else None
            if holder is not None:
                lines.append(self._who_line("*", holder.nick))
        lines.append(n.standard(self.server, self.view.target, n.RPL_ENDOFWHO, mask))
        self._say(chat, *lines)

    def _who_line(self, channel: str, nick: str) -> Message:
        return n.numeric(self.server, self.view.target, n.RPL_WHOREPLY, channel, "u", "natter", self.server,
                         nick, "H", f"0 {nick}")

    def _whois(self, chat, msg: Message) -> None:
        if not self._need(chat, msg, 1):
            return
        nick = msg.params[-1].split(",")[0]
        target = self.view.target
        holder = chat.nicks.get(p.nick_key(nick)) if _nickish(nick) else None
        if holder is None:
            return self._say(chat, n.standard(self.server, target, n.ERR_NOSUCHNICK, nick),
                             n.standard(self.server, target, n.RPL_ENDOFWHOIS, nick))
        lines = [n.numeric(self.server, target, n.RPL_WHOISUSER, holder.nick, "u", "natter", "*", holder.nick),
                 n.numeric(self.server, target, n.RPL_WHOISSERVER, holder.nick, self.server, self.features.network)]
        channels = " ".join(channel_of(room.name) for room in holder.rooms.values())
        if channels:
            lines.append(n.numeric(self.server, target, n.RPL_WHOISCHANNELS, holder.nick, channels))
        lines.append(n.standard(self.server, target, n.RPL_ENDOFWHOIS, holder.nick))
        self._say(chat, *lines)

    def _list(self, chat, msg: Message) -> None:
        label = self.view.label()
        wanted = None
        if msg.params and msg.params[0]:
            wanted = {p.room_key(c[1:]) for c in msg.params[0].split(",") if c.startswith("#") and len(c) > 1}
        self.view.lists[label] = wanted
        self._core(chat, p.ListRooms(outbound.LIST_REF + label))

    def _motd_command(self, chat, msg: Message) -> None:
        self._say(chat, self._motd())

    def _cap(self, chat, msg: Message) -> None:
        self._say(chat, *self.caps.handle(msg.params, self.view.nick, True))

    def _authenticate(self, chat, msg: Message) -> None:
        if self.sasl is not None and self.sasl.credentials is not None:
            return self._say(chat, n.standard(self.server, self.view.target, n.ERR_SASLALREADY))
        self._say(chat, n.numeric(self.server, self.view.target, n.ERR_SASLFAIL,
                                  "SASL is taken before registration only: set it in your client's server "
                                  "settings and connect again"))

    def _again(self, chat, msg: Message) -> None:
        self._say(chat, n.standard(self.server, self.view.target, n.ERR_ALREADYREGISTERED))

    def _chathistory(self, chat, msg: Message) -> None:
        view = self.view
        try:
            q = parse_chathistory(msg.params, view.epoch, self.features.history_limit)
        except HistoryFail as e:
            return self._say(chat, e.message(self.server))
        label = view.label()
        ref = outbound.HISTORY_REF + label
        above = 0
        if q.ts is not None:
            view.history[label] = (q.target, 0)
            before_ts = q.ts if q.subcommand == "BEFORE" else None
            after_ts = q.ts if q.subcommand != "BEFORE" else None
            return self._core(chat, HistoryAt(q.room, q.nick, before_ts, after_ts, q.limit, ref))
        before = after = None
        if q.subcommand == "BEFORE":
            before = q.msg_id
        elif q.subcommand == "AFTER":
            after = q.msg_id
        elif q.msg_id is not None:          # LATEST msgid=X: the newest, none at or before X
            above = q.msg_id
        view.history[label] = (q.target, above)
        self._core(chat, p.HistoryRequest(q.room, q.nick, before, after, q.limit, ref))

    def _mode(self, chat, msg: Message) -> None:
        if not self._need(chat, msg, 1):
            return
        target, view = msg.params[0], self.view
        if not is_channel(target):
            if not view.is_me(target):
                return self._say(chat, n.standard(self.server, view.target, n.ERR_USERSDONTMATCH))
            if len(msg.params) == 1:
                return self._say(chat, Message(n.RPL_UMODEIS, (view.target, "+i"), self.server))
            if msg.params[1].strip("+-i"):
                self._say(chat, n.standard(self.server, view.target, n.ERR_UMODEUNKNOWNFLAG))
            return
        known = view.room(target[1:]) if len(target) > 1 else None
        if known is None:
            return self._say(chat, n.standard(self.server, view.target, n.ERR_NOTONCHANNEL, target))
        if len(msg.params) == 1:
            return self._say(chat, n.numeric(self.server, view.target, n.RPL_CHANNELMODEIS, target,
                                             outbound.mode_string(known)))
        args = list(msg.params[2:])
        if msg.params[1].lstrip("+") == "b" and not args:       # the ban list
            bans = chat.mod_of(p.room_key(known.name)).bans.values()
            lines = [n.numeric(self.server, view.target, n.RPL_BANLIST, target, f"{r.nick}!*@*", r.by or "*")
                     for r in bans]
            return self._say(chat, *lines, n.standard(self.server, view.target, n.RPL_ENDOFBANLIST, target))
        sign, modes = "+", {}
        ref = "MODE " + target
        for letter in msg.params[1]:
            if letter in "+-":
                sign = letter
            elif letter in _ROLE_LETTERS:           # o v b: an action on a member, one argument each
                if not args:
                    return self._say(chat, n.standard(self.server, view.target, n.ERR_NEEDMOREPARAMS, "MODE"))
                nick = args.pop(0).split("!")[0]
                self._core(chat, p.Mod(known.name, _ROLE_LETTERS[letter][sign == "-"], nick, None, None, ref))
            elif letter in _FLAG_LETTERS:           # m U: the room's modes
                modes[_FLAG_LETTERS[letter]] = sign == "+"
            elif letter == "k":
                # 005 puts k among the modes that always take a parameter
                # (CHANMODES=b,k,...): -k's (the key, or *) is taken too and not
                # used, else it would be the next letter's (-k+v key nick).
                key = args.pop(0) if args else ""
                if sign == "-":
                    key = ""
                elif not key:
                    return self._say(chat, n.standard(self.server, view.target, n.ERR_NEEDMOREPARAMS, "MODE"))
                if len(key) > p.MAX_ROOM_KEY:
                    return self._say(chat, n.fail(self.server, "MODE", "BAD_FRAME", target,
                                                  text=f"A key has at most {p.MAX_ROOM_KEY} characters"))
                modes["key"] = key
            else:
                self._say(chat, n.numeric(self.server, view.target, n.ERR_UNKNOWNMODE, letter,
                                          "is not a mode here: o v b k m U"))
        if modes:
            self._core(chat, p.SetMode(known.name, ref=ref, **modes))

    def _kick(self, chat, msg: Message) -> None:
        if not self._need(chat, msg, 2):
            return
        channel = msg.params[0]
        room = self._room(chat, channel)
        if room is None:
            return
        reason = msg.params[2] if len(msg.params) > 2 and msg.params[2] else None
        try:
            reason = p.check_reason(reason)
        except p.ProtocolError as e:
            return self._say(chat, n.fail(self.server, "KICK", e.code.upper(), channel, text=e.message))
        for nick in msg.params[1].split(","):
            self._core(chat, p.Mod(room, "kick", nick, reason, None, "KICK " + channel))


_ROLE_LETTERS = {"o": ("op", "deop"), "v": ("voice", "devoice"), "b": ("ban", "unban")}
_FLAG_LETTERS = {"m": "moderated", "U": "questions"}


def _unanswered(chat, *lines: Message) -> None:
    """The reply to a NOTICE that went wrong: none."""


def _nickish(text: str) -> bool:
    try:
        p.check_nick(text)
    except p.ProtocolError:
        return False
    return True


def _bytes(lines) -> bytes:
    """Lines -> the wire; a line that cannot be written (it should not
    happen: replies are made safe) is logged and left out, never fatal."""
    out = []
    for line in lines:
        try:
            out.append(serialise(line))
        except ValueError as e:
            log.error("irc: a reply could not be written: %s", e)
    return b"".join(out)


_COMMANDS = {
    "PING": IrcSession._ping,
    "PONG": IrcSession._pong,
    "QUIT": IrcSession._quit,
    "NICK": IrcSession._nick,
    "JOIN": IrcSession._join,
    "PART": IrcSession._part,
    "PRIVMSG": IrcSession._privmsg,
    "NOTICE": IrcSession._privmsg,
    "TOPIC": IrcSession._topic,
    "NAMES": IrcSession._names,
    "WHO": IrcSession._who,
    "WHOIS": IrcSession._whois,
    "LIST": IrcSession._list,
    "MOTD": IrcSession._motd_command,
    "CAP": IrcSession._cap,
    "USER": IrcSession._again,
    "PASS": IrcSession._again,
    "AUTHENTICATE": IrcSession._authenticate,
    "CHATHISTORY": IrcSession._chathistory,
    "MODE": IrcSession._mode,
    "KICK": IrcSession._kick,
}
