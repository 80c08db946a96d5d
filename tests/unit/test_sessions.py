"""The supply-session state machine (evd.sessions), with no process: any order, duplication and
replay of an engine's records, mixed with central's orders to end, its grace running out and
restarts from what was stored, must give one close, the energy the engine reported, the price
of the authorisation and the status SPEC asks for."""

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from evd import sessions
from evd.money import cost, energy
from evd.sessions import COLUMNS, Ended, EndOrdered, Overdue, Progress, Session, Started, Status, step

NOW = "2026-12-04T10:00:00+00:00"


def new_session(price=0.5, kwh_requested=5.0):
    return Session(id="s1", request_id="r1", cp="CP1", driver="D1", price=price, kwh_requested=kwh_requested, requested_at=NOW)


def engine_records(ticks, per_tick, status, reason):
    """What an engine sends for one supply: started, a progress record per tick, its end."""
    records = [Started(ts=NOW)]
    records += [Progress(seq=i, kwh=i * per_tick, ts=NOW) for i in range(1, ticks + 1)]
    records.append(Ended(seq=ticks + 1, kwh=ticks * per_tick, status=status, reason=reason, ts=NOW))
    return records


class Central:
    """What central keeps of one session: the live object, what it stored, what it sent."""

    def __init__(self, session):
        self.session = session
        self.stored = session.row()
        self.effects = []
        self.tickets = []  # the ticket as sent, each time
        self.progress = []  # (seq, kwh) published to the driver

    def feed(self, event):
        effects = step(self.session, event, lambda: NOW)
        for effect in effects:
            if isinstance(effect, sessions.Save):
                self.stored = self.session.row()
            elif isinstance(effect, sessions.SendTicket):
                self.tickets.append(self.session.ticket())
            elif isinstance(effect, sessions.PublishProgress):
                self.progress.append((self.session.last_seq, self.session.kwh))
        self.effects += list(effects)
        return effects

    def restart(self):
        # A restarted central has only what it stored; an end it was waiting for is forgotten.
        self.session = Session.from_row(self.stored)

    def finished(self):
        return [e for e in self.effects if isinstance(e, sessions.Finished)]


operations = st.lists(
    st.one_of(
        st.tuples(st.just("deliver"), st.integers(min_value=0, max_value=20)),
        st.tuples(st.just("end"), st.sampled_from(["stopped by the operator", "fault: engine KO", "monitor lost"])),
        st.tuples(st.just("overdue")),
        st.tuples(st.just("restart")),
    ),
    max_size=40,
)


@settings(max_examples=400, deadline=None)
@given(
    ticks=st.integers(min_value=0, max_value=8),
    per_tick=st.sampled_from([1.0, 0.5, 0.1, 1.25]),
    price=st.sampled_from([0.0, 0.37, 0.5, 1.23]),
    engine_status=st.sampled_from(["COMPLETED", "INTERRUPTED"]),
    ops=operations,
)
def test_any_interleaving_gives_one_close_the_engines_energy_and_the_authorised_price(ticks, per_tick, price, engine_status, ops):
    engine_reason = None if engine_status == "COMPLETED" else "unplugged at the CP"
    records = engine_records(ticks, per_tick, engine_status, engine_reason)
    central = Central(new_session(price=price))
    ended_delivered = False
    end_in_force = False  # central ordered an end, before the engine's end record, with no restart since
    for op in ops:
        if op[0] == "deliver":
            record = records[op[1] % len(records)]
            if isinstance(record, Ended) and not ended_delivered:
                ended_delivered = True
                ordered_first = end_in_force
            central.feed(record)
        elif op[0] == "end":
            central.feed(EndOrdered(op[1]))
            end_in_force = end_in_force or (not ended_delivered and not central.session.status.final)
        elif op[0] == "overdue":
            central.feed(Overdue())
        else:
            central.restart()
            end_in_force = end_in_force and central.session.status.final
    # At-least-once delivery: in the end every record arrives (again), and the grace runs out.
    for record in records:
        if isinstance(record, Ended) and not ended_delivered:
            ended_delivered, ordered_first = True, end_in_force
        central.feed(record)
    central.feed(Overdue())
    final = central.session

    assert final.status.final and len(central.finished()) == 1, "closed exactly once"
    assert final.kwh == energy(ticks * per_tick), "billed the largest energy the engine reported"
    assert final.eur == cost(final.kwh, price), "at the price of the authorisation"
    if final.status == Status.COMPLETED:
        assert engine_status == "COMPLETED" and not ordered_first
    if engine_status == "INTERRUPTED" or ordered_first:
        assert final.status == Status.INTERRUPTED
    if not any(op[0] == "end" for op in ops):
        assert (final.status, final.reason) == (Status(engine_status), engine_reason)
    # What is stored is what central holds: a restart now would change nothing.
    assert central.stored == final.row()
    # Tickets: only for a closed session, corrected only upwards, the last one the final state.
    assert central.tickets and central.tickets[-1] == final.ticket()
    assert all(t["status"] in ("COMPLETED", "INTERRUPTED") for t in central.tickets)
    billed = [t["kwh"] for t in central.tickets]
    assert billed == sorted(billed)
    # The driver's live figures never repeat a record nor go back.
    seqs = [seq for seq, _ in central.progress]
    assert len(seqs) == len(set(seqs))
    kwhs = [kwh for _, kwh in central.progress]
    assert kwhs == sorted(kwhs)


