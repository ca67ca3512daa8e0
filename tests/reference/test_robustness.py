"""Things that must hold under stress: concurrency, failing internals, the event hook."""

from __future__ import annotations

import asyncio
import json
import logging
import threading
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from quilt_verify.reference import ReferenceServer
from quilt_verify.reference.middleware import RequestContextMiddleware

from .helpers import Tenant, register_body


def test_single_use_token_cannot_register_two_nodes_concurrently(api: Tenant,
                                                                 cluster: dict) -> None:
    cid = cluster["id"]
    token = api.join_token(cid)

    def attempt(i: int) -> int:
        with httpx.Client(base_url=api.url, timeout=10) as http:
            return http.post(f"/api/agent/clusters/{cid}/nodes/register",
                             headers={"X-Quilt-Join-Token": token},
                             json=register_body(f"racer-{i}")).status_code

    with ThreadPoolExecutor(8) as pool:
        statuses = sorted(pool.map(attempt, range(8)))
    assert statuses == [201] + [401] * 7
    assert len(api.ok(api.get(f"/api/clusters/{cid}/nodes"))["nodes"]) == 1


def test_concurrent_registrations_get_distinct_subnets(api: Tenant, cluster: dict) -> None:
    cid = cluster["id"]
    token = api.join_token(cid, max_uses=10)

    def attempt(i: int) -> str:
        with httpx.Client(base_url=api.url, timeout=10) as http:
            response = http.post(f"/api/agent/clusters/{cid}/nodes/register",
                                 headers={"X-Quilt-Join-Token": token},
                                 json=register_body(f"par-{i}"))
            assert response.status_code == 201, response.text
            return response.json()["allocation"]["pod_cidr"]

    with ThreadPoolExecutor(10) as pool:
        cidrs = list(pool.map(attempt, range(10)))
    assert len(set(cidrs)) == 10


def call_asgi(app: Any, headers: list[tuple[bytes, bytes]]) -> list[dict[str, Any]]:
    """Drive one GET through an ASGI app and collect what it sends."""
    sent: list[dict[str, Any]] = []
    scope = {"type": "http", "method": "GET", "path": "/anything", "headers": headers,
             "query_string": b""}

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    asyncio.run(app(scope, receive, send))
    return sent


def test_unexpected_exception_is_a_json_500(caplog: pytest.LogCaptureFixture) -> None:
    async def broken(scope: Any, receive: Any, send: Any) -> None:
        raise RuntimeError("boom")

    with caplog.at_level(logging.ERROR, logger="quilt_verify.reference"):
        start, body = call_asgi(RequestContextMiddleware(broken),
                                [(b"x-request-id", b"trace-1")])
    assert start["status"] == 500
    assert (b"x-request-id", b"trace-1") in start["headers"]
    assert json.loads(body["body"]) == {"error": "internal error", "error_code": "INTERNAL",
                                        "request_id": "trace-1"}
    assert "boom" in caplog.text


def test_event_hook_sees_committed_changes_and_cannot_break_requests() -> None:
    seen: list[tuple[str, str, dict[str, Any]]] = []
    lock = threading.Lock()

    def hook(tenant_id: str, event: str, data: dict[str, Any]) -> None:
        with lock:
            seen.append((tenant_id, event, data))
        raise RuntimeError("a broken subscriber")

    with ReferenceServer(["hook-key"], on_event=hook) as server, \
            Tenant(server.url, "hook-key") as api:
        cluster = api.cluster()
        agent = api.node(cluster["id"])
        workload = api.workload(cluster["id"], 1)
        api.reconcile(cluster["id"])
        (placement,) = api.placements(cluster["id"])
    events = [event for _, event, _ in seen]
    assert events == ["cluster_update", "node_update", "node_update", "workload_update",
                      "placement_update"]
    assert {tenant for tenant, _, _ in seen} == {cluster["tenant_id"]}
    assert [data.get("state") for _, event, data in seen if event == "node_update"] == [
        "registered", "ready"]
    assert seen[3][2] == {"cluster_id": cluster["id"], "workload_id": workload["id"],
                          "action": "created", "replicas": 1}
    assert seen[-1][2] == {"cluster_id": cluster["id"], "placement_id": placement["id"],
                           "workload_id": workload["id"], "node_id": agent.node_id,
                           "state": "assigned", "container_id": None, "action": "created"}
    assert all("token" not in json.dumps(data) for _, _, data in seen)
