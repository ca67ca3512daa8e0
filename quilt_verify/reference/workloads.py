"""Workloads (spec validation and CRUD) and placements (tenant list, agent view, report)."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from . import faults
from .errors import conflict, not_found
from .tokens import new_id
from .validation import Body

REPLICAS_MAX = 10_000
MEMORY_MAX_MB = 16 * 1024 * 1024
CPU_MAX_PERCENT = 100_000.0


def normalize_spec(data: Any) -> dict[str, Any]:
    """Validate a workload spec and return it with every field present (defaults filled)."""
    body = Body(data)
    return {
        "name": body.string("name", required=True),
        "replicas": body.integer("replicas", 1, REPLICAS_MAX, required=True),
        "command": body.str_list("command", required=True, non_empty=True, argv=True),
        "image": body.string("image", max_len=1024),
        "environment": body.str_map("environment", env=True) or {},
        "labels": body.str_map("labels") or {},
        "memory_limit_mb": body.integer("memory_limit_mb", 1, MEMORY_MAX_MB),
        "cpu_limit_percent": body.number("cpu_limit_percent", 0.0, CPU_MAX_PERCENT),
        "strict": bool(body.boolean("strict")),
    }


def workload_view(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "cluster_id": row["cluster_id"],
        "name": row["name"],
        "spec": json.loads(row["spec_json"]),
        "status": json.loads(row["status_json"]),
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


def placement_view(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "workload_id": row["workload_id"],
        "cluster_id": row["cluster_id"],
        "tenant_id": row["tenant_id"],
        "replica_index": row["replica_index"],
        "node_id": row["node_id"],
        "container_id": row["container_id"],
        "state": row["state"],
        "message": row["message"],
        "created_at": row["created_at"],
        "updated_at": row["updated_at"],
    }


def placement_event(row: sqlite3.Row, action: str, state: str | None = None) -> dict[str, Any]:
    """The `placement_update` event data of a placement row."""
    return {"cluster_id": row["cluster_id"], "placement_id": row["id"],
            "workload_id": row["workload_id"], "node_id": row["node_id"],
            "state": state or row["state"], "container_id": row["container_id"],
            "action": action}


def workload_event(row: sqlite3.Row, action: str) -> dict[str, Any]:
    """The `workload_update` event data of a workload row."""
    return {"cluster_id": row["cluster_id"], "workload_id": row["id"], "action": action,
            "replicas": json.loads(row["spec_json"])["replicas"]}


def placements_of(db: sqlite3.Connection, workload_id: str) -> list[sqlite3.Row]:
    return db.execute(
        "SELECT * FROM placements WHERE workload_id = ? ORDER BY replica_index", (workload_id,)
    ).fetchall()


def _name_taken(db: sqlite3.Connection, cluster_id: str, name: str, other_than: str = "") -> None:
    row = db.execute(
        "SELECT 1 FROM workloads WHERE cluster_id = ? AND name = ? AND id != ?",
        (cluster_id, name, other_than),
    ).fetchone()
    if row:
        raise conflict(f"workload name already exists in this cluster: {name}", "name")


def workload_row(db: sqlite3.Connection, cluster_id: str, workload_id: str) -> sqlite3.Row:
    row = db.execute(
        "SELECT * FROM workloads WHERE id = ? AND cluster_id = ?", (workload_id, cluster_id)
    ).fetchone()
    if row is None:
        raise not_found("workload", workload_id)
    return row


def create(db: sqlite3.Connection, cluster: sqlite3.Row, data: Any, now: int) -> dict[str, Any]:
    """Create a workload; no placements are made until the cluster is reconciled."""
    spec = normalize_spec(data)
    _name_taken(db, cluster["id"], spec["name"])
    workload_id = new_id()
    db.execute(
        "INSERT INTO workloads (id, cluster_id, tenant_id, name, spec_json, status_json,"
        " created_at, updated_at) VALUES (?, ?, ?, ?, ?, '{}', ?, ?)",
        (workload_id, cluster["id"], cluster["tenant_id"], spec["name"], json.dumps(spec), now,
         now),
    )
    return workload_view(workload_row(db, cluster["id"], workload_id))


def replace(db: sqlite3.Connection, cluster_id: str, workload_id: str, data: Any,
            now: int) -> dict[str, Any]:
    """Replace the full spec (same validation as create); no reconcile."""
    workload_row(db, cluster_id, workload_id)
    spec = normalize_spec(data)
    _name_taken(db, cluster_id, spec["name"], workload_id)
    db.execute(
        "UPDATE workloads SET name = ?, spec_json = ?, updated_at = ? WHERE id = ?",
        (spec["name"], json.dumps(spec), now, workload_id),
    )
    return workload_view(workload_row(db, cluster_id, workload_id))


def list_workloads(db: sqlite3.Connection, cluster_id: str) -> list[dict[str, Any]]:
    rows = db.execute("SELECT * FROM workloads WHERE cluster_id = ? ORDER BY seq", (cluster_id,))
    return [workload_view(row) for row in rows]


def delete(db: sqlite3.Connection, cluster_id: str, workload_id: str) -> None:
    """Delete a workload; its placements cascade."""
    workload_row(db, cluster_id, workload_id)
    db.execute("DELETE FROM workloads WHERE id = ?", (workload_id,))


_PLACEMENTS_IN_ORDER = (
    "SELECT p.* FROM placements p JOIN workloads w ON w.id = p.workload_id"
    " WHERE {where} ORDER BY w.seq, p.replica_index"
)


def list_placements(db: sqlite3.Connection, cluster_id: str) -> list[dict[str, Any]]:
    rows = db.execute(_PLACEMENTS_IN_ORDER.format(where="p.cluster_id = ?"), (cluster_id,))
    return [placement_view(row) for row in rows]


def assignments(db: sqlite3.Connection, node_id: str) -> list[dict[str, Any]]:
    """What an agent must run: its placements, each with the workload id, name and spec."""
    rows = db.execute(
        "SELECT p.*, w.name AS w_name, w.spec_json AS w_spec FROM placements p"
        " JOIN workloads w ON w.id = p.workload_id WHERE "
        + ("p.cluster_id = (SELECT cluster_id FROM nodes WHERE id = ?)"
           if faults.on("agent-sees-foreign-assignments") else "p.node_id = ?")
        + " ORDER BY w.seq, p.replica_index",
        (node_id,),
    )
    return [
        {
            "placement": placement_view(row),
            "workload": {
                "id": row["workload_id"],
                "name": row["w_name"],
                "spec": json.loads(row["w_spec"]),
            },
        }
        for row in rows
    ]


def report(db: sqlite3.Connection, node_id: str, placement_id: str, data: Any,
           now: int) -> sqlite3.Row:
    """An agent reports a placement's state; 404 unless the placement is on that node.

    `state` is any non-empty string (no enumeration, as in CORE); `message` is replaced by the
    sent value (null when absent); `container_id` is only overwritten when sent non-null."""
    row = db.execute(
        "SELECT * FROM placements WHERE id = ? AND node_id = ?", (placement_id, node_id)
    ).fetchone()
    if row is None:
        raise not_found("placement", placement_id)
    body = Body(data)
    state = body.string("state", required=True, max_len=64)
    container_id = body.string("container_id", max_len=255)
    if faults.on("report-drops-container-id"):
        container_id = None
    message = body.string("message", max_len=4096, allow_empty=True, controls=True)
    db.execute(
        "UPDATE placements SET state = ?, message = ?, container_id = COALESCE(?, container_id),"
        " updated_at = ? WHERE id = ?",
        (state, message, container_id, now, placement_id),
    )
    return db.execute("SELECT * FROM placements WHERE id = ?", (placement_id,)).fetchone()
