"""What an operator installs: the systemd units and the provisioning script."""

import pathlib
import shutil
import subprocess

import pytest

from helpers import BIN, run

ROOT = pathlib.Path(__file__).resolve().parents[2]
UNIT = ROOT / "systemd" / "evd@.service"
needs_systemd_analyze = pytest.mark.skipif(shutil.which("systemd-analyze") is None, reason="systemd-analyze is not installed")


def verify(folder, text):
    unit = folder / "evd@central.service"
    unit.write_text(text)
    shutil.copy(ROOT / "systemd" / "evd.target", folder / "evd.target")
    return subprocess.run(["systemd-analyze", "verify", "--man=no", str(unit)], capture_output=True, text=True, cwd=folder)


@needs_systemd_analyze
def test_unit_verifies(tmp_path):
    result = verify(tmp_path, UNIT.read_text().replace("/usr/bin/evd", str(BIN / "evd")))
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr


@needs_systemd_analyze
def test_verify_would_catch_a_broken_unit(tmp_path):
    result = verify(tmp_path, UNIT.read_text().replace("/usr/bin/evd", str(BIN / "evd")).replace("Type=notify", "Type=notifyy"))
    assert "notifyy" in result.stderr


def test_unit_contract():
    text = UNIT.read_text()
    for line in (
        "Type=notify",
        "ExecStart=/usr/bin/evd run -c /etc/evcharging/%i.yaml",
        "ExecReload=/bin/kill -HUP $MAINPID",
        "Restart=on-failure",
        "RestartPreventExitStatus=2",
        "RuntimeDirectory=evd",
        "StateDirectory=evcharging",
        "User=evcharging",
        "ProtectSystem=strict",
        "NoNewPrivileges=yes",
        "PrivateTmp=yes",
        "SystemCallFilter=@system-service",
    ):
        assert line in text.splitlines(), line
    assert any(line.startswith("WatchdogSec=") for line in text.splitlines())
    # Every option is explained: each group of settings follows a comment.
    settings = [i for i, line in enumerate(text.splitlines()) if "=" in line and not line.startswith(("#", "["))]
    lines = text.splitlines()
    for index in settings:
        above = index - 1
        while above >= 0 and "=" in lines[above] and not lines[above].startswith("#"):
            above -= 1
        assert lines[above].startswith(("#", "[")), f"no comment above {lines[index]!r}"


def test_provisioning_is_idempotent_and_its_configs_pass_check(tmp_path):
    script = ROOT / "deploy" / "provision.sh"
    for role in ("central", "cps", "drivers"):
        etc = tmp_path / role
        # Nothing reaches the (documentation) address: cps and drivers register nothing with central here.
        args = [script, role, "--central-ip", "192.0.2.10", "--configs-only", "--etc", etc, "--state", tmp_path / "state"]
        args += ["--share", tmp_path / "share", "--bin", BIN, "--no-register"]
        first = subprocess.run(args, capture_output=True, text=True)
        assert first.returncode == 0, first.stderr
        again = subprocess.run(args, capture_output=True, text=True)
        assert again.returncode == 0 and again.stdout == ""  # nothing rewritten
        for config in etc.glob("*.yaml"):
            if config.name != "evd.yaml":
                result = run("evd", "check", "-c", config)
                assert result.returncode == 0, result.stderr
    assert (tmp_path / "drivers" / "requests-D1.txt").read_text().split() == ["ALC1", "ALC3", "MAD2"]
    assert "bootstrap: 192.0.2.10:9092" in (tmp_path / "cps" / "evd.yaml").read_text()


def test_provisioning_refuses_bad_usage(tmp_path):
    script = ROOT / "deploy" / "provision.sh"
    assert subprocess.run([script, "moon"], capture_output=True).returncode == 2
    assert b"--central-ip is required" in subprocess.run([script, "cps", "--configs-only"], capture_output=True).stderr
