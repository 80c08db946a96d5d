"""Central's OCPP 1.6J endpoint (DESIGN.md §10): the ``ocpp`` config section.

The endpoint (evd.ocpp.endpoint) runs in central's own event loop and is imported only when it
starts: no other role, and no central with ``ocpp.enabled: false``, loads the ``ocpp`` package.
"""

import logging
import os

import attrs

import evd
from evd.central import network_of
from evd.config import Duration, HostPort, positive
from evd.pluginmanager import PerDaemon

log = logging.getLogger(__name__)

_endpoints = PerDaemon()  # central daemon -> its running Endpoint


@attrs.frozen
class OcppConfig:
    enabled: bool = False
    listen: HostPort = HostPort("0.0.0.0", 9000)
    heartbeat_interval: Duration = attrs.field(default=Duration(60), validator=positive)  # what BootNotification answers


@evd.hookimpl
def evd_config_sections():
    return {"ocpp": OcppConfig}


@evd.hookimpl
def evd_startup(daemon):
    section = daemon.config.sections.get("ocpp") or OcppConfig()
    if daemon.role_name != "central" or not section.enabled:
        return None
    return _serve(daemon, section)


async def _serve(daemon, section):
    from evd.ocpp.endpoint import Endpoint  # the ocpp package and aiohttp: only now

    endpoint = Endpoint(daemon, section, network_of(daemon))
    try:
        await endpoint.start()
    except OSError as e:  # a port in use: central runs on
        log.error(
            "OCPP: cannot serve on %s: %s; central runs on without its OCPP endpoint",
            section.listen,
            os.strerror(e.errno) if e.errno else e,
        )
        await endpoint.stop()
        return
    _endpoints[daemon] = endpoint


@evd.hookimpl
def evd_shutdown(daemon):
    endpoint = _endpoints.pop(daemon, None)
    return endpoint.stop() if endpoint is not None else None
