"""A charging network of real evd processes in a temporary directory, on either transport."""

import json
import pathlib
import uuid

import yaml

from evd.client import ControlClient
from evd.errors import EvdError

from brokers import free_port
from helpers import EvdProcess, evctl, wait_for

# Shortened cadence where a test is not about the 1 s one.
FAST = {"tick": "200ms", "check_interval": "200ms", "heartbeat_timeout": "1s"}


class Node:
    """One evd instance of the network: its config, socket and process."""

    def __init__(self, network, name, config):
        self.network = network
        self.name = name
        self.socket = network.root / "run" / f"{name}.sock"
        self.path = network.root / f"{name}.yaml"
        config = {"name": name, **config, "control": {"socket": str(self.socket)}}
        self.path.write_text(yaml.safe_dump(config, sort_keys=False))
        self.process = None
        self.env = None  # the process's environment, when not the test's own

    def start(self, wait=True):
        self.process = EvdProcess(self.path, self.network.root / "log" / f"{self.name}.log", env=self.env).start()
        if wait:
            self.process.wait_ready(self.socket)
        return self

    def kill(self):
        self.process.kill()

    def stop(self):
        return self.process.stop()

    def restart(self):
        if self.process and self.process.alive():
            self.process.kill()
        return self.start()

    def call(self, command, args=None, timeout=10.0):
        with ControlClient(self.socket, timeout=timeout) as client:
            return client.call(command, args, timeout=timeout)

    def evctl(self, *args):
        return evctl(self.socket, *args)

    def evctl_json(self, *args):
        result = evctl(self.socket, "--json", *args)
        assert result.returncode == 0, f"evctl {' '.join(args)}: {result.returncode} {result.stderr}"
        return json.loads(result.stdout)

    def log(self):
        return self.process.log() if self.process else ""


class Network:
    def __init__(self, root, kind, bootstrap=None, **timing):
        self.root = pathlib.Path(root)
        self.kind = kind
        self.bootstrap = bootstrap
        self.timing = {**FAST, **timing}
        self.nodes = {}
        for sub in ("run", "log", "state"):
            (self.root / sub).mkdir(exist_ok=True)
        self.prefix = f"ev{uuid.uuid4().hex[:8]}"
        transport = {"kind": kind, "topic_prefix": self.prefix}
        if kind == "kafka":
            transport.update(bootstrap=bootstrap)
        else:
            transport["path"] = str(self.root / "state" / "bus.db")
        (self.root / "evd.yaml").write_text(yaml.safe_dump({"transport": transport, "log": {"level": "debug"}}))
        self.central_port = free_port()

    def _add(self, name, config):
        node = self.nodes[name] = Node(self, name, config)
        return node

    def central(self, sections=None, **options):
        """Central with ``options`` in its section and other top-level ``sections`` (ocpp, api …)."""
        section = {
            "listen": f"127.0.0.1:{self.central_port}",
            "database": str(self.root / "state" / "central.db"),
            "heartbeat_timeout": self.timing["heartbeat_timeout"],
            "end_grace": "1s",
            **options,
        }
        # An API port of its own: never 8080, which a demo or another test may hold.
        self.api_port = free_port()
        config = {"role": "central", "central": section, "api": {"listen": f"127.0.0.1:{self.api_port}"}}
        return self._add("central", {**config, **(sections or {})})

    def cp(self, cp_id, price=0.5, location=None, engine=None, monitor=None):
        """An engine and its monitor; returns (engine, monitor)."""
        port = free_port()
        engine_section = {
            "listen": f"127.0.0.1:{port}",
            "tick": self.timing["tick"],
            "journal": str(self.root / "state" / f"engine-{cp_id}.journal"),
            **(engine or {}),
        }
        monitor_section = {
            "cp_id": cp_id,
            "engine": f"127.0.0.1:{port}",
            "central": f"127.0.0.1:{self.central_port}",
            "location": location or f"Bay {cp_id}",
            "price": price,
            "city": "Alicante",
            "check_interval": self.timing["check_interval"],
            **(monitor or {}),
        }
        return (
            self._add(f"engine-{cp_id}", {"role": "engine", "engine": engine_section}),
            self._add(f"monitor-{cp_id}", {"role": "monitor", "monitor": monitor_section}),
        )

    def driver(self, driver_id, **options):
        return self._add(f"driver-{driver_id}", {"role": "driver", "driver": {"id": driver_id, **options}})

    def weather(self, **section):
        """EV_W, talking to this network's central API (its token: ``token_file`` in ``section``)."""
        section = {"central": f"http://127.0.0.1:{self.api_port}", "interval": "200ms", "sync_interval": "1s", **section}
        return self._add("weather", {"role": "weather", "weather": section})

    def start_all(self, names=None):
        for name in names or list(self.nodes):
            self.nodes[name].start(wait=False)
        for name in names or list(self.nodes):
            self.nodes[name].process.wait_ready(self.nodes[name].socket)

    def wait_stream_ready(self, timeout=40):
        """Every daemon's consumers follow their topics (they have their partitions and positions)."""

        def ready():
            return all(
                (node.call("status")["transport"].get("ready") in (True, None))
                for node in self.nodes.values()
                if node.process and node.process.alive()
            )

        wait_for(ready, timeout, message="every consumer to follow its topics")

    def stop_all(self):
        for node in self.nodes.values():
            if node.process is not None and node.process.alive():
                node.kill()

    def logs(self):
        return "\n".join(f"===== {name}\n{node.log()[-4000:]}" for name, node in self.nodes.items())

    # -- what tests look at ------------------------------------------------------------------

    def cps(self):
        return {cp["id"]: cp for cp in self.nodes["central"].call("cp.list")}

    def state_of(self, cp_id):
        try:
            return self.cps()[cp_id]["state"]
        except (EvdError, KeyError, OSError):
            return None

    def wait_state(self, cp_id, state, timeout=20):
        wait_for(lambda: self.state_of(cp_id) == state, timeout, message=f"{cp_id} to be {state} (now {self.state_of(cp_id)})")

    def wait_all(self, state, ids, timeout=30):
        wait_for(
            lambda: all(self.state_of(i) == state for i in ids), timeout, message=f"{ids} to be {state}: {[self.state_of(i) for i in ids]}"
        )

    def sessions(self, **filters):
        return self.nodes["central"].call("sessions", filters)

    def tickets(self, driver_id):
        """The driver's closed supplies (its history also lists open and denied ones)."""
        history = self.nodes[f"driver-{driver_id}"].call("driver.history")
        return [t for t in history if t["status"] in ("COMPLETED", "INTERRUPTED")]
