"""A supply session and its life cycle: a pure state machine, no I/O (in the manner of h11).

Central feeds :func:`step` what happens to a session — the engine's records (started,
progress, ended), its own orders to end a supply (a stop, a fault, a lost monitor) and the
end of the grace it gives the engine — and carries out the effects it returns: store the
session, publish the driver's progress, send the ticket, release the CP. The rules live here
alone and are tested here, in seconds, with any order, duplication and replay of records
(tests/unit/test_sessions.py):

- a record is applied once: progress with a sequence number at or below the last applied
  one is old or duplicated, and changes nothing;
- the energy billed is the largest the engine reported, at the price of the authorisation;
- a session ends once: COMPLETED when the engine ends it so, INTERRUPTED when it says so or
  when central ordered the end first; later records at most correct an INTERRUPTED ticket
  upwards, never end it again;
- a closed session answers a repeated end with the same ticket (it may have been lost).
"""

import enum
import operator

import attrs

from .commands import LISTING_FIELDS
from .money import cost, energy


class Status(enum.StrEnum):
    AUTHORIZED = "AUTHORIZED"
    SUPPLYING = "SUPPLYING"
    COMPLETED = "COMPLETED"
    INTERRUPTED = "INTERRUPTED"
    DENIED = "DENIED"

    @property
    def final(self):
        return self in FINAL


FINAL = frozenset({Status.COMPLETED, Status.INTERRUPTED, Status.DENIED})
OPEN = frozenset({Status.AUTHORIZED, Status.SUPPLYING})


def _column(sql_type):
    """A field stored in central's ``sessions`` table, with its SQLite column type."""
    return {"column": sql_type}


# No converters or validators on assignment: the hot path sets kwh, eur and last_seq per record.
@attrs.define(eq=False, on_setattr=attrs.setters.NO_OP)
class Session:
    """One request for a supply and what became of it: what central stores, shows and bills."""

    id: str = attrs.field(metadata=_column(str))
    request_id: str = attrs.field(metadata=_column(str))
    cp: str = attrs.field(metadata=_column(str))
    driver: str = attrs.field(metadata=_column(str))
    origin: str = attrs.field(default="driver", metadata=_column(str))  # driver | manual | charger (OCPP)
    price: float | None = attrs.field(default=None, metadata=_column(float))  # EUR/kWh at the authorisation
    kwh_requested: float = attrs.field(default=0.0, metadata=_column(float))
    status: Status = attrs.field(default=Status.AUTHORIZED, converter=Status, metadata=_column(str))
    reason: str | None = attrs.field(default=None, metadata=_column(str))
    requested_at: str | None = attrs.field(default=None, metadata=_column(str))
    started_at: str | None = attrs.field(default=None, metadata=_column(str))
    ended_at: str | None = attrs.field(default=None, metadata=_column(str))
    kwh: float = attrs.field(default=0.0, metadata=_column(float))
    eur: float = attrs.field(default=0.0, metadata=_column(float))
    last_seq: int = attrs.field(default=0, metadata=_column(int))
    #: Why central ordered this supply to end, while it waits for the engine's final figures
    #: (not stored: after a restart the engine's own end record closes it).
    ending: str | None = None

    @classmethod
    def from_row(cls, row):
        return cls(**{name: row[name] for name in COLUMNS})

    @classmethod
    def from_values(cls, values):
        """A session from :func:`stored_values` (the stored fields come first, in order)."""
        return cls(*values)

    def row(self):
        """The stored columns, as plain values."""
        values = {name: getattr(self, name) for name in COLUMNS}
        values["status"] = str(self.status)
        return values

    def ticket(self):
        """The ticket's fields (DESIGN.md §4, ``ticket`` on driver.events)."""
        return {
            "session": self.id,
            "cp": self.cp,
            "driver": self.driver,
            "kwh": self.kwh,
            "eur": self.eur,
            "price": self.price if self.price is not None else 0.0,
            "status": str(self.status),
            "reason": self.reason,
            "started_at": self.started_at,
            "ended_at": self.ended_at,
        }

    def listing(self):
        """The session as ``evctl sessions`` shows it (DESIGN.md §2)."""
        values = self.row()
        return {name: values[name] for name in LISTING_FIELDS}

    def request_row(self):
        """An on-going request as central's panel lists it."""
        return {"session": self.id, "driver": self.driver, "cp": self.cp, "requested_at": self.requested_at, "status": str(self.status)}

    def authorization(self):
        """The fields of the ``authorize`` command and the ``authorized`` event."""
        return {
            "session": self.id,
            "cp": self.cp,
            "driver": self.driver,
            "price": self.price,
            "kwh_requested": self.kwh_requested,
            "request_id": self.request_id,
        }


#: The columns of central's ``sessions`` table: the stored fields of Session, in order.
COLUMNS = {field.name: field.metadata["column"] for field in attrs.fields(Session) if "column" in field.metadata}
#: The stored fields' values, in COLUMNS order, as a tuple (per applied record: attrgetter is C).
stored_values = operator.attrgetter(*COLUMNS)


