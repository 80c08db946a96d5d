"""Central at scale: one real central process, N charging points simulated at the protocol level.

    python -m bench scale --cps N --seconds S --transport local|kafka [--out FILE] [--bootstrap HOST:PORT]
                          [--api-clients N] [--link-tls]

Central is a real ``evd run`` (config in a temporary directory). The bench plays every CP at
the protocol level without a task per CP. Its monitors run in a child process
(:mod:`bench.monitors`), so that their beat never waits for the stream side: each is a real
TCP connection to central speaking the framed protocol (``REG`` → ``REGR``, then ``HB#OK#``
every second). This process plays the engines and drivers: engines publish real telemetry on
``cp.telemetry`` and drivers real requests on ``driver.requests``, through evd's own transport
classes; one ticker sweeps 1/20 of the CPs every 50 ms, so each CP reports once a second.
Phases, each bounded in time:

1. connect and register every monitor; central shows the CP ACTIVE after its first beat;
2. each ACTIVE CP's driver requests a supply (``--request-rate`` per second); the engine
   side takes the ``authorize`` order from ``cp.commands``, publishes ``started``, then a
   ``progress`` record every second; auth latency is request → ``authorized`` on
   ``driver.events``;
3. the measured window (``--seconds``): lag is a progress record's publication → central's
   ``progress`` event for that session and sequence number on ``driver.events``
   (central publishes it after applying the record);
4. drain: no new telemetry until central has applied what was sent (bounded; if central
   is far behind, its rate meanwhile is ``drain_msgs_per_s``);
5. crash (unless ``--no-crash``, or the drain did not finish): central is SIGKILLed with every
   supply running and started again at once; ``recovery_s`` is the time from the restart until
   every supplying CP's monitor has been told SUPPLYING again (its real state);
6. catch-up (unless ``--no-catchup``, or the drain did not finish): central is stopped, a
   backlog of telemetry is published, central is started again and its apply rate while
   catching up is ``central_msgs_per_s``; a plain client reads the same topic for
   ``raw_consume_msgs_per_s``;
7. every supply ends; every driver must get exactly one ticket with the right energy, and
   central's database says how much telemetry it applied (lost = sent − applied).

Prints one JSON document on stdout (and to ``--out``); progress lines on stderr.
"""

import argparse
import asyncio
import collections
import contextlib
import datetime
import json
import os
import pathlib
import shutil
import sqlite3
import subprocess
import sys
import time

from evd import messages, pki
from evd.bus import OUTBOX_LIMIT
from evd.money import cost
from evd.testing import children_of

from .bus import machine
from .ocpp import OcppChargers

try:  # R20: central may hand each CP a key, and then takes only sealed telemetry from it
    from evd.plugins import crypto
except ImportError:
    crypto = None
from .procs import (
    CpuMeter,
    EvdNode,
    Processes,
    end_child,
    log_errors,
    memory_mb,
    read_topic_kafka,
    read_topic_local,
    start_bench_child,
)
from .support import (
    TansuBroker,
    check_bootstrap,
    free_port,
    make_transport,
    new_prefix,
    percentile,
    progress,
    run_and_report,
    working_directory,
)

SLICES = 20  # the ticker sweeps 1/SLICES of the CPs every 1/SLICES s
KWH_STEP = 0.01  # kWh per progress record: seq n carries n * KWH_STEP kWh
PRICE = 0.5
KWH_REQUESTED = 500.0  # central's default max_kwh: the supplies never complete on their own
REPORT_EVERY = 5.0
HEARTBEAT_TIMEOUT_LINE = "DISCONNECTED (no heartbeat for"  # in central's log
PUBLISH_CHUNK = 1000
MONITORS_PER_PROCESS = 10_000  # the bench's monitors' processes each hold at most this many links


TARGETS = {
    "lag_ms_p99": ("<", 1000, "lag_ms_p99 < 1000"),
    "auth_ms_p99": ("<", 100, "auth_ms_p99 < 100"),
    "central_vs_raw": (">=", 0.5, "central_msgs_per_s >= 50% of raw_consume_msgs_per_s"),
    "central_rss_mb": ("<", 200, "central RSS < 200 MB (at 10k CPs)"),
    "lost": ("==", 0, "no telemetry lost"),
    "tickets": ("==", 0, "exactly one ticket per session, with the applied energy"),
    "recovery_s": ("<=", 5, "central SIGKILLed and restarted: every CP in its real state within 5 s (at 1,000 CPs)"),
}


def commit():
    try:
        root = pathlib.Path(__file__).resolve().parents[1]
        out = subprocess.run(["git", "rev-parse", "HEAD"], cwd=root, capture_output=True, text=True, timeout=10)
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def uncommitted():
    """Files under evd/ that differ from the commit: what else the measured code contains."""
    try:
        root = pathlib.Path(__file__).resolve().parents[1]
        out = subprocess.run(["git", "status", "--porcelain", "--", "evd"], cwd=root, capture_output=True, text=True, timeout=10)
        return [line[3:] for line in out.stdout.splitlines()]
    except (OSError, subprocess.SubprocessError):
        return None


def ms(seconds):
    return round(seconds * 1000, 1) if seconds is not None else None


def kwh_of(seq):
    return round(seq * KWH_STEP, 2)


class PhaseError(Exception):
    pass


# -- the simulated charging points ------------------------------------------------------------


class SimCP:
    __slots__ = (
        "auth_s",
        "driver",
        "ev_max",
        "events",
        "gaps",
        "id",
        "index",
        "key",
        "price",
        "registered",
        "req_at",
        "req_id",
        "sent",
        "seq",
        "session",
        "state",
        "supplying",
        "ticket_kwh",
        "ticket_status",
        "tickets",
    )

    def __init__(self, index):
        self.index = index
        self.id = f"CP{index:05d}"
        self.driver = f"D{index:05d}"
        self.key = None  # central's key for this CP, if it gave one (sealed records)
        self.registered = False
        self.state = None  # what central last told this CP's monitor
        self.req_id = self.req_at = self.auth_s = None
        self.session = None
        self.price = PRICE
        self.supplying = False
        self.seq = 0
        self.sent = []  # monotonic publication time of progress seq n at index n - 1
        self.ev_max = 0  # highest progress seq central reported back
        self.events = 0  # distinct progress events seen
        self.gaps = 0
        self.tickets = 0
        self.ticket_kwh = self.ticket_status = None


