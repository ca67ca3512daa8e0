"""Nodes: registration, node-token auth, heartbeat, the tenant view, drain and delete."""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass
from typing import Any

from . import faults, join_tokens
from .cidr import lowest_free_subnet
from .errors import conflict, not_found, unauthorized
from .tokens import NODE_TOKEN_PREFIX, display_prefix, hash_secret, new_id, new_secret, same_hash
from .validation import Body, json_string_field, string_map, wrong_type

HEARTBEAT_STATES = ("ready", "not_ready")
NODE_HINT = "send the node_token returned by register in X-Quilt-Node-Token"
EGRESS_MAX_MBIT = 1_000_000


@dataclass(frozen=True)
class NodeMeta:
    """The optional descriptive fields an agent may send on register and heartbeat.

    A field is None when the request did not carry it (or carried null)."""

    public_ip: str | None
    private_ip: str | None
    agent_version: str | None
    labels: dict[str, str] | None
    taints: list[Any] | None
    gpu_devices: list[dict[str, Any]] | None


def node_view(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "id": row["id"],
        "cluster_id": row["cluster_id"],
        "tenant_id": row["tenant_id"],
        "name": row["name"],
        "state": row["state"],
        "public_ip": row["public_ip"],
        "private_ip": row["private_ip"],
        "agent_version": row["agent_version"],
        "labels": json.loads(row["labels_json"]),
        "taints": json.loads(row["taints_json"]),
        "pod_cidr": row["pod_cidr"],
        "gpu_inventory": json.loads(row["gpu_json"]),
        "last_heartbeat_at": row["last_heartbeat_at"],
        "created_at": row["created_at"],
    }


def allocation_view(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "node_id": row["id"],
        "cluster_id": row["cluster_id"],
        "pod_cidr": row["pod_cidr"],
        "bridge_name": row["bridge_name"],
        "dns_port": row["dns_port"],
        "egress_limit_mbit": row["egress_limit_mbit"],
        "allocated_at": row["allocated_at"],
    }


def _labels(body: Body) -> dict[str, str] | None:
    """`labels` (object of strings) wins over `labels_json` (the same object as JSON text)."""
    labels = body.str_map("labels")
    if labels is not None:
        return labels
    decoded = json_string_field(body, "labels_json")
    return None if decoded is None else string_map("labels_json", decoded)


def _taints(body: Body) -> list[Any] | None:
    """`taints` (array) wins over `taints_json`; items are strings or objects."""
    field, value = "taints", body.raw("taints")
    if value is None:
        field, value = "taints_json", json_string_field(body, "taints_json")
    if value is None:
        return None
    if not isinstance(value, list):
        raise wrong_type(field, "array", value)
    for index, item in enumerate(value):
        if not isinstance(item, str | dict):
            raise wrong_type(f"{field}[{index}]", "string or object", item)
    return value


def _gpu_devices(body: Body) -> list[dict[str, Any]] | None:
    value = body.raw("gpu_devices")
    if value is None:
        return None
    if not isinstance(value, list):
        raise wrong_type("gpu_devices", "array of objects", value)
    for index, item in enumerate(value):
        if not isinstance(item, dict):
            raise wrong_type(f"gpu_devices[{index}]", "object", item)
    return value


def parse_meta(body: Body) -> NodeMeta:
    return NodeMeta(
        public_ip=body.ip("public_ip"),
        private_ip=body.ip("private_ip"),
        agent_version=body.string("agent_version"),
        labels=_labels(body),
        taints=_taints(body),
        gpu_devices=_gpu_devices(body),
    )


def register(db: sqlite3.Connection, join_token: sqlite3.Row, data: Any,
             now: int) -> dict[str, Any]:
    """Register a node in the join token's cluster (the token was checked by the caller)."""
    cluster_id = join_token["cluster_id"]
    cluster = db.execute("SELECT * FROM clusters WHERE id = ?", (cluster_id,)).fetchone()
    body = Body(data)
    name = body.string("name", required=True)
    bridge_name = body.string("bridge_name", required=True)
    dns_port = body.integer("dns_port", 1, 65535, required=True)
    egress = body.integer("egress_limit_mbit", 0, EGRESS_MAX_MBIT, required=True)
    meta = parse_meta(body)
    live = db.execute(
        "SELECT name, pod_cidr FROM nodes WHERE cluster_id = ? AND state != 'deleted'",
        (cluster_id,),
    ).fetchall()
    if any(row["name"] == name for row in live):
        raise conflict(f"node name already registered in this cluster: {name}", "name")
    subnet = lowest_free_subnet(
        cluster["pod_cidr"], cluster["node_cidr_prefix"], (row["pod_cidr"] for row in live)
    )
    if subnet is None:
        raise conflict("the cluster pod_cidr has no free node subnet left", "pod_cidr")
    node_id, node_token = new_id(), new_secret(NODE_TOKEN_PREFIX)
    db.execute(
        "INSERT INTO nodes (id, cluster_id, tenant_id, name, state, public_ip, private_ip,"
        " agent_version, labels_json, taints_json, gpu_json, pod_cidr, bridge_name, dns_port,"
        " egress_limit_mbit, allocated_at, token_hash, token_prefix, created_at, updated_at)"
        " VALUES (?, ?, ?, ?, 'registered', ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
        (
            node_id, cluster_id, cluster["tenant_id"], name, meta.public_ip, meta.private_ip,
            meta.agent_version, json.dumps(meta.labels or {}), json.dumps(meta.taints or []),
            json.dumps(meta.gpu_devices or []), str(subnet), bridge_name, dns_port, egress, now,
            hash_secret(node_token), display_prefix(node_token), now, now,
        ),
    )
    join_tokens.consume(db, join_token["id"], now)
    row = db.execute("SELECT * FROM nodes WHERE id = ?", (node_id,)).fetchone()
    return {"node": node_view(row), "allocation": allocation_view(row), "node_token": node_token}


