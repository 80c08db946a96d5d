"""Scripted faults against a network of real evd processes, with measured outcomes.

    python -m bench faults [--cps N] [--drivers M] [--transport local|kafka] [--out FILE]

Central, N engine+monitor pairs (``check_interval`` 1 s, engines plug in by themselves) and
M drivers run as real ``evd run`` processes in a temporary directory. In order:

- engine SIGKILL, one CP at a time (drivers' supplies running on the first M): time until
  central's ``cp.list`` shows the CP BROKEN (``fault_detect_ms_*``); the engine is restarted;
- engine SIGSTOP (a hung engine, idle CPs): time until BROKEN, and back to ACTIVE after SIGCONT;
- monitor SIGKILL, one CP at a time: time until DISCONNECTED; the monitor is restarted;
- monitor SIGSTOP: time until central's heartbeat timeout shows it DISCONNECTED;
- central SIGKILL in the middle of M supplies, restarted 2 s later: ``recovery_s`` until every
  CP shows its real state again; each of those supplies must end with exactly one ticket;
- broker SIGSTOP for 10 s during M supplies (Kafka only): time until telemetry flows again;
- a garbage flood on central's TCP port: central's RSS before and after, whether it kept
  answering and whether any CP changed state;
- an audit of the whole run: every session has exactly one ticket in its driver's history,
  whose energy is central's and the energy the engine reported delivering (its ``ended``
  record on the stream).

Prints one JSON document on stdout (and to ``--out``); progress on stderr. Every process
started here is killed at the end, on Ctrl-C and on errors.
"""

import argparse
import collections
import contextlib
import datetime
import random
import signal
import socket
import sqlite3
import sys
import threading
import time

from evd import framing, messages
from evd.client import ControlClient
from evd.errors import EvdError

from .bus import machine
from .procs import EvdNode, Processes, decode_all, log_errors, memory_mb, read_topic_kafka, read_topic_local
from .scale import commit, uncommitted
from .support import TansuBroker, check_bootstrap, free_port, new_prefix, percentile, progress, run_and_report, working_directory

try:  # R20: engine records may be sealed with per-CP keys that central keeps in its database
    from evd.plugins import crypto
except ImportError:
    crypto = None

POLL = 0.02  # seconds between looks at central's CP list while timing a fault
DETECT_TIMEOUT = 15.0
PRICE = 0.5


def ms(seconds):
    return round(seconds * 1000, 1) if seconds is not None else None


def spread(samples):
    """p50/p99/max in ms of the samples (seconds) that were measured."""
    values = sorted(s for s in samples if s is not None)
    return {
        "samples": len(samples),
        "missed": sum(1 for s in samples if s is None),
        "ms_p50": ms(percentile(values, 0.50)),
        "ms_p99": ms(percentile(values, 0.99)),
        "ms_max": ms(values[-1]) if values else None,
    }


class Watch:
    """A control connection to central kept open for fast polling; reconnects after central restarts."""

    def __init__(self, node):
        self.node = node
        self.client = None

    def call(self, command, args=None, timeout=5.0):
        for _attempt in range(2):
            try:
                if self.client is None:
                    self.client = ControlClient(self.node.socket, timeout=timeout)
                return self.client.call(command, args, timeout=timeout)
            except (EvdError, OSError, ValueError):
                self.close()
        return None

    def cps(self):
        tiles = self.call("cp.list")
        return {t["id"]: t for t in tiles} if tiles else {}

    def close(self):
        if self.client is not None:
            with contextlib.suppress(Exception):
                self.client.close()
            self.client = None


def time_until(predicate, timeout, interval=POLL, since=None):
    """Seconds (from ``since``, default now) until ``predicate()`` holds, or None after ``timeout``."""
    started = time.monotonic() if since is None else since
    while True:
        try:
            if predicate():
                return time.monotonic() - started
        except Exception:  # not checkable yet (a daemon restarting)
            pass
        if time.monotonic() - started > timeout:
            return None
        time.sleep(interval)


