"""Central's answers through its handlers: a denial for a request it cannot read, why a CP is out of service."""

import asyncio
import json
import math

import pytest
from fakes import FakeDaemon, call, driver_dispatcher, requests_sent, until

from evd import messages
from evd.central import Central, ChargingPoint
from evd.dispatcher import Dispatcher
from evd.pluginmanager import command_table
from evd.plugins import central as central_plugin

# -- central's answer ------------------------------------------------------------------------------


def central_role():
    daemon = FakeDaemon("central", None)
    role = Central(daemon)
    daemon.role = role
    return role, daemon


def malformed_request(**fields):
    message = messages.make("request", driver="D1", cp="ALC1", kwh=math.nan, expires_at=None)
    message.update(fields)
    return json.loads(json.dumps(message))


def test_central_denies_a_malformed_request_of_a_known_driver_instead_of_staying_silent():
    role, daemon = central_role()
    request = malformed_request()
    with pytest.raises(messages.MalformedMessage):  # still logged and skipped as malformed
        role.requests.on_request(request, "D1")
    events = [(key, m) for topic, key, m in daemon.bus.published if topic == "driver.events"]
    assert len(events) == 1
    key, denial = events[0]
    assert key == "D1" and messages.check("driver.events", denial)["type"] == "denied"
    assert (denial["request_id"], denial["cp"], denial["driver"]) == (request["id"], "ALC1", "D1")
    assert "malformed request" in denial["reason"] and "'kwh'" in denial["reason"]


@pytest.mark.parametrize(
    "fields, key",
    [({}, "D2"), ({"driver": 7}, "D1"), ({"type": "refuel"}, "D1")],
    ids=["another key", "no driver id", "not a request"],
)
def test_central_stays_silent_when_it_cannot_tell_who_asked(fields, key):
    role, daemon = central_role()
    with pytest.raises(messages.MalformedMessage):
        role.requests.on_request(malformed_request(**fields), key)
    assert [t for t, _k, _m in daemon.bus.published if t == "driver.events"] == []


def test_the_driver_ends_its_wait_on_central_s_denial():
    """End to end on the fake bus: the waiting `driver request --wait` gets the denial, not a timeout."""

    async def scenario():
        d, daemon = driver_dispatcher()
        waiting = asyncio.ensure_future(call(d, "driver.request", cp="ALC1", kwh=5, wait=True))
        await until(lambda: requests_sent(daemon))
        (request,) = requests_sent(daemon)
        request["kwh"] = math.nan  # as a broken or older driver would have sent it
        role, central_daemon = central_role()
        with pytest.raises(messages.MalformedMessage):
            role.requests.on_request(request, "D1")
        for topic, key, message in central_daemon.bus.published:
            if topic == "driver.events":
                daemon.role._on_event(message, key)
        return await asyncio.wait_for(waiting, 1)

    reply = asyncio.run(scenario())
    assert reply["ok"] is False and reply["error"]["code"] == "refused"
    assert reply["error"]["result"]["status"] == "DENIED" and "malformed request" in reply["error"]["result"]["reason"]


# -- cp list's reason --------------------------------------------------------------------------------


def test_cp_list_says_why_a_cp_is_broken_or_stopped():
    role, daemon = central_role()
    link = object()
    role.cps = {
        "ALC1": ChargingPoint(id="ALC1", link=link, health="OK"),
        "ALC3": ChargingPoint(id="ALC3", link=link, health="KO", detail="engine KO: overheating"),
        "MAD2": ChargingPoint(id="MAD2", link=link, health="OK", stopped=True),
        "SEV4": ChargingPoint(id="SEV4", link=link, health="OK", weather="46 °C in Sevilla"),
        "VAL5": ChargingPoint(id="VAL5"),
    }
    handlers = central_plugin.evd_control_commands(daemon)
    reply = asyncio.run(Dispatcher(handlers, command_table(), daemon=daemon).dispatch({"id": 1, "cmd": "cp.list"}))
    rows = {row["id"]: row for row in reply["result"]}
    assert {i: (r["state"], r["reason"]) for i, r in rows.items()} == {
        "ALC1": ("ACTIVE", None),
        "ALC3": ("BROKEN", "engine KO: overheating"),
        "MAD2": ("STOPPED", "stopped by the operator"),
        "SEV4": ("STOPPED", "weather: 46 °C in Sevilla"),
        "VAL5": ("DISCONNECTED", None),
    }
    assert all("detail" not in row for row in rows.values())  # the contract's fields, no internals
