"""What the operator and central's extras change: stop/resume (R13), the registry (R18), the weather (R22)."""

from evd import messages
from evd.errors import CommandError

from .charging_point import CP_ID, ChargingPoint


class Operator:
    def __init__(self, central):
        self.central = central
        self.city_alerts = {}  # city -> whether EV_W last said it is out of range (R22)

    # -- control commands ---------------------------------------------------------------------

    def stop(self, args, ctx):
        central, daemon = self.central, self.central.daemon
        stopped = []
        for cp in self._targets(args):
            if not cp.stopped:
                cp.stopped = True
                central.store.save_cp(cp.row())
                if cp.session is not None:
                    central.supplies.end(cp, "stopped by the operator", order="stop")
                central.message(f"{cp.id} stopped by the operator: Out of Order")
                daemon.audit("STATUS", cp.id, "stop", "Out of Order")
            central.order(cp.id, messages.make("stop", cp=cp.id, reason="stopped by the operator"))
            central.publisher.refresh(cp)
            stopped.append(cp.id)
        central.store.flush()
        return {"stopped": stopped}

    def resume(self, args, ctx):
        central, daemon = self.central, self.central.daemon
        resumed = []
        for cp in self._targets(args):
            if cp.stopped:
                cp.stopped = False
                central.store.save_cp(cp.row())
                central.message(f"{cp.id} resumed by the operator")
                daemon.audit("STATUS", cp.id, "resume")
            central.order(cp.id, messages.make("resume", cp=cp.id))
            central.publisher.refresh(cp)
            resumed.append(cp.id)
        central.store.flush()
        return {"resumed": resumed}

    def list(self, args, ctx):
        return [cp.listing() for cp in sorted(self.central.cps.values(), key=lambda c: c.id)]

    def sessions(self, args, ctx):
        found = self.central.store.sessions(active=bool(args.get("active")), cp=args.get("cp"), driver=args.get("driver"))
        return [session.listing() for session in found]

    def _targets(self, args):
        cps = self.central.cps
        if args.get("all"):
            return [cps[i] for i in sorted(cps)]
        ids = args.get("ids") or []
        if not isinstance(ids, list) or not ids:
            raise CommandError("bad_args", "give charging point ids or all")
        unknown = [i for i in ids if i not in cps]
        if unknown:
            raise CommandError("not_found", f"unknown charging point(s): {', '.join(map(str, unknown))}")
        return [cps[i] for i in ids]

    # -- the registry (R18) ---------------------------------------------------------------------

    def register_cp(self, cp_id, location, price, city):
        central = self.central
        if not CP_ID.match(cp_id):
            raise CommandError("bad_args", f"invalid charging point id {cp_id!r}")
        cp = central.cps.get(cp_id) or ChargingPoint(id=cp_id, price=central.config.default_price, registered_at=messages.now_iso())
        cp.location, cp.city = location or cp.location, city or cp.city
        cp.price = price if price is not None else cp.price
        central.cps[cp_id] = cp
        central.store.save_cp(cp.row())
        central.store.flush()
        central.message(f"charging point {cp_id} registered by the operator")
        central.publisher.refresh(cp)
        return cp

    def unregister_cp(self, cp_id):
        central, daemon = self.central, self.central.daemon
        cp = central.cps.get(cp_id)
        if cp is None:
            raise CommandError("not_found", f"unknown charging point {cp_id}")
        if cp.session is not None:
            raise CommandError("refused", f"{cp_id} has a supply running; stop it first")
        del central.cps[cp_id]
        central.controllers.pop(cp_id, None)
        if cp.link is not None:
            link, cp.link = cp.link, None
            link.close()
        central.store.delete_cp(cp_id)
        daemon.plugins.hook.evd_cp_unregistered(daemon=daemon, cp_id=cp_id)
        daemon.state.delete(("cps", cp_id))
        central.message(f"charging point {cp_id} unregistered")

    # -- the weather (R22) ----------------------------------------------------------------------

    def weather_report(self, city, alert, celsius):
        """EV_W's reading of ``city``: its CPs out of service (after a running supply) or back; returns their ids
        and whether the city's alert changed."""
        central = self.central
        cps = [cp for cp in central.cps.values() if cp.city == city]
        changed = self.city_alerts.get(city, False) != alert  # a first report of normal weather changes nothing
        self.city_alerts[city] = alert
        reason = f"{celsius:g} °C in {city}" if celsius is not None else f"weather alert in {city}"
        for cp in cps:
            if celsius is not None and cp.celsius != celsius:
                cp.celsius = celsius
                central.publisher.refresh(cp)
            if alert:
                self.weather_hold(cp.id, reason)
            else:
                self.weather_release(cp.id)
        return sorted(cp.id for cp in cps), changed

    def weather_hold(self, cp_id, reason):
        central = self.central
        cp = central.cps.get(cp_id)
        if cp is None or cp.weather == reason:
            return
        first = cp.weather is None
        cp.weather = reason
        if first:
            central.message(f"{cp_id} out of service: {reason}" + (" (after the running supply)" if cp.session else ""))
            central.daemon.audit("STATUS", "weather", "out of service", reason, cp=cp_id)
        central.publisher.refresh(cp)

    def weather_release(self, cp_id):
        central = self.central
        cp = central.cps.get(cp_id)
        if cp is None or cp.weather is None:
            return
        cp.weather = None
        still = " (still stopped by the operator)" if cp.stopped else ""
        central.message(f"{cp_id} back in service: the temperature is normal again{still}")
        central.daemon.audit("STATUS", "weather", "back in service", cp=cp_id)
        central.publisher.refresh(cp)