class Network:
    def __init__(self, root, args, where, processes):
        self.root = root
        self.args = args
        self.processes = processes
        self.prefix = new_prefix()
        transport = {"kind": args.transport, "topic_prefix": self.prefix}
        if args.transport == "kafka":
            transport.update(bootstrap=where["bootstrap"])
        else:
            transport["path"] = str(where["path"])
        self.where = where
        self.central_port = free_port()
        common = {"transport": transport, "log": {"level": "info"}}
        state = root / "state"
        self.central = EvdNode(
            root,
            "central",
            {
                **common,
                "role": "central",
                "central": {
                    "listen": f"127.0.0.1:{self.central_port}",
                    "database": str(state / "central.db"),
                    "heartbeat_timeout": args.heartbeat_timeout,
                },
            },
            processes,
        )
        self.cp_ids = [f"F{n:03d}" for n in range(1, args.cps + 1)]
        self.engines, self.monitors = {}, {}
        for cp_id in self.cp_ids:
            port = free_port()
            self.engines[cp_id] = EvdNode(
                root,
                f"engine-{cp_id}",
                {
                    **common,
                    "role": "engine",
                    "engine": {
                        "listen": f"127.0.0.1:{port}",
                        "tick": "1s",
                        "kwh_per_tick": 1.0,
                        "auto_plug": True,
                        "journal": str(state / f"engine-{cp_id}.journal"),
                    },
                },
                processes,
            )
            self.monitors[cp_id] = EvdNode(
                root,
                f"monitor-{cp_id}",
                {
                    **common,
                    "role": "monitor",
                    "monitor": {
                        "cp_id": cp_id,
                        "engine": f"127.0.0.1:{port}",
                        "central": f"127.0.0.1:{self.central_port}",
                        "location": f"Fault bay {cp_id}",
                        "price": PRICE,
                        "city": "Benchville",
                        "check_interval": "1s",
                    },
                },
                processes,
            )
        self.driver_ids = [f"FD{n}" for n in range(1, args.drivers + 1)]
        self.drivers = {
            d: EvdNode(root, f"driver-{d}", {**common, "role": "driver", "driver": {"id": d}}, processes) for d in self.driver_ids
        }
        self.watch = Watch(self.central)

    def nodes(self):
        return [self.central, *self.engines.values(), *self.monitors.values(), *self.drivers.values()]

    def start_all(self, timeout):
        for node in self.nodes():
            node.start()
        deadline = time.monotonic() + timeout
        for node in self.nodes():
            node.wait_ready(max(1.0, deadline - time.monotonic()))

    def states(self):
        return {cp_id: tile["state"] for cp_id, tile in self.watch.cps().items()}

    def state_of(self, cp_id):
        return self.states().get(cp_id)

    def wait_states(self, wanted, timeout):
        """Seconds until every CP in ``wanted`` (id -> state) shows that state, or None."""
        return time_until(lambda: all(self.states().get(i) == s for i, s in wanted.items()), timeout, interval=0.1)

    def all_active(self, timeout):
        return self.wait_states(dict.fromkeys(self.cp_ids, "ACTIVE"), timeout)

    def request(self, driver_id, cp_id, kwh):
        return self.drivers[driver_id].call("driver.request", {"cp": cp_id, "kwh": kwh})

    def start_supplies(self, kwh, cps=None):
        """Each driver asks for a supply at its own CP; returns {cp: driver} once all are supplying."""
        cps = cps or self.cp_ids[: len(self.driver_ids)]
        pairs = dict(zip(cps, self.driver_ids, strict=False))
        for cp_id, driver_id in pairs.items():
            self.request(driver_id, cp_id, kwh)
        supplying = time_until(
            lambda: all((t := self.watch.cps().get(c)) and t["state"] == "SUPPLYING" and (t["kwh"] or 0) >= 1 for c in pairs),
            30,
            interval=0.1,
        )
        if supplying is None:
            raise RuntimeError(f"supplies did not start within 30s: {self.states()}")
        return pairs

    def unplug_all(self):
        """End every supply still running at an engine (a COMPLETED ticket each)."""
        ended = 0
        for engine in self.engines.values():
            with contextlib.suppress(EvdError, OSError, ValueError):
                if engine.alive() and engine.call("status").get("supply"):
                    engine.call("engine.unplug")
                    ended += 1
        return ended

    def histories(self):
        tickets = []
        for node in self.drivers.values():
            with contextlib.suppress(EvdError, OSError, ValueError):
                tickets += node.call("driver.history")
        return tickets

    def read_stream(self, topic):
        """Every message on ``topic``; sealed ones opened with central's keys for their CP."""
        name = f"{self.prefix}.{topic}"
        if self.args.transport == "kafka":
            rows, _ = read_topic_kafka(self.where["bootstrap"], name)
        else:
            rows, _ = read_topic_local(self.where["path"], name)
        keys = self.cp_keys()
        out = []
        for message in decode_all(rows):
            if message.get("type") == "sealed":
                key = keys.get(message.get("cp"))
                if not (crypto and key):
                    out.append({"type": "unopened", "cp": message.get("cp")})
                    continue
                try:
                    message = crypto.unseal(key, topic, message["cp"], message)
                except messages.MalformedMessage:
                    message = {"type": "unopened", "cp": message.get("cp")}
            out.append(message)
        return out

    def cp_keys(self):
        try:
            db = sqlite3.connect(f"file:{self.root / 'state' / 'central.db'}?mode=ro", uri=True, timeout=10)
        except sqlite3.Error:
            return {}
        try:
            return dict(db.execute("SELECT cp, key FROM cp_keys").fetchall())
        except sqlite3.Error:
            return {}
        finally:
            db.close()


