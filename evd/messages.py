"""Event-stream payloads (DESIGN.md §4): versioned JSON objects with ``v``, ``type``, ``id`` and ``ts``."""

import datetime
import itertools
import json
import os

SCHEMA_VERSION = 1
ENVELOPE = ("v", "type", "id", "ts")


class MalformedMessage(ValueError):
    """A record that is not a valid message: logged and skipped, never fatal."""


def now_iso():
    return iso(datetime.datetime.now(datetime.UTC))


def iso(when):
    """An aware datetime as messages and the databases write times: UTC, milliseconds, ``Z``."""
    return when.astimezone(datetime.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


class _Ids:
    """Unique message ids, 32 hex digits like a uuid4: a random per-process prefix and a counter.

    A uuid4 per message reads os.urandom each time (a system call that gives up the GIL):
    at 10,000 messages a second that was 8% of central's loop.
    """

    def __init__(self):
        self.reset()
        os.register_at_fork(after_in_child=self.reset)

    def reset(self):
        self.prefix = os.urandom(8).hex()
        self.counter = itertools.count()

    def next(self):
        return f"{self.prefix}{next(self.counter) & 0xFFFFFFFFFFFFFFFF:016x}"


_ids = _Ids()


def make(type_, **fields):
    """A new message of ``type_`` with a fresh id and time stamp."""
    return {"v": SCHEMA_VERSION, "type": type_, "id": _ids.next(), "ts": now_iso(), **fields}


def encode(message):
    return json.dumps(message, separators=(",", ":"), ensure_ascii=False).encode()


def decode(raw):
    """Bytes to a message dict; raises MalformedMessage with a reason."""
    try:
        message = json.loads(raw)
    except (ValueError, TypeError) as e:
        raise MalformedMessage(f"not JSON: {e}") from None
    if not isinstance(message, dict):
        raise MalformedMessage("not a JSON object")
    missing = [k for k in ENVELOPE if k not in message]
    if missing:
        raise MalformedMessage(f"missing {', '.join(missing)}")
    if message["v"] != SCHEMA_VERSION:
        raise MalformedMessage(f"unsupported schema version {message['v']!r}")
    if not isinstance(message["type"], str) or not isinstance(message["id"], str) or not isinstance(message["ts"], str):
        raise MalformedMessage("type, id and ts must be strings")
    return message


# -- the payloads of DESIGN.md §4, by topic and type -------------------------------------

NUMBER = (int, float)
TEXT = str
OPTIONAL_TEXT = (str, type(None))

#: topic -> type -> {field: accepted Python types}; every listed field is required.
SCHEMAS = {
    "driver.requests": {
        "request": {"driver": TEXT, "cp": TEXT, "kwh": NUMBER, "expires_at": OPTIONAL_TEXT},
        "cps_request": {"driver": TEXT},
        "history_request": {"driver": TEXT},
        "cancel": {"driver": TEXT, "session": TEXT, "cp": TEXT},
    },
    "driver.events": {
        "history": {"driver": TEXT, "sessions": list},
        "authorized": {"request_id": TEXT, "session": TEXT, "cp": TEXT, "driver": TEXT, "price": NUMBER, "kwh_requested": NUMBER},
        "denied": {"request_id": TEXT, "cp": TEXT, "driver": TEXT, "reason": TEXT},
        "progress": {"session": TEXT, "cp": TEXT, "driver": TEXT, "kwh": NUMBER, "eur": NUMBER, "seq": int},
        "ticket": {
            "session": TEXT,
            "cp": TEXT,
            "driver": TEXT,
            "kwh": NUMBER,
            "eur": NUMBER,
            "price": NUMBER,
            "status": TEXT,
            "reason": OPTIONAL_TEXT,
            "started_at": OPTIONAL_TEXT,
            "ended_at": OPTIONAL_TEXT,
        },
    },
    "cp.commands": {
        "sealed": {"cp": TEXT, "nonce": TEXT, "data": TEXT},
        "authorize": {"session": TEXT, "cp": TEXT, "driver": TEXT, "price": NUMBER, "kwh_requested": NUMBER, "request_id": TEXT},
        "denied": {"request_id": TEXT, "cp": TEXT, "driver": TEXT, "reason": TEXT},
        "stop": {"cp": TEXT, "reason": OPTIONAL_TEXT},
        "resume": {"cp": TEXT},
        "end": {"session": TEXT, "cp": TEXT, "reason": TEXT},
    },
    "cp.telemetry": {
        "sealed": {"cp": TEXT, "nonce": TEXT, "data": TEXT},
        "started": {"session": TEXT, "cp": TEXT, "driver": TEXT},
        "progress": {"session": TEXT, "cp": TEXT, "driver": TEXT, "kwh": NUMBER, "eur": NUMBER, "seq": int},
        "ended": {
            "session": TEXT,
            "cp": TEXT,
            "driver": TEXT,
            "kwh": NUMBER,
            "eur": NUMBER,
            "seq": int,
            "status": TEXT,
            "reason": OPTIONAL_TEXT,
        },
        "manual_request": {"cp": TEXT, "driver": TEXT, "kwh": NUMBER},
    },
    "central.status": {
        "heartbeat": {"cps": int, "connected": int},
        "cp_state": {"cp": dict},
        "cps": {"items": list, "part": int, "parts": int},
    },
}


def check(topic, message):
    """Return ``message`` if its type belongs on ``topic`` with every field well typed; else raise."""
    fields = SCHEMAS[topic].get(message["type"])
    if fields is None:
        raise MalformedMessage(f"unknown type {message['type']!r} on {topic}")
    for name, types in fields.items():
        if name not in message:
            raise MalformedMessage(f"{message['type']}: missing field {name!r}")
        value = message[name]
        if not isinstance(value, types) or (isinstance(value, bool) and bool not in _as_tuple(types)):
            raise MalformedMessage(f"{message['type']}: field {name!r} has the wrong type ({type(value).__name__})")
        if isinstance(value, float) and value != value:
            raise MalformedMessage(f"{message['type']}: field {name!r} is not a number")
    return message


def _as_tuple(types):
    return types if isinstance(types, tuple) else (types,)
