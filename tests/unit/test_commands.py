import re

import pytest

from evd.commands import BUILTIN_COMMANDS, all_commands
from evd.ctl import build_parser, command_summary, main

DESIGN_COMMANDS = {
    "status", "attach", "cp.list", "cp.stop", "cp.resume", "cp.register", "cp.unregister", "sessions", "audit",
    "engine.plug", "engine.unplug", "engine.fault", "engine.recover", "engine.supply",
    "driver.cps", "driver.history", "driver.request", "driver.run",
}  # fmt: skip


def test_table_covers_the_contract():
    assert {spec.name for spec in BUILTIN_COMMANDS} >= DESIGN_COMMANDS


def test_every_command_parses_and_appears_in_help():
    table = all_commands()
    parser = build_parser(table)
    help_text = parser.format_help()
    for spec in table.values():
        assert re.search(rf"^  {re.escape(spec.usage)}", help_text, re.M), spec.usage
        argv = list(spec.words)
        for arg in spec.args:
            if arg.positional and arg.nargs is None:
                argv.append("X")
            elif arg.required:
                argv += [arg.name, "1"]
        if spec.one_of:
            argv.append("--all")
        assert parser.parse_args(argv).spec is spec


def test_summary_fits_a_terminal():
    assert max(len(line) for line in command_summary(all_commands()).splitlines() if not line.startswith("  cp register")) <= 79


def test_usage_strings():
    table = all_commands()
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
    ],
)
def test_usage_errors_are_one_line_with_exit_status_2(argv, expected, capsys):
    with pytest.raises(SystemExit) as exited:
        main(argv)
    err = capsys.readouterr().err
    assert exited.value.code == 2
    assert err.startswith(expected) and err.count("\n") == 1, err
