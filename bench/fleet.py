"""A fleet of real daemons: one ``evd run`` process per engine, monitor and driver, as the assignment deploys them.

    python -m bench fleet --cps N --drivers M --transport kafka|local [--seconds S] [--out FILE]

Central, every engine, every monitor and every driver is its own ``evd run`` process with the
default cadence (1 s ticks and checks) and encryption on, as on the CP and driver machines of
the three-host scenario; only ``engine.auto_plug`` is set, so that supplies run unattended.
Phases, each bounded in time:

1. start central, then every engine, then every monitor: ``ready_s`` is the time from the
   first monitor's start until central shows every CP ACTIVE;
2. start every driver and wait until each sees central; then ``--idle-seconds`` with nothing
   to do: ``idle_cpu_pct`` per process, by role (and the broker's, ``broker_cpu_pct_idle``);
3. the busy window (``--seconds``): driver i asks for ``--kwh`` at CP i mod N over its control
   socket (``driver.request`` with ``wait``), and again ``--pause`` after each ticket:
   ``busy_cpu_pct`` per process, by role;
4. drain: no new requests, every supply ends with its ticket (bounded).

The bench reads the stream as a plain live consumer (evd's transport classes, no group):
``auth_ms`` is a request's publication by the driver → the ``authorized`` event reaching a
consumer; ``lag_ms`` is a progress record's publication by the engine → central's
``progress`` event for that session and sequence number reaching a consumer (central
publishes it once it applied the record; the engines' sealed records are opened with the
keys in central's database). ``tickets_wrong`` counts tickets that differ from central's
database or from the energy asked for; ``lost`` counts requests with no outcome and progress
records central never acknowledged.

Prints one JSON document on stdout (and to ``--out``); progress lines on stderr.
"""

import argparse
import asyncio
import collections
import concurrent.futures
import datetime
import os
import pathlib
import socket
import sqlite3
import statistics
import sys
import time

from evd.money import cost

from .bus import machine
from .procs import CpuMeter, EvdNode, Processes, cpu_seconds, log_errors, memory_mb
from .scale import commit, uncommitted
from .support import (
    TansuBroker,
    check_bootstrap,
    make_transport,
    new_prefix,
    percentile,
    precompile_evd,
    progress,
    run_and_report,
    working_directory,
)

try:  # central hands each CP a key; the engines' telemetry is sealed with it
    from evd.plugins import crypto
except ImportError:
    crypto = None

PRICE = 0.5
ROLES = ("central", "engine", "monitor", "driver")
SAMPLE_EVERY = 1.0  # seconds between RSS samples and progress lines
START_BATCH = 25  # processes started before the bench lets them import (a fork storm slows every one)

TARGETS = {
    "ready_s": ("<=", 10, "every CP ACTIVE within 10 s of the first monitor's start"),
    "idle_engine": ("<=", 0.2, "an idle engine uses at most 0.2 % of a core"),
    "idle_monitor": ("<=", 0.2, "an idle monitor uses at most 0.2 % of a core"),
    "idle_driver": ("<=", 0.2, "an idle driver uses at most 0.2 % of a core"),
    "idle_central": ("<=", 1.0, "an idle central uses at most 1 % of a core"),
    "broker_idle": ("<=", 10, "the broker uses at most 10 % of a core with the fleet idle"),
    "rss_small": ("<=", 35, "an engine, monitor or driver stays within 35 MB RSS"),
    "lag_ms_p99": ("<", 1000, "central's telemetry lag p99 under 1 s"),
    "auth_ms_p99": ("<", 100, "authorisation p99 under 100 ms"),
    "tickets_wrong": ("==", 0, "every ticket exact"),
    "lost": ("==", 0, "nothing lost"),
}


class PhaseError(Exception):
    pass


def parse_ts(text):
    return datetime.datetime.fromisoformat(text).timestamp()


def ms(seconds):
    return round(seconds * 1000, 1) if seconds is not None else None


def port_block(count):
    """``count`` loopback ports below the ephemeral range (a port picked there may be taken by an
    outgoing connection before its engine binds it), each free when handed out."""
    low, _high = (int(n) for n in pathlib.Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split())
    ports, candidate = [], max(1024, low - 12_000)
    while len(ports) < count and candidate < low:
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", candidate))
                ports.append(candidate)
            except OSError:
                pass
        candidate += 1
    if len(ports) < count:
        raise RuntimeError(f"only {len(ports)} free ports below {low}")
    return ports


