"""Loading plugins: every plugin, built-in or not, comes from the ``evd`` entry-point group.

``EVD_DISABLE_PLUGINS=name,name`` blocks plugins by entry-point name (e.g. ``weather``).
"""

import importlib.metadata
import logging
import os
import weakref

import attrs
import pluggy

from . import hookspecs
from .config import Schema

ENTRY_POINT_GROUP = "evd"
DISABLE_ENV = "EVD_DISABLE_PLUGINS"

log = logging.getLogger(__name__)


@attrs.define
class Plugins:
    """The plugin manager and what its plugins registered."""

    pm: pluggy.PluginManager
    schema: Schema
    commands: list  # extra CommandSpec from evd_register_commands
    failed: dict  # entry-point name -> error text, for plugins that could not load

    @property
    def hook(self):
        return self.pm.hook


class PerDaemon(weakref.WeakKeyDictionary):
    """A plugin's own state for each daemon, never an attribute of the daemon; held weakly, so
    it goes with the daemon."""

    def made(self, daemon, make):
        """``daemon``'s value, made by ``make()`` on first use."""
        value = self.get(daemon)
        if value is None:
            value = self[daemon] = make()
        return value


def disabled_names():
    return {name.strip() for name in os.environ.get(DISABLE_ENV, "").split(",") if name.strip()}


def load_plugins(extra=(), disabled=None):
    """Build the plugin manager from the entry points, plus ``extra`` objects (tests).

    ``disabled``: entry-point names to leave out (default: those of EVD_DISABLE_PLUGINS).
    """
    pm = pluggy.PluginManager("evd")
    pm.add_hookspecs(hookspecs)
    for name in disabled_names() if disabled is None else disabled:
        pm.set_blocked(name)
    failed = {}
    for entry_point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
        if pm.is_blocked(entry_point.name) or pm.get_plugin(entry_point.name) is not None:
            continue
        try:
            plugin = entry_point.load()
        except Exception as e:  # a broken third-party plugin must not take the daemon down
            failed[entry_point.name] = f"{type(e).__name__}: {e}"
            log.warning("plugin %s could not be loaded: %s", entry_point.name, failed[entry_point.name])
            continue
        pm.register(plugin, name=entry_point.name)
    for plugin in extra:
        pm.register(plugin)
    pm.check_pending()
    return Plugins(pm=pm, schema=_schema(pm), commands=plugin_commands(pm), failed=failed)


def command_table(plugins=None):
    """Every command evctl offers, by name: evd's own always, even those of a plugin that
    EVD_DISABLE_PLUGINS turns off (the daemon then refuses them: exit 4), and those of the
    third-party plugins loaded. ``plugins``: use these instead."""
    from .commands import all_commands

    if plugins is None:
        plugins = load_plugins(disabled=disabled_names() - own_plugin_names())
    return all_commands(plugins.commands)


def own_plugin_names():
    """The entry-point names of evd's own plugins."""
    return {ep.name for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP) if ep.value.startswith("evd.")}


def plugin_commands(pm, builtin_only=False):
    """The CommandSpecs plugins add, in the order the plugins were registered (evd's own first).

    ``builtin_only``: those of evd's own plugins (evctl(1) documents these).
    """
    commands = []
    for impl in pm.hook.evd_register_commands.get_hookimpls():  # registration order
        if builtin_only and not getattr(impl.plugin, "__name__", "").startswith("evd."):
            continue
        commands += impl.function() or []
    return commands


def _schema(pm):
    return Schema(
        roles=_merge(pm.hook.evd_register_roles(), "role"),
        transports=_merge(pm.hook.evd_register_transports(), "transport"),
        sections=_merge(pm.hook.evd_config_sections(), "config section"),
    )


def _merge(results, what):
    merged = {}
    for result in results:
        for name, value in (result or {}).items():
            if name in merged and merged[name] is not value:
                raise RuntimeError(f"two plugins provide the {what} '{name}'")
            merged[name] = value
    return merged
