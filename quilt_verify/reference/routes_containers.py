"""Container routes (quilt-api.md 5.4): create, list, get, delete, and the lifecycle
(stop, kill, start). Processes are stopped outside any transaction so a slow stop never
holds the database; spawning happens inside one (it is quick)."""

from __future__ import annotations

import json
import sqlite3
from typing import Any

from . import containers, faults
from .endpoints import Auth, Call, Reply, Spec
from .errors import ApiError, invalid
from .runtime import SpawnError
from .validation import Body

STOP_TIMEOUT_DEFAULT_S = 5
STOP_TIMEOUT_MAX_S = 60


def create_container(call: Call) -> Reply:
    """Reserve the name and address, start the process outside any transaction, then record
    it running. Only the running container is announced; a failed start leaves nothing."""
    spec = containers.parse_spec(call.json())
    runtime = call.backend.runtime
    with call.tx() as db:
        cid = containers.reserve(db, call.tenant_id, spec, call.now_float())
    try:
        pid = runtime.start(cid, spec["command"], spec["working_directory"], spec["environment"])
    except BaseException as exc:
        runtime.discard(cid)
        with call.tx() as db:
            containers.unreserve(db, cid)
        if isinstance(exc, SpawnError):
            raise invalid("command", str(exc)) from None
        raise
    with call.tx() as db:
        container = containers.started(db, runtime, call.tenant_id, cid, pid, call.now_float(),
                                       call.emitter)
    return Reply(201, container)


def list_containers(call: Call) -> Reply:
    state = call.query.get("state") or None
    with call.tx() as db:
        items = containers.list_containers(db, call.backend.runtime, call.tenant_id, state,
                                           call.now_float(), call.emitter)
    return Reply(200, {"containers": items})


def get_container(call: Call) -> Reply:
    with call.tx() as db:
        return Reply(200, containers.get(db, call.backend.runtime, call.tenant_id,
                                         call.params["id"], call.now_float(), call.emitter))


def delete_container(call: Call) -> Reply:
    """Answer only once the process is gone."""
    cid = call.params["id"]
    with call.tx() as db:
        row = containers.row_for(db, call.tenant_id, cid)
        if containers.spawning(row):  # its create request is still starting the process
            raise ApiError(409, "CONFLICT", "the container is still being created; retry",
                           {"state": row["state"]})
    call.backend.runtime.discard(cid)
    with call.tx() as db:
        containers.delete_row(db, containers.row_for(db, call.tenant_id, cid), call.emitter)
    return Reply(200, {"success": True, "message": "Container removed successfully"})


def current_row(call: Call, db: sqlite3.Connection) -> sqlite3.Row:
    """The tenant's container row, brought in line with its process."""
    row = containers.row_for(db, call.tenant_id, call.params["id"])
    return containers.refresh(db, call.backend.runtime, row, call.now_float(), call.emitter)


def state_conflict(row: sqlite3.Row, action: str) -> ApiError:
    return ApiError(409, "CONFLICT", f"cannot {action} container in state {row['state']}",
                    {"state": row["state"], "exit_code": row["exit_code"]},
                    hint="start the container first" if action != "start" else None)


def require_running(call: Call, action: str) -> sqlite3.Row:
    with call.tx() as db:
        row = current_row(call, db)
        if row["state"] != "running":
            raise state_conflict(row, action)
        return row


def _stopped(call: Call, row: sqlite3.Row, exit_code: int | None) -> Reply:
    with call.tx() as db:
        row = containers.mark_exited(db, row, exit_code, call.now_float(), call.emitter)
    return Reply(200, {"success": True, "container_id": row["id"], "state": row["state"],
                       "exit_code": row["exit_code"]})


def stop_container(call: Call) -> Reply:
    """Graceful stop: SIGTERM to the group, SIGKILL after `timeout_s` (0..60, default 5)."""
    body = Body(call.json(default={}))
    timeout = body.integer("timeout_s", 0, STOP_TIMEOUT_MAX_S)
    row = require_running(call, "stop")
    code = call.backend.runtime.stop(row["id"], STOP_TIMEOUT_DEFAULT_S if timeout is None
                                     else timeout)
    return _stopped(call, row, code)


def kill_container(call: Call) -> Reply:
    Body(call.json(default={}))
    row = require_running(call, "kill")
    if faults.on("kill-leaves-running"):
        return Reply(200, {"success": True})
    return _stopped(call, row, call.backend.runtime.kill(row["id"]))


def start_container(call: Call) -> Reply:
    """Run the container's command again: new pid, same id and address, log appended."""
    Body(call.json(default={}))
    with call.tx() as db:
        row = current_row(call, db)
        if row["state"] in containers.LIVE_STATES:
            raise state_conflict(row, "start")
        command: list[str] | None = (None if row["command_json"] is None
                                     else json.loads(row["command_json"]))
        environment: dict[str, Any] = json.loads(row["environment_json"])
        try:
            pid = call.backend.runtime.start(row["id"], command, row["working_directory"],
                                             environment)
        except SpawnError as exc:
            raise invalid("command", str(exc)) from None
        row = containers.mark_started(db, row["id"], pid, call.now_float(), call.emitter)
    return Reply(200, {"success": True, "container_id": row["id"], "state": row["state"],
                       "pid": row["pid"]})


C = "/api/containers/{id}"
SPECS = [
    Spec("POST", "/api/containers", create_container, Auth.TENANT),
    Spec("GET", "/api/containers", list_containers, Auth.TENANT),
    Spec("GET", C, get_container, Auth.TENANT),
    Spec("DELETE", C, delete_container, Auth.TENANT),
    Spec("POST", C + "/stop", stop_container, Auth.TENANT),
    Spec("POST", C + "/kill", kill_container, Auth.TENANT),
    Spec("POST", C + "/start", start_container, Auth.TENANT),
]