class Topology:
    """The fleet's processes: their configs under ``root`` and their role."""

    def __init__(self, args, root, transport, processes):
        self.args, self.root, self.transport, self.processes = args, root, transport, processes
        ports = iter(port_block(args.cps + 1))
        self.central_port = next(ports)
        self.central = self._node(
            "central", "central", {"listen": f"127.0.0.1:{self.central_port}", "database": str(root / "state" / "central.db")}
        )
        self.cp_ids = [f"CP{i:04d}" for i in range(1, args.cps + 1)]
        self.engines, self.monitors = [], []
        for cp_id in self.cp_ids:
            port = next(ports)
            engine = {"listen": f"127.0.0.1:{port}", "auto_plug": True, "journal": str(root / "state" / f"engine-{cp_id}.journal")}
            self.engines.append(self._node(f"engine-{cp_id}", "engine", engine))
            monitor = {
                "cp_id": cp_id,
                "engine": f"127.0.0.1:{port}",
                "central": f"127.0.0.1:{self.central_port}",
                "location": f"Bay {cp_id}",
                "price": PRICE,
                "city": "Alicante",
                "credential_file": str(root / "state" / f"{cp_id}.cred"),
            }
            self.monitors.append(self._node(f"monitor-{cp_id}", "monitor", monitor))
        self.drivers = [self._node(f"driver-D{i:04d}", "driver", {"id": f"D{i:04d}"}) for i in range(1, args.drivers + 1)]
        self.role_of = {}

    def _node(self, name, role, section):
        config = {"role": role, "log": {"level": self.args.log_level}, role: section}
        if role != "monitor":  # monitors talk TCP only
            config["transport"] = self.transport
        node = EvdNode(self.root, name, config, self.processes)
        node.role = role
        if role != "central":
            node.nice = self.args.cp_nice
        return node

    def all(self):
        return [self.central, *self.engines, *self.monitors, *self.drivers]

    def alive(self):
        return [node for node in self.all() if node.alive()]


def start_in_batches(nodes):
    """Start ``nodes``, letting each batch of START_BATCH answer its control socket before the next."""
    for first in range(0, len(nodes), START_BATCH):
        batch = nodes[first : first + START_BATCH]
        for node in batch:
            node.start()
        for node in batch:
            node.wait_ready(120)


class Observer:
    """The bench's own live view of the stream: requests, central's events and the engines' telemetry."""

    def __init__(self, kind, prefix, where):
        self.bus = make_transport(kind, prefix, name="bench-observer", **where)
        self.requests = {}  # request id -> (driver, cp, kwh, published ts)
        self.authorized = {}  # request id -> when it reached us
        self.denied = {}  # request id -> reason
        self.progress_seen = {}  # (session, seq) -> when central's progress event reached us
        self.tickets = {}  # session -> ticket
        self.sealed = []  # the engines' records, opened at the end
        self.duplicate_events = 0

    async def start(self):
        # Eager: the measuring consumer must add no wait of its own.
        self.bus.subscribe("driver.requests", self.on_request, eager=True)
        self.bus.subscribe("driver.events", self.on_event, eager=True)
        self.bus.subscribe("cp.telemetry", self.on_telemetry, eager=True)
        await self.bus.start()

    def on_request(self, message, key):
        if message.get("type") == "request":
            self.requests[message["id"]] = (message["driver"], message["cp"], message["kwh"], parse_ts(message["ts"]))

    def on_event(self, message, key):
        now, kind = time.time(), message.get("type")
        if kind == "authorized":
            self.authorized.setdefault(message["request_id"], now)
        elif kind == "denied":
            self.denied[message["request_id"]] = message.get("reason")
        elif kind == "progress":
            if (message["session"], message["seq"]) in self.progress_seen:
                self.duplicate_events += 1
            self.progress_seen.setdefault((message["session"], message["seq"]), now)
        elif kind == "ticket":
            self.tickets[message["session"]] = message

    def on_telemetry(self, message, key):
        self.sealed.append((key, message))

    def opened_telemetry(self, keys):
        """The engines' progress records as {(session, seq): published ts}; records that do not open are skipped."""
        out = {}
        for cp_id, message in self.sealed:
            if message.get("type") == "sealed":
                if crypto is None or cp_id not in keys:
                    continue
                try:
                    message = crypto.unseal(keys[cp_id], "cp.telemetry", cp_id, message)
                except Exception:
                    continue
            if message.get("type") == "progress":
                out.setdefault((message["session"], message["seq"]), parse_ts(message["ts"]))
        return out


