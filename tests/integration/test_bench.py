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
