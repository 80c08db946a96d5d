"""The event stream as roles see it, and the thread machinery both transports share.

Roles call :meth:`Transport.publish` (never blocks: messages wait in a bounded outbox that
a sender thread drains) and :meth:`Transport.subscribe` (a handler that runs on the
daemon's loop). Consumer threads own their client alone, decode records off the loop, hand
them over in batches with ``call_soon_threadsafe`` and commit a record's position only after
the loop has applied it: delivery is at-least-once, in order per key.
"""

import asyncio
import collections
import inspect
import logging
import threading
import time

import attrs

from . import messages

log = logging.getLogger(__name__)

OUTBOX_LIMIT = 100_000  # messages kept while the broker is away; past it the oldest are dropped
SEND_BATCH = 500
MAX_BACKLOG = 5_000  # records handed to the loop and not applied yet, per consumer
YIELD_EVERY = 200  # records applied before the dispatcher lets sockets and timers run
COMMIT_EVERY = 0.2  # seconds between commits of applied positions (a commit is a broker round trip)
#: Longest a consumer thread waits in one fetch while nothing arrives. Records end the wait at
#: once (a long poll); what else waits on it (a new subscription, a commit, stopping) is woken
#: by Consumer.wake where the backend can, else waits at most this. Short waits cost idle CPU:
#: kafka-python 3 hands each poll to its network thread (~10 context switches per poll).
IDLE_FETCH = 1.0
HOT_FOR = 10.0  # seconds an eager consumer stays hot (short fetch waits) after its last records
RETRY_BACKOFF = (0.2, 5.0)  # first and longest pause between reconnection attempts
STOP_FLUSH_TIMEOUT = 5.0  # seconds a stopping transport gets to deliver what it holds, broker reachable
STOP_UNREACHABLE_GRACE = 0.5  # seconds a stopping thread gets when it has no broker to talk to
REMINDER_EVERY = 60.0  # seconds between warnings that the transport is still unreachable


@attrs.define
class Subscription:
    topic: str  # full topic name
    handler: object  # handler(message, key) -> None or awaitable
    keys: frozenset | None  # only records with these keys; None for all
    eager: bool = False  # fetch eagerly while records flow (see Transport.subscribe)
    live: bool = False  # subscribed without a group: from the newest record on, never committed


@attrs.frozen
class Interest:
    """What a consumer follows of one topic, summed over its subscriptions to it."""

    live: bool  # only live views want it: start at the newest record, commit nothing
    keys: frozenset | None  # only records with these keys are wanted (None: all)


@attrs.frozen
class Entry:
    """One record on its way to the loop: its handlers and message, or the reason it is skipped."""

    handlers: tuple
    key: str | None
    message: dict | None
    problem: str | None
    topic: str
    position: object  # backend-specific; what to commit once applied


class Backoff:
    def __init__(self, first=RETRY_BACKOFF[0], longest=RETRY_BACKOFF[1]):
        self.first, self.longest = first, longest
        self.current = first

    def next(self):
        delay, self.current = self.current, min(self.current * 2, self.longest)
        return delay

    def reset(self):
        self.current = self.first


