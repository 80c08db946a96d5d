"""The whole mechanics (SPEC.md R2–R14) with real evd processes, on both transports."""

import datetime
import json
import signal
import socket
import time

from evd import framing

from helpers import wait_for


def ts(text):
    return datetime.datetime.fromisoformat(text.replace("Z", "+00:00"))


def build(network, cps=("A1",), drivers=("D1",), engine=None, driver=None):
    central = network.central()
    for cp_id in cps:
        network.cp(cp_id, price=0.5, engine=engine)
    for driver_id in drivers:
        network.driver(driver_id, **(driver or {}))
    network.start_all()
    network.wait_all("ACTIVE", list(cps))
    network.wait_stream_ready()
    return central


def test_happy_path_plug_progress_unplug_ticket(network):
    build(network, cps=("A1", "A2", "A3"), drivers=("D1", "D2"), engine={"kwh_per_tick": 0.5})
    driver, engine = network.nodes["driver-D1"], network.nodes["engine-A1"]
    wait_for(lambda: len(driver.evctl_json("driver", "cps")) == 3, message="the driver to see every CP")
    assert driver.evctl_json("driver", "request", "A2", "--kwh", "40")["status"] == "REQUESTED"
    wait_for(lambda: network.nodes["engine-A2"].call("status")["state"] == "AUTHORIZED", message="authorisation at the engine")
    assert network.state_of("A2") == "SUPPLYING"  # reserved for D1 while waiting for the plug
    refused = engine.evctl("engine", "plug")  # A1 has no authorised supply
    assert refused.returncode == 4 and "no authorised supply" in refused.stderr
    network.nodes["engine-A2"].evctl_json("engine", "plug")
    seen = []

    def progressing():
        kwh = network.cps()["A2"]["kwh"]
        if kwh is not None and (not seen or kwh != seen[-1]):
            seen.append(kwh)
        return len(seen) >= 4

    wait_for(progressing, timeout=20, message="live kWh at central")
    assert seen == sorted(seen) and seen[-1] > seen[0]
    wait_for(lambda: (driver.call("status")["current"] or {}).get("kwh", 0) > 0, message="live kWh at the driver")
    network.nodes["engine-A2"].evctl_json("engine", "unplug")
    wait_for(lambda: network.tickets("D1"), message="the ticket")
    (ticket,) = network.tickets("D1")
    (row,) = network.sessions(driver="D1")
    assert ticket["status"] == row["status"] == "COMPLETED"
    assert ticket["kwh"] == row["kwh"] > 0 and ticket["eur"] == row["eur"] == round(row["kwh"] * 0.5, 2)
    assert network.nodes["driver-D2"].call("driver.history") == []  # nobody else's ticket
    network.wait_state("A2", "ACTIVE")


def test_request_file_with_a_stopped_cp_in_the_middle(network, short_tmp):
    build(network, cps=("A1", "A2", "A3"), drivers=("D1",), engine={"auto_plug": True, "kwh_per_tick": 1.0}, driver={"pause_between": "4s"})
    network.nodes["central"].evctl_json("cp", "stop", "A2")
    network.wait_state("A2", "STOPPED")
    requests = short_tmp / "requests.txt"
    requests.write_text("A1\nA2\n\n# a comment\nA3\n")
    driver = network.nodes["driver-D1"]
    assert driver.evctl_json("driver", "run", str(requests))["requests"] == 3
    wait_for(lambda: (driver.call("status")["run"] or {}).get("state") == "done", timeout=60, message="the file to be done")
    run = driver.call("status")["run"]
    assert [r["status"] for r in run["results"]] == ["COMPLETED", "DENIED", "COMPLETED"]
    sessions = network.sessions(driver="D1")
    assert sorted(s["status"] for s in sessions) == ["COMPLETED", "COMPLETED", "DENIED"]
    assert [s["reason"] for s in sessions if s["status"] == "DENIED"] == ["charging point is out of order"]
    # The next request leaves at least the configured pause after the previous outcome.
    requested = sorted(_requested_times(network, "D1"))
    ended = [ts(r["ended"]) for r in run["results"]]
    for end, next_request in zip(ended[:-1], requested[1:], strict=True):
        assert (next_request - end).total_seconds() >= 4.0 - 0.05, (end, next_request)


def _requested_times(network, driver):
    db = network.root / "state" / "central.db"
    import sqlite3

    with sqlite3.connect(db) as conn:
        return [ts(r[0]) for r in conn.execute("SELECT requested_at FROM sessions WHERE driver = ?", (driver,))]


