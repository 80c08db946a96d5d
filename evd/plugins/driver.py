"""The driver role (EV_Driver): requests supplies, follows its own supply live, keeps its tickets.

It reads only its own key on ``driver.events`` (as a consumer group, so a ticket sent
while it was down arrives when it is back) and follows ``central.status`` live for the CP
list and central's heartbeat. A request file is worked through one CP at a time, with
``pause_between`` after each supply ends, whatever its outcome (R12).
"""

import asyncio
import datetime
import logging
import os
import pathlib
import time

import attrs

import evd
from evd import messages
from evd.commands import CP_ID, LISTING_FIELDS, SESSION_COLUMNS, TICKET_FIELDS, Arg, CommandSpec, kwh_arg, parse_kwh, read_requests_file
from evd.config import Duration, positive
from evd.errors import CommandError, ConfigError
from evd.role import Role

log = logging.getLogger(__name__)

HISTORY_SHOWN = 50  # tickets kept in the panel's state
HISTORY_WAIT = 3.0  # seconds `driver history` waits for central's answer
CANCEL_WAIT = 30.0  # seconds `driver cancel` waits for the ticket (central's end grace, the engine's last figures)


def _kwh(_instance, _attribute, value):
    parse_kwh(value)


def _requests_file(_instance, _attribute, value):
    # Read at configuration time, so a missing or malformed file stops the daemon before it starts (exit 2).
    if value is not None:
        try:
            read_requests_file(value)
        except ConfigError as e:
            raise ValueError(str(e)) from None


@attrs.frozen
class DriverConfig:
    id: str
    requests_file: pathlib.Path | None = attrs.field(default=None, validator=_requests_file)
    pause_between: Duration = attrs.field(default=Duration(4), validator=positive)
    default_kwh: float = attrs.field(default=10.0, validator=_kwh)
    request_timeout: Duration = attrs.field(default=Duration(15), validator=positive)
    #: Central counts as unreachable when its heartbeat has been silent this long.
    central_timeout: Duration = attrs.field(default=Duration(3), validator=positive)


