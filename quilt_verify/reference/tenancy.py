"""Tenants and their API keys: bootstrap and authentication."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterable

from . import faults
from .tokens import display_prefix, hash_secret, new_id, same_hash

DEFAULT_TENANT = "default"


def ensure_tenant(db: sqlite3.Connection, name: str, keys: Iterable[str], now: int) -> str:
    """Create tenant `name` if needed and make sure each key belongs to it; returns its id.

    Keys already stored for another tenant are refused (ValueError): a key names one tenant.
    """
    row = db.execute("SELECT id FROM tenants WHERE name = ?", (name,)).fetchone()
    if row is None:
        tenant_id = new_id()
        db.execute(
            "INSERT INTO tenants (id, name, created_at) VALUES (?, ?, ?)", (tenant_id, name, now)
        )
    else:
        tenant_id = row["id"]
    for index, key in enumerate(keys):
        if not isinstance(key, str) or not key:
            raise ValueError(f"API key #{index} of tenant {name!r} must be a non-empty string")
        digest = hash_secret(key)
        owner = db.execute(
            "SELECT tenant_id FROM api_keys WHERE key_hash = ?", (digest,)
        ).fetchone()
        if owner is None:
            db.execute(
                "INSERT INTO api_keys (id, tenant_id, name, key_hash, prefix, created_at)"
                " VALUES (?, ?, ?, ?, ?, ?)",
                (new_id(), tenant_id, "bootstrap", digest, display_prefix(key), now),
            )
        elif owner["tenant_id"] != tenant_id:
            raise ValueError(f"API key #{index} of tenant {name!r} already belongs to a tenant")
    return tenant_id


def authenticate(db: sqlite3.Connection, key: str, now: int) -> str | None:
    """The tenant id owning a live API key, or None."""
    digest = hash_secret(key)
    row = db.execute(
        "SELECT id, tenant_id, key_hash, expires_at, revoked_at, last_used_at FROM api_keys"
        " WHERE key_hash = ?",
        (digest,),
    ).fetchone()
    if row is None or not same_hash(row["key_hash"], digest):
        return None
    revoked = row["revoked_at"] is not None and not faults.on("deleted-key-still-authenticates")
    if revoked or (row["expires_at"] is not None and row["expires_at"] <= now):
        return None
    if row["last_used_at"] != now:  # at most one write per key and second
        db.execute("UPDATE api_keys SET last_used_at = ? WHERE id = ?", (now, row["id"]))
    return row["tenant_id"]


def tenant_id_by_name(db: sqlite3.Connection, name: str) -> str | None:
    row = db.execute("SELECT id FROM tenants WHERE name = ?", (name,)).fetchone()
    return None if row is None else row["id"]
