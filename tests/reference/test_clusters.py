"""Clusters: CRUD, validation, per-tenant names and isolation, cascade on delete."""

from __future__ import annotations

import time
from typing import Any

import pytest

from .helpers import Tenant, assert_error


def test_create_get_list_delete(api: Tenant, unique: str) -> None:
    before = int(time.time())
    created = api.ok(api.post("/api/clusters", json={
        "name": f"prod-{unique}", "pod_cidr": "10.100.0.0/16", "node_cidr_prefix": 24}), 201)
    assert set(created) == {"id", "name", "pod_cidr", "node_cidr_prefix", "tenant_id",
                            "created_at"}
    assert (created["name"], created["pod_cidr"], created["node_cidr_prefix"]) == (
        f"prod-{unique}", "10.100.0.0/16", 24)
    assert before <= created["created_at"] <= int(time.time())
    cid = created["id"]
    assert api.ok(api.get(f"/api/clusters/{cid}")) == created
    assert created in api.ok(api.get("/api/clusters"))["clusters"]
    assert api.ok(api.delete(f"/api/clusters/{cid}")) == {"success": True}
    assert_error(api.get(f"/api/clusters/{cid}"), 404, "NOT_FOUND")
    assert all(c["id"] != cid for c in api.ok(api.get("/api/clusters"))["clusters"])
    assert_error(api.delete(f"/api/clusters/{cid}"), 404, "NOT_FOUND")


GOOD = {"name": "x", "pod_cidr": "10.0.0.0/16", "node_cidr_prefix": 24}


@pytest.mark.parametrize("change,status,field", [
    ({"pod_cidr": "10.0.0.1/16"}, 400, "pod_cidr"),       # host bits set
    ({"pod_cidr": "10.0.0.0"}, 400, "pod_cidr"),          # no prefix
    ({"pod_cidr": "fd00::/64"}, 400, "pod_cidr"),         # IPv6
    ({"pod_cidr": "banana"}, 400, "pod_cidr"),
    ({"pod_cidr": "10.0.0.0/33"}, 400, "pod_cidr"),
    ({"pod_cidr": 167772160}, 422, "pod_cidr"),
    ({"node_cidr_prefix": 15}, 400, "node_cidr_prefix"),
    ({"node_cidr_prefix": 31}, 400, "node_cidr_prefix"),
    ({"pod_cidr": "10.0.0.0/20", "node_cidr_prefix": 18}, 400, "node_cidr_prefix"),
    ({"node_cidr_prefix": "24"}, 422, "node_cidr_prefix"),
    ({"node_cidr_prefix": 24.0}, 422, "node_cidr_prefix"),
    ({"node_cidr_prefix": True}, 422, "node_cidr_prefix"),
    ({"name": ""}, 400, "name"),
    ({"name": 7}, 422, "name"),
    ({"name": None}, 422, "name"),
])
def test_invalid_cluster_specs(api: Tenant, change: dict[str, Any], status: int,
                               field: str) -> None:
    body = assert_error(api.post("/api/clusters", json={**GOOD, **change}), status,
                        "VALIDATION_ERROR", field)
    assert body["error"].startswith(field)


@pytest.mark.parametrize("missing", ["name", "pod_cidr", "node_cidr_prefix"])
def test_missing_cluster_field_is_422(api: Tenant, missing: str) -> None:
    body = {k: v for k, v in GOOD.items() if k != missing}
    assert_error(api.post("/api/clusters", json=body), 422, "VALIDATION_ERROR", missing)


def test_prefix_may_equal_pod_prefix(api: Tenant) -> None:
    created = api.cluster(pod_cidr="10.7.0.0/30", prefix=30)
    assert created["node_cidr_prefix"] == 30


def test_names_are_unique_per_tenant(api: Tenant, other: Tenant, unique: str) -> None:
    body = {**GOOD, "name": f"dup-{unique}"}
    api.ok(api.post("/api/clusters", json=body), 201)
    assert_error(api.post("/api/clusters", json=body), 409, "CONFLICT")
    # Another tenant has its own namespace.
    other.ok(other.post("/api/clusters", json=body), 201)


def test_tenants_never_see_each_others_clusters(api: Tenant, other: Tenant) -> None:
    mine = api.cluster()
    cid = mine["id"]
    assert all(c["id"] != cid for c in other.ok(other.get("/api/clusters"))["clusters"])
    for method, path in [("GET", f"/api/clusters/{cid}"), ("DELETE", f"/api/clusters/{cid}"),
                         ("GET", f"/api/clusters/{cid}/nodes"),
                         ("GET", f"/api/clusters/{cid}/workloads"),
                         ("GET", f"/api/clusters/{cid}/placements"),
                         ("POST", f"/api/clusters/{cid}/reconcile"),
                         ("POST", f"/api/clusters/{cid}/join-tokens")]:
        assert_error(other.http.request(method, path), 404, "NOT_FOUND")
    assert other.ok(other.get("/api/clusters"))["clusters"] is not None
    assert api.ok(api.get(f"/api/clusters/{cid}"))["tenant_id"] == mine["tenant_id"]
    assert other.cluster()["tenant_id"] != mine["tenant_id"]


def test_delete_cascades_to_tokens_nodes_and_workloads(api: Tenant) -> None:
    cluster = api.cluster()
    cid = cluster["id"]
    spare_token = api.join_token(cid, max_uses=5)
    agent = api.node(cid)
    workload = api.workload(cid, 1)
    api.reconcile(cid)
    api.ok(api.delete(f"/api/clusters/{cid}"))
    assert_error(agent.heartbeat("ready"), 401, "UNAUTHORIZED")
    assert_error(agent.call("GET", "/placements"), 401, "UNAUTHORIZED")
    late = api.agent(cid)
    response = late.http.post(f"/api/agent/clusters/{cid}/nodes/register",
                              headers={"X-Quilt-Join-Token": spare_token},
                              json={"name": "late", "bridge_name": "b", "dns_port": 53,
                                    "egress_limit_mbit": 0})
    assert_error(response, 401, "UNAUTHORIZED")
    assert_error(api.get(f"/api/clusters/{cid}/workloads/{workload['id']}"), 404, "NOT_FOUND")


def test_reconcile_accepts_no_body_and_rejects_non_objects(api: Tenant, cluster: dict) -> None:
    cid = cluster["id"]
    assert api.ok(api.post(f"/api/clusters/{cid}/reconcile")) == {
        "success": True, "created": 0, "moved": 0, "deleted": 0}
    assert_error(api.post(f"/api/clusters/{cid}/reconcile", json=[1]), 422, "VALIDATION_ERROR")
