"""Agent routes (quilt-api.md 5.13): register with a join token; everything else with the
node token of exactly the node in the path."""

from __future__ import annotations

from . import faults, join_tokens, nodes, workloads
from .endpoints import Auth, Call, Reply, Spec
from .validation import Body

SUCCESS = {"success": True}


def register(call: Call) -> Reply:
    cid = call.params["cid"]
    with call.tx() as db:
        # Token first, body second: a bad token is 401 whatever the body holds. Both happen
        # in one transaction, so a max_uses=1 token cannot register two nodes.
        token = join_tokens.check(db, cid, call.headers.get("x-quilt-join-token"), call.now())
        result = nodes.register(db, token, call.json(), call.now())
        call.tenant_id = result["node"]["tenant_id"]
        call.emit("node_update", nodes.node_event(cid, result["node"]["id"],
                                                  result["node"]["state"], "registered"))
    return Reply(201, result)


def heartbeat(call: Call) -> Reply:
    assert call.node is not None
    nid = call.params["nid"]
    with call.tx() as db:
        before = nodes.state_of(db, nid)
        nodes.heartbeat(db, call.node, call.json(), call.now())
        after = nodes.state_of(db, nid)
        if after is not None and after != before:  # only state changes are events
            call.emit("node_update", nodes.node_event(call.params["cid"], nid, after,
                                                      "heartbeat"))
    if faults.on("heartbeat-echoes-node-token"):
        token = faults.active().leak(call.headers.get("x-quilt-node-token", ""))
        return Reply(200, {**SUCCESS, "debug_info": {"auth": token, "node": nid}})
    return Reply(200, SUCCESS)


def allocation(call: Call) -> Reply:
    assert call.node is not None
    return Reply(200, nodes.allocation_view(call.node))


def placements(call: Call) -> Reply:
    with call.tx() as db:
        return Reply(200, {"assignments": workloads.assignments(db, call.params["nid"])})


def report(call: Call) -> Reply:
    nid, pid = call.params["nid"], call.params["pid"]
    with call.tx() as db:
        row = workloads.report(db, nid, pid, call.json(), call.now())
        call.emit("placement_update", workloads.placement_event(row, "reported"))
    return Reply(200, SUCCESS)


def deregister(call: Call) -> Reply:
    cid, nid = call.params["cid"], call.params["nid"]
    with call.tx() as db:
        Body(call.json(default={}))
        nodes.delete(db, cid, nid, call.now())
        call.emit("node_update", nodes.node_event(cid, nid, "deleted", "deregistered"))
    return Reply(200, SUCCESS)


A = "/api/agent/clusters/{cid}/nodes"
SPECS = [
    Spec("POST", A + "/register", register, Auth.NONE),
    Spec("POST", A + "/{nid}/heartbeat", heartbeat, Auth.NODE),
    Spec("GET", A + "/{nid}/allocation", allocation, Auth.NODE),
    Spec("GET", A + "/{nid}/placements", placements, Auth.NODE),
    Spec("POST", A + "/{nid}/placements/{pid}/report", report, Auth.NODE),
    Spec("POST", A + "/{nid}/deregister", deregister, Auth.NODE),
]
