"""The assignment's commands (EV_*): a bad parameter is named as the user typed it, exit 2, one line."""

import pytest

from evd import cli, compat
from evd.errors import UsageError
from evd.pluginmanager import load_plugins

ENGINE, CENTRAL = "127.0.0.1:6000", "127.0.0.1:7000"


@pytest.fixture(autouse=True)
def no_daemon(monkeypatch):
    """A bad parameter that slips through would start the daemon in the test process: fail instead."""

    def started(*args, **kwargs):
        pytest.fail("the daemon was started despite a bad parameter")

    monkeypatch.setattr(cli, "run_daemon", started)


@pytest.mark.parametrize(
    "main, argv, expected",
    [
        (compat.monitor_main, [ENGINE, CENTRAL, "ALC1", "C/ Italia 5", "x"], "EV_CP_M: price: not a number: 'x'"),
        (compat.monitor_main, [ENGINE, CENTRAL, "ALC1", "x", "-1"], "EV_CP_M: price: must be a finite number not below zero: '-1'"),
        (compat.monitor_main, [ENGINE, CENTRAL, "ALC1", "x", "nan"], "EV_CP_M: price: must be a finite number not below zero: 'nan'"),
        (compat.monitor_main, [ENGINE, CENTRAL, "A/B"], "EV_CP_M: cp-id: not a valid id: 'A/B'"),
        (compat.engine_main, [ENGINE, "99999"], "EV_CP_E: port: not a port number: '99999'"),
        (
            compat.driver_main,
            [ENGINE, "D1", "/nonexistent.txt"],
            "EV_Driver: requests-file: /nonexistent.txt: cannot read the requests file",
        ),
    ],
)
def test_a_bad_parameter_is_named(main, argv, expected, capsys):
    with pytest.raises(SystemExit) as exited:
        main(argv)
    err = capsys.readouterr().err
    assert exited.value.code == 2
    assert err.startswith(expected) and err.count("\n") == 1, err
    assert "arguments:" not in err


def test_a_bad_requests_file_line_is_named_before_the_driver_starts(tmp_path, capsys):
    path = tmp_path / "requests.txt"
    path.write_text("ALC1\nALC1#-3\n")
    with pytest.raises(SystemExit) as exited:
        compat.driver_main([ENGINE, "D1", str(path)])
    assert exited.value.code == 2
    assert capsys.readouterr().err.startswith(f"EV_Driver: requests-file: {path}:2: ALC1: kWh must be a finite number")


def test_a_config_error_of_an_argument_names_the_argument_not_a_yaml_line():
    data = {"name": "monitor-ALC1", "role": "monitor", "monitor": {"cp_id": "ALC1", "price": -1.0}}
    with pytest.raises(UsageError) as raised:
        compat._load("EV_CP_M", data, load_plugins(), [], {"monitor.price": "price"})
    assert str(raised.value) == "price: must not be negative, got -1.0" and raised.value.exit_code == 2


def test_evd_check_names_the_line_of_a_missing_requests_file(tmp_path, capsys):
    config = tmp_path / "driver.yaml"
    config.write_text(
        f"name: d1\nrole: driver\ntransport: {{kind: local, path: {tmp_path / 'bus.db'}}}\ndriver:\n  id: D1\n  requests_file: {tmp_path / 'missing.txt'}\n"
    )
    assert cli.main(["check", "-c", str(config)]) == 2
    err = capsys.readouterr().err
    assert (
        err
        == f"evd: {config}:6: driver.requests_file: {tmp_path / 'missing.txt'}: cannot read the requests file: No such file or directory\n"
    )


def test_evd_check_refuses_a_default_kwh_that_is_not_a_number(tmp_path, capsys):
    config = tmp_path / "driver.yaml"
    config.write_text("name: d1\nrole: driver\ndriver:\n  id: D1\n  default_kwh: .nan\n")
    assert cli.main(["check", "-c", str(config)]) == 2
    assert capsys.readouterr().err == f"evd: {config}:5: driver.default_kwh: kWh must be a finite number greater than zero, not nan\n"
