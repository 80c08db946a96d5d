"""The central role (EV_Central): registry, authorisation, live state of every CP, stop/resume.

Monitors connect over the framed socket protocol (see :mod:`evd.plugins.monitor` for the
messages); drivers and engines talk to central over the stream (DESIGN.md §4). The
database is the truth after a restart: every CP starts DISCONNECTED until its monitor
connects again (R2), open sessions continue, and records that arrived while central was
down are applied from the stream. Handlers are idempotent: a replayed or duplicated record
never counts energy twice nor produces a different ticket.
"""

import asyncio
import logging
import os
import pathlib
import re
import time
import uuid

import attrs

import evd
from evd import authorisation, messages, paths, sessions
from evd.config import Duration, HostPort, non_negative, positive
from evd.errors import CommandError, EvdError
from evd.link import LinkError, serve
from evd.role import Role
from evd.sessions import Session, Status
from evd.store import Store

log = logging.getLogger(__name__)

CP_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,63}$")
REGISTER_TIMEOUT = 10.0  # a monitor must register this soon after connecting
SNAPSHOT_EVERY = 10.0  # seconds between full CP lists on central.status
SNAPSHOT_CHUNK = 200  # CPs per cps message
STATUS_FIELDS = ("id", "location", "price_eur_kwh", "city", "state")  # a CP on central.status
HISTORY_LIMIT = 200  # past sessions sent to a driver that asks


@attrs.frozen
class CentralConfig:
    listen: HostPort = HostPort("0.0.0.0", 7000)
    #: Default: central.db in the state directory (evd.paths.state_dir), filled in when the config is built.
    database: pathlib.Path | None = None
    heartbeat_timeout: Duration = attrs.field(default=Duration(3), validator=positive)
    open_registration: bool = True
    #: How long a stopped or faulty supply waits for the engine's final figures before
    #: central closes it with the last energy it heard of.
    end_grace: Duration = attrs.field(default=Duration(3), validator=positive)
    status_interval: Duration = attrs.field(default=Duration(1), validator=positive)
    default_price: float = attrs.field(default=0.50, validator=non_negative)
    max_kwh: float = attrs.field(default=500.0, validator=positive)

    def __attrs_post_init__(self):
        if self.database is None:
            object.__setattr__(self, "database", paths.state_dir() / "central.db")  # frozen: set once, here


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
    announced: str | None = None  # the state last sent to the monitor

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
        if self.weather:
            return "STOPPED"
        return "ACTIVE"

    @property
    def reason(self):
        """Why it is BROKEN or STOPPED, in words (``cp list``'s ``reason``); None otherwise."""
        if self.state == "BROKEN":
            return self.detail or "engine KO"
        if self.state == "STOPPED":
            return "stopped by the operator" if self.stopped else f"weather: {self.weather}"
        return None

    def _stop_reason(self):
        return "Out of Order" if self.stopped or not self.weather else f"Out of Order: {self.weather}"

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
        """The CP as ``cp list`` shows it (DESIGN.md §2)."""
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
            "detail": self.detail if self.state == "BROKEN" else (self._stop_reason() if self.state == "STOPPED" else None),
        }


