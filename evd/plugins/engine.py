"""The engine role (EV_CP_E): a charging point's simulated hardware.

Socket protocol, served to the CP's monitor (DESIGN.md §6):
  ``HEALTH``            → ``HEALTHR#OK|KO#detail#state``  (KO while a fault is simulated)
  ``CPID#id``           → ``CPIDR#OK`` or ``CPIDR#REFUSED#reason``  (the id central confirmed)
  ``STATE#state#reason``  central's view of this CP, for the panel
Stream: authorisations, stop/resume and end orders on ``cp.commands``; ``started``,
``progress`` (every tick), ``ended`` and ``manual_request`` on ``cp.telemetry``.
The running supply is kept in a journal file, so a restart closes a supply that the
engine's crash interrupted, with the energy already delivered.
"""

import asyncio
import collections
import json
import logging
import os
import pathlib
import secrets

import attrs

import evd
from evd import messages, paths
from evd.authorisation import WALK_IN_PREFIX
from evd.commands import Arg, CommandSpec, kwh_arg
from evd.config import Duration, HostPort, positive
from evd.errors import CommandError, EvdError
from evd.link import serve
from evd.money import cost, energy
from evd.role import Role

log = logging.getLogger(__name__)

RECENT_SESSIONS = 200  # finished sessions remembered, so a replayed authorisation starts nothing


@attrs.frozen
class EngineConfig:
    listen: HostPort = HostPort("127.0.0.1", 6000)
    tick: Duration = attrs.field(default=Duration(1), validator=positive)
    kwh_per_tick: float = attrs.field(default=1.0, validator=positive)
    auto_plug: bool = False
    #: How long an authorised supply waits for the vehicle before it is cancelled.
    plug_timeout: Duration = attrs.field(default=Duration(120), validator=positive)
    #: The running-supply journal; default: NAME.journal in the state directory (evd.paths.state_dir)
    journal: pathlib.Path | None = None
    default_kwh: float = attrs.field(default=10.0, validator=positive)


class Journal:
    """The engine's small durable state: its CP id, the running supply, recent sessions."""

    def __init__(self, path):
        self.path = pathlib.Path(path)

    def load(self):
        try:
            return json.loads(self.path.read_text())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as e:
            log.error("journal %s unreadable (%s); starting afresh", self.path, e)
            return {}

    def save(self, data):
        # Write then rename: a crash leaves the old journal or the new one, never half of one.
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(".tmp")
        tmp.write_text(json.dumps(data))
        os.replace(tmp, self.path)


