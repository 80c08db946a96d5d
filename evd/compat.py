"""The assignment's program names and positional parameters (SPEC.md R15), as thin commands over evd.

Each builds the configuration its arguments describe and runs that role in the foreground,
with its panel on the terminal when there is one.
"""

import argparse
import math
import sys

from . import config as configuration
from .commands import CP_ID, read_requests_file
from .errors import ConfigError, EvdError, OneLineErrorParser, UsageError
from .pluginmanager import load_plugins


class _Parser(OneLineErrorParser):
    """Errors name the positional parameter as the user knows it: ``EV_CP_M: price: not a number: 'x'``."""

    def error(self, message):
        super().error(message.removeprefix("argument "))


def _id(text):
    if not CP_ID.fullmatch(text):
        raise argparse.ArgumentTypeError(f"not a valid id: {text!r} (letters, digits, '_', '.', '@' or '-', at most 56)")
    return text


def _price(text):
    try:
        price = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not math.isfinite(price) or price < 0:
        raise argparse.ArgumentTypeError(f"must be a finite number not below zero: {text!r}")
    return price


def _requests_file(text):
    try:
        read_requests_file(text)  # read now: a bad file stops EV_Driver before anything is sent
    except ConfigError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


def _port(text):
    if not text.isdigit() or not 1 <= int(text) <= 65535:
        raise argparse.ArgumentTypeError(f"not a port number: {text!r}")
    return int(text)


def _host_port(text):
    try:
        return str(configuration.HostPort.parse(text))
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _common(parser):
    parser.add_argument(
        "--set", dest="overrides", action="append", default=[], metavar="KEY.PATH=VALUE", help="override one config value, as in evd run"
    )
    parser.add_argument("--no-console", dest="console", action="store_false", help="log to the terminal instead of showing the panel")
    return parser


def central_main(argv=None):
    parser = _common(_Parser(prog="EV_Central", description="EV_Central: the control centre (evd in the central role)."))
    parser.add_argument("port", type=_port, help="TCP port where monitors connect")
    parser.add_argument("broker", type=_host_port, help="Kafka bootstrap server, host:port")
    parser.add_argument("database", nargs="?", default="central.db", help="SQLite database file (default: central.db)")
    args = parser.parse_args(argv)
    data = {
        "name": "central",
        "role": "central",
        "transport": {"kind": "kafka", "bootstrap": args.broker},
        "central": {"listen": f"0.0.0.0:{args.port}", "database": args.database},
    }
    return _run("EV_Central", data, args)


def engine_main(argv=None):
    parser = _common(
        _Parser(
            prog="EV_CP_E", description="EV_CP_E: a charging point's engine (evd in the engine role); its CP id comes from its monitor."
        )
    )
    parser.add_argument("broker", type=_host_port, help="Kafka bootstrap server, host:port")
    parser.add_argument("port", nargs="?", type=_port, default=6000, help="TCP port where the monitor connects (default: 6000)")
    args = parser.parse_args(argv)
    data = {
        "name": f"engine-{args.port}",
        "role": "engine",
        "transport": {"kind": "kafka", "bootstrap": args.broker},
        "engine": {"listen": f"0.0.0.0:{args.port}"},
    }
    return _run("EV_CP_E", data, args)


def monitor_main(argv=None):
    parser = _common(_Parser(prog="EV_CP_M", description="EV_CP_M: a charging point's monitor (evd in the monitor role)."))
    parser.add_argument("engine", type=_host_port, help="the engine's address, host:port")
    parser.add_argument("central", type=_host_port, help="central's address, host:port")
    parser.add_argument("cp_id", metavar="cp-id", type=_id, help="this charging point's id")
    parser.add_argument("location", nargs="?", help="where the charging point is")
    parser.add_argument("price", nargs="?", type=_price, help="price in EUR per kWh")
    args = parser.parse_args(argv)
    monitor = {"cp_id": args.cp_id, "engine": args.engine, "central": args.central}
    if args.location is not None:
        monitor["location"] = args.location
    if args.price is not None:
        monitor["price"] = args.price
    names = {"monitor.cp_id": "cp-id", "monitor.location": "location", "monitor.price": "price"}
    return _run("EV_CP_M", {"name": f"monitor-{args.cp_id}", "role": "monitor", "monitor": monitor}, args, names)


def driver_main(argv=None):
    parser = _common(_Parser(prog="EV_Driver", description="EV_Driver: a driver's app (evd in the driver role)."))
    parser.add_argument("broker", type=_host_port, help="Kafka bootstrap server, host:port")
    parser.add_argument("driver_id", metavar="driver-id", type=_id, help="this driver's id")
    parser.add_argument(
        "requests_file",
        metavar="requests-file",
        nargs="?",
        type=_requests_file,
        help="file of requests (CP or CP#KWH a line), one after another",
    )
    args = parser.parse_args(argv)
    driver = {"id": args.driver_id}
    if args.requests_file:
        driver["requests_file"] = args.requests_file
    data = {
        "name": f"driver-{args.driver_id}",
        "role": "driver",
        "transport": {"kind": "kafka", "bootstrap": args.broker},
        "driver": driver,
    }
    return _run("EV_Driver", data, args, {"driver.id": "driver-id", "driver.requests_file": "requests-file"})


def weather_main(argv=None):
    parser = _common(_Parser(prog="EV_W", description="EV_W: the weather station (evd in the weather role), talking to central's API."))
    parser.add_argument("central", help="central's API, http(s)://HOST:PORT")
    parser.add_argument("token_file", metavar="token-file", help="a file holding an API token of central's (evctl api token add weather)")
    parser.add_argument(
        "weather_file",
        metavar="weather-file",
        nargs="?",
        help="a YAML file of city: °C to read instead of OpenWeatherMap (whose key comes from $OPENWEATHER_API_KEY)",
    )
    args = parser.parse_args(argv)
    if not args.central.startswith(("http://", "https://")):
        parser.error(f"central: expected http(s)://HOST:PORT, got {args.central!r}")
    weather = {"central": args.central, "token_file": args.token_file}
    if args.weather_file:
        weather.update(source="file", file=args.weather_file)
    names = {"weather.token_file": "token-file", "weather.file": "weather-file"}
    return _run("EV_W", {"name": "weather", "role": "weather", "weather": weather}, args, names)


def _run(prog, data, args, names=None):
    from .cli import run_daemon

    try:
        plugins = load_plugins()
        config = _load(prog, data, plugins, args.overrides, names or {})
        # The panel when a person is at a terminal; plain logs for scripts and services.
        return run_daemon(config, plugins, console=args.console and sys.stdin.isatty() and sys.stdout.isatty())
    except EvdError as e:
        print(f"{prog}: {e}", file=sys.stderr)
        return e.exit_code


def _load(prog, data, plugins, overrides, names):
    source = f"{prog} arguments"
    try:
        return configuration.load_mapping(data, plugins.schema, source, overrides)
    except ConfigError as e:
        if e.source != source:
            raise  # a --set value: that error names it already
        # The arguments became YAML lines the user never wrote: name the argument, not a line.
        key, sep, rest = e.message.partition(": ")
        raise UsageError(f"{names[key]}: {rest}" if sep and key in names else e.message) from None
