"""Drivers as the assignment has them: registered at central (R26), ending their own supply, and
manual supplies started at the charging point itself (R4), each through to the ticket."""

import json

from test_api import call, token

from helpers import run, wait_for

FAST_ENGINE = {"auto_plug": True, "kwh_per_tick": 0.5}


def start(net, central=None, drivers=("D1",), engine=None):
    net.central(**(central or {}))
    net.cp("A1", engine=engine or FAST_ENGINE)
    for driver_id in drivers:
        net.driver(driver_id, request_timeout="10s")
    net.start_all()
    net.wait_state("A1", "ACTIVE")
    net.wait_stream_ready()
    return net.nodes["central"]


def request(net, driver_id, *args):
    return net.nodes[f"driver-{driver_id}"].evctl("--json", "driver", "request", "A1", *args)


def _panel_messages(node):
    from evd.client import ControlClient

    with ControlClient(node.socket) as client:
        client.send("watch")
        return [m["text"] for m in client.read_event(5)["state"].get("messages", [])]


def test_with_closed_registration_only_registered_drivers_are_served(local_network):
    net = local_network
    central = start(net, central={"open_drivers": False}, drivers=("D1", "D2"))
    assert central.evctl_json("drivers") == []
    added = central.evctl_json("drivers", "add", "D1")
    assert added["id"] == "D1" and added["supplying"] is None and added["first_seen"]
    again = central.evctl("drivers", "add", "D1")
    assert again.returncode == 4 and "registered already" in again.stderr
    # An unknown driver is denied, with the reason on both sides.
    denied = request(net, "D2", "--kwh", "1", "--wait")
    assert denied.returncode == 4 and "unknown driver" in denied.stderr
    assert any("D2" in text and "unknown driver" in text for text in _panel_messages(central))
    assert any("unknown driver" in text for text in _panel_messages(net.nodes["driver-D2"]))
    # A registered one is served.
    served = request(net, "D1", "--kwh", "1", "--wait")
    assert served.returncode == 0, served.stderr
    assert json.loads(served.stdout)["status"] == "COMPLETED"
    listed = {d["id"]: d for d in central.evctl_json("drivers", "list")}
    assert list(listed) == ["D1"] and listed["D1"]["last_seen"]
    assert "D1" in central.evctl("drivers").stdout  # the table, as typed alone
    # Removing: unknown ids and bad ids are refused; a removed driver is denied again.
    assert central.evctl("drivers", "remove", "D7").returncode == 4
    assert central.evctl("drivers", "add", "bad id!").returncode == 2  # a usage error
    assert central.evctl_json("drivers", "remove", "D1") == {"id": "D1", "removed": True}
    assert request(net, "D1", "--kwh", "1", "--wait").returncode == 4
    records = central.evctl_json("audit", "--limit", "100")
    assert {"driver registered", "driver removed"} <= {r["action"] for r in records}


def test_registered_drivers_over_the_api_and_evctl_url(local_network, tmp_path):
    net = local_network
    start(net, central={"open_drivers": False}, drivers=())
    ops = token(net)
    assert call(net, "GET", "/api/drivers") == (200, [])
    status, added = call(net, "POST", "/api/drivers", {"id": "D5"}, token=ops)
    assert status == 201 and added["id"] == "D5"
    assert call(net, "POST", "/api/drivers", {"id": "D5"}, token=ops)[0] == 409
    assert call(net, "POST", "/api/drivers", {"id": "D6"})[0] == 401
    assert call(net, "POST", "/api/drivers", {"name": "D6"}, token=ops)[0] == 422
    assert call(net, "POST", "/api/drivers", {"id": "no spaces"}, token=ops)[0] == 422
    assert call(net, "DELETE", "/api/drivers/D9", token=ops)[0] == 404
    token_file = tmp_path / "ops.token"
    token_file.write_text(ops)
    url = f"http://127.0.0.1:{net.api_port}"
    listed = run("evctl", "--url", url, "--json", "drivers")
    assert listed.returncode == 0 and [d["id"] for d in json.loads(listed.stdout)] == ["D5"]
    assert run("evctl", "--url", url, "--token-file", token_file, "drivers", "add", "D6").returncode == 0
    assert run("evctl", "--url", url, "--token-file", token_file, "drivers", "remove", "D5").returncode == 0
    assert [d["id"] for d in call(net, "GET", "/api/drivers")[1]] == ["D6"]


