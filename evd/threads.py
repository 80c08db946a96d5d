"""What the transports' threads share: a back-off between attempts, joining a thread from the loop, an error in words."""

import asyncio
import logging
import time

log = logging.getLogger(__name__)

RETRY_BACKOFF = (0.2, 5.0)  # first and longest pause between reconnection attempts
STOP_UNREACHABLE_GRACE = 0.5  # seconds a stopping thread gets when it has no peer to talk to


class Backoff:
    def __init__(self, first=RETRY_BACKOFF[0], longest=RETRY_BACKOFF[1]):
        self.first, self.longest = first, longest
        self.current = first

    def next(self):
        delay, self.current = self.current, min(self.current * 2, self.longest)
        return delay

    def reset(self):
        self.current = self.first


async def join(thread, timeout):
    """Wait on the loop for ``thread`` to end, at most ``timeout()`` seconds (asked again as it
    changes); True if it ended. A thread left behind is a daemon thread: it dies with the process.

    Polls instead of joining in an executor thread: a join still running there would hold
    the process at exit, past any timeout given here.
    """
    started = time.monotonic()
    while thread.is_alive() and time.monotonic() - started < timeout():
        await asyncio.sleep(0.02)
    if thread.is_alive():
        log.debug("%s did not finish within %.1fs; leaving it behind", thread.name, time.monotonic() - started)
        return False
    return True


def describe(error):
    name, text = type(error).__name__, str(error)
    return text if text.startswith(name) else f"{name}: {text}" if text else name
