"""Identity without accounts: nick bindings, fingerprints, admins.

A client may say ``"identity": SECRET`` in its hello (a random string it
keeps in its config directory). The server keeps only the secret's
**fingerprint** (:func:`server.protocol.fingerprint`, a SHA-256: the secret
is high-entropy, so no slow hash is needed). A nick first used with an
identity is bound to that fingerprint (nicks compared by
:func:`~server.protocol.nick_key`): a later hello or ``nick`` with that nick
and another identity, or none, gets ``nick_reserved``. A nick used without
an identity binds nothing. ``forget`` releases the binding of the current
nick; a binding unused for ``--nick-expiry`` days is forgotten (checked on
use, and pruned daily by the hub). ``--no-reserve-nicks`` turns binding off.

Admins act as owners in every room: identities named on the command line
(``--admin-identity FP``; the hosting client passes its own), and hellos
whose ``admin_password`` the door checked (``Hello.admin``).

A connection keeps ``fp`` (its fingerprint, or None) and ``admin``.

Thread: the hub thread only.
"""
from __future__ import annotations

from .. import protocol as p

DAY = 86400.0
TOUCH_EVERY = 3600.0     # a binding's last use is written at most this often


class IdentityRules:
    """Nick bindings, forget, admins (mixed into Chat; ``self.clock()`` is the wall clock)."""

    def identify(self, conn, hello: p.Hello) -> None:
        """Set conn's fingerprint and admin flag from its hello."""
        conn.fp = p.fingerprint(hello.identity) if hello.identity is not None else None
        conn.admin = hello.admin or (conn.fp is not None and conn.fp in self.admin_fps)

    @property
    def admin_fps(self) -> frozenset:
        return frozenset(self.config.admin_identities)

    def claim_nick(self, conn, nick: str, fp: str | None, ref: str | None = None) -> bool:
        """True when conn may use ``nick`` with ``fp`` (and binds it); else conn is told why."""
        if not self.config.reserve_nicks:
            return True
        bound = self._binding(nick)
        refusal = _reserved(nick, fp, bound, ref)
        if refusal is not None:
            self.error(conn, refusal, counts=False)
            return False
        now = self.clock()
        if fp is not None and (bound is None or now - bound[1] > TOUCH_EVERY):
            self.store.bind_nick(p.nick_key(nick), fp, now)
        return True

    def identity_refusal(self, nick: str, secret: str, ref: str | None = None) -> p.ProtocolError | None:
        """Why ``secret`` may not be presented for ``nick`` (not an identity's
        form, or the nick is reserved by another identity), or None when the
        hello that follows would claim it. A door asks before it tells its
        client it is logged in (IRC's SASL); nothing is bound here, the hello
        binds (:meth:`claim_nick`), and a nick in use online is the hello's
        answer too."""
        try:
            p.check_identity(secret)
        except p.ProtocolError as e:
            return p.ProtocolError(e.code, e.message, ref)
        if not self.config.reserve_nicks:
            return None
        return _reserved(nick, p.fingerprint(secret), self._binding(nick), ref)

    def _binding(self, nick: str):
        """The nick's (fingerprint, last use), or None; one past the expiry is forgotten now."""
        key = p.nick_key(nick)
        bound = self.store.nick_binding(key)
        if bound is not None and self.clock() - bound[1] > self.config.nick_expiry * DAY:
            self.store.unbind_nick(key)
            bound = None
        return bound

    def on_forget(self, conn, forget: p.Forget) -> None:
        if not self._welcomed(conn, forget):
            return
        if conn.fp is None:
            return self.error(conn, p.ProtocolError(p.NO_IDENTITY, "Your client sent no identity, so no nick is "
                                                                   "reserved for you to forget.", forget.ref),
                              counts=False)
        bound = self.store.nick_binding(conn.key)
        if bound is not None and bound[0] == conn.fp:
            self.store.unbind_nick(conn.key)
        self.send(conn, p.forgotten_frame(conn.nick, forget.ref))

    def prune_bindings(self) -> int:
        """Forget bindings unused for the expiry (the hub calls it daily)."""
        return self.store.prune_bindings(self.config.nick_expiry, self.clock())

    def welcome_identity(self, conn) -> dict:
        """The welcome's identity fields."""
        f = {"admin": bool(conn.admin)}
        if conn.fp is not None:
            f["fingerprint"] = conn.fp
        return f


def _reserved(nick: str, fp: str | None, bound, ref: str | None) -> p.ProtocolError | None:
    if bound is not None and bound[0] != fp:
        return p.ProtocolError(p.NICK_RESERVED, f"The nick {nick} is reserved by another computer; choose "
                                                "another, or use /forget on the computer that holds it.", ref)
    return None