class Engine(Role):
    def __init__(self, daemon):
        super().__init__(daemon)
        cfg = self.config
        self.journal = Journal(cfg.journal or paths.state_dir() / f"{daemon.name}.journal")
        self.cp_id = None
        self.key = None  # the key central gave this CP, for sealed records (R20)
        self.fault = None  # the simulated fault's reason, or None
        self.stopped = False
        self.central_state = None
        self.supply = None  # the running or authorised supply (a dict)
        self.recent = collections.deque(maxlen=RECENT_SESSIONS)
        self._subscribed = False
        self._ticker = None
        self._plug_timer = None
        self.manual_requests = collections.deque(maxlen=RECENT_SESSIONS)  # ids of our own requests: the vehicle is here
        self._server = None

    # -- life -----------------------------------------------------------------------------

    async def start(self):
        saved = self.journal.load()
        self.recent.extend(saved.get("recent", []))
        self.key = saved.get("key")
        if saved.get("cp_id"):
            self._bind(saved["cp_id"])
            self._key_received()
        if saved.get("supply") and self.cp_id:
            self.supply = saved["supply"]
            # The supply stopped when this engine died: close it with what was delivered.
            was_plugged = self.supply["status"] == "SUPPLYING"
            self._finish("INTERRUPTED", "engine restarted during the supply" if was_plugged else "engine restarted before plug-in")
        try:
            self._save()  # now: an engine that cannot keep its journal must not take a supply
        except OSError as e:
            raise EvdError(
                f"cannot write the engine's journal {self.journal.path}: {e.strerror or e} (set engine.journal to a writable file)"
            ) from None
        listen = self.config.listen
        try:
            self._server = await serve(listen.host, listen.port, self._on_message, self._on_link, name="monitor")
        except OSError as e:
            raise EvdError(f"cannot listen on {listen}: {os.strerror(e.errno) if e.errno else e}") from None
        self._publish_state()
        log.info("engine listening for its monitor on %s", listen)

    async def stop(self):
        if self.supply and self.supply["status"] == "SUPPLYING":
            self._finish("INTERRUPTED", "engine shut down")
        if self._server is not None:
            self._server.close()
        for task in (self._ticker, self._plug_timer):
            if task is not None:
                task.cancel()

    def status(self):
        return {"cp_id": self.cp_id, "state": self.state, "fault": self.fault, "supply": self.supply}

    @property
    def state(self):
        if self.supply is not None:
            return self.supply["status"]
        if self.stopped:
            return "STOPPED"
        return "READY" if self.cp_id else "WAITING_FOR_ID"

    # -- the monitor's link -------------------------------------------------------------------

    async def _on_link(self, link):
        self.message(f"monitor connected from {link.peer}")
        await link.closed.wait()
        self.message("monitor disconnected")

    async def _on_message(self, link, opcode, fields):
        if opcode == "HEALTH":
            if self.fault:
                await link.send("HEALTHR", "KO", self.fault, self.state)
            else:
                await link.send("HEALTHR", "OK", "", self.state)
        elif opcode == "CPID" and fields:
            cp_id = fields[0]
            key = fields[1] if len(fields) > 1 and fields[1] else None
            if self.cp_id not in (None, cp_id):
                await link.send("CPIDR", "REFUSED", f"this engine is bound to {self.cp_id}; restart it to change")
                return
            if key != self.key:
                self.key = key
                self._save()
            self._bind(cp_id)
            self._key_received()
            await link.send("CPIDR", "OK")
        elif opcode == "STATE" and fields:
            self.central_state = fields[0]
            self._publish_state()
        else:
            log.info("ignoring unknown message %s from the monitor", opcode)

    def _bind(self, cp_id):
        if self.cp_id == cp_id:
            return
        self.cp_id = cp_id
        self._save()
        self.message(f"charging point id {cp_id} confirmed")
        if not self._subscribed:
            self.daemon.bus.subscribe("cp.commands", self._on_command, group=f"engine-{cp_id}", keys={cp_id})
            self._subscribed = True
        self._publish_state()

    # -- orders from central ------------------------------------------------------------------

    def _key_received(self):
        # Crypto plugins seal this CP's records with it (evd_cp_key_received).
        self.daemon.plugins.hook.evd_cp_key_received(daemon=self.daemon, cp_id=self.cp_id, key=self.key)

    def _on_command(self, message, key):
        message = self.daemon.unseal("cp.commands", key, messages.check("cp.commands", message))
        kind = message["type"]
        if kind == "authorize":
            self._authorize(message)
        elif kind == "denied":
            self.message(f"manual request denied: {message['reason']}")
        elif kind == "stop":
            self.stopped = True
            if self.supply:
                self._finish("INTERRUPTED", message.get("reason") or "stopped by central")
            self.message("stopped by central: Out of Order")
            self._publish_state()
        elif kind == "resume":
            self.stopped = False
            self.message("resumed by central")
            self._publish_state()
        elif kind == "end" and self.supply and self.supply["session"] == message["session"]:
            self._finish("INTERRUPTED", message["reason"])

    def _authorize(self, order):
        session = order["session"]
        if session in self.recent or (self.supply and self.supply["session"] == session):
            return  # a replayed order
        refusal = self._refusal()
        if refusal:
            log.warning("refusing authorisation %s: %s", session, refusal)
            self._publish_telemetry(
                "ended", session=session, driver=order["driver"], kwh=0.0, eur=0.0, seq=1, status="INTERRUPTED", reason=refusal
            )
            self.recent.append(session)
            return
        self.supply = {
            "session": session,
            "driver": order["driver"],
            "price": order["price"],
            "kwh_requested": order["kwh_requested"],
            "kwh": 0.0,
            "eur": 0.0,
            "seq": 0,
            "status": "AUTHORIZED",
            "started_at": None,
        }
        self._save()
        self.message(f"supply authorised for driver {order['driver']} ({order['kwh_requested']:g} kWh at {order['price']:g} EUR/kWh)")
        self._publish_state()
        if self.config.auto_plug or order["request_id"] in self.manual_requests:
            self.plug()
        else:
            self._plug_timer = asyncio.get_running_loop().create_task(self._plug_deadline(session))

    def _refusal(self):
        if self.fault:
            return f"engine fault: {self.fault}"
        if self.stopped:
            return "charging point is out of order"
        if self.supply is not None:
            return "charging point is busy"
        return None

    async def _plug_deadline(self, session):
        await asyncio.sleep(self.config.plug_timeout)
        if self.supply and self.supply["session"] == session and self.supply["status"] == "AUTHORIZED":
            self._finish("INTERRUPTED", f"vehicle not plugged in within {self.config.plug_timeout}")

    # -- the supply -----------------------------------------------------------------------------

    def plug(self):
        if not self.supply or self.supply["status"] != "AUTHORIZED":
            raise CommandError("refused", "no authorised supply is waiting for a vehicle")
        if self._plug_timer is not None:
            self._plug_timer.cancel()
        self.supply["status"] = "SUPPLYING"
        self.supply["started_at"] = messages.now_iso()
        self._save()
        self._publish_telemetry("started", session=self.supply["session"], driver=self.supply["driver"])
        self.message(f"vehicle plugged in: supplying driver {self.supply['driver']}")
        self._publish_state()
        self._ticker = asyncio.get_running_loop().create_task(self._tick_loop(self.supply["session"]))
        return {"session": self.supply["session"], "state": self.state}

    async def _tick_loop(self, session):
        while True:
            await asyncio.sleep(self.config.tick)
            supply = self.supply
            if not supply or supply["session"] != session or supply["status"] != "SUPPLYING":
                return
            supply["kwh"] = min(energy(supply["kwh"] + self.config.kwh_per_tick), supply["kwh_requested"])
            supply["eur"] = cost(supply["kwh"], supply["price"])
            supply["seq"] += 1
            self._save()
            self._publish_telemetry(
                "progress", session=session, driver=supply["driver"], kwh=supply["kwh"], eur=supply["eur"], seq=supply["seq"]
            )
            self._publish_state()
            if supply["kwh"] >= supply["kwh_requested"]:
                self._finish("COMPLETED", "requested energy reached")
                return

    def _finish(self, status, reason):
        supply = self.supply
        supply["seq"] += 1
        self._publish_telemetry(
            "ended",
            session=supply["session"],
            driver=supply["driver"],
            kwh=supply["kwh"],
            eur=supply["eur"],
            seq=supply["seq"],
            status=status,
            reason=reason,
        )
        self.message(f"supply ended ({status.lower()}: {reason}): {supply['kwh']:g} kWh, {supply['eur']:.2f} EUR")
        self.daemon.state.set(("engine", "last_supply"), {**supply, "status": status, "reason": reason})
        self.recent.append(supply["session"])
        self.supply = None
        self._save()
        self._publish_state()

    # -- commands (evctl and the panel) -------------------------------------------------------------

    def cmd_plug(self, args, ctx):
        return self.plug()

    def cmd_unplug(self, args, ctx):
        if not self.supply:
            raise CommandError("refused", "no vehicle is plugged in")
        if self.supply["status"] == "AUTHORIZED":
            self._finish("INTERRUPTED", "cancelled before plug-in")
        else:
            self._finish("COMPLETED", "unplugged")
        return {"state": self.state}

    def cmd_fault(self, args, ctx):
        self.fault = "simulated fault"
        self.message("fault simulated: health checks answer KO")
        if self.supply:
            self._finish("INTERRUPTED", "engine fault")
        self._publish_state()
        return {"state": self.state, "fault": self.fault}

    def cmd_recover(self, args, ctx):
        self.fault = None
        self.message("fault cleared: health checks answer OK")
        self._publish_state()
        return {"state": self.state, "fault": None}

    def cmd_supply(self, args, ctx):
        if not self.cp_id:
            raise CommandError("refused", "this engine has no charging point id yet (its monitor has not connected)")
        refusal = self._refusal()
        if refusal:
            raise CommandError("refused", refusal)
        kwh = args.get("kwh") or self.config.default_kwh
        if not isinstance(kwh, (int, float)) or kwh <= 0:
            raise CommandError("bad_args", "--kwh must be a positive number")
        driver = args.get("driver") or f"{WALK_IN_PREFIX}{self.cp_id}-{secrets.token_hex(3)}"  # who pays at the CP itself
        message = self._publish_telemetry("manual_request", driver=driver, kwh=float(kwh))
        self.manual_requests.append(message["id"])
        self.message(f"manual supply requested for driver {driver} ({kwh:g} kWh); waiting for central")
        return {"request_id": message["id"], "cp": self.cp_id, "driver": driver, "kwh": float(kwh), "status": "REQUESTED"}

    # -- helpers ----------------------------------------------------------------------------

    def _publish_telemetry(self, kind, **fields):
        message = messages.make(kind, cp=self.cp_id, **fields)
        self.daemon.bus.publish("cp.telemetry", self.cp_id, self.daemon.seal("cp.telemetry", self.cp_id, message))
        return message

    def _save(self):
        self.journal.save({"cp_id": self.cp_id, "key": self.key, "supply": self.supply, "recent": list(self.recent)})

    def _publish_state(self):
        self.daemon.state.set(
            ("engine",),
            {
                "cp_id": self.cp_id,
                "state": self.state,
                "fault": self.fault,
                "central_state": self.central_state,
                "auto_plug": self.config.auto_plug,
                "supply": dict(self.supply) if self.supply else None,
                "last_supply": self.daemon.state.get(("engine", "last_supply")),
            },
        )


