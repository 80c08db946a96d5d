"""The monitors of ``bench scale``, in a process of their own so that their beat never waits for the stream side.

    python -m bench.monitors --central HOST:PORT --cps N [--first I] --control SOCKET [--connect-timeout S] [--cafile CA]

Each of the N charging points (from index I on) gets a real TCP connection to central speaking the framed
protocol (DESIGN.md §6): ``REG#id#location#price#city#`` → ``REGR``, then ``HB#OK#`` every
second (one ticker sweeps 1/20 of them every 50 ms); every frame from central is ACKed at
once. With ``--cafile`` every connection runs inside TLS, verified against that CA. A connection central drops is made again as a real monitor would (0.2 s, then backing off).

The parent (``bench.scale``) listens on the UNIX socket ``--control``; this process sends it
JSON lines: every 50 ms a batch ``{"reg": [[i, key]], "state": [[i, state]], "lost": [i]}``,
once ``{"connected": {...}}`` after the first connection round, and ``{"status": {...}}`` every
second. It takes ``{"beats": false}`` (stop beating) and ``{"close": true}`` (hang up and exit).
"""

import argparse
import asyncio
import collections
import contextlib
import json
import socket
import ssl
import sys
import time

from evd import framing
from evd.config import HostPort

SLICES = 20
CONNECT_WORKERS = 64  # monitors connecting at once (central's listen backlog is 100)
PRICE = 0.5
HB_FRAME = framing.encode_frame(framing.pack("HB", "OK", ""))


def cp_id(index):
    return f"CP{index:05d}"


class SimMonitor:
    __slots__ = ("id", "index", "link", "registered")

    def __init__(self, index):
        self.index = index
        self.id = cp_id(index)
        self.link = None
        self.registered = False


