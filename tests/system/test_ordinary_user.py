"""The assignment's commands as an ordinary user on a fresh machine: no root, no systemd, nothing
under /var or /run, no STATE_DIRECTORY or RUNTIME_DIRECTORY (DESIGN.md §2: "They work for an
ordinary user").

The tests run as root (as CI does) and start every command as the unprivileged user ``evtest``,
made here when missing, with a home of its own; each EV_* command gets a terminal (a pty), as
when a person types it, so it shows its panel.
"""

import contextlib
import fcntl
import json
import os
import pathlib
import pty
import pwd
import shutil
import signal
import stat
import struct
import subprocess
import sys
import sysconfig
import tempfile
import termios
import threading

import pytest

import evd

from brokers import free_port
from helpers import BIN, wait_for

USER = "evtest"


def _needed_paths():
    """What the user's processes read: this venv, its interpreter and its libraries, evd itself."""
    found = {BIN, pathlib.Path(os.path.realpath(sys.executable)), pathlib.Path(evd.__file__).parent}
    for prefix in (sys.prefix, sys.base_prefix):
        found.add(pathlib.Path(prefix))
    for key in ("stdlib", "platstdlib", "purelib", "platlib"):
        found.add(pathlib.Path(sysconfig.get_paths()[key]))
    return found


@contextlib.contextmanager
def _traversable(folders):
    """Let others traverse (not list) the directories above ``folders``, as a home under /root is not."""
    changed = {}
    for path in folders:
        for folder in [*reversed(path.parents), path]:
            if folder.is_dir() and folder not in changed:
                mode = folder.stat().st_mode
                if not mode & stat.S_IXOTH:
                    changed[folder] = stat.S_IMODE(mode)
                    folder.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)
    try:
        yield
    finally:
        for folder, mode in changed.items():
            folder.chmod(mode)


@pytest.fixture(scope="module")
def user():
    """The passwd entry of ``evtest``, an account with no privileges, able to run this venv."""
    if os.geteuid() != 0:
        pytest.skip("needs root, to run the commands as an ordinary user")
    try:
        entry = pwd.getpwnam(USER)
    except KeyError:
        if shutil.which("useradd") is None:
            pytest.skip("no useradd to make an ordinary user")
        subprocess.run(["useradd", "--no-create-home", "--user-group", "--shell", "/usr/sbin/nologin", USER], check=True)
        entry = pwd.getpwnam(USER)
    with _traversable(_needed_paths()):
        probe = subprocess.run(
            [str(BIN / "python"), "-c", "import evd.compat, evd.plugins.kafka, evd.console.attach"],
            user=entry.pw_uid,
            group=entry.pw_gid,
            extra_groups=[],
            env=_env(pathlib.Path("/"), entry),
            capture_output=True,
            text=True,
        )
        if probe.returncode != 0:
            pytest.fail(f"{USER} cannot run {BIN / 'python'} with evd (are the venv's files world-readable?):\n{probe.stderr}")
        yield entry


def _env(home, entry, **extra):
    """A login's environment: no systemd directories, no XDG directories, a home of its own."""
    env = {
        "PATH": f"{BIN}:/usr/local/bin:/usr/bin:/bin",
        "HOME": str(home),
        "USER": entry.pw_name,
        "LOGNAME": entry.pw_name,
        "TERM": "xterm-256color",
        "LANG": "C.UTF-8",
        "EVD_SITE_CONFIG": "",  # this machine's /etc/evcharging/evd.yaml stays out, as in every test
    }
    if os.environ.get("PYTHONPATH"):
        env["PYTHONPATH"] = os.environ["PYTHONPATH"]
    env.update(extra)
    return env


@pytest.fixture
def home(user):
    """A fresh home of the user's, and the user's /tmp/evd-UID removed before and after."""
    folder = pathlib.Path(tempfile.mkdtemp(prefix="evd-home-"))
    os.chown(folder, user.pw_uid, user.pw_gid)
    folder.chmod(0o755)
    sockets = pathlib.Path(f"/tmp/evd-{user.pw_uid}")
    _remove(sockets)
    yield folder
    for pid in _live_processes(user.pw_uid):  # a failed test's daemons: the account is this test's own
        with contextlib.suppress(ProcessLookupError):
            os.kill(pid, signal.SIGKILL)
    _remove(sockets)
    shutil.rmtree(folder, ignore_errors=True)


def _live_processes(uid):
    """{pid: command line} of the processes of ``uid`` that still run (zombies left out)."""
    found = {}
    for entry in pathlib.Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = dict(line.split(":\t", 1) for line in (entry / "status").read_text().splitlines() if ":\t" in line)
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        if int(status["Uid"].split()[1]) == uid and not status["State"].startswith("Z"):
            found[int(entry.name)] = command
    return found


