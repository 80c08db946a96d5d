"""Configuration: layered YAML files turned into attrs objects, every error as ``FILE:LINE: message``.

Layers, last wins (DESIGN.md §3): the site-wide ``evd.yaml`` beside the instance file, the
instance file, its drop-ins (``NAME.d/*.yaml``), then ``--set key.path=value``.
The core owns ``name``, ``role``, ``transport``, ``control`` and ``log``; plugins add the
other sections (``central``, ``engine``, …) and the transport options through hooks.
"""

import difflib
import ipaddress
import os
import pathlib
import re
import types
import typing

import attrs

from . import yamlfile
from .errors import ConfigError

SITE_FILE_NAME = "evd.yaml"
SITE_FILE = pathlib.Path("/etc/evcharging") / SITE_FILE_NAME
SITE_ENV = "EVD_SITE_CONFIG"  # another site-wide file; empty for none (the demo, tests)
NAME_PATTERN = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")


class Duration(float):
    """Seconds, written in config as ``500ms``, ``1s``, ``2m`` or ``1h``."""

    UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
    PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h)\s*$")

    @classmethod
    def parse(cls, text):
        match = cls.PATTERN.match(str(text))
        if not match:
            raise ValueError(f"expected a duration such as 500ms, 3s or 2m, got {text!r}")
        number, unit = match.groups()
        return cls(float(number) * cls.UNITS[unit])

    def __str__(self):
        return f"{int(self * 1000)}ms" if self < 1 else f"{self:g}s"


@attrs.frozen
class HostPort:
    """A ``host:port`` address; IPv6 hosts in brackets (``[::1]:7000``)."""

    host: str
    port: int

    @classmethod
    def parse(cls, text):
        text = str(text).strip()
        host, sep, port = text.rpartition(":")
        if not sep or not host:
            raise ValueError(f"expected host:port, got {text!r}")
        if host.startswith("[") and host.endswith("]"):
            host = host[1:-1]
            ipaddress.IPv6Address(host)
        elif not re.fullmatch(r"[A-Za-z0-9]([A-Za-z0-9.-]*[A-Za-z0-9])?", host):
            raise ValueError(f"{host!r} is not a valid host name or address")
        if not port.isdigit() or not 1 <= int(port) <= 65535:
            raise ValueError(f"port must be a number from 1 to 65535, got {port!r}")
        return cls(host, int(port))

    def __str__(self):
        return f"[{self.host}]:{self.port}" if ":" in self.host else f"{self.host}:{self.port}"


LogLevel = typing.Literal["debug", "info", "warning", "error"]


def positive(_instance, attribute, value):
    """attrs validator: a number greater than zero."""
    if value is not None and value <= 0:
        raise ValueError(f"must be greater than zero, got {value}")


def non_negative(_instance, attribute, value):
    """attrs validator: a number not below zero."""
    if value is not None and value < 0:
        raise ValueError(f"must not be negative, got {value}")


@attrs.frozen
class ControlConfig:
    socket: pathlib.Path | None = None


@attrs.frozen
class LogConfig:
    level: LogLevel = "info"


@attrs.frozen
class TransportConfig:
    kind: str = "local"
    topic_prefix: str = "evcharging"
    #: The options object of the selected transport plugin (its ``options_class``), or None.
    options: object = None


@attrs.frozen
class Config:
    name: str
    role: str
    transport: TransportConfig
    control: ControlConfig
    log: LogConfig
    #: Plugin-owned sections by name (``central``, ``engine``, …), as attrs objects.
    sections: dict
    #: The files this configuration was read from, in layering order.
    files: tuple = ()

    def section(self, name):
        return self.sections[name]


@attrs.frozen
class Schema:
    """What the installed plugins let a configuration contain."""

    roles: dict  # role name -> role class (with ``uses_bus``)
    transports: dict  # kind -> transport class (with ``options_class``)
    sections: dict  # section name -> attrs class


CORE_KEYS = ("name", "role", "transport", "control", "log")


def site_files_for(path):
    """The site-wide files layered under ``path``, in order (DESIGN.md §3).

    ``/etc/evcharging/evd.yaml`` (or ``$EVD_SITE_CONFIG``; empty: none) for every instance,
    then ``evd.yaml`` beside the instance file, so that a copied tree of configs carries its own.
    """
    instance = pathlib.Path(path).resolve()
    configured = os.environ.get(SITE_ENV)
    fixed = SITE_FILE if configured is None else (pathlib.Path(configured) if configured else None)
    files = []
    for candidate in (fixed, instance.parent / SITE_FILE_NAME):
        if candidate is None or not candidate.is_file():
            continue
        candidate = candidate.resolve()
        if candidate != instance and candidate not in files:
            files.append(candidate)
    return files


