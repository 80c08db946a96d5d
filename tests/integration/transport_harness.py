"""Transports in-process on a real event loop, against a real broker or SQLite file (evd.testing)."""

import functools

from evd import testing
from evd.testing import make_transport, new_prefix

__all__ = ["FIRST_DELIVERY", "make_transport", "new_prefix", "wait_until"]

# Generous: a loaded CI machine once took more than 20 s to deliver a first record (when
# consumers still joined their groups, which took seconds on tansu).
FIRST_DELIVERY = 60.0

wait_until = functools.partial(testing.wait_until, timeout=FIRST_DELIVERY)
