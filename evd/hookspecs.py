"""The whole plugin API of evd on one page.

Built-in roles (central, engine, monitor, driver), transports (kafka, local) and extras
are plugins exactly like third-party ones: a module registered under the ``evd``
entry-point group that implements some of these hooks with ``@evd.hookimpl``.
Hooks are called with keyword arguments; specs grow by adding arguments.

Central's extras read and change the network only through :class:`evd.central.network.Network`
(``evd.central.network_of(daemon)``), keep their tables in central's one schema
(:data:`evd.store.MIGRATIONS`), and keep their per-daemon state to themselves
(:class:`evd.pluginmanager.PerDaemon`), never as attributes of the daemon.
"""

import pluggy

hookspec = pluggy.HookspecMarker("evd")


@hookspec
def evd_register_roles():
    """Return ``{role_name: RoleClass}``: roles a daemon can run (subclasses of :class:`evd.role.Role`)."""


@hookspec
def evd_register_transports():
    """Return ``{kind: TransportClass}``: event-stream transports (subclasses of :class:`evd.bus.Transport`).

    The class may be a light stand-in with ``kind`` and ``options_class`` whose instantiation
    returns the real transport, so that its client library is imported only by daemons that
    use it (evd.plugins.kafka does so).
    """


@hookspec
def evd_config_sections():
    """Return ``{section_name: attrs_class}``: top-level config sections this plugin owns."""


@hookspec
def evd_register_commands():
    """Return a list of :class:`evd.commands.CommandSpec` that evctl offers beyond the built-in table."""


@hookspec
def evd_control_commands(daemon):
    """Return ``{command_name: handler}`` that ``daemon``'s control socket serves.

    A handler is called as ``handler(args, ctx)`` and may be a coroutine function; it returns a
    JSON-serialisable result or raises :class:`evd.errors.CommandError`.
    """


@hookspec
def evd_startup(daemon):
    """Called once ``daemon``'s role has started; may return an awaitable."""


@hookspec
def evd_reload(daemon, config):
    """Called on SIGHUP with the newly read ``config`` (already validated); may return an awaitable."""


@hookspec
def evd_shutdown(daemon):
    """Called when ``daemon`` stops, before its role; may return an awaitable."""


@hookspec
def evd_audit(daemon, record):
    """A security-relevant or operational event happened (R21).

    ``record`` is a dict: ``time`` (ISO 8601 UTC), ``category`` (AUTH, CHARGE, INCIDENT,
    STATUS, ERROR, SECURITY or SYSTEM), ``source``, ``action``, ``parameters`` (a dict) and
    ``outcome``. Implementations must return quickly: store in batches, off the hot path.
    """


@hookspec
def evd_authenticate_cp(daemon, cp_id, credential, peer):
    """A monitor asks central to accept charging point ``cp_id`` from ``peer`` (an address).

    Return None to accept, or the reason for refusing it; one refusal refuses the CP.
    """


@hookspec(firstresult=True)
def evd_cp_key(daemon, cp_id):
    """Central: the symmetric key (text) to hand to charging point ``cp_id`` after it authenticated, or None."""


@hookspec
def evd_cp_key_received(daemon, cp_id, key):
    """Engine: the key central gave charging point ``cp_id`` (through its monitor, or from the
    engine's journal after a restart); None when central gave none."""


@hookspec
def evd_cp_unregistered(daemon, cp_id):
    """Central: charging point ``cp_id`` was removed; revoke whatever it was given."""


@hookspec(firstresult=True)
def evd_seal(daemon, topic, key, message):
    """Return ``message`` protected for ``topic`` (an envelope of type ``sealed``), or None to send it as it is."""


@hookspec(firstresult=True)
def evd_unseal(daemon, topic, key, message):
    """Return the message inside a ``sealed`` envelope, or raise MalformedMessage; None: not sealed and acceptable."""
