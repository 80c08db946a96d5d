"""The monitor role (EV_CP_M): a charging point's health module.

It keeps two framed connections up, whatever the start order:
- to central: ``REG#cp_id#location#price#city#credential`` → ``REGR#OK#location#price`` or
  ``REGR#DENIED#reason``; then ``HB#OK|KO#detail`` every ``check_interval`` and at once on a
  change; central sends ``STATE#state#reason`` when it sees this CP change.
- to the engine: ``CPID#cp_id`` once central has confirmed the CP; ``HEALTH`` every
  ``check_interval``, which must be answered ``HEALTHR#OK`` within that interval, or the
  engine is reported KO (a fault) until it answers OK again (a recovery).
"""

import asyncio
import contextlib
import logging
import pathlib
import time

import attrs

import evd
from evd import messages
from evd.config import Duration, HostPort, non_negative, positive
from evd.link import Connector, LinkError
from evd.role import Role
from evd.tls import client_context

log = logging.getLogger(__name__)


@attrs.frozen
class MonitorConfig:
    cp_id: str
    central: HostPort = HostPort("127.0.0.1", 7000)
    engine: HostPort = HostPort("127.0.0.1", 6000)
    location: str = ""
    price: float | None = attrs.field(default=None, validator=non_negative)
    city: str = ""
    credential_file: pathlib.Path | None = None
    check_interval: Duration = attrs.field(default=Duration(1), validator=positive)
    central_ca: pathlib.Path | None = None  # the site's CA: the link to central runs inside TLS, verified