class Meters:
    """CPU between two marks and peak RSS of every process of the fleet (and the broker)."""

    def __init__(self, nodes, broker_pid):
        self.nodes, self.broker_pid = nodes, broker_pid
        self.rss = collections.defaultdict(float)  # pid -> highest RSS seen
        self.mark()

    def mark(self):
        self.cpu = {node.pid: CpuMeter(node.pid) for node in self.nodes}
        self.broker = CpuMeter(self.broker_pid) if self.broker_pid else None

    def sample_rss(self):
        for node in self.nodes:
            rss, _ = memory_mb(node.pid)
            if rss is not None:
                self.rss[node.pid] = max(self.rss[node.pid], rss)

    def cpu_by_role(self):
        values = collections.defaultdict(list)
        for node in self.nodes:
            percent = self.cpu[node.pid].percent()
            if percent is not None:
                values[node.role].append(percent)
        return {role: summary(values[role]) for role in ROLES if values[role]}

    def rss_by_role(self):
        values = collections.defaultdict(list)
        for node in self.nodes:
            if node.pid in self.rss:
                values[node.role].append(self.rss[node.pid])
        return {
            role: {"max": round(max(values[role]), 1), "mean": round(statistics.fmean(values[role]), 1)} for role in ROLES if values[role]
        }


def start_cpu_by_role(topology):
    """CPU seconds each process has used since it started (mean and max by role): what start-up costs."""
    values = collections.defaultdict(list)
    for node in topology.all():
        used = cpu_seconds(node.pid) if node.alive() else None
        if used is not None:
            values[node.role].append(used)
    return {role: summary(values[role]) for role in ROLES if values[role]}


def summary(values):
    return {"mean": round(statistics.fmean(values), 2), "max": round(max(values), 2), "count": len(values)}


async def wait_until(what, predicate, timeout, interval=0.25):
    deadline = time.monotonic() + timeout
    while not await predicate():
        if time.monotonic() > deadline:
            raise PhaseError(f"{what} did not happen within {timeout:g}s")
        await asyncio.sleep(interval)


async def call(pool, node, command, args=None, timeout=10.0):
    return await asyncio.get_running_loop().run_in_executor(pool, lambda: node.call(command, args, timeout=timeout))


async def measure_window(meters, seconds, label):
    """Sample RSS every second for ``seconds``; returns CPU by role (and the broker's) over the window."""
    meters.mark()
    ends = time.monotonic() + seconds
    while (left := ends - time.monotonic()) > 0:
        await asyncio.sleep(min(SAMPLE_EVERY, left))
        meters.sample_rss()
    by_role = meters.cpu_by_role()
    broker = meters.broker.percent() if meters.broker else None
    progress(f"  {label}: " + " · ".join(f"{role} {v['mean']}% (max {v['max']}%)" for role, v in by_role.items()) + f" · broker {broker}%")
    return by_role, broker


async def drive_driver(pool, node, cp_id, args, stop_at, outcomes):
    """One driver asking for supplies at ``cp_id`` until ``stop_at``, each to its ticket."""
    while time.monotonic() < stop_at:
        try:
            ticket = await call(pool, node, "driver.request", {"cp": cp_id, "kwh": args.kwh, "wait": True}, timeout=60 + args.kwh * 2)
            outcomes[ticket.get("status", "?")] += 1
        except Exception as e:
            outcomes[type(e).__name__] += 1
        await asyncio.sleep(args.pause)


