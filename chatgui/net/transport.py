"""How the network client's bytes travel: plain TCP or TLS, behind one small interface.

A transport has ``recv()`` (b"" at the end of the stream; may raise
``BlockingIOError`` when nothing whole arrived yet), ``sendall(data)``,
``shutdown(how)``, ``close()``, ``fileno()`` and ``fingerprint`` (None for
plain TCP). :class:`chatgui.net.client.ChatClient` makes one per connection:
``net-reader`` calls ``recv`` after selecting on ``fileno``, ``net-writer``
calls ``sendall``; ``shutdown`` may come from any thread to wake them.

TLS here only encrypts and reports the certificate's fingerprint; whether
to trust it is :mod:`chatgui.net.client`'s decision, with :mod:`chatgui.net.pins`.
"""
from __future__ import annotations

import errno
import selectors
import socket
import ssl
import threading
import time

from server.tls import fingerprint as cert_fingerprint

RECV_SIZE = 256 * 1024
SLICE = 0.25                 # a connect or handshake in progress looks at the close flag this often


class HandshakeStopped(Exception):
    """The client was closed during the TLS handshake."""


class PlainTransport:
    """A connected TCP socket as a byte pipe (blocking; the reader selects first)."""

    fingerprint = None

    def __init__(self, sock: socket.socket):
        self.sock = sock

    def fileno(self) -> int:
        return self.sock.fileno()

    def recv(self) -> bytes:
        return self.sock.recv(RECV_SIZE)

    def sendall(self, data: bytes) -> None:
        self.sock.sendall(data)

    def shutdown(self, how: int) -> None:
        self.sock.shutdown(how)

    def close(self) -> None:
        self.sock.close()


class TlsTransport:
    """A TCP socket carrying TLS, with the TLS state in memory.

    An ``ssl.SSLObject`` over two ``ssl.MemoryBIO``: the socket stays an
    ordinary blocking socket that the reader selects on. ``_lock`` guards
    the SSLObject and its BIOs and is held only for in-memory work, never
    during socket I/O, so ``net-reader`` (:meth:`recv`) and ``net-writer``
    (:meth:`sendall`) share the transport safely. Only the writer sends
    after the handshake: bytes the TLS engine makes while reading (a key
    update) wait in the outgoing BIO and leave, in order, with the next
    write, at the latest the next ping.

    :meth:`handshake` runs on ``net-reader`` before the transport is
    handed to the writer; it sets :attr:`fingerprint`.
    """

    def __init__(self, sock: socket.socket, context: ssl.SSLContext):
        self.sock = sock
        self._lock = threading.Lock()
        self._in = ssl.MemoryBIO()
        self._out = ssl.MemoryBIO()
        self._obj = context.wrap_bio(self._in, self._out, server_side=False)
        self._eof = False
        self.fingerprint: str | None = None
        self.first_use = False          # set by ChatClient: nothing was pinned for this server
        self.first_bytes = b""          # the first bytes the server sent, still unencrypted

    def handshake(self, deadline: float, stopping) -> None:
        """net-reader: run the TLS handshake by ``deadline`` (monotonic).

        ``stopping()`` is polled every SLICE. Raises :class:`HandshakeStopped`,
        ``TimeoutError``, ``ssl.SSLError`` or another ``OSError`` (an end of
        stream is ``ssl.SSLEOFError``).
        """
        sock = self.sock
        with selectors.DefaultSelector() as sel:
            sel.register(sock, selectors.EVENT_READ)
            while True:
                with self._lock:
                    try:
                        self._obj.do_handshake()
                        done = True
                    except ssl.SSLWantReadError:
                        done = False
                    out = self._out.read()
                if out:
                    sock.sendall(out)
                if done:
                    break
                while not sel.select(SLICE):
                    if stopping():
                        raise HandshakeStopped()
                    if time.monotonic() >= deadline:
                        raise TimeoutError(errno.ETIMEDOUT, "TLS handshake timed out")
                data = sock.recv(RECV_SIZE)
                if not data:
                    raise ssl.SSLEOFError(ssl.SSL_ERROR_EOF, "the server hung up during the TLS handshake")
                if not self.first_bytes:
                    self.first_bytes = data[:64]
                with self._lock:
                    self._in.write(data)
        with self._lock:
            der = self._obj.getpeercert(binary_form=True)
        if not der:
            raise ssl.SSLError("the server showed no certificate")
        self.fingerprint = cert_fingerprint(der)

    def fileno(self) -> int:
        return self.sock.fileno()

    def recv(self) -> bytes:
        """net-reader: the plaintext of what arrived; b"" at the end of the
        stream; BlockingIOError when no whole record came yet. A broken
        stream raises ssl.SSLError (an OSError)."""
        if self._eof:
            return b""
        data = self.sock.recv(RECV_SIZE)
        if not data:
            return b""          # a hang-up without close_notify: the bye already ended the talk
        chunks = []
        with self._lock:
            self._in.write(data)
            while True:
                try:
                    chunk = self._obj.read(RECV_SIZE)
                except ssl.SSLWantReadError:
                    break
                except ssl.SSLZeroReturnError:      # close_notify
                    self._eof = True
                    break
                if not chunk:
                    break
                chunks.append(chunk)
        if chunks:
            return b"".join(chunks)
        if self._eof:
            return b""
        raise BlockingIOError(errno.EAGAIN, "no whole TLS record yet")

    def sendall(self, data: bytes) -> None:
        """net-writer: encrypt and send (with any TLS bytes waiting, first)."""
        with self._lock:
            view = memoryview(data)
            while view:
                view = view[self._obj.write(view):]
            out = self._out.read()
        if out:
            self.sock.sendall(out)

    def shutdown(self, how: int) -> None:
        self.sock.shutdown(how)

    def close(self) -> None:
        self.sock.close()


_context_lock = threading.Lock()
_context: ssl.SSLContext | None = None


def client_context() -> ssl.SSLContext:
    """The TLS settings of every client: TLS 1.2 or newer, and no check
    against certificate authorities (Natter certificates are self-signed):
    the fingerprint pinned on first use is the check instead."""
    global _context
    with _context_lock:
        if _context is None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
            ctx.minimum_version = ssl.TLSVersion.TLSv1_2
            ctx.check_hostname = False
            ctx.verify_mode = ssl.CERT_NONE
            _context = ctx
        return _context
