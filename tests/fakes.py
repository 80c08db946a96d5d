"""A fake daemon for role tests: a bus that records what is published, the real State."""

import asyncio
import json

from evd.dispatcher import Dispatcher
from evd.pluginmanager import command_table
from evd.plugins import driver as driver_plugin
from evd.plugins.driver import Driver, DriverConfig
from evd.state import State


class FakeBus:
    def __init__(self):
        self.published = []

    def publish(self, topic, key, message):
        # Through JSON as on a real transport: a NaN survives it, as it does between processes.
        self.published.append((topic, key, json.loads(json.dumps(message))))

    def subscribe(self, *args, **kwargs):
        pass


class FakeConfig:
    def __init__(self, role, section):
        self.role, self._section = role, section

    def section(self, name):
        return self._section


class FakeDaemon:
    def __init__(self, role, section):
        self.role_name = role
        self.config = FakeConfig(role, section)
        self.bus = FakeBus()
        self.state = State()
        self.audited = []

    def spawn(self, coroutine):
        return asyncio.ensure_future(coroutine)

    def audit(self, *args, **kwargs):
        self.audited.append(args)

    def seal(self, topic, key, message):
        return message


def driver_dispatcher(**config):
    daemon = FakeDaemon("driver", DriverConfig(id="D1", **config))
    daemon.role = Driver(daemon)
    handlers = driver_plugin.evd_control_commands(daemon)
    return Dispatcher(handlers, command_table(), daemon=daemon), daemon


def requests_sent(daemon):
    return [m for topic, _key, m in daemon.bus.published if topic == "driver.requests" and m["type"] == "request"]


async def until(predicate, timeout=5.0):
    """Let the loop run until ``predicate()`` holds (the async form of helpers.wait_for)."""
    async with asyncio.timeout(timeout):
        while not predicate():
            await asyncio.sleep(0.01)


async def call(dispatcher, cmd, **args):
    return await dispatcher.dispatch({"id": 1, "cmd": cmd, "args": args})
