"""Error codes and :class:`ProtocolError`: whose frame broke which rule, in a sentence."""
from __future__ import annotations

# Error codes. The first eleven are the v1 contract; the rest extend it.
BAD_JSON = "bad_json"
BAD_FRAME = "bad_frame"
TOO_LONG = "too_long"
UNKNOWN_TYPE = "unknown_type"
NOT_WELCOMED = "not_welcomed"
NICK_TAKEN = "nick_taken"
BAD_NICK = "bad_nick"
RATE_LIMITED = "rate_limited"
NO_SUCH_USER = "no_such_user"
AUTH_FAILED = "auth_failed"
SERVER_FULL = "server_full"
BAD_TEXT = "bad_text"
ALREADY_WELCOMED = "already_welcomed"
TOO_MANY_ERRORS = "too_many_errors"
TIMEOUT = "timeout"
TOO_SLOW = "too_slow"
TOO_MANY_CONNECTIONS = "too_many_connections"
SHUTDOWN = "shutdown"
TLS_REQUIRED = "tls_required"
# Rooms (v2)
BAD_ROOM = "bad_room"
BAD_KEY = "bad_key"
TOO_MANY_ROOMS = "too_many_rooms"
NOT_IN_ROOM = "not_in_room"
# Several servers (issue 15): the shared log cannot be reached; nothing was stored.
UNAVAILABLE = "unavailable"
# A resume's since is older than the history the deployment still holds.
HISTORY_GONE = "history_gone"


class ProtocolError(Exception):
    """A frame broke the protocol.

    ``code`` is one of the constants above, ``message`` a sentence a person
    can act on. ``ref`` is the offending frame's ``ref`` when it had one, so
    a client can tell which of its messages was refused.
    """

    def __init__(self, code: str, message: str, ref: str | None = None):
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.ref = ref

    def frame(self) -> dict:
        return error_frame(self.code, self.message, self.ref)



def error_frame(code: str, message: str, ref: str | None = None) -> dict:
    f = {"type": "error", "code": code, "message": message}
    if ref is not None:
        f["ref"] = ref
    return f
