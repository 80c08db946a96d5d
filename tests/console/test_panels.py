"""Every panel rendered headless from snapshots recorded off a live demo network, and fed keys."""

import copy
import json
import pathlib

import pytest
import urwid

from evd.console import keymap, palette
from evd.console.app import ConsoleApp
from evd.errors import CommandError
from evd.pluginmanager import command_table

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
    assert [c for c, _ in send.sent] == ["engine.plug", "engine.unplug", "engine.fault", "engine.recover"]
    assert "Driver id to charge it to (Enter alone: a walk-in): _" in screen(engine, (100, 24))
    for key in ["D", "9", "x", "backspace", "enter"]:
        engine.keypress((80, 24), key)
    assert send.sent[-1] == ("engine.supply", {"driver": "D9"})
    engine.keypress((80, 24), "m")
    engine.keypress((80, 24), "enter")
    assert send.sent[-1] == ("engine.supply", {"driver": None})  # a walk-in
    engine.keypress((80, 24), "m")
    engine.keypress((80, 24), "esc")
    assert len(send.sent) == 6 and "cancelled" in screen(engine, (100, 24))
    send = Recorder()
    driver = app_for("driver", send)
    driver.keypress((80, 24), "down")
    driver.keypress((80, 24), "enter")
    second = sorted(load("driver")["state"]["cps"])[1]
    assert send.sent == [("driver.request", {"cp": second, "kwh": None, "wait": False})]
    driver.keypress((80, 24), "c")
    assert "End the running supply now?" in screen(driver, (100, 24))
    driver.keypress((80, 24), "y")
    assert send.sent[-1] == ("driver.cancel", {})


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
    commands = command_table()
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


def attributes(canvas):
    """Each screen row as a list of (attribute, text) runs, decoded; a layered attribute as the
    screen resolves it (our palette has no 'inherit' colours, so the innermost layer is drawn)."""
    return [[(_drawn(attr), text.decode()) for attr, _cs, text in row] for row in canvas.content()]


def _drawn(attr):
    return attr.layers[0] if isinstance(attr, urwid.util.LayeredAttr) else attr


def attr_of(canvas, word):
    """The attributes ``word`` is drawn with in the panel's body (below the two header rows)."""
    found = set()
    for row in attributes(canvas)[2:]:
        for attr, text in row:
            if word in text:
                found.add(attr)
    return found


def test_tiles_follow_updates_on_a_screen_already_drawn():
    app = app_for("central")
    cps = load("central")["state"]["cps"]
    cp_id = next(k for k, cp in cps.items() if cp["state"] == "ACTIVE")
    assert "│Out of Order" not in screen(app, (80, 24)).replace("│Out of Order", "", 1)  # only SEV4's tile
    for state, detail in (("SUPPLYING", None), ("STOPPED", "stopped by the operator: Out of Order"), ("BROKEN", "engine KO")):
        tile = dict(cps[cp_id], state=state, detail=detail, driver="D9", kwh=3, eur=1.35)
        app.on_event({"event": "update", "ops": [["set", ["cps", cp_id], tile]]})
        text = screen(app, (80, 24))  # the same size as before: urwid's canvas cache must not serve the old tile
        column = sorted(cps).index(cp_id) * 20
        tile_lines = [line[column : column + 20] for line in text.splitlines()[2:10]]
        assert tile_lines[4] == f"│{state:<18}│", tile_lines
        if state == "SUPPLYING":
            assert tile_lines[5].startswith("│3 kWh 1.35 €") and tile_lines[6].startswith("│driver D9")
        elif state == "STOPPED":
            assert tile_lines[5].startswith("│Out of Order")
        else:
            assert tile_lines[5].startswith("│engine KO")


def test_states_are_drawn_in_the_assignments_colours():
    app = app_for("central")
    canvas = app.top.render((80, 24), focus=True)
    for state in ("SUPPLYING", "STOPPED", "BROKEN", "ACTIVE"):
        assert attr_of(canvas, f"{state}   ") == {state}, state  # the state's line inside its tile
    fg_256 = {name: entry[3] for name, entry in palette.PALETTE.items()}
    bg_256 = {name: entry[4] for name, entry in palette.PALETTE.items()}
    assert bg_256["ACTIVE"] == "#0a0" and bg_256["SUPPLYING"] == "#6f6"  # green
    assert bg_256["STOPPED"] == "#f80"  # orange
    assert bg_256["BROKEN"] == "#c00"  # red
    assert bg_256["DISCONNECTED"] == "#999" and fg_256["DISCONNECTED"] == "#000"  # grey
    cp_id = sorted(load("central")["state"]["cps"])[1]
    tile = dict(load("central")["state"]["cps"][cp_id], state="DISCONNECTED")
    app.on_event({"event": "update", "ops": [["set", ["cps", cp_id], tile]]})
    assert attr_of(app.top.render((80, 24), focus=True), "DISCONNECTED  ") == {"DISCONNECTED"}