class MonitorsChild:
    """One ``bench.monitors`` process, playing the monitors of CPs ``first`` … ``first + count - 1``."""

    def __init__(self, first, count):
        self.first, self.count = first, count
        self.proc = self.writer = None
        self.summary = None  # its "connected" report
        self.status = {}
        self.attached = asyncio.Event()
        self.connected = asyncio.Event()
        self.gone = asyncio.Event()


class Monitors:
    """The bench's monitors, in child processes (``bench.monitors``, at most MONITORS_PER_PROCESS
    each: one descriptor per link, and this machine allows 20,000 per process); their news arrive
    here as JSON lines."""

    def __init__(self, fleet, root, processes):
        self.fleet = fleet
        self.path = root / "run" / "monitors.sock"
        self.processes = processes
        self.children = []
        self.server = None

    @property
    def pids(self):
        return [child.proc.pid for child in self.children if child.proc]

    @property
    def summary(self):
        """The children's "connected" reports as one: registered in all, seconds of the slowest."""
        summaries = [child.summary for child in self.children]
        return {"registered": sum(s["registered"] for s in summaries), "seconds": max(s["seconds"] for s in summaries)}

    @property
    def status(self):
        """The children's last status as one: counters added, lateness the worst."""
        merged = collections.Counter()
        for child in self.children:
            for key, value in child.status.items():
                if key.endswith("_ms"):
                    merged[key] = max(merged[key], value)
                elif isinstance(value, (int, float)):
                    merged[key] += value
        return dict(merged)

    async def start(self, central, count, connect_timeout, per_process=MONITORS_PER_PROCESS):
        self.path.parent.mkdir(exist_ok=True)
        self.children = [MonitorsChild(first, min(per_process, count - first + 1)) for first in range(1, count + 1, per_process)]
        waiting = collections.deque(self.children)

        async def on_child(reader, writer):
            child = waiting.popleft()  # the children start one after the other: the first to call is the oldest
            child.writer = writer
            child.attached.set()
            try:
                while line := await reader.readline():
                    self.on_message(child, json.loads(line))
            finally:
                child.gone.set()

        self.server = await asyncio.start_unix_server(on_child, path=str(self.path), limit=2**24)
        self.processes.add(self)
        for child in self.children:
            command = ["--central", central, "--control", str(self.path)]
            command += ["--first", str(child.first), "--cps", str(child.count), "--connect-timeout", str(connect_timeout)]
            if self.fleet.cafile:
                command += ["--cafile", str(self.fleet.cafile)]
            child.proc = start_bench_child("bench.monitors", *command)
            await asyncio.wait_for(child.attached.wait(), 30)

    async def wait_connected(self):
        await asyncio.gather(*(child.connected.wait() for child in self.children))

    def on_message(self, child, message):
        fleet = self.fleet
        for index, key in message.get("reg", ()):
            cp = fleet.cps[index - 1]
            cp.registered = True
            if key:
                if crypto is None:
                    fleet.stats["keys_without_crypto_module"] += 1
                else:
                    cp.key = key
        for index, state in message.get("state", ()):
            fleet.on_state(fleet.cps[index - 1], state)
        for index in message.get("lost", ()):
            cp = fleet.cps[index - 1]
            cp.registered, cp.state = False, None
        if "status" in message:
            child.status = message["status"]
        if "connected" in message:
            child.summary = message["connected"]
            child.connected.set()

    def command(self, **command):
        line = json.dumps(command).encode() + b"\n"
        for child in self.children:
            if child.writer is not None and not child.writer.is_closing():
                child.writer.write(line)

    async def close(self):
        self.command(close=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(asyncio.gather(*(child.gone.wait() for child in self.children)), 15)
        await asyncio.to_thread(self.kill)
        if self.server is not None:
            self.server.close()
        for cp in self.fleet.cps:
            cp.registered, cp.state = False, None

    def kill(self):
        for child in self.children:
            end_child(child.proc)


class ApiClients:
    """``bench.api_clients`` in a child process for the window; its figures matched with the fleet's."""

    def __init__(self, central, args, processes):
        self.central, self.args = central, args
        self.out = central.root / "api-clients.json"
        self.proc = None
        processes.add(self)

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def start(self):
        command = ["--url", self.central.api_url, "--clients", str(self.args.api_clients)]
        command += ["--seconds", str(self.args.seconds), "--out", str(self.out)]
        self.proc = start_bench_child("bench.api_clients", *command)
        return self

    def figures(self, fleet):
        """api_ms_p50/p99 of the polls; events_lag_ms_p99: a record's publication → the /api/events update showing it."""
        try:
            self.proc.wait(30)
            result = json.loads(self.out.read_text())
        except (subprocess.TimeoutExpired, OSError, ValueError) as e:
            return {"api_clients": {"error": f"{type(e).__name__}: {e}"}}
        lags = []
        for arrived, cp_id, kwh in result["events"]:
            cp = fleet.by_id.get(cp_id)
            seq = round(kwh / KWH_STEP)
            if cp is not None and 0 < seq <= len(cp.sent) and cp.sent[seq - 1] is not None:
                lags.append(arrived - cp.sent[seq - 1])
        lags.sort()
        latencies = result["latencies_ms"]
        return {
            "api_clients": {
                "clients": self.args.api_clients,
                "requests": len(latencies),
                "errors": result["errors"],
                "event_samples": len(lags),
            },
            "api_ms_p50": round(percentile(latencies, 0.50), 1) if latencies else None,
            "api_ms_p99": round(percentile(latencies, 0.99), 1) if latencies else None,
            "events_lag_ms_p99": ms(percentile(lags, 0.99)),
        }

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)


