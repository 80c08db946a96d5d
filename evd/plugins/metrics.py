"""Prometheus metrics of central (issue 8): an optional ``/metrics`` endpoint.

Turn it on with ``metrics: {enabled: true, listen: 127.0.0.1:9464}`` in central's
configuration; it needs the ``prometheus-client`` package. It exposes:

- ``evcharging_cps{state}``: charging points by state, all five states always present;
- ``evcharging_open_sessions``: supplies authorised or running;
- ``evcharging_supplies_total{status}``: supplies ended COMPLETED or INTERRUPTED, and
  requests DENIED, since central started;
- ``evcharging_energy_kwh_total``: energy of the supplies ended since central started;
- ``evcharging_stream_records_total{kind}``: records central consumed, skipped as
  malformed and published (the transport's own counters);
- ``evcharging_request_latency_seconds``: from a request's time stamp (the clock of the
  driver or CP that sent it) to central's decision, for the requests whose audit record
  names their session (the authorised ones).

The HTTP server answers in threads of its own, so it never touches central's live state:
a task on the daemon's loop copies what it needs into an immutable snapshot every second,
and supplies are counted from ``evd_audit`` records (on the loop) into prometheus_client's
thread-safe counters. A missing package or a port in use is logged; central runs on
without metrics.
"""

import asyncio
import datetime
import logging
import os

import attrs

import evd
from evd.central import network_of
from evd.config import HostPort
from evd.pluginmanager import PerDaemon

prometheus_client = None  # the optional prometheus_client module, loaded when metrics are enabled (central only)


def _load_prometheus():
    """True when prometheus_client is importable (and imported into this module's global)."""
    global prometheus_client
    if prometheus_client is None:
        try:
            import prometheus_client as module
        except ImportError:
            return False
        prometheus_client = module
    return True


log = logging.getLogger(__name__)

REFRESH_EVERY = 1.0  # seconds between snapshots of central's state
CP_STATES = ("ACTIVE", "SUPPLYING", "STOPPED", "BROKEN", "DISCONNECTED")
SUPPLY_STATUSES = ("COMPLETED", "INTERRUPTED", "DENIED")
STREAM_KINDS = ("consumed", "malformed", "published")
_metrics = PerDaemon()  # central daemon -> its Metrics
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


@attrs.frozen
class MetricsConfig:
    enabled: bool = False
    listen: HostPort = HostPort("127.0.0.1", 9464)


@attrs.frozen
class Snapshot:
    """What the scrape threads read of central's state: built on the loop, never changed."""

    cps: tuple  # (state, count) for every state in CP_STATES
    open_sessions: int
    stream: tuple  # (kind, count) for every kind in STREAM_KINDS


class SnapshotCollector:
    """A prometheus_client collector serving the latest :class:`Snapshot` (one consistent view)."""

    def __init__(self):
        self.snapshot = None

    def collect(self):
        from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

        snapshot = self.snapshot  # one read: the loop replaces it whole
        if snapshot is None:
            return
        cps = GaugeMetricFamily("evcharging_cps", "Charging points known to central, by state.", labels=["state"])
        for state, count in snapshot.cps:
            cps.add_metric([state], count)
        yield cps
        yield GaugeMetricFamily("evcharging_open_sessions", "Supplies authorised or running.", value=snapshot.open_sessions)
        stream = CounterMetricFamily(
            "evcharging_stream_records", "Event-stream records central consumed, skipped as malformed or published.", labels=["kind"]
        )
        for kind, count in snapshot.stream:
            stream.add_metric([kind], count)
        yield stream