def test_stop_all_during_a_supply_then_resume_all(network):
    central = build(network, cps=("A1", "A2"), drivers=("D1",), engine={"auto_plug": True})
    driver = network.nodes["driver-D1"]
    driver.evctl_json("driver", "request", "A1", "--kwh", "100")
    network.wait_state("A1", "SUPPLYING")
    wait_for(lambda: (network.cps()["A1"]["kwh"] or 0) >= 2, message="some energy")
    assert central.evctl_json("cp", "stop", "--all") == {"stopped": ["A1", "A2"]}
    network.wait_all("STOPPED", ["A1", "A2"])
    wait_for(lambda: network.tickets("D1"), message="the ticket")
    (ticket,) = network.tickets("D1")
    assert ticket["status"] == "INTERRUPTED" and ticket["kwh"] > 0
    assert central.evctl_json("cp", "list")[0]["state"] == "STOPPED"
    denied = driver.evctl("--json", "driver", "request", "A2", "--wait")
    assert denied.returncode == 4 and json.loads(denied.stdout)["reason"] == "charging point is out of order"
    central.evctl_json("cp", "resume", "--all")
    network.wait_all("ACTIVE", ["A1", "A2"])
    assert central.evctl("cp", "stop", "NOPE").returncode == 4


def test_engine_killed_during_a_supply(network):
    build(network, cps=("A1",), drivers=("D1",), engine={"auto_plug": True})
    network.nodes["driver-D1"].evctl_json("driver", "request", "A1", "--kwh", "100")
    wait_for(lambda: (network.cps()["A1"]["kwh"] or 0) >= 2, message="some energy")
    network.nodes["engine-A1"].kill()
    killed = time.monotonic()
    network.wait_state("A1", "BROKEN", timeout=5)
    assert time.monotonic() - killed < 1.5
    wait_for(lambda: network.tickets("D1"), message="the interrupted ticket")
    (ticket,) = network.tickets("D1")
    journal = json.loads((network.root / "state" / "engine-A1.journal").read_text())
    assert ticket["status"] == "INTERRUPTED" and ticket["kwh"] > 0
    assert ticket["kwh"] == journal["supply"]["kwh"]  # the energy the engine had delivered
    network.nodes["engine-A1"].start()
    network.wait_state("A1", "ACTIVE")
    # The restarted engine closes its interrupted supply: still exactly one ticket.
    wait_for(lambda: json.loads((network.root / "state" / "engine-A1.journal").read_text())["supply"] is None, message="journal closed")
    assert len(network.tickets("D1")) == 1


def test_energy_reported_after_central_closed_a_supply_corrects_its_ticket(network):
    # Central closes a faulty supply with the last energy it heard of; if the engine later
    # reports more (it went on while the stream was down), the driver is billed what it got.
    build(network, cps=("A1",), drivers=("D1",), engine={"auto_plug": True})
    network.nodes["driver-D1"].evctl_json("driver", "request", "A1", "--kwh", "100")
    wait_for(lambda: (network.cps()["A1"]["kwh"] or 0) >= 1, message="some energy")
    network.nodes["engine-A1"].kill()
    wait_for(lambda: network.tickets("D1"), message="the interrupted ticket")
    (first,) = network.tickets("D1")
    (session,) = network.sessions(driver="D1")
    late = dict(cp="A1", session=session["id"], driver="D1", kwh=first["kwh"] + 3, eur=0.0, seq=10**6, status="COMPLETED", reason=None)
    inject(network, "cp.telemetry", "A1", [_sealed(network, "ended", **late)] * 2)  # delivered twice
    wait_for(lambda: network.tickets("D1")[0]["kwh"] == first["kwh"] + 3, message="the corrected ticket")
    (ticket,) = network.tickets("D1")  # replaced, not added
    (row,) = network.sessions(driver="D1")
    assert ticket["status"] == row["status"] == "INTERRUPTED"
    assert ticket["kwh"] == row["kwh"] == first["kwh"] + 3 and ticket["eur"] == row["eur"] == round(row["kwh"] * 0.5, 2)
    # A smaller figure afterwards (an old record) changes nothing.
    inject(network, "cp.telemetry", "A1", [_sealed(network, "ended", **{**late, "kwh": first["kwh"], "seq": 10**6 + 1})])
    time.sleep(1.0)  # give central the time to (not) act on it
    assert [(t["kwh"], t["eur"]) for t in network.tickets("D1")] == [(row["kwh"], row["eur"])]


def test_monitor_killed_then_restarted(network):
    build(network, cps=("A1",), drivers=())
    network.nodes["monitor-A1"].kill()
    network.wait_state("A1", "DISCONNECTED", timeout=3)
    network.nodes["monitor-A1"].start()
    network.wait_state("A1", "ACTIVE")


