"""The man pages in man/: evctl(1) is generated from the command table, evd.yaml(5) documents
every config key (name, type and default), and every page renders without a warning.

The rendering tests need groff and man-db (Debian packages ``groff-base`` and ``man-db``)
and are skipped without them.
"""

import importlib
import os
import pathlib
import pkgutil
import re
import shutil
import subprocess
import types
import typing

import attrs
import pytest
import yaml

import evd.plugins
from evd import config, manpage
from evd.ctl import build_parser
from evd.pluginmanager import command_table

MAN = pathlib.Path(__file__).resolve().parents[2] / "man"
PAGES = ("evd.8", "evctl.1", "evd.yaml.5")

# A key's entry in evd.yaml(5):
#   \fBsection.key\fR (\fItype\fR[ or null]; default \fBvalue\fR | required | default: words)
# The last form is for the top-level keys, whose defaults are not attrs defaults.
KEY_ENTRY = re.compile(
    r"^\\fB(?P<key>[\w.]+)\\fR \(\\fI(?P<type>[^\\]+)\\fR(?P<null> or null)?; "
    r"(?:default \\fB(?P<default>.*)\\fR|(?P<required>required)|default: (?P<prose>[^)]+))\)$",
    re.M,
)
# Fields of the core's classes that are not configuration keys.
NOT_KEYS = {(config.TransportConfig, "options")}
TYPE_NAMES = {
    str: "string",
    int: "integer",
    float: "number",
    bool: "boolean",
    config.Duration: "duration",
    config.HostPort: "host:port",
    pathlib.Path: "path",
}


def read(page):
    return (MAN / page).read_text(encoding="utf-8")


def builtin_plugins():
    """The modules of evd/plugins: every built-in role, transport and extra."""
    return [importlib.import_module(f"evd.plugins.{m.name}") for m in pkgutil.iter_modules(evd.plugins.__path__)]


def config_classes():
    """(section, attrs class) for the core's sections and every built-in plugin's."""
    classes = [("transport", config.TransportConfig), ("control", config.ControlConfig), ("log", config.LogConfig)]
    for module in builtin_plugins():
        if hasattr(module, "evd_config_sections"):
            classes += sorted(module.evd_config_sections().items())
        if hasattr(module, "evd_register_transports"):
            for transport in module.evd_register_transports().values():
                if getattr(transport, "options_class", None) is not None:
                    classes.append(("transport", transport.options_class))
    return classes


def config_keys():
    """(dotted key, attrs field) of every configuration key below the top level."""
    keys = []

    def add(prefix, cls):
        for field in attrs.fields(attrs.resolve_types(cls)):
            if (cls, field.name) in NOT_KEYS:
                continue
            if config.is_subsection(field.type):
                add(f"{prefix}.{field.name}", field.type)  # a nested mapping: its own keys are the keys
            else:
                keys.append((f"{prefix}.{field.name}", field))

    for section, cls in config_classes():
        add(section, cls)
    return keys


def transport_kinds():
    return sorted(
        kind for module in builtin_plugins() if hasattr(module, "evd_register_transports") for kind in module.evd_register_transports()
    )


def documented_keys():
    return {m["key"]: m for m in KEY_ENTRY.finditer(read("evd.yaml.5"))}


def unescape(text):
    return text.replace("\\-", "-").replace("\\e", "\\").replace("\\&", "").replace("\\:", "")


def without_null(tp):
    """``X`` of ``X | None``, and whether null was allowed."""
    if typing.get_origin(tp) in (types.UnionType, typing.Union):
        (inner,) = [a for a in typing.get_args(tp) if a is not type(None)]
        return inner, True
    return tp, False


def type_name(tp):
    """The type as evd.yaml(5) writes it, and whether null is allowed."""
    tp, nullable = without_null(tp)
    if typing.get_origin(tp) is typing.Literal:
        return "|".join(typing.get_args(tp)), nullable
    return TYPE_NAMES[tp], nullable


def documented_value(text, tp):
    """A default as written in evd.yaml(5), read as a configuration value of type ``tp``."""
    if text == "null":
        return None
    base, _ = without_null(tp)
    if base in (config.Duration, config.HostPort):
        return base.parse(text)
    if base is pathlib.Path:
        return pathlib.Path(text)
    return yaml.safe_load(text)


# -- evctl(1) ---------------------------------------------------------------------------------


def test_evctl_page_is_generated_from_the_command_table():
    assert read("evctl.1") == manpage.evctl_manpage(), f"man/evctl.1 is out of date: regenerate it with `{manpage.REGENERATE}`"