class Metrics:
    """One central's metrics: its registry, the audit-driven counters and the HTTP server."""

    def __init__(self):
        self.registry = prometheus_client.CollectorRegistry()
        self.collector = SnapshotCollector()
        self.registry.register(self.collector)
        self.supplies = prometheus_client.Counter(
            "evcharging_supplies",
            "Supplies ended (COMPLETED, INTERRUPTED) and requests DENIED since central started.",
            ["status"],
            registry=self.registry,
        )
        for status in SUPPLY_STATUSES:
            self.supplies.labels(status)
        self.energy = prometheus_client.Counter(
            "evcharging_energy_kwh", "kWh of the supplies ended since central started.", registry=self.registry
        )
        self.latency = prometheus_client.Histogram(
            "evcharging_request_latency_seconds",
            "Seconds from a supply request's time stamp to central's decision (authorised requests).",
            buckets=LATENCY_BUCKETS,
            registry=self.registry,
        )
        self.server = None
        self.thread = None

    # -- on the loop ----------------------------------------------------------------------

    def count(self, daemon, record):
        """Count one audit record (called on the loop, must be quick)."""
        if record.get("category") != "CHARGE":
            return
        action, outcome = record.get("action"), str(record.get("outcome") or "")
        parameters = record.get("parameters") or {}
        if action == "supply ended":
            if outcome in SUPPLY_STATUSES:
                self.supplies.labels(outcome).inc()
            kwh = parameters.get("kwh")
            if isinstance(kwh, int | float) and kwh > 0:
                self.energy.inc(kwh)
        elif action == "supply request":
            if outcome.startswith("denied"):
                self.supplies.labels("DENIED").inc()
            latency = _latency(daemon, record, parameters)
            if latency is not None:
                self.latency.observe(latency)

    def refresh(self, daemon):
        """Copy what the scrapes show of central's state into a new snapshot."""
        network = network_of(daemon)
        counts, open_sessions = network.state_counts() if network is not None else ({}, 0)
        cps = dict.fromkeys(CP_STATES, 0) | counts
        stats = daemon.bus.stats if daemon.bus is not None else {}
        self.collector.snapshot = Snapshot(
            cps=tuple(cps.items()),
            open_sessions=open_sessions,
            stream=tuple((kind, stats.get(kind, 0)) for kind in STREAM_KINDS),
        )

    async def refresher(self, daemon):
        while True:
            await asyncio.sleep(REFRESH_EVERY)
            try:
                self.refresh(daemon)
            except Exception:
                log.exception("metrics: could not take a snapshot of central's state")

    # -- the HTTP server ------------------------------------------------------------------

    def serve(self, listen):
        self.server, self.thread = prometheus_client.start_http_server(listen.port, addr=listen.host, registry=self.registry)

    def close(self):
        """Stop the HTTP server (blocks up to its poll interval: run it off the loop)."""
        if self.server is not None:
            server, self.server = self.server, None
            server.shutdown()
            server.server_close()


def _latency(daemon, record, parameters):
    """Seconds from the request's time stamp to the decision ``record``, or None if unknown."""
    requested_at = parameters.get("requested_at")
    if requested_at is None and parameters.get("session"):
        network = network_of(daemon)
        session = network.session(parameters["session"]) if network is not None else None
        requested_at = session.requested_at if session else None
    try:
        seconds = (_parse_time(record["time"]) - _parse_time(requested_at)).total_seconds()
    except (KeyError, TypeError, ValueError):
        return None
    return max(seconds, 0.0)  # a request stamped ahead of central's clock (skew) counts as instant


def _parse_time(text):
    when = datetime.datetime.fromisoformat(text)
    return when if when.tzinfo else when.replace(tzinfo=datetime.UTC)


def _section(daemon, config=None):
    return (config or daemon.config).sections.get("metrics") or MetricsConfig()


def _metrics_of(daemon):
    """Central's metrics, created on first use (audit records come before start-up ends)."""
    if daemon.role_name != "central" or not _section(daemon).enabled or not _load_prometheus():
        return None
    return _metrics.made(daemon, Metrics)


@evd.hookimpl
def evd_config_sections():
    return {"metrics": MetricsConfig}


@evd.hookimpl
def evd_audit(daemon, record):
    metrics = _metrics_of(daemon)
    if metrics is not None:
        metrics.count(daemon, record)


@evd.hookimpl
def evd_startup(daemon):
    section = _section(daemon)
    if not section.enabled:
        return
    if daemon.role_name != "central":
        log.warning("metrics are served by central only; metrics.enabled is ignored by this %s", daemon.role_name)
        return
    if not _load_prometheus():
        log.error("metrics.enabled is true but the prometheus_client module is missing (pip install prometheus-client): no metrics served")
        return
    metrics = _metrics_of(daemon)
    metrics.refresh(daemon)
    try:
        metrics.serve(section.listen)
    except OSError as e:
        reason = os.strerror(e.errno) if e.errno else str(e)
        log.error("metrics: cannot listen on %s: %s; central runs on without metrics", section.listen, reason)
        return
    daemon.spawn(metrics.refresher(daemon))
    log.info("metrics served on http://%s/metrics", section.listen)


@evd.hookimpl
def evd_reload(daemon, config):
    if _section(daemon, config) != _section(daemon):
        log.warning("metrics settings take effect only after a restart")


@evd.hookimpl
def evd_shutdown(daemon):
    metrics = _metrics.get(daemon)
    if metrics is not None and metrics.server is not None:
        return asyncio.to_thread(metrics.close)
    return None