# -- the faults -------------------------------------------------------------------------------------


def engine_kill(net, report):
    progress("engine SIGKILL → BROKEN, one CP at a time (supplies running on the first CPs)")
    net.start_supplies(kwh=60)
    samples = []
    for cp_id in net.cp_ids:
        engine = net.engines[cp_id]
        killed = time.monotonic()
        engine.signal(signal.SIGKILL)
        samples.append(time_until(lambda c=cp_id: net.state_of(c) == "BROKEN", DETECT_TIMEOUT, since=killed))
        engine.kill()  # reaped
        engine.start()
    back = net.all_active(120)
    result = spread(samples) | {"restart_to_all_active_s": round(back, 2) if back is not None else None}
    report["engine_kill"] = result
    report["fault_detect_ms_p50"], report["fault_detect_ms_p99"] = result["ms_p50"], result["ms_p99"]
    progress(f"  BROKEN after {result['ms_p50']} ms (p50), {result['ms_p99']} ms (p99); all ACTIVE again after {back and round(back, 1)} s")
    if back is None:
        raise RuntimeError(f"CPs not ACTIVE again after the engine restarts: {net.states()}")


def engine_hang(net, report, count):
    progress(f"engine SIGSTOP (hung engine) → BROKEN, {count} CPs")
    samples, recoveries = [], []
    for cp_id in net.cp_ids[-count:]:
        engine = net.engines[cp_id]
        stopped = time.monotonic()
        engine.signal(signal.SIGSTOP)
        try:
            samples.append(time_until(lambda c=cp_id: net.state_of(c) == "BROKEN", DETECT_TIMEOUT, since=stopped))
        finally:
            engine.signal(signal.SIGCONT)
        recoveries.append(time_until(lambda c=cp_id: net.state_of(c) == "ACTIVE", DETECT_TIMEOUT))
    result = spread(samples) | {"back_to_active_after_sigcont": spread(recoveries)}
    report["engine_hang"] = result
    progress(
        f"  BROKEN after {result['ms_p50']} ms (p50); ACTIVE again {result['back_to_active_after_sigcont']['ms_p50']} ms after SIGCONT"
    )