class MonitorLink(asyncio.Protocol):
    """One CP's monitor connection to central: frames out, ACK for every good frame in."""

    def __init__(self, monitor, fleet):
        self.monitor = monitor
        self.fleet = fleet
        self.transport = None
        self.decoder = framing.Decoder()
        self.registered = asyncio.get_running_loop().create_future()
        # Nobody may be waiting any more (a connect that timed out): never warn about its outcome.
        self.registered.add_done_callback(lambda f: f.cancelled() or f.exception())
        self.closed = False

    def connection_made(self, transport):
        self.transport = transport
        sock = transport.get_extra_info("socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        m = self.monitor
        transport.write(framing.encode_frame(framing.pack("REG", m.id, f"Bench bay {m.index}", f"{PRICE:g}", "Benchville", "")))

    def data_received(self, data):
        fleet = self.fleet
        for event in self.decoder.feed(data):
            if isinstance(event, framing.Frame):
                try:
                    opcode, fields = framing.unpack(event.data)
                except ValueError:
                    self.send(framing.NACK_BYTES)
                    continue
                self.send(framing.ACK_BYTES)
                fleet.on_frame(self, opcode, fields)
            elif isinstance(event, framing.BadFrame):
                fleet.stats["bad_frames_from_central"] += 1
                self.send(framing.NACK_BYTES)
            elif isinstance(event, framing.Nack):
                fleet.stats["nacks_from_central"] += 1

    def connection_lost(self, exc):
        self.closed = True
        if not self.registered.done():
            self.registered.set_exception(ConnectionError("connection closed before REGR"))
        self.fleet.on_lost(self)

    def send(self, data):
        if not self.closed:
            self.transport.write(data)

    def close(self):
        if self.transport is not None and not self.closed:
            self.transport.close()


class MonitorFleet:
    def __init__(self, first, count, central, writer):
        self.monitors = [SimMonitor(i) for i in range(first, first + count)]
        self.slices = [self.monitors[s::SLICES] for s in range(SLICES)]
        self.central = central
        self.tls = None  # a client SSLContext when central.tls is on
        self.writer = writer
        self.stats = collections.Counter()
        self.beats = True
        self.closing = False
        self.lost_links = collections.deque()
        self.ticker_late = 0
        self.ticker_max_late = 0.0
        self.out = {"reg": [], "state": [], "lost": []}

    # -- to the parent ---------------------------------------------------------------------

    def send(self, message):
        self.writer.write(json.dumps(message, separators=(",", ":")).encode() + b"\n")

    def flush(self):
        batch = {k: v for k, v in self.out.items() if v}
        if batch:
            self.send(batch)
            self.out = {"reg": [], "state": [], "lost": []}

    def status(self):
        return {
            "registered": sum(1 for m in self.monitors if m.registered),
            "ticker_late_slices": self.ticker_late,
            "ticker_max_late_ms": round(self.ticker_max_late * 1000, 1),
            **self.stats,
        }

    # -- central's frames ---------------------------------------------------------------------

    def on_frame(self, link, opcode, fields):
        m = link.monitor
        if opcode == "REGR":
            if fields[:1] == ["OK"]:
                m.link, m.registered = link, True
                link.send(HB_FRAME)
                self.out["reg"].append([m.index, fields[3] if len(fields) >= 4 and fields[3] else None])
                if not link.registered.done():
                    link.registered.set_result(True)
            else:
                self.stats["registrations_denied"] += 1
                if not link.registered.done():
                    link.registered.set_exception(ConnectionError(f"central refused {m.id}: {fields}"))
        elif opcode == "STATE" and fields:
            self.out["state"].append([m.index, fields[0]])
        else:
            self.stats[f"unexpected_{opcode}"] += 1

    def on_lost(self, link):
        m = link.monitor
        if m.link is link:
            m.link, m.registered = None, False
            if not self.closing:
                self.stats["monitor_disconnects"] += 1
                self.lost_links.append(m)
                self.out["lost"].append(m.index)

    # -- connections ------------------------------------------------------------------------------

    async def connect(self, m, attempts=3):
        host, port = self.central
        loop = asyncio.get_running_loop()
        for attempt in range(attempts):
            transport = None
            try:
                transport, link = await asyncio.wait_for(
                    loop.create_connection(
                        lambda: MonitorLink(m, self), host, port, ssl=self.tls, server_hostname=host if self.tls else None
                    ),
                    5,
                )
                await asyncio.wait_for(asyncio.shield(link.registered), 15)
                return True
            except (OSError, TimeoutError, ConnectionError) as e:
                self.stats["connect_errors"] += 1
                self.stats[f"connect_error_{type(e).__name__}"] += 1
                if transport is not None:
                    transport.close()
                if self.closing:
                    return False
                await asyncio.sleep(0.2 * (attempt + 1))
        return False

    async def connect_all(self, timeout):
        queue = collections.deque(self.monitors)
        deadline = time.monotonic() + timeout

        async def worker():
            while queue and time.monotonic() < deadline and not self.closing:
                await self.connect(queue.popleft())

        started = time.monotonic()
        await asyncio.gather(*(worker() for _ in range(CONNECT_WORKERS)))
        self.flush()
        self.send({"connected": {"registered": self.status()["registered"], "seconds": round(time.monotonic() - started, 2)}})

    async def reconnector(self):
        """Monitors that lost central come back like real ones (evd's Connector): each tries again
        after 0.2 s, doubling to 5 s while central is away, at most CONNECT_WORKERS at once."""
        gate = asyncio.Semaphore(CONNECT_WORKERS)
        pending = set()

        async def again(m):
            delay = 0.2
            try:
                while m.link is None and not self.closing:
                    await asyncio.sleep(delay)
                    async with gate:
                        if m.link is None and await self.connect(m, attempts=1):
                            return
                    delay = min(delay * 2, 5.0)
            finally:
                pending.discard(m)

        tasks = set()
        while True:
            await asyncio.sleep(0.05)
            while self.lost_links and not self.closing:
                m = self.lost_links.popleft()
                if m.link is None and m not in pending:
                    pending.add(m)
                    self.stats["reconnects"] += 1
                    task = asyncio.ensure_future(again(m))
                    tasks.add(task)
                    task.add_done_callback(tasks.discard)

    async def ticker(self):
        period = 1.0 / SLICES
        started = time.monotonic()
        n = 0
        while True:
            n += 1
            delay = started + n * period - time.monotonic()
            if delay > 0:
                await asyncio.sleep(delay)
            else:
                self.ticker_late += 1
                self.ticker_max_late = max(self.ticker_max_late, -delay)
                await asyncio.sleep(0)
            if self.beats:
                for m in self.slices[n % SLICES]:
                    if m.registered:
                        m.link.send(HB_FRAME)
            self.flush()
            if n % SLICES == 0:
                self.send({"status": self.status()})

    def close_links(self):
        self.closing = True
        for m in self.monitors:
            if m.link is not None:
                m.link.close()


async def amain(args):
    reader, writer = await asyncio.open_unix_connection(args.control)
    fleet = MonitorFleet(args.first, args.cps, (args.central.host, args.central.port), writer)
    fleet.tls = ssl.create_default_context(cafile=args.cafile) if args.cafile else None
    tasks = [asyncio.ensure_future(c) for c in (fleet.ticker(), fleet.reconnector(), fleet.connect_all(args.connect_timeout))]
    try:
        while True:
            line = await reader.readline()
            if not line:
                break  # the parent is gone
            command = json.loads(line)
            if "beats" in command:
                fleet.beats = bool(command["beats"])
            if command.get("close"):
                break
    finally:
        fleet.close_links()
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        with contextlib.suppress(Exception):
            fleet.send({"status": fleet.status(), "closed": True})
            await writer.drain()
            writer.close()


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.monitors", description=__doc__.split("\n")[0])
    parser.add_argument("--central", type=HostPort.parse, required=True)
    parser.add_argument("--cps", type=int, required=True, help="how many CPs to play")
    parser.add_argument("--first", type=int, default=1, help="index of the first of them (default 1: CP00001)")
    parser.add_argument("--control", required=True)
    parser.add_argument("--connect-timeout", type=float, default=120.0)
    parser.add_argument("--cafile", help="connect inside TLS, trusting this CA (central.tls on)")
    args = parser.parse_args(argv)
    if not args.central.host.startswith("127.") and args.central.host not in ("localhost", "::1"):
        parser.error("--central must be a loopback address")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(amain(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
