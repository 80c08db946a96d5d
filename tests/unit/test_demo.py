"""evd demo's directory: a reused --dir starts afresh, a running demo's or a stranger's is refused."""

import socket

import pytest

from evd.demo import Demo
from evd.errors import UsageError


def _previous_demo(folder):
    demo = Demo(folder, cps=1, drivers=1)
    demo.write()
    (folder / "state" / "central.db").write_bytes(b"old sessions")
    (folder / "state" / "engine-ALC1.journal").write_text("{}")
    (folder / "log" / "central.log").write_text("old log\n")
    return demo


def test_a_reused_dir_starts_fresh(short_tmp):
    _previous_demo(short_tmp)
    demo = Demo(short_tmp, cps=1, drivers=1)
    assert demo.clear_previous() is True
    assert not (short_tmp / "state").exists() and not (short_tmp / "log").exists()
    demo.write()
    assert not list((short_tmp / "state").iterdir())


def test_a_new_dir_has_nothing_to_clear(short_tmp):
    assert Demo(short_tmp / "new").clear_previous() is False


def test_a_dir_with_a_running_demo_is_refused(short_tmp):
    demo = _previous_demo(short_tmp)
    with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as central:
        central.bind(str(demo.central_socket))
        central.listen()
        with pytest.raises(UsageError, match="a demo is already running in"):
            Demo(short_tmp).clear_previous()
    assert (short_tmp / "state" / "central.db").read_bytes() == b"old sessions"


def test_a_state_dir_no_demo_made_is_left_alone(short_tmp):
    (short_tmp / "state").mkdir()
    (short_tmp / "state" / "precious.db").write_text("mine")
    with pytest.raises(UsageError, match="state is not empty and no demo made it"):
        Demo(short_tmp).clear_previous()
    assert (short_tmp / "state" / "precious.db").read_text() == "mine"