def monitor_kill(net, report):
    progress("monitor SIGKILL → DISCONNECTED, one CP at a time")
    samples = []
    for cp_id in net.cp_ids:
        monitor = net.monitors[cp_id]
        killed = time.monotonic()
        monitor.signal(signal.SIGKILL)
        samples.append(time_until(lambda c=cp_id: net.state_of(c) == "DISCONNECTED", DETECT_TIMEOUT, since=killed))
        monitor.kill()  # reaped
        monitor.start()
    back = net.all_active(120)
    result = spread(samples) | {"restart_to_all_active_s": round(back, 2) if back is not None else None}
    report["monitor_kill"] = result
    report["monitor_detect_ms_p50"], report["monitor_detect_ms_p99"] = result["ms_p50"], result["ms_p99"]
    progress(
        f"  DISCONNECTED after {result['ms_p50']} ms (p50), {result['ms_p99']} ms (p99); all ACTIVE again after {back and round(back, 1)} s"
    )
    if back is None:
        raise RuntimeError(f"CPs not ACTIVE again after the monitor restarts: {net.states()}")


def monitor_hang(net, report, count):
    progress(f"monitor SIGSTOP (hung monitor) → DISCONNECTED by heartbeat timeout, {count} CPs")
    samples, recoveries = [], []
    for cp_id in net.cp_ids[:count]:
        monitor = net.monitors[cp_id]
        stopped = time.monotonic()
        monitor.signal(signal.SIGSTOP)
        try:
            samples.append(time_until(lambda c=cp_id: net.state_of(c) == "DISCONNECTED", DETECT_TIMEOUT, since=stopped))
        finally:
            monitor.signal(signal.SIGCONT)
        recoveries.append(time_until(lambda c=cp_id: net.state_of(c) == "ACTIVE", 30))
    result = spread(samples) | {"heartbeat_timeout": net.args.heartbeat_timeout, "back_to_active_after_sigcont": spread(recoveries)}
    report["monitor_hang"] = result
    progress(
        f"  DISCONNECTED after {result['ms_p50']} ms (p50); ACTIVE again {result['back_to_active_after_sigcont']['ms_p50']} ms after SIGCONT"
    )


def session_tickets(net, pairs, before, timeout=60):
    """Wait until each driver of ``pairs`` has one ticket more than ``before``; lost and duplicated tickets."""
    wanted = {d: before.get(d, 0) + 1 for d in pairs.values()}

    def counts():
        return collections.Counter(t["driver"] for t in net.histories())

    time_until(lambda: all(counts()[d] >= n for d, n in wanted.items()), timeout, interval=0.2)
    now = counts()
    lost = sum(max(0, n - now[d]) for d, n in wanted.items())
    duplicated = sum(max(0, now[d] - n) for d, n in wanted.items())
    return lost, duplicated


def central_kill(net, report, down_s):
    progress("central SIGKILL during supplies, restarted after a pause")
    before = collections.Counter(t["driver"] for t in net.histories())
    pairs = net.start_supplies(kwh=60)
    kwh_before = {c: net.watch.cps()[c]["kwh"] for c in pairs}
    net.central.kill()
    net.watch.close()
    killed = time.monotonic()
    time.sleep(down_s)
    net.central.start()
    restarted = time.monotonic()
    net.central.wait_ready(60)
    ready = time.monotonic() - restarted
    real = {c: ("SUPPLYING" if c in pairs else "ACTIVE") for c in net.cp_ids}
    recovered = net.wait_states(real, 60)
    recovery = time.monotonic() - restarted if recovered is not None else None
    progress(f"  every CP in its real state {recovery and round(recovery, 2)} s after the restart")
    # Supplies go on at the engines while central is away: their energy must keep counting.
    flowing = time_until(
        lambda: all(((net.watch.cps().get(c) or {}).get("kwh") or 0) > (kwh_before[c] or 0) for c in pairs),
        60,
        interval=0.1,
        since=restarted,
    )
    net.unplug_all()
    lost, duplicated = session_tickets(net, pairs, before)
    result = {
        "supplies": len(pairs),
        "down_s": down_s,
        "ready_s": round(ready, 2),
        "recovery_s": round(recovery, 2) if recovery is not None else None,
        "recovery_from_kill_s": round(recovery + restarted - killed, 2) if recovery is not None else None,
        "telemetry_applied_again_s": round(flowing, 2) if flowing is not None else None,
        "tickets_lost": lost,
        "tickets_duplicated": duplicated,
        "states_now": dict(collections.Counter(net.states().values())),
    }
    report["central_kill"] = result
    report["recovery_s"] = result["recovery_s"]
    progress(f"  tickets lost {lost}, duplicated {duplicated}")


