"""A real Kafka daemon whose broker is unreachable: a quiet log, a prompt stop, and it reconnects (issue 12, item 7)."""

import re
import time

import pytest

from brokers import TansuBroker, free_port
from helpers import EvdProcess, evctl_json, make_env, wait_for

pytestmark = pytest.mark.timeout(120)

NOISY = re.compile(r" (ERROR|WARNING|CRITICAL) ")


@pytest.fixture
def unreachable(short_tmp):
    """A driver daemon on the kafka transport whose bootstrap is a closed loopback port."""
    port = free_port()  # bound, then closed: nobody listens there
    sock = short_tmp / "driver.sock"
    config = short_tmp / "driver.yaml"
    config.write_text(
        "name: driver-D9\nrole: driver\n"
        f"control: {{socket: {sock}}}\n"
        f"transport: {{kind: kafka, bootstrap: '127.0.0.1:{port}', topic_prefix: unreach}}\n"
        "driver: {id: D9}\n"
    )
    env = make_env(RUNTIME_DIRECTORY=short_tmp)
    daemon = EvdProcess(config, short_tmp / "driver.log", env=env).start()
    try:
        daemon.wait_ready(sock)
        yield daemon, sock, port, env
    finally:
        daemon.kill()


def status(sock, env):
    return evctl_json(sock, "status", env=env)


def noisy_lines(daemon):
    return [line for line in daemon.log().splitlines() if NOISY.search(line)]


def timed_stop(daemon):
    started = time.monotonic()
    code = daemon.stop(timeout=15)
    return code, time.monotonic() - started


def test_one_warning_naming_the_broker_and_a_prompt_stop(unreachable):
    daemon, sock, port, env = unreachable
    wait_for(lambda: status(sock, env)["uptime_s"] >= 5, timeout=20, message="5 s of uptime")
    assert status(sock, env)["transport"]["connected"] is False
    noisy = noisy_lines(daemon)
    assert len(noisy) <= 3, "\n".join(noisy)
    assert any(" WARNING " in line and f"127.0.0.1:{port}" in line for line in noisy), daemon.log()
    code, took = timed_stop(daemon)
    assert code == 0, daemon.log()
    assert took < 3, f"stopped in {took:.1f}s:\n{daemon.log()}"


def test_reconnects_when_the_broker_comes(unreachable, tmp_path):
    daemon, sock, port, env = unreachable
    wait_for(lambda: f"127.0.0.1:{port}" in daemon.log(), timeout=20, message="the unreachable warning")
    broker = TansuBroker(port=port, log_path=tmp_path / "tansu.log").start()
    try:
        wait_for(lambda: status(sock, env)["transport"]["connected"], timeout=40, message="transport connected")
        wait_for(lambda: re.search(rf" INFO .*reached .*127\.0\.0\.1:{port}", daemon.log()), timeout=10, message="the INFO line")
        code, took = timed_stop(daemon)
        assert code == 0, daemon.log()
        assert took < 3, f"stopped in {took:.1f}s:\n{daemon.log()}"
    finally:
        broker.kill()
