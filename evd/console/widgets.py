"""Small urwid building blocks shared by the panels."""

import urwid

from .palette import STATES

TILE_WIDTH = 20


def state_attr(state):
    return state if state in STATES else "DISCONNECTED"


def cp_tile(cp):
    """A CP as a coloured box: id, location, price, state in words, live supply or reason."""
    state = cp.get("state") or "DISCONNECTED"
    lines = [
        f"{cp['id']}",
        f"{(cp.get('location') or '')[: TILE_WIDTH - 4]}",
        f"{cp.get('price_eur_kwh') or 0:.2f} €/kWh",
        f"{state}",
    ]
    if state == "SUPPLYING" and cp.get("driver"):
        lines.append(f"{cp.get('kwh') or 0:g} kWh {cp.get('eur') or 0:.2f} €")
        lines.append(f"driver {cp['driver']}")
    elif state == "STOPPED":
        reason = (cp.get("detail") or "").partition(": ")[2]
        lines += ["Out of Order", reason[: TILE_WIDTH - 4]]
    elif state == "BROKEN":
        lines += [(cp.get("detail") or "fault")[: TILE_WIDTH - 4], ""]
    else:
        lines += ["", ""]
    body = urwid.Text("\n".join(lines))
    box = urwid.LineBox(urwid.AttrMap(body, state_attr(state)))
    return urwid.AttrMap(SelectableBox(box, cp["id"]), state_attr(state), "focus")


class SelectableBox(urwid.WidgetWrap):
    """A tile that can take the focus, remembering which CP it shows."""

    def __init__(self, widget, key):
        super().__init__(widget)
        self.key = key

    def selectable(self):
        return True

    def keypress(self, size, key):
        return key


def table(title, columns, rows, empty="(none)"):
    """A titled table of text rows, widths from the content."""
    widths = [max(len(c), *(len(str(r[i])) for r in rows)) if rows else len(c) for i, c in enumerate(columns)]
    header = "  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))
    lines = [urwid.Text(("title", title)), urwid.Text(("dim", header))]
    lines += [urwid.Text("  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True))) for row in rows]
    if not rows:
        lines.append(urwid.Text(("dim", empty)))
    return urwid.Pile(lines)


def messages(items, count):
    """The last ``count`` application messages, newest last."""
    lines = [urwid.Text(("title", "Application messages"))]
    for item in (items or [])[-count:]:
        stamp = (item.get("ts") or "")[11:19]
        lines.append(urwid.Text([("dim", f"{stamp} "), item.get("text", "")]))
    return urwid.Pile(lines)


def bar(done, total):
    bar = urwid.ProgressBar("bar_todo", "bar_done", current=min(done, total) if total else 0, done=total or 1)
    return bar


def field(label, value, attr="text"):
    return urwid.Text([("dim", f"{label}: "), (attr, "-" if value is None or value == "" else str(value))])