class Fleet:
    """Every simulated CP, its monitor link, engine and driver; one ticker drives them all."""

    def __init__(self, count, kind, prefix, where, request_rate):
        self.cps = [SimCP(i) for i in range(1, count + 1)]
        self.by_id = {cp.id: cp for cp in self.cps}
        self.by_driver = {cp.driver: cp for cp in self.cps}
        self.slices = [self.cps[s::SLICES] for s in range(SLICES)]
        self.kind = kind
        self.bus = make_transport(kind, prefix, name="bench-fleet", **where)
        self.request_rate = request_rate
        self.cafile = None  # the site CA, when central.tls is on (--link-tls)
        self.ready = collections.deque()  # ACTIVE CPs whose driver has not requested yet
        self.stats = collections.Counter()
        self.auth = []  # seconds, request → authorized
        self.lags = []  # seconds, progress published → central's progress event, in the window
        self.recent_lags = []
        self.window = None  # (start, end) monotonic: lag samples of records published inside it
        self.sending = True  # publish progress records
        self.ending = False  # supplies are being ended: a late authorisation is ended at once
        self.requesting = False  # drivers ask for supplies (after every monitor has registered)
        self.ticker_late = 0
        self.ticker_max_late = 0.0  # seconds: how far the bench itself fell behind its beat
        self._warm = {"cp.commands": asyncio.Event(), "driver.events": asyncio.Event()}
        self._budget = 0.0
        self.denials = collections.Counter()
        self.ocpp = None  # bench.ocpp.OcppChargers with --ocpp: their drivers' events go there

    # -- counts ---------------------------------------------------------------------------

    def count(self, predicate):
        return sum(1 for cp in self.cps if predicate(cp))

    def unanswered_requests(self):
        return self.count(lambda c: c.req_id not in (None, "ready") and c.session is None)

    @property
    def telemetry_sent(self):
        return sum(cp.seq for cp in self.cps)

    @property
    def events_seen(self):
        return sum(cp.ev_max for cp in self.cps)

    # -- the stream --------------------------------------------------------------------------

    async def start(self, timeout):
        # Eager: the bench plays 1,000s of CPs in one process, and measures through these.
        self.bus.subscribe("cp.commands", self.on_command, group="bench-engines", eager=True)
        self.bus.subscribe("driver.events", self.on_event, group="bench-drivers", eager=True)
        await self.bus.start()
        for topic in self._warm:
            self.bus.publish(topic, "warmup", messages.make("warmup"))
        try:
            await asyncio.wait_for(asyncio.gather(*(e.wait() for e in self._warm.values())), timeout)
        except TimeoutError:
            raise PhaseError(f"the bench's consumers did not see their warm-up records within {timeout:g}s") from None

    def on_command(self, message, key):
        kind = message["type"]
        if kind == "warmup":
            self._warm["cp.commands"].set()
            return
        cp = self.by_id.get(key)
        if cp is None:
            return
        if kind == "sealed":
            if not (cp.key and crypto):
                self.stats["sealed_commands_unopened"] += 1
                return
            try:
                message = crypto.unseal(cp.key, "cp.commands", cp.id, message)
            except messages.MalformedMessage:
                self.stats["sealed_commands_unopened"] += 1
                return
            kind = message["type"]
        if kind == "authorize":
            if message["session"] == cp.session:
                self.stats["authorize_replayed"] += 1
                return
            if cp.session is not None:
                self.stats["authorize_while_supplying"] += 1
                return
            cp.session, cp.price = message["session"], message["price"]
            cp.supplying = True
            self.publish_telemetry(cp, messages.make("started", session=cp.session, cp=cp.id, driver=cp.driver))
            if self.ending:  # an answer to a request central had not read before the end: close it at once
                self.stats["authorized_after_the_end"] += 1
                self.publish_ended(cp)
        else:
            self.stats[f"command_{kind}"] += 1

    def on_event(self, message, key):
        kind = message["type"]
        if kind == "warmup":
            self._warm["driver.events"].set()
            return
        cp = self.by_driver.get(key)
        if cp is None:
            if self.ocpp is not None:
                self.ocpp.on_event(message, key)
            return
        now = time.monotonic()
        if kind == "progress":
            seq = message["seq"]
            if message["session"] != cp.session:
                self.stats["progress_other_session"] += 1
            elif seq <= cp.ev_max:
                self.stats["duplicates"] += 1
            else:
                cp.gaps += seq - cp.ev_max - 1
                cp.ev_max = seq
                cp.events += 1
                if seq <= len(cp.sent):
                    sent = cp.sent[seq - 1]
                    if sent is not None:
                        lag = now - sent
                        self.recent_lags.append(lag)
                        window = self.window
                        if window is not None and window[0] <= sent <= window[1]:
                            self.lags.append(lag)
        elif kind == "authorized":
            if message["request_id"] == cp.req_id and cp.auth_s is None:
                cp.auth_s = now - cp.req_at
                self.auth.append(cp.auth_s)
        elif kind == "ticket":
            cp.tickets += 1
            cp.ticket_kwh, cp.ticket_status = message["kwh"], message["status"]
        elif kind == "denied":
            self.denials[message["reason"]] += 1
            if message["request_id"] == cp.req_id:
                cp.req_id = None  # ask again when central next says ACTIVE
                if cp.state == "ACTIVE":
                    self.ready.append(cp)

    def publish_telemetry(self, cp, message):
        if cp.key:
            message = crypto.seal(cp.key, "cp.telemetry", cp.id, message)
        self.bus.publish("cp.telemetry", cp.id, message)
        self.stats["telemetry_records"] += 1

    def publish_progress(self, cp, now, timed=True):
        cp.seq += 1
        kwh = kwh_of(cp.seq)
        self.publish_telemetry(
            cp, messages.make("progress", session=cp.session, cp=cp.id, driver=cp.driver, kwh=kwh, eur=cost(kwh, cp.price), seq=cp.seq)
        )
        cp.sent.append(now if timed else None)

    def publish_ended(self, cp):
        kwh = kwh_of(cp.seq)
        message = messages.make(
            "ended",
            session=cp.session,
            cp=cp.id,
            driver=cp.driver,
            kwh=kwh,
            eur=cost(kwh, cp.price),
            seq=cp.seq + 1,
            status="COMPLETED",
            reason="bench finished",
        )
        self.publish_telemetry(cp, message)
        cp.supplying = False

    # -- what the monitors hear from central ---------------------------------------------------

    def on_state(self, cp, state):
        cp.state = state
        if state == "ACTIVE" and cp.req_id is None and cp.session is None:
            cp.req_id = "ready"
            self.ready.append(cp)

    # -- the ticker ---------------------------------------------------------------------------------

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
            now = time.monotonic()
            if self.sending:
                for cp in self.slices[n % SLICES]:
                    if cp.supplying:
                        self.publish_progress(cp, now)
            if self.requesting:
                self._request_some(period)

    def _request_some(self, period):
        self._budget = min(self._budget + self.request_rate * period, max(1.0, self.request_rate * period))
        while self.ready and self._budget >= 1.0:
            cp = self.ready.popleft()
            if cp.session is not None or cp.state != "ACTIVE":
                cp.req_id = None
                continue
            message = messages.make("request", driver=cp.driver, cp=cp.id, kwh=KWH_REQUESTED, expires_at=None)
            cp.req_id, cp.req_at = message["id"], time.monotonic()
            self.bus.publish("driver.requests", cp.driver, message)
            self._budget -= 1.0
            self.stats["requests"] += 1


