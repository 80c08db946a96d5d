"""The OCPP endpoint's pure parts: meter readings, the 1.6 error codes, and the transactions table."""

import pytest
from ocpp.exceptions import FormatViolationError, NotImplementedError, NotSupportedError

from evd.ocpp.charger import _as_v16, _check_action, _unique_id_of, energy_register
from evd.ocpp.transactions import Transactions
from evd.store import open_database


def sample(value, **fields):
    return {"timestamp": "2026-12-04T10:00:00Z", "sampled_value": [{"value": value, **fields}]}


def test_the_energy_register_is_read_in_wh_whatever_else_the_charger_sends():
    assert energy_register([sample("1500")]) == 1500.0  # 1.6's defaults: the energy register, in Wh
    assert energy_register([sample("2.5", unit="kWh")]) == 2500.0
    assert energy_register([sample("230", measurand="Voltage"), sample("700", measurand="Energy.Active.Import.Register")]) == 700.0
    assert energy_register([sample("100"), sample("250")]) == 250.0  # the latest
    assert energy_register([sample("7", phase="L1")]) is None  # a phase's share is not the meter
    assert energy_register([sample("lots")]) is None
    assert energy_register([]) is None


def test_actions_are_refused_with_the_codes_of_ocpp_1_6():
    routes = {"Heartbeat": {}}
    _check_action("Heartbeat", routes)
    with pytest.raises(NotSupportedError):
        _check_action("DataTransfer", routes)  # a 1.6 action central does not take
    with pytest.raises(NotImplementedError):
        _check_action("MakeCoffee", routes)
    with pytest.raises(NotImplementedError):
        _check_action(["not", "a", "name"], routes)
    assert _as_v16(FormatViolationError(description="bad")).code == "FormationViolation"
    assert _unique_id_of('[2, "abc", "Heartbeat"') == "-1"
    assert _unique_id_of('[2, "abc", 5]') == "abc"


def test_a_resent_start_finds_its_transaction_and_ids_survive_a_reopen(tmp_path):
    path = tmp_path / "central.db"
    transactions = Transactions(open_database(path))
    assert transactions.find("OC1", 1, "D1", 1000, "2026-12-04T10:00:00Z") is None
    first = transactions.start("OC1", 1, "D1", 1000, "2026-12-04T10:00:00Z", "s1")
    second = transactions.start("OC1", 1, "D2", 0, "2026-12-04T11:00:00Z", "s2")
    assert first.id != second.id and first.kwh(3500) == 2.5 and first.kwh(10) == 0.0
    assert transactions.running("OC1") == second
    transactions.stop(second.id, 400, "2026-12-04T11:30:00Z")
    transactions.close()

    again = Transactions(open_database(path))  # a central started again
    assert again.find("OC1", 1, "D1", 1000, "2026-12-04T10:00:00Z") == first
    assert again.get(second.id).stopped and again.get(second.id).meter_stop == 400
    assert again.running("OC1") == first and again.of_session("s1") == first
    assert again.get(999) is None
    again.close()
