"""A simulated node agent (the kubelet role). It speaks HTTP only, through the client.

It registers with a join token, keeps its node token, heartbeats, reads its allocation and
assignments, materializes each assignment as a container through the tenant runtime API, and
reports ``running`` with the ``container_id``; containers of placements it no longer holds are
deleted on the next :meth:`SimulatedAgent.sync`.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from quilt_verify.client import QuiltClient, Registration
from quilt_verify.errors import QuiltAPIError
from quilt_verify.ledger import Ledger
from quilt_verify.polling import wait_for

AGENT_VERSION = "quilt-verify-agent/0.1.0"
STARTING_STATES = ("created", "starting", "pending")


@dataclass
class SyncResult:
    """What one pass of the agent loop did, by placement id."""

    started: dict[str, str] = field(default_factory=dict)
    reported: dict[str, str] = field(default_factory=dict)
    removed: dict[str, str] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)


class SimulatedAgent:
    """One node. ``client`` is the tenant client (agent calls carry only the node credential)."""

    def __init__(
        self,
        client: QuiltClient,
        cluster_id: str,
        name: str,
        *,
        ledger: Ledger | None = None,
        on_secret: Callable[[str, str], None] | None = None,
        bridge_name: str = "qvbr0",
        dns_port: int = 1053,
        egress_limit_mbit: int = 100,
        private_ip: str = "10.0.0.10",
        container_timeout: float = 30.0,
    ) -> None:
        self.client = client
        self.cluster_id = cluster_id
        self.name = name
        self.ledger = ledger
        self._on_secret = on_secret or (lambda _value, _label: None)
        self.bridge_name = bridge_name
        self.dns_port = dns_port
        self.egress_limit_mbit = egress_limit_mbit
        self.private_ip = private_ip
        self.container_timeout = container_timeout
        self.node_id: str | None = None
        self.node_token: str | None = None
        self.registration: Registration | None = None
        self.containers: dict[str, str] = {}  # placement id -> container id
        self.created: list[str] = []  # every container id this agent ever created

    # -- lifecycle -----------------------------------------------------------------------------
    def registration_body(self) -> dict[str, Any]:
        """The full quiltc field set (labels and taints as JSON-encoded strings)."""
        return {
            "name": self.name,
            "public_ip": None,
            "private_ip": self.private_ip,
            "agent_version": AGENT_VERSION,
            "labels_json": json.dumps({"quilt-verify/agent": "simulated"}),
            "taints_json": json.dumps([]),
            "bridge_name": self.bridge_name,
            "dns_port": self.dns_port,
            "egress_limit_mbit": self.egress_limit_mbit,
        }

    def register(self, join_token: str) -> Registration:
        self._on_secret(join_token, "join_token")
        reg = self.client.agent_register(self.cluster_id, join_token, self.registration_body())
        self._on_secret(reg.node_token, "node_token")
        self.registration, self.node_id, self.node_token = reg, reg.node_id, reg.node_token
        if self.ledger is not None:
            self.ledger.track(self.client, "node", reg.node_id, name=self.name,
                              cluster_id=self.cluster_id)
        return reg

    def _creds(self) -> tuple[str, str, str]:
        if not self.node_id or not self.node_token:
            raise RuntimeError(f"agent {self.name} is not registered")
        return self.cluster_id, self.node_id, self.node_token

    def heartbeat(self, state: str = "ready") -> Any:
        cid, nid, token = self._creds()
        return self.client.agent_heartbeat(cid, nid, token,
                                           {"state": state, "agent_version": AGENT_VERSION})

    def allocation(self) -> dict[str, Any]:
        return self.client.agent_allocation(*self._creds())

    def assignments(self) -> list[dict[str, Any]]:
        return self.client.agent_assignments(*self._creds())

    def deregister(self) -> Any:
        cid, nid, token = self._creds()
        result = self.client.agent_deregister(cid, nid, token)
        if self.ledger is not None:
            self.ledger.discard("node", nid)
        return result

    # -- the agent loop ---------------------------------------------------------------------------
    def sync(self) -> SyncResult:
        """One pass: materialize new assignments, report them running, drop vanished ones."""
        cid, nid, token = self._creds()
        result = SyncResult()
        assigned = {a["placement"]["id"]: a for a in self.assignments()}
        for pid in [p for p in self.containers if p not in assigned]:
            container_id = self.containers.pop(pid)
            self._remove_container(container_id)
            result.removed[pid] = container_id
        for pid, assignment in assigned.items():
            placement = assignment["placement"]
            container_id = self.containers.get(pid)
            created: dict[str, Any] | None = None
            if container_id is None:
                container_id, created = self._materialize(assignment)
                self.containers[pid] = container_id
                result.started[pid] = container_id
            if placement.get("state") == "running" and placement.get("container_id") == container_id:
                continue
            state, message = self._container_state(container_id, created)
            self.client.agent_report(cid, nid, pid, token, state=state, container_id=container_id,
                                     message=message)
            (result.reported if state == "running" else result.failed)[pid] = container_id
        return result

    def _materialize(self, assignment: dict[str, Any]) -> tuple[str, dict[str, Any]]:
        """Create the assignment's container; returns its id and the create answer."""
        placement = assignment["placement"]
        workload = assignment.get("workload") or self.client.get_workload(
            self.cluster_id, placement["workload_id"])
        spec = workload.get("spec") if isinstance(workload.get("spec"), dict) else workload
        body: dict[str, Any] = {
            "name": f"{self.name}-r{placement.get('replica_index')}-{str(placement['id'])[:8]}",
            "labels": {**(spec.get("labels") or {}), "quilt-verify/placement": placement["id"]},
        }
        for key in ("image", "command", "environment", "memory_limit_mb", "cpu_limit_percent",
                    "strict"):
            if spec.get(key) is not None:
                body[key] = spec[key]
        container = self.client.create_container(body)
        container_id = str(QuiltClient.container_id(container))  # create_container ensures it
        self.created.append(container_id)
        if self.ledger is not None:
            self.ledger.track(self.client, "container", container_id, name=body["name"])
        return container_id, container

    def _container_state(self, container_id: str, seen: dict[str, Any] | None = None
                         ) -> tuple[str, str | None]:
        """Wait until the container leaves its starting states; map to a placement state.

        ``seen`` is what the target already said about it (the create answer): when that is
        past starting, it is used as is instead of asking again."""
        if seen is not None and seen.get("state") not in (None, *STARTING_STATES):
            container = seen
        else:
            container = wait_for(
                lambda: self.client.get_container(container_id),
                lambda c: c.get("state") not in STARTING_STATES,
                timeout=self.container_timeout, describe=f"container {container_id} to start",
            )
        state = container.get("state")
        if state == "running":
            return "running", None
        return "failed", f"container {state} (exit_code={container.get('exit_code')})"

    def _remove_container(self, container_id: str) -> None:
        try:
            self.client.delete_container(container_id)
        except QuiltAPIError as exc:
            if exc.status != 404:
                raise
        if self.ledger is not None:
            self.ledger.discard("container", container_id)

    def remove_local_containers(self) -> list[str]:
        """Delete every container this agent created (what a dead node leaves behind)."""
        removed = []
        for pid in list(self.containers):
            container_id = self.containers.pop(pid)
            self._remove_container(container_id)
            removed.append(container_id)
        return removed
