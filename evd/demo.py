"""``evd demo``: a whole charging network on this machine, each component a real evd process.

Everything lives under one directory: configs (``evd.yaml`` + one file per instance),
control sockets (``run/``), databases and journals (``state/``), logs (``log/``) and the
drivers' request files. The local transport is used, engines plug in by themselves, and
the drivers work through request files, so supplies run unattended.
"""

import json
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time

import yaml

from .client import ControlClient
from .config import SITE_ENV
from .errors import EvdError, UsageError

SAMPLE_CPS = (
    ("ALC1", "C/ Italia 5", "Alicante", 0.54),
    ("ALC3", "Gran Vía 2", "Alicante", 0.45),
    ("MAD2", "C/ Serrano 18", "Madrid", 0.60),
    ("SEV4", "Av. de la Constitución 1", "Sevilla", 0.50),
    ("VAL1", "Pl. del Ayuntamiento 1", "Valencia", 0.52),
    ("BCN5", "Pg. de Gràcia 43", "Barcelona", 0.58),
    ("BIO2", "Gran Vía 12", "Bilbao", 0.49),
    ("ZGZ1", "Pl. del Pilar 3", "Zaragoza", 0.47),
)
STOP_TIMEOUT = 15.0
REPORT_EVERY = 5.0


def sample_cps(count):
    """The first ``count`` sample CPs, then numbered ones."""
    cps = list(SAMPLE_CPS[:count])
    for n in range(len(cps) + 1, count + 1):
        cps.append((f"CP{n:03d}", f"Lab bay {n}", "Alicante", 0.50))
    return cps