class Monitor(Role):
    uses_bus = False

    def __init__(self, daemon):
        super().__init__(daemon)
        self.cp_id = self.config.cp_id
        self.health = "UNKNOWN"  # until the first check: central shows no fault for it
        self.detail = "engine not checked yet"
        self.engine_state = None
        self.last_check = None
        self.registered = False
        self.central_state = None
        self.central_reason = None
        self.cp_key = ""  # central's key for this CP, passed on to the engine
        self.location = self.config.location
        self.price = self.config.price
        self._engine = None
        self._central = None
        self._health_changed = asyncio.Event()
        self._tasks = []

    async def start(self):
        cfg = self.config
        self._engine = Connector(
            cfg.engine.host, cfg.engine.port, self._from_engine, self._engine_session, name="engine", ack_timeout=cfg.check_interval
        )
        tls = client_context(cfg.central_ca, "monitor.central_ca") if cfg.central_ca is not None else None
        self._central = Connector(cfg.central.host, cfg.central.port, self._from_central, self._central_session, name="central", tls=tls)
        self._tasks = [
            self.daemon.spawn(self._engine.run()),
            self.daemon.spawn(self._central.run()),
            self.daemon.spawn(self._watch_engine_link()),
        ]
        self._publish_state()

    async def _watch_engine_link(self):
        # An engine that cannot even be reached is a fault too, from the first interval on.
        while True:
            await asyncio.sleep(self.config.check_interval)
            if self._engine_link() is None and self.health != "KO":
                self._set_health("KO", "engine unreachable")

    async def stop(self):
        for task in self._tasks:
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    def status(self):
        return {
            "cp_id": self.cp_id,
            "engine": {
                "connected": self._engine_link() is not None,
                "health": self.health,
                "detail": self.detail,
                "state": self.engine_state,
            },
            "central": {"connected": self._central_link() is not None, "registered": self.registered, "state": self.central_state},
        }

    def _engine_link(self):
        return self._engine.link if self._engine else None

    def _central_link(self):
        return self._central.link if self._central else None

    # -- the engine ------------------------------------------------------------------------

    async def _engine_session(self, link):
        self.message(f"engine reachable at {link.peer}")
        if self.registered:
            await self._send_cp_id(link)
        interval = self.config.check_interval
        try:
            while True:
                started = time.monotonic()
                try:
                    reply = await link.request("HEALTH", reply="HEALTHR", timeout=interval)
                except LinkError:
                    if link.closed.is_set():
                        self._set_health("KO", "engine not answering")
                        return
                    self._set_health("KO", f"engine did not answer within {interval}")
                    continue
                status, detail, state = (reply + ["", "", ""])[:3]
                self.engine_state = state or None
                self.last_check = messages.now_iso()
                self._set_health("OK" if status == "OK" else "KO", detail or ("" if status == "OK" else "engine reports KO"))
                # Until the next check; an engine whose connection drops is reported at once.
                if await link.wait_closed(max(0.0, interval - (time.monotonic() - started))):
                    return
        finally:
            self._set_health("KO", "engine unreachable")

    async def _send_cp_id(self, link):
        try:
            answer = await link.request("CPID", self.cp_id, self.cp_key, reply="CPIDR", timeout=max(2.0, self.config.check_interval))
        except LinkError as e:
            log.warning("engine did not take its CP id: %s", e)
            return
        if answer[:1] != ["OK"]:
            self.message(f"engine refused CP id {self.cp_id}: {answer[1] if len(answer) > 1 else 'no reason'}")

    def _from_engine(self, link, opcode, fields):
        log.info("ignoring unexpected %s from the engine", opcode)

    def _set_health(self, health, detail):
        changed = health != self.health
        self.health, self.detail = health, detail
        if changed:
            if health == "OK":
                self.message("engine OK: recovery reported to central")
            else:
                self.message(f"engine KO ({detail}): fault reported to central")
            self._health_changed.set()
        self._publish_state()

    # -- central ------------------------------------------------------------------------------

    async def _central_session(self, link):
        cfg = self.config
        credential = _read_credential(cfg.credential_file)
        price = "" if cfg.price is None else f"{cfg.price:g}"
        answer = await link.request("REG", self.cp_id, cfg.location, price, cfg.city, credential, reply="REGR", timeout=5.0)
        if answer[:1] != ["OK"]:
            reason = answer[1] if len(answer) > 1 else "no reason given"
            self.message(f"central refused charging point {self.cp_id}: {reason}")
            await asyncio.sleep(5.0)  # a refusal is not fixed by hammering central
            return
        self.registered = True
        if len(answer) >= 3:
            self.location = answer[1] or self.location
            self.price = float(answer[2]) if answer[2] else self.price
        self.cp_key = answer[3] if len(answer) >= 4 else ""
        self.message(f"registered with central at {link.peer}")
        engine = self._engine_link()
        if engine is not None:
            await self._send_cp_id(engine)
        try:
            while True:
                await link.send("HB", self.health, self.detail)
                self._health_changed.clear()
                # asyncio.timeout, not wait_for: 3.11's wait_for can swallow the task's cancellation.
                with contextlib.suppress(TimeoutError):
                    async with asyncio.timeout(self.config.check_interval):
                        await self._health_changed.wait()
        finally:
            self.registered = False
            self.central_state = None
            self.message("central link lost")
            self._publish_state()

    async def _from_central(self, link, opcode, fields):
        if opcode == "STATE" and fields:
            self.central_state = fields[0]
            self.central_reason = fields[1] if len(fields) > 1 and fields[1] else None
            self.message(
                f"central shows this charging point {self.central_state}" + (f" ({self.central_reason})" if self.central_reason else "")
            )
            self._publish_state()
            engine = self._engine_link()
            if engine is not None:
                try:
                    await engine.send("STATE", self.central_state, self.central_reason)
                except LinkError:
                    pass
        else:
            log.info("ignoring unexpected %s from central", opcode)

    # -- panel --------------------------------------------------------------------------------

    def _publish_state(self):
        self.daemon.state.set(
            ("monitor",),
            {
                "cp_id": self.cp_id,
                "location": self.location,
                "price": self.price,
                "engine": {
                    "connected": self._engine_link() is not None,
                    "health": self.health,
                    "detail": self.detail,
                    "state": self.engine_state,
                    "last_check": self.last_check,
                },
                "central": {
                    "connected": self._central_link() is not None,
                    "registered": self.registered,
                    "state": self.central_state,
                    "reason": self.central_reason,
                },
            },
        )


def _read_credential(path):
    if path is None:
        return ""
    try:
        return pathlib.Path(path).read_text().strip()
    except OSError as e:
        log.error("cannot read credential file %s: %s", path, e.strerror)
        return ""


@evd.hookimpl
def evd_register_roles():
    return {"monitor": Monitor}


@evd.hookimpl
def evd_config_sections():
    return {"monitor": MonitorConfig}
