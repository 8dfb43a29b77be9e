"""The numeric replies this server sends, by name, and their usual texts.

:func:`numeric` builds one: ``:server CODE target params...``. ``target``
is the client's nick, or ``*`` before it has one. :func:`standard` appends
the text IRC clients expect for that numeric (``TEXTS``); a caller with a
more useful sentence passes it as the last parameter of :func:`numeric`.
Every numeric is listed in ``docs/irc.md``.
"""
from __future__ import annotations

from .wire import MAX_BODY, Message, fit, middle, serialise_body

RPL_WELCOME = "001"
RPL_YOURHOST = "002"
RPL_CREATED = "003"
RPL_MYINFO = "004"
RPL_ISUPPORT = "005"
RPL_UMODEIS = "221"
RPL_WHOISUSER = "311"
RPL_WHOISSERVER = "312"
RPL_ENDOFWHO = "315"
RPL_ENDOFWHOIS = "318"
RPL_WHOISCHANNELS = "319"
RPL_LISTSTART = "321"
RPL_LIST = "322"
RPL_LISTEND = "323"
RPL_CHANNELMODEIS = "324"
RPL_NOTOPIC = "331"
RPL_TOPIC = "332"
RPL_TOPICWHOTIME = "333"
RPL_WHOREPLY = "352"
RPL_NAMREPLY = "353"
RPL_BANLIST = "367"
RPL_ENDOFNAMES = "366"
RPL_ENDOFBANLIST = "368"
RPL_MOTD = "372"
RPL_MOTDSTART = "375"
RPL_ENDOFMOTD = "376"
ERR_NOSUCHNICK = "401"
ERR_NOSUCHCHANNEL = "403"
ERR_CANNOTSENDTOCHAN = "404"
ERR_TOOMANYCHANNELS = "405"
ERR_TOOMANYTARGETS = "407"
ERR_NOORIGIN = "409"
ERR_INVALIDCAPCMD = "410"
ERR_NORECIPIENT = "411"
ERR_NOTEXTTOSEND = "412"
ERR_INPUTTOOLONG = "417"
ERR_UNKNOWNCOMMAND = "421"
ERR_NOMOTD = "422"
ERR_NONICKNAMEGIVEN = "431"
ERR_ERRONEUSNICKNAME = "432"
ERR_NICKNAMEINUSE = "433"
ERR_USERNOTINCHANNEL = "441"
ERR_NOTONCHANNEL = "442"
ERR_NOTREGISTERED = "451"
ERR_NEEDMOREPARAMS = "461"
ERR_ALREADYREGISTERED = "462"
ERR_PASSWDMISMATCH = "464"
ERR_UNKNOWNMODE = "472"
ERR_BANNEDFROMCHAN = "474"
ERR_BADCHANNELKEY = "475"
ERR_BADCHANNAME = "479"
ERR_CHANOPRIVSNEEDED = "482"
ERR_UMODEUNKNOWNFLAG = "501"
ERR_USERSDONTMATCH = "502"
RPL_LOGGEDIN = "900"
RPL_SASLSUCCESS = "903"
ERR_SASLFAIL = "904"
ERR_SASLTOOLONG = "905"
ERR_SASLABORTED = "906"
ERR_SASLALREADY = "907"
RPL_SASLMECHS = "908"

