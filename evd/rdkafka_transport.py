"""The rdkafka transport's implementation: Kafka through confluent-kafka (librdkafka, in C).

The same topics, keys, groups, offsets and configuration keys as the kafka transport
(evd.kafka_transport, kafka-python); what differs is the cost per daemon. librdkafka does its
network work in C threads that release the GIL, so a fetch or a delivery costs a Python
daemon a few microseconds instead of kafka-python's ~2 ms: measured on tansu, an idle
consumer 0.12 % of a core instead of 0.27 %, one record a second produced and consumed
0.17 % instead of 0.5 % (bench/RESULTS.md, round 12). Imported only by daemons that use it.

librdkafka connects in the background and never fails a constructor: reachability is what
its error callback says (all brokers down) until a metadata request answers again.
"""

import logging
import time

from confluent_kafka import OFFSET_END, OFFSET_STORED, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka import Consumer as RdConsumer
from confluent_kafka.admin import AdminClient, NewTopic

from evd.consumer import Consumer
from evd.kafka_partitions import partitions_of
from evd.plugins.kafka import BrokerTransport

log = logging.getLogger(__name__)

LIVENESS_EVERY = 2.0  # seconds between checks that a client believed cut off reaches the broker again
BOOTSTRAP_TIMEOUT = 3.0  # seconds a client's first metadata request may take before the attempt fails
RECONNECT_BACKOFF_MAX_MS = 5000  # longest pause between librdkafka's reconnection attempts
#: Fetch wait of an eager consumer (central's). librdkafka cannot change it on a live client,
#: so an eager consumer always fetches with it; in C it costs an idle consumer ~0.3 % of a core.
HOT_FETCH_WAIT = 0.05
FETCH_BATCH = 1000  # records taken from librdkafka's queue per fetch
QUEUE_KBYTES = 4096  # librdkafka's prefetch per partition (default 64 MB): a small daemon stays small
CUT_OFF = frozenset({KafkaError._ALL_BROKERS_DOWN, KafkaError._TRANSPORT, KafkaError._RESOLVE, KafkaError._TIMED_OUT})
REFUSED = frozenset({KafkaError.REBALANCE_IN_PROGRESS, KafkaError.ILLEGAL_GENERATION, KafkaError.UNKNOWN_MEMBER_ID})
ERROR_LOG_EVERY = 60.0  # seconds before the same librdkafka error is logged again


class Reachability:
    """What one librdkafka client knows of the broker: cut off by its error callback, back once a
    metadata request answers (tried at most every LIVENESS_EVERY, and only while cut off)."""

    def __init__(self):
        self.up = True
        self._last_try = 0.0
        self._logged = {}  # error code -> when it was last logged

    def on_error(self, error):
        """librdkafka's error_cb, run in the thread that polls the client."""
        if error.code() in CUT_OFF:
            self.up = False
            log.debug("librdkafka: %s", error.str())
            return
        now = time.monotonic()
        if now - self._logged.get(error.code(), -ERROR_LOG_EVERY) >= ERROR_LOG_EVERY:
            self._logged[error.code()] = now
            log.warning("librdkafka: %s", error.str())

    def check(self, client):
        if not self.up and time.monotonic() - self._last_try >= LIVENESS_EVERY:
            self._last_try = time.monotonic()
            try:
                client.list_topics(timeout=1.0)
                self.up = True
            except KafkaException:
                pass
        return self.up


class LibrdkafkaLog:
    """librdkafka's log lines (connection attempts, mostly), to evd's log at debug level: the
    transport reports reachability itself, once, naming the broker."""

    def log(self, level, fmt, *args):
        log.debug(fmt, *args)


