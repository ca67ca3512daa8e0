"""The cluster control plane as a tenant sees it, without any node: cluster and workload CRUD,
join tokens, reconcile with no eligible node, and deletion.

Ordered: a failed step blocks the rest of the session.
"""

from __future__ import annotations

import pytest

from quilt_verify.checks import expect_error_body, expect_status

pytestmark = [
    pytest.mark.capability("cluster-control-plane"),
    pytest.mark.session,
    pytest.mark.mode("standard"),
]

COMMAND = ["sleep", "3600"]


def test_01_create_and_read_cluster(quilt, quilt_names, quilt_ledger, session_state, step):
    """A created cluster MUST be readable by id with the fields it was created with and listed;
    a second cluster with the same name MUST be refused."""
    s = session_state
    s.name = quilt_names.make("cp-cluster")
    step(f"creating cluster {s.name}")
    cluster = quilt.create_cluster(s.name, "10.60.0.0/16", 26)
    s.cid = cluster["id"]
    quilt_ledger.track(quilt, "cluster", s.cid, name=s.name)
    fetched = quilt.get_cluster(s.cid)
    assert (fetched.get("name"), fetched.get("pod_cidr"), fetched.get("node_cidr_prefix")) == (
        s.name, "10.60.0.0/16", 26)
    assert s.cid in [c.get("id") for c in quilt.list_clusters()]
    step("creating a cluster with the same name")
    expect_error_body(expect_status(lambda: quilt.create_cluster(s.name, "10.61.0.0/16", 24),
                                    400, 409, 422))


def test_02_join_token_defaults_and_bounds(quilt, session_state, step):
    """A join token minted without options MUST be usable (`max_uses` at least 1, an expiry in
    the future); out-of-range `ttl_secs` and `max_uses` MUST be refused."""
    s = session_state
    step("minting a join token with defaults")
    token = quilt.create_join_token(s.cid)
    assert token.get("cluster_id") == s.cid and token.get("join_token")
    assert isinstance(token.get("max_uses"), int) and token["max_uses"] >= 1
    for label, kwargs in (("ttl_secs 59", {"ttl_secs": 59}), ("ttl_secs 86401",
                          {"ttl_secs": 86401}), ("max_uses 0", {"max_uses": 0}),
                          ("max_uses 1001", {"max_uses": 1001})):
        step(f"minting a join token with {label}")
        expect_error_body(expect_status(
            lambda kw=kwargs: quilt.create_join_token(s.cid, **kw), 400, 422))


def test_03_workload_crud(quilt, quilt_names, quilt_ledger, session_state, step):
    """A workload MUST be created with its spec, listed, read back, updated with a new replica
    count, and a workload with zero replicas MUST be refused."""
    s = session_state
    s.spec = {"name": quilt_names.make("cp-web"), "replicas": 2, "command": COMMAND,
              "labels": quilt_names.labels}
    step("creating a workload with 2 replicas")
    workload = quilt.create_workload(s.cid, s.spec)
    s.wid = workload["id"]
    quilt_ledger.track(quilt, "workload", s.wid, name=s.spec["name"], cluster_id=s.cid)
    assert workload.get("spec", {}).get("command") == COMMAND
    assert s.wid in [w.get("id") for w in quilt.list_workloads(s.cid)]
    step("updating it to 4 replicas")
    updated = quilt.update_workload(s.cid, s.wid, {**s.spec, "replicas": 4})
    assert updated.get("spec", {}).get("replicas") == 4
    assert quilt.get_workload(s.cid, s.wid).get("spec", {}).get("replicas") == 4
    step("creating a workload with 0 replicas")
    expect_error_body(expect_status(
        lambda: quilt.create_workload(s.cid, {**s.spec, "name": s.spec["name"] + "-zero",
                                              "replicas": 0}), 400, 422))


def test_04_reconcile_without_nodes_places_nothing(quilt, session_state, step):
    """With no eligible node in the cluster, reconcile MUST succeed and MUST NOT place any
    replica on a node."""
    s = session_state
    step("reconciling a cluster that has no nodes")
    quilt.reconcile(s.cid)
    placed = [p for p in quilt.list_placements(s.cid) if p.get("node_id")]
    assert placed == [], f"placements on nodes in a cluster without nodes: {placed}"
    assert quilt.list_nodes(s.cid) == []


def test_05_delete_workload_and_cluster(quilt, quilt_ledger, session_state, step):
    """Deleted workloads and clusters MUST answer 404 and leave their lists."""
    s = session_state
    step("deleting the workload")
    quilt.delete_workload(s.cid, s.wid)
    quilt_ledger.discard("workload", s.wid)
    expect_status(lambda: quilt.get_workload(s.cid, s.wid), 404)
    assert s.wid not in [w.get("id") for w in quilt.list_workloads(s.cid)]
    step("deleting the cluster")
    quilt.delete_cluster(s.cid)
    quilt_ledger.discard("cluster", s.cid)
    expect_error_body(expect_status(lambda: quilt.get_cluster(s.cid), 404))
    assert s.cid not in [c.get("id") for c in quilt.list_clusters()]
