"""The commands people type: evd demo, the assignment's EV_* commands, the shipped example configs."""

import json
import pathlib
import signal
import subprocess

import pytest

from evd.client import ControlClient

from brokers import free_port
from helpers import BIN, evctl, make_env, run, wait_for

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXAMPLES = sorted(p for p in (ROOT / "etc" / "evcharging").glob("*.yaml") if p.name != "evd.yaml")


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_example_config_passes_check(path):
    result = run("evd", "check", "-c", path)
    assert result.returncode == 0, result.stderr


def test_check_rejects_a_broken_copy_of_an_example(tmp_path):
    broken = tmp_path / "central.yaml"
    broken.write_text((ROOT / "etc" / "evcharging" / "central.yaml").read_text().replace("heartbeat_timeout: 3s", "heartbeat_timeout: 3"))
    result = run("evd", "check", "-c", broken)
    assert result.returncode == 2 and f"{broken}:" in result.stderr and "expected a duration" in result.stderr


def _evd_pids():
    out = subprocess.run(["pgrep", "-f", "evd.cli run -c"], capture_output=True, text=True).stdout.split()
    return {int(p) for p in out}


def test_demo_supplies_unattended_and_ctrl_c_leaves_no_process(short_tmp):
    before = _evd_pids()
    demo = subprocess.Popen(
        [str(BIN / "evd"), "demo", "--cps", "4", "--drivers", "1", "--dir", str(short_tmp)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    socket = short_tmp / "run" / "central.sock"
    try:

        def progress():
            with ControlClient(socket, timeout=2) as client:
                cps = client.call("cp.list")
                sessions = client.call("sessions")
            return sum(cp["state"] != "DISCONNECTED" for cp in cps) == 4 and any(s["status"] == "COMPLETED" for s in sessions)

        wait_for(progress, timeout=30, interval=0.5, message="4 connected CPs and a completed supply")
        assert len(_evd_pids() - before) == 10  # central, 4 engines, 4 monitors, 1 driver
        with ControlClient(socket, timeout=2) as client:  # its driver is registered, and the only one served
            assert [d["id"] for d in client.call("drivers.list")] == ["D1"]
    finally:
        demo.send_signal(signal.SIGINT)
        output, _ = demo.communicate(timeout=30)
    assert demo.returncode == 0, output
    assert f"evctl -s {socket} attach" in output
    wait_for(lambda: not (_evd_pids() - before), timeout=10, message="every demo process to exit")
    assert not list((short_tmp / "run").iterdir())  # each daemon removed its socket


def test_demo_without_dir_says_where_it_is_and_removes_it(short_tmp):
    demo = subprocess.Popen(
        [str(BIN / "evd"), "demo", "--cps", "1", "--drivers", "0"],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=make_env(TMPDIR=short_tmp),  # its temporary directory where this test cleans up
    )
    try:
        folder = wait_for(lambda: [p for p in short_tmp.iterdir() if p.name.startswith("evd-demo-")], timeout=10)[0]
        socket = folder / "run" / "central.sock"

        def central_answers():
            with ControlClient(socket, timeout=2) as client:
                return client.call("cp.list")

        wait_for(central_answers, timeout=30, message="the demo's central")
    finally:
        demo.send_signal(signal.SIGINT)
        output, _ = demo.communicate(timeout=30)
    assert demo.returncode == 0, output
    assert f"everything is under {folder} (temporary: removed when the demo stops" in output.splitlines()[1]
    assert output.splitlines()[-1] == f"removed {folder}"
    assert not folder.exists()


def test_assignment_commands_over_a_real_broker(short_tmp, kafka_bootstrap):
    """EV_Central, EV_CP_E, EV_CP_M and EV_Driver with the assignment's positional parameters (R15)."""
    env = make_env(RUNTIME_DIRECTORY=short_tmp, STATE_DIRECTORY=short_tmp)
    central_port, engine_port = free_port(), free_port()
    requests = short_tmp / "requests.txt"
    requests.write_text("ALC1\n")
    commands = {
        "central": ["EV_Central", str(central_port), kafka_bootstrap, str(short_tmp / "central.db")],
        "engine": ["EV_CP_E", kafka_bootstrap, str(engine_port)],
        "monitor": ["EV_CP_M", f"127.0.0.1:{engine_port}", f"127.0.0.1:{central_port}", "ALC1", "C/ Italia 5", "0.54"],
        "driver": ["EV_Driver", kafka_bootstrap, "D1"],
    }
    procs = {}
    try:
        for name, argv in commands.items():
            with open(short_tmp / f"{name}.log", "wb") as log:
                procs[name] = subprocess.Popen(
                    [str(BIN / argv[0]), *argv[1:]], stdout=log, stderr=subprocess.STDOUT, env=env, cwd=short_tmp
                )
        central = short_tmp / "central.sock"
        wait_for(
            lambda: json.loads(evctl(central, "--json", "cp", "list", env=env).stdout)[0]["state"] == "ACTIVE",
            timeout=40,
            message="ALC1 ACTIVE",
        )
        (cp,) = json.loads(evctl(central, "--json", "cp", "list", env=env).stdout)
        assert (cp["id"], cp["location"], cp["price_eur_kwh"]) == ("ALC1", "C/ Italia 5", 0.54)
        driver = short_tmp / "driver-D1.sock"
        wait_for(
            lambda: json.loads(evctl(driver, "--json", "status", env=env).stdout)["central_reachable"],
            timeout=30,
            message="central reachable",
        )
        assert evctl(driver, "driver", "request", "ALC1", "--kwh", "2", env=env).returncode == 0
        engine = short_tmp / f"engine-{engine_port}.sock"
        wait_for(
            lambda: evctl(engine, "engine", "plug", env=env).returncode == 0, timeout=30, message="the authorisation to reach the engine"
        )

        def closed():
            history = json.loads(evctl(driver, "--json", "driver", "history", env=env).stdout)
            return [t for t in history if t["status"] in ("COMPLETED", "INTERRUPTED", "DENIED")]  # not AUTHORIZED yet

        wait_for(closed, timeout=30, message="the ticket")
        (ticket,) = closed()
        assert (ticket["status"], ticket["kwh"], ticket["eur"]) == ("COMPLETED", 2.0, 1.08)
    finally:
        for proc in procs.values():
            proc.send_signal(signal.SIGTERM)
        for name, proc in procs.items():
            assert proc.wait(20) == 0, (short_tmp / f"{name}.log").read_text()


def test_assignment_commands_reject_bad_parameters():
    result = run("EV_Central", "notaport", "localhost:9092")
    assert result.returncode == 2 and "not a port number" in result.stderr
    result = run("EV_CP_M", "nohostport", "127.0.0.1:7000", "ALC1")
    assert result.returncode == 2 and "expected host:port" in result.stderr
