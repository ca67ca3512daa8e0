"""API keys: the secret is shown once, works at once, is never listed, and dies on delete."""

from __future__ import annotations

import re

import httpx
import pytest

from .helpers import Tenant, assert_error

KEY_FORMAT = re.compile(r"quilt_sk_[A-Za-z0-9_-]{43}")


def test_key_lifecycle(api: Tenant, other: Tenant, anon: httpx.Client, unique: str) -> None:
    created = api.ok(api.post("/api/api-keys", json={"name": f"ci-{unique}"}), 201)
    assert set(created) == {"id", "name", "key", "prefix", "scope_type", "created_at"}
    secret = created["key"]
    assert KEY_FORMAT.fullmatch(secret)
    assert created["name"] == f"ci-{unique}" and created["scope_type"] == "full"
    assert created["prefix"] == secret[:8] and isinstance(created["created_at"], int)

    # The new key authenticates at once, as the same tenant.
    with Tenant(api.url, secret) as fresh:
        mine = fresh.ok(fresh.post("/api/volumes", json={"name": f"k-{unique}"}), 201)
        assert api.ok(api.get(f"/api/volumes/{mine['name']}"))["name"] == mine["name"]
        api.ok(api.delete(f"/api/volumes/{mine['name']}"))
        listing = api.get("/api/api-keys")
        assert secret not in listing.text
        (entry,) = [k for k in listing.json()["api_keys"] if k["id"] == created["id"]]
        assert set(entry) == {"id", "name", "prefix", "scope_type", "created_at", "last_used_at"}
        assert isinstance(entry["last_used_at"], int) and entry["last_used_at"] >= entry["created_at"]
        # Another tenant can neither see nor delete it.
        assert created["id"] not in [k["id"] for k in other.ok(other.get("/api/api-keys"))["api_keys"]]
        assert_error(other.delete(f"/api/api-keys/{created['id']}"), 404, "NOT_FOUND")
        fresh.ok(fresh.get("/api/containers"))

        assert api.ok(api.delete(f"/api/api-keys/{created['id']}")) == {"success": True}
        assert_error(fresh.get("/api/containers"), 401, "UNAUTHORIZED")
        assert_error(anon.get("/api/events", params={"token": secret}), 401, "UNAUTHORIZED")
    assert_error(api.delete(f"/api/api-keys/{created['id']}"), 404, "NOT_FOUND")
    assert created["id"] not in [k["id"] for k in api.ok(api.get("/api/api-keys"))["api_keys"]]


def test_bootstrap_keys_are_listed_without_secrets(api: Tenant, ref_keys: dict[str, str]) -> None:
    response = api.get("/api/api-keys")
    keys = response.json()["api_keys"]
    bootstrap = [k for k in keys if k["name"] == "bootstrap"]
    assert len(bootstrap) == 1 and bootstrap[0]["prefix"] == ref_keys["main"][:8]
    assert bootstrap[0]["last_used_at"] is not None  # this very request used it
    assert ref_keys["main"] not in response.text
    assert all("key" not in k and "key_hash" not in k for k in keys)
    assert ref_keys["other"][:8] not in [k["prefix"] for k in keys]


@pytest.mark.parametrize("body,status", [({}, 422), ({"name": ""}, 400), ({"name": 5}, 422),
                                         ({"name": "x" * 129}, 400), ([], 422)])
def test_key_name_validation(api: Tenant, body: object, status: int) -> None:
    before = len(api.ok(api.get("/api/api-keys"))["api_keys"])
    assert_error(api.post("/api/api-keys", json=body), status, "VALIDATION_ERROR")
    assert len(api.ok(api.get("/api/api-keys"))["api_keys"]) == before
