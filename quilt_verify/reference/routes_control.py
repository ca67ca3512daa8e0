"""Tenant control-plane routes: clusters, join tokens, nodes, workloads, placements,
reconcile (quilt-api.md 5.9-5.12)."""

from __future__ import annotations

from . import clusters, join_tokens, nodes, scheduler, workloads
from .endpoints import Auth, Call, Reply, Spec
from .validation import Body

SUCCESS = {"success": True}


def create_cluster(call: Call) -> Reply:
    with call.tx() as db:
        cluster = clusters.create_cluster(db, call.tenant_id, call.json(), call.now())
        call.emit("cluster_update", {"cluster_id": cluster["id"], "action": "created"})
    return Reply(201, cluster)


def list_clusters(call: Call) -> Reply:
    with call.tx() as db:
        return Reply(200, {"clusters": clusters.list_clusters(db, call.tenant_id)})


def get_cluster(call: Call) -> Reply:
    with call.tx() as db:
        return Reply(200, clusters.get_cluster(db, call.tenant_id, call.params["cid"]))


def delete_cluster(call: Call) -> Reply:
    with call.tx() as db:
        clusters.delete_cluster(db, call.tenant_id, call.params["cid"])
        call.emit("cluster_update", {"cluster_id": call.params["cid"], "action": "deleted"})
    return Reply(200, SUCCESS)


def reconcile(call: Call) -> Reply:
    cid = call.params["cid"]
    with call.tx() as db:
        clusters.cluster_row(db, call.tenant_id, cid)
        Body(call.json(default={}))  # an object (normally `{}`) or no body at all
        counts = scheduler.reconcile_cluster(
            db, cid, call.now(), lambda action, data: call.emit("placement_update", data))
    return Reply(200, {"success": True, **counts})


def mint_join_token(call: Call) -> Reply:
    cid = call.params["cid"]
    with call.tx() as db:
        clusters.cluster_row(db, call.tenant_id, cid)
        token = join_tokens.mint(db, call.tenant_id, cid, call.json(default={}), call.now())
    return Reply(201, token)


def list_nodes(call: Call) -> Reply:
    with call.tx() as db:
        clusters.cluster_row(db, call.tenant_id, call.params["cid"])
        return Reply(200, {"nodes": nodes.list_nodes(db, call.params["cid"])})


def get_node(call: Call) -> Reply:
    with call.tx() as db:
        clusters.cluster_row(db, call.tenant_id, call.params["cid"])
        row = nodes.live_node_row(db, call.params["cid"], call.params["nid"])
        return Reply(200, {"node": nodes.node_view(row)})


def drain_node(call: Call) -> Reply:
    cid, nid = call.params["cid"], call.params["nid"]
    with call.tx() as db:
        clusters.cluster_row(db, call.tenant_id, cid)
        before = nodes.state_of(db, nid)
        nodes.drain(db, cid, nid, call.now())
        if before != "draining":
            call.emit("node_update", nodes.node_event(cid, nid, "draining", "drained"))
    return Reply(200, SUCCESS)


def delete_node(call: Call) -> Reply:
    cid, nid = call.params["cid"], call.params["nid"]
    with call.tx() as db:
        clusters.cluster_row(db, call.tenant_id, cid)
        nodes.delete(db, cid, nid, call.now())
        call.emit("node_update", nodes.node_event(cid, nid, "deleted", "deleted"))
    return Reply(200, SUCCESS)


def create_workload(call: Call) -> Reply:
    with call.tx() as db:
        cluster = clusters.cluster_row(db, call.tenant_id, call.params["cid"])
        workload = workloads.create(db, cluster, call.json(), call.now())
        call.emit("workload_update", workloads.workload_event(
            workloads.workload_row(db, cluster["id"], workload["id"]), "created"))
    return Reply(201, workload)


def list_workloads(call: Call) -> Reply:
    with call.tx() as db:
        clusters.cluster_row(db, call.tenant_id, call.params["cid"])
        return Reply(200, {"workloads": workloads.list_workloads(db, call.params["cid"])})


def get_workload(call: Call) -> Reply:
    with call.tx() as db:
        clusters.cluster_row(db, call.tenant_id, call.params["cid"])
        row = workloads.workload_row(db, call.params["cid"], call.params["wid"])
        return Reply(200, workloads.workload_view(row))


def replace_workload(call: Call) -> Reply:
    cid, wid = call.params["cid"], call.params["wid"]
    with call.tx() as db:
        clusters.cluster_row(db, call.tenant_id, cid)
        workload = workloads.replace(db, cid, wid, call.json(), call.now())
        call.emit("workload_update", workloads.workload_event(
            workloads.workload_row(db, cid, wid), "updated"))
    return Reply(200, workload)


def delete_workload(call: Call) -> Reply:
    cid, wid = call.params["cid"], call.params["wid"]
    with call.tx() as db:
        clusters.cluster_row(db, call.tenant_id, cid)
        row = workloads.workload_row(db, cid, wid)
        gone = workloads.placements_of(db, wid)
        workloads.delete(db, cid, wid)
        call.emit("workload_update", workloads.workload_event(row, "deleted"))
        for placement in gone:  # deleted with their workload
            call.emit("placement_update",
                      workloads.placement_event(placement, "deleted", "deleted"))
    return Reply(200, SUCCESS)


def list_placements(call: Call) -> Reply:
    with call.tx() as db:
        clusters.cluster_row(db, call.tenant_id, call.params["cid"])
        return Reply(200, {"placements": workloads.list_placements(db, call.params["cid"])})


C = "/api/clusters"
SPECS = [
    Spec("POST", C, create_cluster, Auth.TENANT),
    Spec("GET", C, list_clusters, Auth.TENANT),
    Spec("GET", C + "/{cid}", get_cluster, Auth.TENANT),
    Spec("DELETE", C + "/{cid}", delete_cluster, Auth.TENANT),
    Spec("POST", C + "/{cid}/reconcile", reconcile, Auth.TENANT),
    Spec("POST", C + "/{cid}/join-tokens", mint_join_token, Auth.TENANT),
    Spec("GET", C + "/{cid}/nodes", list_nodes, Auth.TENANT),
    Spec("GET", C + "/{cid}/nodes/{nid}", get_node, Auth.TENANT),
    Spec("DELETE", C + "/{cid}/nodes/{nid}", delete_node, Auth.TENANT),
    Spec("POST", C + "/{cid}/nodes/{nid}/drain", drain_node, Auth.TENANT),
    Spec("POST", C + "/{cid}/workloads", create_workload, Auth.TENANT),
    Spec("GET", C + "/{cid}/workloads", list_workloads, Auth.TENANT),
    Spec("GET", C + "/{cid}/workloads/{wid}", get_workload, Auth.TENANT),
    Spec("PUT", C + "/{cid}/workloads/{wid}", replace_workload, Auth.TENANT),
    Spec("DELETE", C + "/{cid}/workloads/{wid}", delete_workload, Auth.TENANT),
    Spec("GET", C + "/{cid}/placements", list_placements, Auth.TENANT),
]