class RdKafkaTransport(BrokerTransport):
    kind = "rdkafka"

    def __init__(self, daemon):
        super().__init__(daemon)
        self._producer = None
        self._reach = Reachability()

    def client_config(self, reach):
        options = self.options
        return {
            "bootstrap.servers": str(options.bootstrap),
            "client.id": f"evd-{self.daemon.name}",
            "reconnect.backoff.max.ms": RECONNECT_BACKOFF_MAX_MS,
            "log.connection.close": False,
            # KIP-714 metrics push: brokers without it (tansu) are asked again every few seconds.
            "enable.metrics.push": False,
            "logger": LibrdkafkaLog(),
            "error_cb": reach.on_error,
            **security_config(options),
        }

    def create_topics(self, names):
        admin = AdminClient(self.client_config(Reachability()))
        existing = admin.list_topics(timeout=BOOTSTRAP_TIMEOUT).topics
        wanted = [NewTopic(t, self.options.partitions, self.options.replication_factor) for t in names if t not in existing]
        for topic, future in (admin.create_topics(wanted, request_timeout=10) if wanted else {}).items():
            try:
                future.result()
                log.info("created topic %s", topic)
            except KafkaException as e:
                if e.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise

    # -- sender -----------------------------------------------------------------------

    def open_sender(self):
        producer = Producer(
            {
                **self.client_config(self._reach),
                "acks": "all",
                "enable.idempotence": True,
                "linger.ms": 5,
                "message.timeout.ms": 3_600_000,  # keep retrying a broker that is away, in order
                "partitioner": "murmur2_random",  # where kafka-python and Java put a key (evd.kafka_partitions)
                "on_delivery": self._delivered,
            }
        )
        reach_broker(producer)
        self._producer = producer

    def send_batch(self, batch):
        self.ensure_topics({topic for topic, _, _ in batch})
        accepted = 0
        for topic, key, value in batch:
            try:
                self._producer.produce(topic, value=value, key=key.encode() if key is not None else None)
            except BufferError:
                break  # librdkafka's queue is full: the rest waits in the outbox
            accepted += 1
        self._producer.poll(0)  # delivery reports and errors
        return accepted

    def _delivered(self, error, message):
        if error is None:
            self._reach.up = True
            return
        log.error("delivery to %s failed (%s): sending it again", message.topic(), error.str())
        key = message.key()
        with self._cond:
            self._outbox.appendleft((message.topic(), key.decode() if key is not None else None, message.value()))
            self._cond.notify()

    def unconfirmed(self):
        producer = self._producer
        return len(producer) if producer is not None else 0

    def sender_alive(self):
        self._producer.poll(0)
        return self._reach.check(self._producer)

    def flush_and_close_sender(self, timeout):
        self._producer.flush(timeout)  # what is left is reported by the transport


