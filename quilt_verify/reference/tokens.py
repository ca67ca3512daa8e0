"""Identifiers, secret generation and secret hashing (secrets are only stored as hashes)."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid

JOIN_TOKEN_PREFIX = "qjt_"
NODE_TOKEN_PREFIX = "qnt_"


def new_id() -> str:
    """A fresh resource id (UUID v4 string)."""
    return str(uuid.uuid4())


def new_secret(prefix: str) -> str:
    """A fresh bearer secret such as `qjt_<43 url-safe chars>`."""
    return prefix + secrets.token_urlsafe(32)


def hash_secret(value: str) -> str:
    """SHA-256 hex digest of a secret, the only form in which secrets are stored."""
    return hashlib.sha256(value.encode("utf-8", "surrogatepass")).hexdigest()


def display_prefix(value: str) -> str:
    """A short, non-secret prefix of a secret for identification (e.g. `qjt_Ab3x`)."""
    return value[:8]


def same_hash(a: str, b: str) -> bool:
    """Constant-time comparison of two hex digests."""
    return hmac.compare_digest(a.encode("ascii"), b.encode("ascii"))
