"""EVCharging: a real-time control system for electric-vehicle charging points."""

import pluggy

__version__ = "0.1.0"

#: Decorate plugin functions with this to implement a hook from :mod:`evd.hookspecs`.
hookimpl = pluggy.HookimplMarker("evd")

__all__ = ["__version__", "hookimpl"]
