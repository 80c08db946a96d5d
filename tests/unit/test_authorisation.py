"""Every reason central gives for refusing a supply, and the request it authorises."""

import types

import pytest

from evd.authorisation import denial

NOW = "2026-12-04T10:00:00+00:00"


def cp(state="ACTIVE", stopped=False, weather=None):
    return types.SimpleNamespace(state=state, stopped=stopped, weather=weather)


def request(kwh=5.0, expires_at=None):
    return {"driver": "D1", "cp": "CP1", "kwh": kwh, "expires_at": expires_at}


def refuse(wanted=None, at="active", busy_at=None, known_driver=True):
    """Central's answer to ``wanted`` (a 5 kWh request) at CP ``at`` (an ACTIVE one)."""
    return denial(wanted or request(), cp() if at == "active" else at, max_kwh=500.0, busy_at=busy_at, now=NOW, known_driver=known_driver)


def test_an_active_cp_and_a_free_driver_are_authorised():
    assert refuse() is None
    assert refuse(request(kwh=500.0)) is None
    assert refuse(request(expires_at="2026-12-04T10:00:05+00:00")) is None


@pytest.mark.parametrize(
    ("case", "reason"),
    [
        ({"wanted": request(expires_at="2026-12-04T09:59:59+00:00")}, "request expired before central received it"),
        ({"wanted": request(kwh=0.0)}, "energy must be more than 0 and at most 500 kWh"),
        ({"wanted": request(kwh=-1.0)}, "energy must be more than 0 and at most 500 kWh"),
        ({"wanted": request(kwh=500.5)}, "energy must be more than 0 and at most 500 kWh"),
        ({"at": None}, "unknown charging point CP1"),
        ({"at": cp("DISCONNECTED")}, "charging point is disconnected"),
        ({"at": cp("BROKEN")}, "charging point is broken"),
        ({"at": cp("STOPPED", stopped=True)}, "charging point is out of order"),
        ({"at": cp("STOPPED", stopped=True, weather="-3 °C in Alicante")}, "charging point is out of order"),
        ({"at": cp("STOPPED", weather="-3 °C in Alicante")}, "charging point is out of order (-3 °C in Alicante)"),
        ({"at": cp("SUPPLYING")}, "charging point is busy"),
        ({"busy_at": "CP2"}, "driver D1 already has a supply at CP2"),
        ({"known_driver": False}, "unknown driver"),
        ({"known_driver": False, "at": None, "busy_at": "CP2"}, "unknown driver"),
    ],
    ids=lambda value: value if isinstance(value, str) else None,
)
def test_every_denial_reason(case, reason):
    assert refuse(**case) == reason


def test_the_first_rule_broken_is_the_reason_given():
    # An expired request for an unknown CP is refused as expired: the driver's own fault first.
    assert refuse(request(expires_at="2026-12-04T09:00:00+00:00"), at=None) == "request expired before central received it"
