"""The reconcile rule, first as a pure plan, then end to end over HTTP."""

from __future__ import annotations

from quilt_verify.reference.scheduler import (
    NodeInfo,
    PlacementInfo,
    WorkloadInfo,
    eligible_nodes,
    plan,
)

from .helpers import Tenant


def node(ident: str, state: str = "ready", created_at: int = 100, seq: int = 0) -> NodeInfo:
    return NodeInfo(ident, state, created_at, seq)


def test_eligibility_and_order() -> None:
    nodes = [node("late", created_at=200, seq=1), node("tie-b", seq=3), node("tie-a", seq=2),
             node("reg", "registered", created_at=150, seq=9), node("dr", "draining", seq=0),
             node("nr", "not_ready", seq=0), node("del", "deleted", seq=0)]
    assert [n.id for n in eligible_nodes(nodes)] == ["tie-a", "tie-b", "reg", "late"]


def test_plan_round_robin_and_idempotence() -> None:
    nodes = [node("n1", seq=1), node("n2", seq=2)]
    first = plan([WorkloadInfo("w", 3)], [], nodes)
    assert first.creates == [("w", 0, "n1"), ("w", 1, "n2"), ("w", 2, "n1")]
    placed = [PlacementInfo(f"p{i}", "w", i, n) for _, i, n in first.creates]
    assert plan([WorkloadInfo("w", 3)], placed, nodes).counts() == {
        "created": 0, "moved": 0, "deleted": 0}


def test_plan_scales_down_even_without_eligible_nodes() -> None:
    placed = [PlacementInfo(f"p{i}", "w", i, "gone") for i in range(3)]
    result = plan([WorkloadInfo("w", 1)], placed, [node("d", "draining")])
    assert result.deletes == ["p1", "p2"] and not result.creates and not result.moves


def test_plan_moves_only_placements_on_ineligible_nodes() -> None:
    nodes = [node("n1", seq=1), node("n2", "draining", seq=2), node("n3", seq=3)]
    placed = [PlacementInfo("p0", "w", 0, "n1"), PlacementInfo("p1", "w", 1, "n2"),
              PlacementInfo("p2", "w", 2, "vanished")]
    result = plan([WorkloadInfo("w", 3)], placed, nodes)
    # eligible = [n1, n3]: index 1 -> n3, index 2 -> n1; p0 stays (no rebalancing).
    assert [(m.placement_id, m.from_node, m.to_node) for m in result.moves] == [
        ("p1", "n2", "n3"), ("p2", "vanished", "n1")]


def by_index(api: Tenant, cid: str, wid: str) -> dict[int, dict]:
    return {p["replica_index"]: p for p in api.placements(cid, wid)}


def test_three_replicas_on_two_nodes(api: Tenant, cluster: dict) -> None:
    cid = cluster["id"]
    n1, n2 = api.node(cid), api.node(cid)
    workload = api.workload(cid, 3)
    assert api.placements(cid) == []  # creating a workload does not schedule it
    assert api.reconcile(cid) == {"success": True, "created": 3, "moved": 0, "deleted": 0}
    placements = by_index(api, cid, workload["id"])
    assert [placements[i]["node_id"] for i in range(3)] == [n1.node_id, n2.node_id, n1.node_id]
    for p in placements.values():
        assert (p["state"], p["container_id"], p["message"]) == ("assigned", None, None)
        assert p["cluster_id"] == cid and p["tenant_id"] == cluster["tenant_id"]
    assert api.reconcile(cid) == {"success": True, "created": 0, "moved": 0, "deleted": 0}
    assert [a["placement"]["replica_index"] for a in n1.assignments()] == [0, 2]
    assignment = n2.assignments()[0]
    assert assignment["workload"] == {"id": workload["id"], "name": workload["name"],
                                      "spec": workload["spec"]}


def test_scale_up_and_down(api: Tenant, cluster: dict) -> None:
    cid = cluster["id"]
    api.node(cid), api.node(cid)
    workload = api.workload(cid, 2)
    api.reconcile(cid)
    spec = {**workload["spec"], "replicas": 5}
    updated = api.ok(api.put(f"/api/clusters/{cid}/workloads/{workload['id']}", json=spec))
    assert updated["spec"]["replicas"] == 5
    assert len(api.placements(cid)) == 2  # PUT alone does not schedule
    assert api.reconcile(cid)["created"] == 3
    assert sorted(by_index(api, cid, workload["id"])) == [0, 1, 2, 3, 4]
    api.ok(api.put(f"/api/clusters/{cid}/workloads/{workload['id']}",
                   json={**spec, "replicas": 1}))
    assert api.reconcile(cid) == {"success": True, "created": 0, "moved": 0, "deleted": 4}
    assert sorted(by_index(api, cid, workload["id"])) == [0]


