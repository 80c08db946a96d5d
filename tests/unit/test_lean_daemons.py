"""Each role imports what it uses: a monitor, a panel or evctl never pays for Kafka, SQLite tools or AES."""

import json
import subprocess
import sys

import pytest

HEAVY = ("kafka", "confluent_kafka", "sqlite_utils", "cryptography", "urwid", "prometheus_client", "http.client", "aiohttp")

PROBE = """
import json, sys
from evd.pluginmanager import load_plugins
from evd.plugins.kafka import KafkaTransport
plugins = load_plugins()
assert KafkaTransport.options_class is not None
for name in sys.argv[1:]:
    __import__(name)
print(json.dumps(sorted(m for m in {heavy!r} if m in sys.modules)))
"""


def heavy_modules_after(*imports):
    code = PROBE.format(heavy=HEAVY)
    result = subprocess.run([sys.executable, "-c", code, *imports], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def test_loading_every_plugin_imports_no_heavy_library():
    assert heavy_modules_after() == []


@pytest.mark.parametrize("module", ["evd.daemon", "evd.ctl", "evd.compat", "evd.plugins.local"])
def test_what_every_daemon_and_evctl_load_stays_light(module):
    assert heavy_modules_after(module) == []


def test_the_kafka_transport_still_loads_when_a_daemon_uses_it():
    assert "kafka" in heavy_modules_after("evd.kafka_transport")


def test_the_rdkafka_transport_loads_librdkafka_and_not_kafka_python():
    assert heavy_modules_after("evd.rdkafka_transport") == ["confluent_kafka"]


def test_a_daemon_other_than_central_never_loads_centrals_modules():
    code = "import sys; from evd.pluginmanager import load_plugins; load_plugins(); import evd.daemon; " + (
        "print(sorted(m for m in sys.modules if m.startswith('evd.central.') or m in ('evd.sessions', 'evd.api.tokens')))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['evd.central.config']"  # its config section only: every daemon validates it


def test_the_rdkafka_transport_without_librdkafka_is_a_config_error(tmp_path):
    from evd.testing import free_port

    config = tmp_path / "engine.yaml"
    config.write_text(
        "name: e1\nrole: engine\ntransport: {kind: rdkafka, bootstrap: 127.0.0.1:9}\n"
        f"control: {{socket: {tmp_path / 'e1.sock'}}}\nengine: {{listen: 127.0.0.1:{free_port()}, journal: {tmp_path / 'j'}}}\n"
    )
    hide = "import sys; sys.modules['confluent_kafka'] = None; from evd.cli import main; sys.exit(main())"
    result = subprocess.run([sys.executable, "-c", hide, "run", "-c", str(config)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 2, result.stderr
    assert "pip install 'evcharging[rdkafka]'" in result.stderr
    assert "Traceback" not in result.stderr
