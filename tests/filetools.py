"""Helpers for the file tests: an offer on a chat connection, and the raw
transfer connections (put, get) a client opens beside it. Real sockets,
every wait with a timeout."""
from __future__ import annotations

import hashlib
import json
import socket
import ssl
import struct

from server import protocol as p
from tests.netclient import LineClient


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def offer(client: LineClient, data: bytes | None = None, name: str = "data.bin", *, size: int | None = None,
          digest: str | None = None, ref: str = "up1", **kw) -> dict:
    """Send an upload offer; return the answer carrying its ref (upload_ready or an error)."""
    client.send(p.upload_frame(name, len(data) if size is None else size, digest or sha(data), ref=ref, **kw))
    while True:
        f = client.recv()
        if f.get("ref") == ref:
            return f


def dial(port: int, tls: bool = False, timeout: float = 10.0) -> socket.socket:
    raw = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    if not tls:
        return raw
    ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    ctx.check_hostname = False
    ctx.verify_mode = ssl.CERT_NONE
    # A ragged end (no close_notify) raises: the server must end its streams properly.
    return ctx.wrap_socket(raw, server_hostname="natter", suppress_ragged_eofs=False)


def read_line(sock: socket.socket, limit: int = 64 * 1024) -> tuple[dict, bytes]:
    """One JSON line from a transfer connection, and the bytes read after it."""
    buf = b""
    while b"\n" not in buf:
        data = sock.recv(4096)
        if not data:
            raise EOFError(f"the server closed the transfer connection (got {buf[:200]!r})")
        buf += data
        assert len(buf) < limit, "no line from the server"
    line, rest = buf.split(b"\n", 1)
    return json.loads(line), rest


def put(port: int, ready: dict, data: bytes, offset: int | None = None, *, tls: bool = False,
        stop_after: int | None = None, shut: bool = False, extra: bytes = b"") -> dict | None:
    """Upload ``data[offset:]`` on a connection of its own; return the
    server's one line. ``stop_after``: cut the connection (RST) after that
    many bytes, return None. ``shut``: send, then shut the sending side.
    ``extra``: bytes sent after the file."""
    offset = ready["offset"] if offset is None else offset
    sock = dial(port, tls)
    try:
        sock.sendall(p.encode(p.put_frame(ready["file"], ready["token"], offset)))
        body = data[offset:]
        if stop_after is not None:
            sock.sendall(body[:stop_after])
            cut(sock)
            return None
        view = memoryview(body + extra)
        for i in range(0, len(view), 1 << 20):
            sock.sendall(view[i:i + (1 << 20)])
        if shut:
            assert not tls, "a TLS socket cannot half-close and still read"
            sock.shutdown(socket.SHUT_WR)
        return read_line(sock)[0]
    finally:
        sock.close()


def get(port: int, fid: str, session: str, offset: int = 0, *, tls: bool = False,
        stop_after: int | None = None) -> tuple[dict, bytes]:
    """Download from ``offset``: (the server's line, the bytes after it up to
    the close). ``stop_after``: cut the connection after that many bytes."""
    sock = dial(port, tls)
    try:
        sock.sendall(p.encode(p.get_frame(fid, session, offset)))
        frame, rest = read_line(sock)
        chunks = [rest]
        got = len(rest)
        while True:
            if stop_after is not None and got >= stop_after:
                cut(sock)
                return frame, b"".join(chunks)[:stop_after]
            data = sock.recv(1 << 20)
            if not data:
                return frame, b"".join(chunks)
            chunks.append(data)
            got += len(data)
    finally:
        sock.close()


def cut(sock: socket.socket) -> None:
    """Vanish mid-transfer: close with an RST."""
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    sock.close()


def announced(client: LineClient, fid: str, kind: str = "message", timeout: float = 10.0) -> dict:
    """Skip frames until the message (or dm) announcing this file."""
    while True:
        f = client.recv(timeout)
        if f["type"] == kind and (f.get("file") or {}).get("id") == fid:
            return f