class Transport:
    """Base of transport plugins. Subclasses provide the sender and consumer backends."""

    #: attrs class of this transport's keys in the ``transport`` config section.
    options_class = None
    kind = None

    def __init__(self, daemon):
        self.daemon = daemon
        self.config = daemon.config.transport
        self.options = self.config.options
        self.prefix = self.config.topic_prefix
        self.loop = None
        self.stats = collections.Counter()
        self._outbox = collections.deque()
        self._cond = threading.Condition()
        self._closing = False
        self._closed = threading.Event()  # set with _closing; a backoff waits on it, not on publishes
        self._sender = None
        self._sender_connected = False
        self._consumers = {}
        self._last_drop_log = 0.0
        self._reach_lock = threading.Lock()
        self._parts_up = {}  # sender or consumer -> whether it talked to the broker last time
        self._down_since = None  # when the transport was reported unreachable; None while it is not
        self._reminded = 0.0
        #: Called on the loop after each batch of records is applied and before its positions
        #: are committed: a role that writes in batches flushes here, so nothing is committed
        #: that is not stored.
        self.barriers = []

    def topic(self, name):
        return f"{self.prefix}.{name}"

    # -- what roles use ---------------------------------------------------------------

    def publish(self, topic, key, message):
        """Queue ``message`` (a dict from :func:`evd.messages.make`) for ``topic``, keyed by ``key``."""
        record = (self.topic(topic), key, messages.encode(message))
        with self._cond:
            if self._closing:
                raise RuntimeError("the transport is stopping")
            if len(self._outbox) >= OUTBOX_LIMIT:
                self._outbox.popleft()
                self.stats["dropped"] += 1
                self._log_drop()
            self._outbox.append(record)
            self.stats["published"] += 1
            self._cond.notify()

    def subscribe(self, topic, handler, *, group=None, keys=None, eager=False):
        """Call ``handler(message, key)`` on the loop for each valid message on ``topic``.

        With a ``group``, delivery resumes after the last applied record across restarts
        (new groups start at the oldest retained record); without one, it starts at the
        newest record (a live view). ``keys`` limits delivery to records with those keys.
        ``eager``: while records flow, fetch with short waits, for the hops everyone waits on
        (central's); other consumers wait long between fetches, which costs an idle or lightly
        loaded daemon almost nothing, at up to half a fetch wait per hop on brokers that hold
        fetches (tansu) and none on Apache Kafka.

        A live view rides on the daemon's first group consumer when it has one: every fetch
        loop costs an idle daemon CPU (and the broker a request), one loop costs it once.
        """
        live = group is None
        consumer = self._consumers.get(group)
        if live and consumer is None:
            consumer = next((c for c in self._consumers.values() if c.group), None)
        if consumer is None:
            consumer = self._consumers[group] = self.consumer_class(self, group)
            if self.loop is not None:
                consumer.start_on(self.loop)
        consumer.add(Subscription(self.topic(topic), handler, frozenset(keys) if keys is not None else None, eager, live))

    @property
    def connected(self):
        return self._sender_connected and all(c.connected for c in self._consumers.values())

    @property
    def pending(self):
        """Messages published and not yet accepted by the broker or the log."""
        with self._cond:
            return len(self._outbox) + self.unconfirmed()

    @property
    def ready(self):
        """Every consumer follows its topics (a consumer group has joined, partitions assigned)."""
        return all(c.ready for c in self._consumers.values())

    def where(self):
        """What this transport talks to, for log lines ("the broker at host:port")."""
        return f"the {self.kind} transport's peer"

    def status(self):
        return {"kind": self.kind, "connected": self.connected, "ready": self.ready, "outbox": self.pending}

    async def start(self):
        self.loop = asyncio.get_running_loop()
        self._sender = threading.Thread(target=self._send_loop, name=f"{self.kind}-sender", daemon=True)
        self._sender.start()
        for consumer in self._consumers.values():
            consumer.start_on(self.loop)

    async def stop(self):
        """Stop consuming, then deliver everything still in the outbox (bounded wait).

        The wait is STOP_FLUSH_TIMEOUT while the sender reaches its peer, STOP_UNREACHABLE_GRACE
        while it does not (waiting longer delivers nothing): what is left then is reported.
        """
        await asyncio.gather(*(c.stop() for c in self._consumers.values()))
        with self._cond:
            self._closing = True
            self._closed.set()
            self._cond.notify_all()
        if self._sender is not None:
            await join(self._sender, lambda: STOP_FLUSH_TIMEOUT + 1 if self._sender_connected else STOP_UNREACHABLE_GRACE)
        left = self.pending
        if left:
            log.error("stopped with %d message(s) not delivered to %s", left, self.where())

    def report(self, part, up, error=None):
        """Called by the sender and consumer threads after each attempt; logs reachability changes.

        One warning when ``part`` fails (``error``) or loses its peer, a reminder every
        REMINDER_EVERY while that lasts, one info line once every part reaches the peer again.
        """
        now = time.monotonic()
        with self._reach_lock:
            was_up = self._parts_up.get(part, False)
            self._parts_up[part] = up
            if not up and (error is not None or was_up):
                if self._down_since is None:
                    self._down_since = self._reminded = now
                    log.warning(
                        "%s transport: cannot reach %s (%s); retrying in the background",
                        self.kind,
                        self.where(),
                        error or "connection lost",
                    )
                elif now - self._reminded >= REMINDER_EVERY:
                    self._reminded = now
                    log.warning(
                        "%s transport: %s still unreachable after %.0fs (%s); %d message(s) waiting",
                        self.kind,
                        self.where(),
                        now - self._down_since,
                        error or "connection lost",
                        self.pending,
                    )
            elif up and self._down_since is not None and self.connected:
                log.info("%s transport: reached %s again after %.0fs", self.kind, self.where(), now - self._down_since)
                self._down_since = None

    # -- backend interface: the sender side -------------------------------------------

    def open_sender(self):
        """Connect the sending client (in the sender thread); raise to retry later."""

    def send_batch(self, batch):
        """Hand ``batch`` of (topic, key, value) to the backend; return how many were accepted."""
        raise NotImplementedError

    def sender_alive(self):
        """A cheap liveness check run when the sender is idle."""
        return True

    def flush_and_close_sender(self, timeout):
        """Deliver what the backend still holds and close it (in the sender thread)."""

    def unconfirmed(self):
        """Messages the backend accepted but the broker has not confirmed yet."""
        return 0

    consumer_class = None

    # -- the sender thread --------------------------------------------------------------

    def _send_loop(self):
        backoff = Backoff()
        opened = False
        while True:
            with self._cond:
                if not self._outbox and not self._closing:
                    self._cond.wait(1.0)
                batch = [self._outbox[i] for i in range(min(SEND_BATCH, len(self._outbox)))]
                closing = self._closing
            if not batch and closing:
                break
            try:
                if not opened:
                    self.open_sender()
                    opened = True
                if batch:
                    accepted = self.send_batch(batch)
                    with self._cond:
                        for _ in range(accepted):
                            self._outbox.popleft()
                    if accepted < len(batch):
                        raise ConnectionError("the broker did not take every message")
                self._sender_connected = self.sender_alive()
                self.report("sender", self._sender_connected)
                backoff.reset()
            except Exception as e:
                self._sender_connected = False
                self.report("sender", False, _describe(e))
                delay = backoff.next()
                log.debug("%s transport cannot send (%s); retrying in %.1fs", self.kind, e, delay)
                if self._closed.wait(delay):
                    break  # stopping, and the peer does not answer: report what is left and stop
        if opened:
            try:
                # Waiting on an unreachable broker delivers nothing: close at once then.
                self.flush_and_close_sender(STOP_FLUSH_TIMEOUT if self._sender_connected else 0)
            except Exception as e:
                log.error("%s transport: closing the sender failed: %s", self.kind, e)

    def _log_drop(self):
        now = time.monotonic()
        if now - self._last_drop_log > 10:
            self._last_drop_log = now
            log.error("outbox full (%d messages): dropping the oldest; %d dropped so far", OUTBOX_LIMIT, self.stats["dropped"])


