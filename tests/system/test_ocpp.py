"""OCPP 1.6J chargers at a real central (DESIGN.md §10), played by the ``ocpp`` package's own client over
real WebSockets, side by side with a simulated CP: boot, supplies to a ticket, remote start, stop and
resume from evctl, faults, reconnections, a central killed mid-supply, and bad input."""

import json

import aiohttp
import pytest
from ocpp.exceptions import SecurityError
from ocpp.v16 import call
from ocpp_charger import Charger

from brokers import free_port
from helpers import wait_for


@pytest.fixture
def ocpp_net(local_network):
    net = local_network
    net.ocpp_port = free_port()
    net.central(sections={"ocpp": {"enabled": True, "listen": f"127.0.0.1:{net.ocpp_port}", "heartbeat_interval": "30s"}})
    net.cp("A1")
    net.driver("D1")
    net.start_all()
    net.wait_state("A1", "ACTIVE")
    net.wait_stream_ready()
    return net


@pytest.fixture
def chargers(ocpp_net):
    made = []

    def make(cp_id="OC1", boot=True):
        charger = Charger(f"ws://127.0.0.1:{ocpp_net.ocpp_port}", cp_id).connect()
        made.append(charger)
        if boot:
            assert charger.boot().status == "Accepted"
            charger.status("Available")
            ocpp_net.wait_state(cp_id, "ACTIVE")
        return charger

    yield make
    for charger in made:
        charger.close()


def session_of(net, session_id):
    return next(s for s in net.sessions() if s["id"] == session_id)


def audit(net):
    return net.nodes["central"].evctl_json("audit", "--limit", "500")


def test_a_charger_boots_supplies_and_gets_its_ticket_once(ocpp_net, chargers):
    net = ocpp_net
    boot = Charger(f"ws://127.0.0.1:{net.ocpp_port}", "OC1").connect()
    try:
        answer = boot.boot()
        assert answer.status == "Accepted" and answer.interval == 30
        boot.status("Available")
        net.wait_state("OC1", "ACTIVE")
        assert set(net.cps()) == {"A1", "OC1"}  # listed beside the simulated CP
        assert net.cps()["OC1"]["location"] == "EVCharging tests Lab-1"  # a new charger described by its boot
        assert boot.call(call.Heartbeat()).current_time

        assert boot.authorize("D1").id_tag_info["status"] == "Accepted"
        boot.meter = 1000
        started = boot.start_transaction("D1")
        assert started.id_tag_info["status"] == "Accepted" and isinstance(started.transaction_id, int)
        wait_for(lambda: net.cps()["OC1"]["state"] == "SUPPLYING" and net.cps()["OC1"]["driver"] == "D1", 10, message="OC1 supplying D1")

        boot.meter_values(3500)
        wait_for(lambda: net.cps()["OC1"]["kwh"] == 2.5, 10, message="2.5 kWh at central")
        assert net.cps()["OC1"]["eur"] == 1.25

        # The answer got lost: the charger sends the same StartTransaction again.
        assert boot.resend_start().transaction_id == started.transaction_id
        boot.stop_transaction(wh=6000)
        session_id = net.sessions(cp="OC1")[0]["id"]
        wait_for(lambda: net.state_of("OC1") == "ACTIVE", 10, message="OC1 free again")
        boot.resend_stop()
        sessions = net.sessions(cp="OC1")
        assert len(sessions) == 1
        session = sessions[0]
        assert (session["status"], session["kwh"], session["eur"], session["driver"]) == ("COMPLETED", 5.0, 2.5, "D1")
        assert session_id == session["id"]
        wait_for(lambda: len(net.tickets("D1")) == 1, 10, message="the driver's ticket")
        ticket = net.tickets("D1")[0]
        assert (ticket["kwh"], ticket["eur"], ticket["status"]) == (5.0, 2.5, "COMPLETED")
    finally:
        boot.close()
    wait_for(lambda: net.state_of("OC1") == "DISCONNECTED", 10, message="OC1 DISCONNECTED once its socket is gone")


