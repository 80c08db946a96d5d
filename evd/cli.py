"""``evd``: run, check or demo the daemon (DESIGN.md §2)."""

import logging
import sys

from . import __version__, logs
from . import config as configuration
from .errors import EXIT_FAILURE, EvdError, OneLineErrorParser
from .pluginmanager import DISABLE_ENV, load_plugins

PROG = "evd"


def build_parser():
    parser = OneLineErrorParser(
        prog=PROG,
        description="The EVCharging daemon: runs one role (central, engine, monitor or driver) from its YAML configuration.",
        epilog="See evd(8), evd.yaml(5) and evctl(1).",
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True

    run = commands.add_parser(
        "run", help="run one daemon in the foreground (systemd's way)", description="Run one daemon in the foreground until SIGTERM."
    )
    _config_args(run)
    run.add_argument("--console", action="store_true", help="show the role's panel in this terminal (quitting it stops the daemon)")

    check = commands.add_parser(
        "check", help="validate a configuration and exit", description="Validate a configuration: exit 0, or 2 with FILE:LINE: message."
    )
    _config_args(check)

    demo = commands.add_parser(
        "demo",
        help="run a whole network on this machine (local transport)",
        description="Run central, N charging points (engine + monitor each) and M drivers as separate evd processes on this machine, "
        "with the local transport. Ctrl-C stops them all.",
    )
    demo.add_argument("--cps", type=int, default=4, metavar="N", help="charging points (default: 4)")
    demo.add_argument("--drivers", type=int, default=1, metavar="M", help="drivers, each working through a requests file (default: 1)")
    demo.add_argument(
        "--dir",
        metavar="DIR",
        help="where configs, sockets, databases and logs go, kept after the demo; a previous demo's state and logs there are cleared, "
        "so each demo starts fresh (default: a new temporary directory, removed when the demo stops)",
    )
    demo.add_argument(
        "--weather", metavar="FILE", help="also run EV_W, the weather station, reading city: °C from FILE (edit it while the demo runs)"
    )
    demo.add_argument("--attach", action="store_true", help="open central's panel in this terminal; quitting it stops the demo")

    commands.add_parser(
        "plugins", help="list the installed plugins and what they provide", description="List the installed plugins and what they provide."
    )
    return parser


def _config_args(parser):
    parser.add_argument(
        "-c", "--config", required=True, metavar="FILE", help="the instance's YAML file (evd.yaml beside it is layered under it)"
    )
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE", help="override one config value (repeatable)"
    )


def main(argv=None):
    args = build_parser().parse_args(argv)
    try:
        return COMMANDS[args.command](args)
    except EvdError as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        return EXIT_FAILURE


def cmd_check(args):
    plugins = load_plugins()
    config = configuration.load(args.config, plugins.schema, args.overrides)
    print(f"{args.config}: ok ({config.role} '{config.name}', from {', '.join(config.files)})")
    return 0


def cmd_run(args):
    plugins = load_plugins()
    config = configuration.load(args.config, plugins.schema, args.overrides)
    return run_daemon(config, plugins, args.config, args.overrides, console=args.console)


def run_daemon(config, plugins, config_path=None, overrides=(), console=False):
    from .daemon import Daemon

    if console:
        from . import foreground

        return foreground.run(config, plugins, lambda: run_daemon(config, plugins, config_path, overrides))
    logs.setup(config.log.level, name=config.name)
    logging.getLogger(__name__).debug("configuration from %s", ", ".join(config.files))
    return Daemon(config, plugins, config_path, overrides).run()


def cmd_plugins(args):
    plugins = load_plugins()
    for name, plugin in sorted(plugins.pm.list_name_plugin(), key=lambda item: str(item[0])):
        if plugin is None:
            print(f"{name}: disabled ({DISABLE_ENV})")
            continue
        hooks = sorted(h.name for h in plugins.pm.get_hookcallers(plugin) or [])
        print(f"{name}: {', '.join(hooks)}")
    for name, error in sorted(plugins.failed.items()):
        print(f"{name}: FAILED TO LOAD: {error}")
    for what, table in (("roles", plugins.schema.roles), ("transports", plugins.schema.transports)):
        print(f"{what}: {', '.join(sorted(table)) or '(none)'}")
    return 0


def cmd_demo(args):
    from . import demo

    return demo.run(args.cps, args.drivers, args.dir, args.attach, args.weather)


COMMANDS = {"run": cmd_run, "check": cmd_check, "demo": cmd_demo, "plugins": cmd_plugins}


if __name__ == "__main__":
    sys.exit(main())