class Driver(Role):
    def __init__(self, daemon):
        super().__init__(daemon)
        self.id = self.config.id
        self.cps = {}
        self.current = None  # the request or supply in progress
        self.history = []  # tickets, newest first
        self.seen_tickets = {}  # session -> its ticket
        self.run = None  # the request file being worked through
        self._central_seen = None
        self._outcome = None  # future resolved with the current request's ticket or denial
        self._timeout = None
        self._run_task = None
        self.central_history = None  # the driver's sessions as central knows them (R23)
        self._history_wanted = []  # futures of `driver history` calls waiting for central

    async def start(self):
        bus = self.daemon.bus
        bus.subscribe("driver.events", self._on_event, group=f"driver-{self.id}", keys={self.id})
        bus.subscribe("central.status", self._on_status)
        bus.publish("driver.requests", self.id, messages.make("cps_request", driver=self.id))
        bus.publish("driver.requests", self.id, messages.make("history_request", driver=self.id))
        self.daemon.spawn(self._watch_central())
        self._publish_state()
        if self.config.requests_file:
            try:
                requests = read_requests_file(self.config.requests_file)
            except ConfigError as e:  # it changed since the configuration was checked
                log.error("%s", e)
                self.message(f"requests file not worked through: {e}")
            else:
                self._start_run(str(self.config.requests_file), requests)

    async def stop(self):
        if self._run_task is not None:
            self._run_task.cancel()

    @property
    def central_reachable(self):
        return self._central_seen is not None and time.monotonic() - self._central_seen < self.config.central_timeout

    def status(self):
        return {
            "driver": self.id,
            "central_reachable": self.central_reachable,
            "current": self.current,
            "run": self.run,
            "tickets": len(self.history),
        }

    # -- the stream ---------------------------------------------------------------------------

    def _on_status(self, message, key):
        message = messages.check("central.status", message)
        was = self.central_reachable
        self._central_seen = time.monotonic()
        kind = message["type"]
        if kind == "cp_state":
            self._set_cp(message["cp"])
        elif kind == "cps":
            for tile in message["items"]:
                self._set_cp(tile)
        if not was:
            self.message("central is reachable")
            self._publish_state()

    def _set_cp(self, tile):
        if not isinstance(tile, dict) or not isinstance(tile.get("id"), str):
            raise messages.MalformedMessage("a CP without an id")
        public = {k: tile.get(k) for k in ("id", "location", "price_eur_kwh", "city", "state")}
        public["available"] = public["state"] == "ACTIVE"
        if self.cps.get(public["id"]) != public:
            self.cps[public["id"]] = public
            self.daemon.state.set(("cps", public["id"]), public)

    def _on_event(self, message, key):
        message = messages.check("driver.events", message)
        if message["driver"] != self.id:
            raise messages.MalformedMessage(f"an event for driver {message['driver']!r} under key {key!r}")
        kind = message["type"]
        current = self.current
        if kind == "authorized":
            if current is not None and current["request_id"] == message["request_id"]:
                current.update(status="AUTHORIZED", session=message["session"], price=message["price"])
                self._cancel_timeout()
                self.message(f"authorised at {message['cp']}: plug the vehicle in ({message['price']:g} EUR/kWh)")
            elif current is None:
                self.current = {
                    **_request(message["request_id"], message["cp"], message["kwh_requested"]),
                    "status": "AUTHORIZED",
                    "session": message["session"],
                    "price": message["price"],
                }
                self.message(f"authorised at {message['cp']} (a request this app had given up on, or a manual one)")
        elif kind == "denied":
            if current is not None and current["request_id"] == message["request_id"]:
                outcome = {
                    "session": None,
                    "cp": message["cp"],
                    "driver": self.id,
                    "kwh": 0.0,
                    "eur": 0.0,
                    "status": "DENIED",
                    "reason": message["reason"],
                }
                self.message(f"request for {message['cp']} denied: {message['reason']}")
                self._conclude(outcome)
        elif kind == "progress":
            if current is not None and current.get("session") == message["session"] and message["seq"] > current.get("seq", 0):
                current.update(status="SUPPLYING", kwh=message["kwh"], eur=message["eur"], seq=message["seq"])
        elif kind == "ticket":
            self._on_ticket(message)
        elif kind == "history":
            self.central_history = message["sessions"]
            self.daemon.state.set(("history",), [_as_ticket(s) for s in self.central_history[:HISTORY_SHOWN]])
            for waiting in self._history_wanted:
                if not waiting.done():
                    waiting.set_result(self.central_history)
            self._history_wanted.clear()
        self._publish_state()

    def _on_ticket(self, message):
        ticket = {k: message[k] for k in TICKET_FIELDS}
        earlier = self.seen_tickets.get(message["session"])
        if earlier == ticket:
            return  # the same ticket again (at-least-once delivery)
        self.seen_tickets[message["session"]] = ticket
        if earlier is not None:  # central corrected it: the engine delivered more than it had heard of
            self.history = [ticket if t["session"] == ticket["session"] else t for t in self.history]
        else:
            self.history.insert(0, ticket)
        self.daemon.state.set(("history",), self.history[:HISTORY_SHOWN])
        self.daemon.bus.publish("driver.requests", self.id, messages.make("history_request", driver=self.id))
        self.message(
            f"{'corrected ticket' if earlier else 'ticket'} from {ticket['cp']}: {ticket['kwh']:g} kWh, {ticket['eur']:.2f} EUR"
            f" ({ticket['status'].lower()}{': ' + ticket['reason'] if ticket['reason'] else ''})"
        )
        if self.current is not None and self.current.get("session") == message["session"]:
            self._conclude({k: ticket[k] for k in ("session", "cp", "driver", "kwh", "eur", "status", "reason")})

    # -- requests -----------------------------------------------------------------------------

    def request(self, cp, kwh=None):
        """Ask central for a supply; returns a future of the ticket (or denial, or timeout)."""
        try:  # a bad argument is a bad argument whatever the state: checked first
            kwh = parse_kwh(kwh if kwh is not None else self.config.default_kwh)
        except ValueError as e:
            raise CommandError("bad_args", str(e)) from None
        if self.current is not None:
            raise CommandError("refused", f"a supply is already in progress at {self.current['cp']}")
        expires = datetime.datetime.now(datetime.UTC) + datetime.timedelta(seconds=self.config.request_timeout)
        message = messages.make("request", driver=self.id, cp=cp, kwh=kwh, expires_at=messages.iso(expires))
        self.current = _request(message["id"], cp, kwh)
        self._outcome = asyncio.get_running_loop().create_future()
        self._timeout = asyncio.get_running_loop().call_later(self.config.request_timeout, self._timed_out, message["id"])
        self.daemon.bus.publish("driver.requests", self.id, message)
        self.message(f"requested {kwh:g} kWh at {cp}" + ("" if self.central_reachable else " (central is not reachable right now)"))
        self._publish_state()
        return self._outcome

    def _timed_out(self, request_id):
        if self.current is not None and self.current["request_id"] == request_id and self.current["status"] == "REQUESTED":
            reason = f"no answer from central within {self.config.request_timeout}"
            self.message(f"request for {self.current['cp']}: {reason}")
            self._conclude(
                {
                    "session": None,
                    "cp": self.current["cp"],
                    "driver": self.id,
                    "kwh": 0.0,
                    "eur": 0.0,
                    "status": "TIMEOUT",
                    "reason": reason,
                }
            )
            self._publish_state()

    def _conclude(self, outcome):
        self._cancel_timeout()
        self.current = None
        self.daemon.state.set(("last_outcome",), outcome)
        if self._outcome is not None and not self._outcome.done():
            self._outcome.set_result(outcome)

    def _cancel_timeout(self):
        if self._timeout is not None:
            self._timeout.cancel()
            self._timeout = None

    # -- request files (R12) ----------------------------------------------------------------------

    def _start_run(self, source, requests):
        """Work through ``requests`` (``[{"cp", "kwh"}]``, as :func:`read_requests_file` returns them)."""
        if self.run is not None and self.run["state"] != "done":
            raise CommandError("refused", f"already working through {self.run['file']} ({self.run['done']} of {self.run['total']})")
        self.run = {"file": source, "total": len(requests), "done": 0, "cp": None, "state": "starting", "pause_left": None, "results": []}
        self._run_task = self.daemon.spawn(self._work_through(requests))
        self.message(f"working through {source}: {len(requests)} request(s)")

    async def _work_through(self, requests):
        run = self.run
        for index, wanted in enumerate(requests):
            cp = wanted["cp"]
            while not self.central_reachable or self.current is not None:
                run["state"] = "waiting for central" if not self.central_reachable else "waiting for the supply in progress"
                self._publish_state()
                await asyncio.sleep(0.2)
            run.update(cp=cp, state="requesting")
            self._publish_state()
            outcome = await self.request(cp, wanted["kwh"])
            run["results"].append(
                {"cp": cp, "status": outcome["status"], "kwh": outcome["kwh"], "eur": outcome["eur"], "ended": messages.now_iso()}
            )
            run["done"] = index + 1
            if index + 1 < len(requests):
                await self._pause(run)
        run.update(state="done", cp=None, pause_left=None)
        self.message(f"finished {run['file']}: {run['done']} request(s)")
        self._publish_state()

    async def _pause(self, run):
        deadline = time.monotonic() + self.config.pause_between
        run["state"] = "pausing"
        while (left := deadline - time.monotonic()) > 0:
            run["pause_left"] = round(left, 1)
            self._publish_state()
            await asyncio.sleep(min(0.5, left))
        run["pause_left"] = None

    # -- commands ----------------------------------------------------------------------------------

    def cmd_cps(self, args, ctx):
        return [self.cps[k] for k in sorted(self.cps)]

    async def cmd_history(self, args, ctx):
        """Past supplies from central (R23); this app's own tickets if central does not answer."""
        waiting = asyncio.get_running_loop().create_future()
        self._history_wanted.append(waiting)
        self.daemon.bus.publish("driver.requests", self.id, messages.make("history_request", driver=self.id))
        try:
            return await asyncio.wait_for(waiting, HISTORY_WAIT)
        except TimeoutError:
            log.warning("central did not answer the history request; showing this app's tickets")
            return [{k: t["session"] if k == "id" else t[k] for k in LISTING_FIELDS} for t in self.history]

    async def cmd_request(self, args, ctx):
        cp = args.get("cp")
        if not isinstance(cp, str) or not cp:
            raise CommandError("bad_args", "give the charging point id")
        outcome = self.request(cp, args.get("kwh"))
        if not args.get("wait"):
            return {"request_id": self.current["request_id"], "cp": cp, "driver": self.id, "status": "REQUESTED"}
        ticket = await asyncio.shield(outcome)
        if ticket["status"] == "DENIED":
            raise CommandError("refused", f"request denied: {ticket['reason']}", result=ticket)
        if ticket["status"] == "TIMEOUT":
            raise CommandError("timeout", ticket["reason"])
        return ticket

    async def cmd_cancel(self, args, ctx):
        """End this driver's running supply (central sends an INTERRUPTED ticket); waits for the ticket."""
        current = self.current
        if current is None or current.get("session") is None:
            waiting = f" (the request for {current['cp']} is still waiting for central's answer)" if current else ""
            raise CommandError("refused", f"no supply of this driver is running{waiting}")
        cancel = messages.make("cancel", driver=self.id, session=current["session"], cp=current["cp"])
        self.daemon.bus.publish("driver.requests", self.id, cancel)
        self.message(f"asked central to end the supply at {current['cp']}")
        if self._outcome is None or self._outcome.done():  # a supply this app did not request (manual, or given up on)
            self._outcome = asyncio.get_running_loop().create_future()
        try:
            return await asyncio.wait_for(asyncio.shield(self._outcome), CANCEL_WAIT)
        except TimeoutError:
            raise CommandError("timeout", f"no ticket from central within {CANCEL_WAIT:g} s; it comes when central is back") from None

    def cmd_run(self, args, ctx):
        requests = _checked_requests(args.get("requests"))
        self._start_run(args.get("file") or "(request list)", requests)
        return {"file": self.run["file"], "requests": len(requests)}

    # -- panel -------------------------------------------------------------------------------------

    async def _watch_central(self):
        reachable = None
        while True:
            if self.central_reachable != reachable:
                if reachable:
                    self.message("central is not reachable")
                reachable = self.central_reachable
                self._publish_state()
            await asyncio.sleep(0.5)

    def _publish_state(self):
        self.daemon.state.set(
            ("driver",),
            {
                "id": self.id,
                "central_reachable": self.central_reachable,
                "current": dict(self.current) if self.current else None,
                "run": dict(self.run) if self.run else None,
            },
        )


