"""Each role imports what it uses: a monitor, a panel or evctl never pays for Kafka, SQLite tools or AES."""

import json
import subprocess
import sys

import pytest

HEAVY = ("kafka", "sqlite_utils", "cryptography", "urwid", "prometheus_client", "http.client", "aiohttp")

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