COMMANDS = [
    CommandSpec(("engine", "plug"), "plug the vehicle in: an authorised supply starts", role="engine", mutating=True),
    CommandSpec(("engine", "unplug"), "unplug the vehicle: the running supply ends", role="engine", mutating=True),
    CommandSpec(("engine", "fault"), "simulate a fault: health checks answer KO", role="engine", mutating=True),
    CommandSpec(("engine", "recover"), "end the simulated fault: health checks answer OK", role="engine", mutating=True),
    CommandSpec(
        ("engine", "supply"),
        "request a supply from the charging point itself (manual supply)",
        role="engine",
        args=(
            Arg("--driver", "driver id to charge the supply to", metavar="ID"),
            Arg("--kwh", "energy to supply, in kWh", type=kwh_arg, metavar="K"),
        ),
        mutating=True,
    ),
]


@evd.hookimpl
def evd_register_roles():
    return {"engine": Engine}


@evd.hookimpl
def evd_register_commands():
    return COMMANDS


@evd.hookimpl
def evd_config_sections():
    return {"engine": EngineConfig}


@evd.hookimpl
def evd_control_commands(daemon):
    if daemon.role_name != "engine":
        return None
    role = daemon.role
    return {
        "engine.plug": role.cmd_plug,
        "engine.unplug": role.cmd_unplug,
        "engine.fault": role.cmd_fault,
        "engine.recover": role.cmd_recover,
        "engine.supply": role.cmd_supply,
    }
