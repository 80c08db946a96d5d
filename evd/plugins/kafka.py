"""The Kafka transport plugin: its configuration keys, and the transport once a daemon uses it.

The transport itself (evd.kafka_transport) imports kafka-python, which only daemons on Kafka
need: a monitor, a panel or evctl never loads it.
"""

import pathlib
import threading
import typing

import attrs

import evd
from evd.bus import Transport
from evd.config import Duration, HostPort, positive


@attrs.frozen
class KafkaOptions:
    bootstrap: HostPort = HostPort("localhost", 9092)
    partitions: int = attrs.field(default=3, validator=positive)
    replication_factor: int = attrs.field(default=1, validator=positive)
    #: kafka-python's max_poll_interval_ms. evd's consumers take their partitions without
    #: joining their group, so it no longer matters; accepted for existing configurations.
    rebalance_timeout: Duration = attrs.field(default=Duration(10), validator=positive)
    #: How long the broker may hold a fetch while no data arrives. Apache Kafka ends it when a
    #: record arrives; tansu 0.6 holds it about half this long. Central's consumers use 50 ms
    #: while records flow (evd.kafka_transport.HOT_FETCH_WAIT). Each fetch costs kafka-python
    #: ~2 ms of CPU: a 50 ms wait kept an idle consumer at ~4 % of a core, 1 s at ~0.4 %.
    fetch_max_wait: Duration = attrs.field(default=Duration(1), validator=positive)
    # TLS and SASL, passed to kafka-python as they are, for sites whose brokers require them.
    security_protocol: typing.Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    ssl_cafile: pathlib.Path | None = None
    ssl_certfile: pathlib.Path | None = None
    ssl_keyfile: pathlib.Path | None = None
    sasl_mechanism: str | None = None
    sasl_plain_username: str | None = None
    sasl_plain_password: str | None = None

    def security_args(self):
        names = ("ssl_cafile", "ssl_certfile", "ssl_keyfile", "sasl_mechanism", "sasl_plain_username", "sasl_plain_password")
        args = {name: str(getattr(self, name)) for name in names if getattr(self, name) is not None}
        return {"security_protocol": self.security_protocol, **args}


class BrokerTransport(Transport):
    """What both Kafka transports (kafka-python's, librdkafka's) share: the keys, the broker named
    in log lines, the topics made at most once per process."""

    options_class = KafkaOptions

    def __init__(self, daemon):
        super().__init__(daemon)
        self._topics_made = set()
        self._topics_lock = threading.Lock()

    def where(self):
        return f"the broker at {self.options.bootstrap}"

    def ensure_topics(self, topics):
        """Create missing topics with the configured partitions (brokers may not auto-create them)."""
        with self._topics_lock:
            missing = sorted(t for t in topics if t not in self._topics_made)
            if missing:
                self.create_topics(missing)
                self._topics_made.update(missing)

    def create_topics(self, names):
        """Create those of ``names`` the broker does not have (another client may be creating them too)."""
        raise NotImplementedError


class KafkaTransport:
    """What the plugin registers: the options; instantiating it gives the real transport."""

    kind = "kafka"
    options_class = KafkaOptions

    def __new__(cls, daemon):
        from evd.kafka_transport import KafkaTransport as Implementation

        return Implementation(daemon)


@evd.hookimpl
def evd_register_transports():
    return {"kafka": KafkaTransport}