class Central(Role):
    def __init__(self, daemon):
        super().__init__(daemon)
        self.store = None
        self.cps = {}
        self._server = None
        self._end_timers = {}  # session id -> the timer of central's end grace
        self._changed_cps = set()
        self._supplying = {}  # driver id -> the CP of its open supply, for the one-supply-per-driver rule
        self._last_snapshot = 0.0
        self._snapshot_wanted = False
        self.started_at = messages.now_iso()

    # -- life -----------------------------------------------------------------------------

    async def start(self):
        cfg = self.config
        self.store = Store(cfg.database)
        for row in self.store.cps():
            self.cps[row["id"]] = ChargingPoint(
                id=row["id"],
                location=row["location"] or "",
                price=row["price"],
                city=row["city"] or "",
                stopped=bool(row["stopped"]),
                registered_at=row["registered_at"],
            )
        for session in self.store.open_sessions():
            cp = self.cps.get(session.cp)
            if cp is not None:
                self._open(cp, session)
        for cp in self.cps.values():
            self._refresh(cp)
        bus = self.daemon.bus
        bus.barriers.append(self.store.flush)
        group = f"central-{self.daemon.name}"
        # Requests get a consumer of their own, so that they never queue behind a telemetry backlog.
        # Eager: every authorisation and every applied record waits on these two hops.
        bus.subscribe("driver.requests", self._on_request, group=f"{group}-requests", eager=True)
        bus.subscribe("cp.telemetry", self._on_telemetry, group=group, eager=True)
        try:
            self._server = await serve(cfg.listen.host, cfg.listen.port, self._from_monitor, self._monitor_connected, name="monitor")
        except OSError as e:
            raise EvdError(f"cannot listen on {cfg.listen}: {os.strerror(e.errno) if e.errno else e}") from None
        self.daemon.spawn(self._housekeeping())
        self.message(f"central started: {len(self.cps)} known charging points, all DISCONNECTED until their monitors connect")
        self.daemon.state.set(("central",), {"status": "running", "listen": str(cfg.listen), "started_at": self.started_at})
        self.daemon.audit("SYSTEM", self.daemon.name, "central started", "ok", cps=len(self.cps))

    async def stop(self):
        if self._server is not None:
            self._server.close()
        for cp in self.cps.values():
            if cp.link is not None:
                cp.link.close()
        for handle in self._end_timers.values():
            handle.cancel()
        self.store.close()

    def status(self):
        states = {}
        for cp in self.cps.values():
            states[cp.state] = states.get(cp.state, 0) + 1
        return {"cps": len(self.cps), "states": states, "open_sessions": sum(1 for cp in self.cps.values() if cp.session)}

    # -- monitors -----------------------------------------------------------------------------

    def _monitor_connected(self, link):
        # Callbacks rather than a task per connection: central may hold 10,000 monitors.
        link.cp = None
        overdue = asyncio.get_running_loop().call_later(REGISTER_TIMEOUT, self._registration_overdue, link)
        link.when_closed(lambda link: (overdue.cancel(), self._monitor_closed(link)))

    def _registration_overdue(self, link):
        if link.cp is None:
            log.warning("monitor at %s did not register within %ss; hanging up", link.peer, REGISTER_TIMEOUT)
            link.close()

    def _monitor_closed(self, link):
        cp = link.cp
        if cp is not None and cp.link is link:
            cp.link, cp.health = None, "UNKNOWN"
            self.message(f"{cp.id} DISCONNECTED (monitor connection closed)")
            self.daemon.audit("INCIDENT", cp.id, "disconnected", "monitor connection closed")
            self._refresh(cp)

    def _from_monitor(self, link, opcode, fields):
        # Synchronous, so that a heartbeat is handled straight from the socket's read callback.
        cp = link.cp
        if opcode == "REG":
            return self._register(link, (fields + [""] * 5)[:5])
        if cp is None or cp.link is not link:
            log.info("monitor at %s sent %s before registering", link.peer, opcode)
        elif opcode == "HB":
            health, detail = (fields + ["", ""])[:2]
            self._heartbeat(cp, health, detail)
        else:
            log.info("ignoring unknown message %s from monitor %s", opcode, cp.id)
        return None

    async def _register(self, link, fields):
        cp_id, location, price_text, city, credential = fields
        if not CP_ID.match(cp_id):
            await link.send("REGR", "DENIED", f"invalid charging point id {cp_id!r}")
            return
        try:
            price = float(price_text) if price_text else None
            if price is not None and not (price >= 0):
                raise ValueError
        except ValueError:
            await link.send("REGR", "DENIED", f"invalid price {price_text!r}")
            return
        source = link.peer.rsplit(":", 1)[0]
        hook = self.daemon.plugins.hook.evd_authenticate_cp
        refusals = [r for r in hook(daemon=self.daemon, cp_id=cp_id, credential=credential, peer=source) if r]
        cp = self.cps.get(cp_id)
        if cp is None and not refusals and not self.config.open_registration:
            refusals = ["unknown charging point (registration is closed)"]
        if refusals:
            self.daemon.audit("SECURITY", source, "monitor registration", f"refused: {refusals[0]}", cp=cp_id)
            self.message(f"monitor at {link.peer} refused for {cp_id}: {refusals[0]}")
            await link.send("REGR", "DENIED", refusals[0])
            return
        if cp is None:
            cp = self.cps[cp_id] = ChargingPoint(id=cp_id, price=self.config.default_price, registered_at=messages.now_iso())
            self.message(f"new charging point {cp_id} registered")
        if self.config.open_registration:
            # With open registration the CP's own configuration describes it.
            cp.location = location or cp.location
            cp.price = price if price is not None else cp.price
            cp.city = city or cp.city
        self.store.save_cp(cp.row())
        if cp.link is not None and cp.link is not link:
            log.warning("charging point %s connected again from %s; dropping the old connection", cp_id, link.peer)
            old = cp.link
            cp.link = None
            old.close()
        link.cp = cp
        cp.link = link
        cp.health, cp.detail = "UNKNOWN", ""
        cp.last_heartbeat = time.monotonic()
        cp.announced = None
        key = self.daemon.plugins.hook.evd_cp_key(daemon=self.daemon, cp_id=cp_id) or ""
        await link.send("REGR", "OK", cp.location, f"{cp.price:g}", key)
        self.message(f"monitor of {cp_id} connected from {link.peer}")
        self.daemon.audit("AUTH", source, "monitor registration", "ok", cp=cp_id)
        self._refresh(cp)

    def _heartbeat(self, cp, health, detail):
        cp.last_heartbeat = time.monotonic()
        if health not in ("OK", "KO"):
            return
        before = cp.health
        if health == before and detail == cp.detail:
            return  # nothing changed: the common case, thousands of times a second
        cp.health, cp.detail = health, detail
        if health == "KO" and before != "KO":
            self.message(f"{cp.id} BROKEN: {detail or 'engine KO'}")
            self.daemon.audit("INCIDENT", cp.id, "fault", detail or "engine KO")
            if cp.session is not None:
                self._end_supply(cp, f"fault: {detail or 'engine KO'}", order="end")
        elif health == "OK" and before == "KO":
            self.message(f"{cp.id} recovered: engine OK")
            self.daemon.audit("INCIDENT", cp.id, "recovery")
        self._refresh(cp)

    async def _housekeeping(self):
        """Heartbeat timeouts, the status stream and batched writes, on one clock."""
        interval = min(0.25, self.config.heartbeat_timeout / 4)
        next_status = 0.0
        asleep = time.monotonic()
        while True:
            now = time.monotonic()
            # After a stall of the loop, heartbeats may be waiting unread in the sockets: look next time.
            stalled = now - asleep > interval + self.config.heartbeat_timeout / 2
            for cp in () if stalled else self.cps.values():
                if cp.link is not None and now - cp.last_heartbeat > self.config.heartbeat_timeout:
                    if cp.link.unread():
                        continue  # its heartbeats wait in our own socket: central is late, not the monitor
                    self.message(f"{cp.id} DISCONNECTED (no heartbeat for {self.config.heartbeat_timeout})")
                    self.daemon.audit("INCIDENT", cp.id, "disconnected", "heartbeat timeout")
                    link, cp.link, cp.health = cp.link, None, "UNKNOWN"
                    link.close()
                    self._refresh(cp)
            if now >= next_status:
                next_status = now + self.config.status_interval
                self._publish_status()
            self.store.flush()
            asleep = time.monotonic()
            await asyncio.sleep(interval)

    # -- requests from drivers and from CPs themselves -----------------------------------------

    def _on_request(self, message, key):
        try:
            message = messages.check("driver.requests", message)
        except messages.MalformedMessage as e:
            self._deny_malformed(message, key, e)
            raise
        if message["driver"] != key:
            raise messages.MalformedMessage(f"driver {message['driver']!r} does not match the record key {key!r}")
        if message["type"] == "cps_request":
            self._snapshot_wanted = True
            return
        if message["type"] == "history_request":
            # R23: a driver's past supplies, from central's database.
            past = [session.listing() for session in self.store.sessions(driver=key, limit=HISTORY_LIMIT)]
            self.daemon.bus.publish("driver.events", key, messages.make("history", driver=key, sessions=past))
            return
        self._handle_request(message, origin="driver")

    def _deny_malformed(self, message, key, error):
        # A request that names its driver gets a denial, not silence: else its driver waits for a timeout.
        request_id, driver, cp = message.get("id"), message.get("driver"), message.get("cp")
        if message.get("type") != "request" or not isinstance(request_id, str) or not isinstance(key, str) or driver != key:
            return
        reason = f"malformed request ({error})"
        self.message(f"request of driver {driver} denied: {reason}")
        self.daemon.audit("CHARGE", driver, "supply request", f"denied: {reason}", origin="driver")
        cp = cp if isinstance(cp, str) else ""
        self.daemon.bus.publish(
            "driver.events", driver, messages.make("denied", request_id=request_id, cp=cp, driver=driver, reason=reason)
        )

    def _handle_request(self, request, origin):
        existing = self.store.session_by_request(request["id"])
        if existing is not None:
            self._announce_outcome(existing)  # a replay: say the same thing again
            return
        self.store.save_driver(request["driver"], messages.now_iso())
        session = Session(
            id=uuid.uuid4().hex,
            request_id=request["id"],
            cp=request["cp"],
            driver=request["driver"],
            origin=origin,
            kwh_requested=float(request["kwh"]),
            requested_at=request["ts"],
        )
        reason = self._denial(request)
        cp = self.cps.get(request["cp"])
        if reason:
            session.status, session.reason, session.ended_at = Status.DENIED, reason, messages.now_iso()
            session.price = cp.price if cp else None
            self.store.save_session(session)
            self.message(f"request of driver {request['driver']} for {request['cp']} denied: {reason}")
            self.daemon.audit(
                "CHARGE", request["driver"], "supply request", f"denied: {reason}", cp=request["cp"], session=session.id, origin=origin
            )
        else:
            session.price = cp.price
            self._open(cp, session)
            self.store.save_session(session)
            self.message(f"driver {request['driver']} authorised at {cp.id} ({session.kwh_requested:g} kWh at {cp.price:g} EUR/kWh)")
            self.daemon.audit("CHARGE", request["driver"], "supply request", "authorised", cp=cp.id, session=session.id, origin=origin)
            self._refresh(cp)
        self._announce_outcome(session)

    def _denial(self, request):
        busy = self._supplying.get(request["driver"])
        return authorisation.denial(
            request, self.cps.get(request["cp"]), max_kwh=self.config.max_kwh, busy_at=busy.id if busy else None, now=messages.now_iso()
        )

    def _open(self, cp, session):
        cp.session = session
        self._supplying[session.driver] = cp

    def _announce_outcome(self, session):
        bus = self.daemon.bus
        if session.status == Status.DENIED:
            denial = messages.make("denied", request_id=session.request_id, cp=session.cp, driver=session.driver, reason=session.reason)
            bus.publish("driver.events", session.driver, denial)
            if session.origin == "manual":
                bus.publish("cp.commands", session.cp, self.daemon.seal("cp.commands", session.cp, denial))
            return
        if session.status.final:
            self._send_ticket(session)
            return
        fields = session.authorization()
        bus.publish("cp.commands", session.cp, self.daemon.seal("cp.commands", session.cp, messages.make("authorize", **fields)))
        bus.publish("driver.events", session.driver, messages.make("authorized", **fields))

    # -- telemetry from engines -----------------------------------------------------------------

    def _on_telemetry(self, message, key):
        message = self.daemon.unseal("cp.telemetry", key, messages.check("cp.telemetry", message))
        if message["type"] == "sealed":
            raise messages.MalformedMessage(f"sealed record from {key}, and no crypto plugin here to open it")
        if message["cp"] != key:
            raise messages.MalformedMessage(f"cp {message['cp']!r} does not match the record key {key!r}")
        cp = self.cps.get(key)
        if cp is None:
            raise messages.MalformedMessage(f"telemetry from unknown charging point {key!r}")
        kind = message["type"]
        if kind == "manual_request":
            self._handle_request({**message, "expires_at": None}, origin="manual")
            return
        live = cp.session  # the live copy when it is this session's: no database read on the hot path
        session = live if live is not None and live.id == message["session"] else self.store.session(message["session"])
        if session is None or session.cp != cp.id:
            raise messages.MalformedMessage(f"{kind} for unknown session {message['session']!r} at {cp.id}")
        self._carry_out(cp, session, sessions.step(session, _event(message), messages.now_iso()))

    # -- ending supplies ------------------------------------------------------------------------

    def _end_supply(self, cp, reason, order):
        """End ``cp``'s supply: tell the engine (``order`` "end"), wait a little for its final figures, then close it."""
        session = cp.session
        if session is None:
            return
        effects = sessions.step(session, sessions.EndOrdered(reason), messages.now_iso())
        if effects and order == "end":
            end = messages.make("end", session=session.id, cp=cp.id, reason=reason)
            self.daemon.bus.publish("cp.commands", cp.id, self.daemon.seal("cp.commands", cp.id, end))
        self._carry_out(cp, session, effects)

    def _end_overdue(self, cp, session_id):
        self._end_timers.pop(session_id, None)
        if cp.session is not None and cp.session.id == session_id:
            self._carry_out(cp, cp.session, sessions.step(cp.session, sessions.Overdue(), messages.now_iso()))
            self.store.flush()

    def _carry_out(self, cp, session, effects):
        """Do what the session's state machine asks, in its order."""
        for effect in effects:
            match effect:
                case sessions.Save():
                    self.store.save_session(session)
                case sessions.PublishProgress():
                    progress = messages.make(
                        "progress",
                        session=session.id,
                        cp=cp.id,
                        driver=session.driver,
                        kwh=session.kwh,
                        eur=session.eur,
                        seq=session.last_seq,
                    )
                    self.daemon.bus.publish("driver.events", session.driver, progress)
                case sessions.Plugged():
                    self.message(f"{cp.id}: vehicle plugged in, supplying driver {session.driver}")
                    self._refresh(cp)
                case sessions.Changed():
                    self._refresh(cp)
                case sessions.AwaitEnd():
                    self._end_timers[session.id] = asyncio.get_running_loop().call_later(
                        self.config.end_grace, self._end_overdue, cp, session.id
                    )
                case sessions.Finished():
                    self._finished(cp, session, effect)
                case sessions.SendTicket():
                    self._send_ticket(session)
                case sessions.Corrected():
                    self.message(
                        f"{session.cp}: the engine delivered {session.kwh:g} kWh to {session.driver}, not {effect.billed:g}: corrected ticket, {session.eur:.2f} EUR"
                    )
                    self.daemon.audit(
                        "CHARGE",
                        session.cp,
                        "ticket corrected",
                        session.status,
                        session=session.id,
                        driver=session.driver,
                        kwh=session.kwh,
                        billed=effect.billed,
                    )
                case sessions.Disagreement():
                    log.warning(
                        "engine of %s reports %s kWh for closed session %s; its ticket said %s",
                        cp.id,
                        effect.reported,
                        session.id,
                        session.kwh,
                    )

    def _finished(self, cp, session, finished):
        timer = self._end_timers.pop(session.id, None)
        if timer is not None:
            timer.cancel()
        if finished.overdue:
            log.warning("engine of %s did not confirm the end of session %s; closing it with the last energy reported", cp.id, session.id)
        self.daemon.state.delete(("requests", session.id))
        if cp.session is not None and cp.session.id == session.id:
            cp.session = None
            if self._supplying.get(session.driver) is cp:
                del self._supplying[session.driver]
            self._refresh(cp)
        status = finished.status
        self.message(
            f"{session.cp}: supply to {session.driver} {status.lower()} ({finished.reason}): {session.kwh:g} kWh, {session.eur:.2f} EUR"
        )
        self.daemon.audit(
            "CHARGE",
            session.cp,
            "supply ended",
            status,
            session=session.id,
            driver=session.driver,
            kwh=session.kwh,
            eur=session.eur,
            reason=finished.reason,
        )

    def _send_ticket(self, session):
        self.daemon.bus.publish("driver.events", session.driver, messages.make("ticket", **session.ticket()))

    # -- the registry (used by the registry plugin, R18) ---------------------------------------

    def register_cp(self, cp_id, location, price, city):
        if not CP_ID.match(cp_id):
            raise CommandError("bad_args", f"invalid charging point id {cp_id!r}")
        cp = self.cps.get(cp_id) or ChargingPoint(id=cp_id, price=self.config.default_price, registered_at=messages.now_iso())
        cp.location, cp.city = location or cp.location, city or cp.city
        cp.price = price if price is not None else cp.price
        self.cps[cp_id] = cp
        self.store.save_cp(cp.row())
        self.store.flush()
        self.message(f"charging point {cp_id} registered by the operator")
        self._refresh(cp)
        return cp

    def unregister_cp(self, cp_id):
        cp = self.cps.get(cp_id)
        if cp is None:
            raise CommandError("not_found", f"unknown charging point {cp_id}")
        if cp.session is not None:
            raise CommandError("refused", f"{cp_id} has a supply running; stop it first")
        del self.cps[cp_id]
        if cp.link is not None:
            link, cp.link = cp.link, None
            link.close()
        self.store.delete_cp(cp_id)
        self.daemon.plugins.hook.evd_cp_unregistered(daemon=self.daemon, cp_id=cp_id)
        self.daemon.state.delete(("cps", cp_id))
        self.message(f"charging point {cp_id} unregistered")

    # -- the weather (used by the weather plugin, R22) ------------------------------------------

    def weather_hold(self, cp_id, reason):
        cp = self.cps.get(cp_id)
        if cp is None or cp.weather == reason:
            return
        first = cp.weather is None
        cp.weather = reason
        if first:
            self.message(f"{cp_id} out of service: {reason}" + (" (after the running supply)" if cp.session else ""))
            self.daemon.audit("STATUS", "weather", "out of service", reason, cp=cp_id)
        self._refresh(cp)

    def weather_release(self, cp_id):
        cp = self.cps.get(cp_id)
        if cp is None or cp.weather is None:
            return
        cp.weather = None
        self.message(
            f"{cp_id} back in service: the temperature is normal again" + (" (still stopped by the operator)" if cp.stopped else "")
        )
        self.daemon.audit("STATUS", "weather", "back in service", cp=cp_id)
        self._refresh(cp)

    # -- stop / resume (R13) ------------------------------------------------------------------

    def _targets(self, args):
        if args.get("all"):
            return [self.cps[i] for i in sorted(self.cps)]
        ids = args.get("ids") or []
        if not isinstance(ids, list) or not ids:
            raise CommandError("bad_args", "give charging point ids or all")
        unknown = [i for i in ids if i not in self.cps]
        if unknown:
            raise CommandError("not_found", f"unknown charging point(s): {', '.join(map(str, unknown))}")
        return [self.cps[i] for i in ids]

    def cmd_stop(self, args, ctx):
        stopped = []
        for cp in self._targets(args):
            if not cp.stopped:
                cp.stopped = True
                self.store.save_cp(cp.row())
                if cp.session is not None:
                    self._end_supply(cp, "stopped by the operator", order="stop")
                self.message(f"{cp.id} stopped by the operator: Out of Order")
                self.daemon.audit("STATUS", cp.id, "stop", "Out of Order")
            self.daemon.bus.publish(
                "cp.commands",
                cp.id,
                self.daemon.seal("cp.commands", cp.id, messages.make("stop", cp=cp.id, reason="stopped by the operator")),
            )
            self._refresh(cp)
            stopped.append(cp.id)
        self.store.flush()
        return {"stopped": stopped}

    def cmd_resume(self, args, ctx):
        resumed = []
        for cp in self._targets(args):
            if cp.stopped:
                cp.stopped = False
                self.store.save_cp(cp.row())
                self.message(f"{cp.id} resumed by the operator")
                self.daemon.audit("STATUS", cp.id, "resume")
            self.daemon.bus.publish("cp.commands", cp.id, self.daemon.seal("cp.commands", cp.id, messages.make("resume", cp=cp.id)))
            self._refresh(cp)
            resumed.append(cp.id)
        self.store.flush()
        return {"resumed": resumed}

    def cmd_list(self, args, ctx):
        return [_public_tile(cp.tile()) for cp in sorted(self.cps.values(), key=lambda c: c.id)]

    def cmd_sessions(self, args, ctx):
        found = self.store.sessions(active=bool(args.get("active")), cp=args.get("cp"), driver=args.get("driver"))
        return [session.listing() for session in found]

    # -- what the panel, the monitors and the drivers see --------------------------------------

    def _refresh(self, cp):
        tile = cp.tile()
        path = ("cps", cp.id)
        if self.daemon.state.get(path) != tile:
            self.daemon.state.set(path, tile)
            published = _published(tile)
            if published != cp.published:  # live kWh stays off central.status: drivers get theirs on driver.events
                cp.published = published
                self._changed_cps.add(cp.id)
        if cp.session is not None:
            self.daemon.state.set(("requests", cp.session.id), cp.session.request_row())
        if cp.link is not None and cp.announced != cp.state:
            cp.announced = cp.state
            reason = tile["detail"] or ""
            self.daemon.spawn(_tell(cp.link, "STATE", cp.state, reason))

    def _publish_status(self):
        bus = self.daemon.bus
        connected = sum(1 for cp in self.cps.values() if cp.link is not None)
        bus.publish("central.status", "central", messages.make("heartbeat", cps=len(self.cps), connected=connected))
        for cp_id in sorted(self._changed_cps):
            cp = self.cps.get(cp_id)
            if cp is not None:
                bus.publish("central.status", "central", messages.make("cp_state", cp=dict(zip(STATUS_FIELDS, cp.published, strict=True))))
        self._changed_cps.clear()
        now = time.monotonic()
        if self._snapshot_wanted or now - self._last_snapshot >= SNAPSHOT_EVERY:
            self._snapshot_wanted = False
            self._last_snapshot = now
            tiles = [_public_tile(cp.tile()) for cp in sorted(self.cps.values(), key=lambda c: c.id)]
            parts = max(1, -(-len(tiles) // SNAPSHOT_CHUNK))
            for part in range(parts):
                chunk = tiles[part * SNAPSHOT_CHUNK : (part + 1) * SNAPSHOT_CHUNK]
                bus.publish("central.status", "central", messages.make("cps", items=chunk, part=part, parts=parts))


async def _tell(link, *message):
    try:
        await link.send(*message)
    except LinkError:
        pass


def _published(tile):
    return tuple(tile[field] for field in STATUS_FIELDS)


def _public_tile(tile):
    return {k: v for k, v in tile.items() if k != "detail"}


def _event(record):
    """The session event an engine's telemetry record stands for."""
    kind = record["type"]
    if kind == "started":
        return sessions.Started(ts=record["ts"])
    if kind == "progress":
        return sessions.Progress(seq=record["seq"], kwh=record["kwh"], ts=record["ts"])
    return sessions.Ended(seq=record["seq"], kwh=record["kwh"], status=record["status"], reason=record["reason"], ts=record["ts"])


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
    role = daemon.role
    return {"cp.list": role.cmd_list, "cp.stop": role.cmd_stop, "cp.resume": role.cmd_resume, "sessions": role.cmd_sessions}