def dropin_files(path):
    """``NAME.d/*.yaml`` beside ``NAME.yaml``, in name order: local overrides of a shipped file."""
    path = pathlib.Path(path)
    folder = path.with_name(path.stem + ".d")
    return sorted(folder.glob("*.yaml")) if folder.is_dir() else []


def load(path, schema, overrides=(), site=True):
    """Read, layer and validate the configuration of one instance."""
    files = []
    tree = yamlfile.Mapping({}, str(path), None)
    site_paths = site_files_for(path) if site else []
    for layer in site_paths + [pathlib.Path(path)] + dropin_files(path):
        tree = yamlfile.merge(tree, yamlfile.load_file(layer))
        files.append(str(layer))
    # The instance file is where a missing key belongs.
    tree.source, tree.line = str(path), 1
    for assignment in overrides:
        tree = yamlfile.merge(tree, yamlfile.parse_override(assignment))
        tree.source, tree.line = str(path), 1
    return build(tree, schema, files)


def load_mapping(data, schema, source, overrides=()):
    """Validate a plain dict (from the compatibility commands) as a configuration."""
    import yaml

    tree = yamlfile.load_text(yaml.safe_dump(data), source)
    for assignment in overrides:
        tree = yamlfile.merge(tree, yamlfile.parse_override(assignment))
    return build(tree, schema, [source])


def build(tree, schema, files=()):
    _check_keys(tree, list(CORE_KEYS) + list(schema.sections))
    role = _field(tree, "role", str, required=True)
    if role not in schema.roles:
        known = ", ".join(sorted(schema.roles)) or "none installed"
        raise _at(tree.items["role"], f"unknown role '{role}' (known roles: {known})")
    name = _field(tree, "name", str) or role
    if not NAME_PATTERN.match(name):
        raise _at(tree.items.get("name", tree), f"invalid name {name!r}: use letters, digits, '_', '.', '@' or '-'")

    transport = _transport(tree.items.get("transport"), schema, role, tree)
    sections = {}
    for section, cls in schema.sections.items():
        node = tree.items.get(section)
        # Every section present is checked, so a site-wide file with another role's section errs early.
        if node is not None or section == role:
            sections[section] = structure(cls, node, tree, section)
    return Config(
        name=name,
        role=role,
        transport=transport,
        control=structure(ControlConfig, tree.items.get("control"), tree, "control"),
        log=structure(LogConfig, tree.items.get("log"), tree, "log"),
        sections=sections,
        files=tuple(files),
    )


def _transport(node, schema, role, parent):
    known_keys = {"kind", "topic_prefix"}
    owners = {}
    for kind, cls in schema.transports.items():
        for field in attrs.fields(getattr(cls, "options_class", None) or _Empty):
            owners.setdefault(field.name, []).append(kind)
    if node is not None and not isinstance(node, yamlfile.Mapping):
        raise _at(node, "'transport' must be a mapping")
    node = node or yamlfile.Mapping({}, parent.source, parent.line)
    _check_keys(node, sorted(known_keys | set(owners)), "transport.")
    kind = _field(node, "kind", str) or "local"
    uses_bus = getattr(schema.roles[role], "uses_bus", True)
    if kind not in schema.transports and uses_bus:
        known = ", ".join(sorted(schema.transports)) or "none installed"
        raise _at(node.items.get("kind", node), f"unknown transport kind '{kind}' (known kinds: {known})")
    options = None
    options_class = getattr(schema.transports.get(kind), "options_class", None)
    if options_class is not None:
        own = {k: v for k, v in node.items.items() if k in attrs.fields_dict(options_class)}
        options = structure(options_class, yamlfile.Mapping(own, node.source, node.line), parent, "transport")
    # Keys of other transports (a site-wide file may name several) are still type-checked.
    for key, child in node.items.items():
        if key not in known_keys and (options_class is None or key not in attrs.fields_dict(options_class)):
            other = schema.transports[owners[key][0]].options_class
            _coerce(child, attrs.fields_dict(other)[key], f"transport.{key}")
    prefix = _field(node, "topic_prefix", str)
    if prefix is not None and not re.fullmatch(r"[A-Za-z0-9._-]{1,200}", prefix):
        raise _at(node.items["topic_prefix"], "transport.topic_prefix: use letters, digits, '.', '_' or '-' (at least one)")
    return TransportConfig(kind=kind, topic_prefix=prefix or "evcharging", options=options)


