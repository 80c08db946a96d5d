"""The declared interface of central for its extras (registry, crypto, audit, metrics, the HTTP API —
EV_W's alerts come through it — and the OCPP endpoint to come): what they may read and change, and nothing else.

A plugin gets it with :func:`network_of` and must not read central's other attributes: the
changes go through central's own rules (a CP registered here is stored, shown and published
like one a monitor registered), and what it reads are snapshots, never central's live objects.
Tables a plugin keeps in central's database are part of central's one versioned schema
(evd.store.MIGRATIONS); :meth:`Network.database` opens a connection of the plugin's own.
"""

import attrs

from evd.store import open_database


@attrs.frozen
class ChargingPointView:
    """A charging point as its extras see it, at one moment."""

    id: str
    location: str
    price: float
    city: str
    state: str
    reason: str | None  # why it is BROKEN or STOPPED, in words
    driver: str | None  # while SUPPLYING
    session: str | None  # while SUPPLYING


def network_of(daemon):
    """Central's Network in a daemon running central, else None."""
    role = daemon.role if daemon.role_name == "central" else None
    return getattr(role, "network", None)


class Network:
    def __init__(self, central):
        self._central = central

    # -- reading --------------------------------------------------------------------------

    def charging_points(self):
        """Every known CP, by id."""
        return [self._view(cp) for cp in sorted(self._central.cps.values(), key=lambda cp: cp.id)]

    def charging_point(self, cp_id):
        cp = self._central.cps.get(cp_id)
        return self._view(cp) if cp is not None else None

    def state_counts(self):
        """How many CPs are in each state, and how many supplies are open: ``({state: n}, open)``."""
        states, open_sessions = {}, 0
        for cp in self._central.cps.values():
            states[cp.state] = states.get(cp.state, 0) + 1
            open_sessions += cp.session is not None
        return states, open_sessions

    def session(self, session_id):
        """A copy of a supply session (evd.sessions.Session), stored or running, or None."""
        central = self._central
        if central.store is None:
            return None
        session = central.store.session(session_id)
        return attrs.evolve(session) if session is not None else None

    def database(self):
        """A new connection (sqlite-utils) to central's database, its schema migrated; the caller closes it."""
        return open_database(self._central.config.database)

    # -- changing, through central's rules --------------------------------------------------

    def register_cp(self, cp_id, location, price, city):
        """Add or update a CP (R18): stored, shown and published; raises CommandError for a bad id."""
        return self._view(self._central.operator.register_cp(cp_id, location, price, city))

    def unregister_cp(self, cp_id):
        """Remove a CP; raises CommandError if it is unknown or supplying."""
        self._central.operator.unregister_cp(cp_id)

    def weather_report(self, city, alert, celsius):
        """EV_W's reading of a city (R22): its CPs' temperature, out of service or back; (their ids, alert changed)."""
        return self._central.operator.weather_report(city, alert, celsius)

    @staticmethod
    def _view(cp):
        tile = cp.tile()
        return ChargingPointView(
            id=cp.id,
            location=cp.location,
            price=cp.price,
            city=cp.city,
            state=tile["state"],
            reason=tile["reason"],
            driver=tile["driver"],
            session=tile["session"],
        )
