"""The central role (EV_Central): the network's state, its life, and the jobs it hands the work to.

Monitors connect over the framed socket protocol (links.py); drivers and engines talk to
central over the stream (DESIGN.md §4: requests.py, supplies.py). The database is the truth
after a restart: every CP starts DISCONNECTED until its monitor connects again (R2), open
sessions continue, and records that arrived while central was down are applied from the
stream. Handlers are idempotent: a replayed or duplicated record never counts energy twice
nor produces a different ticket.
"""

import asyncio
import os
import time

from evd import messages
from evd.errors import EvdError
from evd.link import serve
from evd.role import Role
from evd.store import Store
from evd.tls import server_context

from .charging_point import ChargingPoint
from .drivers import Drivers
from .link_workers import LinkWorkers
from .links import MonitorLinks
from .network import Network
from .operator import Operator
from .publishing import Publisher
from .requests import Requests
from .supplies import Supplies


class Central(Role):
    def __init__(self, daemon):
        super().__init__(daemon)
        self.store = None
        self.cps = {}  # id -> ChargingPoint
        self.supplying = {}  # driver id -> the CP of its open supply, for the one-supply-per-driver rule
        # cp id -> what carries central's orders to a CP that is no engine on the stream (an OCPP charger)
        self.controllers = {}
        self.started_at = messages.now_iso()
        self.links = MonitorLinks(self)
        self.requests = Requests(self)
        self.drivers = Drivers(self)
        self.supplies = Supplies(self)
        self.publisher = Publisher(self)
        self.operator = Operator(self)
        self.network = Network(self)  # what central's extras may use (evd.central.network)
        self._server = None

    # -- life -----------------------------------------------------------------------------

    async def start(self):
        cfg = self.config
        tls = server_context(cfg.tls, "central.tls") if cfg.tls.cert is not None else None  # unreadable: refuse to start
        self.store = Store(cfg.database)
        self.drivers.load()
        for row in self.store.cps():
            self.cps[row["id"]] = ChargingPoint.from_row(row)
        for session in self.store.open_sessions():
            cp = self.cps.get(session.cp)
            if cp is not None:
                self.open(cp, session)
        for cp in self.cps.values():
            self.publisher.refresh(cp)
        bus = self.daemon.bus
        bus.barriers.append(self.store.flush)
        group = f"central-{self.daemon.name}"
        # Requests get a consumer of their own, so that they never queue behind a telemetry backlog.
        # Eager: every authorisation and every applied record waits on these two hops.
        bus.subscribe("driver.requests", self.requests.on_request, group=f"{group}-requests", eager=True)
        bus.subscribe("cp.telemetry", self.supplies.on_telemetry, group=group, eager=True)
        try:
            if cfg.link_workers:
                self._server = LinkWorkers(self, cfg.link_workers)
                await self._server.start()
            else:
                self._server = await serve(
                    cfg.listen.host, cfg.listen.port, self.links.received, self.links.connected, name="monitor",
                    tls=tls, tls_required=cfg.tls.required, on_refused=self.links.refused,
                )  # fmt: skip
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
        self.supplies.stop()
        if self.store is not None:  # None: central did not get as far as opening it
            self.store.close()

    def status(self):
        states, open_sessions = self.network.state_counts()
        return {"cps": len(self.cps), "states": states, "open_sessions": open_sessions}

    async def _housekeeping(self):
        """Heartbeat timeouts, the status stream and batched writes, on one clock."""
        interval = min(0.25, self.config.heartbeat_timeout / 4)
        next_status = 0.0
        asleep = time.monotonic()
        while True:
            now = time.monotonic()
            # After a stall of the loop, heartbeats may be waiting unread in the sockets: look next time.
            if now - asleep <= interval + self.config.heartbeat_timeout / 2:
                self.links.check_heartbeats(now)
            if now >= next_status:
                next_status = now + self.config.status_interval
                self.publisher.publish_status()
            self.store.flush()
            asleep = time.monotonic()
            await asyncio.sleep(interval)

    def new_cp(self, cp_id, location=""):
        """A charging point new to central (registering itself), known from now on; its caller stores it."""
        cp = self.cps[cp_id] = ChargingPoint(id=cp_id, location=location, price=self.config.default_price, registered_at=messages.now_iso())
        self.message(f"new charging point {cp_id} registered")
        return cp

    # -- orders to a CP -------------------------------------------------------------------------

    def order(self, cp_id, message):
        """An order to a CP (authorize, end, stop, resume, a manual request's denial): on cp.commands
        to its engine, or to the extra that drives it (evd.central.network.Network.control)."""
        controller = self.controllers.get(cp_id)
        if controller is not None:
            controller(message)
            return
        daemon = self.daemon
        daemon.bus.publish("cp.commands", cp_id, daemon.seal("cp.commands", cp_id, message))

    # -- a CP's open supply ---------------------------------------------------------------------

    def open(self, cp, session):
        cp.session = session
        self.supplying[session.driver] = cp

    def release(self, cp):
        """``cp``'s supply has ended: the CP and its driver are free again."""
        session, cp.session = cp.session, None
        if self.supplying.get(session.driver) is cp:
            del self.supplying[session.driver]
        self.publisher.refresh(cp)
