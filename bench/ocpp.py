"""``bench scale --ocpp N``: N OCPP 1.6J chargers (``bench.ocpp_chargers``, a child process) mixed into the
scale run, with drivers of their own (``OD00001`` …) played by the bench's stream side.

Each charger's driver requests a supply as soon as the charger is Available; central answers with
a RemoteStartTransaction, the charger starts and sends one MeterValues a second. Figures, apart
from the simulated CPs': ``ocpp_auth_ms_*`` (request → ``authorized``), ``ocpp_lag_ms_*`` (a
MeterValues sent in the window → central's ``progress`` event at the driver), and at the end one
ticket per charger whose energy is what its meter counted (``ocpp_tickets_wrong``).
"""

import asyncio
import collections
import contextlib
import json
import time

from evd import messages

from .procs import end_child, start_bench_child
from .support import percentile

KWH_REQUESTED = 500.0


def driver_id(index):
    return f"OD{index:05d}"


class OcppChargers:
    def __init__(self, count, url, root, bus, processes):
        self.count, self.url, self.bus = count, url, bus
        self.path = root / "run" / "ocpp.sock"
        self.proc = self.writer = self.server = None
        processes.add(self)
        self.requested = {}  # index -> (request id, monotonic time)
        self.auth = []
        self.sent = {}  # (index, n) -> monotonic time the n-th MeterValues left
        self.arrived = {}  # (index, seq) -> monotonic time central's progress event came
        self.tickets = collections.Counter()
        self.ticket_kwh = {}
        self.final_kwh = {}  # index -> kWh its meter counted, from its StopTransaction
        self.status = {}
        self.gone = asyncio.Event()

    @property
    def pid(self):
        return self.proc.pid if self.proc else None

    async def start(self):
        attached = asyncio.Event()

        async def on_child(reader, writer):
            self.writer = writer
            attached.set()
            try:
                while line := await reader.readline():
                    self.on_message(json.loads(line))
            finally:
                self.gone.set()

        self.server = await asyncio.start_unix_server(on_child, path=str(self.path), limit=2**24)
        command = ["--url", self.url, "--count", str(self.count), "--control", str(self.path)]
        self.proc = start_bench_child("bench.ocpp_chargers", *command)
        await asyncio.wait_for(attached.wait(), 30)

    def on_message(self, message):
        for index in message.get("ready", ()):
            self.request(index)
        for index, n, at in message.get("sent", ()):
            self.sent[index, n] = at
        for index, wh in message.get("final", ()):
            self.final_kwh[index] = wh / 1000
        if "status" in message:
            self.status = message["status"]

    def request(self, index):
        driver = driver_id(index)
        request = messages.make("request", driver=driver, cp=f"OCPP{index:05d}", kwh=KWH_REQUESTED, expires_at=None)
        self.requested[index] = (request["id"], time.monotonic())
        self.bus.publish("driver.requests", driver, request)

    def on_event(self, message, key):
        """driver.events for the OCPP drivers; False if ``key`` is none of theirs."""
        if not key.startswith("OD"):
            return False
        index = int(key[2:])
        kind, now = message["type"], time.monotonic()
        if kind == "authorized" and index in self.requested and message["request_id"] == self.requested[index][0]:
            self.auth.append(now - self.requested[index][1])
        elif kind == "progress":
            self.arrived.setdefault((index, message["seq"]), now)
        elif kind == "ticket":
            self.tickets[index] += 1
            self.ticket_kwh[index] = message["kwh"]
        return True

    def command(self, **command):
        if self.writer is not None and not self.writer.is_closing():
            self.writer.write(json.dumps(command).encode() + b"\n")

    async def end(self, timeout):
        """Every charger stops its transaction; wait for each one's ticket."""
        self.command(end=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not (self.final_kwh and all(self.tickets[i] for i in self.final_kwh)):
            await asyncio.sleep(0.1)

    def figures(self, window):
        lags = sorted(self.arrived[key] - at for key, at in self.sent.items() if key in self.arrived and window[0] <= at <= window[1])
        auth = sorted(self.auth)
        wrong = sum(1 for i, kwh in self.final_kwh.items() if self.tickets[i] != 1 or abs(self.ticket_kwh.get(i, -1) - kwh) > 1e-9)
        return {
            "ocpp": self.count,
            "ocpp_authorized": len(auth),
            "ocpp_auth_ms_p50": _ms(percentile(auth, 0.50)),
            "ocpp_auth_ms_p99": _ms(percentile(auth, 0.99)),
            "ocpp_lag_ms_p50": _ms(percentile(lags, 0.50)),
            "ocpp_lag_ms_p99": _ms(percentile(lags, 0.99)),
            "ocpp_lag_samples": len(lags),
            "ocpp_meter_values_unanswered": sum(1 for key in self.sent if key not in self.arrived),
            "ocpp_tickets": sum(self.tickets.values()),
            "ocpp_tickets_wrong": wrong,
            "ocpp_chargers": self.status,
        }

    async def close(self):
        self.command(close=True)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.gone.wait(), 15)
        await asyncio.to_thread(self.kill)
        if self.server is not None:
            self.server.close()

    def kill(self):
        end_child(self.proc)


def _ms(seconds):
    return round(seconds * 1000, 1) if seconds is not None else None
