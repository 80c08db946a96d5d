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
from .sessions import COLUMNS, Session

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


#: Migrations in order; the database's user_version is how many have run.
MIGRATIONS = (_migrate_1,)


class Store:
    def __init__(self, path):
        self.path = pathlib.Path(path)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(str(self.path), isolation_level=None)
            import sqlite_utils  # central's alone: about 14 MB that other roles never load

            self.db = sqlite_utils.Database(conn)
            self.db.execute("PRAGMA journal_mode = WAL")
            self.db.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL: a process crash loses nothing committed
            self._migrate()
        except sqlite3.DatabaseError as e:
            raise EvdError(f"cannot open database {self.path}: {e}") from None
        except OSError as e:  # its directory cannot be made: an ordinary user and a system path
            raise EvdError(f"cannot open database {self.path}: {e.filename}: {e.strerror}") from None
        self._dirty_sessions = {}
        self._dirty_requests = {}  # request id -> session id, for the sessions not written yet
        self._dirty_cps = {}
        self._dirty_drivers = {}

    def _migrate(self):
        version = self.db.execute("PRAGMA user_version").fetchone()[0]
        if version > len(MIGRATIONS):
            raise EvdError(f"database {self.path} has schema version {version}, newer than this evd knows ({len(MIGRATIONS)})")
        for number, migration in enumerate(MIGRATIONS[version:], start=version + 1):
            with self.transaction():
                migration(self.db)
                self.db.execute(f"PRAGMA user_version = {number}")
            log.info("database %s migrated to schema version %d", self.path, number)

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
            return Session.from_row(self._dirty_sessions[pending])
        return self._one("SELECT * FROM sessions WHERE request_id = ?", request_id)

    def session(self, session_id):
        if session_id in self._dirty_sessions:
            return Session.from_row(self._dirty_sessions[session_id])
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
        self._dirty_sessions[session.id] = session.row()  # a copy: later changes need another save
        if session.request_id is not None:
            self._dirty_requests[session.request_id] = session.id

    def save_cp(self, cp):
        self._dirty_cps[cp["id"]] = dict(cp)

    def save_driver(self, driver_id, seen_at):
        self._dirty_drivers[driver_id] = seen_at

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
                    conn.executemany(UPSERT_SESSION, [tuple(s.get(c) for c in SESSION_COLUMNS) for s in sessions.values()])
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
