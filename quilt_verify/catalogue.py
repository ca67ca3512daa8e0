"""The catalogue of known Quilt API endpoints (the seed scope of the contract).

The endpoints are read from the OpenAPI contract (``quilt_verify/contract/quilt-openapi.yaml``):
each operation's path becomes a template (``{x}`` -> ``:x``; a parameter marked
``x-quilt-rest-of-path`` -> ``*x``), its ``x-quilt-capability`` the capability and its security
the auth kind. The capabilities themselves (the suites' grouping, with titles) live here.

The verification document, coverage and latency figures are computed from this list and the
evidence bundle; nothing here says whether an endpoint was verified.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from urllib.parse import urlsplit

from quilt_verify import contract


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
    Capability("negative", "Refusal of bad requests (auth, tokens, unknown ids, malformed input)"),
    Capability("tenant-isolation", "Tenant isolation (a second tenant cannot see or touch the first's "
                                   "resources)"),
    Capability("property-based", "Property-based input (generated request bodies never cause a "
                                 "server error)"),
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


def _from_contract() -> tuple[Endpoint, ...]:
    """One endpoint per operation of the OpenAPI contract, in document order."""
    endpoints = tuple(Endpoint(op.method, op.template, op.capability, op.auth)
                      for op in contract.operations())
    unknown = sorted({ep.capability for ep in endpoints} - set(CAPABILITY_TITLES))
    if unknown:
        raise contract.ContractError(f"x-quilt-capability {', '.join(unknown)} is not in CAPABILITIES")
    return endpoints


ENDPOINTS: tuple[Endpoint, ...] = _from_contract()


@cache
def _compiled() -> dict[str, list[tuple[re.Pattern[str], Endpoint]]]:
    """Patterns per method, most literal segments first, so the first match is the best."""
    by_method: dict[str, list[tuple[int, re.Pattern[str], Endpoint]]] = {}
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
        pattern = re.compile("^/" + "/".join(parts) + "$")
        by_method.setdefault(ep.method, []).append((static, pattern, ep))
    return {method: [(p, ep) for _, p, ep in sorted(entries, key=lambda e: -e[0])]
            for method, entries in by_method.items()}


def match(method: str, url_or_path: str) -> Endpoint | None:
    """The catalogue endpoint a request was for (most literal segments win), or None."""
    path = urlsplit(url_or_path).path or "/"
    if len(path) > 1:
        path = path.rstrip("/")
    for pattern, ep in _compiled().get(method.upper(), ()):
        if pattern.match(path):
            return ep
    return None


def by_capability() -> dict[str, list[Endpoint]]:
    grouped: dict[str, list[Endpoint]] = {c.key: [] for c in CAPABILITIES}
    for ep in ENDPOINTS:
        grouped[ep.capability].append(ep)
    return grouped


def parse_gate(value: str | None) -> list[str]:
    if not value:
        return []
    names = [v.strip() for v in value.split(",") if v.strip()]
    unknown = [n for n in names if n not in CAPABILITY_TITLES]
    if unknown:
        raise ValueError(f"unknown capability {', '.join(unknown)} in --gate "
                                  f"(known: {', '.join(CAPABILITY_TITLES)})")
    return names
