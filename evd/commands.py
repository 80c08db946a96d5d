"""The evctl command set as data (DESIGN.md §2).

evctl's argument parser and ``--help``, the evctl(1) man page and the control socket's
permission check are all generated from the command table: the commands of every daemon
(CORE_COMMANDS, here) and those each plugin adds with the ``evd_register_commands`` hook —
central's, the engine's and the driver's among them, each beside its handlers.
"""

import argparse
import math
import re

import attrs

from .errors import ConfigError, EvdError


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
    #: Carried out by evctl itself instead of the daemon (attach): called with the socket's path,
    #: returns the exit status.
    run_locally: object = None
    #: Called by evctl with the arguments before they are sent (driver run reads its file there).
    prepare: object = None
    timeout: float = 10.0  # seconds evctl waits for the answer
    #: Columns for the human-readable table of a list result (JSON output is unaffected).
    columns: tuple = ()
    #: What its group runs when typed alone (``drivers`` is ``drivers list``).
    group_default: bool = False

    @property
    def name(self):
        """The control protocol's command name: ``cp.stop``."""
        return ".".join(self.words)

    @property
    def usage(self):
        parts = [*self.words[:-1], f"[{self.words[-1]}]"] if self.group_default else list(self.words)
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


def kwh_arg(text):
    try:
        return parse_kwh(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _attach(socket_path):
    try:
        from .console import attach
    except ImportError as e:
        raise EvdError(f"the console is not available: {e}") from None
    return attach.main(socket_path)


#: The columns of a table of sessions (``sessions``, ``driver history``).
SESSION_COLUMNS = ("id", "cp", "driver", "status", "kwh", "eur", "started_at", "ended_at", "reason")
#: A session in ``evctl sessions --json`` and in a driver's history (DESIGN.md §2).
LISTING_FIELDS = ("id", "cp", "driver", "started_at", "ended_at", "kwh", "eur", "status", "reason")
#: A ticket's fields, as drivers read them.
TICKET_FIELDS = ("session", "cp", "driver", "kwh", "eur", "price", "status", "reason", "started_at", "ended_at")

#: What every daemon answers, whatever its role.
CORE_COMMANDS = (
    CommandSpec(("status",), "name, role, version, uptime and transport state of the daemon"),
    CommandSpec(("ping",), "check that the daemon answers"),
    CommandSpec(("attach",), "open the daemon's live panel (urwid) in this terminal", run_locally=_attach),
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
    """The core commands followed by plugin commands (``Plugins.commands``), checked for clashes."""
    table = {}
    for spec in (*CORE_COMMANDS, *extra):
        if spec.name in table:
            raise ValueError(f"command '{spec.name}' is defined twice")
        table[spec.name] = spec
    return table