class Consumer:
    """One consumer client in its own thread, feeding the loop; subclasses talk to the backend."""

    def __init__(self, transport, group):
        self.transport = transport
        self.group = group
        self.subscriptions = []
        self.connected = False
        self.ready = False  # set by the backend once it follows every subscribed topic
        self._lock = threading.Lock()
        self._changed = False
        self._stopping = threading.Event()
        self._done = {}  # backend position key -> position applied by the loop
        self._backlog = 0
        self._records_at = -HOT_FOR  # when records last came (monotonic)
        self._thread = None
        self._queue = None
        self._dispatcher = None

    @property
    def kind(self):
        return self.transport.kind

    @property
    def eager(self):
        """Some subscription of this consumer wants short fetch waits while records flow."""
        return any(s.eager for s in self.subscriptions)

    def hot(self):
        """An eager consumer whose records came within HOT_FOR: its backend fetches with short waits."""
        return self.eager and time.monotonic() - self._records_at < HOT_FOR

    def add(self, subscription):
        with self._lock:
            self.subscriptions.append(subscription)
            self._changed = True
        self.wake()

    def start_on(self, loop):
        self._queue = asyncio.Queue()
        self._dispatcher = loop.create_task(self._dispatch())
        self._thread = threading.Thread(target=self._run, name=f"{self.kind}-consumer-{self.group or 'live'}", daemon=True)
        self._thread.start()

    async def stop(self):
        self._stopping.set()
        self.wake()
        # A consumer that does not reach its peer has nothing to commit there: a short wait.
        grace = lambda: 10 if self.connected else STOP_UNREACHABLE_GRACE  # noqa: E731
        if self._thread is not None and not await join(self._thread, grace) and self.connected:
            log.warning(
                "%s consumer (%s) did not close in time; its last positions may be delivered again", self.kind, self.group or "live"
            )
        if self._dispatcher is not None:
            self._dispatcher.cancel()
            await asyncio.gather(self._dispatcher, return_exceptions=True)

    # -- backend interface ------------------------------------------------------------

    def open(self):
        """Create the client (in this thread); raise to retry later."""

    def resubscribe(self, interests):
        """Follow exactly the topics of ``interests`` (topic -> :class:`Interest`) from now on."""

    def fetch(self, timeout):
        """Return a list of (topic, key_bytes, value_bytes, position) in order, as soon as there are
        any; wait at most ``timeout`` seconds for them (or until :meth:`wake`)."""
        raise NotImplementedError

    def wake(self):
        """End a fetch that is waiting for records (any thread); a backend that cannot lets it time out."""

    def commit(self, done):
        """Record ``done`` (position key -> position) as applied, for the group; False: retry later."""

    def close(self):
        """Close the client (in this thread), committing what is done."""

    def throttle(self, on):
        """Stop (``on``) or restart fetching while the loop is behind."""

    def alive(self):
        return True

    def keep_alive(self):
        """Called instead of fetch while throttled; returns records if the backend still delivered some."""
        return []

    def position_key(self, position):
        """What identifies the sequence a position belongs to (a partition)."""
        raise NotImplementedError

    # -- the thread ---------------------------------------------------------------------

    def _run(self):
        backoff = Backoff()
        opened = False
        throttled = False
        committed_at = 0.0
        while not self._stopping.is_set():
            try:
                if not opened:
                    self.open()
                    opened = True
                    self._changed = True
                with self._lock:
                    changed, self._changed = self._changed, False
                    interests = interests_of(self.subscriptions)
                if changed:
                    self.resubscribe(interests)
                if time.monotonic() - committed_at >= COMMIT_EVERY:
                    # Not after every fetch: a replay after a crash is harmless (handlers are idempotent).
                    committed_at = time.monotonic()
                    self._commit_done()
                behind = self._backlog > MAX_BACKLOG
                if behind != throttled:
                    self.throttle(behind)
                    throttled = behind
                if behind:
                    time.sleep(0.05)  # the loop has 5,000 records to apply: keep the group, not the GIL
                    records = self.keep_alive()
                    if records:
                        self._hand_over(records)  # never drop what a backend returned
                    continue
                records = self.fetch(IDLE_FETCH)
                self.connected = self.alive()
                self.transport.report(self, self.connected)
                backoff.reset()
                if records:
                    self._hand_over(records)
            except Exception as e:
                self.connected = self.ready = False
                self.transport.report(self, False, _describe(e))
                delay = backoff.next()
                log.debug("%s consumer (%s) failed: %s; retrying in %.1fs", self.kind, self.group or "live", e, delay)
                if opened:
                    self._close_quietly()
                    opened = False
                self._stopping.wait(delay)
        if opened:
            self._commit_done()
            self._close_quietly()

    def _close_quietly(self):
        try:
            self.close()
        except Exception as e:
            log.debug("closing the %s consumer: %s", self.kind, e)

    def _hand_over(self, records):
        self._records_at = time.monotonic()
        with self._lock:
            subscriptions = list(self.subscriptions)
        batch = []
        for topic, raw_key, raw_value, position in records:
            key = raw_key.decode("utf-8", "replace") if raw_key is not None else None
            handlers = tuple(s.handler for s in subscriptions if s.topic == topic and (s.keys is None or key in s.keys))
            message = problem = None
            if handlers:
                try:
                    message = messages.decode(raw_value)
                except messages.MalformedMessage as e:
                    problem = str(e)
            batch.append(Entry(handlers, key, message, problem, topic, position))
        with self._lock:
            self._backlog += len(batch)
        self.transport.loop.call_soon_threadsafe(self._queue.put_nowait, batch)

    def _commit_done(self):
        with self._lock:
            done, self._done = self._done, {}
        if not done:
            return
        try:
            committed = self.commit(done) is not False
        except Exception:
            committed = False
            raise
        finally:
            if not committed:
                with self._lock:  # keep them for the next attempt, unless newer ones arrived
                    for key, position in done.items():
                        self._done.setdefault(key, position)

    async def _dispatch(self):
        stats = self.transport.stats
        while True:
            batch = await self._queue.get()
            done = {}
            for count, entry in enumerate(batch, 1):
                if count % YIELD_EVERY == 0:
                    await asyncio.sleep(0)  # a backlog must not starve heartbeats and requests
                if entry.problem is not None:
                    stats["malformed"] += 1
                    log.warning("skipping a malformed record on %s (key %r): %s", entry.topic, entry.key, entry.problem)
                elif entry.handlers:
                    stats["consumed"] += 1
                    for handler in entry.handlers:
                        try:
                            result = handler(entry.message, entry.key)
                            if inspect.isawaitable(result):
                                await result
                        except messages.MalformedMessage as e:
                            stats["malformed"] += 1
                            log.warning("skipping a record on %s (key %r): %s", entry.topic, entry.key, e)
                        except Exception:
                            log.exception("handler failed on a %r message on %s; skipped", entry.message.get("type"), entry.topic)
                done[self.position_key(entry.position)] = entry.position
            for barrier in self.transport.barriers:
                try:
                    result = barrier()
                    if inspect.isawaitable(result):
                        await result
                except Exception:
                    # Not stored: keep the positions uncommitted so the records come again.
                    log.exception("storing a batch failed; its records will be delivered again")
                    done = {}
            with self._lock:
                self._done.update(done)
                self._backlog -= len(batch)
            await asyncio.sleep(0)


def interests_of(subscriptions):
    """topic -> Interest, in topic order: live only if no group subscription wants the topic,
    keyed only if every subscription to it is."""
    interests = {}
    for topic in sorted({s.topic for s in subscriptions}):
        on_topic = [s for s in subscriptions if s.topic == topic]
        keyed = all(s.keys is not None for s in on_topic)
        keys = frozenset().union(*(s.keys for s in on_topic)) if keyed else None
        interests[topic] = Interest(live=all(s.live for s in on_topic), keys=keys)
    return interests


async def join(thread, timeout):
    """Wait on the loop for ``thread`` to end, at most ``timeout()`` seconds (asked again as it
    changes); True if it ended. A thread left behind is a daemon thread: it dies with the process.

    Polls instead of joining in an executor thread: a join still running there would hold
    the process at exit, past any timeout given here.
    """
    started = time.monotonic()
    while thread.is_alive() and time.monotonic() - started < timeout():
        await asyncio.sleep(0.02)
    if thread.is_alive():
        log.debug("%s did not finish within %.1fs; leaving it behind", thread.name, time.monotonic() - started)
        return False
    return True


def _describe(error):
    name, text = type(error).__name__, str(error)
    return text if text.startswith(name) else f"{name}: {text}" if text else name
