"""A failed connection attempt in words a person understands:
:func:`classify_os_error`, :func:`classify_refusal` and
:func:`classify_tls_error` give (kind, sentence); :func:`tls_changed_message`
and :func:`tls_new_message` are the warnings for a certificate that is not
the pinned one, or met for the first time. Pure functions, any thread.
"""
from __future__ import annotations

import errno
import socket
import ssl

from server import protocol


# Kinds after which retrying cannot help: the user must change something.
FINAL_KINDS = frozenset({"auth_failed", "bad_nick", "tls", "tls_changed", "tls_new", "nick_reserved",
                         "bad_identity"})


def _where(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def classify_os_error(exc: BaseException, host: str, port: int, timeout: float) -> tuple[str, str]:
    """A failed connect -> (kind, message): refused, timeout, dns, unreachable."""
    where = _where(host, port)
    if isinstance(exc, socket.gaierror):
        return "dns", (f"Cannot find a computer called {host!r}: check the spelling, "
                       "or use its IP address (like 192.168.1.20).")
    if isinstance(exc, ConnectionRefusedError) or getattr(exc, "errno", None) == errno.ECONNREFUSED:
        return "refused", (f"Nothing accepted the connection at {where}. Is the server running, "
                           "on this port? If it runs on another computer, it may listen on "
                           "localhost only: start it with --host 0.0.0.0.")
    if isinstance(exc, (TimeoutError, socket.timeout)) or getattr(exc, "errno", None) == errno.ETIMEDOUT:
        return "timeout", (f"No answer from {where} within {timeout:g} s: check the address; "
                           f"a firewall may be blocking port {port}.")
    if getattr(exc, "errno", None) in (errno.ENETUNREACH, errno.EHOSTUNREACH, errno.ENETDOWN,
                                       errno.EHOSTDOWN, errno.EADDRNOTAVAIL):
        return "unreachable", (f"Cannot reach {host}: {exc.strerror or exc}. Check that this "
                               "computer is on the network, and the address.")
    reason = getattr(exc, "strerror", None) or str(exc) or type(exc).__name__
    return "unreachable", f"Cannot connect to {where}: {reason}."


def classify_refusal(code: str, message: str, nick: str, has_password: bool) -> tuple[str, str]:
    """The server's error before its welcome -> (kind, message)."""
    if code == protocol.NICK_TAKEN:
        return "nick_taken", f"Someone in the room already uses the nick {nick!r}: pick another."
    if code == protocol.BAD_NICK:
        return "bad_nick", (f"The server does not accept the nick {nick!r}: {message.rstrip('.')}. "
                            "Use letters, digits, '_' and '-', up to 32 characters.")
    if code == protocol.AUTH_FAILED:
        if has_password:
            return "auth_failed", "Wrong room password: check it with whoever runs the room."
        return "auth_failed", "This room needs a password: ask whoever runs it."
    if code == protocol.SERVER_FULL:
        return "server_full", "The room is full; try again later."
    if code == protocol.TOO_MANY_CONNECTIONS:
        return "server_full", f"Too many connections from your address: {message}"
    if code == getattr(protocol, "TLS_REQUIRED", "tls_required"):
        return "tls", ("This server requires encryption: turn on TLS (tick the TLS box, "
                       "or add --tls in the terminal) and connect again.")
    if code == protocol.TIMEOUT:
        return "timeout", f"The server gave up waiting for us: {message}"
    if code == "nick_reserved":
        return "nick_reserved", (message.strip() if message.strip() else
                                 f"The nick {nick!r} is reserved by another computer; choose another, "
                                 "or use /forget on the computer that holds it.")
    if code == "bad_identity":
        return "bad_identity", (f"The server did not accept this computer's identity ({message.rstrip('.')}). "
                                "Its file may be damaged: see the settings for where it is kept.")
    return "protocol", f"The server refused the connection ({code}): {message}"


def refusal_detail(frame: dict) -> tuple:
    """(until, retry_after) of an error frame (``muted``, ``banned``,
    ``slow_mode``): numbers from an untrusted peer, None unless sane."""
    out = []
    for key in ("until", "retry_after"):
        v = frame.get(key)
        ok = type(v) in (int, float) and v == v and 0 <= v < 1e12
        out.append(float(v) if ok else None)
    return tuple(out)


def classify_tls_error(exc: BaseException, first_bytes: bytes, host: str, port: int) -> tuple[str, str]:
    """A failed TLS handshake -> ("tls", message).

    ``first_bytes`` is what the server sent first, unencrypted: a Natter
    server without TLS says nothing and hangs up on a TLS hello, so an end
    of stream (or a JSON line) means "this server does not use encryption".
    """
    where = _where(host, port)
    if plain_server(exc, first_bytes):
        return "tls", (f"The server at {where} does not use encryption: it hung up on the TLS "
                       "handshake. Turn TLS off (untick the TLS box, or leave out --tls) to "
                       "connect to it, on a network you trust.")
    reason = getattr(exc, "reason", None) or getattr(exc, "strerror", None) or str(exc) \
        or type(exc).__name__
    return "tls", (f"The encryption (TLS) handshake with {where} failed ({reason}). Is that a "
                   "Natter server started with --tls?")


def plain_server(exc: BaseException, first_bytes: bytes) -> bool:
    """Whether a failed TLS handshake met a server without encryption: it
    answered with a JSON line, or hung up having sent nothing."""
    return first_bytes.lstrip()[:1] == b"{" or (
        not first_bytes and isinstance(exc, (ssl.SSLEOFError, ConnectionResetError, ConnectionAbortedError,
                                             BrokenPipeError)))


def tls_changed_message(host: str, port: int, pinned: str, presented: str, given: bool = False) -> str:
    """The warning for a certificate that is not the expected one.

    ``given``: the expected fingerprint is the one the user said to trust
    (not one pinned on an earlier connection).
    """
    where = _where(host, port)
    if given:
        return (f"Not connected: the certificate of {where} is not the one you said to trust. "
                f"You gave {pinned}, the server shows {presented}. Nothing was sent to it. "
                "Check the fingerprint with whoever runs the server.")
    return (f"Warning: the certificate of {where} has changed since you last connected. "
            f"It was {pinned} and is now {presented}. Someone may be intercepting the "
            "connection, or the server got a new certificate. Not connected; nothing was sent. "
            "Ask whoever runs the server to read out the fingerprint it shows at start, and "
            "trust the new certificate only if it is the same.")


def tls_new_message(host: str, port: int, presented: str) -> str:
    """The question for a server whose certificate was never seen here:
    nothing is sent to it until the person has compared the fingerprint."""
    return (f"First encrypted connection to {_where(host, port)}: nothing was sent to it yet. "
            f"Its certificate fingerprint is {presented}. Compare it with the fingerprint the "
            "server shows when it starts (ask whoever runs it to read it out), and trust it "
            "only if it is the same.")
