"""Container records: validation, create/get/list/delete, and keeping the recorded state in
step with the real process (polled on every read, and recorded as soon as the process's pump
sees it end). Every state change is announced as a `container_update` event."""

from __future__ import annotations

import ipaddress
import json
import posixpath
import socket
import sqlite3
from typing import Any

from .clock import iso8601
from .errors import ApiError, conflict, invalid, not_found
from .events import Emit
from .runtime import ProcessRuntime
from .tokens import new_id
from .validation import Body, no_nul

LIVE_STATES = ("created", "starting", "running")
NAME_MAX = 128
MEMORY_MAX_MB = 16 * 1024 * 1024
CPU_MAX_PERCENT = 100_000.0
IP_POOL = ipaddress.IPv4Network("10.42.0.0/16")
IP_FIRST = int(IP_POOL.network_address) + 2  # .1 is the gateway
IP_LAST = int(IP_POOL.broadcast_address) - 1


def parse_spec(data: Any) -> dict[str, Any]:
    """Validate a container create body; returns the normalized fields."""
    body = Body(data)
    name = body.string("name", required=True, max_len=NAME_MAX)
    assert name is not None
    if "/" in name:
        raise invalid("name", "must not contain '/'", None, name[:64])
    workdir = body.string("working_directory", max_len=4096) or "/"
    no_nul("working_directory", workdir)
    if not workdir.startswith("/"):
        raise invalid("working_directory", "must be an absolute container path",
                      ["absolute path such as /app"], workdir[:64])
    gpu_count = body.integer("gpu_count", 0, 64) or 0
    gpu_ids = body.str_list("gpu_ids") or []
    if gpu_count or gpu_ids:
        raise ApiError(503, "CAPACITY_FULL", "the reference backend has no GPU capacity",
                       {"field": "gpu_count"}, hint="create the container without GPUs")
    return {
        "name": name,
        "image": body.string("image", max_len=1024),
        "command": body.str_list("command", non_empty=True, argv=True),
        "environment": body.str_map("environment", env=True) or {},
        "labels": body.str_map("labels") or {},
        "working_directory": "/" + posixpath.normpath(workdir).lstrip("/"),
        "memory_limit_mb": body.integer("memory_limit_mb", 1, MEMORY_MAX_MB),
        "cpu_limit_percent": body.number("cpu_limit_percent", 0.0, CPU_MAX_PERCENT),
        "strict": bool(body.boolean("strict")),
    }


def container_view(row: sqlite3.Row) -> dict[str, Any]:
    return {
        "container_id": row["id"],
        "tenant_id": row["tenant_id"],
        "name": row["name"],
        "state": row["state"],
        "pid": row["pid"],
        "exit_code": row["exit_code"],
        "ip_address": row["ip_address"],
        "created_at": iso8601(row["created_at"]),
        "started_at": iso8601(row["started_at"]),
        "exited_at": iso8601(row["exited_at"]),
        "working_directory": row["working_directory"],
        "memory_limit_mb": row["memory_limit_mb"],
        "cpu_limit_percent": row["cpu_limit_percent"],
        "strict": bool(row["strict"]),
        "gpu_count": 0,
        "gpu_ids": [],
        "labels": json.loads(row["labels_json"]),
        "image": row["image"],
        "command": None if row["command_json"] is None else json.loads(row["command_json"]),
    }


def allocate_ip(db: sqlite3.Connection) -> str:
    """The lowest free address of 10.42.0.0/16 from .2 upward among existing containers."""
    # inet_aton parses ~10x faster than IPv4Address: this runs over every container per create.
    used = {int.from_bytes(socket.inet_aton(row[0]), "big")
            for row in db.execute("SELECT ip_address FROM containers")}
    for candidate in range(IP_FIRST, IP_LAST + 1):
        if candidate not in used:
            return str(ipaddress.IPv4Address(candidate))
    raise ApiError(503, "CAPACITY_FULL", "the container address pool is exhausted")