def _checked_requests(requests):
    """``driver.run``'s ``requests`` argument, every entry checked before any is sent."""
    if not isinstance(requests, list) or not requests:
        raise CommandError("bad_args", "give the requests: a list of {cp, kwh}")
    checked = []
    for number, wanted in enumerate(requests, 1):
        if not isinstance(wanted, dict) or not isinstance(wanted.get("cp"), str) or not CP_ID.fullmatch(wanted["cp"]):
            raise CommandError("bad_args", f"request {number}: expected a charging point id and an optional kWh")
        try:
            kwh = None if wanted.get("kwh") is None else parse_kwh(wanted["kwh"])
        except ValueError as e:
            raise CommandError("bad_args", f"request {number} ({wanted['cp']}): {e}") from None
        checked.append({"cp": wanted["cp"], "kwh": kwh})
    return checked


def _as_ticket(session):
    """A session of central's history (LISTING_FIELDS) as this driver's tickets look."""
    return {k: session["id"] if k == "session" else session.get(k) for k in TICKET_FIELDS if k != "price"}


def _request(request_id, cp, kwh):
    return {
        "request_id": request_id,
        "cp": cp,
        "kwh_requested": kwh,
        "status": "REQUESTED",
        "session": None,
        "kwh": 0.0,
        "eur": 0.0,
        "price": None,
        "seq": 0,
    }