# -- central ------------------------------------------------------------------------------------


def central_config(args, root, prefix, where, port, api_port, ocpp_port=None):
    transport = {"kind": args.transport, "topic_prefix": prefix}
    if args.transport == "kafka":
        transport.update(bootstrap=where["bootstrap"])
    else:
        transport["path"] = str(where["path"])
    section = {"listen": f"127.0.0.1:{port}", "database": str(root / "state" / "central.db"), "heartbeat_timeout": args.heartbeat_timeout}
    if args.link_workers:
        section["link_workers"] = args.link_workers
    if args.link_tls:
        pki.make_ca(root / "pki")
        cert = pki.issue(root / "pki", "central", ["127.0.0.1"])
        section["tls"] = {"cert": str(cert), "key": str(root / "pki" / "central.key"), "required": True}
    return {
        "role": "central",
        "transport": transport,
        "log": {"level": args.log_level},
        "central": section,
        "api": {"listen": f"127.0.0.1:{api_port}"},  # never the default 8080, which a demo may hold
        **({"ocpp": {"enabled": True, "listen": f"127.0.0.1:{ocpp_port}"}} if args.ocpp else {}),
    }


def read_sessions(db_path):
    """Central's sessions straight from its database (``evctl sessions`` returns at most 1000 rows)."""
    try:
        db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=10)
    except sqlite3.Error:
        return []
    try:
        return db.execute("SELECT cp, driver, status, kwh, last_seq, id FROM sessions").fetchall()
    except sqlite3.Error:
        return []
    finally:
        db.close()


def applied_final(db_path, fleet):
    """Progress records applied per supply, counting the ``ended`` record's sequence number as no progress."""
    sent = {cp.id: cp.seq for cp in fleet.cps}
    return sum(min(row[4] or 0, sent.get(row[0], 0)) for row in read_sessions(db_path) if row[2] != "DENIED")


def applied_seq(db_path):
    """Sum of the highest progress sequence central applied per open or finished supply."""
    return sum(row[4] or 0 for row in read_sessions(db_path) if row[2] != "DENIED")


class Sampler:
    """Central's CPU and memory, and the bench's own CPU, for progress lines and the report."""

    def __init__(self, central_pid, broker_pid=None):
        self.set_central(central_pid)
        self.bench = CpuMeter(os.getpid())
        self.broker = CpuMeter(broker_pid) if broker_pid else None
        self.monitors = []  # CpuMeters of the bench's monitors' processes
        self.workers = []  # CpuMeters of central's link workers, from the last mark

    def set_central(self, pid):
        self.pid = pid
        self.central = CpuMeter(pid)

    def mark(self):
        for meter in (self.central, self.bench, self.broker, *self.monitors):
            if meter is not None:
                meter.mark()
        self.workers = [CpuMeter(pid) for pid in children_of(self.pid)]  # central's link workers

    def read(self):
        rss, peak = memory_mb(self.pid)
        workers = self.workers
        worker_rss = [memory_mb(meter.pid)[0] or 0 for meter in workers]
        return {
            "central_cpu_pct": self.central.percent(),
            "central_rss_mb": round(rss, 1) if rss else None,
            "central_workers_cpu_pct": round(sum(m.percent() or 0 for m in workers), 1) if workers else None,
            "central_all_rss_mb": round((rss or 0) + sum(worker_rss), 1) if rss else None,
            "central_rss_peak_mb": round(peak, 1) if peak else None,
            "bench_cpu_pct": self.bench.percent(),
            "bench_monitors_cpu_pct": round(sum(m.percent() or 0 for m in self.monitors), 1) if self.monitors else None,
            "broker_cpu_pct": self.broker.percent() if self.broker else None,
        }


def cpu_per_record(figures, applied, window_s):
    """Central's CPU time per telemetry record it applied in the window, µs (with its link workers: _all)."""
    if applied <= 0 or figures["central_cpu_pct"] is None:
        return {}
    own = figures["central_cpu_pct"] / 100 * window_s
    workers = (figures["central_workers_cpu_pct"] or 0) / 100 * window_s
    return {
        "central_cpu_us_per_record": round(own / applied * 1e6, 1),
        "central_all_cpu_us_per_record": round((own + workers) / applied * 1e6, 1),
    }


async def reporter(fleet, sampler, phase):
    meter = CpuMeter(sampler.pid)
    while True:
        await asyncio.sleep(REPORT_EVERY)
        if meter.pid != sampler.pid:  # central was restarted
            meter = CpuMeter(sampler.pid)
        lags, fleet.recent_lags = sorted(fleet.recent_lags), []
        p99 = percentile(lags, 0.99)
        rss, _ = memory_mb(sampler.pid)
        progress(
            f"  [{phase[0]}] registered {fleet.count(lambda c: c.registered)} · active {fleet.count(lambda c: c.state == 'ACTIVE')}"
            f" · supplying {fleet.count(lambda c: c.supplying)} · telemetry sent {fleet.telemetry_sent} applied-events {fleet.events_seen}"
            f" · lag p99 {ms(p99)} ms · outbox {fleet.bus.pending} · central cpu {meter.percent()}% rss {rss and round(rss)} MB"
        )
        meter = CpuMeter(sampler.pid)


async def wait_until(what, predicate, timeout, stall=None, measure=None):
    """Poll ``predicate`` until true; PhaseError after ``timeout`` s, or after ``stall`` s without ``measure`` moving."""
    started = last_move = time.monotonic()
    last = measure() if measure else None
    while not predicate():
        await asyncio.sleep(0.1)
        now = time.monotonic()
        if measure:
            value = measure()
            if value != last:
                last, last_move = value, now
            elif stall and now - last_move > stall:
                raise PhaseError(f"{what}: no progress for {stall:g}s")
        if now - started > timeout:
            raise PhaseError(f"{what}: not done within {timeout:g}s")
    return time.monotonic() - started


# -- the run ---------------------------------------------------------------------------------------


