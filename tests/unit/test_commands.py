import re

import pytest

from evd.commands import read_requests_file
from evd.ctl import build_parser, command_summary, main
from evd.errors import ConfigError
from evd.pluginmanager import command_table

DESIGN_COMMANDS = {
    "status", "attach", "cp.list", "cp.stop", "cp.resume", "cp.register", "cp.unregister", "sessions", "audit",
    "engine.plug", "engine.unplug", "engine.fault", "engine.recover", "engine.supply",
    "driver.cps", "driver.history", "driver.request", "driver.run",
}  # fmt: skip


def test_table_covers_the_contract():
    assert set(command_table()) >= DESIGN_COMMANDS


def test_every_command_parses_and_appears_in_help():
    table = command_table()
    parser = build_parser(table)
    help_text = parser.format_help()
    for spec in table.values():
        assert re.search(rf"^  {re.escape(spec.usage)}", help_text, re.M), spec.usage
        argv = list(spec.words)
        for arg in spec.args:
            if arg.positional and arg.nargs is None:
                argv.append("1" if arg.type is float else "X")
            elif arg.required:
                argv += [arg.name, "1"]
        if spec.one_of:
            argv.append("--all")
        parsed = parser.parse_args(["-n", "central", "--token-file", "T", "--cacert", "C", *argv])
        assert parsed.spec is spec
        # No argument of a command may overwrite evctl's own options (`-n central api token add NAME` once did).
        assert (parsed.instance, parsed.token_file, parsed.cacert) == ("central", "T", "C"), spec.usage


def test_summary_fits_a_terminal():
    assert max(len(line) for line in command_summary(command_table()).splitlines() if not line.startswith("  cp register")) <= 79


def test_usage_strings():
    table = command_table()
    assert table["cp.stop"].usage == "cp stop (ID…|--all)"
    assert table["driver.request"].usage == "driver request CP [--kwh K] [--wait]"
    assert table["cp.register"].usage == "cp register ID --location L --price P [--city C]"


@pytest.mark.parametrize(
    "argv, expected",
    [
        (["cp", "register", "X9"], "evctl: cp register: the following arguments are required: --location, --price"),
        (["cp", "stop"], "evctl: cp stop: one of the arguments ID --all is required"),
        (["audit", "--limit", "many"], "evctl: audit: argument --limit: invalid int value: 'many'"),
        (["warp"], "evctl: argument COMMAND: invalid choice: 'warp'"),
        (["driver", "request", "ALC1", "--kwh", "nan", "--wait"], "evctl: driver request: argument --kwh: kWh must be a finite number"),
        (["driver", "request", "ALC1", "--kwh", "-3"], "evctl: driver request: argument --kwh: kWh must be a finite number"),
        (["driver", "request", "ALC1", "--kwh", "inf"], "evctl: driver request: argument --kwh: kWh must be a finite number"),
        (["engine", "supply", "--kwh", "0"], "evctl: engine supply: argument --kwh: kWh must be a finite number"),
    ],
)
def test_usage_errors_are_one_line_with_exit_status_2(argv, expected, capsys):
    with pytest.raises(SystemExit) as exited:
        main(argv)
    err = capsys.readouterr().err
    assert exited.value.code == 2
    assert err.startswith(expected) and err.count("\n") == 1, err


def test_requests_file_holds_cp_or_cp_kwh_a_line(tmp_path):
    path = tmp_path / "requests.txt"
    path.write_text("# my week\nALC1\n\n  MAD2#2.5  \nSEV4 # 3\n")
    assert read_requests_file(path) == [{"cp": "ALC1", "kwh": None}, {"cp": "MAD2", "kwh": 2.5}, {"cp": "SEV4", "kwh": 3.0}]


@pytest.mark.parametrize(
    "text, message",
    [
        ("ALC1\nALC1 MAD2\n", "{path}:2: expected CP or CP#KWH, got 'ALC1 MAD2'"),
        ("ALC1#nan\n", "{path}:1: ALC1: kWh must be a finite number greater than zero, not 'nan'"),
        ("# only\nALC1#-3\n", "{path}:2: ALC1: kWh must be a finite number greater than zero, not '-3'"),
        ("ALC1#lots\n", "{path}:1: ALC1: kWh must be a number, not 'lots'"),
        ("#ALC1\n\n", "{path}: no requests in the file (one CP or CP#KWH a line)"),
    ],
)
def test_requests_file_errors_name_the_line(tmp_path, text, message):
    path = tmp_path / "requests.txt"
    path.write_text(text)
    with pytest.raises(ConfigError) as raised:
        read_requests_file(path)
    assert str(raised.value) == message.format(path=path) and raised.value.exit_code == 2


def test_driver_run_with_a_bad_file_exits_2_before_reaching_the_daemon(tmp_path, capsys):
    path = tmp_path / "requests.txt"
    path.write_text("ALC1\nALC1#0\n")
    assert main(["-s", str(tmp_path / "nobody.sock"), "driver", "run", str(path)]) == 2
    assert capsys.readouterr().err == f"evctl: {path}:2: ALC1: kWh must be a finite number greater than zero, not '0'\n"
    assert main(["-s", str(tmp_path / "nobody.sock"), "driver", "run", str(tmp_path / "missing.txt")]) == 2
    assert "cannot read the requests file: No such file or directory" in capsys.readouterr().err
