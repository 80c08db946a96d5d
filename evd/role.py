"""The base of every role plugin (central, engine, monitor, driver)."""

import logging

from . import messages

MESSAGES_KEPT = 200  # the panel's "application messages"


class Role:
    """One role a daemon runs. Subclasses are returned by the ``evd_register_roles`` hook.

    The daemon creates the role with itself as the only argument, awaits :meth:`start`,
    serves the role's control commands (``evd_control_commands``) and awaits :meth:`stop`
    on SIGTERM. The role draws its panel state into ``daemon.state``.
    """

    #: Whether the role needs the event stream (the daemon then starts the configured transport).
    uses_bus = True

    def __init__(self, daemon):
        self.daemon = daemon

    @property
    def config(self):
        """This role's own config section."""
        return self.daemon.config.section(self.daemon.role_name)

    async def start(self):
        """Start serving; return once the role is ready."""

    async def stop(self):
        """Finish or hand over running work, then release everything; called once."""

    async def reload(self, config):
        """Apply what can change without a restart (SIGHUP); ``config`` is the new configuration."""

    def status(self):
        """Extra fields for ``evctl status`` (a JSON-serialisable dict)."""
        return {}

    def message(self, text):
        """One line for the log and for the panel's application messages."""
        logging.getLogger(type(self).__module__).info("%s", text)
        self.daemon.state.append(("messages",), {"ts": messages.now_iso(), "text": text}, limit=MESSAGES_KEPT)
