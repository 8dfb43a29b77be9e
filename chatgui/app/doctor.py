"""The connection doctor's verdict: facts in, a sentence for a person out.

The probes (:mod:`chatgui.net.probes`) look at the network and fill in
:class:`Facts`; :func:`classify` turns them into a :class:`Diagnosis`
without touching a socket, checking in this order: the name, the route,
the connection, what answered, encryption on one side only, a changed
certificate, the password, a full room, and last whether discovery sees
the room. ``sentence`` says what was found and ``advice`` what to do, in
words; the error numbers, by name and number, go in ``details``.

Error numbers differ between systems (ECONNREFUSED is 111 on Linux, 61 on
macOS, 10061 on Windows), so :class:`Facts` records the numbering it was
measured in (``platform``) and the tables below name each number; the
probes fill it with ``sys.platform``, the tests with every table.

Pure functions and plain data: any thread.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

from chatgui.app.view import HOST_LABEL, LAN_LABEL, TLS_LABEL
from chatgui.net.failures import tls_changed_message

# Socket errors by number, per numbering: Linux, macOS (BSD), Windows
# (Winsock, as Python reports them, and the Win32 codes some calls give).
ERRNO_NAMES = {
    "linux": {1: "EPERM", 13: "EACCES", 22: "EINVAL", 32: "EPIPE", 97: "EAFNOSUPPORT", 98: "EADDRINUSE",
              99: "EADDRNOTAVAIL", 100: "ENETDOWN", 101: "ENETUNREACH", 102: "ENETRESET",
              103: "ECONNABORTED", 104: "ECONNRESET", 105: "ENOBUFS", 110: "ETIMEDOUT",
              111: "ECONNREFUSED", 112: "EHOSTDOWN", 113: "EHOSTUNREACH"},
    "darwin": {1: "EPERM", 13: "EACCES", 22: "EINVAL", 32: "EPIPE", 47: "EAFNOSUPPORT", 48: "EADDRINUSE",
               49: "EADDRNOTAVAIL", 50: "ENETDOWN", 51: "ENETUNREACH", 52: "ENETRESET",
               53: "ECONNABORTED", 54: "ECONNRESET", 55: "ENOBUFS", 60: "ETIMEDOUT",
               61: "ECONNREFUSED", 64: "EHOSTDOWN", 65: "EHOSTUNREACH"},
    "win32": {10013: "EACCES", 10022: "EINVAL", 10047: "EAFNOSUPPORT", 10048: "EADDRINUSE",
              10049: "EADDRNOTAVAIL", 10050: "ENETDOWN", 10051: "ENETUNREACH", 10052: "ENETRESET",
              10053: "ECONNABORTED", 10054: "ECONNRESET", 10055: "ENOBUFS", 10060: "ETIMEDOUT",
              10061: "ECONNREFUSED", 10064: "EHOSTDOWN", 10065: "EHOSTUNREACH",
              121: "ETIMEDOUT", 1225: "ECONNREFUSED", 1231: "ENETUNREACH", 1232: "EHOSTUNREACH",
              1236: "ECONNABORTED"},
}

# Windows' own names, for the details (a person searching the web finds these).
_WINDOWS_NAMES = {10013: "WSAEACCES", 10022: "WSAEINVAL", 10047: "WSAEAFNOSUPPORT", 10048: "WSAEADDRINUSE",
                  10049: "WSAEADDRNOTAVAIL", 10050: "WSAENETDOWN", 10051: "WSAENETUNREACH",
                  10052: "WSAENETRESET", 10053: "WSAECONNABORTED", 10054: "WSAECONNRESET",
                  10055: "WSAENOBUFS", 10060: "WSAETIMEDOUT", 10061: "WSAECONNREFUSED",
                  10064: "WSAEHOSTDOWN", 10065: "WSAEHOSTUNREACH", 121: "ERROR_SEM_TIMEOUT",
                  1225: "ERROR_CONNECTION_REFUSED", 1231: "ERROR_NETWORK_UNREACHABLE",
                  1232: "ERROR_HOST_UNREACHABLE", 1236: "ERROR_CONNECTION_ABORTED"}

# Name lookup (getaddrinfo) errors, per numbering.
GAI_NAMES = {
    "linux": {-1: "EAI_BADFLAGS", -2: "EAI_NONAME", -3: "EAI_AGAIN", -4: "EAI_FAIL", -5: "EAI_NODATA",
              -6: "EAI_FAMILY", -7: "EAI_SOCKTYPE", -8: "EAI_SERVICE", -9: "EAI_ADDRFAMILY",
              -10: "EAI_MEMORY", -11: "EAI_SYSTEM"},
    "darwin": {1: "EAI_ADDRFAMILY", 2: "EAI_AGAIN", 3: "EAI_BADFLAGS", 4: "EAI_FAIL", 5: "EAI_FAMILY",
               6: "EAI_MEMORY", 7: "EAI_NODATA", 8: "EAI_NONAME", 9: "EAI_SERVICE", 10: "EAI_SOCKTYPE",
               11: "EAI_SYSTEM"},
    "win32": {11001: "EAI_NONAME", 11002: "EAI_AGAIN", 11003: "EAI_FAIL", 11004: "EAI_NODATA",
              8: "EAI_MEMORY", 10047: "EAI_FAMILY", 10109: "EAI_SERVICE", 10044: "EAI_SOCKTYPE",
              10022: "EAI_BADFLAGS"},
}


def numbering(platform: str) -> str:
    """sys.platform -> the key of the tables: linux, darwin or win32."""
    if platform.startswith("win") or platform == "cygwin":
        return "win32"
    if platform == "darwin" or "bsd" in platform:
        return "darwin"
    return "linux"


def errno_name(number: int | None, platform: str) -> str | None:
    """ECONNREFUSED for 111 on Linux, 61 on macOS, 10061 on Windows; None if unknown."""
    return ERRNO_NAMES[numbering(platform)].get(number) if number is not None else None


def gai_name(number: int | None, platform: str) -> str | None:
    return GAI_NAMES[numbering(platform)].get(number) if number is not None else None


def _errno_detail(number: int | None, platform: str, names=ERRNO_NAMES) -> str:
    if number is None:
        return "no error number"
    key = numbering(platform)
    name = names[key].get(number, "unknown")
    if key == "win32" and names is ERRNO_NAMES and number in _WINDOWS_NAMES:
        name = _WINDOWS_NAMES[number]
    return f"{name}, error {number} on {key}"


@dataclass
class Facts:
    """What the probes saw. Each group is left as None when it was not
    checked (an earlier step failed, or it does not apply)."""
    host: str
    port: int
    tls: bool = False                 # the person asked for an encrypted connection
    password_given: bool = False
    platform: str = "linux"           # the numbering of every error number below
    # 1. the name
    addresses: list = field(default_factory=list)
    resolve_error: int | None = None  # getaddrinfo's error number
    resolve_message: str = ""
    # 2. the route, against this computer's interfaces
    route: str | None = None          # loopback | this_computer | same_network | other_network | no_route
    route_errno: int | None = None
    source_address: str | None = None  # this computer's address toward the room
    networks: list = field(default_factory=list)   # "198.51.100.2/24 (eth0)"
    # 3. the TCP connection
    connected: bool | None = None
    connect_errno: int | None = None
    connect_message: str = ""
    timed_out: bool = False
    timeout: float = 5.0
    local_room: bool | None = None    # refused there, but a room answers on 127.0.0.1 at that port
    # 4. what answered
    answer: str | None = None         # welcome | error | tls_required | silent | closed | other | unverified
    error_code: str | None = None     # the room's error code, before any welcome
    error_message: str = ""
    first_bytes: str = ""             # the start of what a stranger said (for the details)
    # 5. encryption
    tls_failed: str | None = None     # plain_server | timeout | other
    tls_message: str = ""
    fingerprint: str | None = None    # the certificate shown
    pinned: str | None = None         # the one this computer expects
    # 6. discovery
    discovery_unicast: str | None = None  # answered | refused | no_answer | error
    discovery_seen: bool | None = None    # a broadcast scan found this room
    discovery_rooms: int = 0              # rooms the scan found in all

    def as_json(self) -> dict:
        return asdict(self)


@dataclass(frozen=True)
class Diagnosis:
    kind: str
    ok: bool              # the room can be joined as things are
    sentence: str         # what was found, for a person
    advice: str           # what to do
    details: tuple = ()   # the steps, with error names and numbers

    def text(self) -> str:
        return f"{self.sentence} {self.advice}".strip()

    def as_json(self) -> dict:
        return {"kind": self.kind, "ok": self.ok, "sentence": self.sentence, "advice": self.advice,
                "details": list(self.details)}


# Kinds a failed join is worth a diagnosis for (the others say it all already).
CONNECTION_KINDS = frozenset({"refused", "timeout", "unreachable", "dns", "tls", "protocol"})


def _where(host: str, port: int) -> str:
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _details(f: Facts) -> list[str]:
    out = []
    if f.resolve_error is not None:
        out.append(f"name {f.host!r}: not resolved ({_errno_detail(f.resolve_error, f.platform, GAI_NAMES)}"
                   f"{': ' + f.resolve_message if f.resolve_message else ''})")
        return out
    if f.addresses:
        out.append(f"name {f.host!r}: {', '.join(f.addresses)}")
    if f.route is not None:
        line = f"route: {f.route.replace('_', ' ')}"
        if f.source_address:
            line += f" (from {f.source_address})"
        if f.route_errno is not None:
            line += f" ({_errno_detail(f.route_errno, f.platform)})"
        out.append(line)
    if f.networks:
        out.append("this computer's networks: " + ", ".join(f.networks))
    if f.connected is not None:
        where = _where(f.addresses[0] if f.addresses else f.host, f.port)
        if f.connected:
            out.append(f"TCP {where}: connected")
        elif f.timed_out:
            out.append(f"TCP {where}: no answer within {f.timeout:g} s"
                       + (f" ({_errno_detail(f.connect_errno, f.platform)})" if f.connect_errno else ""))
        else:
            out.append(f"TCP {where}: failed ({_errno_detail(f.connect_errno, f.platform)}"
                       f"{': ' + f.connect_message if f.connect_message else ''})")
    if f.local_room is not None:
        out.append(f"127.0.0.1:{f.port}: {'a room answers' if f.local_room else 'nothing either'}")
    if f.tls_failed:
        out.append(f"TLS: failed ({f.tls_failed}{': ' + f.tls_message if f.tls_message else ''})")
    if f.fingerprint:
        out.append(f"TLS certificate: {f.fingerprint}" + (f" (expected {f.pinned})" if f.pinned else
                                                          " (never seen here before)"))
    if f.answer is not None:
        line = f"answer: {f.answer}"
        if f.error_code:
            line += f" ({f.error_code}{': ' + f.error_message if f.error_message else ''})"
        if f.first_bytes:
            line += f", began with {f.first_bytes!r}"
        out.append(line)
    if f.discovery_unicast is not None:
        out.append(f"discovery query to {f.addresses[0] if f.addresses else f.host}: {f.discovery_unicast}")
    if f.discovery_seen is not None:
        out.append(f"discovery scan: {f.discovery_rooms} room(s) found, "
                   + ("this one among them" if f.discovery_seen else "not this one"))
    return out


MAC_LOCAL_NETWORK = ("On a Mac, also check System Settings > Privacy & Security > Local Network: Natter must "
                     "be allowed there (a Mac that refuses it reports \"no route to host\").")


def classify(f: Facts) -> Diagnosis:
    """The verdict on these facts (see the module docstring for the order)."""
    kind, ok, sentence, advice = _verdict(f)
    if numbering(f.platform) == "darwin" and kind in ("isolated", "discovery_blocked", "no_answer"):
        advice = f"{advice} {MAC_LOCAL_NETWORK}".strip()
    return Diagnosis(kind, ok, sentence, advice, tuple(_details(f)))


def _verdict(f: Facts) -> tuple[str, bool, str, str]:
    where = _where(f.host, f.port)
    p = f.platform
    if f.resolve_error is not None:
        name = gai_name(f.resolve_error, p)
        if name in ("EAI_AGAIN", "EAI_FAIL", "EAI_SYSTEM", "EAI_MEMORY"):
            return ("name_lookup_down", False,
                    f"This computer could not look up the name {f.host!r}: the name service (DNS) did not answer.",
                    "Check that this computer is connected to the network, or use the room's address "
                    "(numbers like 192.168.1.20) instead of its name.")
        return ("name_unknown", False, f"No computer called {f.host!r} was found.",
                "Check the spelling, or use the room's address (numbers like 192.168.1.20): whoever "
                "hosts the room can read it on their computer.")
    if f.connected is False:
        return _not_connected(f, where)
    if f.connected is None:
        return ("not_checked", False, f"The connection to {where} was not tried.", "")
    return _connected(f, where)


def _not_connected(f: Facts, where: str) -> tuple[str, bool, str, str]:
    name = errno_name(f.connect_errno, f.platform)
    if f.timed_out and name is None:
        name = "ETIMEDOUT"
    other = f.route in ("other_network", "no_route")
    if name == "ECONNREFUSED":
        if f.local_room:
            return ("local_only", False,
                    f"The room on this computer is open to this computer only: nothing answers at {where}, "
                    f"but it does at 127.0.0.1 port {f.port}.",
                    f"Join it at 127.0.0.1. To let others join, host it with \"{LAN_LABEL}\" ticked "
                    "(a server: start it with --host 0.0.0.0).")
        if f.route == "loopback":
            return ("refused", False, f"No room runs on this computer at port {f.port}.",
                    f"Start one (tick \"{HOST_LABEL}\"), or check the port.")
        return ("refused", False,
                f"The computer at {f.host} answered, but nothing accepts connections on port {f.port}.",
                f"If a room runs there, it is open to that computer only: whoever hosts it ticks "
                f"\"{LAN_LABEL}\" (a server: start it with --host 0.0.0.0). Otherwise the room is not "
                "running, or it uses another port.")
    if name == "ENETUNREACH" or f.route == "no_route" or (other and name in ("EHOSTUNREACH", "EHOSTDOWN",
                                                                               "ETIMEDOUT")):
        mine = f"; this computer is on {', '.join(n.split(' ')[0] for n in f.networks)}" if f.networks else ""
        return ("other_network", False,
                f"{f.host} and this computer are on different networks{mine}, and the connection does not "
                "get through.",
                "Join the same network as the room (the same Wi-Fi, not a guest one). A VPN that takes "
                "all traffic does this too: disconnect it and try again. Between two networks, whoever "
                "runs them has to let the room's port through.")
    if name in ("EHOSTUNREACH", "EHOSTDOWN"):
        return ("isolated", False,
                f"Nothing at {f.host} answers on this network: no computer has that address now, or the "
                "network keeps devices apart (guest Wi-Fi, \"client isolation\").",
                "Check the address on the room's computer. On guest Wi-Fi devices cannot see each other: "
                "use the main network, or ask whoever runs it to let these computers talk.")
    if name == "ETIMEDOUT":
        return ("no_answer", False,
                f"No answer from {where} within {f.timeout:g} s: a firewall is probably dropping the "
                "connection, on the room's computer or on the network.",
                "On the room's computer, let Natter through the firewall (Windows asks the first time: "
                "allow it on private networks). Check the address and the port.")
    if name in ("EACCES", "EPERM"):
        return ("blocked_here", False, f"This computer's firewall did not let the connection to {where} out.",
                "Allow Natter in this computer's firewall or security software, then try again.")
    if name in ("ENETDOWN", "EADDRNOTAVAIL"):
        return ("offline", False, "This computer is not connected to a network.",
                "Connect it (Wi-Fi or cable), then try again.")
    return ("connect_failed", False, f"The connection to {where} failed ({f.connect_message or name or 'unknown'}).",
            "Check the address and the port, and that the room is running.")


def _connected(f: Facts, where: str) -> tuple[str, bool, str, str]:
    code = f.error_code
    if f.answer == "error" and code in ("server_full", "too_many_connections"):
        if code == "too_many_connections":
            return ("room_full", False, f"The room at {where} refuses more connections from your address.",
                    "Close other Natter windows joined to it, or ask whoever runs it to raise --max-per-ip.")
        return ("room_full", False, f"The room at {where} is full.",
                "Try again later, or ask whoever runs it to raise --max-clients.")
    if f.tls and f.tls_failed == "plain_server":
        return ("tls_client_only", False,
                f"The room at {where} is not encrypted, but you asked for an encrypted connection (TLS).",
                f"Untick \"{TLS_LABEL}\" (or leave out --tls) to join it, on a network you trust.")
    if f.tls and f.tls_failed:
        return ("tls_failed", False,
                f"Something at {where} accepted the connection but the encryption (TLS) handshake failed.",
                "Check the port: is that a Natter room started with --tls?")
    if f.fingerprint and f.pinned and f.fingerprint != f.pinned:
        # The client's own warning, word for word: it says what to do too.
        return "cert_changed", False, tls_changed_message(f.host, f.port, f.pinned, f.fingerprint), ""
    if f.answer == "tls_required":
        return ("tls_server_only", False,
                f"The room at {where} is encrypted (TLS), but you connected without encryption.",
                f"Tick \"{TLS_LABEL}\" (or add --tls) and join again.")
    if f.answer == "error" and code == "auth_failed":
        if f.password_given:
            return ("password_wrong", False, f"The room at {where} works, but the password is wrong.",
                    "Check the password with whoever runs the room.")
        return ("password_needed", False, f"The room at {where} needs a password.",
                "Ask whoever runs it for the password and type it in the form (or give --password).")
    if f.answer == "error" and code == "bad_nick":
        return ("bad_nick", False, f"The room at {where} works, but it does not accept that nickname.",
                "Use letters, digits, '_' and '-', up to 32 characters.")
    if f.answer == "error" and code not in ("nick_taken",):
        return ("room_refused", False, f"The room at {where} refused the connection ({code}): "
                                       f"{f.error_message or 'no reason given'}.", "")
    if f.answer in ("other", "silent", "closed"):
        said = {"other": "answered, but not as a Natter room does",
                "silent": "accepted the connection but said nothing a Natter room would",
                "closed": "accepted the connection and hung up without a word"}[f.answer]
        return ("not_natter", False, f"Something at {where} {said}: it is not a chat room.",
                "Check the port: the room's window, or the server's first line, shows it.")
    if f.answer == "unverified":
        return ("ok_unverified", True,
                f"The room at {where} answers with encryption; this computer has never seen its certificate "
                f"(fingerprint {f.fingerprint}), so nothing was sent to it.",
                "Join it and compare the fingerprint with the one the room shows before you trust it.")
    if f.answer in ("welcome", "error"):       # nick_taken: the room works, the nick is in use
        nick_note = " (your nickname is in use there: pick another)" if code == "nick_taken" else ""
        if f.discovery_seen is False:
            why = ("the network does not pass broadcasts between you (other networks, guest Wi-Fi or a VPN)"
                   if f.discovery_unicast == "answered" else
                   "the network, or a firewall, blocks discovery")
            return ("discovery_blocked", True,
                    f"The room at {where} works{nick_note}, but discovery does not work on this network: {why}, "
                    "so it is not in the list of rooms on your network.",
                    f"Join it by its address, {f.host}, port {f.port}: it stays in your recent rooms.")
        return ("ok", True, f"The room at {where} works: you can join it{nick_note}.", "")
    return ("unknown", False, f"Connected to {where}, but could not tell what answered.", "")

