"""The CP registry (R18) and monitor authentication (R19).

``evctl cp register ID --location L --price P [--city C]`` registers a CP and prints a
credential once; central keeps only a salted scrypt hash. A monitor presents it (from its
``credential_file``) when it connects; a wrong, missing or revoked credential is refused with
a reason, audited, and its source slowed down (doubling back-off). ``cp unregister ID``
removes the CP and revokes its credential. CPs without a credential are governed by
``central.open_registration`` alone. Turn it off with ``registry: {enabled: false}``.
"""

import hashlib
import hmac
import logging
import math
import secrets
import time

import attrs

import evd
from evd import messages
from evd.central import network_of
from evd.commands import Arg, CommandSpec
from evd.errors import CommandError
from evd.pluginmanager import PerDaemon

log = logging.getLogger(__name__)

SCRYPT = {"n": 2**14, "r": 8, "p": 1}
MAX_BACKOFF = 60.0

_registries = PerDaemon()  # central daemon -> its Registry

COMMANDS = [
    CommandSpec(
        ("cp", "register"),
        "register a charging point; prints its credential once",
        role="central",
        args=(
            Arg("id", "charging point id", metavar="ID"),
            Arg("--location", "where it is (street address)", metavar="L", required=True),
            Arg("--price", "price in EUR per kWh", type=float, metavar="P", required=True),
            Arg("--city", "city, for the weather watcher", metavar="C"),
        ),
        mutating=True,
    ),
    CommandSpec(
        ("cp", "unregister"),
        "remove a charging point and revoke its credential",
        role="central",
        args=(Arg("id", "charging point id", metavar="ID"),),
        mutating=True,
    ),
]


@attrs.frozen
class RegistryConfig:
    enabled: bool = True


def hash_credential(credential, salt):
    return hashlib.scrypt(credential.encode(), salt=salt, **SCRYPT).hex()


class Registry:
    def __init__(self, db):
        self.db = db  # central's database (the credentials table is in its schema)
        self.failures = {}  # source address -> (failures, refused until)

    def credential_of(self, cp_id):
        rows = list(self.db["credentials"].rows_where("cp = ?", [cp_id], limit=1))
        return rows[0] if rows else None

    def issue(self, cp_id):
        credential = secrets.token_urlsafe(24)
        salt = secrets.token_bytes(16)
        self.db["credentials"].upsert(
            {
                "cp": cp_id,
                "salt": salt.hex(),
                "hash": hash_credential(credential, salt),
                "issued_at": messages.now_iso(),
                "revoked_at": None,
            },
            pk="cp",
        )
        return credential

    def revoke(self, cp_id):
        self.db.execute("UPDATE credentials SET revoked_at = ? WHERE cp = ?", [messages.now_iso(), cp_id])

    def check(self, cp_id, credential, source):
        failures, until = self.failures.get(source, (0, 0.0))
        if time.monotonic() < until:
            return f"too many failed attempts from {source}; retry in {until - time.monotonic():.0f}s"
        row = self.credential_of(cp_id)
        if row is None:
            return None  # not a registered CP: open_registration decides
        if row["revoked_at"]:
            reason = "the credential of this charging point was revoked"
        elif not credential:
            reason = "this charging point needs its credential (monitor.credential_file)"
        elif not hmac.compare_digest(hash_credential(credential, bytes.fromhex(row["salt"])), row["hash"]):
            reason = "wrong credential"
        else:
            self.failures.pop(source, None)
            return None
        failures += 1
        self.failures[source] = (failures, time.monotonic() + min(MAX_BACKOFF, 2 ** (failures - 1)))
        return reason


def _registry(daemon):
    """This central's registry, opened on first use; None elsewhere or when turned off."""
    network = network_of(daemon)
    section = daemon.config.sections.get("registry")
    if network is None or (section is not None and not section.enabled):
        return None
    return _registries.made(daemon, lambda: Registry(network.database()))


@evd.hookimpl
def evd_config_sections():
    return {"registry": RegistryConfig}


@evd.hookimpl
def evd_register_commands():
    return COMMANDS


@evd.hookimpl
def evd_shutdown(daemon):
    registry = _registries.pop(daemon, None)
    if registry is not None:
        registry.db.conn.close()


@evd.hookimpl
def evd_authenticate_cp(daemon, cp_id, credential, peer):
    registry = _registry(daemon)
    return registry.check(cp_id, credential, peer) if registry else None


@evd.hookimpl
def evd_control_commands(daemon):
    registry = _registry(daemon)
    if registry is None:
        return None

    def register(args, ctx):
        cp_id = args.get("id")
        price = args.get("price")
        if not isinstance(cp_id, str) or not cp_id:
            raise CommandError("bad_args", "give the charging point id")
        if price is not None and (not isinstance(price, (int, float)) or not math.isfinite(price) or price < 0):
            raise CommandError("bad_args", "--price must be a number of EUR per kWh, not negative")
        network_of(daemon).register_cp(cp_id, args.get("location"), price, args.get("city"))
        credential = registry.issue(cp_id)
        daemon.audit("SECURITY", "operator", "credential issued", "ok", cp=cp_id)
        return {"id": cp_id, "credential": credential, "note": "shown once: put it in the CP's monitor.credential_file"}

    def unregister(args, ctx):
        cp_id = args.get("id")
        network_of(daemon).unregister_cp(cp_id)
        registry.revoke(cp_id)
        daemon.audit("SECURITY", "operator", "credential revoked", "ok", cp=cp_id)
        return {"id": cp_id, "unregistered": True}

    return {"cp.register": register, "cp.unregister": unregister}