def _remove(path):
    if path.is_symlink() or path.is_file():
        path.unlink()
    elif path.exists():
        shutil.rmtree(path)


class Terminal:
    """One command run as the user on a pseudo-terminal of 100x30, its screen output kept."""

    def __init__(self, argv, user, home, env=None):
        master, slave = pty.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 30, 100, 0, 0))
        self.proc = subprocess.Popen(
            [str(BIN / argv[0]), *map(str, argv[1:])],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            user=user.pw_uid,
            group=user.pw_gid,
            extra_groups=[],
            env=env or _env(home, user),
            cwd=home,
            start_new_session=True,
        )
        os.close(slave)
        self._master = master
        self._output = bytearray()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self):
        while True:
            try:
                data = os.read(self._master, 65536)
            except OSError:  # EIO: every holder of the terminal has closed it
                return
            if not data:
                return
            self._output += data
            del self._output[:-65536]

    def output(self):
        return self._output.decode(errors="replace")

    def type(self, keys):
        os.write(self._master, keys)

    def stop(self, how=signal.SIGTERM, timeout=20):
        """End it as a person does: a key typed at its panel, or a signal (closing the terminal: SIGHUP)."""
        if self.proc.poll() is None:
            if isinstance(how, bytes):
                self.type(how)
            else:
                self.proc.send_signal(how)
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.wait()
        finally:
            self._reader.join(5)
            os.close(self._master)