def event_data(row: sqlite3.Row, state: str | None = None) -> dict[str, Any]:
    return {"container_id": row["id"], "name": row["name"], "state": state or row["state"],
            "exit_code": row["exit_code"]}


def announce(db: sqlite3.Connection, emit: Emit, container_id: str) -> sqlite3.Row:
    """Emit the container's current state; returns its row."""
    row = db.execute("SELECT * FROM containers WHERE id = ?", (container_id,)).fetchone()
    emit(row["tenant_id"], "container_update", event_data(row))
    return row


def reserve(db: sqlite3.Connection, tenant_id: str, spec: dict[str, Any], now: float) -> str:
    """Step 1 of create (in a transaction): claim the name and an address with a row in state
    `created` and no pid; returns the new id. The process is started outside the transaction
    (spawning takes milliseconds, and holding the store meanwhile stalls every request)."""
    taken = db.execute(
        "SELECT 1 FROM containers WHERE tenant_id = ? AND name = ?", (tenant_id, spec["name"])
    ).fetchone()
    if taken:
        raise conflict(f"container name already exists: {spec['name']}", "name")
    container_id = new_id()
    db.execute(
        "INSERT INTO containers (id, tenant_id, name, image, command_json, environment_json,"
        " labels_json, working_directory, memory_limit_mb, cpu_limit_percent, strict, state,"
        " pid, ip_address, created_at, started_at)"
        " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, 'created', NULL, ?, ?, NULL)",
        (
            container_id, tenant_id, spec["name"], spec["image"],
            None if spec["command"] is None else json.dumps(spec["command"]),
            json.dumps(spec["environment"]), json.dumps(spec["labels"]),
            spec["working_directory"], spec["memory_limit_mb"], spec["cpu_limit_percent"],
            int(spec["strict"]), allocate_ip(db), now,
        ),
    )
    return container_id


def spawning(row: sqlite3.Row) -> bool:
    """A row whose create request is still starting its process (see `reserve`)."""
    return row["state"] == "created" and row["pid"] is None


def started(db: sqlite3.Connection, runtime: ProcessRuntime, tenant_id: str, container_id: str,
            pid: int, now: float, emit: Emit) -> dict[str, Any]:
    """Step 3 of create (in a transaction): record the running process and announce it."""
    changed = db.execute(
        "UPDATE containers SET state = 'running', pid = ?, started_at = ? WHERE id = ?"
        " AND pid IS NULL", (pid, now, container_id),
    ).rowcount
    if not changed:  # the reservation is gone (nothing deletes one, but never leak a process)
        runtime.discard(container_id)
        raise not_found("container", container_id)
    announce(db, emit, container_id)
    return container_view(refresh(db, runtime, row_for(db, tenant_id, container_id), now, emit))


def unreserve(db: sqlite3.Connection, container_id: str) -> None:
    """The process could not be started: the reservation goes (it was never announced)."""
    db.execute("DELETE FROM containers WHERE id = ? AND pid IS NULL", (container_id,))


def row_for(db: sqlite3.Connection, tenant_id: str, container_id: str) -> sqlite3.Row:
    """The tenant's container row; 404 for unknown ids and other tenants' containers."""
    row = db.execute(
        "SELECT * FROM containers WHERE id = ? AND tenant_id = ?", (container_id, tenant_id)
    ).fetchone()
    if row is None:
        raise not_found("container", container_id)
    return row


def refresh(db: sqlite3.Connection, runtime: ProcessRuntime, row: sqlite3.Row,
            now: float, emit: Emit) -> sqlite3.Row:
    """Bring a live row in line with its process: `exited` (with exit code) once it ended."""
    if row["state"] not in LIVE_STATES or spawning(row):
        return row
    status = runtime.poll(row["id"])
    if status is not None and status.running:
        return row
    return mark_exited(db, row, None if status is None else status.exit_code, now, emit)


