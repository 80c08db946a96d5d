"""``evctl attach``: a panel on a running daemon, over its control socket.

A feed thread owns the watch connection (and reconnects when the daemon goes away); it
hands events to urwid's loop through ``watch_pipe``, as zulip-terminal does. Commands go
out on short connections of their own, exactly as evctl sends them.
"""

import collections
import os
import threading
import time

import urwid

from ..client import ControlClient
from ..errors import EvdError, UnreachableError
from .app import ConsoleApp
from .palette import urwid_palette

RECONNECT_EVERY = 1.0


class Feed(threading.Thread):
    """Reads the watch stream; events and disconnections are queued for the UI."""

    def __init__(self, path):
        super().__init__(name="console-feed", daemon=True)
        self.path = path
        self.events = collections.deque()
        self.stopping = threading.Event()
        self.wake = None  # the urwid pipe's write end

    def run(self):
        while not self.stopping.is_set():
            try:
                with ControlClient(self.path, timeout=5) as client:
                    client.send("watch")
                    while not self.stopping.is_set():
                        event = client.read_event(timeout=1.0)
                        if event is not None:
                            self.push(("event", event))
            except Exception as e:  # the daemon went away: say so, and try again
                self.push(("lost", str(e) or type(e).__name__))
            self.stopping.wait(RECONNECT_EVERY)

    def push(self, item):
        self.events.append(item)
        if self.wake is not None:
            try:
                os.write(self.wake, b"!")
            except OSError:
                pass


def main(path, quit_help=None):
    """Attach to the daemon at ``path``; ``quit_help`` says what q does when it is not just a detach."""
    try:
        with ControlClient(path, timeout=5) as probe:
            hello = probe.hello
    except UnreachableError as e:
        raise UnreachableError(str(e)) from None

    def send(command, args):
        with ControlClient(path, timeout=10) as client:
            return client.call(command, args)

    feed = Feed(path)

    def submit(command, args, done):
        # On a thread of its own, so the keys stay live while the daemon thinks; the answer
        # comes back through the feed's queue, like the watch events.
        def work():
            try:
                feed.push(("answer", (done, send(command, args), None)))
            except EvdError as e:
                feed.push(("answer", (done, None, e)))
            except Exception as e:  # an unexpected failure is still only a status line
                feed.push(("answer", (done, None, f"{type(e).__name__}: {e}")))

        threading.Thread(target=work, name="console-command", daemon=True).start()

    app = ConsoleApp(hello, send, submit=submit, quit_help=quit_help)
    loop = urwid.MainLoop(app.top, urwid_palette(), handle_mouse=False)
    loop.screen.set_terminal_properties(colors=256)

    def drain(_data):
        while feed.events:  # in order: a loss followed by a new snapshot ends connected
            kind, payload = feed.events.popleft()
            if kind == "event":
                app.on_event(payload)
            elif kind == "answer":
                done, result, error = payload
                done(result, error)
            else:
                app.on_disconnected(payload)
        return True

    feed.wake = loop.watch_pipe(drain)
    feed.start()
    try:
        loop.run()
    except KeyboardInterrupt:
        pass
    finally:
        feed.stopping.set()
        time.sleep(0)  # the feed thread is a daemon thread: it dies with us
    return 0
