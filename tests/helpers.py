"""Helpers for tests that run real evd processes: waiting on conditions, never bare sleeps."""

import json
import os
import pathlib
import signal
import subprocess
import sys

from evd.testing import wait_for

BIN = pathlib.Path(sys.executable).parent
__all__ = ["BIN", "EvdProcess", "evctl", "evctl_json", "make_env", "run", "wait_for"]


def run(*args, env=None, timeout=60, input=None):
    """Run one of the installed commands (evd, evctl, …) and return the CompletedProcess."""
    return subprocess.run([str(BIN / args[0]), *map(str, args[1:])], capture_output=True, text=True, env=env, timeout=timeout, input=input)


def evctl(socket, *args, env=None, timeout=60):
    return run("evctl", "-s", socket, *args, env=env, timeout=timeout)


def evctl_json(socket, *args, env=None, timeout=60):
    result = evctl(socket, "--json", *args, env=env, timeout=timeout)
    assert result.returncode == 0, f"evctl {' '.join(map(str, args))} failed ({result.returncode}): {result.stderr}"
    return json.loads(result.stdout)


class EvdProcess:
    """A real ``evd run`` process with its log in a file."""

    def __init__(self, config_path, log_path, env=None, extra_args=()):
        self.config_path = config_path
        self.log_path = pathlib.Path(log_path)
        self.env = env
        self.extra_args = list(extra_args)
        self.proc = None

    def start(self):
        with open(self.log_path, "ab") as log:  # the child keeps its own copy of the descriptor
            self.proc = subprocess.Popen(
                [str(BIN / "evd"), "run", "-c", str(self.config_path), *self.extra_args],
                stdout=log,
                stderr=subprocess.STDOUT,
                env=self.env,
                start_new_session=True,
            )
        return self

    def wait_ready(self, socket, timeout=20):
        def ready():
            if self.proc.poll() is not None:
                raise AssertionError(f"evd exited with {self.proc.returncode}:\n{self.log()}")
            return evctl(socket, "ping", env=self.env).returncode == 0

        wait_for(ready, timeout, message=f"evd to answer on {socket}")
        return self

    def signal(self, signum):
        self.proc.send_signal(signum)

    def kill(self):
        if self.proc and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)

    def stop(self, timeout=15):
        """SIGTERM and wait; returns the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(timeout)
            except subprocess.TimeoutExpired:
                self.kill()
                raise AssertionError(f"evd did not stop within {timeout}s:\n{self.log()}") from None
        return self.proc.returncode

    def alive(self):
        return self.proc.poll() is None

    def log(self):
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""


def make_env(**extra):
    env = dict(os.environ)
    env.update({k: str(v) for k, v in extra.items()})
    return env