TEXTS = {
    RPL_ENDOFWHO: "End of WHO list",
    RPL_ENDOFWHOIS: "End of WHOIS list",
    RPL_LISTEND: "End of LIST",
    RPL_NOTOPIC: "No topic is set",
    RPL_ENDOFNAMES: "End of NAMES list",
    RPL_ENDOFBANLIST: "End of channel ban list",
    RPL_ENDOFMOTD: "End of MOTD command",
    ERR_NOSUCHNICK: "No such nick/channel",
    ERR_NOSUCHCHANNEL: "No such channel",
    ERR_CANNOTSENDTOCHAN: "Cannot send to channel",
    ERR_TOOMANYCHANNELS: "You have joined too many channels",
    ERR_TOOMANYTARGETS: "Too many targets",
    ERR_NOORIGIN: "No origin specified",
    ERR_INVALIDCAPCMD: "Invalid CAP command",
    ERR_NOTEXTTOSEND: "No text to send",
    ERR_INPUTTOOLONG: "Input line was too long",
    ERR_UNKNOWNCOMMAND: "Unknown command",
    ERR_NOMOTD: "MOTD File is missing",
    ERR_NONICKNAMEGIVEN: "No nickname given",
    ERR_ERRONEUSNICKNAME: "Erroneous nickname",
    ERR_NICKNAMEINUSE: "Nickname is already in use",
    ERR_USERNOTINCHANNEL: "They aren't on that channel",
    ERR_NOTONCHANNEL: "You're not on that channel",
    ERR_NOTREGISTERED: "You have not registered",
    ERR_NEEDMOREPARAMS: "Not enough parameters",
    ERR_ALREADYREGISTERED: "You may not reregister",
    ERR_PASSWDMISMATCH: "Password incorrect",
    ERR_UNKNOWNMODE: "is unknown mode char to me",
    ERR_BANNEDFROMCHAN: "Cannot join channel (+b)",
    ERR_BADCHANNELKEY: "Cannot join channel (+k)",
    ERR_BADCHANNAME: "Illegal channel name",
    ERR_CHANOPRIVSNEEDED: "You're not channel operator",
    ERR_UMODEUNKNOWNFLAG: "Unknown MODE flag",
    ERR_USERSDONTMATCH: "Can't change mode for other users",
    RPL_SASLSUCCESS: "SASL authentication successful",
    ERR_SASLFAIL: "SASL authentication failed",
    ERR_SASLTOOLONG: "SASL message too long",
    ERR_SASLABORTED: "SASL authentication aborted",
    ERR_SASLALREADY: "You have already authenticated using SASL",
    RPL_SASLMECHS: "are available SASL mechanisms",
}


_MAX_MIDDLE = 255     # bytes of one middle parameter: room for the text after it


def numeric(server: str, target: str, code: str, *params: str) -> Message:
    """``:server CODE target params...``. Parameters before the last may
    echo what a client sent (a nick, a channel, a subcommand), so they are
    made safe as middle parameters (:func:`~.wire.middle`); the last is
    shortened at a character boundary if the line would be over 512 bytes.
    The result always serialises."""
    return _fitted(code, [middle(x, _MAX_MIDDLE) for x in (target or "*",) + params[:-1]], params[-1:], server)


def fail(server: str, command: str, code: str, *context: str, text: str) -> Message:
    """An IRCv3 standard reply ``FAIL command code context... :text``
    (context made safe as in :func:`numeric`)."""
    return _fitted("FAIL", [middle(x, _MAX_MIDDLE) for x in (command, code) + context], (text,), server)


def _fitted(code: str, middles: list, last: tuple, server: str) -> Message:
    """The reply with its last parameter shortened to fit, and if even an
    empty one does not, its longest middle parameter halved until it does."""
    while True:
        msg = fit(Message(code, tuple(middles) + last, server))
        if len(serialise_body(msg)) + 2 <= MAX_BODY:
            return msg
        i = max(range(len(middles)), key=lambda j: len(middles[j].encode("utf-8")))
        if len(middles[i].encode("utf-8")) <= 1:
            raise ValueError(f"an IRC reply from server {server[:40]!r} cannot fit in {MAX_BODY} bytes")
        middles[i] = middle(middles[i], len(middles[i].encode("utf-8")) // 2)


def standard(server: str, target: str, code: str, *params: str) -> Message:
    """:func:`numeric` with the usual text of ``code`` as its last parameter."""
    return numeric(server, target, code, *params, TEXTS[code])
