"""Event-stream payloads (DESIGN.md §4): versioned JSON objects with ``v``, ``type``, ``id`` and ``ts``."""

import datetime
import json
import uuid

SCHEMA_VERSION = 1
ENVELOPE = ("v", "type", "id", "ts")


class MalformedMessage(ValueError):
    """A record that is not a valid message: logged and skipped, never fatal."""


def now_iso():
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def make(type_, **fields):
    """A new message of ``type_`` with a fresh id and time stamp."""
    return {"v": SCHEMA_VERSION, "type": type_, "id": uuid.uuid4().hex, "ts": now_iso(), **fields}


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
