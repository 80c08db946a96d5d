"""Messages per second through each evd transport, beside raw kafka-python on the same broker.

    python -m bench.bus [--messages N] [--kinds local,kafka] [--bootstrap HOST:PORT]

Prints one JSON document on stdout; progress goes to stderr. Without ``--bootstrap`` a
memory-only tansu is started on a loopback port for the Kafka measurements and killed at the end.
"""

import argparse
import asyncio
import functools
import os
import pathlib
import platform
import sys
import tempfile
import time

import kafka
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import NewTopic

from evd import messages
from evd.bus import OUTBOX_LIMIT

from .support import (
    PARTITIONS,
    call_with_timeout,
    make_transport,
    new_prefix,
    percentile,
    progress,
    require_loopback,
    run_and_report,
    tansu_broker,
)

KINDS = ("local", "kafka")
TOPIC = "cp.telemetry"
GROUP = "bench"
PUBLISH_CHUNK = 1000  # publish this many, then let the loop serve the consumer side
STOP_TIMEOUT = 30.0  # transports bound their own stop; this is a last resort


class PhaseTimeout(Exception):
    pass


async def phase(name, awaitable, timeout):
    try:
        return await asyncio.wait_for(awaitable, timeout)
    except TimeoutError:
        raise PhaseTimeout(f"timed out after {timeout:g}s in the {name} phase") from None


class Receiver:
    """The consumer's handler: which numbers arrived, how many times, and how late."""

    def __init__(self, expected):
        self.expected = expected
        self.seen = set()
        self.duplicates = 0
        self.lags = []
        self.warmed = asyncio.Event()
        self.completed_at = None

    def __call__(self, message, key):
        if message["type"] == "warmup":
            self.warmed.set()
            return
        self.lags.append(time.time() - message["sent"])
        if message["n"] in self.seen:
            self.duplicates += 1
            return
        self.seen.add(message["n"])
        if len(self.seen) == self.expected:
            self.completed_at = time.perf_counter()  # here, not when the waiting loop next looks


async def until_done(name, outstanding, timeout, stall):
    """Wait until ``outstanding()`` is 0; fail after ``timeout`` s, or sooner once it stops going down for ``stall`` s."""
    started = last_progress = time.monotonic()
    lowest = outstanding()
    while lowest:
        await asyncio.sleep(0.001)
        now, left = time.monotonic(), outstanding()
        if left < lowest:
            lowest, last_progress = left, now
        elif now - last_progress > stall:
            raise PhaseTimeout(f"the {name} phase stalled: {left} message(s) outstanding and none done for {stall:g}s")
        if left and now - started > timeout:
            raise PhaseTimeout(f"timed out after {timeout:g}s in the {name} phase with {left} message(s) outstanding")


async def publish_all(producer, count, keys, timeout, stall):
    """Publish ``count`` messages round-robin over ``keys``, as fast as the loop allows."""
    # Stay under the outbox limit, past which the transport drops the oldest messages.
    high_water = OUTBOX_LIMIT - 2 * PUBLISH_CHUNK
    for n in range(count):
        producer.publish(TOPIC, keys[n % len(keys)], messages.make("progress", n=n, sent=time.time()))
        if n % PUBLISH_CHUNK == PUBLISH_CHUNK - 1:
            await asyncio.sleep(0)
            await until_done("publish", lambda: max(0, producer.pending - high_water), timeout, stall)


