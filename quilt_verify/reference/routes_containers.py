"""Container routes (quilt-api.md 5.4): create, list, get, delete."""

from __future__ import annotations

from . import containers
from .endpoints import Auth, Call, Reply, Spec


def create_container(call: Call) -> Reply:
    with call.tx() as db:
        container = containers.create(db, call.backend.runtime, call.tenant_id, call.json(),
                                      call.now_float())
    call.emit("container_update", {"action": "created", "container_id": container["container_id"],
                                   "state": container["state"]})
    return Reply(201, container)


def list_containers(call: Call) -> Reply:
    state = call.query.get("state") or None
    with call.tx() as db:
        items = containers.list_containers(db, call.backend.runtime, call.tenant_id, state,
                                           call.now_float())
    return Reply(200, {"containers": items})


def get_container(call: Call) -> Reply:
    with call.tx() as db:
        return Reply(200, containers.get(db, call.backend.runtime, call.tenant_id,
                                         call.params["id"], call.now_float()))


def delete_container(call: Call) -> Reply:
    """Answer only once the process is gone. The process is stopped outside any transaction
    so a slow stop never holds the database."""
    cid = call.params["id"]
    with call.tx() as db:
        containers.row_for(db, call.tenant_id, cid)
    call.backend.runtime.discard(cid)
    with call.tx() as db:
        containers.delete_row(db, cid)
    call.emit("container_update", {"action": "deleted", "container_id": cid})
    return Reply(200, {"success": True, "message": "Container removed successfully"})


SPECS = [
    Spec("POST", "/api/containers", create_container, Auth.TENANT),
    Spec("GET", "/api/containers", list_containers, Auth.TENANT),
    Spec("GET", "/api/containers/{id}", get_container, Auth.TENANT),
    Spec("DELETE", "/api/containers/{id}", delete_container, Auth.TENANT),
]
