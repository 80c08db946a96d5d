"""The benchmark harness itself keeps working (its figures are read by people, not asserted)."""

import json
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_bus_benchmark_runs_and_loses_nothing():
    result = subprocess.run(
        [sys.executable, "-m", "bench.bus", "--messages", "300", "--kinds", "local"], cwd=ROOT, capture_output=True, text=True, timeout=120
    )
    assert result.returncode == 0, result.stderr
    local = json.loads(result.stdout)["results"]["local"]
    assert local["lost"] == 0 and local["duplicates"] == 0
    assert local["produce_msgs_per_s"] > 0 and local["consume_msgs_per_s"] > 0


def test_fleet_benchmark_runs_real_daemons_to_exact_tickets(tmp_path):
    out = tmp_path / "fleet.json"
    command = [sys.executable, "-m", "bench", "fleet", "--cps", "2", "--drivers", "2", "--transport", "local"]
    command += ["--seconds", "6", "--idle-seconds", "2", "--settle", "0.5", "--kwh", "2", "--out", str(out)]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=240)
    assert result.returncode == 0, result.stderr
    report = json.loads(out.read_text())
    assert report["errors"] == []
    assert report["tickets"] >= 2 and report["tickets_wrong"] == 0 and report["lost"] == 0
    assert report["requests"] == report["authorized"] >= 2
    for field in ("ready_s", "auth_ms_p50", "auth_ms_p99", "lag_ms_p99"):
        assert report[field] is not None and report[field] >= 0, field
    for window in ("idle_cpu_pct", "busy_cpu_pct", "rss_mb"):
        assert set(report[window]) == {"central", "engine", "monitor", "driver"}, window
    assert report["idle_cpu_pct"]["engine"]["count"] == 2 and report["idle_cpu_pct"]["driver"]["count"] == 2
