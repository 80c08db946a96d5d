"""Central's monitor links in worker processes (``central.link_workers: N``), so that framing, ACKs and
heartbeats never take central's loop (issue 16).

Central binds the port and hands the listening socket to N ``evd.link_worker`` processes, which
accept in turn; each talks to central over a socket pair (JSON lines, evd.link_worker). Central
sees each monitor connection as a :class:`RemoteLink`, which acts like an evd.link.Link for
MonitorLinks: registrations, health changes and disconnections come in, central's frames go out.
A worker that dies takes its connections with it (their CPs show DISCONNECTED; supplies go on)
and is started again; its monitors reconnect by themselves.
"""

import asyncio
import contextlib
import errno
import itertools
import json
import logging
import os
import signal
import socket
import subprocess
import sys

from evd.link import ClosingCallbacks, LinkError, listening_socket
from evd.link_worker import write_line
from evd.threads import Backoff

log = logging.getLogger(__name__)

BIND_ATTEMPTS = 30  # 3 s of retries while a dead central's workers let go of the port


class RemoteLink(ClosingCallbacks):
    """A monitor's connection held by a worker, as MonitorLinks uses a Link."""

    beats_elsewhere = True  # its worker times its heartbeats out (the "silent" message)
    name = "monitor"

    def __init__(self, worker, conn, peer):
        self.worker, self.conn, self.peer = worker, conn, peer
        self.closed = asyncio.Event()
        self._close_callbacks = []

    async def send(self, opcode, *fields, timeout=None):
        if self.closed.is_set():
            raise LinkError(f"link to {self.peer} is closed")
        if not await self.worker.send(self.conn, opcode, [str(f) for f in fields]):
            raise LinkError(f"{self.peer} did not acknowledge {opcode}")

    def unread(self):
        return 0  # the worker looks at its own socket before it calls a monitor silent

    def close(self):
        """Hang up (central's decision): the worker closes the connection."""
        if not self.closed.is_set():
            self.worker.order(t="close", c=self.conn)
            self.gone()

    def gone(self):
        """The connection is closed (by either side, or its worker died)."""
        if self.closed.is_set():
            return
        self.closed.set()
        self._call_close_callbacks()


class Worker:
    """One worker process and its channel, as central sees it."""

    def __init__(self, pool, number):
        self.pool, self.number = pool, number
        self.process = None
        self.writer = None
        self.links = {}  # connection id -> RemoteLink
        self.sending = {}  # n -> future of a send's outcome
        self.numbers = itertools.count(1)

    async def start(self):
        ours, theirs = socket.socketpair()
        listener = self.pool.listener.fileno()
        command = [sys.executable, "-m", "evd.link_worker", "--listen-fd", str(listener), "--channel-fd", str(theirs.fileno())]
        command += ["--name", f"{self.pool.name}-links{self.number}", *self.pool.worker_options]
        self.process = await asyncio.create_subprocess_exec(*command, pass_fds=(listener, theirs.fileno()), stdin=subprocess.DEVNULL)
        theirs.close()
        reader, self.writer = await asyncio.open_unix_connection(sock=ours, limit=2**20)
        return reader

    async def run(self, reader):
        try:
            while line := await reader.readline():
                try:
                    self.heard(json.loads(line))
                except (ValueError, KeyError, TypeError) as e:
                    log.warning("link worker %d: a bad message (%s): %r", self.number, e, line[:200])
        finally:
            self.writer.close()
            for future in self.sending.values():
                if not future.done():
                    future.set_result(False)
            for link in list(self.links.values()):
                link.gone()
            self.links.clear()

    def heard(self, message):
        kind, links = message["t"], self.pool.monitor_links
        if kind == "open":
            link = self.links[message["c"]] = RemoteLink(self, message["c"], message["peer"])
            links.connected(link)
        elif kind == "frame":
            link = self.links.get(message["c"])
            if link is not None:
                result = links.received(link, message["o"], message["f"])
                if asyncio.iscoroutine(result):
                    self.pool.central.daemon.spawn(result)
        elif kind == "silent":
            link = self.links.get(message["c"])
            if link is not None and getattr(link, "cp", None) is not None:
                links.silent(link.cp)
        elif kind == "closed":
            link = self.links.pop(message["c"], None)
            if link is not None:
                link.gone()
        elif kind == "sent":
            future = self.sending.pop(message["n"], None)
            if future is not None and not future.done():
                future.set_result(bool(message["ok"]))
        elif kind == "refused":
            links.refused(message["peer"], message["reason"])

    def order(self, **message):
        if self.writer is not None:
            write_line(self.writer, message)

    async def send(self, conn, opcode, fields):
        n = next(self.numbers)
        future = self.sending[n] = asyncio.get_running_loop().create_future()
        self.order(t="send", c=conn, n=n, o=opcode, f=fields)
        return await future


class LinkWorkers:
    """The listening socket and its N worker processes, kept running; like a Server, it has ``close()``."""

    def __init__(self, central, count):
        self.central, self.count = central, count
        self.monitor_links = central.links
        self.name = central.daemon.name
        cfg = central.config
        self.listener = None  # bound in start(); never accepted on here: the workers do
        self.worker_options = ["--heartbeat-timeout", str(float(cfg.heartbeat_timeout)), "--log-level", central.daemon.config.log.level]
        if cfg.tls.cert is not None:
            self.worker_options += ["--tls-cert", str(cfg.tls.cert), "--tls-key", str(cfg.tls.key or cfg.tls.cert)]
            if cfg.tls.required:
                self.worker_options.append("--tls-required")
        self.workers = [Worker(self, n) for n in range(1, count + 1)]
        self._tasks = []

    async def start(self):
        listen = self.central.config.listen
        for attempt in range(BIND_ATTEMPTS):
            try:
                self.listener = listening_socket(listen.host, listen.port)
                break
            except OSError as e:
                # The workers of a central killed a moment ago may hold the port for a few ms more.
                if e.errno != errno.EADDRINUSE or attempt == BIND_ATTEMPTS - 1:
                    raise
                await asyncio.sleep(0.1)
        for worker in self.workers:
            reader = await worker.start()
            self._tasks.append(asyncio.ensure_future(self._supervise(worker, reader)))

    async def _supervise(self, worker, reader):
        backoff = Backoff(0.2, 5.0)
        while True:
            await worker.run(reader)
            status = await worker.process.wait()
            self.central.message(f"monitor link worker {worker.number} exited ({status}); its monitors reconnect")
            log.warning("link worker %d (pid %d) exited with %s; starting it again", worker.number, worker.process.pid, status)
            self.central.daemon.audit("ERROR", self.name, "link worker exited", f"status {status}", worker=worker.number)
            await asyncio.sleep(backoff.next())
            reader = await worker.start()

    def close(self):
        for task in self._tasks:
            task.cancel()
        for worker in self.workers:
            if worker.writer is not None:
                worker.writer.close()  # the worker exits when its channel closes
            if worker.process is not None and worker.process.returncode is None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(worker.process.pid, signal.SIGTERM)
        if self.listener is not None:
            self.listener.close()
