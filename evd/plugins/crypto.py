"""Per-CP keys and sealed engine <-> central records (R20).

Central gives each charging point that authenticated a random 256-bit key, in its
registration reply; the monitor hands it to its engine (``CPID#id#key``), which keeps it in
its journal. From then on telemetry (engine -> central) and orders (central -> engine)
travel as ``sealed`` envelopes: AES-GCM over the whole message, with the topic and CP id as
associated data, so a record cannot be read, altered or replayed onto another CP or topic.
A record that fails to open is rejected and audited; with ``require`` (the default) so is
a plain record from a CP that has a key. Unregistering a CP revokes its key.
"""

import base64
import functools
import logging
import os

import attrs

import evd
from evd import messages
from evd.central import network_of
from evd.pluginmanager import PerDaemon

log = logging.getLogger(__name__)

SEALED_TOPICS = ("cp.telemetry", "cp.commands")


@attrs.frozen
class CryptoConfig:
    enabled: bool = True
    #: Reject plain records from (or to) a charging point that has a key.
    require: bool = True


@functools.cache
def _aead():
    """cryptography's AES-GCM and its error, loaded on first use: monitors, drivers and key-less engines never need it (~6 MB)."""
    from cryptography.exceptions import InvalidTag
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

    return AESGCM, InvalidTag


def new_key():
    aesgcm, _ = _aead()
    return base64.b64encode(aesgcm.generate_key(bit_length=256)).decode()


def seal(key, topic, cp_id, message):
    nonce = os.urandom(12)
    aesgcm, _ = _aead()
    data = aesgcm(base64.b64decode(key)).encrypt(nonce, messages.encode(message), f"{topic}|{cp_id}".encode())
    return messages.make("sealed", cp=cp_id, nonce=base64.b64encode(nonce).decode(), data=base64.b64encode(data).decode())


def unseal(key, topic, cp_id, envelope):
    aesgcm, invalid_tag = _aead()
    try:
        nonce, data = base64.b64decode(envelope["nonce"], validate=True), base64.b64decode(envelope["data"], validate=True)
        plain = aesgcm(base64.b64decode(key)).decrypt(nonce, data, f"{topic}|{cp_id}".encode())
    except (invalid_tag, ValueError) as e:
        raise messages.MalformedMessage(f"sealed record from {cp_id} does not open with its key ({type(e).__name__})") from None
    return messages.check(topic, messages.decode(plain))


_key_stores = PerDaemon()  # central daemon -> its KeyStore
_engine_keys = PerDaemon()  # engine daemon -> the key central gave its CP


class KeyStore:
    """Central's keys, in its database."""

    def __init__(self, db):
        self.db = db  # central's database (the cp_keys table is in its schema)
        self.active = {row["cp"]: row["key"] for row in self.db["cp_keys"].rows_where("revoked_at IS NULL")}

    def key_for(self, cp_id):
        if cp_id not in self.active:
            self.active[cp_id] = new_key()
            self.db["cp_keys"].upsert(
                {"cp": cp_id, "key": self.active[cp_id], "issued_at": messages.now_iso(), "revoked_at": None}, pk="cp"
            )
        return self.active[cp_id]

    def revoke(self, cp_id):
        self.active.pop(cp_id, None)
        self.db.execute("UPDATE cp_keys SET revoked_at = ? WHERE cp = ? AND revoked_at IS NULL", [messages.now_iso(), cp_id])


def _config(daemon):
    section = daemon.config.sections.get("crypto")
    return section if section is not None else CryptoConfig()


def _keys(daemon):
    """Central's key store, or None where keys are not central's business."""
    network = network_of(daemon)
    if network is None or not _config(daemon).enabled:
        return None
    return _key_stores.made(daemon, lambda: KeyStore(network.database()))


def _key_of(daemon, cp_id):
    """The key a record for ``cp_id`` is sealed with here: central's for that CP, or the engine's own."""
    if not _config(daemon).enabled:
        return None
    if daemon.role_name == "central":
        keys = _keys(daemon)
        return keys.active.get(cp_id) if keys else None
    if daemon.role_name == "engine":
        return _engine_keys.get(daemon)
    return None


@evd.hookimpl
def evd_config_sections():
    return {"crypto": CryptoConfig}


@evd.hookimpl
def evd_shutdown(daemon):
    keys = _key_stores.pop(daemon, None)
    if keys is not None:
        keys.db.conn.close()


@evd.hookimpl
def evd_cp_key(daemon, cp_id):
    keys = _keys(daemon)
    return keys.key_for(cp_id) if keys else None


@evd.hookimpl
def evd_cp_key_received(daemon, cp_id, key):
    if key:
        _engine_keys[daemon] = key
    else:
        _engine_keys.pop(daemon, None)


@evd.hookimpl
def evd_cp_unregistered(daemon, cp_id):
    keys = _keys(daemon)
    if keys:
        keys.revoke(cp_id)


@evd.hookimpl
def evd_seal(daemon, topic, key, message):
    if topic not in SEALED_TOPICS:
        return None
    cp_key = _key_of(daemon, key)
    return seal(cp_key, topic, key, message) if cp_key else None


@evd.hookimpl
def evd_unseal(daemon, topic, key, message):
    if topic not in SEALED_TOPICS or not _config(daemon).enabled:
        return None
    cp_key = _key_of(daemon, key)
    try:
        if message["type"] == "sealed":
            if not cp_key:
                raise messages.MalformedMessage(f"sealed record for {key} but no key for it here (revoked or never issued)")
            return unseal(cp_key, topic, key, message)
        if cp_key and _config(daemon).require:
            raise messages.MalformedMessage(f"plain {message['type']} record for {key}, which must be sealed")
    except messages.MalformedMessage as e:
        daemon.audit("SECURITY", key, f"{topic} record rejected", str(e))
        raise
    return None
