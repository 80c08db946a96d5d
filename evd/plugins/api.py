"""Central's HTTP API and its tokens (DESIGN.md §9): ``api`` config section, ``evctl api token …``.

The server (evd.api.server, aiohttp) runs in central's own event loop and is imported only when
it starts: no other role, and no central with ``api.enabled: false``, loads aiohttp.
"""

import logging
import os

import attrs

import evd
from evd.central import network_of
from evd.commands import Arg, CommandSpec
from evd.config import HostPort
from evd.errors import EvdError
from evd.pluginmanager import PerDaemon
from evd.tls import TlsFiles

log = logging.getLogger(__name__)

_servers = PerDaemon()  # central daemon -> its running ApiServer
_token_stores = PerDaemon()  # central daemon -> its TokenStore


@attrs.frozen
class ApiConfig:
    enabled: bool = True
    listen: HostPort = HostPort("127.0.0.1", 8080)
    tls: TlsFiles = attrs.field(factory=TlsFiles)
    public_read: bool = True  # GET routes other than audit need no token


_NAME = Arg("name", "the token's name (who or what uses it)", metavar="NAME")
COMMANDS = [
    CommandSpec(("api", "token", "add"), "make an API token; prints it once", role="central", args=(_NAME,), mutating=True),
    CommandSpec(("api", "token", "list"), "the API tokens (never the tokens themselves)", role="central",
                columns=("name", "created_at", "revoked_at")),
    CommandSpec(("api", "token", "revoke"), "revoke an API token at once", role="central", args=(_NAME,), mutating=True),
]  # fmt: skip


def _section(daemon):
    return daemon.config.sections.get("api") or ApiConfig()


def _tokens(daemon):
    network = network_of(daemon)
    if network is None:
        return None
    from evd.api.tokens import TokenStore  # central's only: hashlib and secrets stay out of other daemons

    return _token_stores.made(daemon, lambda: TokenStore(network.database()))


def weather_alert(daemon, city, alert, celsius, source):
    """POST /api/weather_alert (R22): the city's CPs out of service after their running supply, or back.

    EV_W posts every change of a reading and each city again now and then: only a change of alert is audited."""
    cps, changed = network_of(daemon).weather_report(city, alert, celsius)
    if changed:
        daemon.audit("STATUS", source, "weather alert", "on" if alert else "off", city=city, celsius=celsius, cps=cps)
    return {"city": city, "alert": alert, "cps": cps}


@evd.hookimpl
def evd_config_sections():
    return {"api": ApiConfig}


@evd.hookimpl
def evd_register_commands():
    return COMMANDS


@evd.hookimpl
def evd_control_commands(daemon):
    tokens = _tokens(daemon)
    if tokens is None:
        return None

    def add(args, ctx):
        token = tokens.add(args.get("name"))
        daemon.audit("SECURITY", "operator", "api token issued", "ok", name=args.get("name"))
        return {"name": args["name"], "token": token, "note": "shown once: give it to the API client (Authorization: Bearer TOKEN)"}

    def revoke(args, ctx):
        tokens.revoke(args.get("name"))
        daemon.audit("SECURITY", "operator", "api token revoked", "ok", name=args.get("name"))
        return {"name": args["name"], "revoked": True}

    return {"api.token.add": add, "api.token.list": lambda args, ctx: tokens.list(), "api.token.revoke": revoke}


@evd.hookimpl
def evd_startup(daemon):
    section = _section(daemon)
    if daemon.role_name != "central" or not section.enabled:
        return None
    return _serve(daemon, section)


async def _serve(daemon, section):
    from evd.api.server import ApiServer  # aiohttp: only now

    server = ApiServer(daemon, section, _tokens(daemon), lambda **alert: weather_alert(daemon, **alert))
    try:
        await server.start()
    except (OSError, EvdError) as e:  # a port in use, an unreadable certificate: central runs on
        reason = os.strerror(e.errno) if isinstance(e, OSError) and e.errno else str(e)
        log.error("API: cannot serve on %s: %s; central runs on without its API", section.listen, reason)
        await server.stop()
        return
    _servers[daemon] = server


@evd.hookimpl
def evd_shutdown(daemon):
    tokens = _token_stores.pop(daemon, None)
    if tokens is not None:
        tokens.db.conn.close()
    server = _servers.pop(daemon, None)
    return server.stop() if server is not None else None
