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


def test_the_same_settings_reach_librdkafka_under_its_names():
    from evd.rdkafka_transport import security_config

    options = KafkaOptions(
        security_protocol="SSL", ssl_cafile=pathlib.Path("/etc/ssl/ca.pem"), ssl_keyfile=pathlib.Path("/k.pem"), sasl_plain_password="pw"
    )
    assert security_config(options) == {
        "security.protocol": "SSL",
        "ssl.ca.location": "/etc/ssl/ca.pem",
        "ssl.key.location": "/k.pem",
        "sasl.password": "pw",
    }
