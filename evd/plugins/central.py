"""The central role's plugin: its role, its config section and its control commands (the role: evd.central)."""

import evd
from evd.central import Central, CentralConfig, ChargingPoint

__all__ = ["Central", "CentralConfig", "ChargingPoint"]


@evd.hookimpl
def evd_register_roles():
    return {"central": Central}


@evd.hookimpl
def evd_config_sections():
    return {"central": CentralConfig}


@evd.hookimpl
def evd_control_commands(daemon):
    if daemon.role_name != "central":
        return None
    operator = daemon.role.operator
    return {"cp.list": operator.list, "cp.stop": operator.stop, "cp.resume": operator.resume, "sessions": operator.sessions}
