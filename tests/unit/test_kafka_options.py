import pathlib

from evd.plugins.kafka import KafkaOptions


def test_tls_and_sasl_settings_reach_kafka_python():
    options = KafkaOptions(
        security_protocol="SASL_SSL", ssl_cafile=pathlib.Path("/etc/ssl/ca.pem"), sasl_mechanism="PLAIN", sasl_plain_username="evd"
    )
    assert options.security_args() == {
        "security_protocol": "SASL_SSL",
        "ssl_cafile": "/etc/ssl/ca.pem",
        "sasl_mechanism": "PLAIN",
        "sasl_plain_username": "evd",
    }


def test_plaintext_by_default():
    assert KafkaOptions().security_args() == {"security_protocol": "PLAINTEXT"}
