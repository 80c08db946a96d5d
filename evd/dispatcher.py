"""Control requests to results, with no socket in sight (fail2ban's transmitter).

:meth:`Dispatcher.dispatch` takes one decoded request and the caller's credentials and
returns the reply object; :mod:`evd.control` only moves the bytes.
"""

import grp
import inspect
import logging
import os
import pwd

import attrs

from .errors import CommandError

log = logging.getLogger(__name__)


@attrs.frozen
class Peer:
    """Who is on the other end of a control connection (from SO_PEERCRED)."""

    pid: int
    uid: int
    gid: int

    @property
    def user(self):
        try:
            return pwd.getpwuid(self.uid).pw_name
        except KeyError:
            return str(self.uid)


@attrs.define
class Context:
    """What a command handler may know about its call."""

    peer: Peer | None
    daemon: object = None


class Dispatcher:
    def __init__(self, handlers, specs, allowed_gid=None, daemon=None):
        """``handlers``: name -> callable; ``specs``: name -> CommandSpec (for the mutating flag)."""
        self.handlers = dict(handlers)
        self.specs = specs
        self.allowed_gid = allowed_gid
        self.daemon = daemon

    async def dispatch(self, request, peer=None, source=None):
        """The reply to ``request`` from ``peer`` (None: the daemon itself, or a caller the API
        has authenticated: ``source`` then names it in the audit log)."""
        request_id = request.get("id") if isinstance(request, dict) else None
        try:
            name, args = self._parse(request)
            handler = self.handlers.get(name)
            if handler is None:
                raise CommandError("unknown_command", self._unknown_message(name))
            if self._is_mutating(name) and not self.permitted(peer):
                raise CommandError("not_permitted", f"'{name}' changes state: only root or members of the socket's group may run it")
            result = handler(args, Context(peer=peer, daemon=self.daemon))
            if inspect.isawaitable(result):
                result = await result
            self._audit(name, args, peer, "ok", source)
        except CommandError as e:
            if isinstance(request, dict):
                self._audit(request.get("cmd"), request.get("args"), peer, f"refused: {e.message}", source)
            error = {"code": e.code, "message": e.message}
            if e.result is not None:
                error["result"] = e.result
            return {"id": request_id, "ok": False, "error": error}
        except Exception as e:  # a bug in one command must not take the daemon down
            log.exception("command %r failed", request.get("cmd") if isinstance(request, dict) else request)
            return {"id": request_id, "ok": False, "error": {"code": "internal", "message": f"internal error: {e}"}}
        return {"id": request_id, "ok": True, "result": result}

    def _audit(self, name, args, peer, outcome, source=None):
        # State-changing commands are recorded with who issued them (the peer's uid).
        if self.daemon is None or not isinstance(name, str) or not self._is_mutating(name) or not hasattr(self.daemon, "audit"):
            return
        if source is None:
            source = f"uid {peer.uid} ({peer.user})" if peer is not None else "local"
        self.daemon.audit("SYSTEM", source, f"command {name}", outcome, args=args if isinstance(args, dict) else None)

    def permitted(self, peer):
        if peer is None or peer.uid in (0, os.geteuid()):
            return True
        if self.allowed_gid is None:
            return False
        if peer.gid == self.allowed_gid:
            return True
        try:
            return pwd.getpwuid(peer.uid).pw_name in grp.getgrgid(self.allowed_gid).gr_mem
        except KeyError:
            return False

    def _parse(self, request):
        if not isinstance(request, dict):
            raise CommandError("bad_request", "a request must be a JSON object")
        name = request.get("cmd")
        if not isinstance(name, str) or not name:
            raise CommandError("bad_request", "a request needs a 'cmd' string")
        args = request.get("args", {})
        if args is None:
            args = {}
        if not isinstance(args, dict):
            raise CommandError("bad_request", "'args' must be a JSON object")
        return name, args

    def _is_mutating(self, name):
        spec = self.specs.get(name)
        # A plugin command nobody described is treated as state-changing.
        return spec.mutating if spec is not None else name not in ("ping", "status")

    def _unknown_message(self, name):
        spec = self.specs.get(name)
        role = getattr(self.daemon, "role_name", None)
        if spec is not None and spec.role and spec.role != role:
            return f"'{' '.join(spec.words)}' is a {spec.role} command; this daemon is a {role}"
        return f"unknown command '{name}'"
