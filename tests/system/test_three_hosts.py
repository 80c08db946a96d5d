"""Three machines (network namespaces on a bridge) provisioned by deploy/provision.sh, as in the Vagrantfile.

central (10.77.0.1: tansu + central), cps (10.77.0.2: three engine+monitor pairs),
drivers (10.77.0.3: D1 with a requests file, D2). The cps host's link is cut and restored.
"""

import json
import os
import pathlib
import shutil
import signal
import subprocess
import uuid

import pytest
import yaml

from brokers import tansu_binary
from helpers import BIN, evctl, make_env, wait_for

ROOT = pathlib.Path(__file__).resolve().parents[2]
PROVISION = ROOT / "deploy" / "provision.sh"
SUBNET = "10.77.{}.{}"
CPS = ("ALC1", "ALC3", "MAD2")


def _can_make_namespaces():
    if os.geteuid() != 0 or shutil.which("ip") is None:
        return False
    name = f"evprobe{uuid.uuid4().hex[:6]}"
    made = subprocess.run(["ip", "netns", "add", name], capture_output=True).returncode == 0
    if made:
        subprocess.run(["ip", "netns", "del", name], capture_output=True)
    return made


pytestmark = [
    pytest.mark.skipif(not _can_make_namespaces(), reason="needs root and ip netns (network namespaces) to build three hosts"),
    pytest.mark.slow,
]


def ip(*args, check=True):
    return subprocess.run(["ip", *args], capture_output=True, text=True, check=check)


class Lab:
    """Namespaces joined by a bridge that lives in a namespace of its own (the LAN)."""

    def __init__(self, root):
        tag = uuid.uuid4().hex[:5]
        self.root = root
        self.lan = f"ev{tag}lan"
        self.hosts = {"central": (f"ev{tag}c", 1), "cps": (f"ev{tag}p", 2), "drivers": (f"ev{tag}d", 3)}
        self.net = SUBNET.format(int(tag[:2], 16) % 200 + 20, "{}")
        self.procs = []

    def address(self, host):
        return self.net.format(self.hosts[host][1])

    def build(self):
        ip("netns", "add", self.lan)
        ip("-n", self.lan, "link", "add", "br0", "type", "bridge")
        ip("-n", self.lan, "link", "set", "br0", "up")
        for host, (ns, _number) in self.hosts.items():
            ip("netns", "add", ns)
            ip("-n", ns, "link", "set", "lo", "up")
            inside, outside = f"{ns}i", f"{ns}o"
            ip("link", "add", inside, "type", "veth", "peer", "name", outside)
            ip("link", "set", inside, "netns", ns)
            ip("link", "set", outside, "netns", self.lan)
            ip("-n", ns, "addr", "add", f"{self.address(host)}/24", "dev", inside)
            ip("-n", ns, "link", "set", inside, "up")
            ip("-n", self.lan, "link", "set", outside, "master", "br0")
            ip("-n", self.lan, "link", "set", outside, "up")

    def set_link(self, host, up):
        ns = self.hosts[host][0]
        ip("-n", ns, "link", "set", f"{ns}i", "up" if up else "down")

    def spawn(self, host, argv, log, env=None):
        with open(log, "ab") as out:
            proc = subprocess.Popen(
                ["ip", "netns", "exec", self.hosts[host][0], *map(str, argv)], stdout=out, stderr=subprocess.STDOUT, env=env
            )
        self.procs.append(proc)
        return proc

    def destroy(self):
        for proc in self.procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.wait(10)
        for ns, _ in self.hosts.values():
            ip("netns", "del", ns, check=False)
        ip("netns", "del", self.lan, check=False)


FAST = {
    "central": {"central": {"heartbeat_timeout": "1500ms"}},
    "engine": {"engine": {"tick": "200ms", "kwh_per_tick": 1.0}},
    "monitor": {"monitor": {"check_interval": "500ms"}},
    "driver": {"driver": {"pause_between": "1s", "default_kwh": 2, "request_timeout": "20s"}},
}


def provision(lab, host, etc, state):
    subprocess.run(
        [str(PROVISION), host, "--central-ip", lab.address("central"), "--configs-only", "--etc", etc, "--state", state],
        check=True,
        capture_output=True,
    )
    names = sorted(p.stem for p in pathlib.Path(etc).glob("*.yaml") if p.name != "evd.yaml")
    for name in names:
        # Drop-ins shorten the cadence for the test, leaving the provisioned files as shipped.
        dropin = pathlib.Path(etc) / f"{name}.d"
        dropin.mkdir(exist_ok=True)
        (dropin / "test.yaml").write_text(yaml.safe_dump(FAST[name.split("-")[0]]))
    return names


@pytest.fixture
def lab(short_tmp):
    lab = Lab(short_tmp)
    try:
        lab.build()
        yield lab
    finally:
        lab.destroy()


def test_three_hosts_then_the_cps_link_is_cut_and_restored(lab, short_tmp):
    central_ip = lab.address("central")
    broker = f"tcp://{central_ip}:9092"
    lab.spawn("central", [tansu_binary(), "broker", "--listener-url", broker, "--advertised-listener-url", broker], short_tmp / "tansu.log")
    sockets = {}
    for host in ("central", "cps", "drivers"):
        etc, state, run = short_tmp / host, short_tmp / f"{host}-state", short_tmp / f"{host}-run"
        run.mkdir()
        env = make_env(RUNTIME_DIRECTORY=run)
        for name in provision(lab, host, etc, state):
            lab.spawn(host, [BIN / "evd", "run", "-c", etc / f"{name}.yaml"], short_tmp / f"{name}.log", env=env)
            sockets[name] = run / f"{name}.sock"
    central = sockets["central"]

    def states():
        result = evctl(central, "--json", "cp", "list")
        return {cp["id"]: cp["state"] for cp in json.loads(result.stdout)} if result.returncode == 0 else {}

    def logs():
        return "\n".join(f"== {p.name}\n{p.read_text()[-2500:]}" for p in sorted(short_tmp.glob("*.log")))

    try:
        wait_for(lambda: states() == dict.fromkeys(CPS, "ACTIVE"), timeout=60, message=f"three ACTIVE CPs across hosts ({states()})")
        # D1's requests file (ALC1, ALC3, MAD2) completes, across the three machines.
        wait_for(lambda: _run(sockets["driver-D1"]).get("state") == "done", timeout=90, message="D1's requests file")
        assert [r["status"] for r in _run(sockets["driver-D1"])["results"]] == ["COMPLETED"] * 3
        # The cps machine drops off the network: its CPs go DISCONNECTED at central.
        lab.set_link("cps", up=False)
        wait_for(lambda: states() == dict.fromkeys(CPS, "DISCONNECTED"), timeout=20, message=f"DISCONNECTED CPs ({states()})")
        lab.set_link("cps", up=True)
        wait_for(lambda: states() == dict.fromkeys(CPS, "ACTIVE"), timeout=60, message=f"CPs back by themselves ({states()})")
        result = evctl(sockets["driver-D2"], "--json", "driver", "request", "MAD2", "--wait", timeout=90)
        assert result.returncode == 0, result.stderr
        assert json.loads(result.stdout)["status"] == "COMPLETED"
    except AssertionError:
        print(logs())
        raise


def _run(sock):
    result = evctl(sock, "--json", "status")
    return (json.loads(result.stdout).get("run") or {}) if result.returncode == 0 else {}
