"""Reading a panel from a real terminal: a tmux session, its captured lines, central's tiles."""

import contextlib
import os
import re
import shlex
import subprocess
import tempfile
import uuid

from helpers import BIN

TILE_WIDTH = 20


def tmux(session, *args, **options):
    """Run a tmux command on ``session``'s own tmux server: on the shared default server a new
    session could meet it exiting after another test's last session ("server exited unexpectedly")."""
    return subprocess.run(["tmux", "-S", _server_socket(session), *args], **options)


def end_session(session):
    """Stop ``session``'s server and remove its socket (tmux leaves it behind)."""
    tmux(session, "kill-server", capture_output=True)
    with contextlib.suppress(FileNotFoundError):
        os.unlink(_server_socket(session))


def new_session():
    """A name for a new session (and its server)."""
    return f"evd-{uuid.uuid4().hex[:8]}"


def _server_socket(session):
    return os.path.join(tempfile.gettempdir(), f"{session}.tmux")


class Pane:
    """A panel running in a detached tmux session of its own."""

    def __init__(self, socket, cols=100, rows=30):
        self.session = new_session()
        # The tmux server keeps the environment it started with: pass this test's PYTHONPATH along.
        command = f"TERM=xterm-256color PYTHONPATH={shlex.quote(os.environ.get('PYTHONPATH', ''))} {BIN / 'evctl'} -s {socket} attach"
        tmux(self.session, "new-session", "-d", "-s", self.session, "-x", str(cols), "-y", str(rows), command, check=True)

    def text(self):
        return tmux(self.session, "capture-pane", "-p", "-t", self.session, capture_output=True, text=True).stdout

    def lines(self):
        return self.text().splitlines()

    def header(self):
        lines = self.lines()
        return lines[0] if lines else ""

    def keys(self, *keys):
        tmux(self.session, "send-keys", "-t", self.session, *keys, check=True)

    def field(self, label):
        """The value of a 'Label: value' line on the panel, or None."""
        for line in self.lines():
            if line.startswith(f"{label}: "):
                return line[len(label) + 2 :].rstrip()
        return None

    def close(self):
        end_session(self.session)


def tiles(lines):
    """Central's tile grid as drawn: {cp id: the six lines inside its box}."""
    found = {}
    for row, line in enumerate(lines):
        if not line.startswith("┌"):
            continue
        for start in range(0, len(line) - TILE_WIDTH + 1, TILE_WIDTH):
            if line[start] != "┌":
                break
            inside = [lines[row + k][start + 1 : start + TILE_WIDTH - 1].rstrip() for k in range(1, 7)]
            found[inside[0]] = inside
    return found


def supplied_kwh(tile):
    match = re.fullmatch(r"([\d.]+) kWh ([\d.]+) €", tile[4])
    return (float(match[1]), float(match[2])) if match else None