async def drive(args, report, topology, observer, where, broker_pid):
    pool = concurrent.futures.ThreadPoolExecutor(max_workers=max(8, args.drivers + 4))
    central = topology.central

    async def every_cp_active():
        cps = await call(pool, central, "cp.list")
        return sum(1 for cp in cps if cp["state"] == "ACTIVE") == args.cps

    progress(f"  starting {args.cps} engines")
    await asyncio.get_running_loop().run_in_executor(pool, start_in_batches, topology.engines)
    progress(f"  starting {args.cps} monitors")
    started = time.monotonic()
    await asyncio.get_running_loop().run_in_executor(pool, start_in_batches, topology.monitors)
    # How much of ready_s is starting the processes (each batch answering its control socket).
    report["monitors_started_s"] = round(time.monotonic() - started, 2)
    await wait_until("every CP ACTIVE", every_cp_active, args.ready_timeout)
    report["ready_s"] = round(time.monotonic() - started, 2)
    report["start_cpu_s"] = start_cpu_by_role(topology)
    progress(f"  every CP ACTIVE {report['ready_s']} s after the first monitor started (all started at {report['monitors_started_s']} s)")

    progress(f"  starting {args.drivers} drivers")
    await asyncio.get_running_loop().run_in_executor(pool, start_in_batches, topology.drivers)

    async def drivers_see_central():
        statuses = await asyncio.gather(*(call(pool, d, "status") for d in topology.drivers))
        return all(s["central_reachable"] and s["transport"]["ready"] for s in statuses)

    started = time.monotonic()
    try:
        await wait_until("every driver to see central", drivers_see_central, args.ready_timeout)
    except PhaseError as e:  # measure the rest all the same: the idle and busy figures still tell
        report["errors"].append(str(e))
        progress(f"  error: {e}; going on")
    report["drivers_ready_s"] = round(time.monotonic() - started, 2)
    meters = Meters(topology.alive(), broker_pid)
    await asyncio.sleep(args.settle)
    report["idle_cpu_pct"], report["broker_cpu_pct_idle"] = await measure_window(meters, args.idle_seconds, "idle")

    await observer.start()  # after the idle window: its own fetches would count as the broker's idle load
    await asyncio.sleep(1)  # a live view starts at the stream's end: let it take its positions first
    outcomes = collections.Counter()
    stop_at = time.monotonic() + args.seconds
    tasks = [
        asyncio.create_task(drive_driver(pool, d, topology.cp_ids[i % args.cps], args, stop_at, outcomes))
        for i, d in enumerate(topology.drivers)
    ]
    report["busy_cpu_pct"], report["broker_cpu_pct_busy"] = await measure_window(meters, args.seconds, "busy")
    progress("  drain: every supply to its ticket")
    _done, pending = await asyncio.wait(tasks, timeout=args.kwh * 2 + 60)
    for task in pending:
        task.cancel()
    report["outcomes"] = dict(outcomes)
    report["rss_mb"] = meters.rss_by_role()
    await asyncio.sleep(1)  # the last events on their way to the observer
    await observer.bus.stop()
    pool.shutdown(wait=False, cancel_futures=True)


def central_sessions(db_path):
    db = sqlite3.connect(f"file:{db_path}?mode=ro", uri=True, timeout=10)
    try:
        db.row_factory = sqlite3.Row
        sessions = {row["id"]: dict(row) for row in db.execute("SELECT * FROM sessions")}
        try:
            keys = {row["cp"]: row["key"] for row in db.execute("SELECT cp, key FROM cp_keys WHERE revoked_at IS NULL")}
        except sqlite3.Error:
            keys = {}
        return sessions, keys
    finally:
        db.close()


