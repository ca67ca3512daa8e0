"""Node registration, heartbeat, allocation, the tenant view, and agent-token isolation."""

from __future__ import annotations

import ipaddress
import json
import time
from typing import Any

import pytest

from .helpers import Tenant, assert_error, register_body


def test_register_response_shape(api: Tenant, cluster: dict) -> None:
    agent = api.agent(cluster["id"])
    before = int(time.time())
    result = agent.register(api.join_token(cluster["id"]), "node-a", public_ip="203.0.113.7",
                            private_ip="10.0.0.7", agent_version="1.2.3",
                            labels={"zone": "a"}, gpu_devices=[])
    node, allocation = result["node"], result["allocation"]
    assert set(result) == {"node", "allocation", "node_token"}
    assert result["node_token"].startswith("qnt_") and len(result["node_token"]) > 40
    assert node["cluster_id"] == cluster["id"] and node["name"] == "node-a"
    assert node["state"] == "registered"
    assert (node["public_ip"], node["private_ip"], node["agent_version"]) == (
        "203.0.113.7", "10.0.0.7", "1.2.3")
    assert node["labels"] == {"zone": "a"} and node["taints"] == []
    assert node["last_heartbeat_at"] is None
    assert before <= node["created_at"] <= int(time.time())
    assert allocation == {
        "node_id": node["id"], "cluster_id": cluster["id"], "pod_cidr": "10.200.0.0/24",
        "bridge_name": "qbr0", "dns_port": 1053, "egress_limit_mbit": 100,
        "allocated_at": allocation["allocated_at"]}
    assert agent.ok(agent.call("GET", "/allocation")) == allocation


def test_quiltc_style_json_string_fields(api: Tenant, cluster: dict) -> None:
    agent = api.agent(cluster["id"])
    node = agent.register(api.join_token(cluster["id"]), "quiltc", public_ip=None,
                          private_ip=None, agent_version=None,
                          labels_json=json.dumps({"role": "gpu"}),
                          taints_json=json.dumps([{"key": "k", "effect": "NoSchedule"}]))["node"]
    assert node["labels"] == {"role": "gpu"}
    assert node["taints"] == [{"key": "k", "effect": "NoSchedule"}]
    assert node["public_ip"] is None


def test_each_node_gets_a_distinct_subnet_of_the_cluster(api: Tenant, cluster: dict) -> None:
    cidrs = [api.node(cluster["id"]).registered["allocation"]["pod_cidr"] for _ in range(4)]
    pod = ipaddress.ip_network(cluster["pod_cidr"])
    subnets = [ipaddress.ip_network(c) for c in cidrs]
    assert len(set(subnets)) == 4
    assert all(s.subnet_of(pod) and s.prefixlen == 24 for s in subnets)


def test_subnet_of_a_deleted_node_is_reused_and_exhaustion_is_409(api: Tenant) -> None:
    cid = api.cluster(pod_cidr="10.9.0.0/29", prefix=30)["id"]
    first, second = api.node(cid), api.node(cid)
    assert [first.registered["allocation"]["pod_cidr"],
            second.registered["allocation"]["pod_cidr"]] == ["10.9.0.0/30", "10.9.0.4/30"]
    token = api.join_token(cid)
    third = api.agent(cid)
    response = third.http.post(f"/api/agent/clusters/{cid}/nodes/register",
                               headers={"X-Quilt-Join-Token": token},
                               json=register_body("third"))
    assert_error(response, 409, "CONFLICT")
    api.ok(api.delete(f"/api/clusters/{cid}/nodes/{first.node_id}"))
    # The failed attempt did not use the single-use token.
    assert third.register(token, "third")["allocation"]["pod_cidr"] == "10.9.0.0/30"


@pytest.mark.parametrize("change,status,field", [
    ({"name": None}, 422, "name"),
    ({"bridge_name": 5}, 422, "bridge_name"),
    ({"dns_port": "53"}, 422, "dns_port"),
    ({"dns_port": 0}, 400, "dns_port"),
    ({"dns_port": 65536}, 400, "dns_port"),
    ({"egress_limit_mbit": -1}, 400, "egress_limit_mbit"),
    ({"egress_limit_mbit": False}, 422, "egress_limit_mbit"),
    ({"labels": {"a": 1}}, 422, "labels.a"),
    ({"labels_json": "{not json"}, 400, "labels_json"),
    ({"public_ip": "not-an-ip"}, 400, "public_ip"),
    ({"gpu_devices": "none"}, 422, "gpu_devices"),
])
def test_register_validation(api: Tenant, cluster: dict, change: dict[str, Any], status: int,
                             field: str) -> None:
    body = {**register_body("v"), **change}
    body = {k: v for k, v in body.items() if not (k in change and change[k] is None)}
    response = api.http.post(f"/api/agent/clusters/{cluster['id']}/nodes/register",
                             headers={"X-Quilt-Join-Token": api.join_token(cluster["id"])},
                             json=body)
    assert_error(response, status, "VALIDATION_ERROR", field)


@pytest.mark.parametrize("missing", ["name", "bridge_name", "dns_port", "egress_limit_mbit"])
def test_register_required_fields(api: Tenant, cluster: dict, missing: str) -> None:
    body = {k: v for k, v in register_body("r").items() if k != missing}
    response = api.http.post(f"/api/agent/clusters/{cluster['id']}/nodes/register",
                             headers={"X-Quilt-Join-Token": api.join_token(cluster["id"])},
                             json=body)
    assert_error(response, 422, "VALIDATION_ERROR", missing)


