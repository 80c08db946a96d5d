"""An OCPP 1.6J charge point played by the ``ocpp`` package's own client (``ocpp.v16.ChargePoint``) over a
real WebSocket (aiohttp), driven from synchronous tests: its event loop runs in a thread of its own."""

import asyncio
import datetime
import json
import threading

import aiohttp
from ocpp.routing import after, on
from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16.enums import Action, AvailabilityStatus, AvailabilityType, RemoteStartStopStatus

TIMEOUT = 15.0


def now():
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Socket:
    """aiohttp's client WebSocket as the ocpp package wants it: recv() and send(text)."""

    def __init__(self, ws):
        self.ws = ws

    async def recv(self):
        message = await self.ws.receive()
        if message.type != aiohttp.WSMsgType.TEXT:
            raise ConnectionError(f"socket closed: {message.type.name} {self.ws.close_code}")
        return message.data

    async def send(self, text):
        await self.ws.send_str(text)


class Client(ChargePoint):
    """The charger's side: answers central's calls as a real charger would, and records them."""

    def __init__(self, cp_id, socket, owner):
        super().__init__(cp_id, socket, response_timeout=TIMEOUT)
        self.owner = owner

    @on(Action.remote_start_transaction)
    def on_remote_start(self, id_tag, connector_id=None, **_):
        self.owner.received.append(("RemoteStartTransaction", id_tag))
        accepted = self.owner.accept_remote_start
        return call_result.RemoteStartTransaction(status=RemoteStartStopStatus.accepted if accepted else RemoteStartStopStatus.rejected)

    @after(Action.remote_start_transaction)
    async def after_remote_start(self, id_tag, **_):
        if self.owner.accept_remote_start:  # a real charger starts once the vehicle is plugged in
            await self.owner.start_transaction_async(id_tag)

    @on(Action.remote_stop_transaction)
    def on_remote_stop(self, transaction_id):
        self.owner.received.append(("RemoteStopTransaction", transaction_id))
        return call_result.RemoteStopTransaction(status=RemoteStartStopStatus.accepted)

    @after(Action.remote_stop_transaction)
    async def after_remote_stop(self, transaction_id):
        await self.owner.stop_transaction_async(transaction_id, reason="Remote")

    @on(Action.change_availability)
    def on_change_availability(self, connector_id, type):
        self.owner.received.append(("ChangeAvailability", type))
        return call_result.ChangeAvailability(status=AvailabilityStatus.accepted)

    @after(Action.change_availability)
    async def after_change_availability(self, connector_id, type):
        status = "Unavailable" if type == AvailabilityType.inoperative else "Available"
        await self.call(call.StatusNotification(connector_id=0, error_code="NoError", status=status))


class Charger:
    """One charger: ``connect()``, then its calls (each returns central's answer) and what it received."""

    def __init__(self, url, cp_id):
        self.url, self.id = url, cp_id
        self.meter = 0  # Wh
        self.transaction_id = None
        self.accept_remote_start = True
        self.received = []  # (action, argument) of central's calls
        self.loop = asyncio.new_event_loop()
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.thread.start()
        self.session = self.ws = self.client = self.reader = None

    def run(self, coroutine, timeout=TIMEOUT):
        return asyncio.run_coroutine_threadsafe(coroutine, self.loop).result(timeout)

    # -- the socket --------------------------------------------------------------------------

    def connect(self, protocols=("ocpp1.6",), path=None):
        self.run(self._connect(protocols, path))
        return self

    async def _connect(self, protocols, path):
        if self.session is None:
            self.session = aiohttp.ClientSession()
        self.ws = await self.session.ws_connect(f"{self.url}/ocpp/{path or self.id}", protocols=protocols, autoping=True)
        self.client = Client(self.id, Socket(self.ws), self)
        self.reader = asyncio.ensure_future(self.client.start())

    def drop(self):
        """The socket goes away, as on a network failure (the charger keeps its transaction)."""
        self.run(self._drop())

    async def _drop(self):
        if self.reader is not None:
            self.reader.cancel()
        if self.ws is not None:
            await self.ws.close()

    def close(self):
        try:
            self.run(self._drop())
            if self.session is not None:
                self.run(self.session.close())
        finally:
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(5)
            self.loop.close()

    def closed(self):
        return self.ws is None or self.ws.closed

    def send_raw(self, text):
        """Text as it is, on the socket; returns central's answer as a list ([4, id, code, …] for a CALLERROR)."""
        return self.run(self._send_raw(text))

    async def _send_raw(self, text):
        await self.ws.send_str(text)
        answer = await asyncio.wait_for(self.client._response_queue.get(), TIMEOUT)  # where the client puts answers
        return json.loads(answer.to_json())

    # -- the charger's calls -------------------------------------------------------------------

    def call(self, payload):
        return self.run(self.client.call(payload, suppress=False))

    def boot(self):
        return self.call(call.BootNotification(charge_point_model="Lab-1", charge_point_vendor="EVCharging tests"))

    def status(self, status, error_code="NoError", connector_id=1, info=None):
        return self.call(call.StatusNotification(connector_id=connector_id, error_code=error_code, status=status, info=info))

    def authorize(self, id_tag):
        return self.call(call.Authorize(id_tag=id_tag))

    def start_transaction(self, id_tag, timestamp=None):
        return self.run(self.start_transaction_async(id_tag, timestamp))

    async def start_transaction_async(self, id_tag, timestamp=None):
        self.started_at = timestamp or now()
        self.start_fields = dict(connector_id=1, id_tag=id_tag, meter_start=self.meter, timestamp=self.started_at)
        answer = await self.client.call(call.StartTransaction(**self.start_fields), suppress=False)
        self.transaction_id = answer.transaction_id
        return answer

    def resend_start(self):
        """The same StartTransaction again, as after a lost answer."""
        return self.call(call.StartTransaction(**self.start_fields))

    def meter_values(self, wh):
        self.meter = wh
        sample = {"value": str(wh), "measurand": "Energy.Active.Import.Register", "unit": "Wh"}
        values = [{"timestamp": now(), "sampledValue": [sample]}]
        return self.call(call.MeterValues(connector_id=1, transaction_id=self.transaction_id, meter_value=values))

    def stop_transaction(self, wh=None, reason="Local"):
        if wh is not None:
            self.meter = wh
        return self.run(self.stop_transaction_async(self.transaction_id, reason))

    async def stop_transaction_async(self, transaction_id, reason):
        self.stop_fields = dict(meter_stop=self.meter, timestamp=now(), transaction_id=transaction_id, reason=reason)
        return await self.client.call(call.StopTransaction(**self.stop_fields), suppress=False)

    def resend_stop(self):
        return self.call(call.StopTransaction(**self.stop_fields))
