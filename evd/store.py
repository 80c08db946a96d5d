"""The network's database (DESIGN.md §7): CPs, drivers and supply sessions in SQLite, via sqlite-utils.

The schema is versioned (``PRAGMA user_version``) and migrates forward; a newer database
than this code knows is refused. Session changes are kept in memory and written in one
transaction by :meth:`Store.flush`, which the role calls before stream positions are
committed, so that nothing acknowledged is lost on a crash.
"""

import contextlib
import logging
import pathlib
import sqlite3

from .errors import EvdError
from .sessions import COLUMNS, Session, stored_values

log = logging.getLogger(__name__)

#: The sessions table's columns: the stored fields of evd.sessions.Session.
SESSION_COLUMNS = COLUMNS
CP_COLUMNS = ("id", "location", "price", "city", "stopped", "registered_at")


def _upsert_sql(table, columns):
    """One prepared INSERT … ON CONFLICT for executemany (sqlite-utils' upsert_all costs 10x more per row)."""
    updates = ", ".join(f"{c} = excluded.{c}" for c in columns if c != "id")
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({', '.join('?' * len(columns))}) ON CONFLICT (id) DO UPDATE SET {updates}"


UPSERT_SESSION = _upsert_sql("sessions", tuple(SESSION_COLUMNS))
UPSERT_CP = _upsert_sql("cps", CP_COLUMNS)


def _migrate_1(db):
    db["cps"].create(
        {"id": str, "location": str, "price": float, "city": str, "stopped": int, "registered_at": str},
        pk="id",
    )
    db["drivers"].create({"id": str, "first_seen": str, "last_seen": str}, pk="id")
    # Schema version 1 as it was released: a field added to Session since needs a migration of its
    # own (tests/unit/test_store.py checks that the migrated table has every stored field).
    sessions = {"id": str, "request_id": str, "cp": str, "driver": str, "origin": str, "price": float, "kwh_requested": float}
    sessions |= {"status": str, "reason": str, "requested_at": str, "started_at": str, "ended_at": str}
    sessions |= {"kwh": float, "eur": float, "last_seq": int}
    db["sessions"].create(sessions, pk="id", not_null={"cp", "status"})
    db["sessions"].create_index(["request_id"], unique=True)
    db["sessions"].create_index(["cp", "status"])
    db["sessions"].create_index(["driver"])


def _migrate_2(db):
    """The extras' tables (registry, crypto, audit), which their plugins used to create themselves:
    if_not_exists, because databases of release 1 have them already, with their rows."""
    db["credentials"].create({"cp": str, "salt": str, "hash": str, "issued_at": str, "revoked_at": str}, pk="cp", if_not_exists=True)
    db["cp_keys"].create({"cp": str, "key": str, "issued_at": str, "revoked_at": str}, pk="cp", if_not_exists=True)
    db["audit"].create(
        {"id": int, "time": str, "category": str, "source": str, "action": str, "parameters": str, "outcome": str},
        pk="id",
        if_not_exists=True,
    )
    db["audit"].create_index(["time"], if_not_exists=True)


def _migrate_3(db):
    """API tokens (evd.api.tokens): their names and SHA-256 hashes, never the tokens."""
    db["api_tokens"].create({"name": str, "hash": str, "created_at": str, "revoked_at": str}, pk="name")


def _migrate_4(db):
    """OCPP transactions (evd.ocpp.transactions): a charger's integer transactionId for each session it
    started, with the meter reading it started from, so that a resent message finds it again."""
    columns = {"id": int, "cp": str, "connector": int, "id_tag": str, "meter_start": int, "started_at": str, "session": str}
    db["ocpp_transactions"].create(columns | {"meter_stop": int, "stopped_at": str}, pk="id")
    db["ocpp_transactions"].create_index(["cp", "connector", "started_at", "id_tag", "meter_start"], unique=True)
    db["ocpp_transactions"].create_index(["session"])


#: Migrations in order; the database's user_version is how many have run. Every table of
#: central.db comes from here, the extras' included.
MIGRATIONS = (_migrate_1, _migrate_2, _migrate_3, _migrate_4)


def open_database(path):
    """A connection (sqlite-utils) to central's database at ``path``, its schema migrated to this evd's.

    Central's store and each extra that keeps tables there (registry, keys, audit) open their own.
    """
    path = pathlib.Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(str(path), isolation_level=None, check_same_thread=False)
        import sqlite_utils  # central's alone: about 14 MB that other roles never load

        db = sqlite_utils.Database(conn)
        db.execute("PRAGMA busy_timeout = 5000")
        db.execute("PRAGMA journal_mode = WAL")
        db.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL: a process crash loses nothing committed
        _migrate(db, path)
    except sqlite3.DatabaseError as e:
        raise EvdError(f"cannot open database {path}: {e}") from None
    except OSError as e:  # its directory cannot be made: an ordinary user and a system path
        raise EvdError(f"cannot open database {path}: {e.filename}: {e.strerror}") from None
    return db


