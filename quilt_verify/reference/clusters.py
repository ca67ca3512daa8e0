"""Clusters: validation, CRUD and the cascade on delete."""

from __future__ import annotations

import sqlite3
from typing import Any

from . import faults
from .cidr import parse_ipv4_network
from .errors import conflict, invalid, not_found
from .tokens import new_id
from .validation import Body

NODE_PREFIX_MIN = 16
NODE_PREFIX_MAX = 30


def cluster_view(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "name": row["name"],
        "pod_cidr": row["pod_cidr"],
        "node_cidr_prefix": row["node_cidr_prefix"],
        "tenant_id": row["tenant_id"],
        "created_at": row["created_at"],
    }


def parse_cluster_spec(data: Any) -> tuple[str, str, int]:
    body = Body(data)
    name = body.string("name", required=True)
    pod_cidr = body.string("pod_cidr", required=True, max_len=64)
    prefix = body.integer("node_cidr_prefix", NODE_PREFIX_MIN, NODE_PREFIX_MAX, required=True)
    assert name is not None and pod_cidr is not None and prefix is not None
    try:
        network = parse_ipv4_network(pod_cidr)
    except ValueError as exc:
        raise invalid("pod_cidr", f"must be an IPv4 CIDR with zero host bits ({exc})",
                      ["IPv4 CIDR such as 10.100.0.0/16"], pod_cidr[:64]) from None
    if prefix < network.prefixlen:
        raise invalid("node_cidr_prefix", "must not be shorter than the pod_cidr prefix",
                      [f"integer {max(network.prefixlen, NODE_PREFIX_MIN)}..{NODE_PREFIX_MAX}"],
                      str(prefix))
    return name, pod_cidr, prefix


def create_cluster(db: sqlite3.Connection, tenant_id: str, data: Any, now: int) -> dict[str, Any]:
    name, pod_cidr, prefix = parse_cluster_spec(data)
    taken = db.execute(
        "SELECT 1 FROM clusters WHERE tenant_id = ? AND name = ?", (tenant_id, name)
    ).fetchone()
    if taken:
        if not faults.on("duplicate-cluster-name-accepted"):
            raise conflict(f"cluster name already exists: {name}", "name")
    cluster_id = new_id()
    db.execute(
        "INSERT INTO clusters (id, tenant_id, name, pod_cidr, node_cidr_prefix, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (cluster_id, tenant_id, name, pod_cidr, prefix, now),
    )
    return get_cluster(db, tenant_id, cluster_id)


def cluster_row(db: sqlite3.Connection, tenant_id: str, cluster_id: str) -> sqlite3.Row:
    """The tenant's cluster row; 404 for unknown ids and other tenants' clusters."""
    row = db.execute(
        "SELECT * FROM clusters WHERE id = ? AND tenant_id = ?", (cluster_id, tenant_id)
    ).fetchone()
    if row is None:
        raise not_found("cluster", cluster_id)
    return row


def get_cluster(db: sqlite3.Connection, tenant_id: str, cluster_id: str) -> dict[str, Any]:
    return cluster_view(cluster_row(db, tenant_id, cluster_id))


def list_clusters(db: sqlite3.Connection, tenant_id: str) -> list[dict[str, Any]]:
    rows = db.execute("SELECT * FROM clusters WHERE tenant_id = ? ORDER BY seq", (tenant_id,))
    return [cluster_view(row) for row in rows]


def delete_cluster(db: sqlite3.Connection, tenant_id: str, cluster_id: str) -> None:
    """Delete a cluster; workloads, placements, nodes (and so their tokens) and join tokens go
    with it (foreign-key cascades; placements cascade from their workloads)."""
    cluster_row(db, tenant_id, cluster_id)
    db.execute("DELETE FROM clusters WHERE id = ?", (cluster_id,))
