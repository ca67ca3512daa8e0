"""The full Kubernetes-like session: agent registration, scheduling, placement reporting,
drain, scale and rescheduling, exactly the loop an operator and node agents run.

Ordered: each step builds on the previous one; a failed step blocks the rest of the session.
"""

from __future__ import annotations

import ipaddress
import json
import time
from collections import Counter
from typing import Any

import pytest

from quilt_verify.checks import expect_status

pytestmark = [
    pytest.mark.capability("kubernetes-session"),
    pytest.mark.session,
    pytest.mark.mode("full"),
]

POD_CIDR = "10.240.0.0/16"
NODE_PREFIX = 24
COMMAND = ["sleep", "3600"]
# Tolerated difference between the target's clock and ours when checking expiry times.
CLOCK_SKEW_S = 300


# -- helpers --------------------------------------------------------------------------------------
def workload_placements(quilt: Any, s: Any) -> list[dict[str, Any]]:
    return [p for p in quilt.list_placements(s.cluster_id) if p.get("workload_id") == s.workload_id]


def by_index(placements: list[dict[str, Any]]) -> dict[int, dict[str, Any]]:
    indices = [p["replica_index"] for p in placements]
    dupes = [i for i, n in Counter(indices).items() if n > 1]
    assert not dupes, f"replica indices {dupes} have more than one placement: {placements}"
    return {p["replica_index"]: p for p in placements}


def assert_indices(placements: list[dict[str, Any]], replicas: int) -> dict[int, dict[str, Any]]:
    found = by_index(placements)
    assert sorted(found) == list(range(replicas)), (
        f"expected exactly one placement per replica index 0..{replicas - 1}, "
        f"got indices {sorted(found)}"
    )
    return found


def node_state(quilt: Any, s: Any, node_id: str) -> str:
    return str(quilt.get_node(s.cluster_id, node_id).get("state"))


def sync_all(s: Any) -> None:
    for agent in s.live_agents():
        agent.sync()


def assert_all_running(quilt: Any, s: Any, replicas: int) -> dict[int, dict[str, Any]]:
    placements = assert_indices(workload_placements(quilt, s), replicas)
    for index, p in placements.items():
        assert p.get("state") == "running", (
            f"placement {p['id']} (replica {index}) on node {p.get('node_id')} is "
            f"{p.get('state')!r}, expected 'running'")
        owner = s.agent_by_node[p["node_id"]]
        assert p.get("container_id") == owner.containers.get(p["id"]), (
            f"placement {p['id']} reports container {p.get('container_id')!r} but its agent "
            f"{owner.name} runs {owner.containers.get(p['id'])!r}")
    return placements


# -- the session ----------------------------------------------------------------------------------
def test_01_create_cluster(quilt, quilt_names, quilt_ledger, session_state, step):
    """Creating a cluster MUST return its id with the name, pod CIDR and node prefix that were
    sent, and the cluster MUST then be readable by id and present in the cluster list."""
    s = session_state
    name = quilt_names.make("cluster")
    step(f"creating cluster {name} with pod CIDR {POD_CIDR}/{NODE_PREFIX}")
    cluster = quilt.create_cluster(name, POD_CIDR, NODE_PREFIX)
    assert cluster.get("id"), f"cluster create returned no id: {cluster}"
    s.cluster_id = cluster["id"]
    quilt_ledger.track(quilt, "cluster", s.cluster_id, name=name)
    assert (cluster.get("name"), cluster.get("pod_cidr"), cluster.get("node_cidr_prefix")) == (
        name, POD_CIDR, NODE_PREFIX)
    step("reading the cluster back by id and in the list")
    fetched = quilt.get_cluster(s.cluster_id)
    assert fetched.get("id") == s.cluster_id and fetched.get("name") == name
    assert s.cluster_id in [c.get("id") for c in quilt.list_clusters()]
    s.agents = {}
    s.agent_by_node = {}
    s.live_agents = lambda: [a for a in s.agents.values() if a.node_id in s.agent_by_node]


def test_02_mint_join_tokens(quilt, session_state, step):
    """A join token minted with ttl_secs and max_uses MUST belong to the cluster, carry the
    requested max_uses and expire no earlier than the requested TTL from now."""
    s = session_state
    s.join_tokens = []
    for _ in range(3):
        step("minting a single-use join token with a 10 minute TTL")
        before = time.time()
        token = quilt.create_join_token(s.cluster_id, ttl_secs=600, max_uses=1)
        assert token.get("cluster_id") == s.cluster_id
        assert token.get("max_uses") == 1
        assert isinstance(token.get("join_token"), str) and len(token["join_token"]) >= 16
        expires = token.get("expires_at")
        if isinstance(expires, (int, float)):
            assert expires >= before + 600 - CLOCK_SKEW_S, (
                f"expires_at {expires} is earlier than now + ttl ({before + 600:.0f})")
        s.join_tokens.append(token["join_token"])
    assert len(set(s.join_tokens)) == 3, "three mints returned a repeated join token"


