"""A monitor's panel: the engine's health and central's link."""

import urwid

from . import widgets


class MonitorPanel:
    def __init__(self, app):
        self.app = app

    def monitor(self):
        return self.app.tree.get("monitor") or {}

    def summary(self):
        monitor = self.monitor()
        return f"CP {monitor.get('cp_id', '?')} · engine {(monitor.get('engine') or {}).get('health', '?')}"

    def body(self):
        monitor = self.monitor()
        engine, central = monitor.get("engine") or {}, monitor.get("central") or {}
        health = engine.get("health", "?")
        lines = [
            widgets.field(
                "Charging point", f"{monitor.get('cp_id')} · {monitor.get('location') or ''} · {monitor.get('price') or 0:g} €/kWh"
            ),
            urwid.Divider(),
            urwid.Text(("title", "Engine")),
            widgets.field(
                "Health", health + (f" ({engine.get('detail')})" if engine.get("detail") else ""), "error" if health == "KO" else "text"
            ),
            widgets.field("Connected", "yes" if engine.get("connected") else "no"),
            widgets.field("Last check", (engine.get("last_check") or "")[11:23] or None),
            widgets.field("Engine state", engine.get("state")),
            urwid.Divider(),
            urwid.Text(("title", "Central")),
            widgets.field(
                "Link", "connected" if central.get("connected") else "not connected", "text" if central.get("connected") else "error"
            ),
            widgets.field("Authentication", "registered" if central.get("registered") else "not registered"),
            widgets.field("Central shows", (central.get("state") or "-") + (f" ({central['reason']})" if central.get("reason") else "")),
            urwid.Divider("─"),
        ]
        return urwid.Pile([("pack", urwid.Pile(lines)), ("weight", 1, widgets.messages(self.app.tree.get("messages")))])

    def args_for(self, action):
        return {}
