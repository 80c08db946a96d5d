"""Where control sockets and state live (DESIGN.md §2, §5); evd and evctl resolve names the same way."""

import os
import pathlib
import stat

from .errors import EvdError

SYSTEM_STATE_DIR = pathlib.Path("/var/lib/evcharging")


def state_dir():
    """The default directory of databases and journals: systemd's, the system's, else this user's own."""
    state = os.environ.get("STATE_DIRECTORY")
    if state:
        # systemd may list several directories, separated by colons.
        return pathlib.Path(state.split(":")[0])
    if os.geteuid() == 0 or os.access(SYSTEM_STATE_DIR, os.W_OK | os.X_OK):
        return SYSTEM_STATE_DIR
    xdg = os.environ.get("XDG_STATE_HOME")
    if xdg and os.path.isabs(xdg):  # the XDG spec: a relative path is to be ignored
        return pathlib.Path(xdg) / "evcharging"
    try:
        return pathlib.Path.home() / ".local" / "state" / "evcharging"
    except RuntimeError:  # no HOME and no passwd entry
        return pathlib.Path.cwd()


def fallback_socket_dir():
    """The last resort of §5, a directory in the shared /tmp that anyone could have made first."""
    return pathlib.Path(f"/tmp/evd-{os.geteuid()}")


def socket_dir():
    """The default directory of control sockets for this user."""
    runtime = os.environ.get("RUNTIME_DIRECTORY")
    if runtime:
        return pathlib.Path(runtime.split(":")[0])
    if os.geteuid() == 0:
        return pathlib.Path("/run/evd")
    xdg = os.environ.get("XDG_RUNTIME_DIR")
    if xdg:
        return pathlib.Path(xdg) / "evd"
    return fallback_socket_dir()


def check_private_dir(folder, what="directory"):
    """Refuse ``folder`` unless it is a real directory of this user's that no one else may write.

    A directory squatted in /tmp is an attack: it is never followed (lstat, O_NOFOLLOW) nor used.
    """
    try:
        fd = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW)
    except OSError as e:
        st = _lstat(folder)
        if st is not None and stat.S_ISLNK(st.st_mode):
            raise EvdError(f"{what} {folder} is a symbolic link owned by {_owner(st.st_uid)}; refusing to follow it") from None
        if st is not None and st.st_uid != os.geteuid():
            raise EvdError(f"{what} {folder} belongs to {_owner(st.st_uid)}, not to you; refusing to use it") from None
        raise EvdError(f"cannot open {what} {folder}: {e.strerror}") from None
    try:
        st = os.fstat(fd)
    finally:
        os.close(fd)
    if st.st_uid != os.geteuid():
        raise EvdError(f"{what} {folder} belongs to {_owner(st.st_uid)}, not to you; refusing to use it")
    if st.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        raise EvdError(f"{what} {folder} is writable by {'others' if st.st_mode & stat.S_IWOTH else 'its group'}; refusing to use it")


def _lstat(path):
    try:
        return os.lstat(path)
    except OSError:
        return None


def _owner(uid):
    import pwd

    try:
        return f"{pwd.getpwuid(uid).pw_name} (uid {uid})"
    except KeyError:
        return f"uid {uid}"


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