def test_a_complete_supply_in_order():
    central = Central(new_session(price=0.54))
    for record in engine_records(3, 1.0, "COMPLETED", None):
        central.feed(record)
    assert (central.session.status, central.session.kwh, central.session.eur) == (Status.COMPLETED, 3.0, 1.62)
    assert central.progress == [(1, 1.0), (2, 2.0), (3, 3.0)]
    assert [type(e).__name__ for e in central.effects[-3:]] == ["Save", "Finished", "SendTicket"]


def test_an_ordered_end_the_engine_never_confirms_closes_with_the_last_energy_heard():
    central = Central(new_session())
    records = engine_records(5, 1.0, "COMPLETED", None)
    for record in records[:3]:  # started, progress 1 and 2
        central.feed(record)
    assert central.feed(EndOrdered("stopped by the operator")) == (sessions.AwaitEnd("stopped by the operator"),)
    assert central.feed(EndOrdered("fault: engine KO")) == ()  # already ending: the first reason stands
    effects = central.feed(Overdue())
    assert sessions.Finished(Status.INTERRUPTED, "stopped by the operator", overdue=True) in effects
    assert (central.session.kwh, central.session.eur) == (2.0, 1.0)
    # The engine went on (the stream was down): its end record corrects the ticket upwards.
    effects = central.feed(records[-1])
    assert sessions.Corrected(billed=2.0) in effects
    assert central.tickets[-1]["kwh"] == 5.0 and central.tickets[-1]["status"] == "INTERRUPTED"


def test_a_repeated_end_record_sends_the_same_ticket_and_a_different_one_is_only_logged():
    central = Central(new_session())
    for record in engine_records(2, 1.0, "COMPLETED", None):
        central.feed(record)
    assert central.feed(Ended(seq=3, kwh=2.0, status="COMPLETED", reason=None, ts=NOW)) == (sessions.SendTicket(),)
    effects = central.feed(Ended(seq=9, kwh=7.0, status="COMPLETED", reason=None, ts=NOW))
    assert effects == (sessions.Disagreement(reported=7.0), sessions.SendTicket())
    assert central.session.kwh == 2.0


def test_progress_before_started_starts_the_supply():
    central = Central(new_session())
    central.feed(Progress(seq=1, kwh=1.0, ts=NOW))
    assert central.session.status == Status.SUPPLYING and central.session.started_at == NOW


def test_an_unknown_event_is_a_programming_error():
    with pytest.raises(TypeError):
        step(new_session(), "progress", lambda: NOW)


def test_the_sessions_table_is_the_stored_fields_of_session():
    stored = [f.name for f in attrs.fields(Session) if "column" in f.metadata]
    assert list(COLUMNS) == stored
    assert "ending" not in COLUMNS  # central's wait for an end is not stored
    assert Session.from_row(new_session().row()).row() == new_session().row()
