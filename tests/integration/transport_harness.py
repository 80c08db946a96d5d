"""Transports in-process on a real event loop, against a real broker or SQLite file."""

import asyncio
import uuid

import attrs

from evd.config import HostPort, TransportConfig
from evd.plugins.kafka import KafkaOptions, KafkaTransport
from evd.plugins.local import LocalOptions, LocalTransport


@attrs.define
class FakeConfig:
    transport: TransportConfig


@attrs.define
class FakeDaemon:
    config: FakeConfig
    name: str = "test"


def make_transport(kind, prefix, *, bootstrap=None, path=None, name="test"):
    if kind == "kafka":
        host, port = bootstrap.rsplit(":", 1)
        options = KafkaOptions(bootstrap=HostPort(host, int(port)), partitions=3)
        cls = KafkaTransport
    else:
        options = LocalOptions(path=path)
        cls = LocalTransport
    daemon = FakeDaemon(FakeConfig(TransportConfig(kind=kind, topic_prefix=prefix, options=options)), name=name)
    return cls(daemon)


def new_prefix():
    return f"t{uuid.uuid4().hex[:10]}"


# Generous: a loaded CI machine once took more than 20 s to deliver a first record (when
# consumers still joined their groups, which took seconds on tansu).
FIRST_DELIVERY = 60.0


async def wait_until(predicate, timeout=FIRST_DELIVERY, interval=0.02, message="condition"):
    deadline = asyncio.get_running_loop().time() + timeout
    while not predicate():
        if asyncio.get_running_loop().time() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {message}")
        await asyncio.sleep(interval)