async def drive(args, report, central, where, prefix, sampler, phase, processes):
    n = args.cps
    fleet = Fleet(n, args.transport, prefix, where, args.request_rate)
    if args.link_tls:
        fleet.cafile = central.root / "pki" / "ca.pem"
    monitors = fleet.monitors = Monitors(fleet, central.root, processes)
    if args.ocpp:
        fleet.ocpp = OcppChargers(args.ocpp, f"ws://127.0.0.1:{central.ocpp_port}", central.root, fleet.bus, processes)
    tasks = []
    db_path = central.root / "state" / "central.db"
    phases = report["phases"]
    try:
        phase[0] = "warm-up"
        t = time.monotonic()
        await fleet.start(60)
        phases["warmup_s"] = round(time.monotonic() - t, 2)
        tasks = [asyncio.ensure_future(c) for c in (fleet.ticker(), reporter(fleet, sampler, phase))]

        phase[0] = "connect"
        progress(f"connecting {n} monitors to central (from a child process)")
        connect_timeout = 60 + n / 100
        await monitors.start(f"127.0.0.1:{central.port}", n, connect_timeout, args.monitors_per_process)
        sampler.monitors = [CpuMeter(pid) for pid in monitors.pids]
        try:
            await asyncio.wait_for(monitors.wait_connected(), connect_timeout + 60)
        except TimeoutError:
            raise PhaseError("the monitors' process did not finish connecting") from None
        registered = monitors.summary["registered"]
        phases["connect_s"] = monitors.summary["seconds"]
        report["registered"] = registered
        report["registrations_per_s"] = round(registered / phases["connect_s"], 1)
        progress(f"  {registered} of {n} registered in {phases['connect_s']} s")
        if registered < n:
            report["errors"].append(f"only {registered} of {n} monitors registered within {connect_timeout:g}s; going on with those")
        if registered == 0:
            raise PhaseError("no monitor registered")

        phase[0] = "heartbeats"
        await asyncio.sleep(2.0)  # every registered CP has beaten at least once
        meter = CpuMeter(sampler.pid)
        profiler = start_profiler(args, sampler.pid, 5, ".heartbeats")
        await asyncio.sleep(5.0)
        report["central_cpu_pct_heartbeats_only"] = meter.percent()
        if profiler is not None:
            await asyncio.to_thread(finish_profiler, profiler, report, "py_spy_heartbeats")

        phase[0] = "authorize"
        fleet.requesting = True
        if fleet.ocpp is not None:  # each charger's driver asks once it is Available
            await fleet.ocpp.start()
        t = time.monotonic()
        try:
            await wait_until(
                "every registered CP supplying",
                lambda: fleet.count(lambda c: c.supplying) >= registered,
                timeout=60 + n / args.request_rate * 2,
                stall=30,
                measure=lambda: fleet.count(lambda c: c.supplying),
            )
        except PhaseError as e:
            report["errors"].append(f"{e}; going on with {fleet.count(lambda c: c.supplying)} supplying")
        phases["authorize_s"] = round(time.monotonic() - t, 2)
        report["supplying"] = fleet.count(lambda c: c.supplying)
        progress(f"  {report['supplying']} CPs supplying after {phases['authorize_s']} s")

        phase[0] = "window"
        sent_before, events_before = fleet.telemetry_sent, fleet.events_seen
        fleet.window = (time.monotonic(), float("inf"))
        sampler.mark()
        profiler = start_profiler(args, sampler.pid)
        api_clients = ApiClients(central, args, processes).start() if args.api_clients else None
        await asyncio.sleep(args.seconds)
        if profiler is not None:
            await asyncio.to_thread(finish_profiler, profiler, report)
        if api_clients is not None:
            report.update(await asyncio.to_thread(api_clients.figures, fleet))
        window_s = time.monotonic() - fleet.window[0]
        fleet.window = (fleet.window[0], time.monotonic())
        fleet.requesting = False  # CPs that came back after a disconnection ask no more
        figures = sampler.read()
        report["duration_s"] = round(window_s, 2)
        report.update({k: v for k, v in figures.items() if k not in ("bench_cpu_pct", "bench_monitors_cpu_pct", "broker_cpu_pct")})
        report["bench_cpu_pct"] = figures["bench_cpu_pct"]
        report["bench_monitors_cpu_pct"] = figures["bench_monitors_cpu_pct"]
        if figures["broker_cpu_pct"] is not None:
            report["broker_cpu_pct"] = figures["broker_cpu_pct"]
        report["offered_msgs_per_s"] = round((fleet.telemetry_sent - sent_before) / window_s)
        report["central_steady_msgs_per_s"] = round((fleet.events_seen - events_before) / window_s)
        report.update(cpu_per_record(figures, fleet.events_seen - events_before, window_s))
        report["bench_outbox"] = fleet.bus.pending

        phase[0] = "drain"
        fleet.sending = False
        t = time.monotonic()
        events_before, drained = fleet.events_seen, True
        try:
            await wait_until(
                "central catching up with the window's telemetry",
                lambda: fleet.events_seen >= fleet.telemetry_sent,
                timeout=max(120, 3 * args.seconds),
                stall=20,
                measure=lambda: fleet.events_seen,
            )
        except PhaseError as e:
            drained = False
            report["errors"].append(f"drain: {e} ({fleet.telemetry_sent - fleet.events_seen} records not applied yet)")
        drain_s = time.monotonic() - t
        phases["drain_s"] = round(drain_s, 2)
        backlog = fleet.events_seen - events_before
        if drain_s > 5 and backlog > 0:
            # Central worked through a backlog with nothing new arriving: its apply rate (with every monitor beating).
            report["drain_msgs_per_s"] = round(backlog / drain_s)
        await asyncio.sleep(1.0)  # central writes its database in batches (every 0.25 s)
        report["unapplied_after_drain"] = fleet.telemetry_sent - applied_seq(db_path)
        progress(
            f"  sent {fleet.telemetry_sent} progress records; {report['unapplied_after_drain']} not applied after {phases['drain_s']} s of drain"
        )

        if args.crash and drained:
            phase[0] = "crash"
            await crash(report, fleet, central, sampler)
        elif args.crash:
            report["errors"].append("crash: skipped, central had not applied the window's telemetry yet")

        if args.catchup and drained:
            phase[0] = "catch-up"
            await catch_up(args, report, fleet, central, sampler, db_path)
        elif args.catchup:
            report["catchup"] = {"skipped": "central had not applied the window's telemetry yet; drain_msgs_per_s is its catch-up rate"}
            report["central_msgs_per_s"] = report.get("drain_msgs_per_s")

        # Counted now: the end phase stops the beats on purpose, and central then times them out.
        report["central_heartbeat_timeouts"] = central.log_tail(10**8).count(HEARTBEAT_TIMEOUT_LINE)
        report["monitor_disconnects_before_end"] = monitors.status.get("monitor_disconnects", 0)
        phase[0] = "end"
        monitors.command(beats=False)
        fleet.ending = True
        for cp in fleet.cps:
            if cp.session is not None:
                fleet.publish_ended(cp)
        t = time.monotonic()
        remaining = max(0, fleet.telemetry_sent - fleet.events_seen)
        rate = report.get("central_msgs_per_s") or report.get("drain_msgs_per_s") or 1000
        try:
            await wait_until(
                "a ticket for every supply, and an answer to every request",
                lambda: all(cp.tickets for cp in fleet.cps if cp.session) and not fleet.unanswered_requests(),
                timeout=min(900, 60 + n / 200 + 1.5 * remaining / max(rate, 100)),
                stall=60,
                measure=lambda: fleet.events_seen + fleet.count(lambda c: c.tickets),
            )
        except PhaseError as e:
            report["errors"].append(str(e))
        if fleet.ocpp is not None:
            await fleet.ocpp.end(timeout=60)
        phases["tickets_s"] = round(time.monotonic() - t, 2)
        await asyncio.sleep(1.0)  # late duplicates, and the database's next batch
        sent, applied = fleet.telemetry_sent, applied_final(db_path, fleet)
        report["telemetry_sent"] = sent
        report["telemetry_applied"] = applied
        # Central publishes one progress event per record it applies: a record without its event
        # was not applied (or its event was lost). The database alone cannot tell, because a
        # later record carries the whole energy and moves last_seq past a record never seen.
        report["progress_events_missing"] = sum(cp.seq - cp.events for cp in fleet.cps)
        report["lost"] = max(sent - applied, report["progress_events_missing"])
        report["unanswered_requests"] = fleet.unanswered_requests()
        report["duplicates"] = fleet.stats["duplicates"]
        progress(f"  in all: sent {sent} progress records, central applied {applied}")
        report["audit"] = audit(fleet, db_path)
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await monitors.close()
        report["monitors"] = monitors.status
        if fleet.ocpp is not None:
            report.update(fleet.ocpp.figures(fleet.window or (0.0, 0.0)))
            await fleet.ocpp.close()
        with contextlib.suppress(Exception):
            await asyncio.wait_for(fleet.bus.stop(), 30)
        report["auth_ms_p50"] = ms(percentile(sorted(fleet.auth), 0.50))
        report["auth_ms_p99"] = ms(percentile(sorted(fleet.auth), 0.99))
        report["auth_ms_max"] = ms(max(fleet.auth)) if fleet.auth else None
        report["authorized"] = len(fleet.auth)
        lags = sorted(fleet.lags)
        report["lag_ms_p50"] = ms(percentile(lags, 0.50))
        report["lag_ms_p99"] = ms(percentile(lags, 0.99))
        report["lag_ms_max"] = ms(lags[-1]) if lags else None
        report["lag_samples"] = len(lags)
        report["bench_stats"] = dict(fleet.stats) | {
            "ticker_late_slices": fleet.ticker_late,
            "ticker_max_late_ms": ms(fleet.ticker_max_late),
            "dropped_by_bench_outbox": fleet.bus.stats["dropped"],
        }
        if fleet.denials:
            report["denials"] = dict(fleet.denials.most_common(5))
        report["telemetry_records_published"] = fleet.stats["telemetry_records"]
        report["sealed_cps"] = fleet.count(lambda c: c.key is not None)


