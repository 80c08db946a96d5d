"""The control socket (DESIGN.md §5): a UNIX stream socket speaking JSON lines.

This module only moves bytes: requests go to :class:`evd.dispatcher.Dispatcher`, and
``watch`` streams the daemon's :class:`evd.state.State`.
"""

import asyncio
import contextlib
import json
import logging
import os
import socket
import stat
import struct

from . import paths
from .dispatcher import Peer
from .errors import EvdError
from .state import encode

log = logging.getLogger(__name__)

PROTOCOL = 1
MAX_LINE = 64 * 1024
MAX_BAD_LINES = 10  # a client that keeps sending garbage is disconnected
MAX_INFLIGHT = 32  # requests one connection may have running at once
WATCH_INTERVAL = 0.1  # coalescing window: at most ~10 updates a second
SUN_PATH_MAX = 107


class ControlServer:
    def __init__(self, path, dispatcher, state, hello):
        self.path = path
        self.dispatcher = dispatcher
        self.state = state
        self.hello = hello
        self._server = None
        self._identity = None
        self._connections = set()

    async def start(self):
        self._prepare_path()
        old_umask = os.umask(0o077)  # no window in which the socket is open to others
        try:
            self._server = await asyncio.start_unix_server(self._serve, path=str(self.path), limit=MAX_LINE)
        except OSError as e:
            raise EvdError(f"cannot create control socket {self.path}: {e.strerror}") from None
        finally:
            os.umask(old_umask)
        os.chmod(self.path, 0o660)
        st = os.stat(self.path)
        self._identity = (st.st_dev, st.st_ino)
        self.dispatcher.allowed_gid = st.st_gid

    async def stop(self):
        if self._server is not None:
            self._server.close()
        for task in list(self._connections):
            task.cancel()
        await asyncio.gather(*self._connections, return_exceptions=True)
        self._remove_own_socket()

    def _prepare_path(self):
        if len(os.fsencode(self.path)) > SUN_PATH_MAX:
            raise EvdError(f"control socket path is too long ({len(os.fsencode(self.path))} bytes, at most {SUN_PATH_MAX}): {self.path}")
        folder = self.path.parent
        shared_tmp = folder == paths.fallback_socket_dir()
        if shared_tmp or not folder.exists():
            try:
                # A per-user fallback directory under /tmp must not be readable by others.
                folder.mkdir(parents=True, mode=0o700 if shared_tmp or str(folder).startswith("/tmp/") else 0o755)
            except FileExistsError:
                pass
            except OSError as e:
                raise EvdError(f"cannot create {folder}: {e.strerror}") from None
        if shared_tmp:
            paths.check_private_dir(folder, "control socket directory")  # anyone may have made it first, or put a link there
        try:
            st = os.lstat(self.path)
        except FileNotFoundError:
            return
        except OSError as e:
            raise EvdError(f"cannot create control socket {self.path}: {e.strerror}") from None
        if not stat.S_ISSOCK(st.st_mode):
            raise EvdError(f"{self.path} exists and is not a socket; refusing to replace it")
        probe = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        probe.settimeout(1.0)
        try:
            probe.connect(str(self.path))
        except (ConnectionRefusedError, FileNotFoundError):
            log.info("removing stale control socket %s", self.path)
            self.path.unlink(missing_ok=True)
            return
        except OSError as e:
            raise EvdError(f"control socket {self.path} cannot be checked: {e.strerror}") from None
        finally:
            probe.close()
        raise EvdError(f"control socket {self.path} is in use by a running daemon")

    def _remove_own_socket(self):
        # Another daemon may have replaced the file since; remove only the socket we created.
        with contextlib.suppress(FileNotFoundError):
            st = os.lstat(self.path)
            if (st.st_dev, st.st_ino) == self._identity:
                os.unlink(self.path)

    async def _serve(self, reader, writer):
        task = asyncio.current_task()
        self._connections.add(task)
        connection = _Connection(self, reader, writer)
        try:
            await connection.run()
        except (ConnectionError, asyncio.IncompleteReadError):
            pass
        except asyncio.CancelledError:
            pass
        finally:
            await connection.close()
            self._connections.discard(task)


class _Connection:
    def __init__(self, server, reader, writer):
        self.server = server
        self.reader = reader
        self.writer = writer
        self.peer = _peer_credentials(writer.get_extra_info("socket"))
        self.tasks = set()
        self.watchers = []

    async def run(self):
        await self.send(self.server.hello)
        bad_lines = 0
        while True:
            try:
                line = await self.reader.readline()
            except (asyncio.LimitOverrunError, ValueError):
                await self.send(_error(None, "bad_request", f"line longer than {MAX_LINE} bytes; closing"))
                return
            if not line:
                return
            if not line.strip():
                continue
            try:
                request = json.loads(line)
                if not isinstance(request, dict):
                    raise ValueError("not an object")
            except (ValueError, UnicodeDecodeError):
                bad_lines += 1
                await self.send(_error(None, "bad_request", "expected one JSON object per line"))
                if bad_lines >= MAX_BAD_LINES:
                    return
                continue
            bad_lines = 0
            if request.get("cmd") == "watch":
                self._spawn(self.watch(request.get("id")))
            elif len(self.tasks) >= MAX_INFLIGHT:
                await self.send(_error(request.get("id"), "refused", "too many requests in flight"))
            else:
                self._spawn(self.answer(request))

    async def answer(self, request):
        await self.send(await self.server.dispatcher.dispatch(request, self.peer))

    async def watch(self, request_id):
        watcher = self.server.state.watch()
        self.watchers.append(watcher)
        await self.send({"id": request_id, "event": "snapshot", "state": self.server.state.snapshot()})
        while True:
            await watcher.changed.wait()
            kind, payload = watcher.take()
            if kind == "snapshot":
                await self.send({"id": request_id, "event": "snapshot", "state": payload})
            else:
                await self.send({"id": request_id, "event": "update", "ops": payload})
            await asyncio.sleep(WATCH_INTERVAL)

    async def send(self, message):
        self.writer.write(encode(message))
        await self.writer.drain()

    def _spawn(self, coroutine):
        task = asyncio.ensure_future(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self._finished)

    def _finished(self, task):
        self.tasks.discard(task)
        if not task.cancelled() and task.exception() is not None:
            if not isinstance(task.exception(), ConnectionError):
                log.error("control connection task failed: %r", task.exception())
            self.writer.close()

    async def close(self):
        for watcher in self.watchers:
            watcher.close()
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)
        self.writer.close()
        with contextlib.suppress(Exception):
            await self.writer.wait_closed()


def _error(request_id, code, message):
    return {"id": request_id, "ok": False, "error": {"code": code, "message": message}}


# Unknown credentials are nobody's: such a peer may read, but not change state.
_NOBODY = Peer(pid=0, uid=-1, gid=-1)


def _peer_credentials(sock):
    if sock is None:
        return _NOBODY
    try:
        pid, uid, gid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED, struct.calcsize("3i")))
    except OSError:
        return _NOBODY
    return Peer(pid=pid, uid=uid, gid=gid)
