"""A test-only plugin, installed through the ``evd`` entry-point group by the tests.

It provides a ``probe`` role with a config section and control commands, to prove that
third-party plugins reach the daemon and evctl exactly like built-in ones.
"""

import asyncio
import pathlib

import attrs

import evd
from evd.commands import Arg, CommandSpec
from evd.config import Duration
from evd.errors import CommandError
from evd.role import Role


@attrs.frozen
class ProbeConfig:
    greeting: str = "hello"
    marker: pathlib.Path | None = None  # written when the role stops cleanly
    stop_delay: Duration = Duration(0)


class ProbeRole(Role):
    uses_bus = False

    async def start(self):
        self.greeting = self.config.greeting
        self.pokes = 0
        self.daemon.state.set(("probe", "pokes"), 0)

    async def stop(self):
        await asyncio.sleep(self.config.stop_delay)
        if self.config.marker:
            self.config.marker.write_text("stopped cleanly\n")

    async def reload(self, config):
        self.greeting = config.section("probe").greeting

    def status(self):
        return {"greeting": self.greeting, "pokes": self.pokes}

    def echo(self, args, ctx):
        if "text" not in args or args["text"] is None:
            raise CommandError("bad_args", "probe echo needs --text")
        return {"echo": f"{self.greeting} {args['text']}"}

    def poke(self, args, ctx):
        self.pokes += 1
        self.daemon.state.set(("probe", "pokes"), self.pokes)
        self.daemon.state.append(("messages",), f"poke {self.pokes}")
        return {"pokes": self.pokes}


@evd.hookimpl
def evd_register_roles():
    return {"probe": ProbeRole}


@evd.hookimpl
def evd_config_sections():
    return {"probe": ProbeConfig}


@evd.hookimpl
def evd_register_commands():
    return [
        CommandSpec(("probe", "echo"), "echo text back", role="probe", args=(Arg("--text", "what to echo", metavar="T"),)),
        CommandSpec(("probe", "poke"), "count a poke", role="probe", mutating=True),
    ]


@evd.hookimpl
def evd_control_commands(daemon):
    if daemon.role_name == "probe":
        return {"probe.echo": daemon.role.echo, "probe.poke": daemon.role.poke}
