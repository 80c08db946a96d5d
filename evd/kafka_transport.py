"""The Kafka transport's implementation (kafka-python 3.x): one shared producer, one consumer thread per group.

Imported only by daemons that use Kafka (evd.plugins.kafka registers it): kafka-python costs
about 10 MB and 0.1 s of start-up in every process that imports it.

Clients are created in the threads that own them, because creating one blocks while the
broker is away (at most BOOTSTRAP_TIMEOUT, then the thread tries again); the daemon keeps
running and reports ``connected: false`` meanwhile. The transport says so in one warning
naming the broker (bus.Transport.report); kafka-python's own lines about it go to debug.
"""

import logging
import threading
import time

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic
from kafka.errors import (
    CommitFailedError,
    KafkaConnectionError,
    KafkaTimeoutError,
    NodeNotReadyError,
    RebalanceInProgressError,
    TopicAlreadyExistsError,
)
from kafka.net import KafkaNetClient
from kafka.structs import OffsetAndMetadata

from evd.consumer import Consumer
from evd.kafka_partitions import partitions_of
from evd.plugins.kafka import BrokerTransport

log = logging.getLogger(__name__)

LIVENESS_EVERY = 2.0  # seconds between connection-count checks
BOOTSTRAP_TIMEOUT_MS = 3000  # a client's constructor gives up on the broker after this (kafka-python: 30 s)
RECONNECT_BACKOFF_MAX_MS = 5000  # longest pause between kafka-python's own reconnection attempts (30 s)
KAFKA_LOG_EVERY = 60.0  # seconds before the same kafka-python log line is let through again
#: Fetch wait of an eager consumer that had records lately. Some brokers (tansu 0.6) hold a fetch
#: until about half its wait even when records arrive meanwhile: a short wait keeps those hops fast.
HOT_FETCH_WAIT = 0.05


class KafkaTransport(BrokerTransport):
    kind = "kafka"

    def __init__(self, daemon):
        super().__init__(daemon)
        quiet_kafka_logs()
        self._producer = None
        self._unconfirmed = 0
        self._last_liveness = 0.0
        self._alive = False

    def client_args(self):
        return {
            "bootstrap_servers": str(self.options.bootstrap),
            "client_id": f"evd-{self.daemon.name}",
            "bootstrap_timeout_ms": BOOTSTRAP_TIMEOUT_MS,
            "reconnect_backoff_max_ms": RECONNECT_BACKOFF_MAX_MS,
            **self.options.security_args(),
        }

    def create_topics(self, names):
        admin = construct(KafkaAdminClient, **self.client_args())
        try:
            existing = set(admin.list_topics())
            wanted = [NewTopic(t, self.options.partitions, self.options.replication_factor) for t in names if t not in existing]
            if wanted:
                try:
                    admin.create_topics(wanted)
                    log.info("created topics %s", ", ".join(t.name for t in wanted))
                except TopicAlreadyExistsError:
                    pass
        finally:
            admin.close()

    # -- sender -----------------------------------------------------------------------

    def open_sender(self):
        self._producer = construct(
            KafkaProducer,
            **self.client_args(),
            acks="all",
            linger_ms=5,
            max_block_ms=2000,  # send() waits at most this for metadata; the outbox keeps the rest
            delivery_timeout_ms=3_600_000,  # keep retrying a broker that is away, in order
        )

    def send_batch(self, batch):
        self.ensure_topics({topic for topic, _, _ in batch})
        for index, record in enumerate(batch):
            topic, key, value = record
            try:
                future = self._producer.send(topic, key=key.encode() if key is not None else None, value=value)
            except KafkaTimeoutError:
                return index
            with self._cond:
                self._unconfirmed += 1
            future.add_callback(self._confirmed)
            future.add_errback(self._failed, record)
        return len(batch)

    def _confirmed(self, _metadata):
        with self._cond:
            self._unconfirmed -= 1

    def _failed(self, error, record):
        log.error("delivery to %s failed (%s): sending it again", record[0], error)
        with self._cond:
            self._unconfirmed -= 1
            self._outbox.appendleft(record)
            self._cond.notify()

    def unconfirmed(self):
        return self._unconfirmed

    def sender_alive(self):
        now = time.monotonic()
        if now - self._last_liveness > LIVENESS_EVERY:
            self._last_liveness = now
            self._alive = _connection_count(self._producer, "producer-metrics") > 0
        return self._alive

    def flush_and_close_sender(self, timeout):
        try:
            self._producer.flush(timeout)
        except KafkaTimeoutError:
            pass  # the transport reports what is left undelivered
        finally:
            self._producer.close(timeout)


