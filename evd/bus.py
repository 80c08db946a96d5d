"""The event stream as roles see it: :meth:`Transport.publish` and :meth:`Transport.subscribe`.

Roles call :meth:`Transport.publish` (never blocks: messages wait in a bounded outbox that a
sender thread drains) and :meth:`Transport.subscribe` (a handler that runs on the daemon's
loop; the consumer threads are evd.consumer's). Delivery is at-least-once, in order per key.
"""

import asyncio
import collections
import logging
import threading
import time

from . import messages
from .consumer import Subscription
from .threads import STOP_UNREACHABLE_GRACE, Backoff, describe, join

log = logging.getLogger(__name__)

OUTBOX_LIMIT = 100_000  # messages kept while the broker is away; past it the oldest are dropped
SEND_BATCH = 500
STOP_FLUSH_TIMEOUT = 5.0  # seconds a stopping transport gets to deliver what it holds, broker reachable
REMINDER_EVERY = 60.0  # seconds between warnings that the transport is still unreachable


class TransportStopping(RuntimeError):
    """A publish on a transport that is stopping: what the daemon's last background tasks may meet."""


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
                raise TransportStopping("the transport is stopping")
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
                self.report("sender", False, describe(e))
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