def test_03_register_two_nodes(quilt, make_agent, quilt_names, session_state, step):
    """A node agent presenting a join token MUST be registered in state `registered` with a node
    token and its own pod CIDR carved from the cluster CIDR at the node prefix; a single-use join
    token MUST NOT register a second node."""
    s = session_state
    cidr = ipaddress.ip_network(POD_CIDR)
    for label, token in (("a", s.join_tokens[0]), ("b", s.join_tokens[1])):
        agent = make_agent(s.cluster_id, quilt_names.make(f"node-{label}"))
        step(f"registering node {agent.name} with a join token")
        reg = agent.register(token)
        assert reg.node.get("state", "registered") == "registered", reg.node
        pod = ipaddress.ip_network(reg.allocation.get("pod_cidr", ""))
        assert pod.subnet_of(cidr) and pod.prefixlen == NODE_PREFIX, (
            f"node pod CIDR {pod} is not a /{NODE_PREFIX} inside {cidr}")
        s.agents[label] = agent
        s.agent_by_node[agent.node_id] = agent
    a, b = s.agents["a"], s.agents["b"]
    assert a.node_id != b.node_id
    assert a.registration.allocation["pod_cidr"] != b.registration.allocation["pod_cidr"]
    assert a.node_token != b.node_token
    step("reusing the first (single-use) join token for another node")
    intruder = make_agent(s.cluster_id, quilt_names.make("node-reuse"))
    expect_status(lambda: intruder.register(s.join_tokens[0]), 401, 403)
    listed = {n.get("id"): n for n in quilt.list_nodes(s.cluster_id)}
    assert set(listed) == {a.node_id, b.node_id}, f"cluster nodes are {sorted(listed)}"


def test_04_heartbeat_ready(quilt, session_state, step):
    """After a heartbeat with state `ready`, the tenant view MUST show each node `ready` with a
    recorded last heartbeat; the heartbeat answer MUST NOT echo the node token."""
    s = session_state
    for agent in s.agents.values():
        step(f"heartbeat ready from {agent.name}")
        answer = agent.heartbeat("ready")
        assert agent.node_token not in json.dumps(answer, default=str), (
            f"the heartbeat answer of {agent.name} echoes its node token")
    for agent in s.agents.values():
        node = quilt.get_node(s.cluster_id, agent.node_id)
        assert node.get("state") == "ready", f"node {agent.name} is {node.get('state')!r}"
        assert node.get("last_heartbeat_at"), f"node {agent.name} has no last_heartbeat_at"


def test_05_read_allocation(session_state, step):
    """The allocation an agent reads with its node token MUST equal what registration granted:
    the same pod CIDR, bridge name, DNS port and egress limit."""
    s = session_state
    for agent in s.agents.values():
        step(f"reading the allocation of {agent.name}")
        alloc = agent.allocation()
        granted = agent.registration.allocation
        for field in ("pod_cidr", "bridge_name", "dns_port", "egress_limit_mbit"):
            expected = granted.get(field, getattr(agent, field, None))
            assert alloc.get(field) == expected, (
                f"allocation {field} of {agent.name} is {alloc.get(field)!r}, "
                f"registration said {expected!r}")


def test_06_create_workload(quilt, quilt_names, quilt_ledger, session_state, step):
    """Creating a workload with 3 replicas MUST return its id with spec.replicas 3, and the
    workload MUST be readable by id and listed in the cluster."""
    s = session_state
    s.spec = {"name": quilt_names.make("web"), "replicas": 3, "command": COMMAND,
              "image": "prod", "labels": {"app": "qv-web", **quilt_names.labels}}
    step("creating a workload with 3 replicas")
    workload = quilt.create_workload(s.cluster_id, s.spec)
    assert workload.get("id"), f"workload create returned no id: {workload}"
    s.workload_id = workload["id"]
    quilt_ledger.track(quilt, "workload", s.workload_id, name=s.spec["name"], cluster_id=s.cluster_id)
    assert workload.get("spec", {}).get("replicas") == 3, workload
    assert quilt.get_workload(s.cluster_id, s.workload_id).get("spec", {}).get("replicas") == 3
    assert s.workload_id in [w.get("id") for w in quilt.list_workloads(s.cluster_id)]


