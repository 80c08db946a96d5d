"""The embedded local transport: evd processes on one host share an append-only log in SQLite.

Same topics, keys, at-least-once delivery and group offsets as Kafka, with no server:
records carry a global sequence number (so per-key order is the file's order), groups
keep their position per topic in ``offsets``. A reader with nothing to read sleeps on its
doorbell (evd.doorbell), listed in ``bells`` with the topics and keys it follows; a writer
rings, after its commit, the bells of what it wrote, so an idle driver is not woken by every
engine's telemetry. A reader whose records flow polls ``PRAGMA data_version`` instead.
The plain sqlite3 module is used here rather than sqlite-utils: this is a hot, tiny
append/scan loop, not application state.
"""

import logging
import pathlib
import sqlite3
import threading
import time

import attrs

import evd
from evd import doorbell, paths
from evd.bus import Transport
from evd.config import Duration, positive
from evd.consumer import IDLE_FETCH, Consumer
from evd.errors import EvdError

log = logging.getLogger(__name__)

POLL_INTERVAL = 0.005  # how often an eager reader whose records flow checks for new ones
QUIET_POLL_INTERVAL = 0.05  # how often a reader without a doorbell does
FETCH_LIMIT = 1000
TRIM_EVERY = 30.0

SCHEMA = """
CREATE TABLE IF NOT EXISTS records (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    topic TEXT NOT NULL,
    key TEXT,
    value BLOB NOT NULL,
    ts REAL NOT NULL
);
CREATE INDEX IF NOT EXISTS records_topic_seq ON records (topic, seq);
CREATE TABLE IF NOT EXISTS offsets (
    grp TEXT NOT NULL,
    topic TEXT NOT NULL,
    seq INTEGER NOT NULL,
    PRIMARY KEY (grp, topic)
);
CREATE TABLE IF NOT EXISTS bells (
    bell TEXT NOT NULL,
    topic TEXT NOT NULL,
    key TEXT
);
CREATE INDEX IF NOT EXISTS bells_topic ON bells (topic);
CREATE INDEX IF NOT EXISTS bells_bell ON bells (bell);
"""


@attrs.frozen
class LocalOptions:
    #: Default: bus.db in the state directory (evd.paths.state_dir), filled in when the config is built.
    path: pathlib.Path | None = None
    retention: Duration = attrs.field(default=Duration(3600), validator=positive)
    max_records: int = attrs.field(default=1_000_000, validator=positive)

    def __attrs_post_init__(self):
        if self.path is None:
            object.__setattr__(self, "path", paths.state_dir() / "bus.db")  # frozen: set once, here


def connect(path):
    path = pathlib.Path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        db = sqlite3.connect(str(path), timeout=10, isolation_level=None, check_same_thread=False)
        db.execute("PRAGMA busy_timeout = 10000")
        _while_locked(lambda: db.execute("PRAGMA journal_mode = WAL"))
        db.execute("PRAGMA synchronous = NORMAL")  # WAL + NORMAL survives a process crash
        _while_locked(lambda: db.executescript(SCHEMA))
    except OSError as e:
        raise EvdError(f"cannot open the local bus {path}: {e.filename}: {e.strerror}") from None
    except sqlite3.OperationalError as e:
        raise EvdError(f"cannot open the local bus {path}: {e}") from None
    return db