def test_drain_moves_placements_on_next_reconcile(api: Tenant, cluster: dict) -> None:
    cid = cluster["id"]
    n1, n2 = api.node(cid), api.node(cid)
    workload = api.workload(cid, 2)
    api.reconcile(cid)
    p1 = by_index(api, cid, workload["id"])[1]
    n2.ok(n2.report(p1["id"], state="running", container_id="ctr-1"))
    api.ok(api.post(f"/api/clusters/{cid}/nodes/{n2.node_id}/drain", json={}))
    assert by_index(api, cid, workload["id"])[1]["node_id"] == n2.node_id  # not before reconcile
    assert api.reconcile(cid) == {"success": True, "created": 0, "moved": 1, "deleted": 0}
    moved = by_index(api, cid, workload["id"])[1]
    assert moved["id"] == p1["id"]
    assert (moved["node_id"], moved["state"], moved["container_id"]) == (
        n1.node_id, "assigned", None)
    assert moved["message"] == f"rescheduled from node {n2.node_id}"
    assert n2.assignments() == []


def test_deleted_node_placements_are_rescheduled(api: Tenant, cluster: dict) -> None:
    cid = cluster["id"]
    n1, n2, n3 = api.node(cid), api.node(cid), api.node(cid)
    workload = api.workload(cid, 4)
    api.reconcile(cid)
    before = by_index(api, cid, workload["id"])
    assert [before[i]["node_id"] for i in range(4)] == [n1.node_id, n2.node_id, n3.node_id,
                                                        n1.node_id]
    api.ok(api.delete(f"/api/clusters/{cid}/nodes/{n1.node_id}"))
    assert api.reconcile(cid) == {"success": True, "created": 0, "moved": 2, "deleted": 0}
    after = by_index(api, cid, workload["id"])
    # eligible is now [n2, n3]: index 0 -> n2, index 3 -> n3; indices 1 and 2 stay put.
    assert [after[i]["node_id"] for i in range(4)] == [n2.node_id, n2.node_id, n3.node_id,
                                                       n3.node_id]
    for i in (0, 3):
        assert after[i]["id"] == before[i]["id"]
        assert after[i]["state"] == "assigned" and after[i]["container_id"] is None
        assert after[i]["message"] == f"rescheduled from node {n1.node_id}"
    assert after[1] == before[1] and after[2] == before[2]


def test_not_ready_node_is_ineligible_but_registered_is_eligible(api: Tenant,
                                                                 cluster: dict) -> None:
    cid = cluster["id"]
    sick = api.node(cid)
    sick.ok(sick.heartbeat("not_ready"))
    fresh = api.node(cid, ready=False)
    workload = api.workload(cid, 2)
    api.reconcile(cid)
    assert {p["node_id"] for p in api.placements(cid, workload["id"])} == {fresh.node_id}


def test_no_eligible_nodes_means_nothing_happens(api: Tenant, cluster: dict) -> None:
    cid = cluster["id"]
    api.workload(cid, 3)
    assert api.reconcile(cid) == {"success": True, "created": 0, "moved": 0, "deleted": 0}
    only = api.node(cid)
    api.reconcile(cid)
    api.ok(api.post(f"/api/clusters/{cid}/nodes/{only.node_id}/drain"))
    assert api.reconcile(cid) == {"success": True, "created": 0, "moved": 0, "deleted": 0}
    assert {p["node_id"] for p in api.placements(cid)} == {only.node_id}


def test_placements_list_order_spans_workloads(api: Tenant, cluster: dict) -> None:
    cid = cluster["id"]
    api.node(cid)
    first, second = api.workload(cid, 2), api.workload(cid, 2)
    api.reconcile(cid)
    order = [(p["workload_id"], p["replica_index"]) for p in api.placements(cid)]
    assert order == [(first["id"], 0), (first["id"], 1), (second["id"], 0), (second["id"], 1)]
