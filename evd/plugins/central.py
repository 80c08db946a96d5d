"""The central role's plugin: its role, its config section and its control commands (the role: evd.central)."""

import evd
from evd.central.config import CentralConfig
from evd.commands import SESSION_COLUMNS, Arg, CommandSpec

_IDS = Arg("ids", "charging point ids", nargs="*", metavar="ID")
_ALL = Arg("--all", "every charging point", flag=True)
_DRIVER = Arg("id", "driver id", metavar="ID")

COMMANDS = [
    CommandSpec(
        ("cp", "list"),
        "every charging point and its state",
        role="central",
        columns=("id", "state", "location", "price_eur_kwh", "celsius", "driver", "kwh", "eur", "reason"),
    ),
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
        ("sessions",),
        "supply sessions, newest first",
        role="central",
        args=(
            Arg("--active", "only sessions still running", flag=True),
            Arg("--cp", "only this charging point", metavar="ID"),
            Arg("--driver", "only this driver", metavar="ID"),
        ),
        columns=SESSION_COLUMNS,
    ),
    CommandSpec(
        ("drivers", "list"),
        "the registered drivers (R26)",
        role="central",
        columns=("id", "first_seen", "last_seen", "supplying"),
        group_default=True,
    ),
    CommandSpec(("drivers", "add"), "register a driver", role="central", args=(_DRIVER,), mutating=True),
    CommandSpec(("drivers", "remove"), "forget a driver: its requests are then denied while central.open_drivers is false",
                role="central", args=(_DRIVER,), mutating=True),
]  # fmt: skip


class CentralRole:
    """What the plugin registers: instantiating it gives the real role (evd.central.role), which
    only a daemon running central imports: every daemon loads this plugin."""

    def __new__(cls, daemon):
        from evd.central.role import Central

        return Central(daemon)


@evd.hookimpl
def evd_register_roles():
    return {"central": CentralRole}


@evd.hookimpl
def evd_config_sections():
    return {"central": CentralConfig}


@evd.hookimpl
def evd_register_commands():
    return COMMANDS


@evd.hookimpl
def evd_control_commands(daemon):
    if daemon.role_name != "central":
        return None
    operator, drivers = daemon.role.operator, daemon.role.drivers
    return {
        "cp.list": operator.list, "cp.stop": operator.stop, "cp.resume": operator.resume, "sessions": operator.sessions,
        "drivers.list": drivers.list, "drivers.add": drivers.add, "drivers.remove": drivers.remove,
    }  # fmt: skip