def test_a_driver_starts_remotely_and_evctl_stops_and_resumes_the_charger(ocpp_net, chargers):
    net = ocpp_net
    charger = chargers("OC2")
    charger.meter = 100
    driver = net.nodes["driver-D1"]
    driver.evctl_json("driver", "request", "OC2", "--kwh", "20")
    wait_for(lambda: charger.transaction_id is not None, 10, message="the remote start")
    assert ("RemoteStartTransaction", "D1") in charger.received
    wait_for(lambda: net.cps()["OC2"]["state"] == "SUPPLYING", 10, message="OC2 supplying")
    charger.meter_values(1100)
    wait_for(lambda: net.cps()["OC2"]["kwh"] == 1.0, 10, message="1 kWh at central")

    central = net.nodes["central"]
    assert central.evctl("cp", "stop", "OC2").returncode == 0
    wait_for(lambda: ("ChangeAvailability", "Inoperative") in charger.received, 10, message="ChangeAvailability Inoperative")
    assert ("RemoteStopTransaction", charger.transaction_id) in charger.received
    wait_for(lambda: net.state_of("OC2") == "STOPPED", 10, message="OC2 STOPPED")
    wait_for(lambda: net.sessions(cp="OC2")[0]["status"] == "INTERRUPTED", 10, message="the supply interrupted")
    session = net.sessions(cp="OC2")[0]
    assert session["kwh"] == 1.0 and session["reason"] == "stopped by the operator"
    wait_for(lambda: [t["id"] for t in net.tickets("D1")] == [session["id"]], 10, message="one ticket")

    assert central.evctl("cp", "resume", "OC2").returncode == 0
    wait_for(lambda: ("ChangeAvailability", "Operative") in charger.received, 10, message="ChangeAvailability Operative")
    net.wait_state("OC2", "ACTIVE")
    assert net.state_of("A1") == "ACTIVE"  # the simulated CP never noticed


def test_central_stops_the_charger_once_the_requested_energy_is_delivered(ocpp_net, chargers):
    net = ocpp_net
    charger = chargers("OC8")
    net.nodes["driver-D1"].evctl_json("driver", "request", "OC8", "--kwh", "1")
    wait_for(lambda: charger.transaction_id is not None, 10, message="the remote start")
    charger.meter_values(600)
    assert not any(action == "RemoteStopTransaction" for action, _ in charger.received)
    charger.meter_values(1200)
    wait_for(lambda: ("RemoteStopTransaction", charger.transaction_id) in charger.received, 10, message="central's stop at 1 kWh")
    wait_for(lambda: net.sessions(cp="OC8")[0]["status"] == "COMPLETED", 10, message="the supply completed")
    session = net.sessions(cp="OC8")[0]
    assert (session["kwh"], session["reason"]) == (1.2, "requested energy delivered")
    net.wait_state("OC8", "ACTIVE")


def test_a_fault_breaks_the_charger_and_ends_its_supply(ocpp_net, chargers):
    net = ocpp_net
    charger = chargers("OC3")
    charger.start_transaction("D1")
    charger.meter_values(400)
    wait_for(lambda: net.cps()["OC3"]["kwh"] == 0.4, 10, message="0.4 kWh")
    charger.status("Faulted", error_code="GroundFailure", info="earth leak")
    wait_for(lambda: net.state_of("OC3") == "BROKEN", 10, message="OC3 BROKEN")
    assert net.cps()["OC3"]["reason"] == "GroundFailure: earth leak"
    wait_for(lambda: ("RemoteStopTransaction", charger.transaction_id) in charger.received, 10, message="the supply stopped")
    wait_for(lambda: net.sessions(cp="OC3")[0]["status"] == "INTERRUPTED", 10, message="an interrupted ticket")
    assert net.sessions(cp="OC3")[0]["kwh"] == 0.4
    charger.status("Available")
    net.wait_state("OC3", "ACTIVE")


def test_a_charger_survives_a_reconnection_and_central_killed_mid_supply(ocpp_net, chargers):
    net = ocpp_net
    charger = chargers("OC4")
    charger.start_transaction("D1")
    charger.meter_values(700)
    wait_for(lambda: net.cps()["OC4"]["kwh"] == 0.7, 10, message="0.7 kWh")

    charger.drop()
    net.wait_state("OC4", "DISCONNECTED")
    charger.connect()  # a reconnection, no new boot: it goes on where it was
    charger.meter_values(900)
    wait_for(lambda: net.cps()["OC4"]["kwh"] == 0.9, 10, message="0.9 kWh after the reconnection")

    net.nodes["central"].kill()  # SIGKILL, mid-supply
    net.nodes["central"].start()
    wait_for(lambda: charger.closed(), 10, message="the charger's socket gone with central")
    wait_for(lambda: _reconnects(charger), 20, message="the charger back at the restarted central")
    assert charger.resend_start().transaction_id == charger.transaction_id  # the same transaction after the restart
    charger.meter_values(1500)
    charger.stop_transaction()
    wait_for(lambda: net.sessions(cp="OC4")[0]["status"] == "COMPLETED", 10, message="the supply completed")
    sessions = net.sessions(cp="OC4")
    assert len(sessions) == 1 and sessions[0]["kwh"] == 1.5
    wait_for(lambda: len(net.tickets("D1")) == 1 and net.tickets("D1")[0]["kwh"] == 1.5, 15, message="one ticket of 1.5 kWh")


def _reconnects(charger):
    try:
        charger.connect()
        return True
    except (aiohttp.ClientError, OSError, TimeoutError):
        return False


