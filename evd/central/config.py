"""Central's configuration section (DESIGN.md §3, evd.yaml(5))."""

import pathlib

import attrs

from evd import paths
from evd.config import Duration, HostPort, non_negative, positive
from evd.tls import LinkTls


@attrs.frozen
class CentralConfig:
    listen: HostPort = HostPort("0.0.0.0", 7000)
    #: Default: central.db in the state directory (evd.paths.state_dir), filled in when the config is built.
    database: pathlib.Path | None = None
    heartbeat_timeout: Duration = attrs.field(default=Duration(3), validator=positive)
    open_registration: bool = True
    open_drivers: bool = True  # false: only drivers added with `evctl drivers add` are served (R26)
    #: How long a stopped or faulty supply waits for the engine's final figures before
    #: central closes it with the last energy it heard of.
    end_grace: Duration = attrs.field(default=Duration(3), validator=positive)
    status_interval: Duration = attrs.field(default=Duration(1), validator=positive)
    default_price: float = attrs.field(default=0.50, validator=non_negative)
    max_kwh: float = attrs.field(default=500.0, validator=positive)
    tls: LinkTls = attrs.field(factory=LinkTls)  # TLS on the monitors' link (DESIGN.md §6)
    #: Worker processes for the monitors' links (framing, ACKs, heartbeats); 0: on central's own loop.
    link_workers: int = attrs.field(default=0, validator=non_negative)

    def __attrs_post_init__(self):
        if self.database is None:
            object.__setattr__(self, "database", paths.state_dir() / "central.db")  # frozen: set once, here
