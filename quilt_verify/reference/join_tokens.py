"""Cluster join tokens: minting and one-shot consumption at node registration."""

from __future__ import annotations

import sqlite3
from typing import Any

from . import faults
from .errors import unauthorized
from .tokens import JOIN_TOKEN_PREFIX, display_prefix, hash_secret, new_id, new_secret, same_hash
from .validation import Body

TTL_MIN, TTL_MAX, TTL_DEFAULT = 60, 86400, 3600
USES_MIN, USES_MAX, USES_DEFAULT = 1, 1000, 1

JOIN_HINT = "send a live join token of this cluster in X-Quilt-Join-Token"


def mint(db: sqlite3.Connection, tenant_id: str, cluster_id: str, data: Any,
         now: int) -> dict[str, Any]:
    """Mint a token for an existing cluster; the secret is returned here and never again."""
    body = Body({} if data is None else data)
    ttl = body.integer("ttl_secs", TTL_MIN, TTL_MAX)
    max_uses = body.integer("max_uses", USES_MIN, USES_MAX)
    ttl = TTL_DEFAULT if ttl is None else ttl
    max_uses = USES_DEFAULT if max_uses is None else max_uses
    token = new_secret(JOIN_TOKEN_PREFIX)
    token_id = new_id()
    expires_at = now + ttl
    db.execute(
        "INSERT INTO join_tokens (id, cluster_id, tenant_id, token_hash, prefix, expires_at,"
        " max_uses, created_at) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
        (token_id, cluster_id, tenant_id, hash_secret(token), display_prefix(token), expires_at,
         max_uses, now),
    )
    return {
        "token_id": token_id,
        "cluster_id": cluster_id,
        "join_token": token,
        "expires_at": expires_at,
        "max_uses": max_uses,
    }


def check(db: sqlite3.Connection, cluster_id: str, token: str | None, now: int) -> sqlite3.Row:
    """The usable join-token row for this cluster, else 401 (missing, unknown, another
    cluster's, expired, used up or revoked: all look the same to the caller)."""
    if not token:
        raise unauthorized("missing join token", JOIN_HINT)
    digest = hash_secret(token)
    row = db.execute("SELECT * FROM join_tokens WHERE token_hash = ?", (digest,)).fetchone()
    if (
        row is None
        or not same_hash(row["token_hash"], digest)
        or row["cluster_id"] != cluster_id
        or row["revoked_at"] is not None
        or row["expires_at"] <= now
        or (row["uses"] >= row["max_uses"] and not faults.on("join-token-max-uses-ignored"))
    ):
        raise unauthorized("invalid, expired or used-up join token", JOIN_HINT)
    return row


def consume(db: sqlite3.Connection, token_id: str, now: int) -> None:
    """Count one successful registration against the token."""
    db.execute(
        "UPDATE join_tokens SET uses = uses + 1, last_used_at = ? WHERE id = ?", (now, token_id)
    )
