"""A charging point as central knows it: what it stores, its state in words, its tile."""

import re
import time

import attrs

from evd.sessions import Session

CP_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
STATUS_FIELDS = ("id", "location", "price_eur_kwh", "city", "state")  # a CP on central.status


@attrs.define(eq=False)
class ChargingPoint:
    id: str
    location: str = ""
    price: float = 0.5
    city: str = ""
    stopped: bool = False
    registered_at: str | None = None
    link: object = None  # the monitor's Link while connected
    health: str = "UNKNOWN"  # OK | KO | UNKNOWN, from the monitor's heartbeats
    detail: str = ""
    last_heartbeat: float = 0.0
    session: Session | None = None  # the open session
    published: tuple | None = None  # what central.status last said about this CP
    weather: str | None = None  # why the weather keeps it out of service (R22), if it does
    celsius: float | None = None  # its city's last temperature from EV_W, if any
    announced: str | None = None  # the state last sent to the monitor
    unavailable: str | None = None  # why the charger itself says it is out of service (OCPP's Unavailable)

    @classmethod
    def from_row(cls, row):
        return cls(
            id=row["id"],
            location=row["location"] or "",
            price=row["price"],
            city=row["city"] or "",
            stopped=bool(row["stopped"]),
            registered_at=row["registered_at"],
        )

    def attach(self, link, health):
        """``link`` is this CP's connection from now on (a monitor's, a charger's), ``health`` its health
        until it reports; an older connection is closed. Returns that older connection, or None."""
        old = self.link if self.link is not link else None
        self.link = None  # first: closing the old one must not report this CP disconnected
        if old is not None:
            old.close()
        self.link, self.health, self.detail, self.announced = link, health, "", None
        self.last_heartbeat = time.monotonic()
        return old

    @property
    def state(self):
        if self.link is None or self.health == "UNKNOWN":
            return "DISCONNECTED"
        if self.health == "KO":
            return "BROKEN"
        if self.stopped:
            return "STOPPED"
        if self.session is not None:
            return "SUPPLYING"  # the weather lets a running supply finish
        if self.weather or self.unavailable:
            return "STOPPED"
        return "ACTIVE"

    @property
    def reason(self):
        """Why it is BROKEN or STOPPED, in words (``cp list``'s ``reason``); None otherwise."""
        if self.state == "BROKEN":
            return self.detail or "engine KO"
        if self.state == "STOPPED":
            if self.stopped:
                return "stopped by the operator"
            return f"weather: {self.weather}" if self.weather else f"the charger says: {self.unavailable}"
        return None

    def _stop_reason(self):
        if self.stopped or not (self.weather or self.unavailable):
            return "Out of Order"
        return f"Out of Order: {self.weather or self.unavailable}"

    def row(self):
        return {
            "id": self.id,
            "location": self.location,
            "price": self.price,
            "city": self.city,
            "stopped": int(self.stopped),
            "registered_at": self.registered_at,
        }

    def tile(self):
        """The CP as central's panel shows it: ``cp list``'s fields (DESIGN.md §2) and the ``detail`` line."""
        session = self.session if self.state == "SUPPLYING" else None
        return {
            "id": self.id,
            "location": self.location,
            "price_eur_kwh": self.price,
            "city": self.city,
            "state": self.state,
            "driver": session.driver if session else None,
            "kwh": session.kwh if session else None,
            "eur": session.eur if session else None,
            "session": session.id if session else None,
            "reason": self.reason,
            "celsius": self.celsius,
            "detail": self.detail if self.state == "BROKEN" else (self._stop_reason() if self.state == "STOPPED" else None),
        }

    def listing(self):
        """The CP as ``cp list`` shows it (DESIGN.md §2): the tile without the panel's detail line."""
        return {k: v for k, v in self.tile().items() if k != "detail"}