def _while_locked(statement, timeout=10.0):
    """Run ``statement``, again while the file is locked: SQLite answers a journal-mode change or
    a schema made by two processes at once with "database is locked" without waiting its busy
    timeout (daemons starting together on a new bus; a sender and a consumer of one daemon)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return statement()
        except sqlite3.OperationalError as e:
            if "locked" not in str(e) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


class LocalTransport(Transport):
    kind = "local"
    options_class = LocalOptions

    def __init__(self, daemon):
        super().__init__(daemon)
        self._db = None
        self._ringer = None
        self._last_trim = 0.0

    def open_sender(self):
        self._db = connect(self.options.path)
        self._ringer = doorbell.Ringer()

    def send_batch(self, batch):
        now = time.time()
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany("INSERT INTO records (topic, key, value, ts) VALUES (?, ?, ?, ?)", [(t, k, v, now) for t, k, v in batch])
            # Read in the same transaction: a reader listed after it reads these records itself.
            bells = bells_for(self._db, {(t, k) for t, k, _v in batch})
        gone = self._ringer.ring(bells)
        if gone:
            forget_bells(self._db, gone)
        return len(batch)

    def sender_alive(self):
        if time.monotonic() - self._last_trim > TRIM_EVERY:
            self._last_trim = time.monotonic()
            self._trim()
        return True

    def _trim(self):
        with self._db:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.execute("DELETE FROM records WHERE ts < ?", (time.time() - self.options.retention,))
            bound = self._db.execute("SELECT MAX(seq) FROM records").fetchone()[0]
            if bound is None:
                return
            bound -= self.options.max_records
            # The size bound never deletes what a consumer group has not read yet (retention still does).
            self._db.execute(
                "DELETE FROM records WHERE seq <= ? AND seq <= COALESCE((SELECT MIN(o.seq) FROM offsets o WHERE o.topic = records.topic), ?)",
                (bound, bound),
            )
            held = self._db.execute("SELECT COUNT(*) FROM records WHERE seq <= ?", (bound,)).fetchone()[0]
        if held:
            log.warning("the bus log holds %d records over max_records that a consumer group has not read yet", held)

    def flush_and_close_sender(self, timeout):
        self._db.close()
        self._ringer.close()


def bells_for(db, written):
    """The bells of the readers of ``written`` ((topic, key) pairs): those following a whole topic
    or one of the keys."""
    topics = sorted({topic for topic, _key in written})
    rows = db.execute(f"SELECT bell, topic, key FROM bells WHERE topic IN ({', '.join('?' * len(topics))})", topics).fetchall()
    return sorted({bell for bell, topic, key in rows if key is None or (topic, key) in written})


def forget_bells(db, names):
    """Unlist the bells ``names``: their readers closed, or are gone."""
    with db:
        db.execute("BEGIN IMMEDIATE")
        db.executemany("DELETE FROM bells WHERE bell = ?", [(name,) for name in names])


class LocalConsumer(Consumer):
    db = None

    def __init__(self, transport, group):
        super().__init__(transport, group)
        self._woken = threading.Event()
        self._bell = None

    def wake(self):
        self._woken.set()
        bell = self._bell
        if bell is not None:
            bell.ring()

    def open(self):
        self.db = connect(self.transport.options.path)
        self.positions = {}
        self.live = set()  # topics followed only by live views: never committed
        self._version = None
        try:
            self._bell = doorbell.Doorbell()
        except OSError as e:
            log.warning("no doorbell for the local bus (%s): this reader polls every %.2fs", e, QUIET_POLL_INTERVAL)

    def resubscribe(self, interests):
        # Listed before the positions are read: what is written after is rung, what before is read.
        self._list_bell(interests)
        # Keys are not filtered here: other keys' rows cost a reader little (Consumer._hand_over
        # skips them undecoded), and skipping them would hold its position back.
        self.live = {topic for topic, interest in interests.items() if interest.live}
        for topic in interests:
            if topic in self.positions:
                continue
            row = None
            if topic not in self.live:
                row = self.db.execute("SELECT seq FROM offsets WHERE grp = ? AND topic = ?", (self.group, topic)).fetchone()
            else:
                # A live view starts after what is already there.
                row = self.db.execute("SELECT COALESCE(MAX(seq), 0) FROM records WHERE topic = ?", (topic,)).fetchone()
            self.positions[topic] = row[0] if row else 0
        self.ready = True

    def _list_bell(self, interests):
        if self._bell is None:
            return
        rows = []
        for topic, interest in interests.items():
            keys = [None] if interest.keys is None else sorted(interest.keys)
            rows += [(self._bell.name, topic, key) for key in keys]
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.execute("DELETE FROM bells WHERE bell = ?", (self._bell.name,))
            self.db.executemany("INSERT INTO bells (bell, topic, key) VALUES (?, ?, ?)", rows)

    def fetch(self, timeout):
        deadline = time.monotonic() + timeout
        while True:
            if self._bell is not None:
                self._bell.drain()  # what rang so far is read now
            if self._woken.is_set():  # after the drain: wake() sets it before it rings
                break
            version = self.db.execute("PRAGMA data_version").fetchone()[0]
            if version != self._version:
                records = self._read()
                if len(records) < FETCH_LIMIT:
                    self._version = version  # caught up with this version of the file
                if records:
                    return records
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            if self._bell is not None and not self.hot():
                self._bell.wait(remaining)  # until a writer of what this reader follows rings
            else:
                time.sleep(min(self.pause(), remaining))
        self._woken.clear()
        return []

    def pause(self):
        """How long this reader sleeps between looks at the file: briefly while its records flow
        (they are gathered in batches), else until its doorbell rings."""
        if self.hot():
            return POLL_INTERVAL
        return IDLE_FETCH if self._bell is not None else QUIET_POLL_INTERVAL

    def _read(self):
        rows = []
        for topic, after in self.positions.items():
            rows += self.db.execute(
                "SELECT seq, topic, key, value FROM records WHERE topic = ? AND seq > ? ORDER BY seq LIMIT ?", (topic, after, FETCH_LIMIT)
            ).fetchall()
        rows.sort()
        rows = rows[:FETCH_LIMIT]
        for seq, topic, _key, _value in rows:
            self.positions[topic] = max(self.positions[topic], seq)
        return [(topic, _as_bytes(key), _as_bytes(value), (topic, seq)) for seq, topic, key, value in rows]

    def position_key(self, position):
        return position[0]

    def commit(self, done):
        offsets = [(self.group, topic, seq) for topic, seq in done.values() if topic not in self.live]
        if not self.group or not offsets:
            return
        with self.db:
            self.db.execute("BEGIN IMMEDIATE")
            self.db.executemany(
                "INSERT INTO offsets (grp, topic, seq) VALUES (?, ?, ?) ON CONFLICT (grp, topic) DO UPDATE SET seq = excluded.seq", offsets
            )

    def close(self):
        bell, self._bell = self._bell, None
        try:
            if self.db is not None and bell is not None:
                forget_bells(self.db, [bell.name])
        finally:
            if bell is not None:
                bell.close()
            if self.db is not None:
                self.db.close()
                self.db = None


def _as_bytes(stored):
    """A key or value as the consumer takes it: SQLite keeps whatever type its writer gave (evd
    writes text keys and blob values; another program may write integers, reals or text)."""
    if stored is None or isinstance(stored, bytes):
        return stored
    return str(stored).encode()


LocalTransport.consumer_class = LocalConsumer


@evd.hookimpl
def evd_register_transports():
    return {"local": LocalTransport}
