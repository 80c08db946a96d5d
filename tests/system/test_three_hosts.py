"""Three machines (network namespaces on a bridge) provisioned by deploy/provision.sh, as in the Vagrantfile.

central (10.77.0.1: tansu + central, its API on HTTPS and the CP link TLS-only), cps (10.77.0.2:
three engine+monitor pairs, registered through central's API), drivers (10.77.0.3: D1 with a
requests file, D2). The cps host's link is cut and restored.
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
from helpers import BIN, evctl, evctl_json, make_env, wait_for

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

    def run(self, host, argv, env=None):
        return subprocess.run(
            ["ip", "netns", "exec", self.hosts[host][0], *map(str, argv)], capture_output=True, text=True, env=env, timeout=120
        )

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


def provision(lab, host, etc, state, share):
    """deploy/provision.sh, run on ``host`` itself (cps registers its CPs over the network)."""
    args = [PROVISION, host, "--central-ip", lab.address("central"), "--configs-only", "--etc", etc, "--state", state]
    result = lab.run(host, [*args, "--share", share, "--bin", BIN])
    assert result.returncode == 0, result.stderr
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


PLAIN_CLIENT = """
import socket, sys
with socket.create_connection((sys.argv[1], 7000), timeout=5) as s:
    s.sendall(b"\\x02REG#ALC1#x#0.5##guess\\x03\\x00")
    try:
        print("closed" if s.recv(100) == b"" else "answered")
    except ConnectionResetError:
        print("closed")
"""


def test_three_hosts_provisioned_over_tls_then_the_cps_link_is_cut_and_restored(lab, short_tmp):
    central_ip = lab.address("central")
    broker = f"tcp://{central_ip}:9092"
    share = short_tmp / "share"  # what the Vagrant machines share as /vagrant/.site
    lab.spawn("central", [tansu_binary(), "broker", "--listener-url", broker, "--advertised-listener-url", broker], short_tmp / "tansu.log")
    sockets = {}

    def start(host):
        etc, state, run = short_tmp / host, short_tmp / f"{host}-state", short_tmp / f"{host}-run"
        run.mkdir()
        env = make_env(RUNTIME_DIRECTORY=run)
        for name in provision(lab, host, etc, state, share):
            lab.spawn(host, [BIN / "evd", "run", "-c", etc / f"{name}.yaml"], short_tmp / f"{name}.log", env=env)
            sockets[name] = run / f"{name}.sock"
        return env

    def states():
        result = evctl(sockets["central"], "--json", "cp", "list")
        return {cp["id"]: cp["state"] for cp in json.loads(result.stdout)} if result.returncode == 0 else {}

    def logs():
        return "\n".join(f"== {p.name}\n{p.read_text()[-2500:]}" for p in sorted(short_tmp.glob("*.log")))

    try:
        central_env = start("central")
        # Central, once up, issues the provisioning token into the share; cps registers its CPs with it.
        token = lab.run("central", [PROVISION, "token", "--share", share, "--bin", BIN], env=central_env)
        assert token.returncode == 0, token.stderr
        start("cps")
        for cp in CPS:
            assert (short_tmp / "cps-state" / f"{cp}.cred").read_text().strip()  # got over HTTPS, never copied
        start("drivers")
        # Drivers too are registered through the API: central serves no other (central.open_drivers: false).
        assert [d["id"] for d in evctl_json(sockets["central"], "drivers")] == ["D1", "D2"]
        wait_for(lambda: states() == dict.fromkeys(CPS, "ACTIVE"), timeout=60, message=f"three ACTIVE CPs across hosts ({states()})")
        audit = evctl_json(sockets["central"], "audit", "--limit", "200")
        issued = [r for r in audit if r["action"] == "command cp.register"]
        assert sorted(r["parameters"]["args"]["id"] for r in issued) == sorted(CPS), issued
        assert all(r["source"] == f"api token provision from {lab.address('cps')}" for r in issued)
        # A client in clear on the CP link is hung up on and audited (central.tls.required).
        plain = lab.run("cps", [BIN / "python", "-c", PLAIN_CLIENT, central_ip])
        assert plain.stdout.strip() == "closed", plain
        wait_for(
            lambda: any(
                r["action"] == "monitor connection" and r["outcome"] == "refused: plain connection on a TLS-only link"
                for r in evctl_json(sockets["central"], "audit", "--limit", "200")
            ),
            message="the plain client in central's audit log",
        )
        # D1's requests file (ALC1, ALC3, MAD2) completes, across the three machines.
        wait_for(lambda: _run(sockets["driver-D1"]).get("state") == "done", timeout=90, message="D1's requests file")
        assert [r["status"] for r in _run(sockets["driver-D1"])["results"]] == ["COMPLETED"] * 3
        # An operator on the drivers machine watches the network over HTTPS.
        remote = lab.run(
            "drivers", [BIN / "evctl", "--url", f"https://{central_ip}:8443", "--cacert", share / "ca.pem", "--json", "cp", "list"]
        )
        assert remote.returncode == 0, remote.stderr
        assert {cp["id"]: cp["state"] for cp in json.loads(remote.stdout)} == dict.fromkeys(CPS, "ACTIVE")
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