def test_central_killed_during_a_supply_and_restarted(network):
    central = build(network, cps=("A1", "A2"), drivers=("D1",), engine={"auto_plug": True, "kwh_per_tick": 1.0})
    network.nodes["driver-D1"].evctl_json("driver", "request", "A1", "--kwh", "25")
    wait_for(lambda: (network.cps()["A1"]["kwh"] or 0) >= 2, message="some energy")
    central.kill()
    time.sleep(3)  # central stays down while the supply goes on: the scenario itself
    monitors = [network.nodes[f"monitor-{cp}"].process for cp in ("A1", "A2")]
    for monitor in monitors:
        monitor.signal(signal.SIGSTOP)  # so that none registers before we look
    try:
        central.start()
        first = network.cps()
    finally:
        for monitor in monitors:
            monitor.signal(signal.SIGCONT)
    assert {cp["state"] for cp in first.values()} == {"DISCONNECTED"}  # R2: nothing known yet
    wait_for(lambda: network.tickets("D1"), timeout=30, message="the ticket after central's restart")
    network.wait_all("ACTIVE", ["A1", "A2"])
    (ticket,) = network.tickets("D1")
    (row,) = network.sessions(driver="D1")
    assert ticket["status"] == row["status"] == "COMPLETED"
    assert ticket["kwh"] == row["kwh"] == 25.0  # what the engine delivered: no tick lost or counted twice
    last = network.nodes["engine-A1"].call("status")
    assert last["supply"] is None


def test_engine_fault_key_and_a_busy_cp(network):
    build(network, cps=("A1",), drivers=("D1", "D2"), engine={"auto_plug": True})
    network.nodes["driver-D1"].evctl_json("driver", "request", "A1", "--kwh", "100")
    network.wait_state("A1", "SUPPLYING")
    busy = network.nodes["driver-D2"].evctl("--json", "driver", "request", "A1", "--wait")
    assert busy.returncode == 4 and json.loads(busy.stdout)["reason"] == "charging point is busy"
    wait_for(lambda: (network.cps()["A1"]["kwh"] or 0) >= 1, message="some energy")
    network.nodes["engine-A1"].evctl_json("engine", "fault")
    network.wait_state("A1", "BROKEN", timeout=5)
    wait_for(lambda: network.tickets("D1"), message="the interrupted ticket")
    (ticket,) = network.tickets("D1")
    assert ticket["status"] == "INTERRUPTED"
    assert network.nodes["monitor-A1"].call("status")["engine"]["health"] == "KO"
    network.nodes["engine-A1"].evctl_json("engine", "recover")
    network.wait_state("A1", "ACTIVE")


def test_start_order_does_not_matter(network):
    network.central()
    network.cp("A1", engine={"auto_plug": True})
    network.driver("D1")
    order = ["driver-D1", "engine-A1", "central", "monitor-A1"]
    for name in order:
        network.nodes[name].start(wait=False)
        time.sleep(0.5)  # each component really runs alone for a moment before the next
    for name in order:
        network.nodes[name].process.wait_ready(network.nodes[name].socket)
    network.wait_state("A1", "ACTIVE", timeout=30)
    driver = network.nodes["driver-D1"]
    wait_for(lambda: driver.call("status")["central_reachable"], timeout=30, message="central reachable from the driver")
    result = driver.evctl("--json", "driver", "request", "A1", "--kwh", "1", "--wait")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["status"] == "COMPLETED"


def _garbage(port, payload):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(payload)
        sock.settimeout(2)
        try:
            return sock.recv(100)
        except (TimeoutError, ConnectionResetError):
            return b""


