"""The declared interface of central for its extras (registry, crypto, audit, metrics, the HTTP API —
EV_W's alerts come through it — and the OCPP endpoint): what they may read and change, and nothing else.

A plugin gets it with :func:`network_of` and must not read central's other attributes: the
changes go through central's own rules (a CP registered here is stored, shown and published
like one a monitor registered), and what it reads are snapshots, never central's live objects.
Tables a plugin keeps in central's database are part of central's one versioned schema
(evd.store.MIGRATIONS); :meth:`Network.database` opens a connection of the plugin's own.
"""

import attrs

from evd import messages
from evd.errors import CommandError
from evd.sessions import Progress, Status
from evd.store import open_database

from .charging_point import CP_ID


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

    def message(self, text):
        """One line for central's log and its panel's messages."""
        self._central.message(text)

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

    # -- charging points an extra drives (OCPP chargers), through central's rules -----------------

    def connect(self, cp_id, link, control, location=""):
        """A charger of ``cp_id`` is connected through ``link`` (``close()``, ``async send(*fields)``) and takes
        central's orders (the cp.commands messages) through ``control(message)``; it is ACTIVE, or what its
        stored state says. A CP new to central is registered, described by ``location``. Raises CommandError
        for a bad id, or an unknown one while registration is closed."""
        if not CP_ID.match(cp_id):
            raise CommandError("bad_args", f"invalid charging point id {cp_id!r}")
        central = self._central
        cp = central.cps.get(cp_id)
        if cp is None:
            if not central.config.open_registration:
                raise CommandError("not_found", "unknown charging point (registration is closed)")
            cp = central.new_cp(cp_id, location)
            central.store.save_cp(cp.row())
            central.store.flush()
        link.beats_elsewhere = True  # its connection's own pings tell whether it is alive, not central's heartbeat clock
        cp.attach(link, "OK")
        central.controllers[cp_id] = control
        central.publisher.refresh(cp)
        return self._view(cp)

    def disconnect(self, cp_id, link):
        """The charger's connection ``link`` is gone: DISCONNECTED (a running supply waits for it to come back)."""
        cp = self._central.cps.get(cp_id)
        if cp is not None and cp.link is link:
            cp.link, cp.health = None, "UNKNOWN"
            self._central.publisher.refresh(cp)

    def report_health(self, cp_id, ok, detail=""):
        """The charger is faulted (BROKEN, ``detail`` saying why; a running supply is ended) or well again."""
        cp = self._cp(cp_id)
        if cp.link is not None:
            self._central.links.health_report(cp, "OK" if ok else "KO", "" if ok else detail)

    def report_availability(self, cp_id, unavailable):
        """The charger says it is out of service (``unavailable``: why, in words) or available again (None)."""
        cp = self._cp(cp_id)
        if cp.unavailable != unavailable:
            cp.unavailable = unavailable
            self._central.publisher.refresh(cp)

    def is_stopped(self, cp_id):
        """Whether the operator stopped ``cp_id`` (cp stop): what a charger is told when it comes back."""
        return self._cp(cp_id).stopped

    def admits_driver(self, driver_id):
        """Whether central serves this driver (registered, or drivers are open): an OCPP Authorize."""
        return self._central.drivers.admits(driver_id, "charger")

    def start_supply(self, cp_id, driver_id, request_id, kwh=None):
        """A supply the charger starts for ``driver_id``: the session central authorised and ordered (a remote
        start), else a new request authorised or denied by central's rules (``request_id`` makes a repeat
        answer the same). Stored before it returns; returns a copy of the session (its ``status`` says which)."""
        central = self._central
        cp = self._cp(cp_id)
        session = cp.session
        if session is not None and session.driver == driver_id and session.status == Status.AUTHORIZED:
            return attrs.evolve(session)
        existing = central.store.session_by_request(request_id)
        if existing is None:
            request = {"id": request_id, "ts": messages.now_iso(), "driver": driver_id, "cp": cp_id, "expires_at": None}
            central.requests.handle({**request, "kwh": kwh or central.config.max_kwh}, origin="charger")
            central.store.flush()
            existing = central.store.session_by_request(request_id)
        return existing

    def report_supply(self, cp_id, session_id, event):
        """What the charger reports of a supply (evd.sessions' Started, Progress, Ended); False if no such session."""
        applied = self._central.supplies.apply(self._cp(cp_id), session_id, event)
        if not isinstance(event, Progress):  # a start or an end is stored before the charger hears back;
            self._central.store.flush()  # a reading waits for the next batch: the meter's next one carries it all
        return applied

    def end_supply(self, cp_id, reason):
        """End ``cp_id``'s running supply for ``reason`` (a remote start the charger refused): INTERRUPTED."""
        cp = self._cp(cp_id)
        if cp.session is not None:
            self._central.supplies.end(cp, reason, order=None)

    def _cp(self, cp_id):
        cp = self._central.cps.get(cp_id)
        if cp is None:
            raise CommandError("not_found", f"unknown charging point {cp_id}")
        return cp

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