def start_profiler(args, pid, seconds=None, suffix=""):
    """``py-spy record`` on central for the measured window, if asked for (collapsed stacks in ``--py-spy``)."""
    if not args.py_spy:
        return None
    py_spy = shutil.which("py-spy") or str(pathlib.Path(sys.executable).parent / "py-spy")
    command = [py_spy, "record", "--pid", str(pid), "--duration", str(max(1, int(seconds or args.seconds))), "--rate", "50"]
    command += ["--format", "raw", "--nonblocking", "--output", args.py_spy + suffix]
    try:
        return subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, start_new_session=True)
    except OSError as e:
        progress(f"  py-spy did not start: {e}")
        return None


def finish_profiler(profiler, report, name="py_spy"):
    try:
        _, err = profiler.communicate(timeout=60)
    except subprocess.TimeoutExpired:
        profiler.kill()
        _, err = profiler.communicate()
    report[name] = {"output": profiler.args[-1], "exit_status": profiler.returncode}
    if profiler.returncode:
        report[name]["stderr"] = err.decode(errors="replace")[-500:]


async def crash(report, fleet, central, sampler):
    """SIGKILL central while every CP supplies, start it again at once, and time until every
    monitor has been told SUPPLYING again (its real state: the supplies went on meanwhile)."""
    supplying = [cp for cp in fleet.cps if cp.session is not None and cp.state == "SUPPLYING"]
    if not supplying:
        report["errors"].append("crash: no CP was shown SUPPLYING before the crash")
        return
    progress(f"crash: SIGKILL central with {len(supplying)} CPs supplying, then start it again")
    killed = time.monotonic()
    await asyncio.to_thread(central.kill)
    await asyncio.sleep(0.2)  # the monitors' last news from before the crash arrive here first
    for cp in supplying:
        cp.state = None
    central.start()
    restarted = time.monotonic()
    sampler.set_central(central.pid)
    await asyncio.to_thread(central.wait_ready, 60)
    ready = time.monotonic() - restarted

    def shown():
        return sum(1 for cp in supplying if cp.state == "SUPPLYING")

    recovered = None
    try:
        await wait_until(
            "every supplying CP shown SUPPLYING again", lambda: shown() == len(supplying), timeout=120, stall=30, measure=shown
        )
        recovered = time.monotonic()
    except PhaseError as e:
        report["errors"].append(f"crash: {e} ({shown()} of {len(supplying)})")
    report["crash"] = {
        "cps_supplying": len(supplying),
        "ready_s": round(ready, 2),
        "recovery_s": round(recovered - restarted, 2) if recovered else None,
        "recovery_from_kill_s": round(recovered - killed, 2) if recovered else None,
    }
    report["recovery_s"] = report["crash"]["recovery_s"]
    progress(f"  central answered after {ready:.2f} s; every CP shown SUPPLYING {report['recovery_s']} s after the restart")


