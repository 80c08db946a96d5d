"""A daemon and its panel in one terminal (``evd run --console``, the EV_* commands).

The daemon runs in a child process of its own session (so keys typed at the panel never
signal it) with its log in ``NAME.log``; the panel attaches to its control socket.
Quitting the panel stops the daemon.
"""

import os
import pathlib
import signal
import sys
import time
import traceback

from . import paths
from .client import ControlClient
from .errors import EvdError

START_TIMEOUT = 30.0
STOP_TIMEOUT = 15.0


def run(config, plugins, start_daemon):
    """``start_daemon()`` runs the daemon and returns its exit status (in the child)."""
    socket = paths.socket_path(config.name, config.control.socket)
    log_path = pathlib.Path(f"{config.name}.log").resolve()
    log_start = log_path.stat().st_size if log_path.exists() else 0
    pid = os.fork()
    if pid == 0:
        _become_daemon(log_path)
        code = 1
        try:
            code = start_daemon()
        except EvdError as e:
            print(f"evd: {e}", file=sys.stderr)  # into the log: the terminal belongs to the panel
            code = e.exit_code
        except BaseException:
            traceback.print_exc()
        finally:
            sys.stderr.flush()
            os._exit(code)
    # The daemon is in a session of its own: a SIGTERM, a closed terminal (SIGHUP) or a Ctrl-C
    # before the panel is up must stop it as q does, not leave it running with its ports.
    previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        print(f"{config.name}: starting; its log is {log_path}", file=sys.stderr, flush=True)
        status = _wait_ready(pid, socket)
        if status is not None:
            reason = _last_error(log_path, log_start)
            if reason:
                print(f"{config.name}: {reason} (exited during start-up: {status})", file=sys.stderr)
            else:
                print(f"{config.name}: exited during start-up ({status}); see {log_path}", file=sys.stderr)
            return status
        from .console import attach

        attach.main(str(socket), quit_help="quit: stops this daemon")
    except KeyboardInterrupt:
        pass
    except BaseException:
        _stop(pid)
        raise
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
    return _stop(pid)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def _last_error(log_path, start):
    """The one-line error the daemon wrote to its log (``evd: …``) since ``start``, without its prefix."""
    try:
        with open(log_path, "rb") as log:
            log.seek(start)
            lines = log.read().decode(errors="replace").splitlines()
    except OSError:
        return None
    errors = [line.removeprefix("evd: ") for line in lines if line.startswith("evd: ")]
    return errors[-1] if errors else None


def _become_daemon(log_path):
    os.setsid()
    log = os.open(log_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o644)
    null = os.open(os.devnull, os.O_RDONLY)
    os.dup2(null, 0)
    os.dup2(log, 1)
    os.dup2(log, 2)
    sys.stdout = os.fdopen(1, "w", buffering=1)
    sys.stderr = os.fdopen(2, "w", buffering=1)


def _wait_ready(pid, socket):
    deadline = time.monotonic() + START_TIMEOUT
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        try:
            with ControlClient(socket, timeout=1) as client:
                client.call("ping")
            return None
        except EvdError:
            time.sleep(0.1)
    _stop(pid)
    return 1


def _stop(pid):
    """SIGTERM the daemon and return its exit status."""
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    deadline = time.monotonic() + STOP_TIMEOUT
    while time.monotonic() < deadline:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.waitstatus_to_exitcode(status)
        time.sleep(0.1)
    os.kill(pid, signal.SIGKILL)
    os.waitpid(pid, 0)
    return 1