def broker_pause(net, report, broker, pause_s):
    if broker is None:
        report["broker_pause"] = {
            "skipped": "local transport (no broker)" if net.args.transport == "local" else "--bootstrap broker not ours"
        }
        return
    progress(f"broker SIGSTOP for {pause_s:g} s during supplies")
    before = collections.Counter(t["driver"] for t in net.histories())
    pairs = net.start_supplies(kwh=60)
    broker.pause()
    paused = time.monotonic()
    try:
        time.sleep(pause_s)
        during = {c: (net.watch.cps().get(c) or {}).get("kwh") for c in pairs}
        states_during = dict(collections.Counter(net.states().values()))
    finally:
        broker.resume()
    resumed = time.monotonic()
    flowing = time_until(lambda: all(((net.watch.cps().get(c) or {}).get("kwh") or 0) > (during[c] or 0) for c in pairs), 60, interval=0.1)
    connected = time_until(lambda: net.central.call("status")["transport"]["connected"], 60, interval=0.1)
    net.unplug_all()
    lost, duplicated = session_tickets(net, pairs, before)
    report["broker_pause"] = {
        "pause_s": round(resumed - paused, 2),
        "supplies": len(pairs),
        "states_during_pause": states_during,
        "telemetry_flowing_again_s": round(flowing, 2) if flowing is not None else None,
        "central_transport_connected_s": round(connected, 2) if connected is not None else None,
        "tickets_lost": lost,
        "tickets_duplicated": duplicated,
    }
    progress(f"  telemetry applied again {flowing and round(flowing, 2)} s after SIGCONT; tickets lost {lost}, duplicated {duplicated}")


def _garbage_payloads():
    rng = random.Random(7)
    junk = bytes(rng.randrange(256) for _ in range(65536))
    no_stx = bytes(b for b in junk if b not in (framing.STX, framing.ETX)) * 2
    oversized = bytes((framing.STX,)) + b"A" * (framing.MAX_DATA * 4) + bytes((framing.ETX, 0))
    bad_lrc = (bytes((framing.STX,)) + b"HB#OK#" + bytes((framing.ETX, 0x55))) * 200
    return [junk, no_stx, oversized * 8, bad_lrc]


def _flood_worker(port, deadline, payloads, totals, lock):
    index = 0
    while time.monotonic() < deadline:
        sent, hung_up = 0, False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=2) as sock:
                sock.settimeout(0.5)
                payload = payloads[index % len(payloads)]
                index += 1
                stop_at = min(deadline, time.monotonic() + 2.0)
                while time.monotonic() < stop_at and not hung_up:
                    try:
                        sock.sendall(payload)
                        sent += len(payload)
                    except (BrokenPipeError, ConnectionResetError):
                        hung_up = True
                        break
                    except TimeoutError:
                        pass
                    try:
                        while sock.recv(65536):  # NACKs
                            pass
                        hung_up = True  # end of stream: central hung up
                    except TimeoutError:
                        pass
                    except (ConnectionResetError, OSError):
                        hung_up = True
        except OSError:
            with lock:
                totals["connect_errors"] += 1
            time.sleep(0.05)
            continue
        with lock:
            totals["connections"] += 1
            totals["bytes"] += sent
            totals["hung_up_by_central"] += int(hung_up)


