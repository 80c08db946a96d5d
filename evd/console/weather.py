"""The weather station's panel (EV_W): every city with its temperature, the limits, the CPs it holds."""

import re

import urwid

from . import widgets


class WeatherPanel:
    def __init__(self, app):
        self.app = app

    def weather(self):
        return self.app.tree.get("weather") or {}

    def summary(self):
        weather = self.weather()
        held = sum(1 for city in (weather.get("cities") or {}).values() if city.get("alert"))
        return f"limits {_limits(weather)} · {len(weather.get('cities') or {})} cities · {held} out of range"

    def body(self):
        weather = self.weather()
        problems = weather.get("problems") or {}
        lines = [
            widgets.field("Central", weather.get("central")),
            widgets.field("Source", weather.get("source")),
            widgets.field("Limits", _limits(weather)),
        ]
        for where in ("source", "central", "alerts"):
            if problems.get(where):
                lines.append(widgets.field(f"Problem ({where})", problems[where], "error"))
        rows = []
        for city, reading in sorted((weather.get("cities") or {}).items()):
            celsius = reading.get("celsius")
            state = "unknown" if reading.get("alert") is None else ("ALERT: CPs held" if reading["alert"] else "ok")
            rows.append((city, "-" if celsius is None else f"{celsius:g} °C", state, " ".join(reading.get("cps") or [])))
        lines += [
            urwid.Divider(),
            widgets.rows_table("Cities", ("CITY", "TEMPERATURE", "STATE", "CHARGING POINTS"), rows),
            urwid.Divider("─"),
        ]
        return urwid.Pile([("pack", urwid.Pile(lines)), ("weight", 1, widgets.messages(self.app.tree.get("messages")))])

    def args_for(self, action, answer=None):
        numbers = re.findall(r"-?\d+(?:\.\d+)?", answer or "")
        if action == "limits":
            return {"min": float(numbers[0]), "max": float(numbers[1])} if len(numbers) == 2 else None
        return {}


def _limits(weather):
    low, high = weather.get("min_celsius"), weather.get("max_celsius")
    return "-" if low is None else f"{low:g} to {high:g} °C"
