"""Central's OCPP 1.6J endpoint: WebSockets at ``/ocpp/{charge_point_id}`` (subprotocol ``ocpp1.6``),
served by aiohttp in central's own event loop, one :class:`~evd.ocpp.charger.Charger` per socket.

Imported only by a central with ``ocpp.enabled``: the ``ocpp`` package and its JSON schemas load
nowhere else.
"""

import asyncio
import logging

from aiohttp import WSMsgType, web

from evd.central.charging_point import CP_ID
from evd.errors import CommandError

from .charger import Charger, Flooded
from .transactions import Transactions

log = logging.getLogger(__name__)

SUBPROTOCOL = "ocpp1.6"
MAX_MESSAGE = 64 * 1024  # bytes: a larger frame closes the socket (1009)
PING_EVERY = 30.0  # seconds: WebSocket pings; a charger that does not answer is disconnected
POLICY_VIOLATION = 1008  # WebSocket close codes: a flood…
INTERNAL_ERROR = 1011  # …and a failure of central's


class Closed(Exception):
    """The charger's socket closed."""


class Connection:
    """The ``ocpp`` package's view of a socket: ``recv()`` text, ``send(text)``."""

    def __init__(self, ws, peer):
        self.ws, self.peer = ws, peer

    async def recv(self):
        while True:
            message = await self.ws.receive()
            if message.type == WSMsgType.TEXT:
                return message.data
            if message.type == WSMsgType.BINARY:  # OCPP-J is text; a binary frame is not OCPP
                return message.data.decode("utf-8", "replace")
            raise Closed(message.extra or message.type.name)

    async def send(self, text):
        if self.ws.closed:
            raise Closed("closed")
        await self.ws.send_str(text)


class Endpoint:
    def __init__(self, daemon, config, network):
        self.daemon, self.config, self.network = daemon, config, network
        self.transactions = Transactions(network.database())
        self.chargers = {}  # cp id -> its Charger connected now
        self.runner = None
        self.app = web.Application()
        self.app.router.add_get("/ocpp/{cp_id}", self._accept)

    async def start(self):
        self.runner = web.AppRunner(self.app, access_log=None, handle_signals=False)
        await self.runner.setup()
        listen = self.config.listen
        await web.TCPSite(self.runner, listen.host, listen.port, reuse_address=True).start()
        self.network.message(f"OCPP 1.6J endpoint on ws://{listen}/ocpp/{{charge_point_id}}")

    async def stop(self):
        for charger in list(self.chargers.values()):
            await charger.link.ws.close()
        if self.runner is not None:
            await self.runner.cleanup()
        self.transactions.close()

    def controller(self, cp_id):
        """What central calls with its orders for ``cp_id``: the charger connected now, if any, carries them out."""

        def control(message):
            charger = self.chargers.get(cp_id)
            if charger is None:
                # Not kept: on its return it is told the operator's stop again (Charger.attach); an end waits out end_grace.
                log.info("OCPP %s is not connected: %s order not sent", cp_id, message["type"])
                return
            charger.order(message)

        return control

    async def _accept(self, request):
        cp_id, peer = request.match_info["cp_id"], request.remote or "?"
        if not CP_ID.match(cp_id):
            self.daemon.audit("SECURITY", peer, "ocpp connection", "refused: invalid charge point id", path=request.path[:100])
            return web.Response(status=404, text="not a valid charge point id\n")
        ws = web.WebSocketResponse(protocols=(SUBPROTOCOL,), heartbeat=PING_EVERY, max_msg_size=MAX_MESSAGE)
        if ws.can_prepare(request).protocol != SUBPROTOCOL:
            self.daemon.audit("SECURITY", peer, "ocpp connection", f"refused: no {SUBPROTOCOL} subprotocol", cp=cp_id)
            return web.Response(status=400, text=f"this endpoint speaks the WebSocket subprotocol {SUBPROTOCOL} only\n")
        await ws.prepare(request)
        charger = Charger(cp_id, Connection(ws, peer), self)
        previous = self.chargers.get(cp_id)
        self.chargers[cp_id] = charger
        if previous is not None:  # the same charger again on a new socket: the old one is dead
            await previous.link.ws.close()
        if self.network.charging_point(cp_id) is not None:
            try:  # known already: it takes part at once, boot or not (a reconnection)
                charger.attach()
            except CommandError:
                pass  # left to its BootNotification
        log.info("OCPP %s connected from %s", cp_id, peer)
        orders = asyncio.ensure_future(charger.carry_out_orders())
        try:
            await charger.start()
        except Closed:
            pass
        except Flooded as e:
            self.daemon.audit("SECURITY", peer, "ocpp connection", f"closed: {e}", cp=cp_id)
            self.network.message(f"OCPP charger {cp_id} at {peer} disconnected: {e}")
            await ws.close(code=POLICY_VIOLATION, message=b"too many calls")
        except Exception:  # a bug of ours: this charger's socket goes, central stays
            log.exception("OCPP %s: closing its socket after an internal error", cp_id)
            await ws.close(code=INTERNAL_ERROR, message=b"internal error")
        finally:
            orders.cancel()
            if self.chargers.get(cp_id) is charger:  # else a newer socket of the same charger took over
                del self.chargers[cp_id]
                if charger.accepted:
                    self.network.disconnect(cp_id, charger.link)
                    self.network.message(f"OCPP charger {cp_id} disconnected")
                    self.daemon.audit("INCIDENT", cp_id, "disconnected", "ocpp connection closed")
        return ws
