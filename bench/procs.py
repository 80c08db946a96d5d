"""Real evd processes for the benchmarks, what /proc says about them, and the stream read back raw.

Every process started here is in its own session (a terminal Ctrl-C reaches only the bench)
and is registered with a :class:`Processes` set, whose ``kill_all`` the benchmarks call on
every way out.
"""

import json
import os
import pathlib
import signal
import sqlite3
import subprocess
import sys
import time

import yaml

from evd.client import ControlClient
from evd.errors import EvdError

CLK_TCK = os.sysconf("SC_CLK_TCK")


def evd_binary():
    return pathlib.Path(sys.executable).parent / "evd"


def start_bench_child(module, *args):
    """``python -m MODULE ARGS`` (one of the bench's helpers) in a session of its own, importing this
    checkout's bench package whatever the working directory."""
    root = str(pathlib.Path(__file__).resolve().parents[1])
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")])))
    return subprocess.Popen([sys.executable, "-m", module, *args], env=env, stdin=subprocess.DEVNULL, start_new_session=True)


def end_child(proc, grace=5.0):
    """Give ``proc`` ``grace`` seconds to exit on its own (it was asked to), then kill it."""
    if proc is None:
        return
    try:
        proc.wait(grace)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


class Processes:
    """Every process a benchmark started, so that all of them are killed on the way out."""

    def __init__(self):
        self.nodes = []

    def add(self, node):
        self.nodes.append(node)
        return node

    def kill_all(self):
        for node in self.nodes:
            try:
                node.kill()
            except Exception as e:  # keep killing the others
                print(f"bench: could not kill {node}: {e}", file=sys.stderr)


class EvdNode:
    """One ``evd run`` instance: its config file under ``root``, its control socket, log and process."""

    def __init__(self, root, name, config, processes=None):
        self.root = pathlib.Path(root)
        self.name = name
        for sub in ("run", "log", "state"):
            (self.root / sub).mkdir(exist_ok=True)
        self.socket = self.root / "run" / f"{name}.sock"
        self.path = self.root / f"{name}.yaml"
        self.log_path = self.root / "log" / f"{name}.log"
        self.config = {"name": name, **config, "control": {"socket": str(self.socket)}}
        self.path.write_text(yaml.safe_dump(self.config, sort_keys=False))
        self.proc = None
        self.starts = 0
        self.nice = 0  # run at this nice value (nice(1)): lower priority than central on a shared machine
        self.env = {}  # extra environment, e.g. EVD_DISABLE_PLUGINS
        if processes is not None:
            processes.add(self)

    def __repr__(self):
        return f"<evd {self.name} pid={self.pid}>"

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    def start(self):
        with open(self.log_path, "ab") as log:  # the child keeps its own copy of the descriptor
            niced = ["nice", "-n", str(self.nice)] if self.nice else []  # nice execs evd: the pid is evd's
            self.proc = subprocess.Popen(
                [*niced, str(evd_binary()), "run", "-c", str(self.path)],
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
                env={**os.environ, **self.env} if self.env else None,
            )
        self.starts += 1
        return self

    def alive(self):
        return self.proc is not None and self.proc.poll() is None

    def ping(self, timeout=2.0):
        try:
            with ControlClient(self.socket, timeout=timeout) as client:
                return client.call("ping", timeout=timeout) == "pong"
        except (EvdError, OSError, ValueError):
            return False

    def wait_ready(self, timeout=30.0):
        deadline = time.monotonic() + timeout
        while True:
            if not self.alive():
                raise RuntimeError(f"evd {self.name} exited with {self.proc.returncode if self.proc else None}: {self.log_tail()}")
            if self.ping():
                return self
            if time.monotonic() > deadline:
                raise RuntimeError(f"evd {self.name} did not answer on {self.socket} within {timeout:g}s: {self.log_tail()}")
            time.sleep(0.05)

    def call(self, command, args=None, timeout=10.0):
        with ControlClient(self.socket, timeout=timeout) as client:
            return client.call(command, args, timeout=timeout)

    def signal(self, signum):
        if self.alive():
            self.proc.send_signal(signum)

    def kill(self):
        if self.alive():
            self.proc.send_signal(signal.SIGCONT)  # a stopped process dies only once it runs again
            self.proc.send_signal(signal.SIGKILL)
        if self.proc is not None:
            self.proc.wait(10)

    def stop(self, timeout=20.0):
        """SIGTERM and wait (SIGKILL past ``timeout``); returns the exit status."""
        if self.alive():
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
        return self.proc.returncode if self.proc else None

    def log_tail(self, chars=2000):
        try:
            return self.log_path.read_text(errors="replace")[-chars:]
        except OSError:
            return ""