async def catch_up(args, report, fleet, central, sampler, db_path):
    """Stop central, publish a backlog, start it again and time how fast it applies the backlog."""
    supplying = [cp for cp in fleet.cps if cp.session is not None]
    if not supplying:
        raise PhaseError("no supply to send a backlog for")
    per_cp = max(2, -(-args.backlog // len(supplying)))
    total = per_cp * len(supplying)
    progress(f"catch-up: stopping central, publishing {total} progress records, starting central again")
    await fleet.monitors.close()
    await asyncio.to_thread(central.stop, 30)
    high_water = OUTBOX_LIMIT // 2
    published = 0
    for _round in range(per_cp):
        for cp in supplying:
            fleet.publish_progress(cp, None, timed=False)
            published += 1
            if published % PUBLISH_CHUNK == 0:
                await asyncio.sleep(0)
                await wait_until(
                    "the bench's outbox", lambda: fleet.bus.pending < high_water, timeout=120, stall=30, measure=lambda: fleet.bus.pending
                )
    await wait_until(
        "the backlog to reach the stream", lambda: fleet.bus.pending == 0, timeout=120, stall=30, measure=lambda: fleet.bus.pending
    )
    expected = fleet.telemetry_sent
    before = applied_seq(db_path)
    t0 = time.monotonic()
    central.start()
    # Poll the database from the start: central may apply much of the backlog before it answers a ping.
    sampler.set_central(central.pid)
    meter = CpuMeter(central.pid)
    first_at = first_value = None
    last, last_move = before, time.monotonic()
    deadline = time.monotonic() + max(300, total / 100)
    while True:
        await asyncio.sleep(0.05)
        value = await asyncio.to_thread(applied_seq, db_path)
        now = time.monotonic()
        if value != last:
            last, last_move = value, now
            if first_at is None:
                first_at, first_value = now, value
        if value >= expected:
            break
        if not central.alive():
            report["errors"].append(f"catch-up: central exited with {central.proc.returncode}")
            break
        if now - last_move > 30 or now > deadline:
            report["errors"].append(f"catch-up: central applied {value - before} of {expected - before} records")
            break
    done_at = time.monotonic()
    await asyncio.to_thread(central.wait_ready, 60)
    # From the first batch seen applied to the last: the rate excludes central's start-up.
    applied = last - (first_value if first_value is not None else before)
    seconds = done_at - (first_at or done_at)
    includes_startup = False
    if seconds <= 0 or applied <= 0:  # all of it within one look: count from central's start instead
        applied, seconds, includes_startup = last - before, done_at - t0, True
    report["catchup"] = {
        "backlog": expected - before,
        "applied": last - before,
        "restart_to_done_s": round(done_at - t0, 2),
        "apply_s": round(seconds, 2),
        "central_cpu_pct": meter.percent(),
        "rate_includes_startup": includes_startup,
    }
    report["central_msgs_per_s"] = round(applied / seconds) if seconds > 0 and applied > 0 else None
    rss, _peak = memory_mb(sampler.pid)
    report["catchup"]["central_rss_mb"] = round(rss, 1) if rss else None
    progress(f"  central applied {last - before} of {expected - before} backlog records; {report['central_msgs_per_s']} records/s")


def audit(fleet, db_path):
    rows = read_sessions(db_path)
    by_cp = collections.defaultdict(list)
    for cp_id, _driver, status, kwh, _seq, _id in rows:
        if status != "DENIED":
            by_cp[cp_id].append((status, kwh))
    problems = collections.Counter()
    for cp in fleet.cps:
        if cp.session is None:
            problems["no_session"] += 1
            continue
        sessions = by_cp.get(cp.id, [])
        if len(sessions) != 1:
            problems["not_one_session"] += 1
        elif sessions[0][0] != "COMPLETED":
            problems[f"session_{sessions[0][0]}"] += 1
        elif abs(sessions[0][1] - kwh_of(cp.seq)) > 1e-9:
            problems["session_kwh_wrong"] += 1
        if cp.tickets == 0:
            problems["tickets_missing"] += 1
        elif cp.tickets > 1:
            problems["tickets_repeated"] += cp.tickets - 1
        if cp.tickets and abs((cp.ticket_kwh or 0) - kwh_of(cp.seq)) > 1e-9:
            problems["ticket_kwh_wrong"] += 1
    return {
        "sessions": len(rows),
        "denied": sum(1 for r in rows if r[2] == "DENIED"),
        "tickets": sum(cp.tickets for cp in fleet.cps),
        "problems": dict(problems),
        # Tickets sent again (at-least-once) are harmless to drivers, which deduplicate by session;
        # what counts is a missing ticket or a wrong one.
        "failed": sum(v for k, v in problems.items() if k != "tickets_repeated"),
    }


def raw_consume(args, where, prefix):
    topic = f"{prefix}.cp.telemetry"
    if args.transport == "kafka":
        rows, seconds = read_topic_kafka(where["bootstrap"], topic)
    else:
        rows, seconds = read_topic_local(where["path"], topic)
    return len(rows), seconds


def judge(report):
    raw, central = report.get("raw_consume_msgs_per_s"), report.get("central_msgs_per_s")
    values = {
        "lag_ms_p99": report.get("lag_ms_p99"),
        "auth_ms_p99": report.get("auth_ms_p99"),
        "central_vs_raw": round(central / raw, 3) if raw and central else None,
        "central_rss_mb": report.get("central_rss_mb"),
        "lost": report.get("lost"),
        "tickets": (report.get("audit") or {}).get("failed"),
        "recovery_s": report.get("recovery_s"),
    }
    targets = {}
    for name, (op, limit, text) in TARGETS.items():
        value = values[name]
        if name == "central_rss_mb" and report["cps"] < 10_000:
            text += f" (informative at {report['cps']} CPs)"
        if name == "recovery_s" and report["cps"] != 1_000:
            text += f" (informative at {report['cps']} CPs)"
        met = None
        if value is not None:
            met = {"<": value < limit, "<=": value <= limit, ">=": value >= limit, "==": value == limit}[op]
        targets[name] = {"target": text, "value": value, "met": met}
    return targets


def run(args, stack):
    root = working_directory(args, stack, "evd-bench-")
    processes = Processes()
    stack.callback(processes.kill_all)
    report = {
        "bench": "scale",
        "cps": args.cps,
        "api_clients": args.api_clients,
        "link_tls": args.link_tls,
        "link_workers": args.link_workers,
        "ocpp": args.ocpp,
        "crypto": args.crypto,
        "transport": args.transport,
        "seconds": args.seconds,
        "request_rate": args.request_rate,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "commit": commit(),
        "evd_uncommitted": uncommitted(),
        "machine": machine(),
        "phases": {},
        "errors": [],
    }
    prefix = new_prefix()
    broker = None
    if args.transport == "kafka":
        if args.bootstrap:
            where = {"bootstrap": args.bootstrap}
            report["broker"] = args.bootstrap
        else:
            (root / "log").mkdir(exist_ok=True)
            broker = processes.add(TansuBroker(log_path=root / "log" / "tansu.log"))
            broker.start()
            where = {"bootstrap": broker.bootstrap}
            report["broker"] = f"tansu on {broker.bootstrap} (memory storage, started here)"
    else:
        where = {"path": root / "state" / "bus.db"}
    port, api_port, ocpp_port = free_port(), free_port(), free_port()
    central = EvdNode(root, "central", central_config(args, root, prefix, where, port, api_port, ocpp_port), processes)
    central.ocpp_port = ocpp_port
    if not args.crypto:
        central.env["EVD_DISABLE_PLUGINS"] = "crypto"
    central.port, central.api_url = port, f"http://127.0.0.1:{api_port}"
    progress(f"scale: {args.cps} CPs on {args.transport}; central on 127.0.0.1:{port}, logs in {root / 'log'}")
    central.start().wait_ready(60)
    pid = central.call("status")["pid"]
    sampler = Sampler(pid, broker.pid if broker else None)
    phase = ["start"]
    try:
        asyncio.run(drive(args, report, central, where, prefix, sampler, phase, processes))
    except PhaseError as e:
        report["errors"].append(f"{phase[0]}: {e}")
        progress(f"  error: {e}")
    if args.transport == "kafka" or where["path"].exists():
        try:
            records, seconds = raw_consume(args, where, prefix)
            report["raw_records"] = records
            report["raw_consume_s"] = round(seconds, 3)
            report["raw_consume_msgs_per_s"] = round(records / seconds) if seconds > 0 else None
            progress(f"  raw read of the telemetry topic: {records} records in {seconds:.2f} s")
        except Exception as e:
            report["errors"].append(f"raw consume: {type(e).__name__}: {e}")
    rss, _peak = memory_mb(central.pid) if central.alive() else (None, None)
    if rss is not None:
        report["central_rss_end_mb"] = round(rss, 1)
    status = central.stop(30)
    report["central_exit_status"] = status
    if status not in (0, None):
        report["errors"].append(f"central exited with {status} on SIGTERM")
    log_text = central.log_tail(10**8)
    report.setdefault("central_heartbeat_timeouts", log_text.count(HEARTBEAT_TIMEOUT_LINE))
    report["central_log_errors"] = log_errors(log_text)
    report["targets"] = judge(report)
    return report


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m bench scale", description=__doc__.split("\n")[0])
    parser.add_argument("--cps", type=int, default=1000, help="charging points to simulate (default 1000)")
    parser.add_argument("--seconds", type=float, default=60.0, help="length of the measured window (default 60)")
    parser.add_argument("--transport", choices=("local", "kafka"), default="local")
    parser.add_argument("--bootstrap", help="a loopback Kafka-protocol broker to use instead of starting tansu")
    parser.add_argument("--out", help="also write the JSON document to this file")
    parser.add_argument("--request-rate", type=float, default=500.0, help="supply requests per second while starting up (default 500)")
    parser.add_argument("--heartbeat-timeout", default="5s", help="central.heartbeat_timeout (default 5s)")
    parser.add_argument("--backlog", type=int, default=20_000, help="records in the catch-up backlog, at least 2 per CP (default 20000)")
    parser.add_argument("--no-catchup", dest="catchup", action="store_false", help="skip the catch-up phase (no central_msgs_per_s)")
    parser.add_argument("--no-crash", dest="crash", action="store_false", help="skip the crash phase (no recovery_s)")
    parser.add_argument(
        "--api-clients",
        type=int,
        default=0,
        metavar="N",
        help="N clients polling /api/charging_points each second, plus one /api/events listener, in the window",
    )
    parser.add_argument(
        "--ocpp",
        type=int,
        default=0,
        metavar="N",
        help="mix N OCPP 1.6J chargers (bench.ocpp_chargers) into the run, with drivers of their own",
    )
    parser.add_argument("--link-workers", type=int, default=0, metavar="N", help="central.link_workers: the monitors' links in N processes")
    parser.add_argument(
        "--no-crypto", dest="crypto", action="store_false", help="central without its crypto plugin: no per-CP keys, plain telemetry"
    )
    parser.add_argument(
        "--monitors-per-process",
        type=int,
        default=MONITORS_PER_PROCESS,
        metavar="N",
        help=f"the bench's monitors in processes of at most N links each (default {MONITORS_PER_PROCESS:,}: 20,000 descriptors per process here)",
    )
    parser.add_argument("--link-tls", action="store_true", help="central.tls required: every monitor connects inside TLS")
    parser.add_argument("--log-level", default="info", choices=("debug", "info", "warning", "error"), help="central's log level")
    parser.add_argument(
        "--py-spy",
        metavar="FILE",
        help="profile central with py-spy in the window (collapsed stacks to FILE; FILE.heartbeats: heartbeats only)",
    )
    parser.add_argument("--keep", action="store_true", help="keep the working directory (configs, logs, databases)")
    args = parser.parse_args(argv)
    if (
        args.cps < 1
        or args.seconds <= 0
        or args.request_rate <= 0
        or args.backlog < 1
        or args.api_clients < 0
        or args.monitors_per_process < 1
        or args.ocpp < 0
    ):
        parser.error(
            "--cps, --seconds, --request-rate, --backlog and --monitors-per-process must be positive, --api-clients and --ocpp not negative"
        )
    return check_bootstrap(parser, args)


def main(argv=None):
    return run_and_report(parse_args(argv), run)


if __name__ == "__main__":
    sys.exit(main())
