"""Default places of state and sockets (DESIGN.md §2, §5): systemd's, the system's, else the user's own."""

import asyncio
import os
import pathlib

import pytest

from evd import paths
from evd.control import ControlServer
from evd.errors import EvdError
from evd.plugins.central import CentralConfig
from evd.plugins.local import LocalOptions

ORDINARY_UID = 4242


@pytest.fixture
def ordinary_user(monkeypatch, tmp_path):
    """This process seen as an ordinary user whose /var/lib/evcharging does not exist."""
    monkeypatch.setattr(os, "geteuid", lambda: ORDINARY_UID)
    monkeypatch.setattr(paths, "SYSTEM_STATE_DIR", tmp_path / "var-lib-evcharging")
    for name in ("STATE_DIRECTORY", "XDG_STATE_HOME", "RUNTIME_DIRECTORY", "XDG_RUNTIME_DIR"):
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    monkeypatch.setenv("HOME", str(home))
    return home


def test_systemd_state_directory_comes_first(ordinary_user, monkeypatch):
    monkeypatch.setenv("STATE_DIRECTORY", "/var/lib/evcharging:/var/lib/other")
    assert paths.state_dir() == pathlib.Path("/var/lib/evcharging")


def test_root_uses_the_system_directory(monkeypatch):
    monkeypatch.delenv("STATE_DIRECTORY", raising=False)
    monkeypatch.setattr(os, "geteuid", lambda: 0)
    assert paths.state_dir() == pathlib.Path("/var/lib/evcharging")


def test_an_ordinary_user_gets_a_state_directory_of_their_own(ordinary_user):
    assert paths.state_dir() == ordinary_user / ".local" / "state" / "evcharging"


def test_xdg_state_home_when_absolute(ordinary_user, monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_STATE_HOME", str(tmp_path / "xdg"))
    assert paths.state_dir() == tmp_path / "xdg" / "evcharging"
    monkeypatch.setenv("XDG_STATE_HOME", "relative/state")  # the XDG spec: ignored
    assert paths.state_dir() == ordinary_user / ".local" / "state" / "evcharging"


def test_an_ordinary_user_who_may_write_the_system_directory_uses_it(ordinary_user, monkeypatch):
    system = paths.SYSTEM_STATE_DIR
    system.mkdir()
    monkeypatch.setattr(os, "access", lambda path, mode: pathlib.Path(path) == system)
    assert paths.state_dir() == system


def test_config_defaults_follow_the_state_directory(ordinary_user):
    own = ordinary_user / ".local" / "state" / "evcharging"
    assert CentralConfig().database == own / "central.db"
    assert LocalOptions().path == own / "bus.db"
    assert CentralConfig(database=pathlib.Path("/x/c.db")).database == pathlib.Path("/x/c.db")


def test_the_socket_fallback_is_per_user(ordinary_user):
    assert paths.socket_dir() == pathlib.Path(f"/tmp/evd-{ORDINARY_UID}")


# -- the per-user directory in the shared /tmp ------------------------------------------------


def test_a_private_directory_of_ones_own_is_accepted(tmp_path):
    folder = tmp_path / "evd-me"
    folder.mkdir(mode=0o700)
    paths.check_private_dir(folder)


def test_a_symbolic_link_is_never_followed(tmp_path):
    target = tmp_path / "elsewhere"
    target.mkdir(mode=0o700)
    link = tmp_path / "evd-me"
    link.symlink_to(target)
    with pytest.raises(EvdError, match=rf"^directory {link} is a symbolic link owned by .*; refusing to follow it$"):
        paths.check_private_dir(link)


@pytest.mark.parametrize("mode, who", [(0o770, "its group"), (0o707, "others"), (0o1777, "others")])
def test_a_directory_others_may_write_is_refused(tmp_path, mode, who):
    folder = tmp_path / "evd-me"
    folder.mkdir()
    folder.chmod(mode)
    with pytest.raises(EvdError, match=f"is writable by {who}; refusing to use it"):
        paths.check_private_dir(folder)


@pytest.mark.skipif(os.geteuid() != 0, reason="needs root to give a directory away")
def test_a_directory_of_someone_else_is_refused_naming_its_owner(tmp_path):
    folder = tmp_path / "evd-me"
    folder.mkdir(mode=0o700)
    os.chown(folder, 65534, 65534)
    with pytest.raises(EvdError, match=r"belongs to \S+ \(uid 65534\), not to you; refusing to use it$"):
        paths.check_private_dir(folder)


def test_the_control_server_refuses_a_squatted_fallback_directory(tmp_path, monkeypatch):
    squatted = tmp_path / "evd-4242"
    (tmp_path / "attacker").mkdir()
    squatted.symlink_to(tmp_path / "attacker")
    monkeypatch.setattr(paths, "fallback_socket_dir", lambda: squatted)
    server = ControlServer(squatted / "central.sock", dispatcher=None, state=None, hello={})
    with pytest.raises(EvdError, match=r"control socket directory .* is a symbolic link"):
        asyncio.run(server.start())
    assert not list((tmp_path / "attacker").iterdir())  # nothing was made through the link


def test_the_control_server_makes_the_fallback_directory_private(tmp_path, monkeypatch):
    folder = tmp_path / "evd-4242"
    monkeypatch.setattr(paths, "fallback_socket_dir", lambda: folder)
    server = ControlServer(folder / "central.sock", dispatcher=None, state=None, hello={})
    server._prepare_path()
    assert folder.stat().st_mode & 0o777 == 0o700
