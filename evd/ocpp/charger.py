"""One OCPP 1.6J charger as central sees it (DESIGN.md §10): its calls carried onto central's network,
central's orders (the cp.commands messages) turned into calls to it.

The ``ocpp`` package parses, validates every payload against the 1.6 JSON schemas and routes; this
module holds only the mapping. One connector per charging point: a charger's connectors share its
state, and its transactions are central's supplies.
"""

import asyncio
import datetime
import json
import logging
import sys
import time

from ocpp.exceptions import (
    FormationViolationError,
    FormatViolationError,
    NotImplementedError,
    NotSupportedError,
    OCPPError,
    SecurityError,
)
from ocpp.messages import MessageType, unpack
from ocpp.routing import on
from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16.enums import (
    Action,
    AuthorizationStatus,
    AvailabilityType,
    ChargePointStatus,
    RegistrationStatus,
    RemoteStartStopStatus,
)

from evd import messages, sessions
from evd.errors import CommandError
from evd.sessions import Status

log = logging.getLogger(__name__)

ANSWER_TIMEOUT = 10.0  # seconds a charger has to answer one of central's calls
FLOOD_BURST = 40  # calls a charger may send at once…
FLOOD_RATE = 20.0  # …and per second after that; past it the socket is closed
BAD_MESSAGES_LIMIT = 10  # unparsable messages from one socket before it is closed
CONNECTOR = 1  # the connector central starts supplies on (one per charging point)
ENERGY = "Energy.Active.Import.Register"  # the measurand of the meter reading (1.6's default)
KNOWN_ACTIONS = frozenset(Action)  # every OCPP 1.6 action name
#: StopTransaction reasons that end a supply normally (none given means Local).
NORMAL_STOPS = {None: "stopped at the charger", "Local": "stopped at the charger", "EVDisconnected": "vehicle unplugged"}


def now_ocpp():
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


class Flooded(Exception):
    """The charger sends calls faster than FLOOD_RATE: its socket is closed."""


class Library:
    """The ``ocpp`` package's log, quietened: it logs every message at INFO, and each error it answers
    with a traceback; central audits bad input itself and logs a traceback only for its own bugs."""

    def info(self, *args, **kwargs):
        pass

    debug = info

    def warning(self, msg, *args, **kwargs):
        log.info(msg, *args)

    def error(self, msg, *args, **kwargs):
        log.info(msg, *args)

    def exception(self, msg, *args, **kwargs):
        error = sys.exc_info()[1]
        if error is None or isinstance(error, OCPPError):
            log.info(msg, *args)
        else:  # a handler of ours failed: answered InternalError, and logged as the bug it is
            log.error(msg, *args, exc_info=True)


class ChargerLink:
    """What central holds as the CP's link while the charger is connected (its ``link`` attribute)."""

    def __init__(self, ws, peer):
        self.ws, self.peer = ws, peer

    def close(self):
        if not self.ws.closed:
            asyncio.get_running_loop().create_task(self.ws.close())

    async def send(self, *fields):
        """Central tells a monitor its state; a charger learns it through ChangeAvailability instead."""


