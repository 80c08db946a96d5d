"""Whether central authorises a supply request: the rules, with no I/O (tests/unit/test_authorisation.py)."""

#: A manual supply without a driver (R4) bills a walk-in id the engine makes: no driver to register.
WALK_IN_PREFIX = "walk-in-"

#: Why a CP in each state cannot take a supply, as the driver is told.
DENIALS = {
    "DISCONNECTED": "charging point is disconnected",
    "BROKEN": "charging point is broken",
    "STOPPED": "charging point is out of order",
    "SUPPLYING": "charging point is busy",
}


def denial(request, cp, *, max_kwh, busy_at, now, known_driver=True):
    """Why ``request`` is refused, in words; None if it is authorised.

    ``cp``: the charging point asked for (None if unknown), with its ``state``, ``stopped``
    and ``weather``; ``busy_at``: the id of the CP where this driver has a supply running, or
    None; ``now``: ISO 8601, compared with the request's ``expires_at``; ``known_driver``:
    whether central serves this driver (registered, or registration is open).
    """
    expires = request.get("expires_at")
    if expires and expires < now:
        return "request expired before central received it"
    if not known_driver:
        return "unknown driver"
    if not 0 < request["kwh"] <= max_kwh:
        return f"energy must be more than 0 and at most {max_kwh:g} kWh"
    if cp is None:
        return f"unknown charging point {request['cp']}"
    if cp.state != "ACTIVE":
        reason = DENIALS.get(cp.state, f"charging point is {cp.state}")
        return f"{reason} ({cp.weather})" if cp.state == "STOPPED" and cp.weather and not cp.stopped else reason
    if busy_at is not None:
        return f"driver {request['driver']} already has a supply at {busy_at}"
    return None