def test_07_reconcile_schedules_replicas(quilt, session_state, step):
    """After reconcile there MUST be exactly one placement per replica index, each `assigned`
    to a ready node of the cluster, spread over both nodes."""
    s = session_state
    step("reconciling the cluster")
    quilt.reconcile(s.cluster_id)
    placements = assert_indices(workload_placements(quilt, s), 3)
    nodes = {p["node_id"] for p in placements.values()}
    assert nodes <= set(s.agent_by_node), f"placements on unknown nodes {nodes - set(s.agent_by_node)}"
    assert nodes == set(s.agent_by_node), f"3 replicas on 2 ready nodes used only {nodes}"
    for p in placements.values():
        assert p.get("state") == "assigned", f"new placement {p['id']} is {p.get('state')!r}"
        assert node_state(quilt, s, p["node_id"]) == "ready"


def test_08_agents_see_only_their_assignments(quilt, session_state, step):
    """Each agent MUST see exactly the placements scheduled on its own node, and an agent MUST
    NOT be able to report on a placement of another node."""
    s = session_state
    placements = workload_placements(quilt, s)
    for agent in s.agents.values():
        step(f"fetching the assignments of {agent.name}")
        seen = {a["placement"]["id"] for a in agent.assignments()}
        expected = {p["id"] for p in placements if p["node_id"] == agent.node_id}
        assert seen == expected, (f"agent {agent.name} sees {sorted(seen)}, its node holds "
                                  f"{sorted(expected)}")
    a, b = s.agents["a"], s.agents["b"]
    foreign = next(p for p in placements if p["node_id"] == b.node_id)
    step(f"agent {a.name} reporting on placement {foreign['id']} of {b.name}")
    expect_status(lambda: quilt.agent_report(s.cluster_id, a.node_id, foreign["id"],
                                             a.node_token, state="running",
                                             container_id="not-mine"), 403, 404)


def test_09_materialize_and_report_running(quilt, session_state, step):
    """Each agent MUST be able to create a container for every assignment through the runtime
    API and report it `running` with its container_id; the containers MUST be running."""
    s = session_state
    for agent in s.agents.values():
        step(f"agent {agent.name} materializing its assignments")
        result = agent.sync()
        assert not result.failed, f"containers failed to start: {result.failed}"
    for agent in s.agents.values():
        for container_id in agent.containers.values():
            state = quilt.get_container(container_id).get("state")
            assert state == "running", f"container {container_id} is {state!r}"


def test_10_tenant_view_shows_running(quilt, session_state, step):
    """The tenant placement list MUST show every replica `running` with the container_id its
    agent reported."""
    s = session_state
    step("listing placements as the tenant")
    s.running = assert_all_running(quilt, s, 3)


def test_11_scale_up_to_5(quilt, session_state, step):
    """Scaling a workload from 3 to 5 replicas and reconciling MUST add placements for indices
    3 and 4 and MUST leave the running placements 0..2 where they were, with their containers."""
    s = session_state
    before = s.running
    step("updating the workload to 5 replicas")
    updated = quilt.update_workload(s.cluster_id, s.workload_id, {**s.spec, "replicas": 5})
    assert updated.get("spec", {}).get("replicas") == 5, updated
    step("reconciling")
    quilt.reconcile(s.cluster_id)
    placements = assert_indices(workload_placements(quilt, s), 5)
    for index in range(3):
        p, old = placements[index], before[index]
        assert (p["id"], p["node_id"], p.get("container_id")) == (
            old["id"], old["node_id"], old.get("container_id")), (
            f"replica {index} moved or changed on scale up: {old} -> {p}")
    for index in (3, 4):
        assert placements[index].get("state") == "assigned"
        assert placements[index]["node_id"] in s.agent_by_node
    step("agents materializing the new replicas")
    sync_all(s)
    s.running = assert_all_running(quilt, s, 5)


def test_12_scale_down_to_2(quilt, session_state, step):
    """Scaling down to 2 replicas and reconciling MUST delete the placements of indices 2..4,
    keep 0 and 1, and the agents MUST then remove the containers of the removed replicas."""
    s = session_state
    before = s.running
    step("updating the workload to 2 replicas and reconciling")
    quilt.update_workload(s.cluster_id, s.workload_id, {**s.spec, "replicas": 2})
    quilt.reconcile(s.cluster_id)
    placements = assert_indices(workload_placements(quilt, s), 2)
    for index in (0, 1):
        assert placements[index]["id"] == before[index]["id"]
    removed = [before[i].get("container_id") for i in (2, 3, 4)]
    step("agents dropping the containers of removed replicas")
    sync_all(s)
    for container_id in removed:
        expect_status(lambda cid=container_id: quilt.get_container(cid), 404)
    s.running = assert_all_running(quilt, s, 2)