API_PORT = 8080  # central's API and web panel, when free (api.listen's default)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Demo:
    def __init__(self, folder, cps=4, drivers=1, tick="1s", kwh=5, weather=None):
        self.dir = pathlib.Path(folder).resolve()
        self.weather = pathlib.Path(weather).resolve() if weather else None  # EV_W's temperatures file
        self.api_port = API_PORT if _port_free(API_PORT) else free_port()
        self.cps = sample_cps(cps)
        self.drivers = [f"D{n}" for n in range(1, drivers + 1)]
        self.tick = tick
        self.kwh = kwh
        self.procs = {}  # instance name -> Popen

    @property
    def central_socket(self):
        return self.dir / "run" / "central.sock"

    def clear_previous(self):
        """Start afresh in a reused directory: a demo's old databases, journals and logs would carry over.

        Returns True when a previous demo's state was removed. A directory with a demo still
        running in it, or a ``state/`` that no demo wrote, is refused.
        """
        if _answers(self.central_socket):
            raise UsageError(f"a demo is already running in {self.dir} (its central answers on {self.central_socket})")
        old = [self.dir / sub for sub in ("state", "log") if (self.dir / sub).is_dir() and any((self.dir / sub).iterdir())]
        if not old:
            return False
        if not (self.dir / "central.yaml").is_file():
            raise UsageError(f"--dir {self.dir}: {old[0]} is not empty and no demo made it; choose another directory")
        for folder in old:
            shutil.rmtree(folder)
        return True

    def write(self):
        """Write every configuration; returns the instance names in start order."""
        for sub in ("run", "state", "log"):
            (self.dir / sub).mkdir(parents=True, exist_ok=True)
        longest = self.dir / "run" / f"driver-{self.drivers[-1] if self.drivers else 'D1'}.sock"
        if len(os.fsencode(longest)) > 107:
            raise UsageError(f"--dir {self.dir} is too long for control sockets under it; choose a shorter one")
        self._dump("evd.yaml", {"transport": {"kind": "local", "path": str(self.dir / "state" / "bus.db")}, "log": {"level": "info"}})
        central_port = free_port()
        names = ["central"]
        self._dump(
            "central.yaml",
            {
                "name": "central",
                "role": "central",
                "control": {"socket": str(self.central_socket)},
                # Only the demo's own drivers are served: they are registered before they start (register_drivers).
                "central": {
                    "listen": f"127.0.0.1:{central_port}",
                    "database": str(self.dir / "state" / "central.db"),
                    "open_drivers": False,
                },
                "api": {"listen": f"127.0.0.1:{self.api_port}"},
            },
        )
        for cp_id, location, city, price in self.cps:
            engine_port = free_port()
            engine, monitor = f"engine-{cp_id}", f"monitor-{cp_id}"
            self._dump(
                f"{engine}.yaml",
                {
                    "name": engine,
                    "role": "engine",
                    "control": {"socket": str(self.dir / "run" / f"{engine}.sock")},
                    "engine": {
                        "listen": f"127.0.0.1:{engine_port}",
                        "tick": self.tick,
                        "auto_plug": True,
                        "journal": str(self.dir / "state" / f"{engine}.journal"),
                    },
                },
            )
            self._dump(
                f"{monitor}.yaml",
                {
                    "name": monitor,
                    "role": "monitor",
                    "control": {"socket": str(self.dir / "run" / f"{monitor}.sock")},
                    "monitor": {
                        "cp_id": cp_id,
                        "engine": f"127.0.0.1:{engine_port}",
                        "central": f"127.0.0.1:{central_port}",
                        "location": location,
                        "price": price,
                        "city": city,
                    },
                },
            )
            names += [engine, monitor]
        ids = [cp[0] for cp in self.cps]
        for index, driver in enumerate(self.drivers):
            # Each driver starts at a different CP, so several supplies run at once.
            rotated = ids[index % len(ids) :] + ids[: index % len(ids)]
            requests = self.dir / f"requests-{driver}.txt"
            requests.write_text("".join(f"{cp}\n" for cp in rotated * 3))
            self._dump(
                f"driver-{driver}.yaml",
                {
                    "name": f"driver-{driver}",
                    "role": "driver",
                    "control": {"socket": str(self.dir / "run" / f"driver-{driver}.sock")},
                    "driver": {"id": driver, "requests_file": str(requests), "default_kwh": self.kwh},
                },
            )
            names.append(f"driver-{driver}")
        if self.weather is not None:
            self._dump(
                "weather.yaml",
                {
                    "name": "weather",
                    "role": "weather",
                    "control": {"socket": str(self.dir / "run" / "weather.sock")},
                    "weather": {
                        "central": self.api_url,
                        "token_file": str(self.dir / "state" / "weather.token"),  # issued once central answers
                        "source": "file",
                        "file": str(self.weather),
                    },
                },
            )
            names.append("weather")
        return names

    @property
    def api_url(self):
        return f"http://127.0.0.1:{self.api_port}"

    def _dump(self, name, data):
        (self.dir / name).write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))

    def start(self, names):
        evd = [sys.executable, "-m", "evd.cli"]
        # The demo is self-contained: a site's /etc/evcharging/evd.yaml (Kafka, say) stays out of it.
        env = {**os.environ, SITE_ENV: ""}
        for name in names:
            with open(self.dir / "log" / f"{name}.log", "ab") as log:
                # A session of its own: the terminal's Ctrl-C reaches the demo, which stops them in order.
                self.procs[name] = subprocess.Popen(
                    [*evd, "run", "-c", str(self.dir / f"{name}.yaml")],
                    stdout=log,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    env=env,
                )

    def stop(self):
        order = (
            [n for n in self.procs if n.startswith(("driver", "weather"))]
            + [n for n in self.procs if n.startswith(("monitor", "engine"))]
            + ["central"]
        )
        for name in order:
            proc = self.procs.get(name)
            if proc is not None and proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + STOP_TIMEOUT
        for proc in self.procs.values():
            try:
                proc.wait(max(0.1, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()

    def summary(self):
        try:
            with ControlClient(self.central_socket, timeout=2) as client:
                cps = client.call("cp.list")
                sessions = client.call("sessions")
        except EvdError:
            return "central not answering yet"
        connected = sum(1 for cp in cps if cp["state"] != "DISCONNECTED")
        supplying = sum(1 for cp in cps if cp["state"] == "SUPPLYING")
        done = sum(1 for s in sessions if s["status"] == "COMPLETED")
        return f"{connected}/{len(cps)} CPs connected, {supplying} supplying, {done} supplies completed"

    def register_drivers(self, timeout=30.0):
        """Register the demo's drivers at central (R26), once central answers; False if it never does."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and "central" not in self.dead():
            try:
                with ControlClient(self.central_socket, timeout=2) as client:
                    registered = {driver["id"] for driver in client.call("drivers.list")}
                    for driver in self.drivers:
                        if driver not in registered:
                            client.call("drivers.add", {"id": driver})
                    if self.weather is not None:
                        self._weather_token(client)
                return True
            except EvdError:
                time.sleep(0.1)
        return False

    def _weather_token(self, client):
        """An API token for the demo's EV_W, in the file its configuration names."""
        if any(t["name"] == "weather" and not t["revoked_at"] for t in client.call("api.token.list")):
            client.call("api.token.revoke", {"name": "weather"})
        token = client.call("api.token.add", {"name": "weather"})["token"]
        path = self.dir / "state" / "weather.token"
        path.write_text(token + "\n")
        path.chmod(0o600)

    def dead(self):
        return [name for name, proc in self.procs.items() if proc.poll() is not None]


def _answers(socket_path):
    probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    probe.settimeout(1.0)
    try:
        probe.connect(str(socket_path))
        return True
    except OSError:
        return False
    finally:
        probe.close()


def run(cps, drivers, folder=None, attach=False, weather=None):
    if cps < 1 or drivers < 0:
        raise UsageError("--cps must be at least 1 and --drivers at least 0")
    if weather is not None and not pathlib.Path(weather).is_file():
        raise UsageError(f"--weather: no such file {weather} (a YAML mapping of city to °C, such as 'Alicante: 21')")
    temporary = folder is None
    demo = Demo(folder or tempfile.mkdtemp(prefix="evd-demo-"), cps, drivers, weather=weather)
    try:
        cleared = False if temporary else demo.clear_previous()
        names = demo.write()
    except BaseException:
        if temporary:
            shutil.rmtree(demo.dir, ignore_errors=True)
        raise
    # Ctrl-C and SIGTERM both stop the demo, even when started where SIGINT was ignored
    # (a background job of a non-interactive shell).
    previous = {sig: signal.signal(sig, _interrupt) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        print(f"EVCharging demo: central, {cps} charging point(s) (engine + monitor each), {drivers} driver(s)", flush=True)
        if temporary:
            print(f"  everything is under {demo.dir} (temporary: removed when the demo stops; --dir DIR keeps it)", flush=True)
        else:
            print(f"  everything is under {demo.dir}" + (" (the previous demo's state and logs: cleared)" if cleared else ""), flush=True)
        demo.start(names[:1])
        if not demo.register_drivers():
            print(f"evd: central did not start; see {demo.dir / 'log' / 'central.log'}", file=sys.stderr, flush=True)
            return 1
        demo.start(names[1:])
        print(f"  panel:  evctl -s {demo.central_socket} attach", flush=True)
        print(f"  list:   evctl -s {demo.central_socket} cp list", flush=True)
        print(f"  web:    {_web_panel(demo.api_url + '/')}", flush=True)
        if weather is not None:
            print(
                f"  EV_W:   evctl -s {demo.dir / 'run' / 'weather.sock'} attach   (edit {demo.weather} to change the weather)", flush=True
            )
        print("  Ctrl-C stops everything.", flush=True)
        if attach:
            return _attach(demo)
        reported_dead = set()
        while True:
            time.sleep(REPORT_EVERY)
            print(f"[{time.strftime('%H:%M:%S')}] {demo.summary()}", flush=True)
            for name in set(demo.dead()) - reported_dead:
                reported_dead.add(name)
                print(
                    f"  {name} exited ({demo.procs[name].returncode}); see {demo.dir / 'log' / (name + '.log')}",
                    file=sys.stderr,
                    flush=True,
                )
    except KeyboardInterrupt:
        print("\nstopping the demo…", flush=True)
        return 0
    finally:
        demo.stop()
        for sig, handler in previous.items():
            signal.signal(sig, handler)
        if temporary:
            shutil.rmtree(demo.dir, ignore_errors=True)
            print(f"removed {demo.dir}", flush=True)
        else:
            print(f"configs, databases and logs kept in {demo.dir}", flush=True)


def _interrupt(signum, frame):
    raise KeyboardInterrupt


def _attach(demo):
    deadline = time.monotonic() + 15
    while not demo.central_socket.exists():
        if time.monotonic() > deadline:
            raise EvdError("central did not start; see its log")
        time.sleep(0.1)
    from .console import attach as console

    return console.main(str(demo.central_socket), quit_help="quit: stops the whole demo")


def _port_free(port):
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
        return True


def _web_panel(url):
    """Where central's web panel is (api.listen's default), if central serves it there."""
    import urllib.request

    try:
        with urllib.request.urlopen(url + "api/status", timeout=2) as answer:
            if json.loads(answer.read()).get("role") == "central":
                return f"{url} (central's web panel; its API under {url}api/)"
    except (OSError, ValueError):
        pass
    return f"not served yet at {url} (see central's log)"