def analyse(report, observer, db_path):
    sessions, keys = central_sessions(db_path)
    auth = sorted(observer.authorized[rid] - ts for rid, (_, _, _, ts) in observer.requests.items() if rid in observer.authorized)
    report["requests"] = len(observer.requests)
    report["authorized"] = len(auth)
    report["denied"] = len(observer.denied)
    report["auth_ms_p50"] = ms(percentile(auth, 0.5))
    report["auth_ms_p99"] = ms(percentile(auth, 0.99))
    report["auth_ms_max"] = ms(auth[-1] if auth else None)

    published = observer.opened_telemetry(keys)
    lags = sorted(observer.progress_seen[k] - ts for k, ts in published.items() if k in observer.progress_seen)
    report["progress_records"] = len(published)
    report["lag_ms_p50"] = ms(percentile(lags, 0.5))
    report["lag_ms_p99"] = ms(percentile(lags, 0.99))
    report["lag_ms_max"] = ms(lags[-1] if lags else None)

    wrong, interrupted = [], []
    by_request = {s["request_id"]: s for s in sessions.values()}
    for session_id, ticket in observer.tickets.items():
        row = sessions.get(session_id)
        problem = None
        if row is None:
            problem = "not in central's database"
        elif (ticket["kwh"], ticket["eur"], ticket["status"]) != (row["kwh"], row["eur"], row["status"]):
            problem = (
                f"ticket {ticket['kwh']} kWh {ticket['eur']} EUR {ticket['status']} vs central {row['kwh']} {row['eur']} {row['status']}"
            )
        elif abs(ticket["eur"] - cost(ticket["kwh"], row["price"])) > 1e-9:
            problem = f"{ticket['eur']} EUR for {ticket['kwh']} kWh at {row['price']}"
        elif ticket["status"] == "COMPLETED" and abs(ticket["kwh"] - row["kwh_requested"]) > 1e-9:
            problem = f"COMPLETED at {ticket['kwh']} of {row['kwh_requested']} kWh"
        elif ticket["status"] != "COMPLETED":  # billed as central recorded it, but not what was asked
            interrupted.append(
                f"{session_id}: {ticket['status']} at {ticket['kwh']} of {row['kwh_requested']} kWh ({ticket.get('reason')})"
            )
        if problem:
            wrong.append(f"{session_id}: {problem}")
    report["tickets"] = len(observer.tickets)
    report["tickets_wrong"] = len(wrong)
    report["tickets_wrong_examples"] = wrong[:5]
    report["supplies_interrupted"] = len(interrupted)
    report["supplies_interrupted_examples"] = interrupted[:5]
    unanswered = [
        rid
        for rid in observer.requests
        if rid not in observer.denied and not (rid in by_request and by_request[rid]["id"] in observer.tickets)
    ]
    unacknowledged = [k for k in published if k not in observer.progress_seen]
    # Records an engine sent after central ended its session (a fault, a stop) are not applied: not lost.
    after_end = [k for k in unacknowledged if sessions.get(k[0], {}).get("status") == "INTERRUPTED"]
    unacknowledged = [k for k in unacknowledged if k not in after_end]
    report["requests_without_outcome"] = len(unanswered)
    report["progress_after_end"] = len(after_end)
    report["progress_unacknowledged"] = len(unacknowledged)
    report["duplicate_progress_events"] = observer.duplicate_events
    report["lost"] = len(unanswered) + len(unacknowledged)


def judge(report):
    idle, rss = report.get("idle_cpu_pct") or {}, report.get("rss_mb") or {}
    values = {
        "ready_s": report.get("ready_s"),
        "idle_engine": idle.get("engine", {}).get("max"),
        "idle_monitor": idle.get("monitor", {}).get("max"),
        "idle_driver": idle.get("driver", {}).get("max"),
        "idle_central": idle.get("central", {}).get("max"),
        "broker_idle": report.get("broker_cpu_pct_idle"),
        "rss_small": max((rss.get(r, {}).get("max", 0) for r in ("engine", "monitor", "driver")), default=None),
        "lag_ms_p99": report.get("lag_ms_p99"),
        "auth_ms_p99": report.get("auth_ms_p99"),
        "tickets_wrong": report.get("tickets_wrong"),
        "lost": report.get("lost"),
    }
    out = {}
    for name, (op, bound, text) in TARGETS.items():
        value = values[name]
        met = None if value is None else (value <= bound if op == "<=" else value < bound if op == "<" else value == bound)
        out[name] = {"target": text, "value": value, "met": met}
    return out


