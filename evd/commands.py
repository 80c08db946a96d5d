"""The evctl command set as data (DESIGN.md §2).

evctl's argument parser and ``--help``, the evctl(1) man page and the control socket's
permission check are all generated from this table. Plugins add commands with the
``evd_register_commands`` hook.
"""

import argparse
import math
import re

import attrs

from .errors import ConfigError


@attrs.frozen
class Arg:
    """One argument of a command, in argparse terms."""

    name: str  # "ids" (positional) or "--kwh" (option)
    help: str
    type: type = str
    nargs: str | None = None  # None (one value), "?" or "*"
    flag: bool = False  # an option without a value
    metavar: str | None = None
    default: object = None
    required: bool = False  # an option that must be given

    @property
    def dest(self):
        return self.name.lstrip("-").replace("-", "_")

    @property
    def positional(self):
        return not self.name.startswith("-")


@attrs.frozen
class CommandSpec:
    words: tuple  # how it is typed after evctl: ("cp", "stop")
    help: str
    role: str | None = None  # the role that serves it; None for every role
    args: tuple = ()
    #: Names of args of which exactly one must be given (``cp stop (ID…|--all)``).
    one_of: tuple = ()
    mutating: bool = False  # changes state: only root or the socket's group may run it
    local: bool = False  # carried out by evctl itself (attach)
    timeout: float = 10.0  # seconds evctl waits for the answer
    #: Columns for the human-readable table of a list result (JSON output is unaffected).
    columns: tuple = ()

    @property
    def name(self):
        """The control protocol's command name: ``cp.stop``."""
        return ".".join(self.words)

    @property
    def usage(self):
        parts = list(self.words)
        if self.one_of:
            alternatives = [_usage_of(a) for a in self.args if a.dest in self.one_of]
            parts.append("(" + "|".join(alternatives) + ")")
        parts += [_usage_of(a, optional=True) for a in self.args if a.dest not in self.one_of]
        return " ".join(parts)


def _usage_of(arg, optional=False):
    if arg.positional:
        text = (arg.metavar or arg.name.upper()) + ("…" if arg.nargs == "*" else "")
        return f"[{text}]" if optional and arg.nargs in ("?", "*") else text
    text = arg.name if arg.flag else f"{arg.name} {arg.metavar or arg.dest.upper()}"
    return f"[{text}]" if optional and not arg.required else text


#: A charging point id as the monitor's instance name allows it (``monitor-ID``).
CP_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.@-]{0,55}")


def parse_kwh(value):
    """An energy in kWh: a finite number greater than zero; ``ValueError`` with a plain reason otherwise."""
    shown = repr(value) if isinstance(value, str) else str(value)
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise ValueError(f"kWh must be a number, not {shown}")
    try:
        number = float(value)
    except ValueError:
        raise ValueError(f"kWh must be a number, not {shown}") from None
    if not math.isfinite(number) or number <= 0:
        raise ValueError(f"kWh must be a finite number greater than zero, not {shown}")
    return number


