"""The HTTP clients of ``bench scale --api-clients N``, in a process of their own (they must not slow the load generator).

    python -m bench.api_clients --url http://127.0.0.1:PORT --clients N --seconds S --out FILE [--sample-every K]

N clients each GET ``/api/charging_points`` once a second (as N open dashboards would), each
request timed from sending to the last byte of its body; one more client follows
``/api/events`` and notes, for every K-th CP, when an update showed it with new energy. Writes
one JSON document to ``--out``: ``{"latencies_ms": [...], "errors": {...}, "events": [[t, cp, kwh], ...]}``
where ``t`` is ``time.monotonic()`` (one clock for every process of the machine), so that the
parent can match each update with the moment it published that record.
"""

import argparse
import asyncio
import collections
import contextlib
import json
import sys
import time

import aiohttp

POLL_EVERY = 1.0


async def poll(session, url, deadline, offset, latencies, errors):
    await asyncio.sleep(offset)  # the clients spread over the second, as real dashboards would be
    while time.monotonic() < deadline:
        started = time.monotonic()
        try:
            async with session.get(url + "/api/charging_points") as answer:
                await answer.read()
                if answer.status != 200:
                    errors[f"http_{answer.status}"] += 1
                    continue
            latencies.append((time.monotonic() - started) * 1000)
        except (aiohttp.ClientError, TimeoutError) as e:
            errors[type(e).__name__] += 1
        await asyncio.sleep(max(0.0, started + POLL_EVERY - time.monotonic()))


async def follow(session, url, deadline, sample_every, events, errors):
    """Read /api/events until the deadline, keeping (arrival, cp, kwh) for the sampled CPs' new energy."""
    last = {}
    try:
        async with session.get(url + "/api/events", timeout=aiohttp.ClientTimeout(total=None, sock_read=30)) as answer:
            kind = None
            while time.monotonic() < deadline:
                line = await answer.content.readline()
                if not line:
                    errors["events_closed"] += 1
                    return
                arrived = time.monotonic()
                if line.startswith(b"event:"):
                    kind = line[6:].strip().decode()
                elif line.startswith(b"data:") and kind == "update":
                    for op in json.loads(line[5:])["ops"]:
                        if op[0] != "set" or len(op[1]) != 2 or op[1][0] != "cps":
                            continue
                        cp, tile = op[1][1], op[2]
                        kwh = tile.get("kwh")
                        if kwh and int(cp[2:]) % sample_every == 0 and kwh != last.get(cp):
                            last[cp] = kwh
                            events.append([arrived, cp, kwh])
    except (aiohttp.ClientError, TimeoutError, ValueError, KeyError) as e:
        errors[f"events_{type(e).__name__}"] += 1


async def amain(args):
    latencies, events, errors = [], [], collections.Counter()
    deadline = time.monotonic() + args.seconds
    connector = aiohttp.TCPConnector(limit=0)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=10)) as session:
        jobs = [poll(session, args.url, deadline, i * POLL_EVERY / max(1, args.clients), latencies, errors) for i in range(args.clients)]
        jobs.append(follow(session, args.url, deadline, args.sample_every, events, errors))
        await asyncio.gather(*jobs)
    with open(args.out, "w") as out:
        json.dump({"latencies_ms": sorted(latencies), "errors": dict(errors), "events": events}, out)


def main(argv=None):
    parser = argparse.ArgumentParser(prog="python -m bench.api_clients", description=__doc__.split("\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--clients", type=int, required=True)
    parser.add_argument("--seconds", type=float, required=True)
    parser.add_argument("--sample-every", type=int, default=10, help="follow the energy of every K-th CP on /api/events")
    parser.add_argument("--out", required=True)
    args = parser.parse_args(argv)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(amain(args))
    return 0


if __name__ == "__main__":
    sys.exit(main())