class KafkaGroupConsumer(Consumer):
    """A consumer thread; with a group it commits, without one it follows the newest records.

    Each evd group has one member (``central-NAME``, ``engine-CP``, ``driver-ID``), so the
    consumer takes every partition itself: the group stores its offsets, but nobody joins,
    rebalances or heartbeats. A group join costs seconds on tansu, and kafka-python 3.0 busy-
    loops a joined consumer whose broker stops answering (engines then missed health checks).
    """

    client = None
    _last_liveness = 0.0
    _alive = False
    _commits_refused = False

    def open(self):
        transport = self.transport
        self.client = construct(
            KafkaConsumer,
            **transport.client_args(),
            group_id=self.group,  # where committed offsets are kept; positions start there
            enable_auto_commit=False,
            auto_offset_reset="earliest" if self.group else "latest",
            max_poll_interval_ms=int(transport.options.rebalance_timeout * 1000),
            fetch_max_wait_ms=max(1, int(transport.options.fetch_max_wait * 1000)),
        )
        self._assigned = set()
        self._live = set()  # partitions followed only by live views: never committed
        self._live_floor = {}  # partition -> first offset a live view delivers
        self._fetch_wait = transport.options.fetch_max_wait

    def resubscribe(self, interests):
        self.transport.ensure_topics(set(interests))
        # Only once the broker describes every topic: partitions missed now would be missed
        # until the next metadata refresh (minutes).
        partitions, live = set(), set()
        for topic, interest in interests.items():
            numbers = self.client.partitions_for_topic(topic)
            if not numbers:
                raise ConnectionError(f"no metadata for topic {topic} yet")
            wanted = {TopicPartition(topic, n) for n in partitions_of(interest.keys, numbers)}
            partitions |= wanted
            if interest.live:
                live |= wanted
        new = partitions - self._assigned
        self.client.assign(sorted(partitions))
        if new & live:
            self.client.seek_to_end(*(new & live))
        if new - live:
            log.info("%s: following %s", self.group, ", ".join(sorted({tp.topic for tp in new - live})))
        self._assigned, self._live = partitions, live
        self.ready = True

    def fetch(self, timeout):
        self._adapt_fetch_wait()
        polled = self.client.poll(timeout_ms=int(timeout * 1000), max_records=1000)
        if self._live:
            self._drop_old(polled)
        return [(tp.topic, r.key, r.value, (tp, r.offset)) for tp, records in polled.items() for r in records]

    def _adapt_fetch_wait(self):
        """An eager consumer: a short fetch wait while records flow; every other one, and an eager
        one once quiet, the configured long wait.

        Each fetch costs kafka-python 3 about 2 ms of CPU (hand-offs to its network thread): a
        50 ms wait kept a consumer at ~4 % of a core, 1 s at ~0.4 %. 200 engines and drivers
        fetching eagerly would need four cores; central alone can afford it.
        """
        longest = self.transport.options.fetch_max_wait
        wanted = min(HOT_FETCH_WAIT, longest) if self.hot() else longest
        if wanted != self._fetch_wait:
            # kafka-python reads this per fetch request; it has no public setter.
            self.client._fetcher.config["fetch_max_wait_ms"] = max(1, int(wanted * 1000))
            self._fetch_wait = wanted

    def _drop_old(self, polled):
        # A live view starts at the high-water mark of its first fetch, not at the broker's
        # "latest offset" answer, which some brokers (tansu) get wrong.
        for tp in self._live:
            if tp not in self._live_floor and self.client.highwater(tp) is not None:
                self._live_floor[tp] = self.client.highwater(tp)
        for tp in self._live.intersection(polled):
            floor = self._live_floor.get(tp)
            polled[tp] = [r for r in polled[tp] if floor is not None and r.offset >= floor]

    def position_key(self, position):
        return position[0]

    def commit(self, done):
        offsets = {tp: OffsetAndMetadata(offset + 1, None, -1) for tp, (_, offset) in done.items() if tp not in self._live}
        if not self.group or not offsets:
            return
        try:
            self.client.commit(offsets)
        except (RebalanceInProgressError, CommitFailedError) as e:
            # Another client has joined this group as a member (a second daemon of the same
            # name, an older evd): the broker refuses our offsets; keep them and say so, once.
            if not self._commits_refused:
                log.warning("%s: offsets not committed (%s): is another consumer using this group?", self.group, e)
            self._commits_refused = True
            return False
        self._commits_refused = False
        return True

    def keep_alive(self):
        # Polling keeps the group membership; paused partitions return nothing, but a partition
        # assigned since the pause may: those records are kept, not dropped.
        return self.fetch(0)

    def throttle(self, on):
        if on:
            self.client.pause(*self.client.assignment())
        else:
            self.client.resume(*self.client.paused())

    def alive(self):
        now = time.monotonic()
        if now - self._last_liveness > LIVENESS_EVERY:
            self._last_liveness = now
            self._alive = _connection_count(self.client, "consumer-metrics") > 0
        return self._alive

    def close(self):
        if self.client is not None:
            self.client.close(autocommit=False)
            self.client = None