def as_user(user, home, *argv, env=None, timeout=60):
    return subprocess.run(
        [str(BIN / argv[0]), *map(str, argv[1:])],
        user=user.pw_uid,
        group=user.pw_gid,
        extra_groups=[],
        env=env or _env(home, user),
        cwd=home,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def _logs(home):
    return "\n".join(f"--- {log.name}\n{log.read_text(errors='replace')}" for log in sorted(home.glob("*.log")))


def test_the_five_commands_as_an_ordinary_user_end_to_end(user, home, kafka_bootstrap):
    central_port, engine_port, api_port = free_port(), free_port(), free_port()
    commands = {
        "central": ["EV_Central", central_port, kafka_bootstrap, "--set", f"api.listen=127.0.0.1:{api_port}"],
        "engine": ["EV_CP_E", kafka_bootstrap, engine_port],
        "monitor": [
            "EV_CP_M",
            f"127.0.0.1:{engine_port}",
            f"127.0.0.1:{central_port}",
            "ALC1",
            "C/ Italia 5",
            "0.54",
            "--set",
            "monitor.city=Alicante",
        ],
        "driver": ["EV_Driver", kafka_bootstrap, "D1"],
    }
    terminals = {}
    statuses = {}
    try:
        for name, argv in commands.items():
            terminals[name] = Terminal(argv, user, home)

        def cp_state():
            result = as_user(user, home, "evctl", "-n", "central", "--json", "cp", "list")
            return result.returncode == 0 and json.loads(result.stdout)[0]["state"] == "ACTIVE"

        wait_for(cp_state, timeout=40, interval=0.5, message="ALC1 ACTIVE on central")

        def engine_bound():
            status = json.loads(as_user(user, home, "evctl", "-n", f"engine-{engine_port}", "--json", "status").stdout)
            return status["cp_id"] == "ALC1" and status["state"] == "READY"

        wait_for(engine_bound, timeout=30, interval=0.5, message="the engine to take ALC1 (not WAITING_FOR_ID)")

        def central_reachable():
            return json.loads(as_user(user, home, "evctl", "-n", "driver-D1", "--json", "status").stdout)["central_reachable"]

        wait_for(central_reachable, timeout=30, interval=0.5, message="central reachable from the driver")
        # EV_W, the fifth: its token from central, its temperatures from a file of the user's.
        token = json.loads(as_user(user, home, "evctl", "-n", "central", "--json", "api", "token", "add", "weather").stdout)["token"]
        for name, text in (("weather.token", token), ("temperatures.yaml", "Alicante: 21")):
            (home / name).write_text(text + "\n")
            os.chown(home / name, user.pw_uid, user.pw_gid)
        commands["weather"] = ["EV_W", f"http://127.0.0.1:{api_port}", home / "weather.token", home / "temperatures.yaml"]
        terminals["weather"] = Terminal(commands["weather"], user, home)

        def celsius_shown():
            result = as_user(user, home, "evctl", "-n", "central", "--json", "cp", "list")
            return result.returncode == 0 and json.loads(result.stdout)[0]["celsius"] == 21

        wait_for(celsius_shown, timeout=30, interval=0.5, message="EV_W's temperature for ALC1 at central")
        request = subprocess.Popen(
            [str(BIN / "evctl"), "-n", "driver-D1", "--json", "driver", "request", "ALC1", "--kwh", "2", "--wait"],
            user=user.pw_uid,
            group=user.pw_gid,
            extra_groups=[],
            env=_env(home, user),
            cwd=home,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            wait_for(
                lambda: as_user(user, home, "evctl", "-n", f"engine-{engine_port}", "engine", "plug").returncode == 0,
                timeout=30,
                interval=0.5,
                message="the authorisation to reach the engine",
            )
            out, err = request.communicate(timeout=60)
        finally:
            if request.poll() is None:
                request.kill()
                request.communicate()
        assert request.returncode == 0, err
        ticket = json.loads(out)
        assert (ticket["cp"], ticket["driver"], ticket["status"], ticket["kwh"], ticket["eur"]) == ("ALC1", "D1", "COMPLETED", 2.0, 1.08)

        # Everything went where an ordinary user's things go, and is the user's.
        journal = home / ".local" / "state" / "evcharging" / f"engine-{engine_port}.journal"
        assert json.loads(journal.read_text())["cp_id"] == "ALC1"
        sockets = pathlib.Path(f"/tmp/evd-{user.pw_uid}")
        assert stat.S_IMODE(sockets.lstat().st_mode) == 0o700
        for path in (journal, home / "central.db", sockets, *sockets.iterdir()):
            assert path.lstat().st_uid == user.pw_uid, path
    finally:
        # q at the driver's panel, the monitor's terminal closed, SIGTERM to the others: each
        # stops its daemon too (they run in sessions of their own).
        ways = {"driver": b"q", "monitor": signal.SIGHUP}
        for name, terminal in reversed(terminals.items()):
            statuses[name] = terminal.stop(ways.get(name, signal.SIGTERM))
    assert statuses == dict.fromkeys(commands, 0), _logs(home)
    assert not _live_processes(user.pw_uid), f"processes of {USER} still running: {_live_processes(user.pw_uid)}"


def test_an_engine_that_cannot_write_its_journal_stops_at_once_with_one_line(user, home, kafka_bootstrap):
    locked = pathlib.Path(tempfile.mkdtemp(prefix="evd-home-"))  # root's: the user may not write in it
    journal = locked / ".local" / "state" / "evcharging" / "engine-{port}.journal"
    try:
        port = free_port()
        result = as_user(user, home, "EV_CP_E", kafka_bootstrap, port, env=_env(locked, user), timeout=30)
        assert result.returncode == 1, result.stderr
        assert "Traceback" not in result.stderr
        assert result.stderr.splitlines()[-1] == (
            f"EV_CP_E: cannot write the engine's journal {str(journal).format(port=port)}: Permission denied"
            " (set engine.journal to a writable file)"
        )
        # On a terminal (the panel's case) the same reason, not a panel waiting for an id.
        port = free_port()
        terminal = Terminal(["EV_CP_E", kafka_bootstrap, port], user, home, env=_env(locked, user))
        try:
            assert terminal.proc.wait(30) == 1
        finally:
            terminal.stop()
        wait_for(lambda: "exited during start-up: 1" in terminal.output(), timeout=5, message="the error on the terminal")
        screen = " ".join(terminal.output().split())  # the terminal wraps the line at 100 columns
        assert f"engine-{port}: cannot write the engine's journal {str(journal).format(port=port)}: Permission denied" in screen
    finally:
        shutil.rmtree(locked, ignore_errors=True)


@pytest.mark.parametrize("squat", ["owned by root", "symlink to a directory of the user's", "world-writable"])
def test_central_refuses_a_squatted_socket_directory_with_one_line(user, home, squat):
    sockets = pathlib.Path(f"/tmp/evd-{user.pw_uid}")
    trap = home / "trap"
    if squat == "owned by root":
        sockets.mkdir(mode=0o700)
        expected = f"control socket directory {sockets} belongs to root (uid 0), not to you; refusing to use it"
    elif squat == "symlink to a directory of the user's":
        trap.mkdir()
        os.chown(trap, user.pw_uid, user.pw_gid)
        sockets.symlink_to(trap)
        expected = f"control socket directory {sockets} is a symbolic link owned by root (uid 0); refusing to follow it"
    else:
        sockets.mkdir()
        os.chown(sockets, user.pw_uid, user.pw_gid)
        sockets.chmod(0o777)
        expected = f"control socket directory {sockets} is writable by others; refusing to use it"
    result = as_user(user, home, "EV_Central", free_port(), f"127.0.0.1:{free_port()}", "--no-console", timeout=30)
    assert (result.returncode, result.stderr.splitlines()) == (1, [f"EV_Central: {expected}"])
    assert not (trap.exists() and list(trap.iterdir()))  # nothing was made through the link
