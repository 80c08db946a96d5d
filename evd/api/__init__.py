"""Central's HTTP API (DESIGN.md §9): routes as data (routes.py), bearer tokens (tokens.py), and
the aiohttp server in central's own event loop (server.py, imported only when the API runs)."""
