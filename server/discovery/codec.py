"""The discovery wire format, with no I/O (docs/protocol.md, section 11).

Every datagram is the bytes ``NATTER1 `` and then one JSON object (UTF-8,
standard JSON only):

- query (scanner -> UDP port 30000, broadcast or unicast):
  ``{"t":"q","nonce":HEX8}`` padded with spaces to at least
  :data:`MIN_QUERY` bytes, at most :data:`MAX_DATAGRAM`;
- reply (responder -> the query's source): ``{"t":"room","nonce":...,
  "id":SERVER_UUID,"name":NAME,"port":P,"tls":BOOL,"fp":FINGERPRINT_OR_NULL,
  "users":N,"password":BOOL,"rooms":N}``, at most :data:`MAX_DATAGRAM` bytes;
- relay (between the responders of one computer only, over the loopback
  broadcast 127.255.255.255): ``{"t":"fwd","nonce":...,"to":IP,"tport":PORT,
  "dst":IP,"by":SERVER_UUID}`` padded like a query. A unicast query reaches
  only one of the sockets sharing the port; that one relays it, so every
  room on the computer answers it (see :mod:`server.discovery.responder`).

A reply is never longer than four times the smallest query the responder
accepts (512 <= 4 * 128), so discovery cannot amplify a spoofed query.

Parsing never raises on what the network sends: :func:`parse_query`,
:func:`parse_reply` and :func:`parse_forward` return None for anything
that is not well-formed (wrong size, magic, JSON, type or field).
Thread: any.
"""
from __future__ import annotations

import ipaddress
import json
import re
import unicodedata
from dataclasses import asdict, dataclass

MAGIC = b"NATTER1 "
DEFAULT_PORT = 30000
MIN_QUERY = 128
MAX_DATAGRAM = 512
MAX_NAME = 64                 # characters of a room name in a reply
MAX_ID = 64

_NONCE = re.compile(r"[0-9a-fA-F]{8}")
_FINGERPRINT = re.compile(r"(?:[0-9A-F]{4} ){15}[0-9A-F]{4}")


@dataclass(frozen=True)
class Query:
    nonce: str


@dataclass(frozen=True)
class RoomInfo:
    """What a reply says about a room (everything but the nonce)."""
    id: str
    name: str
    port: int
    tls: bool
    fp: str | None
    users: int
    password: bool
    rooms: int


@dataclass(frozen=True)
class Reply:
    nonce: str
    room: RoomInfo


@dataclass(frozen=True)
class Forward:
    """A unicast query relayed to the other responders on this computer."""
    nonce: str
    to: str          # the querier's address and port: answer there
    tport: int
    dst: str         # the address the query was sent to (the replies' source)
    by: str          # the relaying server's id (it does not answer its own relay)


def _loads(data: bytes, minimum: int) -> dict | None:
    if not (minimum <= len(data) <= MAX_DATAGRAM) or not data.startswith(MAGIC):
        return None
    try:
        obj = json.loads(data[len(MAGIC):].decode("utf-8"), parse_constant=_no_constant)
    except (ValueError, RecursionError):         # UnicodeDecodeError is a ValueError
        return None
    return obj if type(obj) is dict else None


def _no_constant(name):
    raise ValueError(f"{name} is not JSON")


def _pad(body: bytes) -> bytes:
    data = MAGIC + body
    return data + b" " * (MIN_QUERY - len(data)) if len(data) < MIN_QUERY else data


def _dumps(obj: dict) -> bytes:
    return json.dumps(obj, separators=(",", ":"), ensure_ascii=False).encode("utf-8")


def check_nonce(nonce) -> str:
    """A nonce as sent: 8 hex digits. Raises ValueError otherwise."""
    if type(nonce) is not str or not _NONCE.fullmatch(nonce):
        raise ValueError("a discovery nonce is 8 hexadecimal digits")
    return nonce


# -- queries --------------------------------------------------------------

def encode_query(nonce: str) -> bytes:
    return _pad(_dumps({"t": "q", "nonce": check_nonce(nonce)}))


def parse_query(data: bytes) -> Query | None:
    """A well-formed query of 128 to 512 bytes, or None."""
    obj = _loads(data, MIN_QUERY)
    if obj is None or obj.get("t") != "q":
        return None
    try:
        return Query(check_nonce(obj.get("nonce")))
    except ValueError:
        return None


# -- replies --------------------------------------------------------------

def clean_name(name: str) -> str:
    """A room name as a reply carries it: no control or format characters,
    spaces collapsed, at most :data:`MAX_NAME` characters."""
    text = "".join(" " if unicodedata.category(c)[0] in "CZ" else c for c in str(name))
    return " ".join(text.split())[:MAX_NAME]


def encode_reply(nonce: str, room: RoomInfo) -> bytes:
    """The reply datagram; the name is shortened until it fits in 512 bytes."""
    fields = asdict(room)
    fields["name"] = clean_name(room.name)
    while True:
        data = MAGIC + _dumps({"t": "room", "nonce": check_nonce(nonce), **fields})
        if len(data) <= MAX_DATAGRAM:
            return data
        if not fields["name"]:
            raise ValueError("a discovery reply does not fit in 512 bytes")
        fields["name"] = fields["name"][:-1]


def _count(value) -> int | None:
    return value if type(value) is int and 0 <= value < 1 << 31 else None


def parse_reply(data: bytes) -> Reply | None:
    """A well-formed reply, or None. The fingerprint, when there is one, is
    in the canonical "3F2A 9B1C ..." form; names are cleaned as on the
    server (a scanner cannot trust that the server did it)."""
    obj = _loads(data, 0)
    if obj is None or obj.get("t") != "room":
        return None
    try:
        nonce = check_nonce(obj.get("nonce"))
    except ValueError:
        return None
    rid, name, port, fp = obj.get("id"), obj.get("name"), obj.get("port"), obj.get("fp")
    users, rooms = _count(obj.get("users")), _count(obj.get("rooms"))
    if type(rid) is not str or not 0 < len(rid) <= MAX_ID or not rid.isprintable():
        return None
    if type(name) is not str or type(port) is not int or not 0 < port < 65536:
        return None
    if type(obj.get("tls")) is not bool or type(obj.get("password")) is not bool:
        return None
    if users is None or rooms is None:
        return None
    if fp is not None and (type(fp) is not str or not _FINGERPRINT.fullmatch(fp)):
        return None
    return Reply(nonce, RoomInfo(id=rid, name=clean_name(name), port=port, tls=obj["tls"], fp=fp,
                                 users=users, password=obj["password"], rooms=rooms))


# -- relays between the responders of one computer ------------------------------

def encode_forward(fwd: Forward) -> bytes:
    return _pad(_dumps({"t": "fwd", **asdict(fwd)}))


def _ipv4(value) -> str:
    if type(value) is not str:
        raise ValueError("not an address")
    return str(ipaddress.IPv4Address(value))


def parse_forward(data: bytes) -> Forward | None:
    obj = _loads(data, MIN_QUERY)
    if obj is None or obj.get("t") != "fwd":
        return None
    try:
        nonce = check_nonce(obj.get("nonce"))
        to, dst = (_ipv4(obj.get(k)) for k in ("to", "dst"))
    except ValueError:
        return None
    tport, by = obj.get("tport"), obj.get("by")
    if type(tport) is not int or not 0 < tport < 65536:
        return None
    if type(by) is not str or not 0 < len(by) <= MAX_ID:
        return None
    return Forward(nonce, to, tport, dst, by)