def garbage_flood(net, report, seconds, connections):
    progress(f"garbage flood on central's TCP port: {connections} connections for {seconds:g} s")
    pid = net.central.pid
    rss_before, _ = memory_mb(pid)
    states_before = net.states()
    totals, lock = collections.Counter(), threading.Lock()
    payloads = _garbage_payloads()
    deadline = time.monotonic() + seconds
    workers = [
        threading.Thread(target=_flood_worker, args=(net.central_port, deadline, payloads, totals, lock), daemon=True)
        for _ in range(connections)
    ]
    for w in workers:
        w.start()
    pings, changed, peak = [], set(), rss_before or 0
    while time.monotonic() < deadline:
        started = time.monotonic()
        ok = net.watch.call("ping", timeout=5.0) == "pong"
        pings.append(time.monotonic() - started if ok else None)
        for cp_id, state in net.states().items():
            if state != states_before.get(cp_id):
                changed.add(cp_id)
        peak = max(peak, memory_mb(pid)[0] or 0)
        time.sleep(0.2)
    for w in workers:
        w.join(5)
    rss_after, _ = memory_mb(pid)
    time.sleep(3)
    rss_settled, _ = memory_mb(pid)
    still = net.states()
    report["garbage_flood"] = {
        "seconds": seconds,
        "connections": totals["connections"],
        "connect_errors": totals["connect_errors"],
        "mb_sent": round(totals["bytes"] / 1e6, 1),
        "hung_up_by_central": totals["hung_up_by_central"],
        "central_alive": net.central.alive() and net.watch.call("ping") == "pong",
        "central_rss_mb_before": rss_before and round(rss_before, 1),
        "central_rss_mb_peak": round(peak, 1),
        "central_rss_mb_after": rss_after and round(rss_after, 1),
        "central_rss_mb_3s_later": rss_settled and round(rss_settled, 1),
        "ping": spread(pings),
        "cps_changed_state_during_flood": sorted(changed),
        "cps_not_active_after": sorted(c for c in net.cp_ids if still.get(c) != "ACTIVE"),
    }
    flood = report["garbage_flood"]
    progress(
        f"  {flood['connections']} connections, {flood['mb_sent']} MB; RSS {flood['central_rss_mb_before']} → {flood['central_rss_mb_after']} MB;"
        f" ping p99 {flood['ping']['ms_p99']} ms; CPs that changed state: {len(changed)}"
    )


def audit(net, report):
    """Every session has exactly one ticket; ticket kWh == central's kWh == the engine's delivered kWh."""
    progress("audit: every session, its ticket and the engine's energy")
    net.unplug_all()
    open_left = time_until(lambda: not net.central.call("sessions", {"active": True}), 30, interval=0.2)
    sessions = [s for s in net.central.call("sessions", {}, timeout=30) if s["status"] != "DENIED"]
    wanted = {s["id"] for s in sessions}
    time_until(lambda: wanted <= {t["id"] for t in net.histories()}, 30, interval=0.2)
    tickets = collections.defaultdict(list)
    for ticket in net.histories():
        tickets[ticket["id"]].append(ticket)
    ended = {}
    sent_tickets = collections.Counter()
    telemetry = net.read_stream("cp.telemetry")
    unopened = sum(1 for m in telemetry if m.get("type") == "unopened")
    for message in telemetry:
        if message.get("type") == "ended":
            previous = ended.get(message.get("session"))
            if previous is None or message.get("seq", 0) >= previous.get("seq", 0):
                ended[message.get("session")] = message
    for message in net.read_stream("driver.events"):
        if message.get("type") == "ticket":
            sent_tickets[message.get("session")] += 1
    problems = []
    lost = duplicated = 0
    for s in sessions:
        mine = tickets.get(s["id"], [])
        if not mine:
            lost += 1
            problems.append({"session": s["id"], "cp": s["cp"], "problem": "no ticket", "status": s["status"]})
            continue
        if len(mine) > 1:
            duplicated += len(mine) - 1
            problems.append({"session": s["id"], "cp": s["cp"], "problem": f"{len(mine)} tickets"})
        ticket = mine[0]
        engine = ended.get(s["id"])
        if abs(ticket["kwh"] - s["kwh"]) > 1e-9:
            problems.append(
                {
                    "session": s["id"],
                    "cp": s["cp"],
                    "problem": "ticket kWh differs from central's",
                    "ticket": ticket["kwh"],
                    "central": s["kwh"],
                }
            )
        if engine is None:
            problems.append({"session": s["id"], "cp": s["cp"], "problem": "the engine never reported the end", "central": s["kwh"]})
        elif abs(engine["kwh"] - s["kwh"]) > 1e-9:
            problems.append(
                {
                    "session": s["id"],
                    "cp": s["cp"],
                    "problem": "engine delivered a different energy",
                    "engine": engine["kwh"],
                    "central": s["kwh"],
                    "ticket_status": ticket["status"],
                    "reason": ticket["reason"],
                }
            )
    report["audit"] = {
        "sessions": len(sessions),
        "statuses": dict(collections.Counter(s["status"] for s in sessions)),
        "open_sessions_left": open_left is None,
        "tickets_lost": lost,
        "tickets_duplicated": duplicated,
        "tickets_sent_again_on_stream": sum(n - 1 for n in sent_tickets.values() if n > 1),
        "engine_records_unopened": unopened,
        "problems": problems[:20],
        "problem_count": len(problems),
        "ok": not problems and open_left is not None,
    }
    progress(f"  {len(sessions)} sessions; tickets lost {lost}, duplicated {duplicated}; {len(problems)} problem(s)")