def run(args, stack):
    root = working_directory(args, stack, "evd-fleet-")
    precompile_evd()
    for sub in ("run", "log", "state"):
        (root / sub).mkdir(exist_ok=True)
    os.environ["EVD_SITE_CONFIG"] = ""  # no /etc/evcharging/evd.yaml under the fleet's own configs
    processes = Processes()
    stack.callback(processes.kill_all)
    report = {
        "bench": "fleet",
        "cps": args.cps,
        "drivers": args.drivers,
        "transport": args.transport,
        "seconds": args.seconds,
        "idle_seconds": args.idle_seconds,
        "kwh": args.kwh,
        "cp_nice": args.cp_nice,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "commit": commit(),
        "evd_uncommitted": uncommitted(),
        "machine": machine(),
        "errors": [],
    }
    prefix = new_prefix()
    transport = {"kind": args.transport, "topic_prefix": prefix, **dict(option.split("=", 1) for option in args.transport_option)}
    broker_pid = None
    if args.transport != "local":
        if args.bootstrap:
            where = {"bootstrap": args.bootstrap}
        else:
            broker = processes.add(TansuBroker(log_path=root / "log" / "tansu.log"))
            broker.start()
            broker_pid, where = broker.pid, {"bootstrap": broker.bootstrap}
        report["broker"] = args.bootstrap or f"tansu on {where['bootstrap']} (memory storage, started here)"
        transport["bootstrap"] = where["bootstrap"]
    else:
        where = {"path": root / "state" / "bus.db"}
        transport["path"] = str(where["path"])
    topology = Topology(args, root, transport, processes)
    progress(
        f"fleet: {args.cps} CPs, {args.drivers} drivers on {args.transport}; {len(topology.all())} evd processes, logs in {root / 'log'}"
    )
    topology.central.start().wait_ready(60)
    # On either Kafka client the bench measures with the same one (kafka-python), so that runs compare.
    observer = Observer("local" if args.transport == "local" else "kafka", prefix, where)
    try:
        asyncio.run(drive(args, report, topology, observer, where, broker_pid))
    except PhaseError as e:
        report["errors"].append(str(e))
        progress(f"  error: {e}")
    try:
        analyse(report, observer, root / "state" / "central.db")
    except Exception as e:
        report["errors"].append(f"analysis: {type(e).__name__}: {e}")
    dead = [node.name for node in topology.all() if node.proc is not None and not node.alive()]
    if dead:
        report["errors"].append(f"{len(dead)} process(es) died: {', '.join(dead[:10])}")
    report["central_log_errors"] = log_errors(topology.central.log_tail(10**8))
    report["targets"] = judge(report)
    return report


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m bench fleet", description=__doc__.split("\n")[0])
    parser.add_argument("--cps", type=int, default=10, help="charging points: an engine and a monitor process each (default 10)")
    parser.add_argument("--drivers", type=int, help="driver processes (default: as many as CPs)")
    parser.add_argument(
        "--transport",
        choices=("local", "kafka", "rdkafka"),
        default="kafka",
        help="the daemons' transport; kafka and rdkafka (librdkafka, the optional extra) use tansu unless --bootstrap",
    )
    parser.add_argument("--seconds", type=float, default=30.0, help="length of the busy window (default 30)")
    parser.add_argument("--idle-seconds", type=float, default=20.0, help="length of the idle window (default 20)")
    parser.add_argument("--settle", type=float, default=5.0, help="seconds between the drivers' start and the idle window (default 5)")
    parser.add_argument("--kwh", type=float, default=5.0, help="energy per request; 1 kWh a second (default 5)")
    parser.add_argument("--pause", type=float, default=1.0, help="seconds a driver waits after each ticket (default 1)")
    parser.add_argument("--ready-timeout", type=float, default=180.0, help="seconds allowed for every CP to become ACTIVE")
    parser.add_argument(
        "--cp-nice",
        type=int,
        default=0,
        help="nice value of the engines, monitors and drivers (default 0: everything alike); on one machine they stand for the"
        " CP and driver machines of the assignment, and a positive value gives central and the broker the CPU first",
    )
    parser.add_argument("--bootstrap", help="a loopback Kafka-protocol broker to use instead of starting tansu")
    parser.add_argument(
        "--transport-option",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="one more key of every daemon's transport section (repeatable)",
    )
    parser.add_argument("--log-level", default="warning", choices=("debug", "info", "warning", "error"), help="the daemons' log level")
    parser.add_argument("--out", help="also write the JSON document to this file")
    parser.add_argument("--keep", action="store_true", help="keep the working directory (configs, logs, databases)")
    args = parser.parse_args(argv)
    args.drivers = args.cps if args.drivers is None else args.drivers
    if args.cps < 1 or args.drivers < 0 or args.seconds <= 0 or args.idle_seconds <= 0 or args.kwh <= 0:
        parser.error("--cps, --seconds, --idle-seconds and --kwh must be positive, --drivers not negative")
    return check_bootstrap(parser, args)


def main(argv=None):
    return run_and_report(parse_args(argv), run)


if __name__ == "__main__":
    sys.exit(main())