class Charger(ChargePoint):
    def __init__(self, cp_id, connection, endpoint):
        super().__init__(cp_id, connection, response_timeout=ANSWER_TIMEOUT, logger=Library())
        self.endpoint = endpoint
        self.network = endpoint.network
        self.transactions = endpoint.transactions
        self.link = ChargerLink(connection.ws, connection.peer)
        self.accepted = False  # a known CP, or booted: central takes its calls
        self.orders = asyncio.Queue()
        self._tokens, self._refilled = float(FLOOD_BURST), time.monotonic()
        self.bad_messages = 0
        self.completing = set()  # transactions central stopped because their energy was delivered

    # -- the connection ----------------------------------------------------------------------

    def attach(self, description=""):
        """Join central's network as ``self.id`` (a new CP described as ``description``); CommandError if
        central will not have it."""
        self.network.connect(self.id, self.link, self.endpoint.controller(self.id), location=description)
        self.accepted = True
        if self.network.is_stopped(self.id):  # stopped by the operator while away: tell it again
            self.order(messages.make("stop", cp=self.id, reason="stopped by the operator"))

    def order(self, message):
        self.orders.put_nowait(message)

    async def carry_out_orders(self):
        while True:
            message = await self.orders.get()
            try:
                await self._carry_out(message)
            except (TimeoutError, OCPPError) as e:
                log.warning("OCPP %s: %s order not carried out: %s", self.id, message["type"], e or type(e).__name__)

    async def _carry_out(self, message):
        kind = message["type"]
        if kind == "authorize":
            answer = await self.call(call.RemoteStartTransaction(id_tag=message["driver"], connector_id=CONNECTOR))
            if answer is None or answer.status != RemoteStartStopStatus.accepted:
                self.network.message(f"{self.id}: the charger refused to start the supply of {message['driver']}")
                self.network.end_supply(self.id, "the charger refused the remote start")
        elif kind == "end":
            await self._remote_stop(self.transactions.of_session(message["session"]))
        elif kind == "stop":
            await self._remote_stop(self.transactions.running(self.id))
            await self.call(call.ChangeAvailability(connector_id=0, type=AvailabilityType.inoperative))
        elif kind == "resume":
            await self.call(call.ChangeAvailability(connector_id=0, type=AvailabilityType.operative))

    async def _remote_stop(self, transaction):
        if transaction is not None and not transaction.stopped:
            await self.call(call.RemoteStopTransaction(transaction_id=transaction.id))

    # -- what arrives: checked, routed by the ocpp package --------------------------------------

    async def route_message(self, raw):
        self._count_call()
        try:
            message = unpack(raw)
        except OCPPError as e:
            await self._unparsable(raw, e)
            return
        if message.message_type_id == MessageType.Call:
            try:
                _check_action(message.action, self.route_map)
                await self._handle_call(message)
            except OCPPError as e:  # unknown action, schema violation: answered as OCPP says
                e = _as_v16(e)
                self._audit_refusal(message.action, e)
                await self._send(message.create_call_error(e).to_json())
        elif message.message_type_id in (MessageType.CallResult, MessageType.CallError):
            self._response_queue.put_nowait(message)

    def _count_call(self):
        now = time.monotonic()
        self._tokens = min(FLOOD_BURST, self._tokens + (now - self._refilled) * FLOOD_RATE)
        self._refilled = now
        self._tokens -= 1
        if self._tokens < 0:
            raise Flooded(f"more than {FLOOD_RATE:g} calls a second")

    async def _unparsable(self, raw, error):
        self.bad_messages += 1
        error = _as_v16(error)
        self._audit_refusal("?", error)
        unique_id = _unique_id_of(raw)
        await self._send(json.dumps([MessageType.CallError, unique_id, error.code, error.description or "", {}]))
        if self.bad_messages >= BAD_MESSAGES_LIMIT:
            raise Flooded(f"{self.bad_messages} messages that are not OCPP")

    def _audit_refusal(self, action, error):
        self.endpoint.daemon.audit(
            "SECURITY", self.link.peer, "ocpp message", f"refused: {error.code}", cp=self.id, call=action, detail=_detail(error)
        )

    def _require_accepted(self, action):
        if not self.accepted:
            raise SecurityError(description=f"{action} before an accepted BootNotification")

    # -- the calls of §10 ----------------------------------------------------------------------

    @on(Action.boot_notification)
    def on_boot_notification(self, charge_point_vendor, charge_point_model, **optional):
        interval = round(self.endpoint.config.heartbeat_interval)
        try:
            self.attach(description=f"{charge_point_vendor} {charge_point_model}"[:80])
        except CommandError as e:
            self.endpoint.daemon.audit("SECURITY", self.link.peer, "ocpp boot", f"refused: {e.message}", cp=self.id)
            self.network.message(f"OCPP charger {self.id} at {self.link.peer} refused: {e.message}")
            return call_result.BootNotification(current_time=now_ocpp(), interval=interval, status=RegistrationStatus.rejected)
        self.endpoint.daemon.audit(
            "AUTH", self.link.peer, "ocpp boot", "ok", cp=self.id, vendor=charge_point_vendor, model=charge_point_model
        )
        self.network.message(f"OCPP charger {self.id} booted ({charge_point_vendor} {charge_point_model}) from {self.link.peer}")
        return call_result.BootNotification(current_time=now_ocpp(), interval=interval, status=RegistrationStatus.accepted)

    @on(Action.heartbeat)
    def on_heartbeat(self):
        self._require_accepted(Action.heartbeat)
        return call_result.Heartbeat(current_time=now_ocpp())

    @on(Action.status_notification)
    def on_status_notification(self, connector_id, error_code, status, info=None, **optional):
        self._require_accepted(Action.status_notification)
        if status == ChargePointStatus.faulted:
            self.network.report_health(self.id, False, f"{error_code}: {info}" if info else error_code)
        else:
            self.network.report_health(self.id, True)
            self.network.report_availability(self.id, "Unavailable" if status == ChargePointStatus.unavailable else None)
        return call_result.StatusNotification()

    @on(Action.authorize)
    def on_authorize(self, id_tag):
        self._require_accepted(Action.authorize)
        admitted = self.network.admits_driver(id_tag)
        self.endpoint.daemon.audit("AUTH", self.id, "ocpp authorize", "accepted" if admitted else "invalid", driver=id_tag)
        return call_result.Authorize(id_tag_info={"status": AuthorizationStatus.accepted if admitted else AuthorizationStatus.invalid})

    @on(Action.start_transaction)
    def on_start_transaction(self, connector_id, id_tag, meter_start, timestamp, **optional):
        self._require_accepted(Action.start_transaction)
        transaction = self.transactions.find(self.id, connector_id, id_tag, meter_start, timestamp)
        if transaction is None:  # not a resend: a supply central authorises, or the one it ordered
            request_id = f"ocpp:{self.id}:{connector_id}:{timestamp}:{meter_start}:{id_tag}"
            session = self.network.start_supply(self.id, id_tag, request_id)
            transaction = self.transactions.start(self.id, connector_id, id_tag, meter_start, timestamp, session.id)
            if session.status != Status.DENIED:
                self.network.report_supply(self.id, session.id, sessions.Started(ts=messages.now_iso()))
        session = self.network.session(transaction.session)
        accepted = session is not None and session.status != Status.DENIED
        status = AuthorizationStatus.accepted if accepted else AuthorizationStatus.invalid
        return call_result.StartTransaction(transaction_id=transaction.id, id_tag_info={"status": status})

    @on(Action.meter_values)
    def on_meter_values(self, connector_id, meter_value, transaction_id=None):
        self._require_accepted(Action.meter_values)
        transaction = self.transactions.get(transaction_id) if transaction_id is not None else None
        wh = energy_register(meter_value)
        if transaction is None or transaction.cp != self.id or transaction.stopped or wh is None:
            return call_result.MeterValues()
        session = self.network.session(transaction.session)
        kwh = transaction.kwh(wh)
        if session is not None and not session.status.final and kwh > session.kwh:
            self.network.report_supply(self.id, session.id, sessions.Progress(seq=session.last_seq + 1, kwh=kwh, ts=messages.now_iso()))
            if kwh >= session.kwh_requested > 0 and transaction.id not in self.completing:
                # An OCPP charger knows nothing of the energy asked for: central stops it there.
                self.completing.add(transaction.id)
                self.order(messages.make("end", session=session.id, cp=self.id, reason="requested energy delivered"))
        return call_result.MeterValues()

    @on(Action.stop_transaction)
    def on_stop_transaction(self, meter_stop, timestamp, transaction_id, reason=None, **optional):
        self._require_accepted(Action.stop_transaction)
        transaction = self.transactions.get(transaction_id)
        if transaction is None or transaction.cp != self.id:
            self.endpoint.daemon.audit("INCIDENT", self.id, "ocpp stop transaction", "unknown transaction", transaction=transaction_id)
            return call_result.StopTransaction()
        if not transaction.stopped:  # else a resend: its ticket is out already, once
            session = self.network.session(transaction.session)
            # Closed already (central ordered the end and waited no longer): at most corrected upwards.
            if session is not None and session.status != Status.DENIED:
                if transaction.id in self.completing and reason == "Remote":
                    status, why = Status.COMPLETED, "requested energy delivered"
                else:
                    status = Status.COMPLETED if reason in NORMAL_STOPS else Status.INTERRUPTED
                    why = NORMAL_STOPS.get(reason) or f"the charger stopped it ({reason})"
                ended = sessions.Ended(
                    seq=session.last_seq + 1, kwh=transaction.kwh(meter_stop), status=status, reason=why, ts=messages.now_iso()
                )
                self.network.report_supply(self.id, session.id, ended)
            self.transactions.stop(transaction.id, meter_stop, timestamp)
        return call_result.StopTransaction(id_tag_info={"status": AuthorizationStatus.accepted})


