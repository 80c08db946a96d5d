"""The drivers central serves (R26): registered with ``evctl drivers add``, or on first use while ``central.open_drivers``."""

from evd import messages
from evd.authorisation import WALK_IN_PREFIX
from evd.errors import CommandError

from .charging_point import CP_ID as DRIVER_ID  # the same rule for any id a person types


class Drivers:
    def __init__(self, central):
        self.central = central
        self.known = set()

    def load(self):
        self.known = {row["id"] for row in self.central.store.drivers()}

    def admits(self, driver_id, origin):
        """Whether a request of ``driver_id`` may be served; registers it on first use while drivers are open."""
        if driver_id in self.known:
            self.central.store.save_driver(driver_id, messages.now_iso())
            return True
        if origin == "manual" and driver_id.startswith(WALK_IN_PREFIX):
            return True
        if not self.central.config.open_drivers:
            return False
        self.known.add(driver_id)
        self.central.store.save_driver(driver_id, messages.now_iso())
        return True

    # -- control commands ---------------------------------------------------------------------

    def list(self, args, ctx):
        supplying = self.central.supplying
        return [
            {"id": row["id"], "first_seen": row["first_seen"], "last_seen": row["last_seen"], "supplying": _cp_of(supplying, row["id"])}
            for row in self.central.store.drivers()
        ]

    def add(self, args, ctx):
        driver_id = _driver_id(args)
        central = self.central
        if not central.store.add_driver(driver_id, messages.now_iso()):
            raise CommandError("refused", f"driver {driver_id} is registered already")
        self.known.add(driver_id)
        central.message(f"driver {driver_id} registered by the operator")
        central.daemon.audit("SECURITY", "operator", "driver registered", "ok", driver=driver_id)
        return next(row for row in self.list({}, ctx) if row["id"] == driver_id)

    def remove(self, args, ctx):
        driver_id = _driver_id(args)
        central = self.central
        cp = central.supplying.get(driver_id)
        if cp is not None:
            raise CommandError("refused", f"driver {driver_id} has a supply running at {cp.id}; stop it first")
        if not central.store.remove_driver(driver_id):
            raise CommandError("not_found", f"unknown driver {driver_id}")
        self.known.discard(driver_id)
        central.message(f"driver {driver_id} removed by the operator")
        central.daemon.audit("SECURITY", "operator", "driver removed", "ok", driver=driver_id)
        return {"id": driver_id, "removed": True}


def _driver_id(args):
    driver_id = args.get("id")
    if not isinstance(driver_id, str) or not DRIVER_ID.fullmatch(driver_id):
        raise CommandError("bad_args", f"invalid driver id {driver_id!r}: letters, digits, '_', '.' or '-', at most 64")
    return driver_id


def _cp_of(supplying, driver_id):
    cp = supplying.get(driver_id)
    return cp.id if cp is not None else None
