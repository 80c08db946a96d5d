"""Keys to named actions, per panel, as data (mitmproxy's defaultkeys).

An action either sends a control command (the very command ``evctl`` would send) or acts on
the panel itself (help, quit, filter). A test checks that every key names an action of its
panel and every command named here is a real command of that role.
"""

import attrs


@attrs.frozen
class Action:
    name: str
    help: str
    command: str | None = None  # the control command it sends; None: a panel-local action
    confirm: str | None = None  # a question to answer "y" to first
    ask: str | None = None  # a question whose typed answer (Enter ends it) the panel turns into arguments


COMMON = (
    Action("help", "show or hide the keys"),
    Action("quit", "detach (the daemon keeps running)"),
)

ACTIONS = {
    "central": (
        *COMMON,
        Action("stop", "stop the selected CP (Out of Order)", "cp.stop"),
        Action("resume", "resume the selected CP", "cp.resume"),
        Action("stop_all", "stop every CP", "cp.stop", confirm="Stop ALL charging points?"),
        Action("resume_all", "resume every CP", "cp.resume", confirm="Resume ALL charging points?"),
        Action("filter", "show only CPs in one state (cycles)"),
    ),
    "engine": (
        *COMMON,
        Action("plug", "plug the vehicle in", "engine.plug"),
        Action("unplug", "unplug the vehicle", "engine.unplug"),
        Action("fault", "simulate a fault (health checks answer KO)", "engine.fault"),
        Action("recover", "end the simulated fault", "engine.recover"),
        Action(
            "supply",
            "request a supply from this CP (manual; asks for the driver)",
            "engine.supply",
            ask="Driver id to charge it to (Enter alone: a walk-in):",
        ),
    ),
    "monitor": COMMON,
    "weather": (
        *COMMON,
        Action("limits", "set the temperature range (asks for MIN MAX)", "weather.limits", ask="Limits in °C, MIN MAX:"),
    ),
    "driver": (
        *COMMON,
        Action("request", "request a supply at the selected CP", "driver.request"),
        Action("cancel", "end the running supply (INTERRUPTED ticket)", "driver.cancel", confirm="End the running supply now?"),
    ),
}

KEYS = {
    "central": {"s": "stop", "r": "resume", "S": "stop_all", "R": "resume_all", "f": "filter", "?": "help", "q": "quit"},
    "engine": {"p": "plug", "u": "unplug", "f": "fault", "r": "recover", "m": "supply", "?": "help", "q": "quit"},
    "monitor": {"?": "help", "q": "quit"},
    "weather": {"l": "limits", "?": "help", "q": "quit"},
    "driver": {"r": "request", "enter": "request", "c": "cancel", "?": "help", "q": "quit"},
}


def action(role, name):
    for candidate in ACTIONS[role]:
        if candidate.name == name:
            return candidate
    raise KeyError(f"{role} panel has no action {name!r}")


# How the selection moves, for the panels that have one.
NAVIGATION = {
    "central": ("arrows", "select a tile (PgUp/PgDn scroll); s and r act on the selected tile"),
    "driver": ("↑/↓", "select a charging point; r or Enter requests a supply there"),
}


def help_lines(role, quit_help=None):
    by_action = {}
    for key, name in KEYS[role].items():
        by_action.setdefault(name, []).append(key)
    lines = [f"{keys:>9}  {text}" for keys, text in [NAVIGATION[role]]] if role in NAVIGATION else []
    for name, keys in by_action.items():
        text = quit_help if name == "quit" and quit_help else action(role, name).help
        lines.append(f"{'/'.join(keys):>9}  {text}")
    return lines
