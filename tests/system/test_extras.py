"""Release-2 plugins through real daemons: registry, authentication, audit (R18, R19, R21)."""

import datetime
import json
import os

from evd.client import ControlClient

from helpers import wait_for


def audit(central):
    return central.evctl_json("audit", "--limit", "50")


def test_registered_cp_needs_its_credential(local_network, short_tmp):
    net = local_network
    central = net.central(open_registration=False).start()
    registered = central.evctl_json("cp", "register", "B1", "--location", "Lab 1", "--price", "0.4", "--city", "Alicante")
    credential = registered["credential"]
    assert len(credential) >= 24 and credential not in (net.root / "state" / "central.db").read_bytes().decode("latin-1")
    (short_tmp / "wrong.cred").write_text("not-it\n")
    (short_tmp / "B1.cred").write_text(credential + "\n")
    engine, monitor = net.cp("B1", price=0.4, monitor={"credential_file": str(short_tmp / "wrong.cred")})
    engine.start()
    monitor.start()
    wait_for(lambda: any(r["outcome"] == "refused: wrong credential" for r in audit(central)), message="the refusal in the audit log")
    assert net.state_of("B1") == "DISCONNECTED"
    assert any("wrong credential" in m["text"] for m in _messages(monitor))  # shown on the monitor's panel
    monitor.kill()
    monitor.path.write_text(monitor.path.read_text().replace("wrong.cred", "B1.cred"))
    monitor.start()
    net.wait_state("B1", "ACTIVE", timeout=30)  # past the doubling back-off of the failed source
    assert net.cps()["B1"]["location"] == "Lab 1"
    # An unknown CP is refused while registration is closed.
    _, stranger = net.cp("ZZ1")
    stranger.start()
    wait_for(
        lambda: any(r["parameters"].get("cp") == "ZZ1" and r["outcome"].startswith("refused") for r in audit(central)),
        message="stranger refused",
    )
    # Unregistering revokes the credential.
    assert central.evctl_json("cp", "unregister", "B1") == {"id": "B1", "unregistered": True}
    assert "B1" not in net.cps()
    records = audit(central)
    categories = {r["category"] for r in records}
    assert {"SECURITY", "AUTH", "SYSTEM"} <= categories
    admin = [r for r in records if r["action"] == "command cp.unregister"]
    assert admin and admin[0]["source"].startswith(f"uid {os.geteuid()}")


def _messages(node):
    with ControlClient(node.socket) as client:
        client.send("watch")
        return client.read_event(5)["state"].get("messages", [])


def test_supplies_are_audited_and_queryable(local_network):
    net = local_network
    central = net.central()
    net.cp("A1", engine={"auto_plug": True})
    driver = net.driver("D1")
    net.start_all()
    net.wait_state("A1", "ACTIVE")
    result = driver.evctl("--json", "driver", "request", "A1", "--kwh", "1", "--wait")
    assert result.returncode == 0, result.stderr
    wait_for(lambda: any(r["action"] == "supply ended" for r in audit(central)), message="the supply in the audit log")
    records = audit(central)
    ended = next(r for r in records if r["action"] == "supply ended")
    assert ended["category"] == "CHARGE" and ended["outcome"] == "COMPLETED" and ended["parameters"]["kwh"] == 1.0
    since = ended["time"]
    newer = central.evctl_json("audit", "--since", since)
    assert newer and all(r["time"] >= since for r in newer)
    # The same instant written with an offset selects the same records.
    moment = datetime.datetime.fromisoformat(since).astimezone(datetime.timezone(datetime.timedelta(hours=2)))
    assert central.evctl_json("audit", "--since", moment.isoformat())[-1] == newer[-1]  # the oldest one kept
    assert central.evctl_json("audit", "--since", "2999-01-01") == []
    bad = central.evctl("audit", "--since", "yesterday")
    assert bad.returncode == 2 and "not an ISO 8601 date or time: 'yesterday'" in bad.stderr
    assert len(central.evctl_json("audit", "--limit", "2")) == 2


