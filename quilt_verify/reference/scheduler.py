"""Reconcile: the CORE scheduling rule (quilt-api.md section 7), as a pure plan plus its
application to the store.

1. Eligible nodes: state `ready` or `registered`, ordered by (created_at, seq).
2. Scale down first: placements with replica_index >= replicas are deleted.
3. No eligible node: nothing is created or moved.
4. Each missing replica_index i gets a placement on eligible[i % N], state `assigned`.
5. A placement on a node that is not eligible (draining, not_ready, deleted or gone) moves to
   eligible[i % N]: state `assigned`, container_id null, message `rescheduled from node <old>`.
   Placements on eligible nodes stay where they are (no rebalancing).
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from . import faults
from .tokens import new_id
from .workloads import placement_event

ELIGIBLE_STATES = frozenset({"ready", "registered"})


@dataclass(frozen=True)
class NodeInfo:
    id: str
    state: str
    created_at: int
    seq: int


@dataclass(frozen=True)
class WorkloadInfo:
    id: str
    replicas: int


@dataclass(frozen=True)
class PlacementInfo:
    id: str
    workload_id: str
    replica_index: int
    node_id: str


@dataclass(frozen=True)
class Move:
    placement_id: str
    from_node: str
    to_node: str


@dataclass
class Plan:
    deletes: list[str] = field(default_factory=list)
    creates: list[tuple[str, int, str]] = field(default_factory=list)  # workload, index, node
    moves: list[Move] = field(default_factory=list)

    def counts(self) -> dict[str, int]:
        return {"created": len(self.creates), "moved": len(self.moves),
                "deleted": len(self.deletes)}


def eligible_nodes(nodes: list[NodeInfo]) -> list[NodeInfo]:
    """Nodes that may receive work, in scheduling order."""
    states = ELIGIBLE_STATES | ({"draining"} if faults.on("drain-ignored-by-reconcile") else set())
    return sorted((n for n in nodes if n.state in states), key=lambda n: (n.created_at, n.seq))


def plan(workloads: list[WorkloadInfo], placements: list[PlacementInfo],
         nodes: list[NodeInfo]) -> Plan:
    """Compute what one reconcile of a cluster changes; pure and deterministic."""
    result = Plan()
    eligible = eligible_nodes(nodes)
    eligible_ids = {n.id for n in eligible}
    spread = eligible[:-1] if faults.on("round-robin-skips-last-node") and len(eligible) > 1 \
        else eligible
    by_workload: dict[str, dict[int, PlacementInfo]] = {}
    for placement in placements:
        by_workload.setdefault(placement.workload_id, {})[placement.replica_index] = placement
    for workload in workloads:
        current = by_workload.get(workload.id, {})
        for index in sorted(current):
            if index >= workload.replicas and not faults.on("scale-down-keeps-high-indices"):
                result.deletes.append(current[index].id)
        if not eligible:
            continue
        for index in range(workload.replicas):
            target = spread[index % len(spread)].id
            existing = current.get(index)
            if existing is None:
                result.creates.append((workload.id, index, target))
            elif existing.node_id not in eligible_ids:
                result.moves.append(Move(existing.id, existing.node_id, target))
    return result


def reconcile_cluster(db: sqlite3.Connection, cluster_id: str, now: int,
                      changed: Callable[[str, dict[str, Any]], None] | None = None
                      ) -> dict[str, int]:
    """Load the cluster's state, plan, apply; returns `{created, moved, deleted}`.

    `changed(action, placement_event)` is called for every placement created, moved or
    deleted (see `workloads.placement_event`)."""
    report = changed or (lambda action, data: None)
    workloads = [
        WorkloadInfo(row["id"], json.loads(row["spec_json"])["replicas"])
        for row in db.execute(
            "SELECT id, spec_json FROM workloads WHERE cluster_id = ? ORDER BY seq", (cluster_id,)
        )
    ]
    placements = [
        PlacementInfo(row["id"], row["workload_id"], row["replica_index"], row["node_id"])
        for row in db.execute(
            "SELECT id, workload_id, replica_index, node_id FROM placements"
            " WHERE cluster_id = ?", (cluster_id,)
        )
    ]
    nodes = [
        NodeInfo(row["id"], row["state"], row["created_at"], row["seq"])
        for row in db.execute(
            "SELECT id, state, created_at, seq FROM nodes WHERE cluster_id = ?", (cluster_id,)
        )
    ]
    result = plan(workloads, placements, nodes)
    tenant = db.execute("SELECT tenant_id FROM clusters WHERE id = ?", (cluster_id,)).fetchone()
    for placement_id in result.deletes:
        report("deleted", placement_event(_placement(db, placement_id), "deleted", "deleted"))
        db.execute("DELETE FROM placements WHERE id = ?", (placement_id,))
    for workload_id, index, node_id in result.creates:
        placement_id = new_id()
        db.execute(
            "INSERT INTO placements (id, workload_id, cluster_id, tenant_id, replica_index,"
            " node_id, container_id, state, message, created_at, updated_at)"
            " VALUES (?, ?, ?, ?, ?, ?, NULL, 'assigned', NULL, ?, ?)",
            (placement_id, workload_id, cluster_id, tenant["tenant_id"], index, node_id, now,
             now),
        )
        report("created", placement_event(_placement(db, placement_id), "created"))
    reset = "" if faults.on("reschedule-keeps-running") else \
        " state = 'assigned', container_id = NULL,"
    for move in result.moves:
        db.execute(
            f"UPDATE placements SET node_id = ?,{reset}"
            " message = ?, updated_at = ? WHERE id = ?",
            (move.to_node, f"rescheduled from node {move.from_node}", now, move.placement_id),
        )
        report("moved", placement_event(_placement(db, move.placement_id), "moved"))
    return result.counts()


def _placement(db: sqlite3.Connection, placement_id: str) -> sqlite3.Row:
    return db.execute("SELECT * FROM placements WHERE id = ?", (placement_id,)).fetchone()
