"""What the IRC door says it does: :class:`Features`, the 004 modes and the
005 (ISUPPORT) tokens, all built from one description, so a token is
announced only when the server really does it.

Thread: pure.
"""
from __future__ import annotations

from dataclasses import dataclass

from ... import protocol as p
from .numerics import RPL_ISUPPORT, RPL_MYINFO, numeric
from .wire import MAX_BODY, Message, serialise_body

_TOKENS_PER_LINE = 13      # modern IRC: at most 13 tokens in one 005
_TRAILER = "are supported by this server"


@dataclass(frozen=True, slots=True)
class Features:
    """The facts the door announces. ``roles``: the core has ops and voices
    (PREFIX, multi-prefix, MODE +o/+v); ``list_modes``, ``param_modes``,
    ``flag_modes``: the channel modes the core enforces (CHANMODES groups
    A, B and D, e.g. "b", "k", "mU"); ``sasl``: identities can be presented."""
    server_name: str = "natter.local"
    network: str = "Natter"
    version: str = "natter-0.1.0"
    created: str = ""
    nicklen: int = p.MAX_NICK
    topiclen: int = p.MAX_TOPIC
    max_rooms_per_client: int = 100
    history_limit: int = p.MAX_HISTORY_PAGE
    max_targets: int = 4
    roles: bool = False
    list_modes: str = ""
    param_modes: str = "k"
    flag_modes: str = ""
    sasl: bool = False

    def __post_init__(self):
        check_server_name(self.server_name)

    @property
    def chanmodes(self) -> str:
        return self.list_modes + self.param_modes + self.flag_modes


MAX_SERVER_NAME = 63


def check_server_name(name: str) -> str:
    """``--irc-server-name``: what every reply's source says, so a word of
    letters, digits, '.', '-' and '_' (at most 63), or ValueError saying so."""
    if not (0 < len(name) <= MAX_SERVER_NAME and name.isascii()
            and all(ch.isalnum() or ch in ".-_" for ch in name) and name[0].isalnum()):
        raise ValueError(f"the IRC server name must be 1 to {MAX_SERVER_NAME} letters, digits, '.', '-' "
                         f"or '_', starting with a letter or digit, not {name[:80]!r}")
    return name


def isupport_tokens(f: Features) -> list:
    """The 005 tokens, in a fixed order."""
    tokens = [
        "CASEMAPPING=rfc8265",           # Natter folds nicks with NFKC and case folding
        f"CHANLIMIT=#:{f.max_rooms_per_client}",
        f"CHANMODES={f.list_modes},{f.param_modes},,{f.flag_modes}",
        f"CHANNELLEN={p.MAX_ROOM + 1}",
        "CHANTYPES=#",
        f"CHATHISTORY={f.history_limit}",
        "MSGREFTYPES=msgid,timestamp",
        f"NETWORK={f.network}",
        f"NICKLEN={f.nicklen}",
        "PREFIX=(ov)@+" if f.roles else "PREFIX=",
        "SAFELIST",
        f"TARGMAX=NAMES:1,LIST:1,WHOIS:1,PRIVMSG:{f.max_targets},NOTICE:{f.max_targets}",
        f"TOPICLEN={f.topiclen}",
        "UTF8ONLY",
    ]
    return tokens


def isupport_lines(f: Features, nick: str) -> list:
    """The 005 replies: at most 13 tokens each, each within 512 bytes."""
    out, batch = [], []
    for token in isupport_tokens(f):
        # Measured unfitted: numeric() would shorten the trailer to fit.
        trial = Message(RPL_ISUPPORT, (nick, *batch, token, _TRAILER), f.server_name)
        if batch and (len(batch) == _TOKENS_PER_LINE or len(serialise_body(trial)) + 2 > MAX_BODY):
            out.append(numeric(f.server_name, nick, RPL_ISUPPORT, *batch, _TRAILER))
            batch = []
        batch.append(token)
    if batch:
        out.append(numeric(f.server_name, nick, RPL_ISUPPORT, *batch, _TRAILER))
    return out


def myinfo(f: Features, nick: str):
    """004: the server, its version, user modes ("i") and channel modes."""
    chan = f.chanmodes + ("ov" if f.roles else "")
    with_param = "".join(sorted(set(f.list_modes + f.param_modes + ("ov" if f.roles else ""))))
    params = [f.server_name, f.version, "i", "".join(sorted(set(chan))) or "-"]
    if with_param:
        params.append(with_param)
    return numeric(f.server_name, nick, RPL_MYINFO, *params)
