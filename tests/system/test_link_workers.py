"""Central's monitor links in worker processes (central.link_workers): the same behaviour, off central's loop."""

import json
import os
import pathlib
import signal
import socket

from test_link_tls import hung_up

from evd import framing, pki
from evd.testing import children_of

from helpers import wait_for

CPS = ("W1", "W2", "W3")


def workers_of(pid):
    """The pids of central's link worker processes."""
    found = []
    for child in children_of(pid):
        try:
            if b"evd.link_worker" in pathlib.Path(f"/proc/{child}/cmdline").read_bytes():
                found.append(child)
        except OSError:
            continue
    return sorted(found)


def told(monitor):
    return monitor.call("status")["central"]["state"]


def test_link_workers_carry_every_monitor_exchange_and_one_that_dies_is_replaced(local_network, tmp_path):
    net = local_network
    central = net.central(link_workers=2)
    for cp_id in CPS:
        net.cp(cp_id, engine={"auto_plug": True, "kwh_per_tick": 0.2})
    net.driver("D1")
    net.start_all()
    net.wait_all("ACTIVE", list(CPS))
    net.wait_stream_ready()
    pid = central.call("status")["pid"]
    first = workers_of(pid)
    assert len(first) == 2
    monitors = {cp_id: net.nodes[f"monitor-{cp_id}"] for cp_id in CPS}
    # Central's frames reach the monitors through the workers; health changes come back.
    assert central.evctl("cp", "stop", "W1").returncode == 0
    wait_for(lambda: told(monitors["W1"]) == "STOPPED", message="the monitor told STOPPED")
    central.evctl("cp", "resume", "W1")
    wait_for(lambda: told(monitors["W1"]) == "ACTIVE", message="the monitor told ACTIVE")
    net.nodes["engine-W2"].evctl("engine", "fault")
    net.wait_state("W2", "BROKEN")
    net.nodes["engine-W2"].evctl("engine", "recover")
    net.wait_state("W2", "ACTIVE")
    # A monitor that stops beating (stopped, its connection open) is timed out by its worker.
    monitors["W2"].process.signal(signal.SIGSTOP)
    try:
        net.wait_state("W2", "DISCONNECTED", timeout=15)
    finally:
        monitors["W2"].process.signal(signal.SIGCONT)
    net.wait_state("W2", "ACTIVE", timeout=30)
    assert any(r["action"] == "disconnected" and r["outcome"] == "heartbeat timeout" for r in central.evctl_json("audit", "--limit", "100"))
    # The workers die in the middle of a supply: they are replaced, the monitors come back, nothing is lost.
    assert net.nodes["driver-D1"].evctl("driver", "request", "W3", "--kwh", "100").returncode == 0
    net.wait_state("W3", "SUPPLYING")
    for worker in first:
        os.kill(worker, signal.SIGKILL)
    wait_for(lambda: len(workers_of(pid)) == 2 and workers_of(pid) != first, timeout=15, message="new link workers")
    net.wait_all("ACTIVE", ["W1", "W2"], timeout=30)
    net.wait_state("W3", "SUPPLYING", timeout=30)
    cancelled = net.nodes["driver-D1"].evctl("--json", "driver", "cancel")
    assert cancelled.returncode == 0, cancelled.stderr
    ticket = json.loads(cancelled.stdout)
    assert ticket["status"] == "INTERRUPTED" and ticket["kwh"] > 0
    assert central.process.alive()
    last = workers_of(pid)
    assert central.stop() == 0
    wait_for(lambda: not any(alive(worker) for worker in last), timeout=10, message="the workers to exit with central")


def alive(pid):
    try:
        return pathlib.Path(f"/proc/{pid}/stat").read_text().rpartition(")")[2].split()[0] != "Z"
    except OSError:
        return False


def test_link_workers_speak_tls_and_refuse_plain_clients(local_network, short_tmp):
    pki.make_ca(short_tmp / "pki")
    pki.issue(short_tmp / "pki", "central", ["127.0.0.1"])
    net = local_network
    tls = {"cert": str(short_tmp / "pki" / "central.pem"), "key": str(short_tmp / "pki" / "central.key"), "required": True}
    central = net.central(link_workers=1, tls=tls)
    net.cp("T1", monitor={"central_ca": str(short_tmp / "pki" / "ca.pem")})
    net.start_all()
    net.wait_state("T1", "ACTIVE")
    with socket.create_connection(("127.0.0.1", net.central_port), timeout=5) as plain:
        plain.sendall(framing.encode_frame(b"REG#T9#x#0.5##"))
        assert hung_up(plain)
    wait_for(
        lambda: any(r["outcome"] == "refused: plain connection on a TLS-only link" for r in central.evctl_json("audit", "--limit", "50")),
        message="the worker's refusal in central's audit log",
    )
