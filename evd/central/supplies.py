"""Running supplies: the engines' telemetry through the session state machine (evd.sessions), and ending them."""

import asyncio
import logging

from evd import messages, sessions

log = logging.getLogger(__name__)


class Supplies:
    def __init__(self, central):
        self.central = central
        self._end_timers = {}  # session id -> the timer of central's end grace

    def on_telemetry(self, message, key):
        """A record on cp.telemetry."""
        central, daemon = self.central, self.central.daemon
        message = daemon.unseal("cp.telemetry", key, messages.check("cp.telemetry", message))
        if message["type"] == "sealed":
            raise messages.MalformedMessage(f"sealed record from {key}, and no crypto plugin here to open it")
        if message["cp"] != key:
            raise messages.MalformedMessage(f"cp {message['cp']!r} does not match the record key {key!r}")
        cp = central.cps.get(key)
        if cp is None:
            raise messages.MalformedMessage(f"telemetry from unknown charging point {key!r}")
        kind = message["type"]
        if kind == "manual_request":
            central.requests.handle({**message, "expires_at": None}, origin="manual")
            return
        if not self.apply(cp, message["session"], _event(message)):
            raise messages.MalformedMessage(f"{kind} for unknown session {message['session']!r} at {cp.id}")

    def apply(self, cp, session_id, event):
        """What the CP reports of one of its supplies (evd.sessions' Started, Progress, Ended); False if
        ``cp`` has no such session."""
        live = cp.session  # the live copy when it is this session's: no database read on the hot path
        session = live if live is not None and live.id == session_id else self.central.store.session(session_id)
        if session is None or session.cp != cp.id:
            return False
        self._carry_out(cp, session, sessions.step(session, event, messages.now_iso))
        return True

    def end(self, cp, reason, order):
        """End ``cp``'s supply: tell the engine (``order`` "end"), wait a little for its final figures, then close it."""
        session = cp.session
        if session is None:
            return
        effects = sessions.step(session, sessions.EndOrdered(reason), messages.now_iso)
        if effects and order == "end":
            self.central.order(cp.id, messages.make("end", session=session.id, cp=cp.id, reason=reason))
        self._carry_out(cp, session, effects)

    def stop(self):
        for handle in self._end_timers.values():
            handle.cancel()

    def _overdue(self, cp, session_id):
        self._end_timers.pop(session_id, None)
        if cp.session is not None and cp.session.id == session_id:
            self._carry_out(cp, cp.session, sessions.step(cp.session, sessions.Overdue(), messages.now_iso))
            self.central.store.flush()

    def _carry_out(self, cp, session, effects):
        """Do what the session's state machine asks, in its order."""
        central, daemon = self.central, self.central.daemon
        for effect in effects:
            match effect:
                case sessions.Save():
                    central.store.save_session(session)
                case sessions.PublishProgress():
                    progress = messages.make(
                        "progress",
                        session=session.id,
                        cp=cp.id,
                        driver=session.driver,
                        kwh=session.kwh,
                        eur=session.eur,
                        seq=session.last_seq,
                    )
                    daemon.bus.publish("driver.events", session.driver, progress)
                case sessions.Plugged():
                    central.message(f"{cp.id}: vehicle plugged in, supplying driver {session.driver}")
                    daemon.audit("CHARGE", cp.id, "vehicle plugged in", "supplying", session=session.id, driver=session.driver)
                    central.publisher.refresh(cp)
                case sessions.Changed():
                    central.publisher.refresh(cp)
                case sessions.AwaitEnd():
                    loop = asyncio.get_running_loop()
                    self._end_timers[session.id] = loop.call_later(central.config.end_grace, self._overdue, cp, session.id)
                case sessions.Finished():
                    self._finished(cp, session, effect)
                case sessions.SendTicket():
                    self.send_ticket(session)
                case sessions.Corrected():
                    central.message(
                        f"{session.cp}: the engine delivered {session.kwh:g} kWh to {session.driver}, not {effect.billed:g}:"
                        f" corrected ticket, {session.eur:.2f} EUR"
                    )
                    audit = {"session": session.id, "driver": session.driver, "kwh": session.kwh, "billed": effect.billed}
                    daemon.audit("CHARGE", session.cp, "ticket corrected", session.status, **audit)
                case sessions.Disagreement():
                    log.warning(
                        "engine of %s reports %s kWh for closed session %s; its ticket said %s",
                        cp.id,
                        effect.reported,
                        session.id,
                        session.kwh,
                    )

    def _finished(self, cp, session, finished):
        central = self.central
        timer = self._end_timers.pop(session.id, None)
        if timer is not None:
            timer.cancel()
        if finished.overdue:
            log.warning("engine of %s did not confirm the end of session %s; closing it with the last energy reported", cp.id, session.id)
        central.daemon.state.delete(("requests", session.id))
        if cp.session is not None and cp.session.id == session.id:
            central.release(cp)
        status, reason = finished.status, finished.reason
        central.message(f"{session.cp}: supply to {session.driver} {status.lower()} ({reason}): {session.kwh:g} kWh, {session.eur:.2f} EUR")
        audit = {"session": session.id, "driver": session.driver, "kwh": session.kwh, "eur": session.eur, "reason": reason}
        central.daemon.audit("CHARGE", session.cp, "supply ended", status, **audit)

    def send_ticket(self, session):
        self.central.daemon.bus.publish("driver.events", session.driver, messages.make("ticket", **session.ticket()))


def _event(record):
    """The session event an engine's telemetry record stands for."""
    kind = record["type"]
    if kind == "started":
        return sessions.Started(ts=record["ts"])
    if kind == "progress":
        return sessions.Progress(seq=record["seq"], kwh=record["kwh"], ts=record["ts"])
    return sessions.Ended(seq=record["seq"], kwh=record["kwh"], status=record["status"], reason=record["reason"], ts=record["ts"])
