"""The driver role's commands through the dispatcher (a fake daemon carries the role)."""

import asyncio
import math
import time

import pytest
from fakes import call, driver_dispatcher, requests_sent, until

from evd.plugins.driver import DriverConfig


@pytest.mark.parametrize("kwh", [math.nan, math.inf, -3, 0, "lots", True])
def test_a_bad_kwh_is_refused_as_an_argument_error_and_nothing_is_sent(kwh):
    async def scenario():
        d, daemon = driver_dispatcher()
        reply = await call(d, "driver.request", cp="ALC1", kwh=kwh, wait=True)
        return reply, daemon

    reply, daemon = asyncio.run(scenario())
    assert reply["ok"] is False and reply["error"]["code"] == "bad_args", reply
    assert "kWh must be" in reply["error"]["message"]
    assert requests_sent(daemon) == []


def test_a_bad_kwh_is_an_argument_error_even_while_a_supply_is_in_progress():
    async def scenario():
        d, _daemon = driver_dispatcher()
        first = await call(d, "driver.request", cp="ALC1", kwh=5)
        second = await call(d, "driver.request", cp="ALC3", kwh=-3)
        third = await call(d, "driver.request", cp="ALC3", kwh=2)
        return first, second, third

    first, second, third = asyncio.run(scenario())
    assert first["ok"] is True
    assert second["error"]["code"] == "bad_args", second
    assert third["error"]["code"] == "refused"  # a good request is still told why it must wait


def test_a_requests_list_with_a_bad_kwh_is_refused_before_anything_is_sent():
    async def scenario():
        d, daemon = driver_dispatcher()
        reply = await call(d, "driver.run", file="r.txt", requests=[{"cp": "ALC1", "kwh": None}, {"cp": "ALC3", "kwh": math.nan}])
        return reply, daemon

    reply, daemon = asyncio.run(scenario())
    assert reply["error"] == {"code": "bad_args", "message": "request 2 (ALC3): kWh must be a finite number greater than zero, not nan"}
    assert requests_sent(daemon) == [] and daemon.role.run is None


def test_a_requests_list_is_worked_through_with_its_own_kwh():
    async def scenario():
        d, daemon = driver_dispatcher()
        daemon.role._central_seen = time.monotonic()  # central's heartbeat was just heard
        reply = await call(d, "driver.run", file="r.txt", requests=[{"cp": "ALC1", "kwh": 2.5}])
        await until(lambda: requests_sent(daemon))
        daemon.role._run_task.cancel()
        return reply, requests_sent(daemon)

    reply, sent = asyncio.run(scenario())
    assert reply["result"] == {"file": "r.txt", "requests": 1}
    assert [(m["cp"], m["kwh"]) for m in sent] == [("ALC1", 2.5)]


@pytest.mark.parametrize("kwh", [math.nan, math.inf, -1.0, 0.0])
def test_default_kwh_must_be_a_finite_positive_number(kwh):
    with pytest.raises(ValueError, match="kWh must be a finite number greater than zero"):
        DriverConfig(id="D1", default_kwh=kwh)


def test_a_missing_requests_file_is_a_config_error(tmp_path):
    with pytest.raises(ValueError, match="cannot read the requests file: No such file or directory"):
        DriverConfig(id="D1", requests_file=tmp_path / "nonexistent.txt")
