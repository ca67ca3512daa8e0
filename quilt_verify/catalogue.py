"""The catalogue of known Quilt API endpoints (the seed scope of the contract), in one place.

The verification document, coverage and latency figures are computed from this list and the
evidence bundle; nothing here says whether an endpoint was verified.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from urllib.parse import urlsplit


@dataclass(frozen=True)
class Capability:
    key: str
    title: str


CAPABILITIES = (
    Capability("health", "Health and authentication"),
    Capability("container-runtime", "Container runtime session (like kubectl run/exec/logs/delete)"),
    Capability("api-keys", "API key management"),
    Capability("volumes", "Volumes (including file push/pull)"),
    Capability("cluster-control-plane", "Cluster control plane (tenant endpoints)"),
    Capability("kubernetes-session",
               "Full Kubernetes-like session (agent registration, scheduling, placement "
               "reporting, drain, scale, rescheduling)"),
    Capability("events", "Events (SSE)"),
)
CAPABILITY_TITLES = {c.key: c.title for c in CAPABILITIES}


@dataclass(frozen=True)
class Endpoint:
    method: str
    template: str  # `:name` is one path segment, `*name` the rest of the path
    capability: str
    auth: str  # none | tenant | join-token | node-token

    @property
    def key(self) -> str:
        return f"{self.method} {self.template}"


_C, _K, _V = "container-runtime", "api-keys", "volumes"
_P, _S = "cluster-control-plane", "kubernetes-session"
_AGENT = "/api/agent/clusters/:cluster_id/nodes"

ENDPOINTS: tuple[Endpoint, ...] = (
    Endpoint("GET", "/health", "health", "none"),
    Endpoint("GET", "/api/containers", _C, "tenant"),
    Endpoint("POST", "/api/containers", _C, "tenant"),
    Endpoint("GET", "/api/containers/:id", _C, "tenant"),
    Endpoint("GET", "/api/containers/:id/logs", _C, "tenant"),
    Endpoint("POST", "/api/containers/:id/exec", _C, "tenant"),
    Endpoint("GET", "/api/containers/:id/metrics", _C, "tenant"),
    Endpoint("GET", "/api/containers/:id/network", _C, "tenant"),
    Endpoint("POST", "/api/containers/:id/start", _C, "tenant"),
    Endpoint("POST", "/api/containers/:id/stop", _C, "tenant"),
    Endpoint("POST", "/api/containers/:id/kill", _C, "tenant"),
    Endpoint("DELETE", "/api/containers/:id", _C, "tenant"),
    Endpoint("POST", "/api/containers/:id/routes", _C, "tenant"),
    Endpoint("DELETE", "/api/containers/:id/routes", _C, "tenant"),
    Endpoint("GET", "/api/api-keys", _K, "tenant"),
    Endpoint("POST", "/api/api-keys", _K, "tenant"),
    Endpoint("DELETE", "/api/api-keys/:id", _K, "tenant"),
    Endpoint("GET", "/api/volumes", _V, "tenant"),
    Endpoint("POST", "/api/volumes", _V, "tenant"),
    Endpoint("GET", "/api/volumes/:name", _V, "tenant"),
    Endpoint("DELETE", "/api/volumes/:name", _V, "tenant"),
    Endpoint("POST", "/api/volumes/:name/files", _V, "tenant"),
    Endpoint("GET", "/api/volumes/:name/files/*path", _V, "tenant"),
    Endpoint("DELETE", "/api/volumes/:name/files/*path", _V, "tenant"),
    Endpoint("POST", "/api/volumes/:name/archive", _V, "tenant"),
    Endpoint("POST", "/api/clusters", _P, "tenant"),
    Endpoint("GET", "/api/clusters", _P, "tenant"),
    Endpoint("GET", "/api/clusters/:cluster_id", _P, "tenant"),
    Endpoint("DELETE", "/api/clusters/:cluster_id", _P, "tenant"),
    Endpoint("POST", "/api/clusters/:cluster_id/reconcile", _P, "tenant"),
    Endpoint("POST", "/api/clusters/:cluster_id/join-tokens", _P, "tenant"),
    Endpoint("POST", "/api/clusters/:cluster_id/workloads", _P, "tenant"),
    Endpoint("GET", "/api/clusters/:cluster_id/workloads", _P, "tenant"),
    Endpoint("GET", "/api/clusters/:cluster_id/workloads/:workload_id", _P, "tenant"),
    Endpoint("PUT", "/api/clusters/:cluster_id/workloads/:workload_id", _P, "tenant"),
    Endpoint("DELETE", "/api/clusters/:cluster_id/workloads/:workload_id", _P, "tenant"),
    Endpoint("GET", "/api/clusters/:cluster_id/placements", _P, "tenant"),
    Endpoint("GET", "/api/clusters/:cluster_id/nodes", _P, "tenant"),
    Endpoint("GET", "/api/clusters/:cluster_id/nodes/:node_id", _S, "tenant"),
    Endpoint("POST", "/api/clusters/:cluster_id/nodes/:node_id/drain", _S, "tenant"),
    Endpoint("DELETE", "/api/clusters/:cluster_id/nodes/:node_id", _S, "tenant"),
    Endpoint("POST", f"{_AGENT}/register", _S, "join-token"),
    Endpoint("POST", f"{_AGENT}/:node_id/heartbeat", _S, "node-token"),
    Endpoint("GET", f"{_AGENT}/:node_id/allocation", _S, "node-token"),
    Endpoint("GET", f"{_AGENT}/:node_id/placements", _S, "node-token"),
    Endpoint("POST", f"{_AGENT}/:node_id/placements/:placement_id/report", _S, "node-token"),
    Endpoint("POST", f"{_AGENT}/:node_id/deregister", _S, "node-token"),
    Endpoint("GET", "/api/events", "events", "tenant"),
)


@cache
def _compiled() -> list[tuple[re.Pattern[str], int, Endpoint]]:
    out = []
    for ep in ENDPOINTS:
        parts, static = [], 0
        for seg in ep.template.strip("/").split("/"):
            if seg.startswith(":"):
                parts.append("[^/]+")
            elif seg.startswith("*"):
                parts.append(".+")
            else:
                parts.append(re.escape(seg))
                static += 1
        out.append((re.compile("^/" + "/".join(parts) + "$"), static, ep))
    return out


def match(method: str, url_or_path: str) -> Endpoint | None:
    """The catalogue endpoint a request was for (most literal segments win), or None."""
    path = urlsplit(url_or_path).path or "/"
    if len(path) > 1:
        path = path.rstrip("/")
    best: tuple[int, Endpoint] | None = None
    for pattern, static, ep in _compiled():
        if ep.method == method.upper() and pattern.match(path):
            if best is None or static > best[0]:
                best = (static, ep)
    return best[1] if best else None


def by_capability() -> dict[str, list[Endpoint]]:
    grouped: dict[str, list[Endpoint]] = {c.key: [] for c in CAPABILITIES}
    for ep in ENDPOINTS:
        grouped[ep.capability].append(ep)
    return grouped
