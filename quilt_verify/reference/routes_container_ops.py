"""Container day-2 routes (quilt-api.md 5.4): logs, exec, metrics, network view, routes."""

from __future__ import annotations

import json
import posixpath
import re

from . import container_network, containers, faults, logfile, procfs
from .clock import iso8601
from .endpoints import Auth, Call, Reply, Spec
from .errors import ApiError, invalid
from .routes_containers import current_row, require_running, state_conflict
from .runtime import SpawnError
from .validation import Body, no_nul

LOG_LIMIT_DEFAULT = 100
LOG_LIMIT_MAX = 10_000
EXEC_TIMEOUT_DEFAULT_MS = 30_000
EXEC_TIMEOUT_MAX_MS = 600_000
_DIGITS = re.compile(r"[0-9]{1,6}")


def logs(call: Call) -> Reply:
    """The last `limit` lines the container's processes wrote, oldest first."""
    raw = call.query.get("limit")
    limit = LOG_LIMIT_DEFAULT
    if raw is not None:
        if not _DIGITS.fullmatch(raw) or not 1 <= int(raw) <= LOG_LIMIT_MAX:
            raise invalid("limit", f"must be an integer 1..{LOG_LIMIT_MAX}",
                          [f"integer 1..{LOG_LIMIT_MAX}"], raw[:32])
        limit = int(raw)
    with call.tx() as db:
        row = current_row(call, db)
    runtime = call.backend.runtime
    if row["state"] not in containers.LIVE_STATES:
        runtime.wait_output(row["id"])  # the last lines of an ended process are in the log
    records = logfile.tail(runtime.log_path(row["id"]), limit)
    if faults.on("logs-drop-stderr"):
        records = [r for r in records if r["stream"] != "stderr"]
    return Reply(200, {"container_id": row["id"], "logs": records})


def exec_command(call: Call) -> Reply:
    body = Body(call.json())
    command = body.str_list("command", required=True, non_empty=True, argv=True)
    assert command is not None
    workdir = body.string("workdir", max_len=4096)
    if workdir is not None:
        no_nul("workdir", workdir)
        if not workdir.startswith("/"):
            raise invalid("workdir", "must be an absolute container path",
                          ["absolute path such as /app"], workdir[:64])
        workdir = posixpath.normpath(workdir)
    timeout_ms = body.integer("timeout_ms", 1, EXEC_TIMEOUT_MAX_MS) or EXEC_TIMEOUT_DEFAULT_MS
    extra_env = body.str_map("environment", env=True) or {}
    row = require_running(call, "exec in")
    environment = {**json.loads(row["environment_json"]), **extra_env}
    try:
        result = call.backend.runtime.exec(row["id"], command,
                                           workdir or row["working_directory"], environment,
                                           timeout_ms / 1000)
    except SpawnError as exc:
        raise invalid("workdir", str(exc)) from None
    exit_code = 0 if faults.on("exec-exit-code-always-zero") else result.exit_code
    return Reply(200, {"container_id": row["id"], "exit_code": exit_code,
                       "stdout": result.stdout, "stderr": result.stderr,
                       "execution_time_ms": result.execution_time_ms,
                       "timed_out": result.timed_out})


def metrics(call: Call) -> Reply:
    """Live figures of the container's main process, read from /proc."""
    row = require_running(call, "read metrics of")
    stats = procfs.read_stats(row["pid"])
    if stats is None:  # it ended just now
        with call.tx() as db:
            raise state_conflict(current_row(call, db), "read metrics of")
    return Reply(200, {
        "container_id": row["id"],
        "pid": row["pid"],
        "state": row["state"],
        "memory_rss_bytes": stats.memory_rss_bytes,
        "cpu_time_ms": stats.cpu_time_ms,
        "threads": stats.threads,
        "uptime_seconds": stats.uptime_seconds,
        "read_at": iso8601(call.now_float()),
    })


def network(call: Call) -> Reply:
    with call.tx() as db:
        row = containers.row_for(db, call.tenant_id, call.params["id"])
        return Reply(200, container_network.view(db, row))


def add_route(call: Call) -> Reply:
    body = Body(call.json())
    destination = container_network.parse_destination(body.raw("destination", required=True))
    with call.tx() as db:
        row = containers.row_for(db, call.tenant_id, call.params["id"])
        container_network.add_route(db, row["id"], destination, call.now_float())
    return Reply(200, {"success": True,
                       "message": f"Route {destination} injected inside container network namespace"})


def remove_route(call: Call) -> Reply:
    destination = container_network.destination_of(call.json(), dict(call.query))
    with call.tx() as db:
        row = containers.row_for(db, call.tenant_id, call.params["id"])
        try:
            container_network.remove_route(db, row["id"], destination)
        except ApiError as err:
            if not (faults.on("route-delete-absent-200") and err.status == 404):
                raise
    return Reply(200, {"success": True, "message": f"Route {destination} removed"})


C = "/api/containers/{id}"
SPECS = [
    Spec("GET", C + "/logs", logs, Auth.TENANT),
    Spec("POST", C + "/exec", exec_command, Auth.TENANT),
    Spec("GET", C + "/metrics", metrics, Auth.TENANT),
    Spec("GET", C + "/network", network, Auth.TENANT),
    Spec("POST", C + "/routes", add_route, Auth.TENANT),
    Spec("DELETE", C + "/routes", remove_route, Auth.TENANT),
]
