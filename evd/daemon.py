"""The life of one evd daemon: one selector event loop, a role, a transport and a control socket.

SIGTERM/SIGINT stop it gracefully (a second one forces the exit); SIGHUP reloads the
configuration; systemd hears ``READY=1``, ``RELOADING=1``, ``STOPPING=1`` and watchdog pings.
"""

import asyncio
import inspect
import logging
import os
import signal
import time

from . import __version__, logs, malloc, messages, paths
from . import config as configuration
from .bus import TransportStopping
from .commands import all_commands
from .control import PROTOCOL, ControlServer
from .dispatcher import Dispatcher
from .errors import ConfigError
from .sdnotify import Notifier
from .state import State

log = logging.getLogger(__name__)

STOP_TIMEOUT = 8.0  # seconds the role and transport get to finish their work on SIGTERM


class Daemon:
    def __init__(self, config, plugins, config_path=None, overrides=()):
        self.config = config
        self.plugins = plugins
        self.config_path = config_path
        self.overrides = tuple(overrides)
        self.name = config.name
        self.role_name = config.role
        self.state = State()
        self.role = None
        self.bus = None
        self.started = time.monotonic()
        self.notifier = Notifier()
        self.socket_path = paths.socket_path(config.name, config.control.socket)
        self.dispatcher = Dispatcher({"ping": self._ping, "status": self._status}, all_commands(plugins.commands), daemon=self)
        self._stopping = None
        self._stop_step = None  # the part being stopped, for the timeout message
        self._tasks = set()

    def run(self):
        """Run until stopped; returns the exit status."""
        if "MALLOC_ARENA_MAX" not in os.environ:
            malloc.limit_arenas()
        loop = asyncio.SelectorEventLoop()
        asyncio.set_event_loop(loop)
        try:
            return loop.run_until_complete(self.main())
        finally:
            loop.close()
            asyncio.set_event_loop(None)

    async def main(self):
        self._stopping = asyncio.Event()
        self._install_signal_handlers()
        hello = {"evd": __version__, "protocol": PROTOCOL, "name": self.name, "role": self.role_name}
        control = ControlServer(self.socket_path, self.dispatcher, self.state, hello)
        await control.start()
        try:
            try:
                await self._start()
            except BaseException:
                # Not ready, and never will be: no ping may answer while the parts that did start
                # stop (a consumer takes up to a fetch wait), or a panel would attach to a corpse.
                await control.stop()
                raise
            self.notifier.notify("READY=1", f"STATUS={self.role_name} {self.name} running")
            log.info("%s %s ready (control socket %s)", self.role_name, self.name, self.socket_path)
            if self.notifier.watchdog_interval:
                self.spawn(self._watchdog(self.notifier.watchdog_interval))
            await self._stopping.wait()
            log.info("stopping")
        finally:
            self.notifier.notify("STOPPING=1")
            await self._shutdown()
            await control.stop()
        return 0

    def request_stop(self):
        if self._stopping.is_set():
            log.warning("second stop signal: exiting at once")
            os._exit(1)
        self._stopping.set()

    def audit(self, category, source, action, outcome="ok", **parameters):
        """Report an event to the audit plugins (R21); a no-op when none is installed."""
        record = {
            "time": messages.now_iso(),
            "category": category,
            "source": source,
            "action": action,
            "parameters": parameters,
            "outcome": outcome,
        }
        try:
            self.plugins.hook.evd_audit(daemon=self, record=record)
        except Exception:
            log.exception("an audit plugin failed")

    def seal(self, topic, key, message):
        """``message`` as it must travel on ``topic`` (sealed by a crypto plugin, if any)."""
        return self.plugins.hook.evd_seal(daemon=self, topic=topic, key=key, message=message) or message

    def unseal(self, topic, key, message):
        """The plain message of a received record; raises MalformedMessage if it must be rejected."""
        return self.plugins.hook.evd_unseal(daemon=self, topic=topic, key=key, message=message) or message

    def spawn(self, coroutine):
        """Run a background task for the daemon's lifetime; its failure is logged, not lost."""
        task = asyncio.ensure_future(coroutine)
        self._tasks.add(task)
        task.add_done_callback(self._task_done)
        return task

    def _task_done(self, task):
        self._tasks.discard(task)
        if task.cancelled() or task.exception() is None:
            return
        if isinstance(task.exception(), TransportStopping) and self._stopping is not None and self._stopping.is_set():
            log.debug("background task ended with the transport: %s", task.exception())  # the daemon is stopping
            return
        log.error("background task failed", exc_info=task.exception())

    async def _start(self):
        role_class = self.plugins.schema.roles[self.role_name]
        if getattr(role_class, "uses_bus", True):
            transport_class = self.plugins.schema.transports[self.config.transport.kind]
            self.bus = transport_class(self)
            await self.bus.start()
        self.role = role_class(self)
        await self.role.start()
        for handlers in self.plugins.hook.evd_control_commands(daemon=self):
            self.dispatcher.handlers.update(handlers or {})
        await _call_all(self.plugins.hook.evd_startup(daemon=self))

    async def _shutdown(self):
        try:
            await asyncio.wait_for(self._stop_parts(), STOP_TIMEOUT)
        except TimeoutError:
            log.warning("the %s did not stop within %ss; exiting anyway", self._stop_step, STOP_TIMEOUT)
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    async def _stop_parts(self):
        for step, action in (
            ("plugins", lambda: _call_all(self.plugins.hook.evd_shutdown(daemon=self))),
            ("role", lambda: self.role.stop() if self.role else _nothing()),
            ("transport", lambda: self.bus.stop() if self.bus else _nothing()),
        ):
            self._stop_step = step
            try:
                await action()
            except Exception:
                log.exception("error while stopping the %s", step)

    def _install_signal_handlers(self):
        loop = asyncio.get_running_loop()
        loop.add_signal_handler(signal.SIGTERM, self.request_stop)
        loop.add_signal_handler(signal.SIGINT, self.request_stop)
        loop.add_signal_handler(signal.SIGHUP, lambda: self.spawn(self.reload()))

    async def reload(self):
        if self.config_path is None:
            log.info("SIGHUP: nothing to reload (no configuration file)")
            return
        self.notifier.notify("RELOADING=1", f"MONOTONIC_USEC={time.monotonic_ns() // 1000}")
        try:
            new = configuration.load(self.config_path, self.plugins.schema, self.overrides)
        except ConfigError as e:
            log.error("reload failed, keeping the running configuration: %s", e)
        else:
            if (new.name, new.role, new.transport.kind) != (self.name, self.role_name, self.config.transport.kind):
                log.warning("name, role and transport changes take effect only after a restart")
            logs.set_level(new.log.level)
            if self.role is not None:
                await self.role.reload(new)
            await _call_all(self.plugins.hook.evd_reload(daemon=self, config=new))
            self.config = new
            log.info("configuration reloaded")
        self.notifier.notify("READY=1")

    async def _watchdog(self, interval):
        # Pings come from the loop itself, so a stuck loop stops them and systemd restarts us.
        while True:
            self.notifier.notify("WATCHDOG=1")
            await asyncio.sleep(interval)

    def _ping(self, args, ctx):
        return "pong"

    def _status(self, args, ctx):
        status = {
            "name": self.name,
            "role": self.role_name,
            "version": __version__,
            "uptime_s": round(time.monotonic() - self.started, 1),
            "pid": os.getpid(),
            "transport": self.bus.status() if self.bus else {"kind": None, "connected": None},
        }
        if self.role is not None:
            status.update(self.role.status())
        return status


async def _call_all(results):
    for result in results:
        if inspect.isawaitable(result):
            await result


async def _nothing():
    return None
