"""A daemon's observable state: the JSON tree that panels draw, with coalesced change streams.

Roles change it with :meth:`State.set`, :meth:`State.delete` and :meth:`State.append`;
each ``watch`` on the control socket gets a :class:`Watcher` that keeps, per path, only the
last change since its previous flush. Replaying a watcher's ops, in their order, over the
previous tree gives the current tree: a later set or delete on a path or on one of its
ancestors overrides whatever was done below it earlier.
"""

import asyncio
import collections
import copy
import itertools
import json

#: A watcher that falls this far behind gets a fresh snapshot instead of a flood of ops.
MAX_PENDING_OPS = 20_000


class State:
    def __init__(self):
        self.data = {}
        self._watchers = set()
        self._append_ids = itertools.count()

    def get(self, path, default=None):
        return _lookup(self.data, path, default)

    def set(self, path, value):
        """Set ``path`` (a tuple of keys) to a JSON-serialisable ``value``."""
        path = tuple(path)
        _parent(self.data, path)[path[-1]] = value
        self._emit(path, ("set", list(path), value))

    def delete(self, path):
        path = tuple(path)
        parent = self.get(path[:-1]) if len(path) > 1 else self.data
        if isinstance(parent, dict) and path[-1] in parent:
            del parent[path[-1]]
            self._emit(path, ("del", list(path)))

    def append(self, path, value, limit=200):
        """Append to the list at ``path``, keeping its last ``limit`` items (a message log)."""
        path = tuple(path)
        _append(_parent(self.data, path), path[-1], value, limit)
        # Appends are never coalesced with one another: each gets a key of its own.
        self._emit((*path, ("append", next(self._append_ids))), ("append", list(path), value, limit))

    def snapshot(self):
        return copy.deepcopy(self.data)

    def watch(self):
        watcher = Watcher(self)
        self._watchers.add(watcher)
        return watcher

    def _emit(self, key, op):
        for watcher in self._watchers:
            watcher.push(key, op)


class Watcher:
    """The pending changes of one watch stream; ``changed`` is set when there are any."""

    def __init__(self, state):
        self.state = state
        self.pending = collections.OrderedDict()
        self.changed = asyncio.Event()
        self.resync = False

    def push(self, key, op):
        if self.resync:
            return
        if op[0] == "append":
            ancestor = self._pending_set_above(op[1])
            if ancestor is not None:
                # That set's value is a live part of the tree, which already holds this append:
                # send the ancestor's current value instead of appending twice.
                key, op = ancestor, ("set", list(ancestor), self.state.get(ancestor))
        self.pending.pop(key, None)
        self.pending[key] = op
        if len(self.pending) > MAX_PENDING_OPS:
            self.pending.clear()
            self.resync = True
        self.changed.set()

    def _pending_set_above(self, path):
        for end in range(1, len(path) + 1):
            pending = self.pending.get(tuple(path[:end]))
            if pending is not None and pending[0] == "set":
                return tuple(path[:end])
        return None

    def take(self):
        """Return ``("snapshot", tree)`` after an overflow, else ``("update", ops)``."""
        self.changed.clear()
        if self.resync:
            self.resync = False
            return "snapshot", self.state.snapshot()
        ops = [list(op) for op in self.pending.values()]
        self.pending.clear()
        return "update", ops

    def close(self):
        self.state._watchers.discard(self)


def apply_ops(data, ops):
    """Apply update ops (as sent over the control socket) to a client's copy of the tree."""
    for op in ops:
        kind, path = op[0], tuple(op[1])
        # Parents are made as the daemon made them: a sent delete means its parent existed there.
        parent = _parent(data, path)
        if kind == "set":
            parent[path[-1]] = op[2]
        elif kind == "del":
            parent.pop(path[-1], None)
        elif kind == "append":
            _append(parent, path[-1], op[2], op[3])
    return data


def encode(message):
    """One control-protocol line."""
    return (json.dumps(message, separators=(",", ":"), default=str) + "\n").encode()


def _append(parent, key, value, limit):
    items = parent.get(key)
    if not isinstance(items, list):
        items = parent[key] = []
    items.append(value)
    del items[:-limit]


def _lookup(data, path, default=None):
    node = data
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return default
        node = node[key]
    return node


def _parent(data, path):
    if not path:
        raise ValueError("empty state path")
    node = data
    for key in path[:-1]:
        child = node.get(key)
        if not isinstance(child, dict):
            child = node[key] = {}
        node = child
    return node