def run(args, stack):
    root = working_directory(args, stack, "evd-faults-")
    processes = Processes()
    stack.callback(processes.kill_all)
    report = {
        "bench": "faults",
        "cps": args.cps,
        "drivers": args.drivers,
        "transport": args.transport,
        "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
        "commit": commit(),
        "evd_uncommitted": uncommitted(),
        "machine": machine(),
        "errors": [],
    }
    broker = None
    (root / "log").mkdir(exist_ok=True)
    if args.transport == "kafka":
        if args.bootstrap:
            where = {"bootstrap": args.bootstrap}
        else:
            broker = processes.add(TansuBroker(log_path=root / "log" / "tansu.log"))
            broker.start()
            where = {"bootstrap": broker.bootstrap}
    else:
        where = {"path": root / "state" / "bus.db"}
    net = Network(root, args, where, processes)
    stack.callback(net.watch.close)
    started = time.monotonic()
    progress(
        f"faults: {args.cps} CPs, {args.drivers} drivers on {args.transport}; {len(net.nodes())} evd processes, logs in {root / 'log'}"
    )
    net.start_all(timeout=60 + 3 * len(net.nodes()))
    if net.all_active(120) is None:
        raise RuntimeError(f"not every CP became ACTIVE: {net.states()}")
    report["startup_s"] = round(time.monotonic() - started, 1)
    progress(f"  every CP ACTIVE after {report['startup_s']} s")
    steps = [
        ("engine_kill", lambda: engine_kill(net, report)),
        ("engine_hang", lambda: engine_hang(net, report, min(args.hang_samples, args.cps))),
        ("monitor_kill", lambda: monitor_kill(net, report)),
        ("monitor_hang", lambda: monitor_hang(net, report, min(args.hang_samples, args.cps))),
        ("central_kill", lambda: central_kill(net, report, args.central_down)),
        ("broker_pause", lambda: broker_pause(net, report, broker, args.broker_pause)),
        ("garbage_flood", lambda: garbage_flood(net, report, args.flood_seconds, args.flood_connections)),
    ]
    for name, step in steps:
        if name in args.skip:
            report[name] = {"skipped": "--skip"}
            continue
        t = time.monotonic()
        try:
            step()
        except Exception as e:
            report["errors"].append(f"{name}: {type(e).__name__}: {e}")
            progress(f"  {name} failed: {e}")
            if not net.central.alive():
                net.central.start().wait_ready(60)
        report.setdefault("step_s", {})[name] = round(time.monotonic() - t, 1)
    try:
        audit(net, report)
    except Exception as e:
        report["errors"].append(f"audit: {type(e).__name__}: {e}")
    report["central_log_errors"] = log_errors(net.central.log_tail(10**8))
    report["total_s"] = round(time.monotonic() - started, 1)
    report["targets"] = judge(report)
    return report


