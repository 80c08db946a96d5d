"""``python -m bench scale`` and ``python -m bench faults`` run end to end (short runs; the figures are read by people)."""

import json
import pathlib
import subprocess
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]


def run_bench(*args, timeout):
    result = subprocess.run([sys.executable, "-m", "bench", *args], cwd=ROOT, capture_output=True, text=True, timeout=timeout)
    assert result.stdout, result.stderr
    return result, json.loads(result.stdout)


def test_scale_harness_runs_and_loses_nothing():
    result, report = run_bench("scale", "--cps", "100", "--seconds", "10", "--transport", "local", "--ocpp", "3", timeout=120)
    assert result.returncode == 0, (report["errors"], result.stderr[-3000:])
    for field in (
        "cps",
        "transport",
        "duration_s",
        "telemetry_sent",
        "telemetry_applied",
        "lost",
        "duplicates",
        "lag_ms_p50",
        "lag_ms_p99",
        "auth_ms_p50",
        "auth_ms_p99",
        "central_cpu_pct",
        "central_rss_mb",
        "central_msgs_per_s",
        "raw_consume_msgs_per_s",
        "recovery_s",
        "targets",
    ):
        assert report.get(field) is not None, field
    assert report["cps"] == 100 and report["transport"] == "local"
    assert report["telemetry_sent"] >= 100 * 9  # every CP reported about once a second
    assert report["lost"] == 0 and report["telemetry_applied"] == report["telemetry_sent"]
    assert report["authorized"] == 100
    assert report["audit"]["failed"] == 0 and report["audit"]["tickets"] >= 100
    assert report["crash"]["cps_supplying"] == 100  # central was SIGKILLed mid-supply and lost nothing
    assert "registered" in result.stderr  # progress lines go to stderr; stdout is the JSON document only
    # Three OCPP chargers beside them, through the same crash: one right ticket each.
    assert report["ocpp_authorized"] == 3 and report["ocpp_lag_ms_p99"] is not None and report["ocpp_auth_ms_p99"] is not None
    assert report["ocpp_tickets"] == 3 and report["ocpp_tickets_wrong"] == 0


def test_faults_harness_runs_a_short_script():
    result, report = run_bench(
        "faults", "--cps", "2", "--skip", "engine_hang,monitor_hang", "--flood-seconds", "2", "--central-down", "1", timeout=150
    )
    assert not report["errors"], (report["errors"], result.stderr[-3000:])
    assert report["engine_kill"]["samples"] == 2 and report["engine_kill"]["missed"] == 0
    assert report["fault_detect_ms_p99"] is not None and report["monitor_detect_ms_p99"] is not None
    assert report["central_kill"]["recovery_s"] is not None
    assert report["central_kill"]["tickets_lost"] == 0 and report["central_kill"]["tickets_duplicated"] == 0
    assert report["broker_pause"] == {"skipped": "local transport (no broker)"}
    assert report["garbage_flood"]["central_alive"] is True
    assert report["audit"]["sessions"] >= 2 and report["audit"]["tickets_lost"] == 0
