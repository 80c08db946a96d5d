"""What the panel, the monitors and the drivers see of the network: central's state tree and central.status."""

import time

from evd import messages
from evd.link import LinkError

from .charging_point import STATUS_FIELDS

SNAPSHOT_EVERY = 10.0  # seconds between full CP lists on central.status
SNAPSHOT_CHUNK = 200  # CPs per cps message


class Publisher:
    def __init__(self, central):
        self.central = central
        self._changed_cps = set()
        self._last_snapshot = 0.0
        self.snapshot_wanted = False  # a driver asked for the CP list: send it with the next status

    def refresh(self, cp):
        """``cp`` may have changed: update the panel's tile, central.status and the monitor's state."""
        daemon = self.central.daemon
        tile = cp.tile()
        path = ("cps", cp.id)
        if daemon.state.get(path) != tile:
            daemon.state.set(path, tile)
            published = tuple(tile[field] for field in STATUS_FIELDS)  # live kWh stays off: drivers get theirs on driver.events
            if published != cp.published:
                cp.published = published
                self._changed_cps.add(cp.id)
        if cp.session is not None:
            daemon.state.set(("requests", cp.session.id), cp.session.request_row())
        if cp.link is not None and cp.announced != cp.state:
            cp.announced = cp.state
            daemon.spawn(_tell(cp.link, "STATE", cp.state, tile["detail"] or ""))

    def publish_status(self):
        """central.status: the heartbeat, the CPs that changed, and now and then every CP."""
        bus, cps = self.central.daemon.bus, self.central.cps
        connected = sum(1 for cp in cps.values() if cp.link is not None)
        bus.publish("central.status", "central", messages.make("heartbeat", cps=len(cps), connected=connected))
        for cp_id in sorted(self._changed_cps):
            cp = cps.get(cp_id)
            if cp is not None:
                bus.publish("central.status", "central", messages.make("cp_state", cp=dict(zip(STATUS_FIELDS, cp.published, strict=True))))
        self._changed_cps.clear()
        now = time.monotonic()
        if self.snapshot_wanted or now - self._last_snapshot >= SNAPSHOT_EVERY:
            self.snapshot_wanted = False
            self._last_snapshot = now
            listing = [cp.listing() for cp in sorted(cps.values(), key=lambda c: c.id)]
            parts = max(1, -(-len(listing) // SNAPSHOT_CHUNK))
            for part in range(parts):
                chunk = listing[part * SNAPSHOT_CHUNK : (part + 1) * SNAPSHOT_CHUNK]
                bus.publish("central.status", "central", messages.make("cps", items=chunk, part=part, parts=parts))


async def _tell(link, *message):
    try:
        await link.send(*message)
    except LinkError:
        pass