def test_header_fits_80_columns_and_says_connected_apart():
    app = app_for("central")
    lines = screen(app, (80, 24)).splitlines()
    assert lines[0].rstrip().endswith(" connected") and "…" not in lines[0]
    assert "4 CPs: 1 ACTIVE, 1 SUPPLYING, 1 STOPPED, 1 BROKEN" in lines[1]
    app.on_disconnected("connection closed by the daemon")
    lines = screen(app, (80, 24)).splitlines()
    assert lines[0].rstrip().endswith(" DISCONNECTED")
    app.on_event({"event": "snapshot", "state": load("central")["state"]})
    assert screen(app, (80, 24)).splitlines()[0].rstrip().endswith(" connected")
    assert "connected to the daemon again" in screen(app, (80, 24))


def test_requests_and_messages_use_the_rows_the_terminal_has():
    state = load("central")["state"]
    template = next(iter(state["requests"].values()))
    state["requests"] = {f"D{n}": dict(template, driver=f"D{n}", cp="ALC3") for n in range(8)}
    state["messages"] = [dict(state["messages"][0], text=f"message number {n}") for n in range(30)]
    small, large = screen(app_for("central", state=state), (80, 24)), screen(app_for("central", state=state), (160, 48))
    assert "message number 29" in small and "message number 29" in large  # the newest always
    assert sum(f"message number {n}" in large for n in range(30)) > sum(f"message number {n}" in small for n in range(30)) + 5
    assert all(f"D{n} " in large for n in range(8))  # every on-going request fits on a tall screen
    assert "(last " in small  # a short one says it shows only the last ones


def test_help_says_how_to_select_and_what_quit_does():
    app = app_for("central")
    app.keypress((80, 24), "?")
    text = screen(app, (80, 24))
    assert "select a tile" in text and "detach (the daemon keeps running)" in text
    demo = ConsoleApp(load("central")["hello"], Recorder(), quit_help="quit: stops the whole demo")
    demo.on_event({"event": "snapshot", "state": load("central")["state"]})
    demo.keypress((80, 24), "?")
    text = screen(demo, (80, 24))
    assert "quit: stops the whole demo" in text and "daemon keeps running" not in text
    driver = app_for("driver")
    driver.keypress((80, 24), "?")
    assert "select a charging point" in screen(driver, (80, 24))


def test_a_command_in_flight_leaves_the_keys_live():
    waiting = []
    app = ConsoleApp(load("central")["hello"], Recorder(), submit=lambda cmd, args, done: waiting.append((cmd, args, done)))
    app.on_event({"event": "snapshot", "state": load("central")["state"]})
    app.keypress((80, 24), "s")
    assert "cp stop: sent, waiting for the answer" in screen(app, (80, 24))
    app.keypress((80, 24), "right")  # no answer yet: the panel still moves
    app.keypress((80, 24), "s")
    assert [cmd for cmd, _args, _done in waiting] == ["cp.stop", "cp.stop"]
    assert waiting[0][1]["ids"] != waiting[1][1]["ids"]
    waiting[0][2]({"stopped": ["ALC1", "MAD2"]}, None)
    assert "cp stop: stopped ALC1, MAD2" in screen(app, (80, 24))  # words, not a Python list
    waiting[1][2](None, CommandError("refused", "ALC3 is already stopped"))
    assert "cp stop: ALC3 is already stopped" in screen(app, (80, 24))


def test_tile_grid_redraws_a_changed_cp_at_the_same_size():
    from evd.console.central import TileGrid

    grid = TileGrid()
    cp = dict(next(iter(load("central")["state"]["cps"].values())), state="ACTIVE")
    grid.set_cps([cp])
    first = b"\n".join(grid.render((80, 8), focus=True).text).decode()
    grid.set_cps([dict(cp, state="BROKEN", detail="engine KO")])
    second = b"\n".join(grid.render((80, 8), focus=True).text).decode()
    assert "ACTIVE" in first and "BROKEN" in second and "engine KO" in second
