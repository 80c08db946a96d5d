"""A worker process of central's monitor links (``central.link_workers``): the framed protocol off central's loop.

Central starts it with the listening socket and one end of a socket pair; it accepts monitors on
that socket (inside TLS when central's link has it), ACKs their frames, keeps their heartbeats
and times them out itself, and tells central only what changes, as JSON lines on the pair:

    worker -> central  {"t": "open", "c": ID, "peer"}   a monitor connected
                       {"t": "frame", "c": ID, "o": OPCODE, "f": [...]}   REG, another opcode,
                                                        or HB when its health or detail changed
                       {"t": "silent", "c": ID}         a registered monitor stopped beating
                       {"t": "closed", "c": ID}         the connection is gone
                       {"t": "sent", "n": N, "ok": B}   the frame central asked for was ACKed, or not
                       {"t": "refused", "peer", "reason"}   turned away before it was a link (TLS)
    central -> worker  {"t": "send", "c": ID, "n": N, "o": OPCODE, "f": [...]}
                       {"t": "close", "c": ID}

It exits when central closes the pair (central stopped, or died).
"""

import argparse
import asyncio
import contextlib
import itertools
import json
import logging
import socket
import sys
import time

from . import logs
from .link import LinkError, serve
from .tls import LinkTls, server_context

log = logging.getLogger(__name__)

SWEEP_EVERY = 0.25  # seconds between looks for silent monitors


class Worker:
    def __init__(self, writer, heartbeat_timeout):
        self.writer = writer
        self.heartbeat_timeout = heartbeat_timeout
        self.links = {}  # connection id -> Link
        self.ids = itertools.count(1)
        self.sends = set()  # tasks sending central's frames (held: the loop keeps only weak references)

    def tell(self, **message):
        write_line(self.writer, message)

    # -- monitors ---------------------------------------------------------------------------

    def connected(self, link):
        link.conn = next(self.ids)
        link.registered = False  # until central's REGR#OK went out on it
        link.beat_at = time.monotonic()
        link.health = None  # the health central last heard of
        link.silent = False
        self.links[link.conn] = link
        link.when_closed(self._closed)
        self.tell(t="open", c=link.conn, peer=link.peer)

    def _closed(self, link):
        if self.links.pop(link.conn, None) is not None:
            self.tell(t="closed", c=link.conn)

    def received(self, link, opcode, fields):
        if opcode == "HB":
            link.beat_at = time.monotonic()
            health = tuple((fields + ["", ""])[:2])
            if not link.registered or health == link.health:
                return  # the common case, thousands of times a second: central needs nothing
            link.health = health
        self.tell(t="frame", c=link.conn, o=opcode, f=fields)

    def sweep(self, now):
        for link in list(self.links.values()):
            if link.registered and not link.silent and now - link.beat_at > self.heartbeat_timeout and not link.unread():
                link.silent = True
                self.tell(t="silent", c=link.conn)

    # -- central's orders -------------------------------------------------------------------

    def order(self, message):
        link = self.links.get(message.get("c"))
        if message["t"] == "close":
            if link is not None:
                link.close()
        elif message["t"] == "send":
            if link is None:
                self.tell(t="sent", n=message["n"], ok=False)
            else:
                task = asyncio.ensure_future(self._send(link, message))
                self.sends.add(task)
                task.add_done_callback(self.sends.discard)

    async def _send(self, link, message):
        opcode, fields = message["o"], message["f"]
        try:
            await link.send(opcode, *fields)
        except LinkError:
            self.tell(t="sent", n=message["n"], ok=False)
            return
        if opcode == "REGR" and fields[:1] == ["OK"]:
            link.registered, link.health, link.silent = True, None, False
            link.beat_at = time.monotonic()
        self.tell(t="sent", n=message["n"], ok=True)


def write_line(writer, message):
    """One message of the channel between central and a worker: a JSON line (nothing once it is closing)."""
    if not writer.is_closing():
        writer.write(json.dumps(message, separators=(",", ":")).encode() + b"\n")


async def run(args):
    loop = asyncio.get_running_loop()
    channel = socket.socket(fileno=args.channel_fd)
    reader, writer = await asyncio.open_unix_connection(sock=channel, limit=2**20)
    worker = Worker(writer, args.heartbeat_timeout)
    listener = socket.socket(fileno=args.listen_fd)
    listener.setblocking(False)
    tls = None
    if args.tls_cert:
        tls = server_context(LinkTls(cert=args.tls_cert, key=args.tls_key, required=args.tls_required), "central.tls")

    def refused(peer, reason):
        worker.tell(t="refused", peer=peer, reason=reason)

    server = await serve(
        None, None, worker.received, worker.connected, name="monitor", sock=listener,
        tls=tls, tls_required=args.tls_required, on_refused=refused,
    )  # fmt: skip

    async def sweeper():
        while True:
            await asyncio.sleep(SWEEP_EVERY)
            worker.sweep(time.monotonic())

    sweeping = loop.create_task(sweeper())
    try:
        while line := await reader.readline():
            try:
                worker.order(json.loads(line))
            except (ValueError, KeyError, TypeError) as e:
                log.warning("a bad order from central (%s): %r", e, line[:200])
    finally:
        sweeping.cancel()
        server.close()
        for link in list(worker.links.values()):
            link.close()


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m evd.link_worker", description=__doc__.split("\n")[0])
    parser.add_argument("--listen-fd", type=int, required=True)
    parser.add_argument("--channel-fd", type=int, required=True)
    parser.add_argument("--name", default="central-links")
    parser.add_argument("--heartbeat-timeout", type=float, required=True)
    parser.add_argument("--log-level", default="info")
    parser.add_argument("--tls-cert")
    parser.add_argument("--tls-key")
    parser.add_argument("--tls-required", action="store_true")
    args = parser.parse_args(argv)
    logs.setup(args.log_level, name=args.name)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
