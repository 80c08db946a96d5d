"""Framed connections between monitor, engine and central (DESIGN.md §6), on the daemon's loop.

A :class:`Link` sends one frame at a time and waits for its ACK, retransmitting on NACK or
timeout a bounded number of times; it ACKs each good frame it receives and NACKs bad ones,
hanging up on a peer that keeps sending garbage. A link is an asyncio protocol: a central with
thousands of monitors holds no task and no queue per connection, and a heartbeat is handled
straight from the socket's read callback.
:class:`Connector` keeps a client connection up with capped exponential backoff.
"""

import asyncio
import collections
import contextlib
import fcntl
import inspect
import logging
import socket
import ssl
import struct
import termios

from . import framing
from .threads import Backoff
from .tls import TlsListener
from .tls import describe as describe_tls_failure

log = logging.getLogger(__name__)

ACK_TIMEOUT = 1.0
RETRIES = 3
MAX_BAD_FRAMES = 10  # consecutive bad frames before hanging up
MAX_GARBAGE = 4096  # bytes outside frames since the last good frame before hanging up
CONNECT_TIMEOUT = 3.0


class LinkError(Exception):
    """The link is closed or the peer did not acknowledge."""


class ClosingCallbacks:
    """``when_closed`` and the calling of its callbacks, once: a Link, and central's view of a
    link held by a link worker (evd.central.link_workers.RemoteLink). Needs ``closed`` (an
    asyncio.Event), ``_close_callbacks`` (a list), ``name`` and ``peer``."""

    def when_closed(self, callback):
        """Call ``callback(link)`` once the link closes (at once if it already has)."""
        if self.closed.is_set():
            callback(self)
        else:
            self._close_callbacks.append(callback)

    def _call_close_callbacks(self):
        callbacks, self._close_callbacks = self._close_callbacks, []
        for callback in callbacks:
            try:
                callback(self)
            except Exception:
                log.exception("%s %s: close callback failed", self.name, self.peer)


