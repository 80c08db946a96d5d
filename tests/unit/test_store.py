"""Central's database: the sessions table holds every stored field of Session, and what is saved comes back."""

import sqlite3

from evd.sessions import COLUMNS, Session, Status
from evd.store import MIGRATIONS, Store


def test_the_migrated_sessions_table_has_every_stored_field_of_session(tmp_path):
    store = Store(tmp_path / "central.db")
    store.close()
    db = sqlite3.connect(tmp_path / "central.db")
    columns = [row[1] for row in db.execute("PRAGMA table_info(sessions)")]
    db.close()
    assert columns == list(COLUMNS), "a field added to Session needs a migration that adds its column"


def test_a_saved_session_comes_back_the_same_before_and_after_the_flush(tmp_path):
    store = Store(tmp_path / "central.db")
    session = Session(id="s1", request_id="r1", cp="CP1", driver="D1", price=0.54, kwh_requested=3.0, requested_at="t0")
    session.status, session.kwh, session.eur, session.last_seq = Status.SUPPLYING, 2.0, 1.08, 2
    store.save_session(session)
    session.kwh = 99.0  # saved is saved: later changes need another save
    pending = store.session("s1")
    assert pending.kwh == 2.0 and pending.status is Status.SUPPLYING
    store.flush()
    for found in (store.session("s1"), store.session_by_request("r1"), store.open_sessions()[0], store.sessions(driver="D1")[0]):
        assert found.row() == pending.row()
    store.close()
    reopened = Store(tmp_path / "central.db")
    assert reopened.session("s1").row() == pending.row()
    assert reopened.session("nope") is None
    reopened.close()


#: central.db as release 1 wrote it (schema version 1, and the tables the registry, crypto and
#: audit plugins then created themselves), with a CP, a credential, a key, a session and an audit row.
RELEASE_1 = """
CREATE TABLE "cps" ("id" TEXT PRIMARY KEY, "location" TEXT, "price" REAL, "city" TEXT, "stopped" INTEGER, "registered_at" TEXT);
CREATE TABLE "drivers" ("id" TEXT PRIMARY KEY, "first_seen" TEXT, "last_seen" TEXT);
CREATE TABLE "sessions" ("id" TEXT PRIMARY KEY, "request_id" TEXT, "cp" TEXT NOT NULL, "driver" TEXT, "origin" TEXT,
   "price" REAL, "kwh_requested" REAL, "status" TEXT NOT NULL, "reason" TEXT, "requested_at" TEXT, "started_at" TEXT,
   "ended_at" TEXT, "kwh" REAL, "eur" REAL, "last_seq" INTEGER);
CREATE UNIQUE INDEX "idx_sessions_request_id" ON "sessions" ("request_id");
CREATE INDEX "idx_sessions_cp_status" ON "sessions" ("cp", "status");
CREATE INDEX "idx_sessions_driver" ON "sessions" ("driver");
CREATE TABLE "cp_keys" ("cp" TEXT PRIMARY KEY, "key" TEXT, "issued_at" TEXT, "revoked_at" TEXT);
CREATE TABLE "audit" ("id" INTEGER PRIMARY KEY, "time" TEXT, "category" TEXT, "source" TEXT, "action" TEXT, "parameters" TEXT,
   "outcome" TEXT);
CREATE INDEX "idx_audit_time" ON "audit" ("time");
CREATE TABLE "credentials" ("cp" TEXT PRIMARY KEY, "salt" TEXT, "hash" TEXT, "issued_at" TEXT, "revoked_at" TEXT);
INSERT INTO cps VALUES ('ALC1', 'C/ Italia 5', 0.54, 'Alicante', 0, '2026-12-01T10:00:00+00:00');
INSERT INTO sessions VALUES ('s1', 'r1', 'ALC1', 'D1', 'driver', 0.54, 5.0, 'COMPLETED', NULL, 't0', 't1', 't2', 5.0, 2.7, 6);
INSERT INTO cp_keys VALUES ('ALC1', 'a2V5', '2026-12-01T10:00:00+00:00', NULL);
INSERT INTO credentials VALUES ('ALC1', '00', 'ab', '2026-12-01T10:00:00+00:00', NULL);
INSERT INTO audit VALUES (1, '2026-12-01T10:00:00.000Z', 'SYSTEM', 'central', 'central started', '{}', 'ok');
PRAGMA user_version = 1;
"""


def test_a_release_1_database_is_migrated_on_start_with_everything_in_it(tmp_path):
    path = tmp_path / "central.db"
    db = sqlite3.connect(path)
    db.executescript(RELEASE_1)
    db.close()
    store = Store(path)
    assert store.session("s1").eur == 2.7 and [cp["id"] for cp in store.cps()] == ["ALC1"]
    store.close()
    db = sqlite3.connect(path)
    try:
        assert db.execute("PRAGMA user_version").fetchone()[0] == len(MIGRATIONS)
        for table, rows in (("cp_keys", 1), ("credentials", 1), ("audit", 1), ("sessions", 1)):
            assert db.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0] == rows
    finally:
        db.close()


def test_every_table_of_central_db_comes_from_the_migrations(tmp_path):
    """The extras keep no table of their own making: a new database has them all, from evd.store alone."""
    store = Store(tmp_path / "central.db")
    store.close()
    db = sqlite3.connect(tmp_path / "central.db")
    tables = {name for (name,) in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    db.close()
    assert tables == {"cps", "drivers", "sessions", "credentials", "cp_keys", "audit", "api_tokens", "ocpp_transactions"}
