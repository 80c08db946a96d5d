"""OCPP 1.6J chargers for ``bench scale --ocpp N``, in a process of their own: each a WebSocket to
central's OCPP endpoint, played by the ``ocpp`` package's own client (``ocpp.v16.ChargePoint``).

    python -m bench.ocpp_chargers --url ws://127.0.0.1:PORT --count N --control SOCKET

Charger i (``OCPP00001`` …) boots and reports Available; central's RemoteStartTransaction is
accepted and followed by a StartTransaction (meter 0); while supplying, one MeterValues a second
adds 10 Wh (0.01 kWh, as the bench's engines do), one ticker sweeping 1/20 of the chargers every
50 ms. A charger whose socket drops (central killed or stopped) connects again every 0.5 s and goes
on without a new boot, as real ones do.

To the parent (JSON lines on ``--control``, batched every 50 ms): ``{"ready": [i]}`` when a
charger is Available, ``{"sent": [[i, n, t]]}`` for its n-th MeterValues sent at monotonic time
t, ``{"final": [[i, wh]]}`` once its StopTransaction is answered. From the parent:
``{"end": true}`` (stop every transaction, reason Local) and ``{"close": true}``.
"""

import argparse
import asyncio
import contextlib
import datetime
import json
import logging
import sys
import time

import aiohttp
from ocpp.routing import after, on
from ocpp.v16 import ChargePoint, call, call_result
from ocpp.v16.enums import Action, RemoteStartStopStatus

SLICES = 20
WH_STEP = 10  # Wh per MeterValues: 0.01 kWh
CONNECT_AGAIN = 0.5  # seconds between attempts while central is away


def charger_id(index):
    return f"OCPP{index:05d}"


def now():
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class Socket:
    def __init__(self, ws):
        self.ws = ws

    async def recv(self):
        message = await self.ws.receive()
        if message.type != aiohttp.WSMsgType.TEXT:
            raise ConnectionError("socket closed")
        return message.data

    async def send(self, text):
        await self.ws.send_str(text)


class Client(ChargePoint):
    def __init__(self, sim, socket):
        super().__init__(sim.id, socket, response_timeout=30)
        self.sim = sim

    @on(Action.remote_start_transaction)
    def on_remote_start(self, id_tag, **_):
        return call_result.RemoteStartTransaction(status=RemoteStartStopStatus.accepted)

    @after(Action.remote_start_transaction)
    async def after_remote_start(self, id_tag, **_):
        await self.sim.start(id_tag)

    @on(Action.remote_stop_transaction)
    def on_remote_stop(self, transaction_id):
        return call_result.RemoteStopTransaction(status=RemoteStartStopStatus.accepted)

    @after(Action.remote_stop_transaction)
    async def after_remote_stop(self, transaction_id):
        await self.sim.stop("Remote")


