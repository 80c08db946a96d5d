"""The rdkafka transport plugin: Kafka through librdkafka (confluent-kafka), an optional extra.

The same broker, topics and configuration keys as the kafka transport (its KafkaOptions);
a daemon costs less CPU, start-up and memory with it (evd.rdkafka_transport says how much).
kafka-python stays the default client; ``pip install 'evcharging[rdkafka]'`` adds this one.
"""

import evd
from evd.errors import ConfigError
from evd.plugins.kafka import KafkaOptions


class RdKafkaTransport:
    """What the plugin registers: the options; instantiating it gives the real transport."""

    kind = "rdkafka"
    options_class = KafkaOptions

    def __new__(cls, daemon):
        try:
            from evd.rdkafka_transport import RdKafkaTransport as Implementation
        except ImportError as e:
            raise ConfigError(f"transport kind rdkafka needs confluent-kafka ({e}): pip install 'evcharging[rdkafka]'") from None
        return Implementation(daemon)


@evd.hookimpl
def evd_register_transports():
    return {"rdkafka": RdKafkaTransport}