def test_open_registration_registers_a_driver_on_first_use(local_network):
    net = local_network
    central = start(net)
    assert central.evctl_json("drivers") == []
    assert request(net, "D1", "--kwh", "1", "--wait").returncode == 0
    assert [d["id"] for d in central.evctl_json("drivers")] == ["D1"]


def test_a_driver_ends_its_own_supply_with_an_interrupted_ticket(local_network):
    net = local_network
    central = start(net)
    driver = net.nodes["driver-D1"]
    nothing = driver.evctl("driver", "cancel")
    assert nothing.returncode == 4 and "no supply" in nothing.stderr
    assert request(net, "D1", "--kwh", "100").returncode == 0
    wait_for(lambda: (central.evctl_json("cp", "list")[0]["kwh"] or 0) >= 1, message="the supply to run")
    assert central.evctl_json("drivers")[0]["supplying"] == "A1"
    cancelled = driver.evctl("--json", "driver", "cancel")
    assert cancelled.returncode == 0, cancelled.stderr
    ticket = json.loads(cancelled.stdout)
    assert ticket["status"] == "INTERRUPTED" and ticket["reason"] == "cancelled by the driver"
    assert 1 <= ticket["kwh"] < 100 and ticket["eur"] == round(ticket["kwh"] * 0.5, 2)
    (session,) = net.sessions()
    assert (session["status"], session["kwh"], session["reason"]) == ("INTERRUPTED", ticket["kwh"], "cancelled by the driver")
    net.wait_state("A1", "ACTIVE")
    assert driver.evctl("driver", "cancel").returncode == 4
    assert any(r["action"] == "supply cancelled" for r in central.evctl_json("audit", "--limit", "50"))


def test_a_manual_supply_bills_the_named_driver_or_a_walk_in(local_network):
    net = local_network
    central = start(net, engine={"kwh_per_tick": 0.5})  # no auto plug: the vehicle is at the CP for a manual one
    engine, driver = net.nodes["engine-A1"], net.nodes["driver-D1"]
    started = engine.evctl("--json", "engine", "supply", "--driver", "D1", "--kwh", "3")
    assert started.returncode == 0, started.stderr
    # Live figures at central and at the driver, while it runs.
    wait_for(lambda: (central.evctl_json("cp", "list")[0]["kwh"] or 0) > 0, message="live kWh at central")
    assert central.evctl_json("cp", "list")[0]["driver"] == "D1"
    wait_for(lambda: (driver.call("status")["current"] or {}).get("kwh", 0) > 0, message="live kWh at the driver")
    busy = engine.evctl("engine", "supply", "--kwh", "1")
    assert busy.returncode == 4 and "busy" in busy.stderr
    wait_for(lambda: net.tickets("D1"), timeout=20, message="the ticket at driver D1")
    (ticket,) = net.tickets("D1")
    assert (ticket["status"], ticket["kwh"], ticket["eur"]) == ("COMPLETED", 3.0, 1.5)
    net.wait_state("A1", "ACTIVE")
    # Without a driver: a walk-in id, shown by the engine and listed in sessions.
    walk_in = json.loads(engine.evctl("--json", "engine", "supply", "--kwh", "1").stdout)["driver"]
    assert walk_in.startswith("walk-in-A1-")
    wait_for(lambda: any(s["driver"] == walk_in and s["status"] == "COMPLETED" for s in net.sessions()), message="the walk-in's supply")
    assert any(walk_in in text for text in _panel_messages(engine))
    assert walk_in not in [d["id"] for d in central.evctl_json("drivers")]  # a walk-in is no registered driver
    central.evctl("cp", "stop", "A1")
    wait_for(lambda: engine.call("status")["state"] == "STOPPED", message="the engine to hear it is stopped")
    stopped = engine.evctl("engine", "supply", "--driver", "D1")
    assert stopped.returncode == 4 and "out of order" in stopped.stderr
