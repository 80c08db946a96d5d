"""OCPP transactions in central's database: the integer transactionId a charger gets for each supply it
starts, tied to central's session, with the meter reading the energy counts from.

A charger that lost the answer resends StartTransaction with the same connector, idTag, meter
reading and time stamp: it finds its row and gets the same transactionId. Rows are committed before
the charger is answered, so a central killed at any moment answers the same after its restart.
"""

import attrs


@attrs.frozen
class Transaction:
    id: int
    cp: str
    connector: int
    id_tag: str
    meter_start: int  # Wh, the charger's meter when it started
    started_at: str
    session: str | None
    meter_stop: int | None = None
    stopped_at: str | None = None

    @property
    def stopped(self):
        return self.stopped_at is not None

    def kwh(self, meter_wh):
        """The energy delivered when the meter reads ``meter_wh`` Wh (never less than nothing)."""
        return max(0.0, (meter_wh - self.meter_start) / 1000)


class Transactions:
    """The ``ocpp_transactions`` table (evd.store's migration 4), through a connection of its own."""

    def __init__(self, db):
        self.db = db  # a sqlite-utils Database (evd.central.network.Network.database)
        self.table = db["ocpp_transactions"]

    def close(self):
        self.db.conn.close()

    def find(self, cp, connector, id_tag, meter_start, started_at):
        """The transaction a StartTransaction with these fields made already, or None."""
        rows = self.table.rows_where(
            "cp = ? AND connector = ? AND id_tag = ? AND meter_start = ? AND started_at = ?",
            [cp, connector, id_tag, meter_start, started_at],
            limit=1,
        )
        return next((Transaction(**row) for row in rows), None)

    def start(self, cp, connector, id_tag, meter_start, started_at, session):
        """A new transaction for ``session``, committed (the connection autocommits); returns it with its transactionId."""
        row = {"cp": cp, "connector": connector, "id_tag": id_tag, "meter_start": meter_start, "started_at": started_at, "session": session}
        self.table.insert(row)
        return self.find(cp, connector, id_tag, meter_start, started_at)

    def get(self, transaction_id):
        rows = self.table.rows_where("id = ?", [transaction_id], limit=1)
        return next((Transaction(**row) for row in rows), None)

    def of_session(self, session_id):
        rows = self.table.rows_where("session = ?", [session_id], order_by="id desc", limit=1)
        return next((Transaction(**row) for row in rows), None)

    def running(self, cp):
        """``cp``'s latest transaction not stopped yet, or None."""
        rows = self.table.rows_where("cp = ? AND stopped_at IS NULL", [cp], order_by="id desc", limit=1)
        return next((Transaction(**row) for row in rows), None)

    def stop(self, transaction_id, meter_stop, stopped_at):
        self.table.update(transaction_id, {"meter_stop": meter_stop, "stopped_at": stopped_at})
