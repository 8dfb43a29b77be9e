"""LAN discovery: a scanner's UDP query, a room's reply.

:mod:`~server.discovery.codec` is the wire format (no I/O, shared with the
client's scanner), :mod:`~server.discovery.responder` decides what to
answer (no I/O), :mod:`~server.discovery.service` owns the UDP sockets and
the ``discovery`` thread. The format is in docs/protocol.md, section 11.
"""
from .codec import DEFAULT_PORT, RoomInfo
from .service import DiscoveryService

__all__ = ["DEFAULT_PORT", "DiscoveryService", "RoomInfo"]
