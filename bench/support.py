"""What the benchmarks need around evd: transports built in-process, a tansu broker, loopback checks."""

import contextlib
import ipaddress
import json
import logging
import math
import pathlib
import shutil
import signal
import socket
import sys
import tempfile
import threading

from evd import testing
from evd.config import HostPort
from evd.testing import TansuBroker, free_port, port_open, tansu_binary

__all__ = ["TansuBroker", "free_port", "port_open", "tansu_binary"]  # for the benches, from evd.testing

PARTITIONS = 3


def make_transport(kind, prefix, *, bootstrap=None, path=None, name="bench"):
    """A transport without a daemon (evd.testing); the bench's own Kafka clients fetch with short
    waits, so that they add no hop of their own to what they measure."""
    return testing.make_transport(
        kind, prefix, bootstrap=bootstrap, path=path, name=name, partitions=PARTITIONS, fetch_max_wait=0.05 if kind == "kafka" else None
    )


def new_prefix():
    return testing.new_prefix("bench")


def progress(text):
    print(text, file=sys.stderr, flush=True)


def require_loopback(bootstrap):
    """Return ``bootstrap`` (host:port) if every address it resolves to is a loopback one; raise otherwise."""
    address = HostPort.parse(bootstrap)
    infos = socket.getaddrinfo(address.host, address.port, type=socket.SOCK_STREAM)
    outside = sorted({info[4][0] for info in infos if not ipaddress.ip_address(info[4][0].split("%")[0]).is_loopback})
    if outside:
        raise ValueError(f"{bootstrap} resolves to non-loopback address(es) {', '.join(outside)}: only loopback brokers are allowed")
    return str(address)


@contextlib.contextmanager
def tansu_broker(startup_timeout=20.0):
    """Run a memory-only tansu on a free loopback port for the block; yields its host:port. Always killed."""
    with tempfile.TemporaryDirectory(prefix="evd-bench-tansu-") as folder:
        broker = TansuBroker(log_path=pathlib.Path(folder) / "tansu.log")
        try:
            broker.start(timeout=startup_timeout)
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
        if args.transport == "local":
            parser.error("--bootstrap goes with a Kafka transport")
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
