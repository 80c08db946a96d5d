"""``evctl --url``: central's commands over its HTTP API, with the output and exit codes of the socket.

Each command maps to its route of DESIGN.md §9 (the reverse of evd.api.routes); HTTP errors map
back to the control protocol's codes, so evctl prints and exits as it does over the socket. Plain
urllib: evctl loads no HTTP library of its own.
"""

import json
import pathlib
import ssl
import urllib.error
import urllib.parse
import urllib.request

from evd.errors import CommandError, EvdError, UnreachableError

#: HTTP status -> the control protocol's error code (and so evctl's exit status).
CODE_OF = {
    400: "bad_request",
    401: "not_permitted",
    403: "not_permitted",
    404: "not_found",
    409: "refused",
    413: "bad_request",
    422: "bad_args",
}


def _cp_request(verb):
    def request(args):
        if args.get("all"):
            return [("POST", f"/api/charging_points/{verb}", None)]
        return [("POST", f"/api/charging_points/{urllib.parse.quote(cp_id, safe='')}/{verb}", None) for cp_id in args.get("ids") or []]

    return request


def _query(path, **params):
    given = {k: v for k, v in params.items() if v not in (None, "", False)}
    return f"{path}?{urllib.parse.urlencode(given)}" if given else path


#: command -> args -> [(method, path, body)]: the calls that carry it out (several: one per CP id).
REQUESTS = {
    "status": lambda args: [("GET", "/api/status", None)],
    "ping": lambda args: [("GET", "/api/status", None)],
    "cp.list": lambda args: [("GET", "/api/charging_points", None)],
    "cp.stop": _cp_request("stop"),
    "cp.resume": _cp_request("resume"),
    "cp.register": lambda args: [
        (
            "POST",
            "/api/charging_points",
            {"id": args["id"], "location": args.get("location"), "price_eur_kwh": args.get("price"), "city": args.get("city")},
        )
    ],
    "drivers.list": lambda args: [("GET", "/api/drivers", None)],
    "drivers.add": lambda args: [("POST", "/api/drivers", {"id": args["id"]})],
    "drivers.remove": lambda args: [("DELETE", f"/api/drivers/{urllib.parse.quote(args['id'], safe='')}", None)],
    "cp.unregister": lambda args: [("DELETE", f"/api/charging_points/{urllib.parse.quote(args['id'], safe='')}", None)],
    "sessions": lambda args: [
        ("GET", "/api/supplies", None)
        if args.get("active")
        else ("GET", _query("/api/sessions", cp=args.get("cp"), driver=args.get("driver")), None)
    ],
    "audit": lambda args: [("GET", _query("/api/audit", since=args.get("since"), limit=args.get("limit")), None)],
}


class ApiClient:
    """The ControlClient's ``call`` over central's HTTP API."""

    def __init__(self, url, token_file=None, cacert=None):
        self.url = url.rstrip("/")
        if not self.url.startswith(("http://", "https://")):
            raise EvdError(f"--url must start with http:// or https://, not {url!r}")
        self.token = _read_token(token_file) if token_file else None
        self.context = ssl.create_default_context(cafile=str(cacert) if cacert else None) if self.url.startswith("https://") else None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False

    def call(self, cmd, args=None, timeout=10.0):
        build = REQUESTS.get(cmd)
        if build is None:
            raise CommandError("refused", f"'{cmd.replace('.', ' ')}' is not available over the HTTP API; use central's control socket")
        results = [self.request(method, path, body, timeout) for method, path, body in build(args or {})]
        if cmd in ("cp.stop", "cp.resume") and len(results) != 1:  # one call per id: one answer, as the socket gives
            key = "stopped" if cmd == "cp.stop" else "resumed"
            return {key: [cp for result in results for cp in result[key]]}
        result = results[0]
        if cmd == "ping":
            return "pong"
        return result

    def request(self, method, path, body=None, timeout=10.0):
        """One call of the API: its JSON answer; CommandError with the socket's code, or UnreachableError."""
        data = json.dumps(body).encode() if body is not None else None
        request = urllib.request.Request(self.url + path, data=data, method=method, headers={"Content-Type": "application/json"})
        if self.token:
            request.add_header("Authorization", f"Bearer {self.token}")
        try:
            with urllib.request.urlopen(request, timeout=timeout, context=self.context) as answer:
                return json.loads(answer.read() or b"null")
        except urllib.error.HTTPError as e:
            try:
                error = json.loads(e.read())["error"]
                message = error["message"]
            except (ValueError, KeyError, TypeError):
                message = f"HTTP {e.code} {e.reason}"
            raise CommandError(CODE_OF.get(e.code, "internal"), message) from None
        except (urllib.error.URLError, OSError) as e:
            reason = getattr(e, "reason", e)
            raise UnreachableError(f"cannot reach central's API at {self.url}: {reason}") from None


def _read_token(path):
    try:
        token = pathlib.Path(path).read_text().strip()
    except OSError as e:
        raise EvdError(f"cannot read the token file {path}: {e.strerror}") from None
    if not token:
        raise EvdError(f"the token file {path} is empty")
    return token
