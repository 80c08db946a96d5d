"""Command results as people read them (evctl's human output, the panels' status line).

No Python reprs, no JSON, no escapes: ``stopped: ALC1, MAD2``, ``yes``/``no``, ``-`` for nothing.
"""


def cell(value):
    """One value as plain text."""
    if value is None:
        return "-"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, float):
        return f"{value:.2f}"
    if isinstance(value, (list, tuple)):
        if not value:
            return "(none)"
        return ("; " if any(isinstance(v, dict) for v in value) else ", ").join(cell(v) for v in value)
    if isinstance(value, dict):
        return ", ".join(f"{k} {cell(v)}" for k, v in value.items()) or "-"
    return str(value)


def summary(result):
    """A command's answer in one line, for a panel's status line: ``stopped MAD2``."""
    if isinstance(result, dict):
        parts = [f"{key} {cell(value)}" for key, value in flatten(result) if value not in (None, [], {})]
        return ", ".join(parts) or "ok"
    return "ok" if result is None else cell(result)


def lines(result, columns=()):
    """A command's answer as the lines evctl prints: a table, ``key: value`` lines or plain values."""
    if isinstance(result, list) and (columns or any(isinstance(item, dict) for item in result)):
        return table(result, columns or _keys(result)).splitlines()
    if isinstance(result, dict):
        out = []
        for key, value in flatten(result):
            if isinstance(value, list) and value and all(isinstance(v, dict) for v in value):
                out.append(f"{key}:")
                out += ["  " + line for line in table(value, _keys(value)).splitlines()]
            else:
                out.append(f"{key}: {cell(value)}")
        return out
    if isinstance(result, list):
        return [cell(item) for item in result]
    return [] if result is None else [cell(result)]


def table(rows, columns):
    """Rows (dicts) as an aligned table with upper-case headers; ``(none)`` for no rows."""
    if not rows:
        return "(none)"
    cells = [[cell(row.get(c)) for c in columns] for row in rows]
    widths = [max(len(c), *(len(r[i]) for r in cells)) for i, c in enumerate(columns)]
    out = ["  ".join(c.upper().ljust(w) for c, w in zip(columns, widths, strict=True)).rstrip()]
    out += ["  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in cells]
    return "\n".join(out)


def flatten(data, prefix=""):
    """``(dotted key, value)`` pairs of a nested dict: ``transport.kind``."""
    for key, value in data.items():
        if isinstance(value, dict) and value:
            yield from flatten(value, f"{prefix}{key}.")
        else:
            yield f"{prefix}{key}", value


def _keys(rows):
    keys = {}
    for row in rows:
        if isinstance(row, dict):
            keys.update(dict.fromkeys(row))
    return tuple(keys)
