"""TLS for central's CP link and its API: the files a server presents, and contexts for both ends."""

import asyncio
import asyncio.sslproto
import logging
import pathlib
import socket
import ssl

import attrs

from .errors import EvdError

log = logging.getLogger(__name__)

TLS_RECORD_HANDSHAKE = b"\x16"  # the first byte of every TLS ClientHello
HANDSHAKE_TIMEOUT = 10.0  # seconds for a client to start and finish its handshake
TLS_READ_BUFFER = 16 * 1024  # bytes: the largest TLS record


@attrs.frozen
class TlsFiles:
    cert: pathlib.Path | None = None  # PEM certificate (chain) central presents
    key: pathlib.Path | None = None  # its private key (PEM); null: in the cert file


@attrs.frozen
class LinkTls(TlsFiles):
    #: Refuse (and audit) monitors that connect in clear; false: accept both on one port.
    required: bool = False

    def __attrs_post_init__(self):
        if self.required and self.cert is None:
            raise ValueError("required: true needs a cert (and key) to present")


def server_context(files, what):
    """The context a server presents ``files`` with; an unreadable file is a clear EvdError."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    try:
        context.load_cert_chain(str(files.cert), str(files.key) if files.key else None)
    except ssl.SSLError as e:  # before OSError: it is one
        raise EvdError(
            f"{what}: {files.cert} and {files.key or 'its key'} are not a PEM certificate and its key ({e.reason or e})"
        ) from None
    except OSError as e:
        raise EvdError(f"{what}: cannot read {e.filename or files.cert}: {e.strerror or e}") from None
    return context


def client_context(cafile, what):
    """A context that trusts only ``cafile`` (the site's CA) and checks the server's name."""
    try:
        return ssl.create_default_context(cafile=str(cafile))
    except ssl.SSLError as e:  # before OSError: it is one
        raise EvdError(f"{what}: {cafile} is not a PEM CA certificate ({e.reason or e})") from None
    except OSError as e:
        raise EvdError(f"{what}: cannot read {cafile}: {e.strerror or e}") from None


def describe(error):
    """A failed handshake in words, for a log line or an audit record."""
    if isinstance(error, ssl.SSLCertVerificationError):
        return f"certificate not trusted: {error.verify_message}"
    if isinstance(error, ssl.SSLError):
        return f"TLS handshake failed: {error.reason or error}"
    return str(error) or type(error).__name__


def _smaller_read_buffers():
    """asyncio's TLS transport reads into a 256 KiB buffer of its own per connection (Python 3.11):
    256 MB for 1,000 monitors whose frames are a few bytes (bench/RESULTS.md). 16 KiB holds the
    largest TLS record; a bigger read is only split in more calls."""
    protocol = getattr(asyncio.sslproto, "SSLProtocol", None)
    if protocol is not None and getattr(protocol, "max_size", 0) > TLS_READ_BUFFER:
        protocol.max_size = TLS_READ_BUFFER


class TlsListener:
    """Accepts framed connections on one port, inside TLS or (unless ``required``) in clear.

    A TLS client speaks first with a handshake record (first byte 0x16); a monitor in clear
    starts with STX. The first byte is peeked, not read, so either protocol gets it intact.
    Like asyncio's Server, it has ``sockets`` and ``close()``.
    """

    def __init__(self, listener, protocol_factory, context, *, required, on_refused=None, name="peer"):
        _smaller_read_buffers()
        listener.setblocking(False)
        self.sockets = [listener]
        self._factory, self._context, self._required = protocol_factory, context, required
        self._on_refused = on_refused or (lambda peer, reason: None)
        self._name = name
        self._opening = set()  # tasks of connections not yet handed to their protocol
        self._accepting = asyncio.ensure_future(self._accept(listener))

    def close(self):
        self._accepting.cancel()
        for task in list(self._opening):
            task.cancel()
        self.sockets[0].close()

    async def _accept(self, listener):
        loop = asyncio.get_running_loop()
        while True:
            try:
                conn, address = await loop.sock_accept(listener)
            except OSError as e:  # out of file descriptors, say: try again shortly, never stop listening
                log.warning("%s listener: accept failed (%s)", self._name, e)
                await asyncio.sleep(0.1)
                continue
            task = asyncio.ensure_future(self._open(conn, f"{address[0]}:{address[1]}"))
            self._opening.add(task)
            task.add_done_callback(self._opening.discard)

    async def _open(self, conn, peer):
        loop = asyncio.get_running_loop()
        try:
            async with asyncio.timeout(HANDSHAKE_TIMEOUT):
                first = await _peek(loop, conn)
            if not first:
                conn.close()  # connected and hung up: nothing to say about it
            elif first == TLS_RECORD_HANDSHAKE:
                await loop.connect_accepted_socket(self._factory, conn, ssl=self._context, ssl_handshake_timeout=HANDSHAKE_TIMEOUT)
            elif self._required:
                self._refuse(conn, peer, "plain connection on a TLS-only link")
            else:
                await loop.connect_accepted_socket(self._factory, conn)
        except TimeoutError:
            self._refuse(conn, peer, f"nothing sent within {HANDSHAKE_TIMEOUT:g} s")
        except OSError as e:
            self._refuse(conn, peer, describe(e))

    def _refuse(self, conn, peer, reason):
        conn.close()
        log.warning("%s %s: connection refused: %s", self._name, peer, reason)
        try:
            self._on_refused(peer, reason)
        except Exception:
            log.exception("%s %s: reporting a refused connection failed", self._name, peer)


async def _peek(loop, conn):
    """The first byte ``conn`` has to read, left in the socket; b"" when the peer hung up."""
    readable = loop.create_future()
    loop.add_reader(conn.fileno(), lambda: readable.done() or readable.set_result(None))
    try:
        await readable
    finally:
        loop.remove_reader(conn.fileno())
    try:
        return conn.recv(1, socket.MSG_PEEK)
    except ConnectionError:
        return b""