def test_evctl_page_has_every_command_and_argument():
    text = read("evctl.1")
    for spec in manpage.builtin_commands():
        assert f".TP\n{manpage.usage_markup(spec)}\n" in text, f"'{spec.usage}' missing from evctl.1"
        for arg in spec.args:
            assert f".TP\n{manpage.arg_label(arg)}\n" in text, f"{arg.name} of '{spec.usage}' missing from evctl.1"


def test_evctl_page_has_every_option():
    text = read("evctl.1")
    for action in build_parser(command_table())._actions:
        for option in action.option_strings:
            assert manpage.bold(option) in text, f"evctl option {option} missing from evctl.1"


def test_escaping():
    assert manpage.escape("--all") == "\\-\\-all"
    assert manpage.escape("C:\\dir") == "C:\\edir"
    assert manpage.escape("ID…") == "ID..."
    assert manpage.escape("é") == "\\[u00E9]"
    assert manpage.line(".hidden") == "\\&.hidden"
    assert manpage.line("'quoted") == "\\&'quoted"
    assert manpage.line("plain") == "plain"


def test_generated_page_is_ascii_with_no_unguarded_text_line():
    text = manpage.evctl_manpage()
    assert text.isascii()
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith(("'", ".")):
            assert re.match(r"^\.(\\\"|[A-Za-z]{1,2}\b)", line), f"line {number} is not a request: {line!r}"


# -- evd.yaml(5) ------------------------------------------------------------------------------


def test_every_config_key_is_documented():
    documented = documented_keys()
    text = read("evd.yaml.5")
    missing = [key for key, _ in config_keys() if key not in documented]
    assert not missing, f"config keys missing from man/evd.yaml.5: {', '.join(missing)}"
    sections = set(re.findall(r"^\.SS \"?(\w+)\"?$", text, re.M))
    for key in config.CORE_KEYS:
        assert key in documented or key in sections, f"top-level key '{key}' missing from evd.yaml.5"
    for section, _ in config_classes():
        assert section in sections, f"no section '{section}' in evd.yaml.5"
    for kind in transport_kinds():
        assert f"Options of the \\fB{kind}\\fR transport" in text, f"no options of the {kind} transport in evd.yaml.5"


def test_documented_types_and_defaults_match_the_code():
    documented = documented_keys()
    wrong = []
    for key, field in config_keys():
        entry = documented[key]
        name, nullable = type_name(field.type)
        if (entry["type"], bool(entry["null"])) != (name, nullable):
            wrong.append(f"{key}: documented as {entry['type']}{entry['null'] or ''}, is {name}{' or null' if nullable else ''}")
        if field.default is attrs.NOTHING:
            if not entry["required"]:
                wrong.append(f"{key}: is required")
        elif entry["default"] is None:
            wrong.append(f"{key}: document its default, {field.default!r}, as default \\fBvalue\\fR")
        elif documented_value(unescape(entry["default"]), field.type) != field.default:
            wrong.append(f"{key}: documented default {unescape(entry['default'])}, is {field.default!r}")
    assert not wrong, "man/evd.yaml.5 disagrees with the code:\n" + "\n".join(wrong)


def test_no_key_is_documented_twice_or_invented():
    entries = [m["key"] for m in KEY_ENTRY.finditer(read("evd.yaml.5"))]
    assert len(entries) == len(set(entries))
    known = {key for key, _ in config_keys()} | set(config.CORE_KEYS)
    assert set(entries) <= known, f"evd.yaml.5 documents unknown keys: {sorted(set(entries) - known)}"


# -- rendering --------------------------------------------------------------------------------


def name_line(page):
    """The page's NAME line as man shows it: ``evctl - administer …``."""
    lines = read(page).splitlines()
    return unescape(lines[lines.index(".SH NAME") + 1])


def squeeze(text):
    return " ".join(text.split())


@pytest.mark.skipif(shutil.which("groff") is None, reason="groff is not installed (Debian package groff-base)")
@pytest.mark.parametrize("device", [None, "ascii", "utf8"])
@pytest.mark.parametrize("page", PAGES)
def test_groff_has_no_warnings(page, device):
    command = ["groff", "-man", "-ww", "-z"] + ([f"-T{device}"] if device else []) + [str(MAN / page)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout + result.stderr == ""


@pytest.mark.skipif(shutil.which("man") is None, reason="man is not installed (Debian package man-db)")
@pytest.mark.parametrize("page", PAGES)
def test_man_renders(page):
    env = {**os.environ, "MANPAGER": "cat", "MANWIDTH": "80"}
    result = subprocess.run(["man", "-l", str(MAN / page)], capture_output=True, text=True, env=env, timeout=60)
    assert result.returncode == 0, result.stderr
    assert squeeze(name_line(page)) in squeeze(result.stdout)
    if page == "evctl.1":
        for spec in manpage.builtin_commands():
            assert squeeze(spec.usage.replace("…", "...")) in squeeze(result.stdout), spec.usage