def test_closed_registration_and_registered_drivers_rule_chargers_too(local_network):
    net = local_network
    net.ocpp_port = free_port()
    sections = {"ocpp": {"enabled": True, "listen": f"127.0.0.1:{net.ocpp_port}"}}
    net.central(open_registration=False, open_drivers=False, sections=sections)
    net.start_all()
    central = net.nodes["central"]
    charger = Charger(f"ws://127.0.0.1:{net.ocpp_port}", "LAB7").connect()
    try:
        assert charger.boot().status == "Rejected"
        with pytest.raises(SecurityError):
            charger.status("Available")
        assert "LAB7" not in net.cps()
        refused = [r for r in audit(net) if r["action"] == "ocpp boot"]
        assert refused and refused[-1]["outcome"].startswith("refused")

        # The operator registers it (price 0.40) and one driver: now it boots, and only D9 is served.
        assert central.evctl("cp", "register", "LAB7", "--location", "Lab", "--price", "0.4").returncode == 0
        assert central.evctl("drivers", "add", "D9").returncode == 0
        assert charger.boot().status == "Accepted"
        charger.status("Available")
        net.wait_state("LAB7", "ACTIVE")
        assert charger.authorize("NOBODY").id_tag_info["status"] == "Invalid"
        assert charger.start_transaction("NOBODY").id_tag_info["status"] == "Invalid"
        assert [s["reason"] for s in net.sessions(cp="LAB7")] == ["unknown driver"]
        charger.stop_transaction()  # the charger ends what it was refused: nothing billed

        assert charger.authorize("D9").id_tag_info["status"] == "Accepted"
        charger.meter = 10_000
        charger.start_transaction("D9")
        charger.stop_transaction(wh=12_000)
        wait_for(lambda: any(s["status"] == "COMPLETED" for s in net.sessions(cp="LAB7")), 10, message="D9's supply completed")
        billed = [(s["driver"], s["kwh"], s["eur"]) for s in net.sessions(cp="LAB7") if s["status"] == "COMPLETED"]
        assert billed == [("D9", 2.0, 0.8)]  # meterStop − meterStart, at central's price
    finally:
        charger.close()


def test_bad_input_is_answered_as_ocpp_says_and_central_goes_on(ocpp_net, chargers):
    net = ocpp_net
    charger = chargers("OC5")

    answer = charger.send_raw("this is not json")
    assert answer[:3] == [4, "-1", "FormationViolation"]
    answer = charger.send_raw(json.dumps([2, "u1", "MakeCoffee", {}]))
    assert answer[:3] == [4, "u1", "NotImplemented"]
    answer = charger.send_raw(json.dumps([2, "u2", "DataTransfer", {"vendorId": "x"}]))
    assert answer[:3] == [4, "u2", "NotSupported"]
    answer = charger.send_raw(
        json.dumps([2, "u3", "StartTransaction", {"connectorId": 1, "idTag": "D1", "meterStart": "lots", "timestamp": "x"}])
    )
    assert answer[:3] == [4, "u3", "TypeConstraintViolation"]
    answer = charger.send_raw(json.dumps([2, "u4", "Heartbeat", {"surprise": 1}]))
    assert answer[:3] == [4, "u4", "FormationViolation"]
    answer = charger.send_raw(json.dumps([2, "u5", "Authorize", {"idTag": "x" * 21}]))
    assert answer[:2] == [4, "u5"] and answer[2] in ("TypeConstraintViolation", "PropertyConstraintViolation")
    assert charger.call(call.Heartbeat()).current_time  # still served
    assert net.state_of("OC5") == "ACTIVE"

    # A flood of calls closes its socket (1008), and nothing else.
    flood = chargers("OC6")
    flood.run(_flood(flood, 300))
    wait_for(lambda: flood.closed(), 10, message="the flooding socket closed")
    assert flood.ws.close_code == 1008
    net.wait_state("OC6", "DISCONNECTED")
    assert net.state_of("OC5") == "ACTIVE" and net.state_of("A1") == "ACTIVE"

    # Not a charge point id, or not OCPP 1.6: the handshake fails.
    stranger = Charger(f"ws://127.0.0.1:{net.ocpp_port}", "OC7")
    try:
        with pytest.raises(aiohttp.WSServerHandshakeError) as bad_id:
            stranger.connect(path="bad%20id!")
        assert bad_id.value.status == 404
        with pytest.raises(aiohttp.WSServerHandshakeError) as no_protocol:
            stranger.connect(protocols=("ocpp2.0.1",))
        assert no_protocol.value.status == 400
    finally:
        stranger.close()

    outcomes = {(r["action"], r["outcome"]) for r in audit(net)}
    assert ("ocpp message", "refused: FormationViolation") in outcomes
    assert ("ocpp message", "refused: NotImplemented") in outcomes
    assert ("ocpp connection", "closed: more than 20 calls a second") in outcomes
    assert ("ocpp connection", "refused: invalid charge point id") in outcomes
    assert ("ocpp connection", "refused: no ocpp1.6 subprotocol") in outcomes
    assert net.nodes["central"].process.alive()


async def _flood(charger, count):
    for n in range(count):
        if charger.ws.closed:
            return
        await charger.ws.send_str(json.dumps([2, f"f{n}", "Heartbeat", {}]))