class RdKafkaGroupConsumer(Consumer):
    """A consumer thread; with a group it commits, without one it follows the newest records.

    Like the kafka transport's, it takes its partitions itself (``incremental_assign``): the
    group keeps the offsets, nobody joins or rebalances. librdkafka prefetches in its own
    threads; :meth:`fetch` waits for the first record and takes what is already queued.
    """

    client = None

    def open(self):
        transport = self.transport
        self._reach = Reachability()
        self._eager = self.eager  # what its fetch wait was chosen for
        wait = transport.options.fetch_max_wait
        client = RdConsumer(
            {
                **transport.client_config(self._reach),
                # librdkafka wants a group even to assign partitions itself; a live view commits nothing
                "group.id": self.group or f"evd-live-{transport.daemon.name}",
                "enable.auto.commit": False,
                "enable.auto.offset.store": False,
                "auto.offset.reset": "earliest" if self.group else "latest",
                "fetch.wait.max.ms": max(1, int(min(HOT_FETCH_WAIT, wait) * 1000 if self._eager else wait * 1000)),
                "queued.max.messages.kbytes": QUEUE_KBYTES,
            }
        )
        try:
            reach_broker(client)
        except BaseException:
            client.close()
            raise
        self.client = client
        self._assigned = set()
        self._live = set()  # partitions followed only by live views: never committed
        self._live_floor = {}  # partition -> first offset a live view delivers

    def resubscribe(self, interests):
        if self.eager != self._eager:
            # An eager subscription came after the client was made (a role subscribes once the
            # transport runs): librdkafka cannot change a live client's fetch wait, so make it again.
            self.close()
            self.open()
        self.transport.ensure_topics(set(interests))
        partitions, live = set(), set()
        for topic, interest in interests.items():
            described = self.client.list_topics(topic, timeout=BOOTSTRAP_TIMEOUT).topics.get(topic)
            if described is None or described.error is not None or not described.partitions:
                raise ConnectionError(f"no metadata for topic {topic} yet")
            wanted = {(topic, n) for n in partitions_of(interest.keys, described.partitions)}
            partitions |= wanted
            if interest.live:
                live |= wanted
        gone, new = self._assigned - partitions, partitions - self._assigned
        if gone:
            self.client.incremental_unassign([TopicPartition(t, n) for t, n in sorted(gone)])
        if new:
            start = {tp: OFFSET_END if tp in live else OFFSET_STORED for tp in new}
            self.client.incremental_assign([TopicPartition(t, n, start[(t, n)]) for t, n in sorted(new)])
        if new - live:
            log.info("%s: following %s", self.group, ", ".join(sorted({t for t, _ in new - live})))
        self._assigned, self._live = partitions, live
        self.ready = True

    def fetch(self, timeout):
        for partition in self._live - self._live_floor.keys():
            self._floor_of(partition)  # before records come, so that the first ones are kept
        first = self.client.poll(timeout)
        if first is None:
            return []
        records = []
        for message in (first, *self.client.consume(FETCH_BATCH - 1, 0)):
            if message.error() is not None:
                self._reach.on_error(message.error())
                continue
            self._reach.up = True  # a record came from the broker (an error event alone says nothing of it)
            position = (message.topic(), message.partition())
            if position in self._live and message.offset() < self._floor_of(position):
                continue
            records.append((position[0], message.key(), message.value(), (position, message.offset())))
        return records

    def _floor_of(self, partition):
        """The first offset a live view delivers: the high-water mark of its first fetch answer, not
        the broker's "latest offset" answer, which some brokers (tansu 0.6) get wrong."""
        floor = self._live_floor.get(partition)
        if floor is None:
            _, high = self.client.get_watermark_offsets(TopicPartition(*partition), cached=True)
            if high < 0:
                return float("inf")  # no fetch answer yet: nothing is delivered before one
            floor = self._live_floor[partition] = high
        return floor

    def position_key(self, position):
        return position[0]

    def commit(self, done):
        offsets = [TopicPartition(t, n, offset + 1) for (t, n), (_, offset) in done.items() if (t, n) not in self._live]
        if not self.group or not offsets:
            return
        try:
            self.client.commit(offsets=offsets, asynchronous=False)
        except KafkaException as e:
            if e.args[0].code() not in REFUSED:
                raise
            log.warning("%s: offsets not committed (%s): is another consumer using this group?", self.group, e.args[0].str())
            return False
        return True

    def keep_alive(self):
        return self.fetch(0)

    def throttle(self, on):
        assigned = [TopicPartition(t, n) for t, n in sorted(self._assigned)]
        if on:
            self.client.pause(assigned)
        else:
            self.client.resume(assigned)

    def alive(self):
        return self._reach.check(self.client)

    def close(self):
        if self.client is not None:
            self.client.close()
            self.client = None


RdKafkaTransport.consumer_class = RdKafkaGroupConsumer


def reach_broker(client):
    """A first metadata request: librdkafka's constructors never fail, and a client that cannot
    reach the broker must fail its attempt (the thread tries again, the transport reports it)."""
    try:
        client.list_topics(timeout=BOOTSTRAP_TIMEOUT)
    except KafkaException as e:
        raise ConnectionError(e.args[0].str()) from None


#: kafka-python's names for the security keys (the transport section's) -> librdkafka's.
SECURITY_NAMES = {
    "ssl_cafile": "ssl.ca.location",
    "ssl_certfile": "ssl.certificate.location",
    "ssl_keyfile": "ssl.key.location",
    "sasl_mechanism": "sasl.mechanism",
    "sasl_plain_username": "sasl.username",
    "sasl_plain_password": "sasl.password",
}


def security_config(options):
    config = {"security.protocol": options.security_protocol}
    for name, librdkafka_name in SECURITY_NAMES.items():
        if getattr(options, name) is not None:
            config[librdkafka_name] = str(getattr(options, name))
    return config
