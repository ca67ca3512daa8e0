"""API key routes (quilt-api.md 5.3)."""

from __future__ import annotations

from . import api_keys
from .endpoints import Auth, Call, Reply, Spec


def list_keys(call: Call) -> Reply:
    with call.tx() as db:
        return Reply(200, {"api_keys": api_keys.list_keys(db, call.tenant_id)})


def create_key(call: Call) -> Reply:
    with call.tx() as db:
        return Reply(201, api_keys.create(db, call.tenant_id, call.json(), call.now()))


def delete_key(call: Call) -> Reply:
    with call.tx() as db:
        api_keys.delete(db, call.tenant_id, call.params["key_id"])
    return Reply(200, {"success": True})


SPECS = [
    Spec("GET", "/api/api-keys", list_keys, Auth.TENANT),
    Spec("POST", "/api/api-keys", create_key, Auth.TENANT),
    Spec("DELETE", "/api/api-keys/{key_id}", delete_key, Auth.TENANT),
]