# -- events: what happens to a session ------------------------------------------------------


@attrs.frozen
class Started:
    """The engine saw the vehicle plugged in."""

    ts: str


@attrs.frozen
class Progress:
    """The engine's running total after a tick."""

    seq: int
    kwh: float
    ts: str


@attrs.frozen
class Ended:
    """The engine's final figures: ``status`` COMPLETED or INTERRUPTED, as the engine saw it."""

    seq: int
    kwh: float
    status: str
    reason: str | None
    ts: str


@attrs.frozen
class EndOrdered:
    """Central ends the supply (a stop, a fault, a lost monitor) and waits for the engine's figures."""

    reason: str


@attrs.frozen
class Overdue:
    """The engine did not confirm an ordered end within central's grace."""


# -- effects: what central carries out ------------------------------------------------------


@attrs.frozen
class Save:
    """Store the session (batched with the stream positions that led to it)."""


@attrs.frozen
class PublishProgress:
    """Tell the driver the new running total."""


@attrs.frozen
class SendTicket:
    """Send the session's ticket to its driver (again, when a closed session hears of its end again)."""


@attrs.frozen
class Plugged:
    """The supply began: the CP's tile changes."""


@attrs.frozen
class Changed:
    """The running figures changed: the CP's tile changes."""


@attrs.frozen
class AwaitEnd:
    """Start waiting for the engine's final figures (central's end grace)."""

    reason: str


@attrs.frozen
class Finished:
    """The session closed: release the CP, say and audit how it ended."""

    status: Status
    reason: str | None
    overdue: bool = False  # closed on central's grace with the last energy heard of


@attrs.frozen
class Corrected:
    """A closed INTERRUPTED session learned it delivered more: the ticket is corrected."""

    billed: float  # the energy the earlier ticket said


@attrs.frozen
class Disagreement:
    """The engine reports other figures for a closed session, which stays as it was."""

    reported: float


# -- the machine ----------------------------------------------------------------------------

# Effects without fields are shared: a progress record, the common case, allocates none.
_PLUGGED = (Save(), Plugged())
_PROGRESSED = (Save(), PublishProgress(), Changed())
_NOTHING = ()


def step(session, event, clock):
    """Apply ``event`` to ``session`` (in place); return the effects, in order. ``clock()`` gives
    the time (ISO 8601) a session ends at; it is called only then."""
    kind = type(event)
    if kind is Progress:
        if session.status.final:
            return _NOTHING  # a late progress changes nothing; the engine's end record will tell
        if event.seq <= session.last_seq:
            return _NOTHING  # old or duplicated
        _apply_energy(session, event)
        return _PROGRESSED
    if kind is Started:
        if session.status != Status.AUTHORIZED:
            return _NOTHING
        session.status, session.started_at = Status.SUPPLYING, event.ts
        return _PLUGGED
    if kind is Ended:
        if session.status.final:
            return _after_the_end(session, event)
        if event.seq > session.last_seq:
            _apply_energy(session, event)
        if session.ending is not None:
            return _finish(session, Status.INTERRUPTED, session.ending, clock())
        status = Status.COMPLETED if event.status == Status.COMPLETED else Status.INTERRUPTED
        return _finish(session, status, event.reason, clock())
    if kind is EndOrdered:
        if session.status.final or session.ending is not None:
            return _NOTHING
        session.ending = event.reason
        return (AwaitEnd(event.reason),)
    if kind is Overdue:
        if session.status.final or session.ending is None:
            return _NOTHING
        return _finish(session, Status.INTERRUPTED, session.ending, clock(), overdue=True)
    raise TypeError(f"not a session event: {event!r}")


def _apply_energy(session, record):
    session.kwh = energy(record.kwh)
    session.eur = cost(session.kwh, session.price)
    session.last_seq = record.seq
    if session.status == Status.AUTHORIZED:
        session.status = Status.SUPPLYING
        session.started_at = session.started_at or record.ts


def _finish(session, status, reason, now, overdue=False):
    session.status, session.reason, session.ended_at, session.ending = status, reason, now, None
    session.eur = cost(session.kwh, session.price)
    return (Save(), Finished(status, reason, overdue), SendTicket())


def _after_the_end(session, event):
    if session.status == Status.INTERRUPTED and event.seq > session.last_seq and event.kwh > session.kwh:
        # The engine went on after central closed it (the stream was down when central ordered
        # the end, say): bill what it really delivered.
        billed = session.kwh
        session.kwh = energy(event.kwh)
        session.eur = cost(session.kwh, session.price)
        session.last_seq = event.seq
        return (Save(), Corrected(billed), SendTicket())
    if abs(session.kwh - event.kwh) > 1e-9:
        return (Disagreement(event.kwh), SendTicket())
    return (SendTicket(),)
