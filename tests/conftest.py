import os
import pathlib
import shutil
import tempfile

import pytest

from helpers import EvdProcess, make_env

PLUGIN_SOURCE = pathlib.Path(__file__).parent / "plugins" / "evd_testplugin.py"

# The daemons under test read only the configs the tests write, whatever this machine's
# /etc/evcharging/evd.yaml says.
os.environ.setdefault("EVD_SITE_CONFIG", "")


@pytest.fixture
def short_tmp():
    """A short temporary directory: UNIX socket paths are limited to 107 bytes."""
    path = pathlib.Path(tempfile.mkdtemp(prefix="evd-"))
    yield path
    shutil.rmtree(path, ignore_errors=True)


@pytest.fixture(scope="session")
def plugin_dir(tmp_path_factory):
    """A directory holding the test plugin as an installed distribution with an ``evd`` entry point."""
    folder = tmp_path_factory.mktemp("plugin")
    shutil.copy(PLUGIN_SOURCE, folder / PLUGIN_SOURCE.name)
    dist_info = folder / "evd_testplugin-0.1.dist-info"
    dist_info.mkdir()
    (dist_info / "METADATA").write_text("Metadata-Version: 2.1\nName: evd-testplugin\nVersion: 0.1\n")
    (dist_info / "entry_points.txt").write_text("[evd]\nprobe = evd_testplugin\n")
    return folder


@pytest.fixture
def plugin_env(plugin_dir, short_tmp):
    """Environment for evd/evctl processes that see the test plugin and keep sockets in ``short_tmp``."""
    return make_env(PYTHONPATH=plugin_dir, RUNTIME_DIRECTORY=short_tmp)


@pytest.fixture
def probe_daemon(short_tmp, plugin_env):
    """A running evd in the probe role; yields (process, socket path)."""
    socket = short_tmp / "probe.sock"
    config = short_tmp / "probe.yaml"
    config.write_text(f"name: probe\nrole: probe\ncontrol: {{socket: {socket}}}\nprobe: {{marker: {short_tmp / 'marker'}}}\n")
    daemon = EvdProcess(config, short_tmp / "probe.log", env=plugin_env).start()
    try:
        daemon.wait_ready(socket)
        yield daemon, socket
    finally:
        if daemon.alive():
            daemon.kill()


@pytest.fixture(scope="session")
def kafka_bootstrap(tmp_path_factory):
    """A Kafka-protocol broker for the whole session: EVD_TEST_KAFKA, or a tansu started here."""
    from brokers import TansuBroker, external_kafka

    if external_kafka():
        yield external_kafka()
        return
    broker = TansuBroker(log_path=tmp_path_factory.mktemp("tansu") / "tansu.log").start()
    try:
        yield broker.bootstrap
    finally:
        broker.kill()


@pytest.fixture
def own_broker(tmp_path):
    """A tansu broker of this test's own, for tests that pause or stop it."""
    from brokers import TansuBroker

    broker = TansuBroker(log_path=tmp_path / "tansu.log")
    yield broker
    broker.kill()
