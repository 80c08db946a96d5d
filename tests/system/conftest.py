import pytest

from network import Network


@pytest.fixture(params=["local", "kafka"])
def network(request, short_tmp):
    """An empty network on each transport; every process is killed afterwards, logs shown on failure."""
    bootstrap = request.getfixturevalue("kafka_bootstrap") if request.param == "kafka" else None
    net = Network(short_tmp, request.param, bootstrap)
    yield net
    net.stop_all()
    if request.node.rep_call.failed if hasattr(request.node, "rep_call") else False:
        print(net.logs())


@pytest.fixture
def local_network(short_tmp):
    """An empty network on the local transport, for tests that are not about the transport."""
    net = Network(short_tmp, "local")
    yield net
    net.stop_all()


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