def judge(report):
    audit_ = report.get("audit") or {}
    checks = {
        "tickets": ("no ticket lost or duplicated, in the audit and around the central restart", None),
        "energy": ("every ticket's kWh equals central's and the engine's", None),
        "flood": ("central survives the garbage flood, keeps answering, and no CP changes state", None),
    }
    central_kill_ = report.get("central_kill") or {}
    broker_ = report.get("broker_pause") or {}
    tickets_bad = sum(
        x.get(k) or 0 for x in (audit_, central_kill_, broker_) for k in ("tickets_lost", "tickets_duplicated") if isinstance(x, dict)
    )
    flood = report.get("garbage_flood") or {}
    values = {
        "tickets": tickets_bad if audit_ else None,
        "energy": sum(1 for p in audit_.get("problems", []) if "kWh" in p["problem"] or "energy" in p["problem"]) if audit_ else None,
        "flood": (bool(flood.get("central_alive")) and not flood.get("cps_changed_state_during_flood"))
        if "central_alive" in flood
        else None,
    }
    out = {}
    for name, (text, _) in checks.items():
        value = values[name]
        met = None if value is None else (value is True if name == "flood" else value == 0)
        out[name] = {"target": text, "value": value, "met": met}
    return out


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m bench faults", description=__doc__.split("\n")[0])
    parser.add_argument("--cps", type=int, default=20, help="engine+monitor pairs (default 20)")
    parser.add_argument("--drivers", type=int, default=None, help="drivers, each with one supply at a time (default: cps/4, at least 1)")
    parser.add_argument("--transport", choices=("local", "kafka"), default="local")
    parser.add_argument("--bootstrap", help="a loopback Kafka-protocol broker instead of starting tansu (no broker pause then)")
    parser.add_argument("--heartbeat-timeout", default="3s", help="central.heartbeat_timeout (default 3s)")
    parser.add_argument("--hang-samples", type=int, default=3, help="CPs whose engine, then monitor, is SIGSTOPped (default 3)")
    parser.add_argument("--central-down", type=float, default=2.0, help="seconds central stays dead (default 2)")
    parser.add_argument("--broker-pause", type=float, default=10.0, help="seconds the broker is stopped (default 10)")
    parser.add_argument("--flood-seconds", type=float, default=5.0, help="length of the garbage flood (default 5)")
    parser.add_argument("--flood-connections", type=int, default=8, help="garbage connections at once (default 8)")
    parser.add_argument("--skip", default="", help="comma-separated steps to skip (engine_kill, engine_hang, monitor_kill, …)")
    parser.add_argument("--out", help="also write the JSON document to this file")
    parser.add_argument("--keep", action="store_true", help="keep the working directory (configs, logs, databases)")
    args = parser.parse_args(argv)
    if args.cps < 1:
        parser.error("--cps must be at least 1")
    args.drivers = args.drivers or max(1, args.cps // 4)
    if not 1 <= args.drivers <= args.cps:
        parser.error("--drivers must be from 1 to --cps")
    args.skip = {s.strip() for s in args.skip.split(",") if s.strip()}
    return check_bootstrap(parser, args)


def main(argv=None):
    args = parse_args(argv)
    return run_and_report(
        args, run_or_report_error, failed=lambda r: r["errors"] or any(t["met"] is False for t in r.get("targets", {}).values())
    )


def run_or_report_error(args, stack):
    """``run``, or a report with its error when a process or the machine failed it."""
    try:
        return run(args, stack)
    except (RuntimeError, EvdError, OSError) as e:
        progress(f"error: {e}")
        return {"bench": "faults", "errors": [f"{type(e).__name__}: {e}"]}


if __name__ == "__main__":
    sys.exit(main())