def _read_file_here(call_args):
    # A requests file is read where evctl runs: the daemon may not see the operator's files.
    call_args["requests"] = read_requests_file(call_args["file"])  # a bad line: exit 2, nothing sent
    call_args["file"] = os.path.abspath(call_args["file"])


COMMANDS = [
    CommandSpec(
        ("driver", "cps"),
        "every charging point and whether it is available",
        role="driver",
        columns=("id", "state", "available", "location", "price_eur_kwh"),
    ),
    CommandSpec(("driver", "history"), "this driver's past supplies", role="driver", columns=SESSION_COLUMNS),
    CommandSpec(
        ("driver", "request"),
        "request a supply at a charging point",
        role="driver",
        args=(
            Arg("cp", "charging point id", metavar="CP"),
            Arg("--kwh", "energy wanted, in kWh", type=kwh_arg, metavar="K"),
            Arg("--wait", "wait for the ticket or the denial and print it", flag=True),
        ),
        mutating=True,
        timeout=3600.0,
    ),
    CommandSpec(
        ("driver", "cancel"),
        "end this driver's running supply: an INTERRUPTED ticket for the energy delivered",
        role="driver",
        mutating=True,
        timeout=CANCEL_WAIT + 5,
    ),
    CommandSpec(
        ("driver", "run"),
        "request the supplies listed in FILE (CP or CP#KWH a line), pausing between them",
        role="driver",
        args=(Arg("file", "file of requests, CP or CP#KWH a line", metavar="FILE"),),
        mutating=True,
        prepare=_read_file_here,
    ),
]


@evd.hookimpl
def evd_register_roles():
    return {"driver": Driver}


@evd.hookimpl
def evd_register_commands():
    return COMMANDS


@evd.hookimpl
def evd_config_sections():
    return {"driver": DriverConfig}


@evd.hookimpl
def evd_control_commands(daemon):
    if daemon.role_name != "driver":
        return None
    role = daemon.role
    return {
        "driver.cps": role.cmd_cps, "driver.history": role.cmd_history, "driver.request": role.cmd_request,
        "driver.run": role.cmd_run, "driver.cancel": role.cmd_cancel,
    }  # fmt: skip
