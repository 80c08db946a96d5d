"""What people read: evctl's human output and the panels' one-line answers carry no Python or JSON."""

import json
import re

import pytest

from evd import humanize
from evd.ctl import _print_result
from evd.pluginmanager import command_table

TABLE = command_table()
PYTHON_OR_JSON = re.compile(r"[\[\]{}]|\bTrue\b|\bFalse\b|\bNone\b|\\u[0-9a-f]{4}|'")

DRIVER_STATUS = {
    "name": "driver-D1",
    "role": "driver",
    "uptime_s": 9.7,
    "transport": {"kind": "local", "connected": True},
    "driver": "D1",
    "central_reachable": False,
    "current": None,
    "run": {
        "file": "/tmp/requests-D1.txt",
        "total": 2,
        "done": 1,
        "results": [{"cp": "ALC1", "status": "COMPLETED", "kwh": 5.0, "eur": 2.7, "ended": "2026-12-02T21:10:43.856Z"}],
    },
    "tickets": 1,
}


def printed(capsys, command, result, as_json=False):
    _print_result(TABLE[command], result, as_json)
    return capsys.readouterr().out


def test_cp_stop_lists_the_ids_as_words(capsys):
    assert printed(capsys, "cp.stop", {"stopped": ["ALC1", "MAD2"]}) == "stopped: ALC1, MAD2\n"
    assert printed(capsys, "cp.resume", {"resumed": []}) == "resumed: (none)\n"


def test_driver_cps_says_yes_or_no(capsys):
    out = printed(capsys, "driver.cps", [{"id": "ALC1", "state": "ACTIVE", "available": True, "location": "x", "price_eur_kwh": 0.54}])
    assert out.splitlines()[1].split()[:3] == ["ALC1", "ACTIVE", "yes"]
    assert not PYTHON_OR_JSON.search(out), out


def test_driver_status_has_no_raw_json(capsys):
    out = printed(capsys, "status", DRIVER_STATUS)
    assert not PYTHON_OR_JSON.search(out), out
    assert "transport.connected: yes" in out and "central_reachable: no" in out and "current: -" in out
    results = out.splitlines()[out.splitlines().index("run.results:") + 1 :]
    assert results[0].split() == ["CP", "STATUS", "KWH", "EUR", "ENDED"]
    assert results[1].split() == ["ALC1", "COMPLETED", "5.00", "2.70", "2026-12-02T21:10:43.856Z"]


def test_cp_list_shows_the_reason(capsys):
    rows = [
        {"id": "ALC1", "state": "BROKEN", "location": "C/ Italia 5", "price_eur_kwh": 0.54, "reason": "engine KO: overheating"},
        {"id": "MAD2", "state": "ACTIVE", "location": "Gran Vía 2", "price_eur_kwh": 0.45, "reason": None},
    ]
    header, broken, active = printed(capsys, "cp.list", rows).splitlines()
    assert header.split()[-1] == "REASON"
    assert broken.endswith("engine KO: overheating") and active.endswith("-")


def test_json_output_is_utf8_not_escapes(capsys):
    out = printed(capsys, "cp.list", [{"id": "MAD2", "location": "Gran Vía 2"}], as_json=True)
    assert "Gran Vía 2" in out and "\\u" not in out
    assert json.loads(out) == [{"id": "MAD2", "location": "Gran Vía 2"}]


@pytest.mark.parametrize(
    "result, line",
    [
        ({"stopped": ["MAD2"]}, "stopped MAD2"),
        ({"stopped": ["ALC1", "MAD2"], "skipped": []}, "stopped ALC1, MAD2"),
        ({"plugged": True, "session": None}, "plugged yes"),
        ({"request_id": "ab", "kwh": 2.5}, "request_id ab, kwh 2.50"),
        (None, "ok"),
        ("pong", "pong"),
    ],
)
def test_summary_for_the_panels_status_line(result, line):
    assert humanize.summary(result) == line
