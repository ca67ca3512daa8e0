"""Tenant API keys (quilt-api.md 5.3): listed without secrets, created with the secret shown
once (`quilt_sk_` + 43 url-safe characters), deleted (the key stops working at once).

Keys are stored only as SHA-256 digests plus an 8-character prefix. Bootstrap keys given to
the server are listed too, named `bootstrap`. Timestamps are integer Unix seconds.
"""

from __future__ import annotations

import sqlite3
import time
from typing import Any

from . import faults
from .errors import not_found
from .tokens import display_prefix, hash_secret, new_id, new_secret
from .validation import Body

API_KEY_PREFIX = "quilt_sk_"
NAME_MAX = 128
SCOPE_TYPE = "full"


def key_view(row: sqlite3.Row) -> dict[str, Any]:
    if faults.on("key-list-shows-full-key"):
        shown = faults.active().memory.get("api_keys", {}).get(row["id"])
        if shown:
            return {"id": row["id"], "name": row["name"], "prefix": row["prefix"], "key": shown,
                    "scope_type": SCOPE_TYPE, "created_at": row["created_at"],
                    "last_used_at": row["last_used_at"]}
    return {
        "id": row["id"],
        "name": row["name"],
        "prefix": row["prefix"],
        "scope_type": SCOPE_TYPE,
        "created_at": row["created_at"],
        "last_used_at": row["last_used_at"],
    }


def list_keys(db: sqlite3.Connection, tenant_id: str) -> list[dict[str, Any]]:
    rows = db.execute(
        "SELECT * FROM api_keys WHERE tenant_id = ? AND revoked_at IS NULL ORDER BY seq",
        (tenant_id,),
    )
    return [key_view(row) for row in rows]


def create(db: sqlite3.Connection, tenant_id: str, data: Any, now: int) -> dict[str, Any]:
    name = Body(data).string("name", required=True, max_len=NAME_MAX)
    secret = new_secret(API_KEY_PREFIX)
    key_id = new_id()
    db.execute(
        "INSERT INTO api_keys (id, tenant_id, name, key_hash, prefix, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (key_id, tenant_id, name, hash_secret(secret), display_prefix(secret), now),
    )
    if faults.on("key-list-shows-full-key"):
        faults.active().memory.setdefault("api_keys", {})[key_id] = secret
    view = key_view(db.execute("SELECT * FROM api_keys WHERE id = ?", (key_id,)).fetchone())
    del view["last_used_at"]
    return {**view, "key": secret}


def delete(db: sqlite3.Connection, tenant_id: str, key_id: str) -> None:
    if faults.on("deleted-key-still-authenticates"):  # a soft delete the auth check ignores
        removed = db.execute(
            "UPDATE api_keys SET revoked_at = ? WHERE id = ? AND tenant_id = ?"
            " AND revoked_at IS NULL", (int(time.time()), key_id, tenant_id)).rowcount
    else:
        removed = db.execute(
            "DELETE FROM api_keys WHERE id = ? AND tenant_id = ?", (key_id, tenant_id)
        ).rowcount
    if not removed:
        raise not_found("api key", key_id)
