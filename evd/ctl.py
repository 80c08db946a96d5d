"""``evctl``: administer a running evd over its control socket (DESIGN.md §2).

The parser, ``--help`` and the man page all come from :mod:`evd.commands`.
"""

import argparse
import json
import sys
import textwrap

from . import __version__, humanize, paths
from .client import ControlClient
from .commands import all_commands
from .errors import CommandError, EvdError, OneLineErrorParser, UnreachableError, UsageError

PROG = "evctl"


def command_summary(table, width=79, column=28):
    """The command list shown by ``evctl --help``: usage, then help wrapped beside or below it."""
    lines = []
    for spec in table.values():
        where = f" ({spec.role})" if spec.role else ""
        text = textwrap.wrap(spec.help + where, width - column)
        usage = "  " + spec.usage
        if len(usage) >= column:
            lines.append(usage)
        else:
            lines.append(usage.ljust(column) + text.pop(0))
        lines += [" " * column + line for line in text]
    return "\n".join(lines)


def build_parser(table):
    parser = OneLineErrorParser(
        prog=PROG,
        usage="%(prog)s [-h] [-n NAME | -s SOCKET | --url URL [--token-file F] [--cacert F]] [--json] [--version] COMMAND ...",
        formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Administer a running evd daemon over its control socket.",
        epilog=(
            "commands:\n" + command_summary(table) + "\n\n"
            "The daemon is found by -s SOCKET, or -n NAME in the default socket directory\n"
            f"({paths.socket_dir()}), or as the only socket there; with --url, central's commands\n"
            "go over its HTTP API instead (remote administration).\n"
            "Exit status: 0 ok, 1 failure, 2 usage or config error, 3 daemon unreachable, 4 command refused."
        ),
    )
    target = parser.add_mutually_exclusive_group()
    target.add_argument("-n", "--name", dest="instance", help="instance name of the daemon (its socket is NAME.sock)")
    target.add_argument("-s", "--socket", metavar="SOCKET", help="path of the daemon's control socket")
    target.add_argument("--url", help="central's HTTP API (https://HOST:PORT): run central's commands over it, from any machine")
    parser.add_argument("--token-file", metavar="F", help="a file holding an API token (evctl api token add), for --url")
    parser.add_argument("--cacert", metavar="F", help="CA certificate(s) to verify an https --url with (default: the system's)")
    parser.add_argument("--json", action="store_true", help="print the result as one JSON document")
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")
    subparsers = parser.add_subparsers(dest="word0", metavar="COMMAND", help=argparse.SUPPRESS, prog=PROG)
    subparsers.required = True
    groups, group_parsers = {}, {}
    for spec in table.values():
        container = subparsers
        for depth, word in enumerate(spec.words[:-1]):
            key = spec.words[: depth + 1]
            if key not in groups:
                group = group_parsers[key] = container.add_parser(word, description=f"{word} commands")
                groups[key] = group.add_subparsers(dest=f"word{depth + 1}", metavar="COMMAND")
                groups[key].required = True
            container = groups[key]
        if spec.group_default:  # typed alone, the group runs this command
            group_parsers[spec.words[:-1]].set_defaults(spec=spec)
            groups[spec.words[:-1]].required = False
        command = container.add_parser(
            spec.words[-1],
            help=spec.help if len(spec.words) > 1 else None,
            description=spec.help + (f" ({spec.role} only)" if spec.role else ""),
        )
        command.set_defaults(spec=spec)
        # Accept --json after the command too, as people type it.
        command.add_argument("--json", action="store_true", default=argparse.SUPPRESS, help="print the result as one JSON document")
        _add_args(command, spec)
    return parser


def _add_args(parser, spec):
    exclusive = parser.add_mutually_exclusive_group(required=True) if spec.one_of else None
    for arg in spec.args:
        target = exclusive if arg.dest in spec.one_of else parser
        if arg.positional:
            extra = {"default": []} if arg.nargs == "*" else {}  # argparse needs it to allow "none given"
            target.add_argument(arg.dest, help=arg.help, type=arg.type, nargs=arg.nargs, metavar=arg.metavar, **extra)
        elif arg.flag:
            target.add_argument(arg.name, dest=arg.dest, action="store_true", help=arg.help)
        else:
            target.add_argument(
                arg.name, dest=arg.dest, help=arg.help, type=arg.type, metavar=arg.metavar, default=arg.default, required=arg.required
            )


def resolve_socket(args):
    if args.socket:
        return args.socket
    if args.instance:
        return str(paths.socket_path(args.instance))
    found = paths.discover()
    if len(found) == 1:
        return str(found[0])
    if not found:
        raise UnreachableError(f"no daemon found: no control socket in {paths.socket_dir()} (use -n NAME or -s PATH)")
    names = ", ".join(p.stem for p in found)
    raise UsageError(f"several daemons found ({names}): choose one with -n NAME")


def main(argv=None):
    table = _load_table()
    parser = build_parser(table)
    args = parser.parse_args(argv)
    spec = args.spec
    try:
        if spec.one_of and args.ids == [] and not getattr(args, "all", False):
            parser.error(f"{' '.join(spec.words)}: give charging point ids or --all")
        if (args.token_file or args.cacert) and not args.url:
            parser.error("--token-file and --cacert go with --url")
        path = None if args.url else resolve_socket(args)
        if spec.run_locally is not None:
            if path is None:
                raise UsageError(f"'{' '.join(spec.words)}' needs the daemon's control socket, not --url")
            return spec.run_locally(path)
        call_args = {arg.dest: getattr(args, arg.dest) for arg in spec.args}
        if spec.prepare is not None:
            spec.prepare(call_args)
        with _client(args, path) as client:
            result = client.call(spec.name, call_args, timeout=spec.timeout)
    except CommandError as e:
        if e.result is not None:
            _print_result(spec, e.result, args.json)
        print(f"{PROG}: {e}", file=sys.stderr)
        return e.exit_code
    except EvdError as e:
        print(f"{PROG}: {e}", file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        return 130
    _print_result(spec, result, args.json)
    return 0


def _client(args, path):
    if args.url:
        from .api.client import ApiClient

        return ApiClient(args.url, args.token_file, args.cacert)
    return ControlClient(path)


def _load_table():
    try:
        from .pluginmanager import command_table

        return command_table()
    except Exception as e:  # evctl stays usable for status, ping and attach if the plugins cannot load
        print(f"{PROG}: plugin commands unavailable: {e}", file=sys.stderr)
        return all_commands()


def _print_result(spec, result, as_json):
    if as_json:
        # UTF-8 as it is: a location like "Gran Vía" prints as people write it, not as \u00ed.
        print(json.dumps(result, indent=2, ensure_ascii=False, default=str))
        return
    for line in humanize.lines(result, spec.columns):
        print(line)


if __name__ == "__main__":
    sys.exit(main())
