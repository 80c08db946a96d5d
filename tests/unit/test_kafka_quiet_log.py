"""What a Kafka transport logs while its broker is away: one warning, reminders, one line when back."""

import logging
import types

import pytest
from kafka.errors import KafkaConnectionError

from evd import bus
from evd.config import HostPort, TransportConfig
from evd.plugins.kafka import KafkaOptions, KafkaTransport


@pytest.fixture
def transport():
    options = KafkaOptions(bootstrap=HostPort("127.0.0.1", 9))
    daemon = types.SimpleNamespace(name="t", config=types.SimpleNamespace(transport=TransportConfig(kind="kafka", options=options)))
    return KafkaTransport(daemon)


def lines(caplog, level):
    return [r.getMessage() for r in caplog.records if r.levelno == level and r.name == "evd.bus"]


def test_one_warning_then_reminders_then_one_info(transport, caplog, monkeypatch):
    caplog.set_level(logging.INFO)
    for _ in range(5):
        transport.report("sender", False, "KafkaTimeoutError: Unable to bootstrap")
    assert lines(caplog, logging.WARNING) == [
        "kafka transport: cannot reach the broker at 127.0.0.1:9 (KafkaTimeoutError: Unable to bootstrap); retrying in the background"
    ]
    monkeypatch.setattr(bus, "REMINDER_EVERY", 0.0)
    transport.report("sender", False, "KafkaTimeoutError: Unable to bootstrap")
    assert "still unreachable" in lines(caplog, logging.WARNING)[-1]
    transport._sender_connected = True
    transport.report("sender", True)
    transport.report("sender", True)
    infos = lines(caplog, logging.INFO)
    assert len(infos) == 1 and infos[0].startswith("kafka transport: reached the broker at 127.0.0.1:9 again after")


def test_still_connecting_is_not_a_failure_but_losing_the_broker_is(transport, caplog):
    caplog.set_level(logging.INFO)
    transport.report("sender", False)  # not connected yet, and nothing failed
    assert lines(caplog, logging.WARNING) == []
    transport.report("sender", True)
    transport.report("sender", False)  # it was up: the connection is lost
    assert lines(caplog, logging.WARNING) == [
        "kafka transport: cannot reach the broker at 127.0.0.1:9 (connection lost); retrying in the background"
    ]


class Collect(logging.Handler):
    def __init__(self):
        super().__init__()
        self.records = []

    def emit(self, record):
        self.records.append(record)


def test_kafka_python_connection_noise_goes_to_debug_and_other_lines_are_rate_limited(transport, caplog):
    # What evd's handlers (on the root logger) receive; caplog itself also listens on the
    # non-propagating "kafka" logger, ahead of the gate.
    caplog.set_level(logging.INFO)
    seen = Collect()
    logging.getLogger().addHandler(seen)
    try:
        manager = logging.getLogger("kafka.net.manager")
        for _ in range(20):
            manager.error("Connection failed: %s", KafkaConnectionError("111 ECONNREFUSED"))
            manager.warning("Bootstrap %s not ready; waiting %.2f secs", "bootstrap-0", 0.1)
        for _ in range(3):
            logging.getLogger("kafka.net.connection").error("%s: SaslHandshake failed: %s", "conn", "IllegalSaslState")
    finally:
        logging.getLogger().removeHandler(seen)
    shown = [(r.levelname, r.getMessage()) for r in seen.records if r.name.startswith("kafka")]
    assert shown == [("ERROR", "conn: SaslHandshake failed: IllegalSaslState")]
