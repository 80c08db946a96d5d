"""An engine's panel: its CP, state, the supply with a progress bar, and its keys."""

import urwid

from . import widgets


class EnginePanel:
    def __init__(self, app):
        self.app = app

    def engine(self):
        return self.app.tree.get("engine") or {}

    def summary(self):
        engine = self.engine()
        return f"CP {engine.get('cp_id') or '(no id yet)'} · {engine.get('state', '?')}"

    def body(self):
        engine = self.engine()
        state = engine.get("state") or "?"
        lines = [
            widgets.field("Charging point", engine.get("cp_id") or "waiting for its monitor to confirm the id"),
            widgets.field("Engine state", state + (" · Out of Order" if state == "STOPPED" else "")),
            widgets.field("Health", f"KO ({engine['fault']})" if engine.get("fault") else "OK", "error" if engine.get("fault") else "text"),
            widgets.field("Central shows", engine.get("central_state")),
            widgets.field("Auto plug", "on" if engine.get("auto_plug") else "off"),
            urwid.Divider(),
        ]
        supply = engine.get("supply")
        if supply:
            lines += [
                urwid.Text(("title", "Supply")),
                widgets.field("Driver", supply.get("driver")),
                widgets.field(
                    "Status", "waiting for the vehicle (p: plug)" if supply.get("status") == "AUTHORIZED" else supply.get("status")
                ),
                widgets.field(
                    "Energy",
                    f"{supply.get('kwh', 0):g} of {supply.get('kwh_requested', 0):g} kWh · {supply.get('eur', 0):.2f} € at {supply.get('price', 0):g} €/kWh",
                ),
                widgets.bar(supply.get("kwh", 0), supply.get("kwh_requested", 0)),
            ]
        else:
            lines.append(urwid.Text(("dim", "no supply")))
        last = engine.get("last_supply")
        if last:
            lines += [
                urwid.Divider(),
                widgets.field(
                    "Last supply", f"{last.get('kwh', 0):g} kWh · {last.get('eur', 0):.2f} € · {last.get('status')} ({last.get('reason')})"
                ),
            ]
        lines.append(urwid.Divider("─"))
        return urwid.Pile([("pack", urwid.Pile(lines)), ("weight", 1, widgets.messages(self.app.tree.get("messages")))])

    def args_for(self, action, answer=None):
        return {"driver": answer} if action == "supply" else {}
