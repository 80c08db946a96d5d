"""The audit log (R21): every security-relevant or operational event, queryable with ``evctl audit``.

Records arrive through the ``evd_audit`` hook and are kept in central's database, written
in batches by a timer so that no supply ever waits for them. Central's own errors (what it logs
as errors, and the records it skips as malformed) become ``ERROR`` records too, at most one a
minute for each kind. Turn it off with ``audit: {enabled: false}``.
"""

import asyncio
import datetime
import functools
import json
import logging
import sqlite3
import time

import attrs

import evd
from evd import messages
from evd.central import network_of
from evd.commands import Arg, CommandSpec
from evd.errors import CommandError
from evd.pluginmanager import PerDaemon

log = logging.getLogger(__name__)

FLUSH_EVERY = 0.5
MAX_BUFFER = 50_000  # kept while the database is unwritable; past it the oldest are dropped

REPEAT_EVERY = 60.0  # seconds: the same kind of error is recorded again only after this, with a count
_logs = PerDaemon()  # central daemon -> its AuditLog
_error_handlers = PerDaemon()  # central daemon -> its ErrorRecords on the "evd" logger

COMMANDS = [
    CommandSpec(
        ("audit",),
        "the audit log, newest first",
        role="central",
        args=(
            Arg("--since", "only records at or after this time", metavar="ISO8601"),
            Arg("--limit", "at most this many records", type=int, metavar="N", default=100),
        ),
        columns=("time", "category", "source", "action", "outcome", "parameters"),
    ),
]


@attrs.frozen
class AuditConfig:
    enabled: bool = True


class AuditLog:
    def __init__(self, db):
        self.db = db  # central's database (the audit table is in its schema)
        self.buffer = []

    def add(self, record):
        self.buffer.append({**record, "parameters": json.dumps(record.get("parameters") or {}, default=str)})
        del self.buffer[:-MAX_BUFFER]

    def flush(self):
        if not self.buffer:
            return
        rows, self.buffer = self.buffer, []
        try:
            self.db.execute("BEGIN IMMEDIATE")
            self.db["audit"].insert_all(rows)
            self.db.execute("COMMIT")
        except sqlite3.Error as e:
            if self.db.conn.in_transaction:
                self.db.execute("ROLLBACK")
            self.buffer[:0] = rows
            log.error("audit records not written yet (%s); will retry", e)

    def query(self, since=None, limit=100):
        self.flush()
        where, args = ("time >= ?", [since]) if since else (None, [])
        rows = self.db["audit"].rows_where(where, args, order_by="id DESC", limit=limit)
        return [{**{k: v for k, v in row.items() if k != "id"}, "parameters": json.loads(row["parameters"])} for row in rows]

    def close(self):
        self.flush()
        self.db.conn.close()


class ErrorRecords(logging.Handler):
    """Central's errors, and the warnings marked ``extra={"audit": True}``, as ERROR records of the audit log."""

    def __init__(self, daemon, loop):
        super().__init__(logging.WARNING)
        self.daemon, self.loop = daemon, loop
        self.seen = {}  # (logger, message template) -> (monotonic time recorded, repeats since)

    def emit(self, record):
        if (record.levelno < logging.ERROR and not getattr(record, "audit", False)) or record.name == __name__:
            return  # never about the audit log itself: a failing database must not feed on its own errors
        key, now = (record.name, record.msg), time.monotonic()
        last, repeats = self.seen.get(key, (None, 0))
        if last is not None and now - last < REPEAT_EVERY:
            self.seen[key] = (last, repeats + 1)
            return
        self.seen[key] = (now, 0)
        parameters = {"level": record.levelname.lower()} | ({"repeated": repeats} if repeats else {})
        source = record.name.removeprefix("evd.")
        audit = functools.partial(self.daemon.audit, "ERROR", source, record.getMessage()[:500], "logged", **parameters)
        try:  # Kafka's threads log too: the record is made on central's loop
            self.loop.call_soon_threadsafe(audit)
        except RuntimeError:
            pass  # the loop is closed: central is stopping
        except Exception:
            self.handleError(record)  # logging's way: a broken handler never breaks the code that logs


def _log_of(daemon):
    """Central's audit log, opened on first use (records may come before start-up ends)."""
    network = network_of(daemon)
    if network is None or not _enabled(daemon):
        return None
    audit = _logs.get(daemon)
    if audit is None:
        audit = _logs[daemon] = AuditLog(network.database())
        daemon.spawn(_flusher(audit))
    return audit


def _enabled(daemon):
    section = daemon.config.sections.get("audit")
    return section is None or section.enabled


async def _flusher(audit):
    while True:
        await asyncio.sleep(FLUSH_EVERY)
        audit.flush()


@evd.hookimpl
def evd_config_sections():
    return {"audit": AuditConfig}


@evd.hookimpl
def evd_register_commands():
    return COMMANDS


@evd.hookimpl
def evd_audit(daemon, record):
    audit = _log_of(daemon)
    if audit is not None:
        audit.add(record)


@evd.hookimpl
def evd_startup(daemon):
    if network_of(daemon) is not None and _enabled(daemon):
        handler = _error_handlers[daemon] = ErrorRecords(daemon, asyncio.get_running_loop())
        logging.getLogger("evd").addHandler(handler)


@evd.hookimpl
def evd_shutdown(daemon):
    handler = _error_handlers.pop(daemon, None)
    if handler is not None:
        logging.getLogger("evd").removeHandler(handler)
    audit = _logs.pop(daemon, None)
    if audit is not None:
        audit.close()


@evd.hookimpl
def evd_control_commands(daemon):
    if daemon.role_name != "central":
        return None

    def query(args, ctx):
        audit = _log_of(daemon)
        if audit is None:
            raise CommandError("unavailable", "the audit log is turned off (audit.enabled: false)")
        limit = args.get("limit") or 100
        if not isinstance(limit, int) or limit < 1:
            raise CommandError("bad_args", "--limit must be a positive whole number")
        return audit.query(_since(args.get("since")), limit)

    return {"audit": query}


def _since(text):
    """``--since`` as stored times are written (UTC, ``…T10:00:00.000Z``), so they compare as text.

    Any ISO 8601 form Python reads is accepted; a time without an offset is taken as UTC.
    """
    if not text:
        return None
    try:
        when = datetime.datetime.fromisoformat(text)
    except (TypeError, ValueError):
        raise CommandError("bad_args", f"--since: not an ISO 8601 date or time: {text!r}") from None
    if when.tzinfo is None:
        when = when.replace(tzinfo=datetime.UTC)
    return messages.iso(when)
