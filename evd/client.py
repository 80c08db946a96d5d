"""A blocking client of the control socket, for evctl, the console and tests."""

import itertools
import json
import socket

from .errors import CommandError, UnreachableError

MAX_LINE = 64 * 1024 * 1024  # snapshots of a large network are big; answers are trusted


class ControlClient:
    def __init__(self, path, timeout=10.0):
        self.path = str(path)
        self._ids = itertools.count(1)
        self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        self._sock.settimeout(timeout)
        try:
            self._sock.connect(self.path)
            self._buffer = bytearray()
            self.hello = self._read()
        except (OSError, ValueError) as e:
            self._sock.close()
            reason = e.strerror if isinstance(e, OSError) and e.strerror else str(e) or type(e).__name__
            raise UnreachableError(f"cannot reach the daemon at {self.path}: {reason}") from None

    def call(self, cmd, args=None, timeout=None):
        """Send one command and return its result; raises CommandError on an error reply."""
        request_id = self.send(cmd, args)
        if timeout is not None:
            self._sock.settimeout(timeout)
        while True:
            try:
                reply = self._read()
            except TimeoutError:
                raise CommandError("timeout", f"no answer to '{cmd}' within {self._sock.gettimeout():g}s") from None
            except (OSError, ValueError) as e:
                raise UnreachableError(f"lost the daemon at {self.path}: {e}") from None
            if reply.get("id") != request_id or "event" in reply:
                continue  # a watch event or an error about an earlier line
            if reply.get("ok"):
                return reply.get("result")
            error = reply.get("error") or {}
            raise CommandError(error.get("code", "internal"), error.get("message", "unknown error"), error.get("result"))

    def send(self, cmd, args=None):
        request_id = next(self._ids)
        message = {"id": request_id, "cmd": cmd}
        if args is not None:
            message["args"] = args
        self._sock.sendall((json.dumps(message) + "\n").encode())
        return request_id

    def read_event(self, timeout=None):
        """The next line from the daemon (watch events), or None on timeout."""
        self._sock.settimeout(timeout)
        try:
            return self._read()
        except TimeoutError:
            return None

    def fileno(self):
        return self._sock.fileno()

    def close(self):
        self._sock.close()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()

    def _read(self):
        # Our own buffer, not socket.makefile(): a buffered reader is unusable after one
        # timeout ("cannot read from timed out object"), and watchers time out when idle.
        scanned = 0
        while (end := self._buffer.find(b"\n", scanned)) < 0:
            if len(self._buffer) > MAX_LINE:
                raise ValueError("line from the daemon too long")
            scanned = len(self._buffer)
            chunk = self._sock.recv(256 * 1024)
            if not chunk:
                raise ConnectionResetError("connection closed by the daemon")
            self._buffer += chunk
        line = bytes(self._buffer[:end])
        del self._buffer[: end + 1]
        return json.loads(line)