def test_disabling_the_extras_leaves_the_rest_working(local_network, monkeypatch):
    monkeypatch.setenv("EVD_DISABLE_PLUGINS", "audit,registry")
    net = local_network
    central = net.central()
    net.cp("A1", engine={"auto_plug": True})
    driver = net.driver("D1")
    net.start_all()
    net.wait_state("A1", "ACTIVE")
    result = driver.evctl("--json", "driver", "request", "A1", "--kwh", "1", "--wait")
    assert result.returncode == 0 and json.loads(result.stdout)["status"] == "COMPLETED"
    refused = central.evctl("audit")
    assert refused.returncode == 4 and "unknown command 'audit'" in refused.stderr
    assert central.evctl("cp", "register", "X9", "--location", "Lab", "--price", "0.3").returncode == 4


def test_plugins_can_be_turned_off_in_config(local_network):
    net = local_network
    central = net.central()
    central.path.write_text(central.path.read_text() + "audit: {enabled: false}\nregistry: {enabled: false}\n")
    central.start()
    off = central.evctl("audit")
    assert off.returncode == 1 and "turned off" in off.stderr
    assert central.evctl("cp", "register", "X9", "--location", "Lab", "--price", "0.3").returncode == 4
    assert central.evctl_json("cp", "list") == []


def test_driver_history_comes_from_central(local_network):
    net = local_network
    net.central()
    net.cp("A1", engine={"auto_plug": True})
    driver = net.driver("D1")
    net.start_all()
    net.wait_state("A1", "ACTIVE")
    assert driver.evctl("driver", "request", "A1", "--kwh", "1", "--wait").returncode == 0
    assert driver.evctl("driver", "request", "NOPE", "--wait").returncode == 4
    driver.restart()  # the app forgets everything; central does not
    history = driver.evctl_json("driver", "history")
    assert sorted(h["status"] for h in history) == ["COMPLETED", "DENIED"]
    assert all(h["driver"] == "D1" for h in history)


def _raw_records(net, topic):
    import sqlite3

    with sqlite3.connect(net.root / "state" / "bus.db") as db:
        return [json.loads(v) for (v,) in db.execute("SELECT value FROM records WHERE topic = ?", (f"{net.prefix}.{topic}",))]


def test_engine_central_records_are_sealed_and_tampering_is_rejected(local_network):
    from system.test_mechanics import _msg, inject

    net = local_network
    central = net.central()
    net.cp("A1", engine={"auto_plug": True})
    driver = net.driver("D1")
    net.start_all()
    net.wait_state("A1", "ACTIVE")
    assert driver.evctl("driver", "request", "A1", "--kwh", "1", "--wait").returncode == 0
    telemetry, commands = _raw_records(net, "cp.telemetry"), _raw_records(net, "cp.commands")
    assert telemetry and all(r["type"] == "sealed" for r in telemetry)
    assert commands and all(r["type"] == "sealed" for r in commands)
    assert not any("kwh" in json.dumps(r) for r in telemetry + commands)  # nothing readable on the wire
    # A tampered sealed record and a plain one, both claiming to come from A1.
    tampered = dict(telemetry[-1], data=telemetry[-1]["data"][:-4] + "AAAA")
    (session,) = [s for s in net.sessions() if s["status"] == "COMPLETED"]
    inject(
        net,
        "cp.telemetry",
        "A1",
        [json.dumps(tampered).encode(), _msg("progress", cp="A1", session=session["id"], driver="D1", kwh=99, eur=9, seq=99)],
    )
    wait_for(lambda: sum(r["action"] == "cp.telemetry record rejected" for r in audit(central)) >= 2, message="both rejections audited")
    assert net.sessions()[0]["kwh"] == 1.0  # the forged energy was not counted
    # Unregistering revokes the key: the engine's next sealed record no longer opens.
    net.nodes["monitor-A1"].kill()  # else it would register A1 afresh, with a new key
    central.evctl_json("cp", "unregister", "A1")
    assert net.nodes["engine-A1"].evctl("engine", "supply", "--kwh", "1").returncode == 0
    wait_for(lambda: any("no key" in r["outcome"] for r in audit(central)), message="the revoked key's record rejected")


def test_crypto_can_be_turned_off(local_network):
    net = local_network
    central = net.central()
    central.path.write_text(central.path.read_text() + "crypto: {enabled: false}\n")
    net.cp("A1", engine={"auto_plug": True})
    driver = net.driver("D1")
    net.start_all()
    net.wait_state("A1", "ACTIVE")
    assert driver.evctl("driver", "request", "A1", "--kwh", "1", "--wait").returncode == 0
    assert {r["type"] for r in _raw_records(net, "cp.telemetry")} >= {"started", "progress", "ended"}
