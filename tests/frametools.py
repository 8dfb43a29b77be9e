"""Frames through the wire and back, with no sockets: what the protocol
tests check a frame against (encode, split into lines, decode, parse)."""
from __future__ import annotations

from server import protocol as p


def client(frame: dict):
    """A client frame as the server reads it."""
    (line,) = p.LineDecoder().feed(p.encode(frame))
    return p.parse_client(p.decode_frame(line))


def server(frame: dict):
    """A server frame as the client reads it."""
    (line,) = p.LineDecoder(p.MAX_SERVER_LINE).feed(p.encode(frame))
    return p.parse_server(p.decode_frame(line))