def _migrate(db, path):
    version = db.execute("PRAGMA user_version").fetchone()[0]
    if version > len(MIGRATIONS):
        raise EvdError(f"database {path} has schema version {version}, newer than this evd knows ({len(MIGRATIONS)})")
    for number, migration in enumerate(MIGRATIONS[version:], start=version + 1):
        db.execute("BEGIN IMMEDIATE")
        try:
            if db.execute("PRAGMA user_version").fetchone()[0] >= number:  # another connection just did it
                db.execute("ROLLBACK")
                continue
            migration(db)
            db.execute(f"PRAGMA user_version = {number}")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")
        log.info("database %s migrated to schema version %d", path, number)


class Store:
    def __init__(self, path):
        self.path = pathlib.Path(path)
        self.db = open_database(self.path)
        self._dirty_sessions = {}
        self._dirty_requests = {}  # request id -> session id, for the sessions not written yet
        self._dirty_cps = {}
        self._dirty_drivers = {}

    @contextlib.contextmanager
    def transaction(self):
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    # -- reads ------------------------------------------------------------------------

    def cps(self):
        return list(self.db["cps"].rows_where(order_by="id"))

    def open_sessions(self):
        return [Session.from_row(row) for row in self.db["sessions"].rows_where("status IN ('AUTHORIZED', 'SUPPLYING')")]

    def session_by_request(self, request_id):
        """The session a request became (a Session of its own: changes need save_session), or None."""
        pending = self._dirty_requests.get(request_id)
        if pending is not None:
            return Session.from_values(self._dirty_sessions[pending])
        return self._one("SELECT * FROM sessions WHERE request_id = ?", request_id)

    def session(self, session_id):
        if session_id in self._dirty_sessions:
            return Session.from_values(self._dirty_sessions[session_id])
        return self._one("SELECT * FROM sessions WHERE id = ?", session_id)

    def _one(self, sql, *args):
        cursor = self.db.execute(sql, args)
        row = cursor.fetchone()
        return Session.from_row(dict(zip((c[0] for c in cursor.description), row, strict=True))) if row else None

    def sessions(self, active=False, cp=None, driver=None, limit=None):
        self.flush()
        where, args = [], []
        if active:
            where.append("status IN ('AUTHORIZED', 'SUPPLYING')")
        if cp:
            where.append("cp = ?")
            args.append(cp)
        if driver:
            where.append("driver = ?")
            args.append(driver)
        rows = self.db["sessions"].rows_where(" AND ".join(where) or None, args, order_by="requested_at DESC, rowid DESC", limit=limit)
        return [Session.from_row(row) for row in rows]

    # -- writes (batched) ---------------------------------------------------------------

    def save_session(self, session):
        self._dirty_sessions[session.id] = stored_values(session)  # a copy: later changes need another save
        if session.request_id is not None:
            self._dirty_requests[session.request_id] = session.id

    def save_cp(self, cp):
        self._dirty_cps[cp["id"]] = dict(cp)

    def save_driver(self, driver_id, seen_at):
        self._dirty_drivers[driver_id] = seen_at

    def drivers(self):
        self.flush()
        return list(self.db["drivers"].rows_where(order_by="id"))

    def add_driver(self, driver_id, at):
        """Register ``driver_id`` now (not batched); False if it was registered already."""
        self.flush()
        with self.transaction():
            cursor = self.db.execute("INSERT INTO drivers (id, first_seen) VALUES (?, ?) ON CONFLICT (id) DO NOTHING", [driver_id, at])
        return cursor.rowcount == 1

    def remove_driver(self, driver_id):
        """Forget ``driver_id`` (its sessions stay); False if it was not registered."""
        self._dirty_drivers.pop(driver_id, None)  # a pending "seen" must not bring it back
        self.flush()
        with self.transaction():
            cursor = self.db.execute("DELETE FROM drivers WHERE id = ?", [driver_id])
        return cursor.rowcount == 1

    def delete_cp(self, cp_id):
        self.flush()
        with self.transaction():
            self.db.execute("DELETE FROM cps WHERE id = ?", [cp_id])

    def flush(self):
        """Write every pending change in one transaction."""
        if not (self._dirty_sessions or self._dirty_cps or self._dirty_drivers):
            return
        sessions, cps, drivers = self._dirty_sessions, self._dirty_cps, self._dirty_drivers
        self._dirty_sessions, self._dirty_cps, self._dirty_drivers = {}, {}, {}
        requests, self._dirty_requests = self._dirty_requests, {}
        conn = self.db.conn
        try:
            with self.transaction():
                if sessions:
                    conn.executemany(UPSERT_SESSION, list(sessions.values()))
                if cps:
                    conn.executemany(UPSERT_CP, [tuple(cp.get(c) for c in CP_COLUMNS) for cp in cps.values()])
                if drivers:
                    conn.executemany(
                        "INSERT INTO drivers (id, first_seen, last_seen) VALUES (?, ?, ?) ON CONFLICT (id) DO UPDATE SET last_seen = excluded.last_seen",
                        [(driver_id, seen_at, seen_at) for driver_id, seen_at in drivers.items()],
                    )
        except Exception:
            for request_id, session_id in requests.items():
                self._dirty_requests.setdefault(request_id, session_id)
            # Keep them for the next attempt, unless newer versions are already waiting.
            for target, pending in ((self._dirty_sessions, sessions), (self._dirty_cps, cps), (self._dirty_drivers, drivers)):
                for key, value in pending.items():
                    target.setdefault(key, value)
            raise

    def close(self):
        try:
            self.flush()
        finally:
            self.db.conn.close()
