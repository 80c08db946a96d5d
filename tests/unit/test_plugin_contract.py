"""Meta-tests of the plugin contract (as datasette checks its own): every command evctl offers is
served by a daemon of its role and every served command is offered; every hook is documented,
implemented by one of evd's own plugins and named in a test; central's extras use only its
declared interface (evd.central.network), never the role's insides or the daemon's attributes."""

import ast
import inspect
import pathlib

import pytest
import yaml

from evd import config, hookspecs
from evd.daemon import Daemon
from evd.pluginmanager import command_table, load_plugins

ROOT = pathlib.Path(__file__).resolve().parents[2]
EXTRAS = ("registry", "crypto", "audit", "metrics")  # central's extras, as plugins
ROLES = ("central", "engine", "monitor", "driver", "weather")


@pytest.fixture(scope="module")
def plugins():
    return load_plugins(disabled=())


def built_daemon(plugins, role, tmp_path):
    """A daemon of ``role`` with its role object, built from a config file, not started."""
    sections = {
        "central": {"database": str(tmp_path / "central.db")},
        "engine": {"journal": str(tmp_path / "engine.journal")},
        "monitor": {"cp_id": "CP1"},
        "driver": {"id": "D1"},
        "weather": {"source": "file", "file": str(tmp_path / "temperatures.yaml")},
    }
    tree = {
        "name": f"test-{role}",
        "role": role,
        "transport": {"kind": "local", "path": str(tmp_path / "bus.db")},
        "control": {"socket": str(tmp_path / f"{role}.sock")},
        role: sections[role],
    }
    path = tmp_path / f"{role}.yaml"
    path.write_text(yaml.safe_dump(tree))
    daemon = Daemon(config.load(path, plugins.schema, site=False), plugins)
    daemon.role = plugins.schema.roles[role](daemon)
    return daemon


def served_commands(plugins, role, tmp_path):
    """The commands a daemon of ``role`` answers on its control socket (built, not started)."""
    daemon = built_daemon(plugins, role, tmp_path)
    try:
        names = set(daemon.dispatcher.handlers)
        for handlers in plugins.hook.evd_control_commands(daemon=daemon):
            names |= set(handlers or {})
        return names
    finally:
        plugins.hook.evd_shutdown(daemon=daemon)


@pytest.mark.parametrize("role", ROLES)
def test_every_command_of_a_role_is_served_by_it_and_every_served_command_is_offered(plugins, role, tmp_path):
    table = command_table(plugins)
    offered = {name for name, spec in table.items() if spec.role in (None, role) and spec.run_locally is None}
    served = served_commands(plugins, role, tmp_path)
    assert offered - served == set(), f"evctl offers commands a {role} does not serve"
    assert served - set(table) == set(), f"a {role} serves commands evctl cannot send"


def hookspec_names():
    return [name for name, function in inspect.getmembers(hookspecs, inspect.isfunction) if name.startswith("evd_")]


SERVED = "unit/test_plugin_contract.py::test_every_command_of_a_role_is_served_by_it_and_every_served_command_is_offered"
SEALED = "system/test_extras.py::test_engine_central_records_are_sealed_and_tampering_is_rejected"
CREDENTIAL = "system/test_extras.py::test_registered_cp_needs_its_credential"
#: Each hook, and the tests that exercise what implements it (file::test).
HOOK_TESTS = {
    "evd_register_roles": [SERVED],
    "evd_register_transports": ["integration/test_daemon.py::test_status_and_ping"],
    "evd_config_sections": ["unit/test_config.py::test_valid_config_becomes_typed_objects"],
    "evd_register_commands": ["integration/test_daemon.py::test_plugin_command_through_evctl", SERVED],
    "evd_control_commands": [SERVED],
    "evd_startup": ["system/test_metrics.py::test_metrics_count_cps_supplies_energy_and_denials"],
    "evd_reload": ["integration/test_daemon.py::test_sighup_reloads_what_can_be_reloaded"],
    "evd_shutdown": ["system/test_metrics.py::test_a_port_in_use_is_logged_and_central_runs_on"],
    "evd_audit": ["system/test_extras.py::test_supplies_are_audited_and_queryable"],
    "evd_authenticate_cp": [CREDENTIAL],
    "evd_cp_key": [SEALED],
    "evd_cp_key_received": [SEALED],
    "evd_cp_unregistered": [CREDENTIAL],
    "evd_seal": [SEALED],
    "evd_unseal": [SEALED],
}


