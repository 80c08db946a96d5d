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
        f"{cp.get('price_eur_kwh') or 0:.2f} €/kWh" + (f" · {cp['celsius']:g} °C" if cp.get("celsius") is not None else ""),
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
    body = urwid.Text("\n".join(lines), wrap="clip")
    box = urwid.LineBox(urwid.AttrMap(body, state_attr(state)))
    # The border shows the selection; the inside keeps the state's colour even when selected.
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


def messages(items):
    """The application messages as a box that shows as many of the newest as fit."""
    lines = [urwid.Text([("dim", f"{(item.get('ts') or '')[11:19]} "), item.get("text", "")], wrap="ellipsis") for item in items or []]
    return Tail(lambda shown: "Application messages" + _last(shown, len(lines)), [], lines)


def table(title, columns, rows, empty="(none)"):
    """A titled table of text rows as a box that shows as many of the last rows as fit."""
    header, lines = _table_lines(columns, rows, empty)
    return Tail(lambda shown: title + _last(shown, len(rows)), [header], lines)


def rows_table(title, columns, rows, empty="(none)"):
    """A titled table of every row given, as a flow widget."""
    header, lines = _table_lines(columns, rows, empty)
    return urwid.Pile([urwid.Text(("title", title)), header, *lines])


def _table_lines(columns, rows, empty):
    widths = [max(len(c), *(len(str(r[i])) for r in rows)) if rows else len(c) for i, c in enumerate(columns)]
    header = urwid.Text(("dim", "  ".join(c.ljust(w) for c, w in zip(columns, widths, strict=True))), wrap="clip")
    lines = [urwid.Text("  ".join(str(v).ljust(w) for v, w in zip(row, widths, strict=True)), wrap="clip") for row in rows]
    return header, lines or [urwid.Text(("dim", empty))]


def _last(shown, total):
    return f" (last {shown} of {total})" if shown < total else ""


class Tail(urwid.Widget):
    """A box of one-row lines under a title and a fixed head: the newest lines that fit."""

    _sizing = frozenset([urwid.BOX])

    def __init__(self, title, head, lines):
        super().__init__()
        self.title, self.head, self.lines = title, head, lines

    def rows_needed(self):
        return 1 + len(self.head) + len(self.lines)

    def render(self, size, focus=False):
        _cols, rows = size
        room = max(0, rows - 1 - len(self.head))
        shown = self.lines[max(0, len(self.lines) - room) :] if room else []
        pile = urwid.Pile([urwid.Text(("title", self.title(len(shown))), wrap="ellipsis"), *self.head, *shown])
        return urwid.CompositeCanvas(urwid.Filler(pile, valign="top").render(size, focus))


class Layout(urwid.Widget):
    """A box whose inside is built for the size it is given (panels that share rows by need)."""

    _sizing = frozenset([urwid.BOX])
    _selectable = True

    def __init__(self, build):
        super().__init__()
        self.build = build

    def render(self, size, focus=False):
        return urwid.CompositeCanvas(self.build(size).render(size, focus))

    def keypress(self, size, key):
        return self.build(size).keypress(size, key)


def bar(done, total):
    bar = urwid.ProgressBar("bar_todo", "bar_done", current=min(done, total) if total else 0, done=total or 1)
    return bar


def field(label, value, attr="text"):
    return urwid.Text([("dim", f"{label}: "), (attr, "-" if value is None or value == "" else str(value))])