def mark_exited(db: sqlite3.Connection, row: sqlite3.Row, exit_code: int | None, now: float,
                emit: Emit) -> sqlite3.Row:
    """Record the end of the run `row` describes (same pid, still live); a no-op when that
    was already recorded. Returns the current row."""
    changed = db.execute(
        "UPDATE containers SET state = 'exited', exit_code = ?, exited_at = ?, pid = NULL"
        " WHERE id = ? AND pid IS ? AND state IN ('created', 'starting', 'running')",
        (exit_code, now, row["id"], row["pid"]),
    ).rowcount
    if changed:
        return announce(db, emit, row["id"])
    return db.execute("SELECT * FROM containers WHERE id = ?", (row["id"],)).fetchone()


def mark_started(db: sqlite3.Connection, container_id: str, pid: int, now: float,
                 emit: Emit) -> sqlite3.Row:
    db.execute(
        "UPDATE containers SET state = 'running', pid = ?, exit_code = NULL, started_at = ?,"
        " exited_at = NULL WHERE id = ?",
        (pid, now, container_id),
    )
    return announce(db, emit, container_id)


def process_ended(db: sqlite3.Connection, container_id: str, pid: int, exit_code: int,
                  now: float, emit: Emit) -> None:
    """The runtime saw process `pid` of the container end: record it if it is the current run."""
    row = db.execute(
        "SELECT * FROM containers WHERE id = ? AND pid = ?", (container_id, pid)
    ).fetchone()
    if row is not None:
        mark_exited(db, row, exit_code, now, emit)


def get(db: sqlite3.Connection, runtime: ProcessRuntime, tenant_id: str, container_id: str,
        now: float, emit: Emit) -> dict[str, Any]:
    return container_view(refresh(db, runtime, row_for(db, tenant_id, container_id), now, emit))


def list_containers(db: sqlite3.Connection, runtime: ProcessRuntime, tenant_id: str,
                    state: str | None, now: float, emit: Emit) -> list[dict[str, Any]]:
    """The tenant's containers in creation order; `state` filters by exact state."""
    rows = db.execute(
        "SELECT * FROM containers WHERE tenant_id = ? ORDER BY seq", (tenant_id,)
    ).fetchall()
    views = [container_view(refresh(db, runtime, row, now, emit)) for row in rows]
    return [view for view in views if state is None or view["state"] == state]


def delete_row(db: sqlite3.Connection, row: sqlite3.Row, emit: Emit) -> None:
    db.execute("DELETE FROM containers WHERE id = ?", (row["id"],))
    emit(row["tenant_id"], "container_update", event_data(row, "deleted"))


def recover(db: sqlite3.Connection, runtime: ProcessRuntime, now: float) -> int:
    """At startup: containers recorded live whose process is not ours are marked `exited`
    (a process provably left by an earlier run is killed). Returns how many were marked."""
    rows = db.execute(
        "SELECT id, pid FROM containers WHERE state IN ('created', 'starting', 'running')"
    ).fetchall()
    marked = 0
    for row in rows:
        if runtime.owns(row["id"]):
            continue
        if row["pid"]:
            runtime.kill_stray(row["id"], row["pid"])
        db.execute(
            "UPDATE containers SET state = 'exited', exited_at = ?, pid = NULL WHERE id = ?",
            (now, row["id"]),
        )
        marked += 1
    return marked


def record_stopped(db: sqlite3.Connection, exit_codes: dict[str, int], now: float) -> None:
    """At shutdown: record the exit codes of the processes the runtime just stopped."""
    for container_id, code in exit_codes.items():
        db.execute(
            "UPDATE containers SET state = 'exited', exit_code = ?, exited_at = ?, pid = NULL"
            " WHERE id = ? AND state IN ('created', 'starting', 'running')",
            (code, now, container_id),
        )

