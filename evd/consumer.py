"""Consumer threads, fed by both transports: each owns its client alone, decodes records off the
loop, hands them over in batches with ``call_soon_threadsafe`` and commits a record's position
only after the loop has applied it (and every barrier stored it): at-least-once, in order per key.
"""

import asyncio
import inspect
import logging
import threading
import time

import attrs

from . import messages
from .threads import STOP_UNREACHABLE_GRACE, Backoff, describe, join

log = logging.getLogger(__name__)
AUDIT = {"audit": True}  # a warning central's audit log records as an ERROR (evd.plugins.audit)

MAX_BACKLOG = 5_000  # records handed to the loop and not applied yet, per consumer
YIELD_EVERY = 200  # records applied before the dispatcher lets sockets and timers run
COMMIT_EVERY = 0.2  # seconds between commits of applied positions (a commit is a broker round trip)
#: Longest a consumer thread waits in one fetch while nothing arrives. Records end the wait at
#: once (a long poll); what else waits on it (a new subscription, a commit, stopping) is woken
#: by Consumer.wake where the backend can, else waits at most this. Short waits cost idle CPU:
#: kafka-python 3 hands each poll to its network thread (~10 context switches per poll).
IDLE_FETCH = 1.0
HOT_FOR = 10.0  # seconds an eager consumer stays hot (short fetch waits) after its last records


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
                self.transport.report(self, False, describe(e))
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
                    log.warning("skipping a malformed record on %s (key %r): %s", entry.topic, entry.key, entry.problem, extra=AUDIT)
                elif entry.handlers:
                    stats["consumed"] += 1
                    for handler in entry.handlers:
                        try:
                            result = handler(entry.message, entry.key)
                            if inspect.isawaitable(result):
                                await result
                        except messages.MalformedMessage as e:
                            stats["malformed"] += 1
                            log.warning("skipping a record on %s (key %r): %s", entry.topic, entry.key, e, extra=AUDIT)
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
