"""The core's ``error`` frames -> IRC replies for one client (no I/O).

The door posts every core event with a ``ref`` naming the IRC command
that caused it, ``"COMMAND target"`` (:func:`ref_for`: ``"JOIN #rust"``,
``"PRIVMSG bob"``, ``"NICK alice"``); the core echoes it on its error, so
:func:`error_lines` can answer with the numeric IRC clients know for that
command (433 for a nick in use, 475 for a wrong key, 442 for a room the
client is not in...). The core's sentence is the numeric's text, since it
says more than the usual one. An error no numeric fits becomes an IRCv3
standard reply ``FAIL COMMAND CODE :sentence``; an error that ends the
connection becomes ``ERROR`` and closes it. An error caused by a
``NOTICE`` gets no reply at all (RFC 2812 3.3.2), unless it ends the
connection.

Thread: the hub thread, like :mod:`.outbound`.
"""
from __future__ import annotations

from ... import protocol as p
from . import numerics as n
from .view import Outcome, View
from .wire import Message

# Core error codes after which the core closes the connection.
FATAL = frozenset({p.SERVER_FULL, p.TOO_MANY_CONNECTIONS, p.SHUTDOWN, p.TIMEOUT, p.TOO_SLOW,
                   p.TOO_MANY_ERRORS, p.TLS_REQUIRED, "replaced"})

# (core code, IRC command or None for any) -> numeric. The target of the
# ref (a nick or a channel) is the numeric's first parameter after the client.
_NUMERICS = {
    (p.NICK_TAKEN, None): n.ERR_NICKNAMEINUSE,
    (p.BAD_NICK, None): n.ERR_ERRONEUSNICKNAME,
    (p.BAD_ROOM, "JOIN"): n.ERR_BADCHANNAME,
    (p.BAD_ROOM, None): n.ERR_NOSUCHCHANNEL,
    (p.BAD_KEY, None): n.ERR_BADCHANNELKEY,
    (p.TOO_MANY_ROOMS, None): n.ERR_TOOMANYCHANNELS,
    (p.NOT_IN_ROOM, "PRIVMSG"): n.ERR_CANNOTSENDTOCHAN,
    (p.NOT_IN_ROOM, None): n.ERR_NOTONCHANNEL,
    (p.NO_SUCH_USER, None): n.ERR_NOSUCHNICK,
    (p.AUTH_FAILED, "PASS"): n.ERR_PASSWDMISMATCH,
    (p.AUTH_FAILED, "AUTHENTICATE"): n.ERR_SASLFAIL,
    (p.TOO_LONG, None): n.ERR_INPUTTOOLONG,
    (p.FORBIDDEN, "PRIVMSG"): n.ERR_CANNOTSENDTOCHAN,      # a moderated room, a mute
    (p.FORBIDDEN, None): n.ERR_CHANOPRIVSNEEDED,
    (p.BANNED, "JOIN"): n.ERR_BANNEDFROMCHAN,
    (p.MUTED, "PRIVMSG"): n.ERR_CANNOTSENDTOCHAN,
    (p.NICK_RESERVED, None): n.ERR_NICKNAMEINUSE,
}
# Numerics whose only parameter before the text is the client's nick.
_NO_TARGET = {n.ERR_PASSWDMISMATCH, n.ERR_SASLFAIL, n.ERR_INPUTTOOLONG}


def ref_for(command: str, target: str = "", number: int | None = None) -> str:
    """The ``ref`` the door puts on a core event caused by ``command``.

    What the core stores (a PRIVMSG, NOTICE or TOPIC) is numbered too,
    ``"PRIVMSG #rust 7"``: the core takes a ref repeated by one session for
    a retry of the same message (``--redis`` stores it once), so each
    message needs its own. IRC targets hold no spaces, so the number
    never reads as part of the target."""
    ref = f"{command} {target}" if target else command
    return ref if number is None else f"{ref} {number}"


def error_lines(frame: dict, view: View) -> Outcome:
    """One core ``error`` frame -> the reply lines (and ``close`` for a fatal one)."""
    code = frame.get("code", "")
    text = frame.get("message") or code
    if code in FATAL:
        return Outcome([Message("ERROR", (text,))], close=True)
    command, _, target = (frame.get("ref") or "").partition(" ")
    target = target.partition(" ")[0]       # without ref_for's number
    command = command.upper()
    if command == "JOINREPLAY":
        return Outcome()        # the replay the door asked for on JOIN: the client asked for nothing
    if command == "NOTICE":
        return Outcome()        # RFC 2812 3.3.2: a NOTICE never gets an automatic reply
    if command == "CHATHISTORY":
        view.history.pop(target, None)     # the target of its ref is the batch label
        return Outcome([n.fail(view.server, "CHATHISTORY", code.upper() or "ERROR", text=text)])
    numeric = _NUMERICS.get((code, command)) or _NUMERICS.get((code, None))
    if numeric is None:
        return Outcome([n.fail(view.server, command or "*", code.upper() or "ERROR", text=text)])
    if numeric in _NO_TARGET:
        return Outcome([n.numeric(view.server, view.target, numeric, text)])
    return Outcome([n.numeric(view.server, view.target, numeric, target or "*", text)])