async def measure_transport(make, count, keys, timeout, stall):
    """Produce and end-to-end consume rates and publish-to-handler lag for one transport."""
    producer, consumer = make(name="bench-producer"), make(name="bench-consumer")
    receiver = Receiver(count)
    consumer.subscribe(TOPIC, receiver, group=GROUP, eager=True)
    result = {}
    try:
        await consumer.start()
        await producer.start()
        # Connections, topics and the consumer's first positions happen before the clock starts.
        started = time.perf_counter()
        producer.publish(TOPIC, "warmup", messages.make("warmup"))
        await phase("warm-up", receiver.warmed.wait(), timeout)
        result["warmup_s"] = round(time.perf_counter() - started, 3)
        progress(f"  ready after {result['warmup_s']} s; publishing {count} messages")

        first = time.perf_counter()
        await phase("publish", publish_all(producer, count, keys, timeout, stall), timeout)
        await until_done("produce", lambda: producer.pending, timeout, stall)
        produce_s = time.perf_counter() - first
        result.update(produce_s=round(produce_s, 3), produce_msgs_per_s=round(count / produce_s))
        progress(f"  produced in {produce_s:.2f} s ({count / produce_s:,.0f} msg/s)")

        await until_done("consume", lambda: count - len(receiver.seen), timeout, stall)
        consume_s = receiver.completed_at - first
        result.update(consume_s=round(consume_s, 3), consume_msgs_per_s=round(count / consume_s))
        progress(f"  consumed in {consume_s:.2f} s ({count / consume_s:,.0f} msg/s)")
    except Exception as e:
        result["error"] = str(e) if isinstance(e, PhaseTimeout) else f"{type(e).__name__}: {e}"
        progress(f"  error: {result['error']}")
    finally:
        for transport in (consumer, producer):
            try:
                await asyncio.wait_for(transport.stop(), STOP_TIMEOUT)
            except Exception as e:
                result.setdefault("error", f"stopping the {transport.daemon.name} transport: {type(e).__name__}: {e}")
    lags = sorted(receiver.lags)
    p50, p99 = percentile(lags, 0.50), percentile(lags, 0.99)
    result.update(
        lag_ms_p50=round(p50 * 1000, 2) if lags else None,
        lag_ms_p99=round(p99 * 1000, 2) if lags else None,
        lost=count - len(receiver.seen),
        duplicates=receiver.duplicates,
    )
    if producer.stats["dropped"]:
        result["dropped"] = producer.stats["dropped"]
    return result


def raw_produce(bootstrap, topic, values, keys, timeout):
    """Seconds for a plain KafkaProducer to send and flush ``values``, and how many failed."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap, client_id="evd-bench-raw")
    try:
        admin.create_topics([NewTopic(topic, PARTITIONS, 1)])
    finally:
        admin.close()
    producer = KafkaProducer(bootstrap_servers=bootstrap, client_id="evd-bench-raw", acks="all", linger_ms=5, max_block_ms=10_000)
    try:
        producer.partitions_for(topic)  # metadata and the connection before the clock starts
        first = time.perf_counter()
        futures = [producer.send(topic, key=keys[n % len(keys)], value=value) for n, value in enumerate(values)]
        producer.flush(timeout)
        elapsed = time.perf_counter() - first
        return elapsed, sum(1 for f in futures if not f.succeeded())
    finally:
        producer.close(5)


def raw_consume(bootstrap, topic, count, timeout):
    """Seconds for a plain KafkaConsumer (assigned, from the beginning) to read ``count`` records back."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, client_id="evd-bench-raw", group_id=None, enable_auto_commit=False)
    try:
        partitions = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())]
        if not partitions:
            raise RuntimeError(f"no partitions known for {topic}")
        consumer.assign(partitions)
        first = time.perf_counter()
        consumer.seek_to_beginning()
        deadline, read = first + timeout, 0
        while read < count and time.perf_counter() < deadline:
            read += sum(len(records) for records in consumer.poll(timeout_ms=100, max_records=1000).values())
        return time.perf_counter() - first, read
    finally:
        consumer.close()


