"""The API's HTTP server: aiohttp in central's own event loop (no thread, no second loop).

Imported only by a central whose API is on: aiohttp costs ~0.2 s and ~10 MB at import.
"""

import asyncio
import functools
import importlib.resources
import json
import logging

from aiohttp import web

from ..tls import server_context
from . import openapi
from .routes import READ, ROUTES, ApiError

log = logging.getLogger(__name__)

MAX_BODY = 64 * 1024  # bytes (§9: 413 above)
IDLE_TIMEOUT = 15  # seconds a connection may stay silent, before or between requests (aiohttp's keep-alive timeout)
EVENTS_EVERY = 0.1  # seconds between event-stream messages at most (the control socket's watch pace)
#: HTTP status of each control error code (DESIGN.md §9; what evctl exits 4 with is 409 or 404).
STATUS_OF = {
    "bad_request": 400,
    "bad_args": 422,
    "unknown_command": 404,
    "not_found": 404,
    "refused": 409,
    "not_permitted": 403,
    "unavailable": 409,
    "timeout": 504,
    "internal": 500,
}


def error(status, code, message):
    return web.json_response({"error": {"code": code, "message": message}}, status=status)


class ApiServer:
    def __init__(self, daemon, config, tokens, weather_alert):
        self.daemon, self.config, self.tokens = daemon, config, tokens
        self.weather_alert = weather_alert  # (city, alert, celsius, source) -> result
        self.runner = None
        self.app = web.Application(client_max_size=MAX_BODY, middlewares=[self._errors])
        # Routes the server answers itself, by path; every other route runs its command.
        self._own = {
            "/api/events": self._events,
            "/api/openapi.json": self._openapi,
            "/api/weather_alert": self._weather_alert,
            "/": self._panel,
        }
        for route in ROUTES:
            self.app.router.add_route(route.method, route.path, self._handler(route))

    async def start(self):
        listen, tls = self.config.listen, self.config.tls
        context = None
        if tls.cert is not None:
            context = server_context(tls, "api.tls")
        # aiohttp hangs up on a connection silent for keepalive_timeout, a half-sent request too.
        self.runner = web.AppRunner(self.app, access_log=None, keepalive_timeout=IDLE_TIMEOUT, shutdown_timeout=2)
        await self.runner.setup()
        site = web.TCPSite(self.runner, listen.host, listen.port, ssl_context=context, reuse_address=True)
        await site.start()
        scheme = "https" if context else "http"
        log.info("API served on %s://%s", scheme, listen)

    async def stop(self):
        if self.runner is not None:
            await self.runner.cleanup()

    # -- the middleware: every failure is JSON ------------------------------------------------

    @web.middleware
    async def _errors(self, request, handler):
        try:
            return await handler(request)
        except ApiError as e:
            return error(e.status, e.code, e.message)
        except web.HTTPException as e:  # aiohttp's own: unknown route, wrong method, body too large
            if e.status < 400:
                raise
            code = {404: "not_found", 405: "bad_request", 413: "too_large"}.get(e.status, "bad_request")
            message = {404: f"no route {request.method} {request.path}", 413: f"the body is over {MAX_BODY // 1024} KiB"}
            return error(e.status, code, message.get(e.status, e.reason))
        except asyncio.CancelledError:
            raise
        except Exception:
            log.exception("API: %s %s failed", request.method, request.path)
            return error(500, "internal", "internal error (logged at central)")

    # -- routes -----------------------------------------------------------------------------------

    def _handler(self, route):
        own = self._own.get(route.path)

        async def handle(request):
            holder = self._authenticate(request, route)
            if own is not None:
                return await own(request, route, holder)
            args = route.arguments(dict(request.match_info), request.query, await self._body(request, route))
            source = f"api token {holder} from {request.remote}" if holder else f"api from {request.remote}"
            reply = await self.daemon.dispatcher.dispatch({"cmd": route.command, "args": args}, source=source)
            if not reply["ok"]:
                e = reply["error"]
                return error(STATUS_OF.get(e["code"], 500), e["code"], e["message"])
            result = reply["result"]
            if route.answer is not None:
                result = route.answer(result, dict(request.match_info), args)
            return web.json_response(result, status=route.status, dumps=_dumps)

        return handle

    def _authenticate(self, request, route):
        """The name of the caller's token; None where none is needed and none is given."""
        header = request.headers.get("Authorization")
        needed = route.access != READ or not self.config.public_read
        if header is None:
            if needed:
                raise ApiError(401, "no_token", "this needs a token: Authorization: Bearer TOKEN (evctl api token add NAME)")
            return None
        scheme, _, token = header.partition(" ")
        holder = self.tokens.holder(token.strip()) if scheme.lower() == "bearer" and token.strip() else None
        if holder is None:
            self.daemon.audit("SECURITY", str(request.remote), "api call", "refused: unknown or revoked token", route=route.path)
            raise ApiError(403, "bad_token", "unknown or revoked token")
        return holder

    async def _body(self, request, route):
        if route.body is None:
            return None
        raw = await request.read()  # over client_max_size: 413
        try:
            return json.loads(raw) if raw else None
        except (ValueError, UnicodeDecodeError) as e:
            raise ApiError(400, "bad_request", f"malformed JSON: {e}") from None

    async def _weather_alert(self, request, route, holder):
        args = route.arguments({}, request.query, await self._body(request, route))
        result = self.weather_alert(**args, source=f"api token {holder} from {request.remote}")
        return web.json_response(result)

    async def _panel(self, request, route, holder):
        page = _panel_page()
        # Everything comes from here: the page may load nothing from anywhere else.
        policy = "default-src 'self'; script-src 'self' 'unsafe-inline'; style-src 'self' 'unsafe-inline'; connect-src 'self'"
        return web.Response(body=page, content_type="text/html", charset="utf-8", headers={"Content-Security-Policy": policy})

    async def _openapi(self, request, route, holder):
        return web.json_response(openapi.document(ROUTES, self.daemon.config.name))

    async def _events(self, request, route, holder):
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-cache"})
        await response.prepare(request)
        state = self.daemon.state
        watcher = state.watch()
        try:
            await response.write(_event("snapshot", state.snapshot()))
            while True:
                await watcher.changed.wait()
                kind, payload = watcher.take()
                await response.write(_event(kind, payload if kind == "snapshot" else {"ops": payload}))
                await asyncio.sleep(EVENTS_EVERY)
        except ConnectionError:
            pass  # the client went away
        finally:
            watcher.close()  # also when central stops and cancels this handler
        return response


@functools.cache
def _panel_page():
    """The web panel, read from the package once."""
    return importlib.resources.files("evd.api").joinpath("static", "panel.html").read_bytes()


def _event(kind, data):
    return f"event: {kind}\ndata: {_dumps(data)}\n\n".encode()


def _dumps(value):
    return json.dumps(value, ensure_ascii=False, default=str)
