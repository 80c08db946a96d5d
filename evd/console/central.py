"""Central's panel: a grid of CP tiles that reflows with the width, on-going requests, messages."""

import urwid

from . import widgets
from .palette import STATES

FILTERS = (None, *STATES)
REQUEST_ROWS = 3
MESSAGE_ROWS = 4


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
        self.cps = cps
        self._per_row = None  # rebuilt at the next render

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
        shown = rows[-REQUEST_ROWS:]
        title = "On-going driver requests" + (f" (last {REQUEST_ROWS} of {len(rows)})" if len(rows) > REQUEST_ROWS else "")
        parts = [("pack", urwid.Text(("dim", f"showing only {self.filter}  (f: next filter)")))] if self.filter else []
        return urwid.Pile(
            [
                *parts,
                ("weight", 1, self.grid),
                ("pack", urwid.Divider("─")),
                ("pack", widgets.table(title, ("DATE", "START", "DRIVER", "CP"), shown)),
                ("pack", urwid.Divider("─")),
                ("pack", widgets.messages(self.app.tree.get("messages"), MESSAGE_ROWS)),
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
