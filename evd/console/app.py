"""The console shell: a tree fed by the watch stream, a role's panel, keys that send commands.

It never touches a daemon's objects: it draws from the ``snapshot``/``update`` events of the
control socket (applied to its own copy of the tree), and its keys call ``send(cmd, args)``,
which sends exactly what evctl would. Tests drive it headless with :meth:`ConsoleApp.keypress`
and ``render``.
"""

import urwid

from .. import humanize
from ..errors import EvdError
from ..state import apply_ops
from . import keymap


class ConsoleApp:
    """``send(cmd, args)`` answers a command; ``submit(cmd, args, done)``, when given, sends it
    in the background and calls ``done(result, error)`` later, so a slow answer never freezes
    the keys. ``quit_help`` says what q does where the panel runs (detach, or stop the daemon).
    """

    def __init__(self, hello, send, submit=None, quit_help=None):
        from . import central, driver, engine, monitor, weather

        panels = {
            "central": central.CentralPanel,
            "engine": engine.EnginePanel,
            "monitor": monitor.MonitorPanel,
            "driver": driver.DriverPanel,
            "weather": weather.WeatherPanel,
        }
        self.role = hello["role"]
        self.name = hello["name"]
        self.send = send
        self.submit = submit or self._submit_now
        self.quit_help = quit_help or keymap.action(self.role, "quit").help
        self.pending = 0  # commands sent whose answer has not come yet
        self.tree = {}
        self.connected = False
        self.was_lost = False  # the watch dropped since the last snapshot
        self.status_line = ("dim", "")
        self.dialog = None  # (question, action) waiting for y/n
        self.prompt = None  # [action, typed text] while a question is being answered
        self.showing_help = False
        self.quit_requested = False
        self.panel = panels[self.role](self)
        self.frame = urwid.Frame(urwid.SolidFill(" "))
        self.top = _Top(self)
        self.redraw()

    # -- the watch stream ----------------------------------------------------------------

    def on_event(self, event):
        if event.get("event") == "snapshot":
            self.tree = event.get("state") or {}
            if self.was_lost:
                self.status_line = ("text", "connected to the daemon again")
            self.connected, self.was_lost = True, False
        elif event.get("event") == "update":
            apply_ops(self.tree, event.get("ops") or [])
        self.redraw()

    def on_disconnected(self, reason):
        self.connected, self.was_lost = False, True
        self.status_line = ("error", f"disconnected from the daemon ({reason}); reconnecting…")
        self.redraw()

    # -- drawing ----------------------------------------------------------------------------

    def redraw(self):
        connection = ("status_ok", "connected") if self.connected else ("status_bad", "DISCONNECTED")
        title = urwid.Columns(
            [urwid.Text(f" EVCharging {self.role} · {self.name}", wrap="ellipsis"), ("pack", urwid.Text([connection, " "]))],
            dividechars=2,
        )
        self.frame.header = urwid.AttrMap(urwid.Pile([title, urwid.Text(f" {self.panel.summary()}", wrap="ellipsis")]), "header")
        body = self.panel.body()
        if self.showing_help:
            lines = [
                urwid.Text(("title", f"Keys of the {self.role} panel")),
                *[urwid.Text(line) for line in keymap.help_lines(self.role, quit_help=self.quit_help)],
            ]
            body = _overlay(urwid.Pile(lines), body)
        if self.dialog is not None:
            body = _overlay(urwid.Text(("dialog", f"{self.dialog[0]}  (y/n)")), body)
        if self.prompt is not None:
            action, typed = self.prompt
            body = _overlay(urwid.Text(("dialog", f"{action.ask} {typed}_   (Enter: send · Esc: cancel)")), body)
        self.frame.body = body
        hints = "  ".join(f"{key} {name}" for key, name in keymap.KEYS[self.role].items() if key != "enter")
        self.frame.footer = urwid.AttrMap(urwid.Pile([urwid.Text(self.status_line), urwid.Text(("dim", hints))]), "footer")

    # -- keys ----------------------------------------------------------------------------------

    def keypress(self, size, key):
        if self.prompt is not None:
            self._typed(key)
            self.redraw()
            return None
        if self.dialog is not None:
            _question, action = self.dialog
            self.dialog = None
            if key in ("y", "Y"):
                self.execute(action)
            else:
                self.status_line = ("dim", "cancelled")
            self.redraw()
            return None
        if self.showing_help and key in ("?", "esc", "q"):
            self.showing_help = False
            self.redraw()
            return None
        name = keymap.KEYS[self.role].get(key)
        if name is None:
            return self.frame.keypress(size, key)
        action = keymap.action(self.role, name)
        if action.confirm:
            self.dialog = (action.confirm, action)
        elif action.ask:
            self.prompt = [action, ""]
        else:
            self.execute(action)
        self.redraw()
        return None

    def _typed(self, key):
        action, typed = self.prompt
        if key == "esc":
            self.prompt, self.status_line = None, ("dim", "cancelled")
        elif key == "enter":
            self.prompt = None
            self.execute(action, typed.strip() or None)
        elif key == "backspace":
            self.prompt[1] = typed[:-1]
        elif len(key) == 1 and key.isprintable() and len(typed) < 64:
            self.prompt[1] = typed + key

    def execute(self, action, answer=None):
        if action.command is None:
            getattr(self, f"do_{action.name}")()
            return
        args = self.panel.args_for(action.name, answer) if action.ask else self.panel.args_for(action.name)
        if args is None:
            self.status_line = ("error", "that answer is not understood" if action.ask else "select a charging point first")
            return
        label = action.command.replace(".", " ")
        self.pending += 1
        self.status_line = ("dim", f"{label}: sent, waiting for the answer…")
        self.submit(action.command, args, lambda result, error: self.on_answer(label, result, error))

    def on_answer(self, label, result, error):
        """A command's answer (or its error) arrived: show it in the status line."""
        self.pending -= 1
        if error is not None:
            self.status_line = ("error", f"{label}: {error}")
        else:
            self.status_line = ("text", f"{label}: {humanize.summary(result)}")
        self.redraw()

    def _submit_now(self, command, args, done):
        try:
            result = self.send(command, args)
        except EvdError as e:
            done(None, e)
            return
        done(result, None)

    def do_help(self):
        self.showing_help = not self.showing_help

    def do_quit(self):
        self.quit_requested = True
        raise urwid.ExitMainLoop()

    def do_filter(self):
        self.panel.do_filter()


class _Top(urwid.WidgetWrap):
    """The outermost widget: every key goes through the app's key map first."""

    def __init__(self, app):
        self.app = app
        super().__init__(app.frame)

    def keypress(self, size, key):
        return self.app.keypress(size, key)


def _overlay(top, bottom):
    box = urwid.LineBox(urwid.AttrMap(urwid.Padding(top, left=1, right=1), "dialog"))
    return urwid.Overlay(box, bottom, align="center", width=("relative", 70), valign="middle", height="pack")
