"""The real panel in a real terminal (tmux), attached to a real demo network."""

import json
import shutil
import signal
import subprocess

import pytest

from helpers import BIN, evctl, wait_for
from tmux_screen import Pane, end_session, new_session, tiles, tmux

pytestmark = pytest.mark.skipif(shutil.which("tmux") is None, reason="tmux is not installed")


def capture(session):
    return tmux(session, "capture-pane", "-p", "-t", session, capture_output=True, text=True).stdout


def test_stop_a_cp_from_the_central_panel(short_tmp):
    demo = subprocess.Popen(
        [str(BIN / "evd"), "demo", "--cps", "4", "--drivers", "0", "--dir", str(short_tmp)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    sock = short_tmp / "run" / "central.sock"
    pane = None
    try:
        wait_for(lambda: sock.exists(), timeout=30, message="central's socket")
        pane = Pane(sock)
        wait_for(
            lambda: [t[3] for t in tiles(pane.lines()).values()] == ["ACTIVE"] * 4,
            timeout=30,
            message="4 ACTIVE tiles on screen",
        )
        assert pane.lines()[0].rstrip().endswith(" connected")  # the header's link state, not a word inside DISCONNECTED
        # The focused tile: the first CP drawn (the first to register, which need not be ALC1).
        pane.keys("s")

        def stopped():
            return [cp["id"] for cp in json.loads(evctl(sock, "--json", "cp", "list").stdout) if cp["state"] == "STOPPED"]

        (focused,) = wait_for(stopped, timeout=10, message="the focused CP stopped")
        wait_for(
            lambda: tiles(pane.lines())[focused][3:5] == ["STOPPED", "Out of Order"],
            timeout=10,
            message=f"Out of Order on {focused}'s own tile",
        )
        assert [cp for cp, tile in tiles(pane.lines()).items() if tile[3] == "STOPPED"] == [focused]
        pane.keys("q")
        wait_for(
            lambda: tmux(pane.session, "has-session", "-t", pane.session, capture_output=True).returncode != 0,
            timeout=10,
            message="the panel to quit",
        )
        assert evctl(sock, "ping").returncode == 0  # detaching leaves the daemon running
    finally:
        if pane is not None:
            pane.close()
        demo.send_signal(signal.SIGINT)
        demo.wait(30)


def test_assignment_command_runs_daemon_and_panel_in_one_terminal(short_tmp, kafka_bootstrap):
    from brokers import free_port

    session = new_session()
    sock = short_tmp / "central.sock"
    command = (
        f"cd {short_tmp} && RUNTIME_DIRECTORY={short_tmp} TERM=xterm-256color "
        f"{BIN / 'EV_Central'} {free_port()} {kafka_bootstrap} {short_tmp / 'c.db'}; echo EXITED $?; sleep 30"
    )
    try:
        tmux(session, "new-session", "-d", "-s", session, "-x", "100", "-y", "30", command, check=True)
        wait_for(lambda: "EVCharging central" in capture(session), timeout=30, message="central's panel")
        assert evctl(sock, "ping").returncode == 0
        tmux(session, "send-keys", "-t", session, "q", check=True)
        wait_for(lambda: "EXITED 0" in capture(session), timeout=20, message="EV_Central to exit")
        assert not sock.exists()  # quitting the panel stopped the daemon
        assert (short_tmp / "central.log").read_text().count("ready") == 1
    finally:
        end_session(session)