def energy_register(meter_values):
    """The last reading of the energy register in a MeterValues' ``meterValue``, in Wh; None if none."""
    reading = None
    for meter_value in meter_values:
        for sample in meter_value.get("sampled_value", ()):
            if sample.get("measurand", ENERGY) != ENERGY or sample.get("phase"):
                continue
            try:
                value = float(sample["value"])
            except (KeyError, ValueError):
                continue
            reading = value * 1000 if sample.get("unit") == "kWh" else value
    return reading


def _check_action(action, route_map):
    """OCPP 1.6 (§4.2.3): an action the receiver does not know is NotImplemented, one it knows and
    does not support NotSupported (the ocpp package answers the other way round)."""
    if isinstance(action, str) and action in route_map:
        return
    if isinstance(action, str) and action in KNOWN_ACTIONS:
        raise NotSupportedError(description=f"{action} is not supported by this central system")
    raise NotImplementedError(description=f"{str(action)[:50]!r} is not an OCPP 1.6 action")


def _as_v16(error):
    """OCPP 1.6 spells the ocpp package's FormatViolation as FormationViolation."""
    if isinstance(error, FormatViolationError):
        return FormationViolationError(description=error.description, details=error.details)
    return error


def _detail(error):
    cause = (error.details or {}).get("cause") if isinstance(error.details, dict) else None
    return str(cause or error.description or "")[:200]


def _unique_id_of(raw):
    """The message id of an unparsable message if it has one where a CALL keeps it, else "-1"."""
    try:
        parsed = json.loads(raw)
    except (ValueError, TypeError):
        return "-1"
    if isinstance(parsed, list) and len(parsed) > 1 and isinstance(parsed[1], str):
        return parsed[1]
    return "-1"
