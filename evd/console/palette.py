"""Semantic colour names with complete 16-colour, 256-colour and monochrome maps (mitmproxy style).

Every state is also written in words on the panels, so nothing depends on colour alone.
"""

# name: (16-colour fg, 16-colour bg, monochrome, 256-colour fg, 256-colour bg)
PALETTE = {
    "header": ("white,bold", "dark blue", "standout", "#fff,bold", "#006"),
    "footer": ("light gray", "dark gray", "", "#ddd", "#333"),
    "status_ok": ("light green,bold", "dark blue", "bold", "#8f8,bold", "#006"),
    "status_bad": ("light red,bold", "dark blue", "standout", "#f88,bold", "#006"),
    "title": ("yellow,bold", "", "bold", "#fd0,bold", ""),
    "text": ("light gray", "", "", "#ddd", ""),
    "dim": ("dark gray", "", "", "#888", ""),
    "error": ("light red,bold", "", "bold", "#f66,bold", ""),
    "ACTIVE": ("black", "dark green", "", "#000", "#0a0"),
    "SUPPLYING": ("black", "light green", "bold", "#000", "#6f6"),
    "STOPPED": ("black", "brown", "standout", "#000", "#f80"),
    "BROKEN": ("white,bold", "dark red", "standout", "#fff,bold", "#c00"),
    "DISCONNECTED": ("black", "light gray", "", "#000", "#999"),
    "focus": ("white,bold", "dark magenta", "standout", "#fff,bold", "#808"),
    "bar_done": ("black", "light green", "standout", "#000", "#6f6"),
    "bar_todo": ("light gray", "dark gray", "", "#ddd", "#333"),
    "dialog": ("white", "dark blue", "standout", "#fff", "#006"),
}

STATES = ("ACTIVE", "SUPPLYING", "STOPPED", "BROKEN", "DISCONNECTED")


def urwid_palette():
    """The palette as urwid.MainLoop takes it."""
    return [(name, fg, bg, mono, fg_high, bg_high) for name, (fg, bg, mono, fg_high, bg_high) in PALETTE.items()]
