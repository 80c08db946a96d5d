"""A driver's panel: every CP and whether it is available, its own supply live, tickets, file run."""

import urwid

from . import widgets


class CpRow(urwid.WidgetWrap):
    def __init__(self, cp):
        self.key = cp["id"]
        available = "available" if cp.get("available") else "unavailable"
        text = f"{cp['id']:<8} {cp.get('state') or '?':<13} {available:<12} {cp.get('price_eur_kwh') or 0:.2f} €/kWh  {cp.get('location') or ''}"
        super().__init__(urwid.AttrMap(urwid.Text(text, wrap="clip"), widgets.state_attr(cp.get("state")), "focus"))

    def selectable(self):
        return True

    def keypress(self, size, key):
        return key


class DriverPanel:
    def __init__(self, app):
        self.app = app
        self.list = urwid.ListBox(urwid.SimpleFocusListWalker([]))
        self.selected = None

    def driver(self):
        return self.app.tree.get("driver") or {}

    def summary(self):
        driver = self.driver()
        reachable = "central reachable" if driver.get("central_reachable") else "CENTRAL NOT REACHABLE"
        return f"driver {driver.get('id', '?')} · {reachable}"

    def body(self):
        self.selected = self._focused() or self.selected
        cps = sorted((self.app.tree.get("cps") or {}).values(), key=lambda cp: cp["id"])
        rows = [CpRow(cp) for cp in cps] or [urwid.Text(("dim", "no charging points known yet"))]
        self.list.body[:] = rows
        for index, row in enumerate(rows):
            if getattr(row, "key", None) == self.selected:
                self.list.focus_position = index
        driver = self.driver()
        lines = [urwid.Divider("─"), *self._current(driver.get("current")), *self._run(driver.get("run")), *self._history()]
        lines.append(urwid.Divider("─"))
        return urwid.Pile(
            [
                ("pack", urwid.Text(("title", "Charging points (↑/↓ select, r or Enter: request there)"))),
                ("weight", 1, self.list),
                ("pack", urwid.Pile(lines)),
                ("weight", 1, widgets.messages(self.app.tree.get("messages"))),
            ]
        )

    def _current(self, current):
        if not current:
            outcome = self.app.tree.get("last_outcome")
            if outcome:
                return [
                    widgets.field(
                        "Last result",
                        f"{outcome['cp']}: {outcome['status']} · {outcome['kwh']:g} kWh · {outcome['eur']:.2f} €"
                        + (f" ({outcome['reason']})" if outcome.get("reason") else ""),
                    )
                ]
            return [urwid.Text(("dim", "no supply in progress"))]
        status = {"REQUESTED": "waiting for central", "AUTHORIZED": "authorised: plug the vehicle in"}.get(
            current["status"], current["status"]
        )
        return [
            widgets.field("Supply", f"{current['cp']} · {status}"),
            widgets.field(
                "Energy", f"{current.get('kwh', 0):g} of {current.get('kwh_requested', 0):g} kWh · {current.get('eur', 0):.2f} €"
            ),
            widgets.bar(current.get("kwh", 0), current.get("kwh_requested", 0)),
        ]

    def _run(self, run):
        if not run:
            return []
        text = f"{run['file']}: {run['done']} of {run['total']} · {run['state']}"
        if run.get("pause_left") is not None:
            text += f" ({run['pause_left']:.1f} s)"
        return [widgets.field("Request file", text)]

    def _history(self):
        history = self.app.tree.get("history") or []
        rows = [(t["cp"], t["status"], f"{t['kwh']:g}", f"{t['eur']:.2f}", (t.get("ended_at") or "")[11:19]) for t in history[:3]]
        return [widgets.rows_table(f"Tickets ({len(history)})", ("CP", "STATUS", "KWH", "EUR", "ENDED"), rows)]

    def _focused(self):
        focus = self.list.focus
        return getattr(focus, "key", None)

    def args_for(self, action):
        if action == "cancel":
            return {}
        selected = self._focused() or self.selected
        return {"cp": selected, "kwh": None, "wait": False} if selected else None