def log_errors(text, limit=10):
    """ERROR lines of an evd log, each with the last line of the traceback that follows it, if any."""
    lines, out, i = text.splitlines(), [], 0
    while i < len(lines) and len(out) < limit:
        line = lines[i]
        i += 1
        if " ERROR " not in line:
            continue
        entry = line[:300]
        if i < len(lines) and lines[i].startswith("Traceback"):
            while i < len(lines) and (lines[i].startswith((" ", "Traceback")) or not lines[i].strip()):
                i += 1
            if i < len(lines):
                entry += " → " + lines[i][:300]
                i += 1
        out.append(entry)
    return out


# -- /proc ---------------------------------------------------------------------------------


def cpu_seconds(pid):
    """User + system CPU seconds of every thread of ``pid`` so far, or None if it is gone."""
    try:
        with open(f"/proc/{pid}/stat") as f:
            fields = f.read().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / CLK_TCK


def memory_mb(pid):
    """(RSS, peak RSS) in MB of ``pid``, or (None, None) if it is gone."""
    values = {}
    try:
        with open(f"/proc/{pid}/status") as f:
            for line in f:
                name, _, rest = line.partition(":")
                if name in ("VmRSS", "VmHWM"):
                    values[name] = int(rest.split()[0]) / 1024
    except OSError:
        return None, None
    return values.get("VmRSS"), values.get("VmHWM")


class CpuMeter:
    """CPU use of a process between two marks, as a percentage of one core."""

    def __init__(self, pid):
        self.pid = pid
        self.mark()

    def mark(self):
        self._cpu, self._at = cpu_seconds(self.pid), time.monotonic()

    def percent(self):
        cpu, now = cpu_seconds(self.pid), time.monotonic()
        if cpu is None or self._cpu is None or now <= self._at:
            return None
        return round(100 * (cpu - self._cpu) / (now - self._at), 1)


# -- the stream, read back without evd ------------------------------------------------------


def read_topic_local(path, topic, chunk=1000):
    """Every record of ``topic`` in the local transport's SQLite log: [(key, value bytes)], and seconds taken."""
    db = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
    try:
        started, after, rows = time.perf_counter(), 0, []
        while True:
            batch = db.execute(
                "SELECT seq, key, value FROM records WHERE topic = ? AND seq > ? ORDER BY seq LIMIT ?", (topic, after, chunk)
            ).fetchall()
            if not batch:
                break
            after = batch[-1][0]
            rows.extend((key, value) for _, key, value in batch)
        return rows, time.perf_counter() - started
    finally:
        db.close()


def read_topic_kafka(bootstrap, topic, timeout=60.0):
    """Every record of ``topic`` on the broker up to its current end: [(key, value bytes)], and seconds taken."""
    from kafka import KafkaConsumer, TopicPartition

    consumer = KafkaConsumer(bootstrap_servers=bootstrap, client_id="evd-bench-raw", group_id=None, enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        if not partitions:
            return [], 0.0
        consumer.assign(partitions)
        ends = consumer.end_offsets(partitions)
        started = time.perf_counter()
        consumer.seek_to_beginning()
        deadline, rows = started + timeout, []
        while time.perf_counter() < deadline:
            if all(consumer.position(tp) >= ends[tp] for tp in partitions):
                break
            for records in consumer.poll(timeout_ms=100, max_records=1000).values():
                rows.extend((r.key.decode() if r.key is not None else None, r.value) for r in records)
        return rows, time.perf_counter() - started
    finally:
        consumer.close()


def decode_all(rows):
    """Decoded messages of raw records, skipping what is not JSON."""
    out = []
    for _key, value in rows:
        try:
            out.append(json.loads(value))
        except ValueError:
            pass
    return out
