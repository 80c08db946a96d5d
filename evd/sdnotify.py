"""systemd readiness and watchdog over ``$NOTIFY_SOCKET``, with no extra library."""

import os
import socket


class Notifier:
    """Sends ``READY=1``, ``STOPPING=1``, ``WATCHDOG=1``…; does nothing when not under systemd."""

    def __init__(self, environ=os.environ):
        address = environ.get("NOTIFY_SOCKET", "")
        if address.startswith("@"):
            address = "\0" + address[1:]  # abstract namespace
        self.address = address or None
        usec = environ.get("WATCHDOG_USEC", "")
        pid = environ.get("WATCHDOG_PID", "")
        # The watchdog is ours only if no other process was named for it.
        ours = not pid or pid == str(os.getpid())
        self.watchdog_interval = int(usec) / 2e6 if usec.isdigit() and int(usec) > 0 and ours else None

    def notify(self, *assignments):
        if self.address is None:
            return False
        with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
            try:
                sock.connect(self.address)
                sock.sendall("\n".join(assignments).encode())
            except OSError:
                return False
        return True
