"""IRCv3 capability negotiation and SASL PLAIN, as state machines (no I/O).

:class:`CapNegotiation` answers ``CAP LS [302]``, ``LIST``, ``REQ``,
``END``: a ``CAP LS`` or ``REQ`` before registration suspends it until
``CAP END`` (:attr:`CapNegotiation.suspended`); a REQ is granted whole
(ACK) or not at all (NAK); ``-cap`` disables. ``LS 302`` shows values
(``sasl=PLAIN``) and splits a long list over lines marked ``*``.

:class:`SaslPlain` answers ``AUTHENTICATE``: ``PLAIN``, then the base64
``authzid NUL authcid NUL password`` in chunks of at most 400 bytes (a
chunk of exactly 400 means more follows, ``+`` is an empty one), ``*``
aborts. It checks the form only: well-formed credentials wait in
:attr:`SaslPlain.presented` while the core checks them (the door asks it;
the secret's rule is the core's), and only the core's answer, given to
:meth:`SaslPlain.verified`, sends 900/903 or 904. A client that sees 903
believes it is logged in, so 903 must never come before that answer.

Thread: one connection's, like the rest of the door.
"""
from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass

from . import numerics as n
from .names import hostmask
from .wire import MAX_BODY, Message, serialise_body

SERVER_TIME = "server-time"
MESSAGE_TAGS = "message-tags"
ECHO_MESSAGE = "echo-message"
BATCH = "batch"
CHATHISTORY = "draft/chathistory"
SASL = "sasl"
MULTI_PREFIX = "multi-prefix"


def available_caps(*, sasl: bool, roles: bool) -> dict:
    """The capabilities the door offers -> their 302 values (None: no value)."""
    caps = {SERVER_TIME: None, MESSAGE_TAGS: None, ECHO_MESSAGE: None, BATCH: None, CHATHISTORY: None}
    if sasl:
        caps[SASL] = "PLAIN"
    if roles:
        caps[MULTI_PREFIX] = None
    return caps


class CapNegotiation:
    """One client's capabilities: :attr:`enabled` is what it negotiated."""

    def __init__(self, server: str, available: dict):
        self.server = server
        self.available = dict(available)
        self.enabled: set = set()
        self.version = 0          # 0: never asked; 301 or 302 after LS
        self.suspended = False    # registration waits for CAP END

    def handle(self, params: tuple, nick: str, registered: bool) -> list:
        """One ``CAP`` command's parameters -> the replies."""
        target = nick or "*"
        if not params:
            return [n.standard(self.server, target, n.ERR_NEEDMOREPARAMS, "CAP")]
        sub = params[0].upper()
        if sub == "LS":
            if not registered:
                self.suspended = True
            version = params[1] if len(params) > 1 else ""
            self.version = max(self.version, int(version) if version.isascii() and version.isdigit() and len(version) < 6 else 301)
            return self._ls(target)
        if sub == "LIST":
            return self._lines(target, "LIST", sorted(self.enabled))
        if sub == "REQ":
            if not registered:
                self.suspended = True
            return [self._req(target, params[1] if len(params) > 1 else "")]
        if sub == "END":
            self.suspended = False
            return []
        return [n.standard(self.server, target, n.ERR_INVALIDCAPCMD, params[0][:32])]

    def _ls(self, target: str) -> list:
        words = []
        for name, value in sorted(self.available.items()):
            words.append(f"{name}={value}" if value and self.version >= 302 else name)
        return self._lines(target, "LS", words)

    def _lines(self, target: str, sub: str, words: list) -> list:
        """One reply, or for 302 several with ``*`` before all but the last."""
        lines, batch = [], []
        for word in words:
            trial = Message("CAP", (target, sub, "*", " ".join(batch + [word])), self.server)
            if batch and self.version >= 302 and len(serialise_body(trial)) + 2 > MAX_BODY:
                lines.append(Message("CAP", (target, sub, "*", " ".join(batch)), self.server))
                batch = []
            batch.append(word)
        lines.append(Message("CAP", (target, sub, " ".join(batch)), self.server))
        return lines

    def _req(self, target: str, wanted: str) -> Message:
        words = wanted.split()
        changes = []
        for word in words:
            name = word[1:] if word.startswith("-") else word
            if name not in self.available:
                return Message("CAP", (target, "NAK", wanted), self.server)
            changes.append((word.startswith("-"), name))
        if not changes:
            return Message("CAP", (target, "NAK", wanted), self.server)
        for off, name in changes:
            (self.enabled.discard if off else self.enabled.add)(name)
        return Message("CAP", (target, "ACK", wanted), self.server)


