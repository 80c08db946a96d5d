"""The Prometheus endpoint of central (issue 8) through real daemons on the local transport."""

import re
import socket
import urllib.request

import pytest

from brokers import free_port, port_open
from helpers import wait_for

pytest.importorskip("prometheus_client")


def with_metrics(node, **section):
    items = ", ".join(f"{key}: {value}" for key, value in section.items())
    node.path.write_text(node.path.read_text() + f"metrics: {{{items}}}\n")
    return node


def scrape(port):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
        assert response.status == 200
        return response.read().decode()


def samples(text):
    """``{'name{labels}': value}`` of a text exposition."""
    found = {}
    for line in text.splitlines():
        match = re.match(r"^([a-zA-Z_:][\w:]*(?:\{[^}]*\})?) (\S+)$", line)
        if match:
            found[match[1]] = float(match[2])
    return found


def wait_samples(port, expected, timeout=10):
    def matches():
        values = samples(scrape(port))
        return values if all(values.get(name) == value for name, value in expected.items()) else None

    try:
        return wait_for(matches, timeout, message=f"metrics {expected}")
    except AssertionError:
        raise AssertionError(f"metrics never matched {expected}; last scrape:\n{scrape(port)}") from None


def test_metrics_count_cps_supplies_energy_and_denials(local_network):
    net = local_network
    port = free_port()
    central = with_metrics(net.central(), enabled="true", listen=f"127.0.0.1:{port}")
    net.cp("A1", engine={"auto_plug": True})
    driver = net.driver("D1")
    net.start_all()
    net.wait_state("A1", "ACTIVE")
    result = driver.evctl("--json", "driver", "request", "A1", "--kwh", "1", "--wait")
    assert result.returncode == 0, result.stderr
    values = wait_samples(
        port,
        {
            'evcharging_cps{state="ACTIVE"}': 1.0,
            'evcharging_supplies_total{status="COMPLETED"}': 1.0,
            "evcharging_energy_kwh_total": 1.0,
            "evcharging_open_sessions": 0.0,
        },
    )
    for state in ("SUPPLYING", "STOPPED", "BROKEN", "DISCONNECTED"):
        assert values[f'evcharging_cps{{state="{state}"}}'] == 0.0
    assert values['evcharging_supplies_total{status="INTERRUPTED"}'] == 0.0
    assert values['evcharging_supplies_total{status="DENIED"}'] == 0.0
    assert values['evcharging_stream_records_total{kind="consumed"}'] > 0
    assert values['evcharging_stream_records_total{kind="published"}'] > 0
    assert values['evcharging_stream_records_total{kind="malformed"}'] == 0.0
    assert values["evcharging_request_latency_seconds_count"] == 1.0
    assert 0 <= values["evcharging_request_latency_seconds_sum"] < 10

    denied = driver.evctl("--json", "driver", "request", "NOPE", "--kwh", "1", "--wait")
    assert denied.returncode == 4, denied.stderr
    wait_samples(
        port,
        {
            'evcharging_supplies_total{status="DENIED"}': 1.0,
            'evcharging_supplies_total{status="COMPLETED"}': 1.0,
            "evcharging_energy_kwh_total": 1.0,
        },
    )
    assert central.process.alive()


def test_metrics_are_off_unless_enabled(local_network):
    net = local_network
    port = free_port()
    default_port_taken = port_open("127.0.0.1", 9464)
    central = with_metrics(net.central(), listen=f"127.0.0.1:{port}").start()
    assert central.call("ping") == "pong"
    assert not port_open("127.0.0.1", port)
    if not default_port_taken:
        assert not port_open("127.0.0.1", 9464)
    assert "metrics served" not in central.log()


def test_a_port_in_use_is_logged_and_central_runs_on(local_network):
    net = local_network
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        central = with_metrics(net.central(), enabled="true", listen=f"127.0.0.1:{port}").start()
        wait_for(lambda: f"cannot listen on 127.0.0.1:{port}" in central.log(), message="the error in central's log")
        assert central.call("ping") == "pong"
        assert central.call("cp.list") == []
