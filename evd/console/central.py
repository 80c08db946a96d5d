"""Central's panel: a grid of CP tiles that reflows with the width, on-going requests, messages."""

import urwid

from . import widgets
from .palette import STATES

FILTERS = (None, *STATES)
TILE_HEIGHT = 8  # six lines inside a box
LOWER_ROWS_MIN = 8  # requests and messages keep at least this much of the screen


class TileGrid(urwid.WidgetWrap):
    """CP tiles in rows as wide as the terminal allows, in a scrolling list; focus kept by CP id."""

    def __init__(self):
        self.cps = []
        self.selected = None
        self._per_row = None
        self._list = urwid.ListBox(urwid.SimpleFocusListWalker([]))
        super().__init__(self._list)

    def set_cps(self, cps):
        self.selected = self.focused_id() or self.selected
        if cps == self.cps:
            return
        self.cps = [dict(cp) for cp in cps]  # copies: the tree's dicts change in place
        self._per_row = None  # rebuilt at the next render
        self._invalidate()  # urwid caches this widget's canvas: drop it, or old tiles stay on screen

    def rows_needed(self, width):
        per_row = max(1, width // widgets.TILE_WIDTH)
        return max(1, -(-len(self.cps) // per_row) * TILE_HEIGHT)

    def focused_id(self):
        if self._per_row is None:  # not laid out since the last change: the remembered or first CP
            return self.selected or (self.cps[0]["id"] if self.cps else None)
        row = self._list.focus
        if row is None:
            return None
        tile = row.focus if isinstance(row, urwid.Columns) else None
        return tile.base_widget.key if tile is not None and hasattr(tile.base_widget, "key") else None

    def render(self, size, focus=False):
        self._layout(size[0])
        return super().render(size, focus)

    def keypress(self, size, key):
        self._layout(size[0])
        result = super().keypress(size, key)
        self.selected = self.focused_id() or self.selected
        return result

    def _layout(self, width):
        per_row = max(1, width // widgets.TILE_WIDTH)
        if per_row == self._per_row:
            return
        self._per_row = per_row
        rows, focus = [], (0, 0)
        for start in range(0, len(self.cps), per_row):
            chunk = self.cps[start : start + per_row]
            for column, cp in enumerate(chunk):
                if cp["id"] == self.selected:
                    focus = (len(rows), column)
            cells = [(widgets.TILE_WIDTH, widgets.cp_tile(cp)) for cp in chunk]
            rows.append(urwid.Columns(cells, dividechars=0))
        if not rows:
            rows = [urwid.Text(("dim", "no charging points to show"))]
        self._list.body[:] = rows
        if isinstance(rows[0], urwid.Columns):
            self._list.focus_position = focus[0]
            rows[focus[0]].focus_position = focus[1]


class CentralPanel:
    def __init__(self, app):
        self.app = app
        self.filter = None
        self.grid = TileGrid()

    def cps(self):
        cps = sorted((self.app.tree.get("cps") or {}).values(), key=lambda cp: cp["id"])
        return [cp for cp in cps if self.filter is None or cp.get("state") == self.filter]

    def summary(self):
        counts = {}
        for cp in (self.app.tree.get("cps") or {}).values():
            counts[cp.get("state")] = counts.get(cp.get("state"), 0) + 1
        status = (self.app.tree.get("central") or {}).get("status", "?")
        parts = ", ".join(f"{counts[s]} {s}" for s in STATES if counts.get(s))
        return f"central {status} · {sum(counts.values())} CPs" + (f": {parts}" if parts else "")

    def body(self):
        self.grid.set_cps(self.cps())
        requests = sorted((self.app.tree.get("requests") or {}).values(), key=lambda r: r.get("requested_at") or "")
        rows = [((r.get("requested_at") or "")[:10], (r.get("requested_at") or "")[11:19], r["driver"], r["cp"]) for r in requests]
        requests_box = widgets.table("On-going driver requests", ("DATE", "START", "DRIVER", "CP"), rows)
        messages_box = widgets.messages(self.app.tree.get("messages"))
        notice = urwid.Text(("dim", f"showing only {self.filter}  (f: next filter)")) if self.filter else None
        return widgets.Layout(lambda size: self._layout(size, notice, requests_box, messages_box))

    def _layout(self, size, notice, requests_box, messages_box):
        """Tiles as tall as they need (leaving the lower part its minimum), then requests and messages share the rest."""
        cols, rows = size
        room = rows - 2 - (1 if notice else 0)  # two dividers
        grid_rows = max(1, min(self.grid.rows_needed(cols), room - LOWER_ROWS_MIN))
        lower = max(0, room - grid_rows)
        requests_rows = min(requests_box.rows_needed(), max(3, lower // 2))
        parts = [("pack", notice)] if notice else []
        return urwid.Pile(
            [
                *parts,
                (grid_rows, self.grid),
                ("pack", urwid.Divider("─")),
                (requests_rows, requests_box),
                ("pack", urwid.Divider("─")),
                ("weight", 1, messages_box),
            ]
        )

    def args_for(self, action):
        if action in ("stop_all", "resume_all"):
            return {"all": True}
        selected = self.grid.focused_id() or self.grid.selected
        return {"ids": [selected]} if selected else None

    def do_filter(self):
        self.filter = FILTERS[(FILTERS.index(self.filter) + 1) % len(FILTERS)]
        self.app.status_line = ("text", f"filter: {self.filter or 'all states'}")