def authenticate(db: sqlite3.Connection, cluster_id: str, node_id: str,
                 token: str | None) -> sqlite3.Row:
    """The node row if `token` is the live token of exactly node `node_id` in `cluster_id`."""
    if not token:
        raise unauthorized("missing node token", NODE_HINT)
    digest = hash_secret(token)
    row = db.execute(
        "SELECT * FROM nodes WHERE id = ? AND cluster_id = ?", (node_id, cluster_id)
    ).fetchone()
    if (
        row is None
        or not same_hash(row["token_hash"], digest)
        or (not faults.on("deleted-node-token-accepted")
            and (row["revoked_at"] is not None or row["state"] == "deleted"))
    ):
        raise unauthorized("invalid or revoked node token", NODE_HINT)
    return row


def heartbeat(db: sqlite3.Connection, node: sqlite3.Row, data: Any, now: int) -> None:
    """Record a heartbeat: `last_heartbeat_at = now` and the reported state.

    A `draining` node stays `draining` whatever it reports: drain is the tenant's decision,
    and a heartbeat must not silently make the node eligible for work again. Optional
    descriptive fields are updated only when sent non-null.
    """
    body = Body(data)
    state = body.choice("state", HEARTBEAT_STATES, required=True)
    meta = parse_meta(body)
    new_state = "draining" if node["state"] == "draining" else state
    updates: dict[str, Any] = {"state": new_state, "last_heartbeat_at": now, "updated_at": now}
    if meta.public_ip is not None:
        updates["public_ip"] = meta.public_ip
    if meta.private_ip is not None:
        updates["private_ip"] = meta.private_ip
    if meta.agent_version is not None:
        updates["agent_version"] = meta.agent_version
    if meta.labels is not None:
        updates["labels_json"] = json.dumps(meta.labels)
    if meta.taints is not None:
        updates["taints_json"] = json.dumps(meta.taints)
    if meta.gpu_devices is not None:
        updates["gpu_json"] = json.dumps(meta.gpu_devices)
    assignments = ", ".join(f"{column} = ?" for column in updates)
    db.execute(f"UPDATE nodes SET {assignments} WHERE id = ?", (*updates.values(), node["id"]))


def node_event(cluster_id: str, node_id: str, state: str, action: str) -> dict[str, Any]:
    """The `node_update` event data."""
    return {"cluster_id": cluster_id, "node_id": node_id, "state": state, "action": action}


def state_of(db: sqlite3.Connection, node_id: str) -> str | None:
    row = db.execute("SELECT state FROM nodes WHERE id = ?", (node_id,)).fetchone()
    return None if row is None else row["state"]


def live_node_row(db: sqlite3.Connection, cluster_id: str, node_id: str) -> sqlite3.Row:
    """A non-deleted node of the cluster (the caller has checked the cluster's tenant)."""
    row = db.execute(
        "SELECT * FROM nodes WHERE id = ? AND cluster_id = ? AND state != 'deleted'",
        (node_id, cluster_id),
    ).fetchone()
    if row is None:
        raise not_found("node", node_id)
    return row


def list_nodes(db: sqlite3.Connection, cluster_id: str) -> list[dict[str, Any]]:
    rows = db.execute(
        "SELECT * FROM nodes WHERE cluster_id = ? AND state != 'deleted' ORDER BY seq",
        (cluster_id,),
    )
    return [node_view(row) for row in rows]


def drain(db: sqlite3.Connection, cluster_id: str, node_id: str, now: int) -> None:
    live_node_row(db, cluster_id, node_id)
    db.execute(
        "UPDATE nodes SET state = 'draining', updated_at = ? WHERE id = ?", (now, node_id)
    )


def delete(db: sqlite3.Connection, cluster_id: str, node_id: str, now: int) -> None:
    """Tenant delete and agent deregister: state `deleted`, token revoked, off the read
    surface. Its placements stay until the next reconcile moves them."""
    live_node_row(db, cluster_id, node_id)
    db.execute(
        "UPDATE nodes SET state = 'deleted', revoked_at = ?, updated_at = ? WHERE id = ?",
        (now, now, node_id),
    )

