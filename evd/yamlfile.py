"""YAML documents as trees that remember where each value came from (file and line).

Configuration errors must point at ``FILE:LINE``, and layered files (site-wide, instance,
drop-ins, ``--set``) must keep the origin of every value, so plain ``yaml.safe_load``
is not enough: this module walks the composed node graph itself.
"""

import attrs
import yaml

from .errors import ConfigError


@attrs.define
class Scalar:
    """A leaf value; ``text`` is the scalar as written, for string fields (``id: 007``)."""

    value: object
    text: str | None
    source: str
    line: int | None


@attrs.define
class Mapping:
    items: dict  # str -> Scalar | Mapping | Sequence
    source: str
    line: int | None
    #: key -> (source, line) where the key itself is written.
    keys: dict = attrs.Factory(dict)

    def key_location(self, key):
        return self.keys.get(key, (self.source, self.line))


@attrs.define
class Sequence:
    items: list
    source: str
    line: int | None


Node = Scalar | Mapping | Sequence


def load_file(path):
    """Parse ``path`` into a located tree; an empty file is an empty mapping."""
    try:
        with open(path, encoding="utf-8") as f:
            text = f.read()
    except OSError as e:
        raise ConfigError(f"cannot read configuration: {e.strerror}", str(path)) from None
    except UnicodeDecodeError as e:
        raise ConfigError(f"not UTF-8 text: {e.reason}", str(path)) from None
    return load_text(text, str(path))


def load_text(text, source):
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        problem = e.problem or e.context or "invalid YAML"
        raise ConfigError(f"YAML syntax error: {problem}", source, mark.line + 1 if mark else None) from None
    except yaml.YAMLError as e:
        raise ConfigError(f"YAML error: {e}", source) from None
    if node is None:
        return Mapping({}, source, 1)
    tree = _convert(node, source)
    if not isinstance(tree, Mapping):
        raise ConfigError("the configuration must be a mapping of keys to values", source, tree.line)
    return tree


def parse_override(assignment):
    """Turn ``--set key.path=value`` into a one-branch tree; the value is read as YAML."""
    source = f"--set {assignment}"
    key, sep, raw = assignment.partition("=")
    keys = key.strip().split(".")
    if not sep or not all(k.strip() for k in keys):
        raise ConfigError("expected --set key.path=value", source)
    try:
        node = yaml.compose(raw, Loader=yaml.SafeLoader) if raw.strip() else None
    except yaml.YAMLError as e:
        raise ConfigError(f"value is not valid YAML: {e}", source) from None
    leaf = _convert(node, source) if node is not None else Scalar(None, "", source, None)
    _strip_lines(leaf)
    for k in reversed(keys):
        leaf = Mapping({k.strip(): leaf}, source, None, {k.strip(): (source, None)})
    return leaf


def merge(base, top):
    """Layer ``top`` over ``base``: mappings merge key by key, anything else is replaced."""
    if not (isinstance(base, Mapping) and isinstance(top, Mapping)):
        return top
    items, keys = dict(base.items), dict(base.keys)
    for key, node in top.items.items():
        items[key] = merge(items[key], node) if key in items else node
        keys[key] = top.key_location(key)
    return Mapping(items, top.source, top.line, keys)


def _strip_lines(node):
    # Values given on the command line have no line to point at.
    node.line = None
    if isinstance(node, Mapping):
        node.keys = {}
        for child in node.items.values():
            _strip_lines(child)
    elif isinstance(node, Sequence):
        for child in node.items:
            _strip_lines(child)


def _convert(node, source):
    line = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        items, keys = {}, {}
        for key_node, value_node in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                raise ConfigError("YAML merge keys (<<) are not supported", source, key_node.start_mark.line + 1)
            if not isinstance(key_node, yaml.ScalarNode):
                raise ConfigError("keys must be plain words", source, key_node.start_mark.line + 1)
            key = key_node.value
            if key in items:
                raise ConfigError(f"duplicate key '{key}'", source, key_node.start_mark.line + 1)
            items[key] = _convert(value_node, source)
            keys[key] = (source, key_node.start_mark.line + 1)
        return Mapping(items, source, line, keys)
    if isinstance(node, yaml.SequenceNode):
        return Sequence([_convert(child, source) for child in node.value], source, line)
    try:
        value = yaml.SafeLoader(" ").construct_object(node, deep=True)
    except yaml.YAMLError as e:
        raise ConfigError(f"invalid value: {e}", source, line) from None
    # Quoted scalars and plain ones both keep their written text for string fields.
    text = node.value if isinstance(node.value, str) else None
    if value is None and node.style is None and node.value in ("", "~", "null", "Null", "NULL"):
        text = None
    return Scalar(value, text, source, line)
