"""Framed connections between monitor, engine and central (DESIGN.md §6), on the daemon's loop.

A :class:`Link` sends one frame at a time and waits for its ACK, retransmitting on NACK or
timeout a bounded number of times; it ACKs each good frame it receives and NACKs bad ones,
hanging up on a peer that keeps sending garbage. Received messages are handled by a task of
their own, so a handler may itself send (and wait for an ACK) without blocking the reader.
:class:`Connector` keeps a client connection up with capped exponential backoff.
"""

import asyncio
import contextlib
import inspect
import logging
import socket

from . import framing
from .bus import Backoff

log = logging.getLogger(__name__)

ACK_TIMEOUT = 1.0
RETRIES = 3
MAX_BAD_FRAMES = 10  # consecutive bad frames before hanging up
MAX_GARBAGE = 4096  # bytes outside frames since the last good frame before hanging up
CONNECT_TIMEOUT = 3.0


class LinkError(Exception):
    """The link is closed or the peer did not acknowledge."""


class Link:
    def __init__(self, reader, writer, handler, *, ack_timeout=ACK_TIMEOUT, retries=RETRIES, name="peer"):
        """``handler(link, opcode, fields)`` is called in order for every message received."""
        self.reader = reader
        self.writer = writer
        self.handler = handler
        self.ack_timeout = ack_timeout
        self.retries = retries
        self.name = name
        peer = writer.get_extra_info("peername")
        self.peer = f"{peer[0]}:{peer[1]}" if isinstance(peer, tuple) else str(peer)
        self.closed = asyncio.Event()
        self._decoder = framing.Decoder()
        self._send_lock = asyncio.Lock()
        self._answer = None  # the future of the frame we are waiting to hear ACK/NACK for
        self._replies = {}  # opcode -> future of a request() waiting for that reply
        self._inbox = asyncio.Queue()
        self._bad_frames = 0
        self._garbage_mark = 0
        _keepalive(writer)

    async def run(self):
        """Read until the peer hangs up or misbehaves; then the link is closed."""
        worker = asyncio.ensure_future(self._handle_inbox())
        try:
            while not self.closed.is_set():
                chunk = await self.reader.read(65536)
                if not chunk:
                    break
                for event in self._decoder.feed(chunk):
                    self._on_event(event)
                if self._decoder.garbage - self._garbage_mark > MAX_GARBAGE:
                    log.warning("%s %s: too much garbage; hanging up", self.name, self.peer)
                    break
                if self._bad_frames > MAX_BAD_FRAMES:
                    log.warning("%s %s: too many bad frames; hanging up", self.name, self.peer)
                    break
        except (ConnectionError, OSError):
            pass
        finally:
            self.close()
            worker.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await worker

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
            else:
                self._inbox.put_nowait((opcode, fields))
        elif isinstance(event, framing.BadFrame):
            self._reject(event.reason)
        elif self._answer is not None and not self._answer.done():
            self._answer.set_result(isinstance(event, framing.Ack))

    def _reject(self, reason):
        self._bad_frames += 1
        log.info("%s %s: NACK (%s)", self.name, self.peer, reason)
        self._write(framing.NACK_BYTES)

    async def _handle_inbox(self):
        while True:
            opcode, fields = await self._inbox.get()
            try:
                result = self.handler(self, opcode, fields)
                if inspect.isawaitable(result):
                    await result
            except LinkError:
                pass
            except Exception:
                log.exception("%s %s: handling %s failed", self.name, self.peer, opcode)

    async def send(self, opcode, *fields):
        """Send one message and wait for its ACK; raises LinkError (and hangs up) if none comes."""
        frame = framing.encode_frame(framing.pack(opcode, *fields))
        async with self._send_lock:
            for _attempt in range(self.retries + 1):
                if self.closed.is_set():
                    raise LinkError(f"link to {self.peer} is closed")
                self._answer = asyncio.get_running_loop().create_future()
                self._write(frame)
                try:
                    if await asyncio.wait_for(self._answer, self.ack_timeout):
                        return
                except TimeoutError:
                    pass
            log.warning("%s %s: no ACK for %s after %d attempts; hanging up", self.name, self.peer, opcode, self.retries + 1)
            self.close()
            raise LinkError(f"{self.peer} did not acknowledge {opcode}")

    async def request(self, opcode, *fields, reply, timeout):
        """Send a message and return the fields of the peer's next ``reply`` message."""
        waiting = asyncio.get_running_loop().create_future()
        self._replies[reply] = waiting
        try:
            await self.send(opcode, *fields)
            return await asyncio.wait_for(waiting, timeout)
        except TimeoutError:
            raise LinkError(f"no {reply} from {self.peer} within {timeout:g}s") from None
        finally:
            if self._replies.get(reply) is waiting:
                del self._replies[reply]

    def _write(self, data):
        if not self.closed.is_set():
            try:
                self.writer.write(data)
            except (ConnectionError, OSError, RuntimeError):
                self.close()

    def close(self):
        if self.closed.is_set():
            return
        self.closed.set()
        with contextlib.suppress(Exception):
            self.writer.close()
        if self._answer is not None and not self._answer.done():
            self._answer.set_result(False)


def _keepalive(writer):
    sock = writer.get_extra_info("socket")
    if sock is not None and sock.family in (socket.AF_INET, socket.AF_INET6):
        with contextlib.suppress(OSError):
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE, 1)
            sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)


async def serve(host, port, handler, on_link, *, name="peer", **link_options):
    """Accept framed connections; ``await on_link(link)`` runs while each is open."""

    async def accepted(reader, writer):
        link = Link(reader, writer, handler, name=name, **link_options)
        reading = asyncio.ensure_future(link.run())
        try:
            await on_link(link)
        except (LinkError, asyncio.CancelledError):
            pass
        except Exception:
            log.exception("%s %s: connection handler failed", name, link.peer)
        finally:
            await _finish(link, reading)

    return await asyncio.start_server(accepted, host, port, reuse_address=True)


async def _finish(link, reading):
    # Close and wait for the reader even when we are being cancelled, so no socket is left open.
    link.close()
    reading.cancel()
    await asyncio.gather(reading, return_exceptions=True)
    with contextlib.suppress(Exception):
        await link.writer.wait_closed()


class Connector:
    """Keeps one outgoing framed connection up; ``await on_link(link)`` runs while it is open."""

    def __init__(self, host, port, handler, on_link, *, name="peer", backoff=None, **link_options):
        self.host, self.port = host, port
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
                reader, writer = await asyncio.wait_for(asyncio.open_connection(self.host, self.port), CONNECT_TIMEOUT)
            except (TimeoutError, OSError) as e:
                self._failures += 1
                if self._failures == 1 or self._failures % 30 == 0:
                    log.warning("cannot connect to %s at %s:%s (%s); retrying", self.name, self.host, self.port, e or "timeout")
                await asyncio.sleep(self._backoff.next())
                continue
            self._failures = 0
            self._backoff.reset()
            link = self.link = Link(reader, writer, self.handler, name=self.name, **self.link_options)
            log.info("connected to %s at %s", self.name, link.peer)
            reading = asyncio.ensure_future(link.run())
            try:
                await self.on_link(link)
            except LinkError:
                pass
            except Exception:
                log.exception("%s link handler failed", self.name)
            finally:
                self.link = None
                await _finish(link, reading)
            log.warning("connection to %s at %s:%s lost", self.name, self.host, self.port)
            await asyncio.sleep(self._backoff.next())