@dataclass(frozen=True, slots=True)
class Credentials:
    """What SASL PLAIN presented: the account (a nick) and its secret."""
    account: str
    secret: str


_CHUNK = 400
_MAX_SASL = 4 * _CHUNK      # base64 bytes of one exchange (a secret up to ~1 KiB)


class SaslPlain:
    """One client's ``AUTHENTICATE`` exchange. :attr:`busy` while an
    exchange is open (registration waits), including while
    :attr:`presented` credentials wait for the core; :attr:`credentials`
    holds them once the core accepted them."""

    def __init__(self, server: str):
        self.server = server
        self.busy = False
        self.presented: Credentials | None = None
        self.credentials: Credentials | None = None
        self._buffer = ""

    def handle(self, params: tuple, nick: str) -> list:
        target = nick or "*"
        if not params:
            return [n.standard(self.server, target, n.ERR_NEEDMOREPARAMS, "AUTHENTICATE")]
        arg = params[0]
        if self.presented is not None:
            return []                   # the core is checking: nothing to add until it answers
        if arg == "*":
            if not self.busy:
                return [n.standard(self.server, target, n.ERR_SASLFAIL)]
            self._reset()
            return [n.standard(self.server, target, n.ERR_SASLABORTED)]
        if not self.busy:
            if self.credentials is not None:
                return [n.standard(self.server, target, n.ERR_SASLALREADY)]
            if arg.upper() != "PLAIN":
                return [n.standard(self.server, target, n.RPL_SASLMECHS, "PLAIN"),
                        n.numeric(self.server, target, n.ERR_SASLFAIL,
                                  f"{arg[:32]} is not offered here, only PLAIN: the account is your nick, "
                                  "the password your identity secret")]
            self.busy = True
            return [Message("AUTHENTICATE", ("+",))]
        if len(arg) > _CHUNK:
            self._reset()
            return [n.standard(self.server, target, n.ERR_SASLTOOLONG)]
        if arg != "+":
            self._buffer += arg
        if len(self._buffer) > _MAX_SASL:
            self._reset()
            return [n.standard(self.server, target, n.ERR_SASLTOOLONG)]
        if len(arg) == _CHUNK:
            return []                                   # more follows
        data, self._buffer = self._buffer, ""
        creds = _decode_plain(data)
        if isinstance(creds, str):
            self.busy = False
            return [n.numeric(self.server, target, n.ERR_SASLFAIL, creds)]
        self.presented = creds          # still busy: the door asks the core
        return []

    def verified(self, nick: str, ok: bool, reason: str = "") -> list:
        """The core's answer about :attr:`presented` -> 900 and 903, or 904
        with ``reason`` (a sentence) when it refused them."""
        creds, self.presented, self.busy = self.presented, None, False
        target = nick or "*"
        if creds is None:
            raise ValueError("no SASL credentials are waiting for the core's answer")
        if not ok:
            return [n.numeric(self.server, target, n.ERR_SASLFAIL, reason or n.TEXTS[n.ERR_SASLFAIL])]
        self.credentials = creds
        return [n.numeric(self.server, target, n.RPL_LOGGEDIN, hostmask(target), creds.account,
                          f"You are now logged in as {creds.account}"),
                n.standard(self.server, target, n.RPL_SASLSUCCESS)]

    def abort(self, nick: str) -> list:
        """``CAP END`` mid-exchange: the exchange is aborted (906), unless
        its credentials are with the core, whose answer ends it."""
        if not self.busy or self.presented is not None:
            return []
        self._reset()
        return [n.standard(self.server, nick or "*", n.ERR_SASLABORTED)]

    def _reset(self) -> None:
        self.busy = False
        self._buffer = ""


def _decode_plain(data: str) -> Credentials | str:
    """The credentials of a PLAIN payload, or why it is refused (a sentence)."""
    try:
        raw = base64.b64decode(data, validate=True)
    except (binascii.Error, ValueError):
        return "That is not base64: SASL PLAIN sends base64 of 'account NUL account NUL secret'"
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        return "SASL PLAIN's account and password must be UTF-8"
    parts = text.split("\0")
    if len(parts) != 3:
        return (f"SASL PLAIN has three fields, 'authzid NUL account NUL secret' (authzid may be empty), "
                f"not {len(parts)}")
    authzid, authcid, secret = parts
    account = authcid or authzid
    if not account or not secret:
        return "SASL PLAIN needs an account (your nick) and a password (your identity secret)"
    if authzid and authzid != authcid:
        return ("SASL PLAIN's authorisation identity must be empty or the account itself: Natter has no "
                "accounts to act for")
    return Credentials(account, secret)
