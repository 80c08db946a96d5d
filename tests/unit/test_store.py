"""Central's database: the sessions table holds every stored field of Session, and what is saved comes back."""

import sqlite3

from evd.sessions import COLUMNS, Session, Status
from evd.store import Store


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
