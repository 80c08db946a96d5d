"""Every route of the API as data (DESIGN.md §9): what it runs, what it needs, how its arguments are read.

No aiohttp here: the server (server.py) serves this table and the OpenAPI document (openapi.py)
describes it, so the two cannot disagree. A route runs a control command of central's, through
the same dispatcher as the control socket: the answers are ``--json``'s, field for field.
"""

import math

import attrs

from evd.commands import CP_ID

READ, WRITE, PRIVATE = "read", "write", "private"  # public while api.public_read; a token always; a token always


class ApiError(Exception):
    """An answer other than success: its HTTP status, the error code and message of §9."""

    def __init__(self, status, code, message):
        super().__init__(message)
        self.status, self.code, self.message = status, code, message


@attrs.frozen
class Route:
    method: str
    path: str
    summary: str
    command: str | None  # the control command it runs (None: the server answers it itself)
    access: str = READ
    #: (path parameters, query, body) -> the command's arguments; raises ApiError for bad input.
    arguments: object = None
    status: int = 200
    body: dict | None = None  # the JSON body it takes, as an OpenAPI schema
    #: (the command's result, path parameters, arguments) -> the answer (the default: the result).
    answer: object = None


def no_arguments(params, query, body):
    return {}


def one_cp(params, query, body):
    return {"ids": [_cp_id(params["id"])]}


def every_cp(params, query, body):
    return {"all": True}


def cp_of_path(params, query, body):
    return {"id": _cp_id(params["id"])}


def registration(params, query, body):
    body = _object(body)
    cp_id = _field(body, "id", str, required=True)
    _cp_id(cp_id, status=422)
    price = _field(body, "price_eur_kwh", (int, float), required=True)
    if not math.isfinite(price) or price < 0:
        raise ApiError(422, "bad_args", "price_eur_kwh must be a number of EUR per kWh, not negative")
    return {"id": cp_id, "location": _field(body, "location", str, required=True), "price": float(price), "city": _field(body, "city", str)}


def active_sessions(params, query, body):
    return {"active": True}


def session_filter(params, query, body):
    return {"cp": query.get("cp") or None, "driver": query.get("driver") or None, "limit": _limit(query)}


def audit_query(params, query, body):
    return {"since": query.get("since") or None, "limit": _limit(query) or 100}


def weather_alert(params, query, body):
    body = _object(body)
    city = _field(body, "city", str, required=True)
    alert = _field(body, "alert", bool, required=True)
    celsius = _field(body, "celsius", (int, float))
    if celsius is not None and not math.isfinite(celsius):
        raise ApiError(422, "bad_args", "celsius must be a finite number")
    return {"city": city, "alert": alert, "celsius": celsius}


def new_driver(params, query, body):
    return {"id": _field(_object(body), "id", str, required=True)}


def driver_of_path(params, query, body):
    return {"id": params["id"]}


def first_of_list(result, params, args):
    for item in result:
        if item["id"] == params["id"]:
            return item
    raise ApiError(404, "not_found", f"unknown charging point {params['id']}")


def credential_only(result, params, args):
    return {"id": result["id"], "credential": result["credential"]}


def at_most_limit(result, params, args):
    return result[: args["limit"]] if args.get("limit") else result


def _cp_id(text, status=404):
    if not CP_ID.fullmatch(text or ""):
        raise ApiError(status, "not_found" if status == 404 else "bad_args", f"invalid charging point id {text!r}")
    return text


def _object(body):
    if not isinstance(body, dict):
        raise ApiError(422, "bad_args", "the body must be a JSON object")
    return body


def _field(body, name, types, required=False):
    value = body.get(name)
    if value is None:
        if required:
            raise ApiError(422, "bad_args", f"missing field '{name}'")
        return None
    if not isinstance(value, types) or (types is not bool and isinstance(value, bool)):
        kind = {str: "a string", bool: "true or false"}.get(types, "a number")
        raise ApiError(422, "bad_args", f"'{name}' must be {kind}")
    return value


def _limit(query):
    text = query.get("limit")
    if text in (None, ""):
        return None
    if not text.isdigit() or int(text) < 1:
        raise ApiError(400, "bad_request", f"limit must be a positive whole number, not {text!r}")
    return int(text)


_CP_BODY = {
    "type": "object",
    "required": ["id", "location", "price_eur_kwh"],
    "properties": {
        "id": {"type": "string"},
        "location": {"type": "string"},
        "price_eur_kwh": {"type": "number", "minimum": 0},
        "city": {"type": "string"},
    },
}
_DRIVER_BODY = {"type": "object", "required": ["id"], "properties": {"id": {"type": "string"}}}
_ALERT_BODY = {
    "type": "object",
    "required": ["city", "alert"],
    "properties": {"city": {"type": "string"}, "alert": {"type": "boolean"}, "celsius": {"type": "number"}},
}

#: Static paths before the ones with a parameter: POST /api/charging_points/stop is not a CP named "stop".
ROUTES = (
    Route("GET", "/api/status", "the daemon's status (`status --json`)", "status", arguments=no_arguments),
    Route("GET", "/api/charging_points", "every charging point (`cp list --json`)", "cp.list", arguments=no_arguments),
    Route("POST", "/api/charging_points", "register a charging point; its credential, once (R18)", "cp.register", WRITE,
          registration, status=201, body=_CP_BODY, answer=credential_only),
    Route("POST", "/api/charging_points/stop", "stop every charging point (R13)", "cp.stop", WRITE, every_cp),
    Route("POST", "/api/charging_points/resume", "resume every charging point (R13)", "cp.resume", WRITE, every_cp),
    Route("GET", "/api/charging_points/{id}", "one charging point", "cp.list", arguments=no_arguments, answer=first_of_list),
    Route("DELETE", "/api/charging_points/{id}", "unregister a charging point and revoke its key", "cp.unregister", WRITE, cp_of_path),
    Route("POST", "/api/charging_points/{id}/stop", "stop one charging point (R13)", "cp.stop", WRITE, one_cp),
    Route("POST", "/api/charging_points/{id}/resume", "resume one charging point (R13)", "cp.resume", WRITE, one_cp),
    Route("GET", "/api/supplies", "on-going supplies (`sessions --active --json`)", "sessions", arguments=active_sessions),
    Route("GET", "/api/sessions", "supply sessions, newest first (`sessions --json`); ?cp=&driver=&limit=", "sessions",
          arguments=session_filter, answer=at_most_limit),
    Route("GET", "/api/drivers", "the registered drivers (`drivers list --json`)", "drivers.list", arguments=no_arguments),
    Route("POST", "/api/drivers", "register a driver (R26)", "drivers.add", WRITE, new_driver, status=201, body=_DRIVER_BODY),
    Route("DELETE", "/api/drivers/{id}", "forget a driver", "drivers.remove", WRITE, driver_of_path),
    Route("GET", "/api/audit", "the audit log, newest first (`audit --json`); ?since=&limit=", "audit", PRIVATE, audit_query),
    Route("POST", "/api/weather_alert", "a city's temperature is out of range (alert) or back (R22)", None, WRITE, weather_alert,
          body=_ALERT_BODY),
    Route("GET", "/api/events", "the panel's state as a text/event-stream: a snapshot, then updates", None),
    Route("GET", "/api/openapi.json", "this document", None),
    Route("GET", "/", "the web panel: central's panel in a browser, live (served from the package, no external assets)", None),
)  # fmt: skip
