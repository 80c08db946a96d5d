"""Central (EV_Central), one module per job.

- role.py: the network's state (CPs, the store, open supplies), start-up and housekeeping;
- links.py: the monitor links (registration, heartbeats, faults, disconnections);
- requests.py: supply requests, authorised or denied (the rules: evd.authorisation);
- supplies.py: running supplies, through the session state machine (evd.sessions);
- publishing.py: the panel's state, central.status, the state each monitor is told;
- operator.py: stop/resume, the registry's and the weather's changes;
- network.py: the declared interface of central for its extras (plugins);
- charging_point.py, config.py: a CP as central knows it, central's config section.
"""

from .charging_point import CP_ID, ChargingPoint
from .config import CentralConfig
from .network import ChargingPointView, Network, network_of
from .role import Central

__all__ = ["CP_ID", "Central", "CentralConfig", "ChargingPoint", "ChargingPointView", "Network", "network_of"]
