"""Kafka-protocol brokers for tests: tansu (evd.testing), or a real Kafka from ``EVD_TEST_KAFKA``."""

import os

from evd.testing import TansuBroker, free_port, port_open, tansu_binary

__all__ = ["TansuBroker", "external_kafka", "free_port", "port_open", "tansu_binary"]


def external_kafka():
    """``host:port`` of a real Kafka to test against instead of tansu, if the environment names one."""
    return os.environ.get("EVD_TEST_KAFKA") or None