def measure_raw_kafka(bootstrap, count, keys, timeout):
    """kafka-python's own rates on the same broker: the ceiling the Kafka transport works under."""
    topic = f"{new_prefix()}.raw"
    # Pre-encoded, so only the client's work is timed.
    values = [messages.encode(messages.make("progress", n=n, sent=time.time())) for n in range(count)]
    raw_keys = [k.encode() for k in keys]
    result = {}
    try:
        elapsed, failed = call_with_timeout(raw_produce, timeout + 15, bootstrap, topic, values, raw_keys, timeout)
        result["raw_produce_msgs_per_s"] = round(count / elapsed)
        if failed:
            result["raw_produce_failed"] = failed
        progress(f"  raw kafka-python produce: {elapsed:.2f} s ({count / elapsed:,.0f} msg/s)")
        elapsed, read = call_with_timeout(raw_consume, timeout + 15, bootstrap, topic, count, timeout)
        if read < count:
            raise RuntimeError(f"raw consumer read {read} of {count} records in {timeout:g}s")
        result["raw_consume_msgs_per_s"] = round(count / elapsed)
        progress(f"  raw kafka-python consume: {elapsed:.2f} s ({count / elapsed:,.0f} msg/s)")
    except Exception as e:
        result["raw_error"] = f"{type(e).__name__}: {e}"
        progress(f"  raw error: {result['raw_error']}")
    return result


def machine():
    return {
        "cpus": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "kafka_python": kafka.__version__,
    }


def parse_args(argv):
    parser = argparse.ArgumentParser(prog="python -m bench.bus", description=__doc__.split("\n")[0])
    parser.add_argument("--messages", type=int, default=20_000, help="messages per measurement (default 20000)")
    parser.add_argument("--keys", type=int, default=100, help="distinct message keys (default 100)")
    parser.add_argument("--kinds", default=",".join(KINDS), help="transports to measure, comma-separated (default local,kafka)")
    parser.add_argument("--bootstrap", help="a loopback Kafka-protocol broker to use instead of starting tansu")
    parser.add_argument("--timeout", type=float, default=120.0, help="seconds allowed per phase (default 120)")
    parser.add_argument("--stall", type=float, default=15.0, help="give up a phase after this many seconds without progress (default 15)")
    args = parser.parse_args(argv)
    args.kinds = [k.strip() for k in args.kinds.split(",") if k.strip()]
    unknown = sorted(set(args.kinds) - set(KINDS))
    if unknown or not args.kinds:
        parser.error(f"--kinds takes a comma-separated list of {', '.join(KINDS)}")
    if args.messages < 1 or args.keys < 1 or args.timeout <= 0 or args.stall <= 0:
        parser.error("--messages, --keys, --timeout and --stall must be positive")
    if args.bootstrap:
        try:
            args.bootstrap = require_loopback(args.bootstrap)
        except (ValueError, OSError) as e:
            parser.error(f"--bootstrap: {e}")
    return args


def run(args, stack):
    report = {"messages": args.messages, "keys": args.keys, "machine": machine(), "results": {}}
    keys = [f"cp{i:04d}" for i in range(args.keys)]
    folder = pathlib.Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="evd-bench-")))
    for kind in args.kinds:
        progress(f"{kind}:")
        prefix = new_prefix()
        broker = {}
        if kind == "local":
            where = {"path": folder / f"{prefix}.db"}
        else:
            try:
                where = {"bootstrap": args.bootstrap or stack.enter_context(tansu_broker())}
            except Exception as e:
                report["results"][kind] = {"error": f"no broker: {e}"}
                progress(f"  error: no broker: {e}")
                continue
            broker = {"broker": args.bootstrap or f"tansu on {where['bootstrap']} (memory storage, started here)"}
        make = functools.partial(make_transport, kind, prefix, **where)
        result = broker | asyncio.run(measure_transport(make, args.messages, keys, args.timeout, args.stall))
        if kind == "kafka" and "warmup_s" in result:
            result |= measure_raw_kafka(where["bootstrap"], args.messages, keys, args.timeout)
        elif kind == "kafka":
            result["raw_error"] = "skipped: the broker never answered the transport"
        report["results"][kind] = result
    return report


def main(argv=None):
    args = parse_args(argv)
    # A plain `kill` is handled as Ctrl-C (asyncio cancels cleanly), so a broker started here is always stopped.
    return run_and_report(args, run, failed=lambda r: any("error" in x or "raw_error" in x for x in r["results"].values()))


if __name__ == "__main__":
    sys.exit(main())
