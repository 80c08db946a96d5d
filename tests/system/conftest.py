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


@pytest.hookimpl(wrapper=True, tryfirst=True)
def pytest_runtest_makereport(item, call):
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
