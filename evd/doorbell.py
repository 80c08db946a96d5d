"""Doorbells for the local transport's readers: a reader with nothing to read sleeps on its own
datagram socket, and a writer rings, right after its commit, only the readers of what it wrote.

A bell is a UNIX datagram socket in Linux's abstract namespace (no file to leave behind when a
process is killed, no path-length limit): the name alone is what a writer needs, and the local
transport keeps the names, with the topics and keys they follow, in the bus file itself. A ring
carries no data; a missed or spurious one costs a poll at worst (readers still look every
``IDLE_FETCH``), so nothing depends on a ring arriving.
"""

import logging
import os
import secrets
import select
import socket

log = logging.getLogger(__name__)

PREFIX = "evd-bell-"


def _address(name):
    return "\0" + name


class Doorbell:
    """A reader's bell: bound at creation, waited on by the reader's own thread."""

    def __init__(self):
        self.name = f"{PREFIX}{os.getpid()}-{secrets.token_hex(6)}"
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        try:
            self._socket.bind(_address(self.name))
        except OSError:
            self._socket.close()
            raise
        self._socket.setblocking(False)
        self._ringer = Ringer()  # for wake(): rung from other threads

    def drain(self):
        """Forget the rings so far (the reader is about to look at the file anyway)."""
        try:
            while True:
                self._socket.recv(64)
        except (BlockingIOError, InterruptedError):
            pass

    def wait(self, timeout):
        """Sleep until a ring or ``timeout`` seconds; True when rung."""
        readable, _, _ = select.select([self._socket], [], [], max(timeout, 0))
        return bool(readable)

    def ring(self):
        self._ringer.ring([self.name])

    def close(self):
        self._socket.close()
        self._ringer.close()


class Ringer:
    """A writer's side: one unbound datagram socket that rings bells by name."""

    def __init__(self):
        self._socket = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self._socket.setblocking(False)

    def ring(self, names):
        """Ring every bell of ``names``; return those nobody answers to (their reader is gone)."""
        gone = []
        for name in names:
            try:
                self._socket.sendto(b"!", _address(name))
            except (BlockingIOError, InterruptedError):
                pass  # its queue is full of rings already: it will look
            except (ConnectionRefusedError, FileNotFoundError):
                gone.append(name)
            except OSError as e:
                log.debug("ringing %s: %s", name, e)
        return gone

    def close(self):
        self._socket.close()