KafkaTransport.consumer_class = KafkaGroupConsumer


class KafkaLogGate(logging.Handler):
    """kafka-python's log lines on their way to evd's handlers, without the flood.

    Connection failures are the transport's to report, once, naming the broker: kafka-python's
    lines about them (an exception of the network kind among their arguments, or a "not ready"
    wait) go to debug. Any other line passes at its level, the same call site at most once a
    KAFKA_LOG_EVERY, so that errors the transport does not know about still show.
    """

    NETWORK = (KafkaConnectionError, KafkaTimeoutError, NodeNotReadyError, OSError)
    NETWORK_LINES = frozenset(
        {
            "Bootstrap %s not ready; waiting %.2f secs",
            "No node available for metadata refresh - backoff/retry",
            "%s: socket disconnected",
        }
    )

    def __init__(self):
        super().__init__()
        self._last = {}  # (path, line) -> when a line from there was last let through
        self._lock_last = threading.Lock()

    def emit(self, record):
        root = logging.getLogger()
        if record.levelno < logging.CRITICAL and self._about_the_network(record):
            record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        elif record.levelno >= logging.WARNING:
            site, now = (record.pathname, record.lineno), time.monotonic()
            with self._lock_last:
                if now - self._last.get(site, -KAFKA_LOG_EVERY) < KAFKA_LOG_EVERY:
                    return
                self._last[site] = now
        if root.isEnabledFor(record.levelno):
            root.handle(record)

    def _about_the_network(self, record):
        args = record.args if isinstance(record.args, tuple) else ()
        return record.msg in self.NETWORK_LINES or any(isinstance(arg, self.NETWORK) for arg in args)


def quiet_kafka_logs():
    """Route the ``kafka`` loggers through a KafkaLogGate (once per process)."""
    kafka_log = logging.getLogger("kafka")
    if not any(isinstance(h, KafkaLogGate) for h in kafka_log.handlers):
        kafka_log.addHandler(KafkaLogGate())
        kafka_log.propagate = False


def construct(client_class, **config):
    """``client_class(**config)``, closing the network client it made if it fails.

    A kafka-python client whose bootstrap times out raises from its constructor and leaves its
    network client running (an IO thread, a socket pair): one per attempt while the broker is away.
    """
    made = []

    def network_client(**args):
        made.append(KafkaNetClient(**args))
        return made[-1]

    try:
        return client_class(**config, kafka_client=network_client)
    except BaseException:
        for client in made:
            try:
                client.close()
            except Exception as e:
                log.debug("closing a kafka client that did not start: %s", e)
        raise


def _connection_count(client, group):
    try:
        return client.metrics().get(group, {}).get("connection-count", 0)
    except Exception:
        return 0
