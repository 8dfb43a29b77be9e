"""The numeric replies this server sends, by name, and their usual texts.

:func:`numeric` builds one: ``:server CODE target params...``. ``target``
is the client's nick, or ``*`` before it has one. :func:`standard` appends
the text IRC clients expect for that numeric (``TEXTS``); a caller with a
more useful sentence passes it as the last parameter of :func:`numeric`.
Every numeric is listed in ``docs/irc.md``.
"""
from __future__ import annotations

from .wire import Message, fit

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


def numeric(server: str, target: str, code: str, *params: str) -> Message:
    """``:server CODE target params...``, its last parameter shortened at a
    character boundary if the line would be over 512 bytes."""
    return fit(Message(code, (target or "*",) + params, server))


def standard(server: str, target: str, code: str, *params: str) -> Message:
    """:func:`numeric` with the usual text of ``code`` as its last parameter."""
    return numeric(server, target, code, *params, TEXTS[code])
