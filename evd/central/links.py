"""Central's side of the monitor links: registration, authentication, heartbeats, faults, disconnections."""

import asyncio
import logging
import time

from .charging_point import CP_ID

log = logging.getLogger(__name__)

REGISTER_TIMEOUT = 10.0  # a monitor must register this soon after connecting


class MonitorLinks:
    def __init__(self, central):
        self.central = central

    def connected(self, link):
        # Callbacks rather than a task per connection: central may hold 10,000 monitors.
        link.cp = None
        overdue = asyncio.get_running_loop().call_later(REGISTER_TIMEOUT, self._registration_overdue, link)
        link.when_closed(lambda link: (overdue.cancel(), self._closed(link)))

    def refused(self, peer, reason):
        """A connection turned away before it became a link (in clear on a TLS-only port, a failed handshake)."""
        self.central.daemon.audit("SECURITY", peer.rsplit(":", 1)[0], "monitor connection", f"refused: {reason}", peer=peer)

    def _registration_overdue(self, link):
        if link.cp is None:
            log.warning("monitor at %s did not register within %ss; hanging up", link.peer, REGISTER_TIMEOUT)
            link.close()

    def _closed(self, link):
        cp = link.cp
        if cp is not None and cp.link is link:
            cp.link, cp.health = None, "UNKNOWN"
            self.central.message(f"{cp.id} DISCONNECTED (monitor connection closed)")
            self.central.daemon.audit("INCIDENT", cp.id, "disconnected", "monitor connection closed")
            self.central.publisher.refresh(cp)

    def received(self, link, opcode, fields):
        # Synchronous, so that a heartbeat is handled straight from the socket's read callback.
        cp = link.cp
        if opcode == "REG":
            return self._register(link, (fields + [""] * 5)[:5])
        if cp is None or cp.link is not link:
            log.info("monitor at %s sent %s before registering", link.peer, opcode)
        elif opcode == "HB":
            health, detail = (fields + ["", ""])[:2]
            cp.last_heartbeat = time.monotonic()
            self.health_report(cp, health, detail)
        else:
            log.info("ignoring unknown message %s from monitor %s", opcode, cp.id)
        return None

    async def _register(self, link, fields):
        central, daemon = self.central, self.central.daemon
        cp_id, location, price_text, city, credential = fields
        if not CP_ID.match(cp_id):
            await link.send("REGR", "DENIED", f"invalid charging point id {cp_id!r}")
            return
        try:
            price = float(price_text) if price_text else None
            if price is not None and not (price >= 0):
                raise ValueError
        except ValueError:
            await link.send("REGR", "DENIED", f"invalid price {price_text!r}")
            return
        source = link.peer.rsplit(":", 1)[0]
        hook = daemon.plugins.hook.evd_authenticate_cp
        refusals = [r for r in hook(daemon=daemon, cp_id=cp_id, credential=credential, peer=source) if r]
        cp = central.cps.get(cp_id)
        if cp is None and not refusals and not central.config.open_registration:
            refusals = ["unknown charging point (registration is closed)"]
        if refusals:
            daemon.audit("SECURITY", source, "monitor registration", f"refused: {refusals[0]}", cp=cp_id)
            central.message(f"monitor at {link.peer} refused for {cp_id}: {refusals[0]}")
            await link.send("REGR", "DENIED", refusals[0])
            return
        if cp is None:
            cp = central.new_cp(cp_id)
        if central.config.open_registration:
            # With open registration the CP's own configuration describes it.
            cp.location = location or cp.location
            cp.price = price if price is not None else cp.price
            cp.city = city or cp.city
        central.store.save_cp(cp.row())
        link.cp = cp
        if cp.attach(link, "UNKNOWN") is not None:
            log.warning("charging point %s connected again from %s; dropping the old connection", cp_id, link.peer)
        key = daemon.plugins.hook.evd_cp_key(daemon=daemon, cp_id=cp_id) or ""
        await link.send("REGR", "OK", cp.location, f"{cp.price:g}", key)
        central.message(f"monitor of {cp_id} connected from {link.peer}")
        daemon.audit("AUTH", source, "monitor registration", "ok", cp=cp_id)
        central.publisher.refresh(cp)

    def health_report(self, cp, health, detail):
        """What a CP says of its health (a monitor's heartbeat, an OCPP StatusNotification): OK or KO and why."""
        if health not in ("OK", "KO"):
            return
        before = cp.health
        if health == before and detail == cp.detail:
            return  # nothing changed: the common case, thousands of times a second
        central = self.central
        cp.health, cp.detail = health, detail
        if health == "KO" and before != "KO":
            central.message(f"{cp.id} BROKEN: {detail or 'engine KO'}")
            central.daemon.audit("INCIDENT", cp.id, "fault", detail or "engine KO")
            if cp.session is not None:
                central.supplies.end(cp, f"fault: {detail or 'engine KO'}", order="end")
        elif health == "OK" and before == "KO":
            central.message(f"{cp.id} recovered: engine OK")
            central.daemon.audit("INCIDENT", cp.id, "recovery")
        central.publisher.refresh(cp)

    def check_heartbeats(self, now):
        """Hang up on monitors silent for longer than ``heartbeat_timeout`` (a link worker's tell central itself)."""
        timeout = self.central.config.heartbeat_timeout
        for cp in self.central.cps.values():
            link = cp.link
            if link is not None and not getattr(link, "beats_elsewhere", False) and now - cp.last_heartbeat > timeout:
                if link.unread():
                    continue  # its heartbeats wait in our own socket: central is late, not the monitor
                self.silent(cp)

    def silent(self, cp):
        """``cp``'s monitor sent no heartbeat for ``heartbeat_timeout``: DISCONNECTED, and hang up."""
        central = self.central
        if cp.link is None:
            return
        central.message(f"{cp.id} DISCONNECTED (no heartbeat for {central.config.heartbeat_timeout})")
        central.daemon.audit("INCIDENT", cp.id, "disconnected", "heartbeat timeout")
        link, cp.link, cp.health = cp.link, None, "UNKNOWN"
        link.close()
        central.publisher.refresh(cp)
