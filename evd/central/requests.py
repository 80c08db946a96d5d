"""Supply requests, from drivers over driver.requests and from CPs themselves (manual): authorise or deny, once."""

import uuid

from evd import authorisation, messages
from evd.sessions import Session, Status

HISTORY_LIMIT = 200  # past sessions sent to a driver that asks


class Requests:
    def __init__(self, central):
        self.central = central

    def on_request(self, message, key):
        """A record on driver.requests."""
        central = self.central
        try:
            message = messages.check("driver.requests", message)
        except messages.MalformedMessage as e:
            self._deny_malformed(message, key, e)
            raise
        if message["driver"] != key:
            raise messages.MalformedMessage(f"driver {message['driver']!r} does not match the record key {key!r}")
        if message["type"] == "cps_request":
            central.publisher.snapshot_wanted = True
            return
        if message["type"] == "history_request":
            # R23: a driver's past supplies, from central's database.
            past = [session.listing() for session in central.store.sessions(driver=key, limit=HISTORY_LIMIT)]
            central.daemon.bus.publish("driver.events", key, messages.make("history", driver=key, sessions=past))
            return
        if message["type"] == "cancel":
            self.cancel(message)
            return
        self.handle(message, origin="driver")

    def cancel(self, message):
        """The driver ends its own running supply: an INTERRUPTED ticket for the energy delivered."""
        central, driver = self.central, message["driver"]
        cp = central.supplying.get(driver)
        if cp is None or cp.session is None or cp.session.id != message["session"]:
            # Ended already (a replay, or it ended meanwhile): its ticket again, so the driver is not left waiting.
            session = central.store.session(message["session"])
            if session is not None and session.driver == driver and session.status.final:
                central.supplies.send_ticket(session)
            return
        central.message(f"driver {driver} cancelled the supply at {cp.id}")
        central.daemon.audit("CHARGE", driver, "supply cancelled", "ok", cp=cp.id, session=cp.session.id)
        central.supplies.end(cp, "cancelled by the driver", order="end")

    def _deny_malformed(self, message, key, error):
        # A request that names its driver gets a denial, not silence: else its driver waits for a timeout.
        request_id, driver, cp = message.get("id"), message.get("driver"), message.get("cp")
        if message.get("type") != "request" or not isinstance(request_id, str) or not isinstance(key, str) or driver != key:
            return
        reason = f"malformed request ({error})"
        daemon = self.central.daemon
        self.central.message(f"request of driver {driver} denied: {reason}")
        daemon.audit("CHARGE", driver, "supply request", f"denied: {reason}", origin="driver")
        cp = cp if isinstance(cp, str) else ""
        daemon.bus.publish("driver.events", driver, messages.make("denied", request_id=request_id, cp=cp, driver=driver, reason=reason))

    def handle(self, request, origin):
        """Authorise or deny a checked request; a replayed one gets the same answer again."""
        central, daemon = self.central, self.central.daemon
        existing = central.store.session_by_request(request["id"])
        if existing is not None:
            self.announce(existing)
            return
        known_driver = central.drivers.admits(request["driver"], origin)
        session = Session(
            id=uuid.uuid4().hex,
            request_id=request["id"],
            cp=request["cp"],
            driver=request["driver"],
            origin=origin,
            kwh_requested=float(request["kwh"]),
            requested_at=request["ts"],
        )
        cp = central.cps.get(request["cp"])
        busy = central.supplying.get(request["driver"])
        reason = authorisation.denial(
            request,
            cp,
            max_kwh=central.config.max_kwh,
            busy_at=busy.id if busy else None,
            now=messages.now_iso(),
            known_driver=known_driver,
        )
        if reason:
            session.status, session.reason, session.ended_at = Status.DENIED, reason, messages.now_iso()
            session.price = cp.price if cp else None
            central.store.save_session(session)
            central.message(f"request of driver {request['driver']} for {request['cp']} denied: {reason}")
            daemon.audit(
                "CHARGE", request["driver"], "supply request", f"denied: {reason}", cp=request["cp"], session=session.id, origin=origin
            )
        else:
            session.price = cp.price
            central.open(cp, session)
            central.store.save_session(session)
            central.message(f"driver {request['driver']} authorised at {cp.id} ({session.kwh_requested:g} kWh at {cp.price:g} EUR/kWh)")
            daemon.audit("CHARGE", request["driver"], "supply request", "authorised", cp=cp.id, session=session.id, origin=origin)
            central.publisher.refresh(cp)
        self.announce(session)

    def announce(self, session):
        """Tell the driver (and the engine) what became of a request: denied, authorised, or its ticket."""
        central = self.central
        bus = central.daemon.bus
        if session.status == Status.DENIED:
            denial = messages.make("denied", request_id=session.request_id, cp=session.cp, driver=session.driver, reason=session.reason)
            bus.publish("driver.events", session.driver, denial)
            if session.origin == "manual":
                central.order(session.cp, denial)
            return
        if session.status.final:
            central.supplies.send_ticket(session)
            return
        fields = session.authorization()
        if session.origin != "charger":  # a charger that started a supply itself needs no order to start it
            central.order(session.cp, messages.make("authorize", **fields))
        bus.publish("driver.events", session.driver, messages.make("authorized", **fields))