def test_13_drain_node(quilt, session_state, step):
    """A drained node MUST be in state `draining`, and after reconcile no placement MUST remain
    on it: its replicas are moved to a ready node in state `assigned`."""
    s = session_state
    a = s.agents["a"]
    on_a = [p for p in s.running.values() if p["node_id"] == a.node_id]
    assert on_a, "node a holds no replica to drain (scheduler did not spread replicas)"
    step(f"draining node {a.name}")
    quilt.drain_node(s.cluster_id, a.node_id)
    assert node_state(quilt, s, a.node_id) == "draining"
    step("reconciling")
    quilt.reconcile(s.cluster_id)
    placements = assert_indices(workload_placements(quilt, s), 2)
    for p in placements.values():
        assert p["node_id"] != a.node_id, f"placement {p['id']} is still on drained node {a.name}"
    for p in on_a:
        moved = placements[p["replica_index"]]
        assert moved.get("state") == "assigned", (
            f"moved placement {moved['id']} is {moved.get('state')!r}, expected 'assigned'")
    step("agents converging after the drain")
    sync_all(s)
    assert not a.containers, f"drained node still runs {a.containers}"
    s.running = assert_all_running(quilt, s, 2)


def test_14_register_third_node(quilt, make_agent, quilt_names, session_state, step):
    """A third node registered with its own join token and heartbeating `ready` MUST appear in
    the cluster as `ready`."""
    s = session_state
    c = make_agent(s.cluster_id, quilt_names.make("node-c"))
    step(f"registering node {c.name} and heartbeating ready")
    c.register(s.join_tokens[2])
    c.heartbeat("ready")
    s.agents["c"] = c
    s.agent_by_node[c.node_id] = c
    assert node_state(quilt, s, c.node_id) == "ready"


def test_15_delete_node_reschedules(quilt, quilt_ledger, session_state, step):
    """After a node is deleted its node token MUST be rejected and it MUST leave the node list;
    after reconcile no placement MUST remain on it, its replicas MUST be `assigned` to the
    remaining ready node, and they MUST be reported running again."""
    s = session_state
    b, c = s.agents["b"], s.agents["c"]
    held = [p for p in s.running.values() if p["node_id"] == b.node_id]
    assert held, "node b holds no replica after the drain"
    step(f"deleting node {b.name}")
    quilt.delete_node(s.cluster_id, b.node_id)
    quilt_ledger.discard("node", b.node_id)
    step("the deleted node's agent heartbeats with its old token")
    expect_status(lambda: b.heartbeat("ready"), 401, 403)
    expect_status(lambda: b.assignments(), 401, 403)
    assert b.node_id not in [n.get("id") for n in quilt.list_nodes(s.cluster_id)]
    del s.agent_by_node[b.node_id]
    step("removing what the dead node left behind")
    b.remove_local_containers()
    step("reconciling")
    quilt.reconcile(s.cluster_id)
    placements = assert_indices(workload_placements(quilt, s), 2)
    for p in held:
        moved = placements[p["replica_index"]]
        assert moved["node_id"] == c.node_id, (
            f"replica {p['replica_index']} went to {moved['node_id']}, the only ready node is "
            f"{c.node_id}")
        assert moved.get("state") == "assigned"
    for p in placements.values():
        assert p["node_id"] != b.node_id
    step("agents re-materializing the rescheduled replicas")
    sync_all(s)
    s.running = assert_all_running(quilt, s, 2)


def test_16_deregister(quilt, session_state, step):
    """An agent that deregisters MUST disappear from the node list and its node token MUST then
    be rejected."""
    s = session_state
    for label in ("a", "c"):
        agent = s.agents[label]
        step(f"agent {agent.name} removing its containers and deregistering")
        agent.remove_local_containers()
        agent.deregister()
        del s.agent_by_node[agent.node_id]
        expect_status(lambda agent=agent: agent.heartbeat("ready"), 401, 403)
    assert quilt.list_nodes(s.cluster_id) == []


def test_17_delete_everything(quilt, quilt_ledger, session_state, step):
    """Deleting the workload and the cluster MUST succeed, after which each MUST answer 404 and
    the cluster MUST be gone from the list; no container of the session MUST remain."""
    s = session_state
    step("deleting the workload")
    quilt.delete_workload(s.cluster_id, s.workload_id)
    expect_status(lambda: quilt.get_workload(s.cluster_id, s.workload_id), 404)
    quilt_ledger.discard("workload", s.workload_id)
    assert workload_placements(quilt, s) == []
    step("deleting the cluster")
    quilt.delete_cluster(s.cluster_id)
    expect_status(lambda: quilt.get_cluster(s.cluster_id), 404)
    quilt_ledger.discard("cluster", s.cluster_id)
    assert s.cluster_id not in [c.get("id") for c in quilt.list_clusters()]
    held = [cid for agent in s.agents.values() for cid in agent.containers.values()]
    assert not held, f"agents still hold containers {held}"
    created = [cid for agent in s.agents.values() for cid in agent.created]
    assert len(created) >= 7, f"the session should have created at least 7 containers: {created}"
    step(f"confirming all {len(created)} containers of the session are gone")
    for container_id in created:
        expect_status(lambda cid=container_id: quilt.get_container(cid), 404)
