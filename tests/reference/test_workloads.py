"""Workloads (spec validation, CRUD) and placement reports."""

from __future__ import annotations

from typing import Any

import pytest

from .helpers import Tenant, assert_error

SPEC = {"name": "web", "replicas": 2, "command": ["python3", "-m", "http.server"]}


def test_create_normalizes_the_spec(api: Tenant, cluster: dict) -> None:
    cid = cluster["id"]
    created = api.ok(api.post(f"/api/clusters/{cid}/workloads", json=SPEC), 201)
    assert set(created) == {"id", "cluster_id", "name", "spec", "status", "created_at",
                            "updated_at"}
    assert created["cluster_id"] == cid and created["name"] == "web"
    assert created["status"] == {}
    assert created["spec"] == {**SPEC, "image": None, "environment": {}, "labels": {},
                               "memory_limit_mb": None, "cpu_limit_percent": None,
                               "strict": False}
    assert api.ok(api.get(f"/api/clusters/{cid}/workloads/{created['id']}")) == created
    assert api.ok(api.get(f"/api/clusters/{cid}/workloads"))["workloads"] == [created]
    assert_error(api.post(f"/api/clusters/{cid}/workloads", json=SPEC), 409, "CONFLICT", "name")


def test_full_spec_round_trips(api: Tenant, cluster: dict) -> None:
    spec = {**SPEC, "image": "prod", "environment": {"A": "1"}, "labels": {"tier": "web"},
            "memory_limit_mb": 256, "cpu_limit_percent": 50.5, "strict": True}
    created = api.ok(api.post(f"/api/clusters/{cluster['id']}/workloads", json=spec), 201)
    assert created["spec"] == spec


@pytest.mark.parametrize("change,status,field", [
    ({"replicas": 0}, 400, "replicas"),
    ({"replicas": 10001}, 400, "replicas"),
    ({"replicas": "2"}, 422, "replicas"),
    ({"replicas": True}, 422, "replicas"),
    ({"replicas": 2.0}, 422, "replicas"),
    ({"command": []}, 400, "command"),
    ({"command": "echo hi"}, 422, "command"),
    ({"command": ["echo", 1]}, 422, "command[1]"),
    ({"environment": {"A": 1}}, 422, "environment.A"),
    ({"environment": {"A=B": "x"}}, 400, "environment.A=B"),
    ({"memory_limit_mb": 0}, 400, "memory_limit_mb"),
    ({"cpu_limit_percent": 0}, 400, "cpu_limit_percent"),
    ({"cpu_limit_percent": True}, 422, "cpu_limit_percent"),
    ({"strict": "yes"}, 422, "strict"),
    ({"labels": ["a"]}, 422, "labels"),
])
def test_invalid_specs(api: Tenant, cluster: dict, change: dict[str, Any], status: int,
                       field: str) -> None:
    response = api.post(f"/api/clusters/{cluster['id']}/workloads", json={**SPEC, **change})
    assert_error(response, status, "VALIDATION_ERROR", field)


@pytest.mark.parametrize("missing", ["name", "replicas", "command"])
def test_required_fields(api: Tenant, cluster: dict, missing: str) -> None:
    body = {k: v for k, v in SPEC.items() if k != missing}
    response = api.post(f"/api/clusters/{cluster['id']}/workloads", json=body)
    assert_error(response, 422, "VALIDATION_ERROR", missing)


def test_put_validates_and_renames(api: Tenant, cluster: dict) -> None:
    cid = cluster["id"]
    first = api.workload(cid, 1)
    second = api.workload(cid, 1)
    path = f"/api/clusters/{cid}/workloads/{second['id']}"
    assert_error(api.put(path, json={**second["spec"], "replicas": 0}), 400, "VALIDATION_ERROR")
    assert_error(api.put(path, json={**second["spec"], "name": first["name"]}), 409, "CONFLICT")
    renamed = api.ok(api.put(path, json={**second["spec"], "name": "renamed"}))
    assert renamed["name"] == "renamed" and renamed["spec"]["name"] == "renamed"
    assert renamed["created_at"] == second["created_at"]
    assert_error(api.put(f"/api/clusters/{cid}/workloads/nope", json=SPEC), 404, "NOT_FOUND")


def test_delete_removes_placements(api: Tenant, cluster: dict) -> None:
    cid = cluster["id"]
    agent = api.node(cid)
    keep, drop = api.workload(cid, 1), api.workload(cid, 2)
    api.reconcile(cid)
    assert api.ok(api.delete(f"/api/clusters/{cid}/workloads/{drop['id']}")) == {"success": True}
    assert [p["workload_id"] for p in api.placements(cid)] == [keep["id"]]
    assert len(agent.assignments()) == 1
    assert_error(api.get(f"/api/clusters/{cid}/workloads/{drop['id']}"), 404, "NOT_FOUND")


def test_report_updates_state_message_and_container(api: Tenant, cluster: dict) -> None:
    cid = cluster["id"]
    agent = api.node(cid)
    api.workload(cid, 1)
    api.reconcile(cid)
    placement = api.placements(cid)[0]
    assert agent.ok(agent.report(placement["id"], state="running", container_id="c-1",
                                 message="started")) == {"success": True}
    after = api.placements(cid)[0]
    assert (after["state"], after["container_id"], after["message"]) == (
        "running", "c-1", "started")
    assert after["updated_at"] >= placement["updated_at"]
    # container_id is kept when the report carries null or nothing.
    agent.ok(agent.report(placement["id"], state="exited", container_id=None))
    after = api.placements(cid)[0]
    assert (after["state"], after["container_id"], after["message"]) == ("exited", "c-1", None)


@pytest.mark.parametrize("body,status,field", [
    ({}, 422, "state"), ({"state": ""}, 400, "state"), ({"state": 3}, 422, "state"),
    ({"state": "running", "container_id": 5}, 422, "container_id"),
    ({"state": "running", "message": ["x"]}, 422, "message"),
])
def test_report_validation(api: Tenant, cluster: dict, body: dict[str, Any], status: int,
                           field: str) -> None:
    cid = cluster["id"]
    agent = api.node(cid)
    api.workload(cid, 1)
    api.reconcile(cid)
    placement = api.placements(cid)[0]
    assert_error(agent.report(placement["id"], **body), status, "VALIDATION_ERROR", field)
    assert_error(agent.report("no-such-placement", state="running"), 404, "NOT_FOUND")
