"""API tokens: made by ``evctl api token add NAME``, shown once, stored as a SHA-256 hash in central.db.

A token is 32 random bytes: a fast hash is enough (no password to stretch), compared in constant time.
"""

import hashlib
import hmac
import re
import secrets

from evd import messages
from evd.errors import CommandError

NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.@-]{0,63}$")
PREFIX = "evd_"


def digest(token):
    return hashlib.sha256(token.encode()).hexdigest()


class TokenStore:
    def __init__(self, db):
        self.db = db  # central's database (api_tokens is in its schema)

    def add(self, name):
        if not isinstance(name, str) or not NAME.match(name):
            raise CommandError("bad_args", f"invalid token name {name!r}: letters, digits, '_', '.', '@' or '-'")
        existing = self._row(name)
        if existing is not None and not existing["revoked_at"]:
            raise CommandError("refused", f"a token named {name} exists; revoke it first")
        token = PREFIX + secrets.token_urlsafe(32)
        self.db["api_tokens"].upsert({"name": name, "hash": digest(token), "created_at": messages.now_iso(), "revoked_at": None}, pk="name")
        return token

    def list(self):
        return [{k: row[k] for k in ("name", "created_at", "revoked_at")} for row in self.db["api_tokens"].rows_where(order_by="name")]

    def revoke(self, name):
        row = self._row(name)
        if row is None:
            raise CommandError("not_found", f"no token named {name}")
        if not row["revoked_at"]:
            self.db.execute("UPDATE api_tokens SET revoked_at = ? WHERE name = ?", [messages.now_iso(), name])

    def holder(self, token):
        """The name of the live token ``token``, or None (unknown or revoked)."""
        wanted = digest(token)
        for row in self.db["api_tokens"].rows_where("revoked_at IS NULL"):
            if hmac.compare_digest(row["hash"], wanted):
                return row["name"]
        return None

    def _row(self, name):
        rows = list(self.db["api_tokens"].rows_where("name = ?", [name], limit=1))
        return rows[0] if rows else None
