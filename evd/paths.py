"""Where control sockets live (DESIGN.md §5); evd and evctl resolve names the same way."""

import os
import pathlib


def socket_dir():
    """The default directory of control sockets for this user."""
    runtime = os.environ.get("RUNTIME_DIRECTORY")
    if runtime:
        # systemd may list several directories, separated by colons.
        return pathlib.Path(runtime.split(":")[0])
    if os.geteuid() == 0:
        return pathlib.Path("/run/evd")
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg:
        return pathlib.Path(xdg) / "evd"
    return pathlib.Path(f"/tmp/evd-{os.geteuid()}")


def socket_path(name, configured=None):
    """The control socket of instance ``name``: the configured path, else the default directory's."""
    if configured:
        return pathlib.Path(configured)
    return socket_dir() / f"{name}.sock"


def discover():
    """The sockets in the default directory, for evctl with neither -n nor -s."""
    folder = socket_dir()
    try:
        return sorted(p for p in folder.iterdir() if p.suffix == ".sock" and p.is_socket())
    except OSError:
        return []
