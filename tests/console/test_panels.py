"""Every panel rendered headless from snapshots recorded off a live demo network, and fed keys."""

import copy
import json
import pathlib

import pytest

from evd.commands import BUILTIN_COMMANDS
from evd.console import keymap, palette
from evd.console.app import ConsoleApp
from evd.errors import CommandError

SNAPSHOTS = pathlib.Path(__file__).parent / "snapshots"
SIZES = [(80, 24), (160, 48)]


def load(role):
    return json.loads((SNAPSHOTS / f"{role}.json").read_text())


class Recorder:
    """Stands in for the control socket: records what a key sends."""

    def __init__(self, refuse=None):
        self.sent = []
        self.refuse = refuse

    def __call__(self, command, args):
        self.sent.append((command, args))
        if self.refuse:
            raise CommandError("refused", self.refuse)
        return {"ok": True}


def app_for(role, send=None, state=None):
    recorded = load(role)
    app = ConsoleApp(recorded["hello"], send or Recorder())
    app.on_event({"event": "snapshot", "state": copy.deepcopy(state or recorded["state"])})
    return app


def screen(app, size):
    return "\n".join(line.decode() for line in app.top.render(size, focus=True).text)


@pytest.mark.parametrize("size", SIZES)
def test_central_panel(size):
    app = app_for("central")
    text = screen(app, size)
    cps = load("central")["state"]["cps"]
    supplying = next(cp for cp in cps.values() if cp["state"] == "SUPPLYING")
    for cp_id in cps:
        assert cp_id in text
    for word in ("ACTIVE", "SUPPLYING", "STOPPED", "BROKEN", "Out of Order", "connected"):
        assert word in text, word
    assert f"{supplying['kwh']:g} kWh {supplying['eur']:.2f} €" in text
    assert f"driver {supplying['driver']}" in text
    assert "On-going driver requests" in text and supplying["driver"] in text
    assert "Application messages" in text and "stopped by the operator: Out of Order" in text
    assert all(len(line) == size[0] for line in text.splitlines())


@pytest.mark.parametrize("size", SIZES)
def test_engine_panel(size):
    text = screen(app_for("engine"), size)
    supply = load("engine")["state"]["engine"]["supply"]
    assert load("engine")["state"]["engine"]["cp_id"] in text
    assert "SUPPLYING" in text and f"driver {supply['driver']}".lower() in text.lower()
    assert f"{supply['kwh']:g} of {supply['kwh_requested']:g} kWh · {supply['eur']:.2f} €" in text
    assert f"{round(100 * supply['kwh'] / supply['kwh_requested'])} %" in text  # the progress bar


@pytest.mark.parametrize("size", SIZES)
def test_monitor_panel(size):
    text = screen(app_for("monitor"), size)
    assert "MAD2" in text and "Health: KO" in text and "BROKEN" in text
    assert "registered" in text and "Link: connected" in text


@pytest.mark.parametrize("size", SIZES)
def test_driver_panel(size):
    text = screen(app_for("driver"), size)
    state = load("driver")["state"]
    current = state["driver"]["current"]
    for cp_id in state["cps"]:
        assert cp_id in text
    assert "unavailable" in text and "available" in text
    assert f"{current['kwh']:g} of {current['kwh_requested']:g} kWh · {current['eur']:.2f} €" in text
    assert "central reachable" in text
    assert f"0 of {state['driver']['run']['total']}" in text  # the file run's progress


def test_central_keys_send_the_commands_evctl_sends():
    send = Recorder()
    app = app_for("central", send)
    first = sorted(load("central")["state"]["cps"])[0]
    app.keypress((80, 24), "s")
    app.keypress((80, 24), "right")
    app.keypress((80, 24), "r")
    assert send.sent[0] == ("cp.stop", {"ids": [first]})
    assert send.sent[1][0] == "cp.resume" and send.sent[1][1]["ids"] != [first]
    app.keypress((80, 24), "S")
    assert "Stop ALL charging points?" in screen(app, (80, 24))
    app.keypress((80, 24), "n")
    assert len(send.sent) == 2  # cancelled
    app.keypress((80, 24), "S")
    app.keypress((80, 24), "y")
    assert send.sent[2] == ("cp.stop", {"all": True})


def test_central_filter_and_help():
    app = app_for("central")
    for _ in range(3):  # all -> ACTIVE -> SUPPLYING -> STOPPED
        app.keypress((80, 24), "f")
    text = screen(app, (80, 24))
    stopped = [k for k, cp in load("central")["state"]["cps"].items() if cp["state"] == "STOPPED"]
    others = [k for k, cp in load("central")["state"]["cps"].items() if cp["state"] != "STOPPED"]
    assert "showing only STOPPED" in text and all(k in text for k in stopped)
    assert not any(f"│{k} " in text for k in others)
    app.keypress((80, 24), "?")
    assert "Keys of the central panel" in screen(app, (80, 24))


def test_refusals_are_shown_not_raised():
    app = app_for("engine", Recorder(refuse="no authorised supply is waiting for a vehicle"))
    app.keypress((80, 24), "p")
    assert "engine plug: no authorised supply" in screen(app, (80, 24))


def test_engine_and_driver_keys():
    send = Recorder()
    engine = app_for("engine", send)
    for key in "pufrm":
        engine.keypress((80, 24), key)
    assert [c for c, _ in send.sent] == ["engine.plug", "engine.unplug", "engine.fault", "engine.recover", "engine.supply"]
    send = Recorder()
    driver = app_for("driver", send)
    driver.keypress((80, 24), "down")
    driver.keypress((80, 24), "enter")
    second = sorted(load("driver")["state"]["cps"])[1]
    assert send.sent == [("driver.request", {"cp": second, "kwh": None, "wait": False})]


def test_updates_and_disconnection():
    app = app_for("central")
    cp_id = next(k for k, cp in load("central")["state"]["cps"].items() if cp["state"] == "ACTIVE")
    tile = dict(load("central")["state"]["cps"][cp_id], state="STOPPED")
    app.on_event({"event": "update", "ops": [["set", ["cps", cp_id], tile]]})
    assert screen(app, (160, 48)).count("│Out of Order") == 2  # tiles, not the message log
    app.on_disconnected("connection closed by the daemon")
    text = screen(app, (80, 24))
    assert "DISCONNECTED" in text and "reconnecting" in text


def test_hundreds_of_cps_scroll():
    state = load("central")["state"]
    template = next(iter(state["cps"].values()))
    state["cps"] = {f"CP{n:03d}": dict(template, id=f"CP{n:03d}") for n in range(500)}
    app = app_for("central", state=state)
    assert "CP000" in screen(app, (80, 24)) and "CP499" not in screen(app, (80, 24))
    for _ in range(200):
        app.keypress((80, 24), "down")
    assert "CP499" in screen(app, (80, 24))


def test_every_key_names_an_action_and_every_action_a_real_command():
    commands = {spec.name: spec for spec in BUILTIN_COMMANDS}
    for role, keys in keymap.KEYS.items():
        for key, name in keys.items():
            action = keymap.action(role, name)  # raises if the key names no action
            if action.command:
                assert action.command in commands, (role, key)
                assert commands[action.command].role in (role, None), (role, key)
        assert {a.name for a in keymap.ACTIONS[role]} == set(keys.values()), role


def test_palette_is_complete():
    for name, entry in palette.PALETTE.items():
        assert len(entry) == 5 and all(isinstance(v, str) for v in entry), name
        assert entry[0] and entry[3], f"{name} needs both a 16- and a 256-colour foreground"
    for state in palette.STATES:
        assert state in palette.PALETTE