def test_node_names_are_unique_among_live_nodes(api: Tenant, cluster: dict) -> None:
    cid = cluster["id"]
    first = api.node(cid, name="same")
    token = api.join_token(cid)
    response = api.http.post(f"/api/agent/clusters/{cid}/nodes/register",
                             headers={"X-Quilt-Join-Token": token}, json=register_body("same"))
    assert_error(response, 409, "CONFLICT", "name")
    api.ok(first.call("POST", "/deregister"))
    assert api.agent(cid).register(token, "same")["node"]["name"] == "same"


def test_heartbeat_sets_state_and_time(api: Tenant, cluster: dict) -> None:
    agent = api.node(cluster["id"], ready=False)
    before = int(time.time())
    assert agent.ok(agent.heartbeat("ready", agent_version="2.0")) == {"success": True}
    node = api.ok(api.get(f"/api/clusters/{cluster['id']}/nodes/{agent.node_id}"))["node"]
    assert node["state"] == "ready" and node["agent_version"] == "2.0"
    assert before <= node["last_heartbeat_at"] <= int(time.time())
    agent.ok(agent.heartbeat("not_ready"))
    node = api.ok(api.get(f"/api/clusters/{cluster['id']}/nodes/{agent.node_id}"))["node"]
    assert node["state"] == "not_ready"


@pytest.mark.parametrize("body,status", [({}, 422), ({"state": "draining"}, 422),
                                         ({"state": "deleted"}, 422), ({"state": 1}, 422),
                                         ({"state": "ready", "labels": []}, 422)])
def test_heartbeat_validation(api: Tenant, cluster: dict, body: dict[str, Any],
                              status: int) -> None:
    agent = api.node(cluster["id"], ready=False)
    assert_error(agent.call("POST", "/heartbeat", json=body), status, "VALIDATION_ERROR")


def test_draining_node_stays_draining_on_heartbeat(api: Tenant, cluster: dict) -> None:
    agent = api.node(cluster["id"])
    api.ok(api.post(f"/api/clusters/{cluster['id']}/nodes/{agent.node_id}/drain", json={}))
    agent.ok(agent.heartbeat("ready"))
    node = api.ok(api.get(f"/api/clusters/{cluster['id']}/nodes/{agent.node_id}"))["node"]
    assert node["state"] == "draining"


def test_tenant_node_list_and_detail(api: Tenant, cluster: dict) -> None:
    agent = api.node(cluster["id"], name="listed")
    listed = api.ok(api.get(f"/api/clusters/{cluster['id']}/nodes"))["nodes"]
    assert [n["name"] for n in listed] == ["listed"]
    node = listed[0]
    assert node["id"] == agent.node_id and node["state"] == "ready"
    assert node["pod_cidr"] == agent.registered["allocation"]["pod_cidr"]
    assert node["gpu_inventory"] == []
    assert api.ok(api.get(f"/api/clusters/{cluster['id']}/nodes/{agent.node_id}")) == {
        "node": node}
    assert_error(api.get(f"/api/clusters/{cluster['id']}/nodes/nope"), 404, "NOT_FOUND")


def test_agent_tokens_are_bound_to_their_node(api: Tenant, cluster: dict) -> None:
    cid = cluster["id"]
    a, b = api.node(cid, name="a"), api.node(cid, name="b")
    workload = api.workload(cid, 2)
    api.reconcile(cid)
    b_placement = b.assignments()[0]["placement"]
    assert b_placement["node_id"] == b.node_id
    for method, suffix in [("GET", "/placements"), ("GET", "/allocation"),
                           ("POST", "/heartbeat"), ("POST", "/deregister"),
                           ("POST", f"/placements/{b_placement['id']}/report")]:
        # A's token on B's routes is refused.
        response = a.call(method, suffix, node_id=b.node_id, json={"state": "ready"})
        assert_error(response, 401, "UNAUTHORIZED")
    # A cannot report B's placement through its own routes either.
    assert_error(a.report(b_placement["id"], state="running"), 404, "NOT_FOUND")
    assert [x["placement"]["workload_id"] for x in a.assignments()] == [workload["id"]]
    assert all(x["placement"]["node_id"] == a.node_id for x in a.assignments())


@pytest.mark.parametrize("token", ["", "qnt_garbage"])
def test_garbage_node_token_is_401(api: Tenant, cluster: dict, token: str) -> None:
    agent = api.node(cluster["id"])
    assert_error(agent.call("GET", "/allocation", token=token), 401, "UNAUTHORIZED")
    # The tenant key is not a node token either.
    response = agent.http.get(agent.base + "/allocation",
                              headers={"X-Api-Key": api.http.headers["x-api-key"]})
    assert_error(response, 401, "UNAUTHORIZED")


def test_deleted_node_token_is_dead(api: Tenant, cluster: dict) -> None:
    agent = api.node(cluster["id"])
    assert api.ok(api.delete(f"/api/clusters/{cluster['id']}/nodes/{agent.node_id}")) == {
        "success": True}
    assert_error(agent.heartbeat("ready"), 401, "UNAUTHORIZED")
    assert_error(agent.call("GET", "/placements"), 401, "UNAUTHORIZED")
    assert_error(api.get(f"/api/clusters/{cluster['id']}/nodes/{agent.node_id}"), 404,
                 "NOT_FOUND")
    assert api.ok(api.get(f"/api/clusters/{cluster['id']}/nodes"))["nodes"] == []


def test_deregister_drops_the_node(api: Tenant, cluster: dict) -> None:
    agent = api.node(cluster["id"])
    assert agent.ok(agent.call("POST", "/deregister")) == {"success": True}
    assert api.ok(api.get(f"/api/clusters/{cluster['id']}/nodes"))["nodes"] == []
    assert_error(agent.call("POST", "/deregister"), 401, "UNAUTHORIZED")