@pytest.mark.parametrize("name", hookspec_names())
def test_every_hook_is_documented_implemented_by_evd_and_tested(plugins, name):
    assert inspect.getdoc(getattr(hookspecs, name)), f"{name} has no docstring in hookspecs.py"
    implementers = [impl.plugin.__name__ for impl in getattr(plugins.hook, name).get_hookimpls()]
    assert any(module.startswith("evd.") for module in implementers), f"no plugin of evd implements {name}"
    assert HOOK_TESTS.get(name), f"name the tests of {name} in HOOK_TESTS"
    for test in HOOK_TESTS[name]:
        path, function = test.split("::")
        assert f"def {function}(" in (ROOT / "tests" / path).read_text(), f"{test}, named for {name}, does not exist"


def test_hook_tests_name_only_hooks_that_exist():
    assert set(HOOK_TESTS) <= set(hookspec_names())


#: The extras' modules, the OCPP endpoint's package included.
EXTRA_FILES = [f"evd/plugins/{extra}.py" for extra in (*EXTRAS, "ocpp")] + sorted(
    str(path.relative_to(ROOT)) for path in (ROOT / "evd" / "ocpp").glob("*.py")
)


@pytest.mark.parametrize("extra", EXTRA_FILES)
def test_central_s_extras_use_only_its_declared_interface(extra):
    tree = ast.parse((ROOT / extra).read_text())
    problems = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and node.attr == "role" and _is_daemon(node.value):
            problems.append(f"line {node.lineno}: reads daemon.role")
        if isinstance(node, (ast.Assign, ast.AugAssign, ast.AnnAssign)):
            targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            problems += [
                f"line {node.lineno}: sets daemon.{part.attr}"
                for target in targets
                for part in ast.walk(target)
                if isinstance(part, ast.Attribute) and _is_daemon(part.value)
            ]
        called = getattr(getattr(node, "func", None), "id", None)
        if isinstance(node, ast.Call) and called in ("setattr", "getattr") and node.args and _is_daemon(node.args[0]):
            problems.append(f"line {node.lineno}: {called} on the daemon")
    assert problems == [], f"{extra}: " + "; ".join(problems)


def _is_daemon(node):
    return (isinstance(node, ast.Name) and node.id == "daemon") or (isinstance(node, ast.Attribute) and node.attr == "daemon")


def test_a_task_that_meets_the_stopping_transport_is_no_error_while_the_daemon_stops(plugins, tmp_path, caplog):
    import asyncio

    from evd.bus import TransportStopping

    daemon = built_daemon(plugins, "driver", tmp_path)

    async def publishing_late():
        raise TransportStopping("the transport is stopping")

    async def finish(stopping):
        daemon._stopping = asyncio.Event()
        if stopping:
            daemon._stopping.set()
        task = asyncio.ensure_future(publishing_late())
        await asyncio.gather(task, return_exceptions=True)
        daemon._task_done(task)

    try:
        asyncio.run(finish(stopping=True))
        assert not [r for r in caplog.records if r.levelname == "ERROR"]
        asyncio.run(finish(stopping=False))  # not stopping: a publish that fails is a bug, and said so
        assert [r.getMessage() for r in caplog.records if r.levelname == "ERROR"] == ["background task failed"]
    finally:
        plugins.hook.evd_shutdown(daemon=daemon)


@pytest.mark.parametrize("price", [float("nan"), float("inf"), -0.1, "cheap"])
def test_registering_a_cp_refuses_a_price_that_is_not_a_price(plugins, tmp_path, price):
    from evd.errors import CommandError

    daemon = built_daemon(plugins, "central", tmp_path)
    handlers = {}
    for served in plugins.hook.evd_control_commands(daemon=daemon):
        handlers.update(served or {})
    try:
        with pytest.raises(CommandError) as refused:
            handlers["cp.register"]({"id": "X1", "location": "Lab", "price": price}, None)
        assert refused.value.code == "bad_args"
    finally:
        plugins.hook.evd_shutdown(daemon=daemon)