def _kwh_arg(text):
    try:
        return parse_kwh(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


_IDS = Arg("ids", "charging point ids", nargs="*", metavar="ID")
_ALL = Arg("--all", "every charging point", flag=True)
_CP_COLUMNS = ("id", "state", "location", "price_eur_kwh", "driver", "kwh", "eur", "reason")
_SESSION_COLUMNS = ("id", "cp", "driver", "status", "kwh", "eur", "started_at", "ended_at", "reason")

BUILTIN_COMMANDS = (
    CommandSpec(("status",), "name, role, version, uptime and transport state of the daemon"),
    CommandSpec(("ping",), "check that the daemon answers"),
    CommandSpec(("attach",), "open the daemon's live panel (urwid) in this terminal", local=True),
    CommandSpec(("cp", "list"), "every charging point and its state", role="central", columns=_CP_COLUMNS),
    CommandSpec(
        ("cp", "stop"),
        "take charging points out of service (ends a running supply; shows Out of Order)",
        role="central",
        args=(_IDS, _ALL),
        one_of=("ids", "all"),
        mutating=True,
    ),
    CommandSpec(
        ("cp", "resume"),
        "put stopped charging points back in service",
        role="central",
        args=(_IDS, _ALL),
        one_of=("ids", "all"),
        mutating=True,
    ),
    CommandSpec(
        ("cp", "register"),
        "register a charging point; prints its credential once",
        role="central",
        args=(
            Arg("id", "charging point id", metavar="ID"),
            Arg("--location", "where it is (street address)", metavar="L", required=True),
            Arg("--price", "price in EUR per kWh", type=float, metavar="P", required=True),
            Arg("--city", "city, for the weather watcher", metavar="C"),
        ),
        mutating=True,
    ),
    CommandSpec(
        ("cp", "unregister"),
        "remove a charging point and revoke its credential",
        role="central",
        args=(Arg("id", "charging point id", metavar="ID"),),
        mutating=True,
    ),
    CommandSpec(
        ("sessions",),
        "supply sessions, newest first",
        role="central",
        args=(
            Arg("--active", "only sessions still running", flag=True),
            Arg("--cp", "only this charging point", metavar="ID"),
            Arg("--driver", "only this driver", metavar="ID"),
        ),
        columns=_SESSION_COLUMNS,
    ),
    CommandSpec(
        ("audit",),
        "the audit log, newest first",
        role="central",
        args=(
            Arg("--since", "only records at or after this time", metavar="ISO8601"),
            Arg("--limit", "at most this many records", type=int, metavar="N", default=100),
        ),
        columns=("time", "category", "source", "action", "outcome", "parameters"),
    ),
    CommandSpec(("engine", "plug"), "plug the vehicle in: an authorised supply starts", role="engine", mutating=True),
    CommandSpec(("engine", "unplug"), "unplug the vehicle: the running supply ends", role="engine", mutating=True),
    CommandSpec(("engine", "fault"), "simulate a fault: health checks answer KO", role="engine", mutating=True),
    CommandSpec(("engine", "recover"), "end the simulated fault: health checks answer OK", role="engine", mutating=True),
    CommandSpec(
        ("engine", "supply"),
        "request a supply from the charging point itself (manual supply)",
        role="engine",
        args=(
            Arg("--driver", "driver id to charge the supply to", metavar="ID"),
            Arg("--kwh", "energy to supply, in kWh", type=_kwh_arg, metavar="K"),
        ),
        mutating=True,
    ),
    CommandSpec(
        ("driver", "cps"),
        "every charging point and whether it is available",
        role="driver",
        columns=("id", "state", "available", "location", "price_eur_kwh"),
    ),
    CommandSpec(("driver", "history"), "this driver's past supplies", role="driver", columns=_SESSION_COLUMNS),
    CommandSpec(
        ("driver", "request"),
        "request a supply at a charging point",
        role="driver",
        args=(
            Arg("cp", "charging point id", metavar="CP"),
            Arg("--kwh", "energy wanted, in kWh", type=_kwh_arg, metavar="K"),
            Arg("--wait", "wait for the ticket or the denial and print it", flag=True),
        ),
        mutating=True,
        timeout=3600.0,
    ),
    CommandSpec(
        ("driver", "run"),
        "request the supplies listed in FILE (CP or CP#KWH a line), pausing between them",
        role="driver",
        args=(Arg("file", "file of requests, CP or CP#KWH a line", metavar="FILE"),),
        mutating=True,
    ),
)


def read_requests_file(path):
    """The requests of a requests file (DESIGN.md §2) as ``[{"cp", "kwh"}]``, ``kwh`` None for the default.

    One request a line, ``CP`` or ``CP#KWH``; blank lines and ``#`` comments skipped. Anything
    else is a :class:`ConfigError` naming the file and line, raised before any request is sent.
    """
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise ConfigError(f"cannot read the requests file: {e.strerror}", str(path)) from None
    except UnicodeDecodeError:
        raise ConfigError("the requests file is not UTF-8 text", str(path)) from None
    requests = []
    for number, line in enumerate(text.splitlines(), 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        cp, sep, kwh = (part.strip() for part in line.partition("#"))
        if not CP_ID.fullmatch(cp):
            raise ConfigError(f"expected CP or CP#KWH, got {line!r}", str(path), number)
        try:
            requests.append({"cp": cp, "kwh": parse_kwh(kwh) if sep else None})
        except ValueError as e:
            raise ConfigError(f"{cp}: {e}", str(path), number) from None
    if not requests:
        raise ConfigError("no requests in the file (one CP or CP#KWH a line)", str(path))
    return requests


def all_commands(extra=()):
    """The built-in table followed by plugin commands, checked for clashes."""
    table = {}
    for spec in (*BUILTIN_COMMANDS, *extra):
        if spec.name in table:
            raise ValueError(f"command '{spec.name}' is defined twice")
        table[spec.name] = spec
    return table