@attrs.frozen
class _Empty:
    pass


def structure(cls, node, parent, prefix):
    """Build attrs ``cls`` from a located mapping, checking every key, type and validator."""
    if node is None or (isinstance(node, yamlfile.Scalar) and node.value is None):
        node = yamlfile.Mapping({}, parent.source, parent.line)
    if not isinstance(node, yamlfile.Mapping):
        raise _at(node, f"'{prefix}' must be a mapping")
    fields = attrs.fields_dict(attrs.resolve_types(cls))
    _check_keys(node, list(fields), prefix + ".")
    values = {}
    for name, field in fields.items():
        child = node.items.get(name)
        if child is None:
            if field.default is attrs.NOTHING:
                raise _at(node, f"missing required key '{prefix}.{name}'")
            continue
        value = _coerce(child, field, f"{prefix}.{name}")
        if field.validator is not None:
            try:
                field.validator(None, field, value)
            except (ValueError, TypeError) as e:
                raise _at(child, f"{prefix}.{name}: {e}") from None
        values[name] = value
    try:
        return cls(**values)
    except ValueError as e:  # a rule across keys (__attrs_post_init__)
        raise _at(node, f"{prefix}: {e}") from None


def is_subsection(tp):
    """An attrs class that is a mapping of keys in the file, not a value read from text (HostPort, Duration)."""
    return isinstance(tp, type) and attrs.has(tp) and not hasattr(tp, "parse")


def _coerce(node, field, where):
    if is_subsection(field.type):  # a mapping of its own keys (api.tls: {cert, key})
        nested = field.type
        return structure(nested, node, node, where)
    try:
        return _convert(node, field.type)
    except (ValueError, TypeError) as e:
        raise _at(node, f"{where}: {e}") from None


def _convert(node, tp):
    origin = typing.get_origin(tp)
    args = typing.get_args(tp)
    if origin in (types.UnionType, typing.Union):
        if isinstance(node, yamlfile.Scalar) and node.value is None and type(None) in args:
            return None
        (inner,) = [a for a in args if a is not type(None)]
        return _convert(node, inner)
    if origin is list:
        if not isinstance(node, yamlfile.Sequence):
            raise ValueError("expected a list")
        return [_convert(child, args[0]) for child in node.items]
    if not isinstance(node, yamlfile.Scalar):
        raise ValueError(f"expected a single value, got a {'mapping' if isinstance(node, yamlfile.Mapping) else 'list'}")
    value = node.value
    if origin is typing.Literal:
        text = node.text if node.text is not None else value
        if text not in args:
            raise ValueError(f"expected one of {', '.join(map(str, args))}, got {text!r}")
        return text
    if tp is bool:
        if not isinstance(value, bool):
            raise ValueError(f"expected true or false, got {node.text!r}")
        return value
    if tp is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise ValueError(f"expected a whole number, got {node.text!r}")
        return value
    if tp is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise ValueError(f"expected a number, got {node.text!r}")
        return float(value)
    if value is None:
        raise ValueError("a value is required")
    text = node.text if node.text is not None else str(value)
    if tp is str:
        if isinstance(value, (list, dict)):
            raise ValueError("expected text")
        return text
    if tp is Duration:
        return Duration.parse(text)
    if tp is HostPort:
        return HostPort.parse(text)
    if tp is pathlib.Path:
        return pathlib.Path(text)
    raise TypeError(f"unsupported config type {tp!r}")


def _field(node, key, tp, required=False):
    child = node.items.get(key)
    if child is None:
        if required:
            raise _at(node, f"missing required key '{key}'")
        return None
    try:
        return _convert(child, tp)
    except ValueError as e:
        raise _at(child, f"{key}: {e}") from None


def _check_keys(node, allowed, prefix=""):
    for key in node.items:
        if key not in allowed:
            hint = difflib.get_close_matches(key, allowed, n=1)
            suggestion = f" (did you mean '{prefix}{hint[0]}'?)" if hint else ""
            source, line = node.key_location(key)
            raise ConfigError(f"unknown key '{prefix}{key}'{suggestion}", source, line)


def _at(node, message):
    return ConfigError(message, node.source, node.line)