def test_garbage_and_malformed_records_are_skipped(network):
    build(network, cps=("A1",), drivers=("D1",), engine={"auto_plug": True})
    engine_port = _engine_port(network)
    bad = bytearray(framing.encode_frame("REG#X"))
    bad[-1] ^= 0xFF
    assert _garbage(network.central_port, bytes(bad)) == bytes((framing.NACK,))
    assert _garbage(engine_port, b"\x00\xffrandom bytes" * 500) in (b"", bytes((framing.NACK,)))
    inject(network, "driver.requests", "D1", [
        b"not json", b"[]", b'{"v": 1, "type": "request"}',
        _msg("request", driver="D1", cp="A1", kwh="ten"), _msg("request", driver="D1", cp=7, kwh=1),
        _msg("teleport", driver="D1"), _msg("request", driver="D2", cp="A1", kwh=1),
    ])  # fmt: skip
    inject(network, "cp.telemetry", "A1", [
        b"\x00", _msg("progress", cp="A1", session="nope", driver="D1", kwh=5, eur=1, seq=1),
        _msg("ended", cp="A1", session="nope", driver="D1", kwh=5, eur=1, seq=2, status="COMPLETED", reason=None),
        _msg("progress", cp="A1", session="x", driver="D1", kwh="many", eur=1, seq=1),
    ])  # fmt: skip
    inject(network, "cp.telemetry", "ZZ9", [_msg("manual_request", cp="ZZ9", driver="D1", kwh=1)])
    inject(network, "cp.commands", "A1", [b"{}", _msg("authorize", cp="A1", session=5)])
    inject(network, "driver.events", "D1", [b"garbage", _msg("ticket", session=1)])
    inject(network, "central.status", "central", [b"nope", _msg("cps", items="x", part=0, parts=1)])
    result = network.nodes["driver-D1"].evctl("--json", "driver", "request", "A1", "--kwh", "1", "--wait")
    assert result.returncode == 0, result.stderr
    ticket = json.loads(result.stdout)
    assert ticket["status"] == "COMPLETED"
    # Replaying the whole request topic (old records again) creates nothing new.
    replay(network, "driver.requests")
    replay(network, "cp.telemetry")
    time.sleep(1.0)  # give central the time to (not) act on the replays
    assert [s["status"] for s in network.sessions()] == ["COMPLETED"]
    assert len(network.tickets("D1")) == 1
    for name in ("central", "engine-A1", "driver-D1", "monitor-A1"):
        assert network.nodes[name].process.alive(), name
    # Central's audit log keeps the skipped records as ERRORs (one a minute for each kind), and the plug-in.
    audit = network.nodes["central"].evctl_json("audit", "--limit", "300")
    errors = [r for r in audit if r["category"] == "ERROR"]
    assert any(r["source"] == "consumer" and r["action"].startswith("skipping a malformed record") for r in errors), errors
    assert any(r["source"] == "consumer" and r["action"].startswith("skipping a record on") for r in errors), errors
    assert len([r for r in errors if r["source"] == "consumer"]) == 2  # one per kind, not one per bad record
    assert any(r["action"] == "vehicle plugged in" and r["parameters"]["driver"] == "D1" for r in audit)


def _sealed(network, kind, **fields):
    """A telemetry record as the engine would send it: sealed with the key central gave its CP."""
    from evd import messages
    from evd.plugins import crypto

    key = json.loads((network.root / "state" / f"engine-{fields['cp']}.journal").read_text())["key"]
    return messages.encode(crypto.seal(key, "cp.telemetry", fields["cp"], messages.make(kind, **fields)))


def _engine_port(network):
    import yaml

    return int(yaml.safe_load(network.nodes["engine-A1"].path.read_text())["engine"]["listen"].rsplit(":", 1)[1])


def _msg(kind, **fields):
    from evd import messages

    return messages.encode(messages.make(kind, **fields))


def inject(network, topic, key, values):
    """Raw records on a topic, as a broken or hostile producer would write them."""
    full = f"{network.prefix}.{topic}"
    if network.kind == "kafka":
        from kafka import KafkaProducer

        producer = KafkaProducer(bootstrap_servers=network.bootstrap)
        for value in values:
            producer.send(full, key=key.encode(), value=value)
        producer.flush()
        producer.close()
    else:
        import sqlite3

        with sqlite3.connect(network.root / "state" / "bus.db") as db:
            db.executemany("INSERT INTO records (topic, key, value, ts) VALUES (?, ?, ?, ?)", [(full, key, v, time.time()) for v in values])


def replay(network, topic):
    """Write every record of a topic once more, as a broker failover or a careless operator might."""
    full = f"{network.prefix}.{topic}"
    if network.kind == "kafka":
        from kafka import KafkaConsumer, KafkaProducer, TopicPartition

        consumer = KafkaConsumer(bootstrap_servers=network.bootstrap, enable_auto_commit=False)
        partitions = [TopicPartition(full, p) for p in consumer.partitions_for_topic(full) or []]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        records = []
        while batch := consumer.poll(1000):
            records += [r for rs in batch.values() for r in rs]
        consumer.close()
        producer = KafkaProducer(bootstrap_servers=network.bootstrap)
        for r in records:
            producer.send(full, key=r.key, value=r.value)
        producer.flush()
        producer.close()
    else:
        import sqlite3

        with sqlite3.connect(network.root / "state" / "bus.db") as db:
            db.execute(
                "INSERT INTO records (topic, key, value, ts) SELECT topic, key, value, ? FROM records WHERE topic = ?", (time.time(), full)
            )


def test_a_request_nobody_answers_ends_within_request_timeout(local_network):
    driver = local_network.driver("D1", request_timeout="2s")
    driver.start()  # no central at all
    started = time.monotonic()
    result = driver.evctl("driver", "request", "A1", "--wait")
    assert result.returncode == 1 and "no answer from central within 2s" in result.stderr
    assert time.monotonic() - started < 10
    assert driver.call("status")["current"] is None  # free for the next request