class Link(ClosingCallbacks, asyncio.Protocol):
    """One framed connection, as an asyncio protocol: no reader task and no queue per connection.

    Messages are handed to ``handler(link, opcode, fields)`` in order, straight from
    ``data_received``. A handler that returns an awaitable (it may send and wait for an ACK) is
    awaited in a task, and the messages that arrive meanwhile wait their turn behind it.
    """

    def __init__(self, handler, *, ack_timeout=ACK_TIMEOUT, retries=RETRIES, name="peer"):
        self.handler = handler
        self.ack_timeout = ack_timeout
        self.retries = retries
        self.name = name
        self.peer = "?"
        self.transport = None
        self.closed = asyncio.Event()
        self._decoder = framing.Decoder()
        self._send_lock = None  # made on the first send: most links on central only receive
        self._answer = None  # the future of the frame we are waiting to hear ACK/NACK for
        self._replies = {}  # opcode -> future of a request() waiting for that reply
        self._waiting = None  # messages held back while an async handler runs
        self._handling = None  # the task awaiting that handler
        self._bad_frames = 0
        self._garbage_mark = 0
        self._close_callbacks = []
        self.on_open = None  # called with the link once connected (serve() uses it)

    # -- asyncio.Protocol ---------------------------------------------------------------------

    def connection_made(self, transport):
        self.transport = transport
        peer = transport.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        _keepalive(transport.get_extra_info("socket"))
        if self.on_open is not None:
            self.on_open(self)

    def data_received(self, data):
        for event in self._decoder.feed(data):
            if self.closed.is_set():
                return
            self._on_event(event)
        if self._decoder.garbage - self._garbage_mark > MAX_GARBAGE:
            log.warning("%s %s: too much garbage; hanging up", self.name, self.peer)
            self.close()
        elif self._bad_frames > MAX_BAD_FRAMES:
            log.warning("%s %s: too many bad frames; hanging up", self.name, self.peer)
            self.close()

    def eof_received(self):
        self.close()

    def connection_lost(self, exc):
        self.close()

    # -- receiving ------------------------------------------------------------------------------

    def _on_event(self, event):
        if isinstance(event, framing.Frame):
            try:
                opcode, fields = framing.unpack(event.data)
            except ValueError as e:
                self._reject(str(e))
                return
            self._bad_frames = 0
            self._garbage_mark = self._decoder.garbage
            self._write(framing.ACK_BYTES)
            waiting = self._replies.pop(opcode, None)
            if waiting is not None and not waiting.done():
                waiting.set_result(fields)
            elif self._handling is not None:
                self._waiting.append((opcode, fields))
            else:
                self._handle(opcode, fields)
        elif isinstance(event, framing.BadFrame):
            self._reject(event.reason)
        elif self._answer is not None and not self._answer.done():
            self._answer.set_result(isinstance(event, framing.Ack))

    def _reject(self, reason):
        self._bad_frames += 1
        log.info("%s %s: NACK (%s)", self.name, self.peer, reason)
        self._write(framing.NACK_BYTES)

    def _handle(self, opcode, fields):
        result = self._call(opcode, fields)
        if result is not None:
            self._waiting = collections.deque()
            self._handling = asyncio.ensure_future(self._finish_handling(opcode, result))

    def _call(self, opcode, fields):
        """Run the handler; return what is left to await, if anything."""
        try:
            result = self.handler(self, opcode, fields)
        except LinkError:
            return None
        except Exception:
            log.exception("%s %s: handling %s failed", self.name, self.peer, opcode)
            return None
        return result if inspect.isawaitable(result) else None

    async def _finish_handling(self, opcode, pending):
        try:
            while True:
                try:
                    await pending
                except LinkError:
                    pass
                except Exception:
                    log.exception("%s %s: handling %s failed", self.name, self.peer, opcode)
                pending = None
                while pending is None and self._waiting:
                    opcode, fields = self._waiting.popleft()
                    pending = self._call(opcode, fields)
                if pending is None:
                    return
        finally:
            self._handling = self._waiting = None

    # -- sending --------------------------------------------------------------------------------

    async def send(self, opcode, *fields, timeout=None):
        """Send one message and wait for its ACK; raises LinkError (and hangs up) if none comes.

        With ``timeout``, give up after that many seconds in all (retransmissions included)
        and raise LinkError, leaving the link open.
        """
        frame = framing.encode_frame(framing.pack(opcode, *fields))
        loop = asyncio.get_running_loop()
        deadline = None if timeout is None else loop.time() + timeout
        if self._send_lock is None:
            self._send_lock = asyncio.Lock()
        async with self._send_lock:
            for _attempt in range(self.retries + 1):
                if self.closed.is_set():
                    raise LinkError(f"link to {self.peer} is closed")
                wait = self.ack_timeout if deadline is None else min(self.ack_timeout, deadline - loop.time())
                if wait <= 0:
                    raise LinkError(f"{self.peer} did not acknowledge {opcode} within {timeout:g}s")
                self._answer = loop.create_future()
                self._write(frame)
                if await _within(self._answer, wait, False):
                    return
            log.warning("%s %s: no ACK for %s after %d attempts; hanging up", self.name, self.peer, opcode, self.retries + 1)
            self.close()
            raise LinkError(f"{self.peer} did not acknowledge {opcode}")

    async def request(self, opcode, *fields, reply, timeout):
        """Send a message and return the fields of the peer's next ``reply`` message, all within ``timeout``."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        waiting = loop.create_future()
        self._replies[reply] = waiting
        try:
            await self.send(opcode, *fields, timeout=timeout)
            answer = await _within(waiting, max(0.0, deadline - loop.time()), None)
            if answer is None:
                raise LinkError(f"no {reply} from {self.peer} within {timeout:g}s")
            return answer
        finally:
            if self._replies.get(reply) is waiting:
                del self._replies[reply]

    def _write(self, data):
        if not self.closed.is_set() and self.transport is not None:
            try:
                self.transport.write(data)
            except (ConnectionError, OSError, RuntimeError):
                self.close()

    # -- closing --------------------------------------------------------------------------------

    def unread(self):
        """Bytes the peer has sent that we have not read yet (the kernel's count)."""
        sock = self.transport.get_extra_info("socket") if self.transport is not None else None
        if sock is None or self.closed.is_set():
            return 0
        try:
            return struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0"))[0]
        except OSError:
            return 0

    async def wait_closed(self, timeout):
        """Wait at most ``timeout`` seconds for the link to close; True if it has."""
        if self.closed.is_set():
            return True
        closed = asyncio.get_running_loop().create_future()

        def settle(link):
            _settle(closed, True)

        self._close_callbacks.append(settle)
        try:
            return await _within(closed, timeout, False)
        finally:
            with contextlib.suppress(ValueError):
                self._close_callbacks.remove(settle)

    def close(self):
        if self.closed.is_set():
            return
        self.closed.set()
        if self.transport is not None:
            self.transport.close()
        if self._answer is not None and not self._answer.done():
            self._answer.set_result(False)
        if self._handling is not None:
            self._handling.cancel()
        self._call_close_callbacks()


async def _within(future, timeout, default):
    """Await our own ``future`` for at most ``timeout`` seconds, else give ``default``.

    Not asyncio.wait_for: in Python 3.11 it swallows a cancellation that arrives just as the
    future completes, and it costs a task per call.
    """
    timer = asyncio.get_running_loop().call_later(timeout, _settle, future, default)
    try:
        return await future
    finally:
        timer.cancel()


def _settle(future, value):
    if not future.done():
        future.set_result(value)


def _keepalive(sock):
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


async def open_link(host, port, handler, *, tls=None, **link_options):
    """Connect to a framed server (inside TLS with the client context ``tls``); the link is open when this returns."""
    loop = asyncio.get_running_loop()
    _transport, link = await loop.create_connection(
        lambda: Link(handler, **link_options), host, port, ssl=tls, server_hostname=host if tls else None
    )
    return link


async def serve(host, port, handler, on_link, *, name="peer", sock=None, tls=None, tls_required=False, on_refused=None, **link_options):
    """Accept framed connections and call ``on_link(link)`` for each.

    If ``on_link`` returns an awaitable, the connection is closed when it finishes; otherwise
    the link stays open until either side closes it (``link.when_closed`` tells when).
    With a server context ``tls``, clients may speak TLS (or must, with ``tls_required``) on the
    same port; ``on_refused(peer, reason)`` hears of each connection turned away. With ``sock``,
    accept on that listening socket instead of binding ``host``:``port``.
    """
    running = set()

    def accepted():
        link = Link(handler, name=name, **link_options)
        link.on_open = _start
        return link

    def _start(link):
        try:
            result = on_link(link)
        except Exception:
            log.exception("%s %s: connection handler failed", name, link.peer)
            link.close()
            return
        if inspect.isawaitable(result):
            task = asyncio.ensure_future(_while_open(link, result, name))
            running.add(task)  # held until done: the loop keeps only weak references to tasks
            task.add_done_callback(running.discard)

    if tls is None:
        if sock is not None:
            return await asyncio.get_running_loop().create_server(accepted, sock=sock)
        return await asyncio.get_running_loop().create_server(accepted, host, port, reuse_address=True)
    return TlsListener(sock or listening_socket(host, port), accepted, tls, required=tls_required, on_refused=on_refused, name=name)


def listening_socket(host, port):
    """A bound, listening TCP socket (IPv6 when ``host`` is an IPv6 address)."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    return socket.create_server((host, port), family=family, backlog=1024)


async def _while_open(link, pending, name):
    try:
        await pending
    except (LinkError, asyncio.CancelledError):
        pass
    except Exception:
        log.exception("%s %s: connection handler failed", name, link.peer)
    finally:
        link.close()


class Connector:
    """Keeps one outgoing framed connection up; ``await on_link(link)`` runs while it is open."""

    def __init__(self, host, port, handler, on_link, *, name="peer", backoff=None, tls=None, **link_options):
        self.host, self.port = host, port
        self.tls = tls  # a client SSLContext: the link runs inside TLS
        self.handler = handler
        self.on_link = on_link
        self.name = name
        self.link = None
        self.link_options = link_options
        self._backoff = backoff or Backoff(0.2, 5.0)
        self._failures = 0

    async def run(self):
        while True:
            try:
                async with asyncio.timeout(CONNECT_TIMEOUT):  # not wait_for: see _within
                    link = await open_link(self.host, self.port, self.handler, tls=self.tls, name=self.name, **self.link_options)
            except (TimeoutError, OSError) as e:
                self._failures += 1
                if self._failures == 1 or self._failures % 30 == 0:
                    reason = describe_tls_failure(e) if isinstance(e, ssl.SSLError) else e or "timeout"
                    log.warning("cannot connect to %s at %s:%s (%s); retrying", self.name, self.host, self.port, reason)
                await asyncio.sleep(self._backoff.next())
                continue
            self._failures = 0
            self._backoff.reset()
            self.link = link
            log.info("connected to %s at %s", self.name, link.peer)
            try:
                await self.on_link(link)
            except LinkError:
                pass
            except Exception:
                log.exception("%s link handler failed", self.name)
            finally:
                self.link = None
                link.close()
            log.warning("connection to %s at %s:%s lost", self.name, self.host, self.port)
            await asyncio.sleep(self._backoff.next())