class SimCharger:
    def __init__(self, index, fleet):
        self.index, self.id, self.fleet = index, charger_id(index), fleet
        self.client = None
        self.transaction_id = None
        self.meter = 0
        self.readings = 0  # MeterValues sent in this transaction
        self.booted = False

    @property
    def connected(self):
        return self.client is not None

    async def run(self):
        """Connected, or connecting again, until the bench closes."""
        while not self.fleet.closing:
            try:
                async with self.fleet.session.ws_connect(f"{self.fleet.url}/ocpp/{self.id}", protocols=("ocpp1.6",)) as ws:
                    self.client = Client(self, Socket(ws))
                    reader = asyncio.ensure_future(self.client.start())
                    if not self.booted:
                        await self.client.call(call.BootNotification(charge_point_model="bench", charge_point_vendor="EVCharging"))
                        await self.client.call(call.StatusNotification(connector_id=1, error_code="NoError", status="Available"))
                        self.booted = True
                        self.fleet.out["ready"].append(self.index)
                    with contextlib.suppress(ConnectionError, asyncio.CancelledError):
                        await reader
            except (aiohttp.ClientError, OSError, TimeoutError, ConnectionError):
                self.fleet.stats["connect_errors"] += 1
            self.client = None
            if not self.fleet.closing:
                self.fleet.stats["reconnects"] += 1
                await asyncio.sleep(CONNECT_AGAIN)

    async def start(self, id_tag):
        if self.transaction_id is not None:
            return
        answer = await self.client.call(call.StartTransaction(connector_id=1, id_tag=id_tag, meter_start=self.meter, timestamp=now()))
        self.transaction_id, self.readings, self.start_meter = answer.transaction_id, 0, self.meter

    def tick(self):
        if self.transaction_id is None or not self.connected:
            return
        self.meter += WH_STEP
        self.readings += 1
        self.fleet.out["sent"].append([self.index, self.readings, time.monotonic()])
        sample = {"value": str(self.meter), "measurand": "Energy.Active.Import.Register", "unit": "Wh"}
        values = [{"timestamp": now(), "sampledValue": [sample]}]
        self.fleet.spawn(self.client.call(call.MeterValues(connector_id=1, transaction_id=self.transaction_id, meter_value=values)))

    async def stop(self, reason):
        deadline = time.monotonic() + 30
        while self.transaction_id is not None and not self.connected and time.monotonic() < deadline:
            await asyncio.sleep(0.1)  # central is away (killed, restarting): stop once connected again
        if self.transaction_id is None or not self.connected:
            return
        transaction_id, self.transaction_id = self.transaction_id, None
        await self.client.call(call.StopTransaction(meter_stop=self.meter, timestamp=now(), transaction_id=transaction_id, reason=reason))
        self.fleet.out["final"].append([self.index, self.meter - self.start_meter])


class ChargerFleet:
    def __init__(self, url, count, writer):
        self.url, self.writer = url, writer
        self.chargers = [SimCharger(i, self) for i in range(1, count + 1)]
        self.slices = [self.chargers[s::SLICES] for s in range(SLICES)]
        self.out = {"ready": [], "sent": [], "final": []}
        self.stats = {"connect_errors": 0, "reconnects": 0, "call_errors": 0}
        self.closing = False
        self.session = None
        self.tasks = set()

    def spawn(self, coroutine):
        task = asyncio.ensure_future(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self._done)

    def _done(self, task):
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            self.stats["call_errors"] += 1

    def flush(self):
        batch = {k: v for k, v in self.out.items() if v}
        if batch:
            self.writer.write(json.dumps(batch, separators=(",", ":")).encode() + b"\n")
            self.out = {"ready": [], "sent": [], "final": []}

    async def ticker(self):
        started, n = time.monotonic(), 0
        while True:
            n += 1
            await asyncio.sleep(max(0.0, started + n / SLICES - time.monotonic()))
            for charger in self.slices[n % SLICES]:
                charger.tick()
            self.flush()
            if n % SLICES == 0:
                self.writer.write(json.dumps({"status": self.stats}).encode() + b"\n")

    async def end(self):
        await asyncio.gather(*(c.stop("Local") for c in self.chargers), return_exceptions=True)
        self.flush()


async def amain(args):
    logging.getLogger("ocpp").setLevel(logging.ERROR)
    reader, writer = await asyncio.open_unix_connection(args.control)
    fleet = ChargerFleet(args.url, args.count, writer)
    fleet.session = aiohttp.ClientSession()
    tasks = [asyncio.ensure_future(c.run()) for c in fleet.chargers] + [asyncio.ensure_future(fleet.ticker())]
    try:
        while line := await reader.readline():
            command = json.loads(line)
            if command.get("end"):
                fleet.spawn(fleet.end())
            if command.get("close"):
                break
    finally:
        fleet.closing = True
        for task in tasks + list(fleet.tasks):
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await fleet.session.close()
        with contextlib.suppress(Exception):
            fleet.flush()
            await writer.drain()
            writer.close()


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.ocpp_chargers", description=__doc__.split("\n")[0])
    parser.add_argument("--url", required=True, help="central's OCPP endpoint, ws://127.0.0.1:PORT")
    parser.add_argument("--count", type=int, required=True)
    parser.add_argument("--control", required=True)
    args = parser.parse_args(argv)
    if not args.url.startswith(("ws://127.", "ws://localhost")):
        parser.error("--url must be a loopback address")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(amain(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
