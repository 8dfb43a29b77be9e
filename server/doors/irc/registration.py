"""Registration of one IRC client, as a state machine (no I/O).

``NICK``, ``USER``, ``PASS``, ``CAP`` and ``AUTHENTICATE`` come in any
order. Registration is ready once there is a nick and a user, capability
negotiation (if the client began one) has ended with ``CAP END``, and no
SASL exchange is open: :meth:`Registration.handle` then hands back a
:class:`Login` once, for the door to post as the core's ``hello``. The
core decides the rest (nick in use, password, identity): the door calls
:meth:`Registration.welcomed` or :meth:`Registration.refused` with its
answer. After a refusal the client picks another nick and the next
``NICK`` makes a new :class:`Login`, so two clients racing for one nick
are settled by the core, first come first served.

``PASS`` carries the server's password, or ``nick:secret`` (an identity
secret for the nick being registered); SASL PLAIN carries an identity too,
its account the nick (:meth:`Registration.account_refusal`). The door
asks the core about presented SASL credentials and gives its answer to
:meth:`~.caps.SaslPlain.verified`; registration waits meanwhile. Accepted
credentials stay the client's identity if its nick changes before the
welcome (433, or a NICK), as a window's identity follows its nick.

Thread: one connection's.
"""
from __future__ import annotations

from dataclasses import dataclass

from ... import protocol as p
from . import numerics as n
from .caps import CapNegotiation, Credentials, SaslPlain
from .names import Refused, check_irc_nick

PRE_REGISTRATION = frozenset({"CAP", "NICK", "USER", "PASS", "AUTHENTICATE"})


@dataclass(frozen=True, slots=True)
class Login:
    nick: str
    user: str
    realname: str
    password: str | None = None
    identity: Credentials | None = None


class Registration:
    def __init__(self, server: str, caps: CapNegotiation, sasl: SaslPlain | None = None):
        self.server = server
        self.caps = caps
        self.sasl = sasl
        self.nick: str | None = None       # the nick asked for, checked
        self.user: str | None = None
        self.realname = ""
        self._pass: str | None = None
        self.waiting = False               # a Login is with the core
        self.registered = False
        self._login_nick: str | None = None   # the nick of that Login

    def handle(self, msg) -> tuple:
        """A pre-registration command -> (replies, a Login or None)."""
        cmd, params = msg.command, msg.params
        target = self.nick or "*"
        replies: list = []
        if cmd == "CAP":
            replies = self.caps.handle(params, self.nick, self.registered)
            if params and params[0].upper() == "END" and self.sasl is not None:
                replies += self.sasl.abort(self.nick)
        elif cmd == "NICK":
            replies = self._nick(params, target)
        elif cmd == "USER":
            if self.registered or self.user is not None:
                replies = [n.standard(self.server, target, n.ERR_ALREADYREGISTERED)]
            elif len(params) < 4 or not params[0]:
                replies = [n.standard(self.server, target, n.ERR_NEEDMOREPARAMS, "USER")]
            else:
                self.user, self.realname = params[0], params[3]
        elif cmd == "PASS":
            if self.registered:
                replies = [n.standard(self.server, target, n.ERR_ALREADYREGISTERED)]
            elif not params or not params[0]:
                replies = [n.standard(self.server, target, n.ERR_NEEDMOREPARAMS, "PASS")]
            else:
                self._pass = params[0]
        elif cmd == "AUTHENTICATE":
            if self.sasl is None or "sasl" not in self.caps.enabled:
                replies = [n.numeric(self.server, target, n.ERR_SASLFAIL,
                                     "Request the sasl capability (CAP REQ sasl) before AUTHENTICATE")]
            elif self.registered:
                replies = [n.standard(self.server, target, n.ERR_SASLALREADY)]
            else:
                replies = self.sasl.handle(params, self.nick)
        else:
            raise ValueError(f"{cmd} is not a registration command")
        return replies, self._ready()

    def _nick(self, params: tuple, target: str) -> list:
        if not params or not params[0]:
            return [n.standard(self.server, target, n.ERR_NONICKNAMEGIVEN)]
        try:
            self.nick = check_irc_nick(params[0])
        except Refused as e:
            return [n.numeric(self.server, target, n.ERR_ERRONEUSNICKNAME, params[0][:64], e.text)]
        return []

    def account_refusal(self, account: str) -> str | None:
        """Why a SASL account cannot be this client's identity (a
        sentence), or None: it must be the nick (compared as nicks are),
        since Natter has no accounts, only secrets that reserve nicks."""
        if self.nick is None:
            return "Send your NICK before AUTHENTICATE: the SASL account is your nick"
        if not _same_nick(account, self.nick):
            return (f"The SASL account must be your nick, {self.nick}: Natter has no accounts, an identity "
                    "secret reserves the nick it is used with")
        return None

    def _ready(self) -> Login | None:
        if (self.registered or self.waiting or self.nick is None or self.user is None
                or self.caps.suspended or (self.sasl is not None and self.sasl.busy)):
            return None
        self.waiting, self._login_nick = True, self.nick
        password, identity = self._pass, self.sasl.credentials if self.sasl is not None else None
        if password is not None and ":" in password:
            account, _, secret = password.partition(":")
            if secret and _same_nick(account, self.nick):
                password, identity = None, identity or Credentials(account, secret)
        return Login(self.nick, self.user, self.realname, password, identity)

    def refused(self, keep_nick: bool = False) -> None:
        """The core refused the Login; without ``keep_nick`` (a nick in use)
        the client must send another NICK before the next try."""
        self.waiting = False
        if not keep_nick and self.nick == self._login_nick:
            self.nick = None

    def retry(self) -> Login | None:
        """After :meth:`refused`, the Login to try now, if one is ready."""
        return self._ready()

    def welcomed(self, nick: str) -> str | None:
        """The core welcomed the client as ``nick``. Returns the nick it asked
        for meanwhile (a NICK sent while the Login was with the core), if
        different, for the door to post as a nick change."""
        asked = self.nick
        self.registered, self.waiting, self.nick = True, False, nick
        return asked if asked is not None and asked != self._login_nick else None


def _same_nick(a: str, b: str) -> bool:
    return p.nick_key(a) == p.nick_key(b)
