"""Central (EV_Central), one module per job.

- role.py: the network's state (CPs, the store, open supplies), start-up and housekeeping;
- links.py: the monitor links (registration, heartbeats, faults, disconnections);
- requests.py: supply requests, authorised or denied (the rules: evd.authorisation);
- supplies.py: running supplies, through the session state machine (evd.sessions);
- publishing.py: the panel's state, central.status, the state each monitor is told;
- operator.py: stop/resume, the registry's and the weather's changes;
- network.py: the declared interface of central for its extras (plugins);
- charging_point.py, config.py: a CP as central knows it, central's config section.

Every extra asks ``network_of(daemon)`` in every daemon, so this package loads nothing until
a name is used: a monitor, an engine or a driver never imports central's modules (~25 ms of
start-up each).
"""

import importlib

#: name -> the module that defines it, imported on first use (PEP 562).
_WHERE = {
    "CP_ID": "charging_point",
    "ChargingPoint": "charging_point",
    "CentralConfig": "config",
    "ChargingPointView": "network",
    "Network": "network",
    "Central": "role",
}

__all__ = [*sorted(_WHERE), "network_of"]


def network_of(daemon):
    """Central's Network in a daemon running central, else None."""
    role = daemon.role if daemon.role_name == "central" else None
    return getattr(role, "network", None)


def __getattr__(name):
    if name not in _WHERE:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_WHERE[name]}"), name)
