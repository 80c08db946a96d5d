import pathlib

import attrs
import pytest

from evd import config
from evd.config import SITE_ENV, Duration, HostPort
from evd.errors import ConfigError


@attrs.frozen
class CentralSection:
    listen: HostPort = HostPort("0.0.0.0", 7000)
    database: pathlib.Path = pathlib.Path("central.db")
    heartbeat_timeout: Duration = attrs.field(default=Duration(3), validator=config.positive)
    open_registration: bool = True


@attrs.frozen
class MonitorSection:
    cp_id: str
    price: float = 0.5
    location: str = ""


@attrs.frozen
class KafkaOptions:
    bootstrap: HostPort = HostPort("localhost", 9092)
    partitions: int = 3


@attrs.frozen
class LocalOptions:
    path: pathlib.Path = pathlib.Path("bus.db")


class BusRole:
    uses_bus = True


class Kafka:
    options_class = KafkaOptions


class Local:
    options_class = LocalOptions


SCHEMA = config.Schema(
    roles={"central": BusRole, "monitor": type("M", (), {"uses_bus": False})},
    transports={"kafka": Kafka, "local": Local},
    sections={"central": CentralSection, "monitor": MonitorSection},
)


def write(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


def load(tmp_path, text, overrides=(), name="instance.yaml"):
    return config.load(write(tmp_path, name, text), SCHEMA, overrides)


def error_of(tmp_path, text, overrides=(), name="instance.yaml"):
    with pytest.raises(ConfigError) as info:
        load(tmp_path, text, overrides, name)
    return str(info.value)


def test_valid_config_becomes_typed_objects(tmp_path):
    cfg = load(tmp_path, "role: central\ntransport: {kind: kafka, bootstrap: '10.0.0.1:9092'}\ncentral:\n  heartbeat_timeout: 500ms\n")
    assert cfg.name == "central"  # the name defaults to the role
    assert cfg.transport.kind == "kafka"
    assert cfg.transport.options == KafkaOptions(bootstrap=HostPort("10.0.0.1", 9092))
    assert cfg.section("central").heartbeat_timeout == pytest.approx(0.5)
    assert cfg.section("central").listen == HostPort("0.0.0.0", 7000)


def test_yaml_syntax_error_names_file_and_line(tmp_path):
    message = error_of(tmp_path, "role: central\ncentral:\n  listen: [oops\n")
    assert message.startswith(f"{tmp_path / 'instance.yaml'}:")
    assert "YAML syntax error" in message


def test_unknown_key_names_its_line_and_suggests(tmp_path):
    message = error_of(tmp_path, "role: central\ncentral:\n  heartbeat_timout: 3s\n")
    assert message == f"{tmp_path / 'instance.yaml'}:3: unknown key 'central.heartbeat_timout' (did you mean 'central.heartbeat_timeout'?)"


def test_unknown_top_level_section(tmp_path):
    assert error_of(tmp_path, "role: central\nweather: {}\n").endswith(":2: unknown key 'weather'")


@pytest.mark.parametrize("value", ["3", "3 seconds", "-1s", "fast"])
def test_bad_duration(tmp_path, value):
    message = error_of(tmp_path, f"role: central\ncentral:\n  heartbeat_timeout: {value}\n")
    assert ":3: central.heartbeat_timeout: expected a duration" in message


def test_duration_must_be_positive(tmp_path):
    assert "must be greater than zero" in error_of(tmp_path, "role: central\ncentral: {heartbeat_timeout: 0s}\n")


@pytest.mark.parametrize("value", ["localhost", "host:0", "host:70000", "host:abc", ":7000", "bad host:1", "[zz]:1"])
def test_bad_host_port(tmp_path, value):
    message = error_of(tmp_path, f"role: central\ncentral:\n  listen: '{value}'\n")
    assert ":3: central.listen:" in message


def test_host_port_forms():
    assert HostPort.parse("[::1]:7000") == HostPort("::1", 7000)
    assert str(HostPort.parse("[::1]:7000")) == "[::1]:7000"
    assert str(HostPort.parse("central.lab:9092")) == "central.lab:9092"


def test_missing_role(tmp_path):
    assert error_of(tmp_path, "name: x\n") == f"{tmp_path / 'instance.yaml'}:1: missing required key 'role'"


def test_unknown_role_lists_known_ones(tmp_path):
    assert "unknown role 'centrl' (known roles: central, monitor)" in error_of(tmp_path, "role: centrl\n")


def test_missing_required_section_key(tmp_path):
    assert "missing required key 'monitor.cp_id'" in error_of(tmp_path, "role: monitor\nmonitor: {price: 0.3}\n")


def test_wrong_types(tmp_path):
    assert "central.open_registration: expected true or false" in error_of(tmp_path, "role: central\ncentral: {open_registration: maybe}\n")
    assert "transport.partitions: expected a whole number" in error_of(
        tmp_path, "role: central\ntransport: {kind: kafka, partitions: 2.5}\n"
    )
    assert "'central' must be a mapping" in error_of(tmp_path, "role: central\ncentral: [1, 2]\n")


def test_string_fields_keep_what_was_written(tmp_path):
    # YAML would read these as numbers or booleans; ids and addresses are text.
    cfg = load(tmp_path, "role: monitor\nmonitor: {cp_id: 007, location: no}\n")
    assert cfg.section("monitor").cp_id == "007"
    assert cfg.section("monitor").location == "no"


def test_unknown_transport_kind(tmp_path):
    assert "unknown transport kind 'mqtt' (known kinds: kafka, local)" in error_of(tmp_path, "role: central\ntransport: {kind: mqtt}\n")


def test_other_transports_keys_are_accepted_but_checked(tmp_path):
    cfg = load(tmp_path, "role: central\ntransport: {kind: local, bootstrap: 'b:9092', path: /tmp/x.db}\n")
    assert cfg.transport.options == LocalOptions(pathlib.Path("/tmp/x.db"))
    assert "transport.bootstrap" in error_of(tmp_path, "role: central\ntransport: {kind: local, bootstrap: nope}\n")


def test_duplicate_key(tmp_path):
    assert error_of(tmp_path, "role: central\nrole: monitor\n").endswith(":2: duplicate key 'role'")


def test_layers_site_instance_dropins_and_overrides(tmp_path):
    write(tmp_path, "evd.yaml", "transport: {kind: kafka, bootstrap: 'site:9092', partitions: 6}\ncentral: {heartbeat_timeout: 5s}\n")
    (tmp_path / "central.d").mkdir()
    write(tmp_path / "central.d", "10-local.yaml", "central: {open_registration: false}\n")
    cfg = load(tmp_path, "role: central\ntransport: {bootstrap: 'inst:9092'}\n", ["central.heartbeat_timeout=2s"], name="central.yaml")
    assert cfg.transport.options == KafkaOptions(bootstrap=HostPort("inst", 9092), partitions=6)
    assert cfg.section("central").heartbeat_timeout == 2
    assert cfg.section("central").open_registration is False
    assert cfg.files == (str(tmp_path / "evd.yaml"), str(tmp_path / "central.yaml"), str(tmp_path / "central.d" / "10-local.yaml"))


def test_the_machine_site_file_is_layered_under_instances_anywhere(tmp_path, monkeypatch):
    site = write(tmp_path, "site.yaml", "transport: {kind: kafka, bootstrap: 'site:9092'}\nlog: {level: debug}\n")
    monkeypatch.setenv(SITE_ENV, str(site))
    (tmp_path / "elsewhere").mkdir()
    write(tmp_path / "elsewhere", "evd.yaml", "log: {level: warning}\n")
    cfg = load(tmp_path / "elsewhere", "role: central\n", name="central.yaml")
    assert cfg.transport.options.bootstrap == HostPort("site", 9092)
    assert cfg.log.level == "warning"  # the directory's evd.yaml comes after the machine's
    assert cfg.files == (str(site), str(tmp_path / "elsewhere" / "evd.yaml"), str(tmp_path / "elsewhere" / "central.yaml"))
    monkeypatch.setenv(SITE_ENV, "")
    assert load(tmp_path / "elsewhere", "role: central\n", name="central.yaml").transport.kind == "local"


def test_error_in_site_file_points_there(tmp_path):
    write(tmp_path, "evd.yaml", "transport:\n  kind: kafka\n  partitons: 3\n")
    assert error_of(tmp_path, "role: central\n").startswith(f"{tmp_path / 'evd.yaml'}:3: unknown key 'transport.partitons'")


def test_bad_override(tmp_path):
    assert "--set central.listen=nowhere: central.listen:" in error_of(tmp_path, "role: central\n", ["central.listen=nowhere"])
    assert "expected --set key.path=value" in error_of(tmp_path, "role: central\n", ["central.listen"])


def test_empty_and_non_mapping_files(tmp_path):
    assert "missing required key 'role'" in error_of(tmp_path, "")
    assert "must be a mapping" in error_of(tmp_path, "- a\n- b\n")


def test_unreadable_file(tmp_path):
    with pytest.raises(ConfigError, match="cannot read configuration"):
        config.load(tmp_path / "missing.yaml", SCHEMA)


def test_invalid_name(tmp_path):
    assert "invalid name" in error_of(tmp_path, "role: central\nname: '../etc'\n")


def test_duration_text():
    assert Duration.parse("500ms") == pytest.approx(0.5)
    assert Duration.parse("2m") == 120
    assert str(Duration.parse("1.5s")) == "1.5s"
