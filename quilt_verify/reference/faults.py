"""Deliberate contract violations of the reference backend, one switch each (the fault catalogue).

`ReferenceServer(..., faults=["name", ...])` or `quilt-verify serve --fault NAME` turns faults on;
each is a realistic bug a backend team could ship. They exist to prove that the suites catch
broken backends: `tests/test_faults.py` runs the suite of each fault's capability against a
reference with that one fault on and expects the run to fail in that capability (or, for the
secret-hygiene faults, the bundle to stay free of the leaked secret and the run to fail).

A fault is checked where the behaviour lives, with `faults.on("name")`. The switches of the
server answering the current request are held in a context variable set by `FaultMiddleware`
(so two servers in one process never see each other's faults); outside a request nothing is
on. With no fault on, the reference behaves exactly as without this module.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from starlette.types import ASGIApp, Receive, Scope, Send


@dataclass(frozen=True)
class Fault:
    name: str
    capability: str  # a key of quilt_verify.catalogue.CAPABILITIES
    description: str
    secret: bool = False  # secret hygiene: the fault leaks a credential into an answer


CATALOGUE: tuple[Fault, ...] = (
    # scheduling, reconcile, node lifecycle, agent auth, placement reporting
    Fault("round-robin-skips-last-node", "kubernetes-session",
          "reconcile spreads replicas over every eligible node but the last one"),
    Fault("scale-down-keeps-high-indices", "kubernetes-session",
          "reconcile never deletes placements with replica_index >= replicas"),
    Fault("drain-ignored-by-reconcile", "kubernetes-session",
          "reconcile treats a draining node as eligible and leaves its placements there"),
    Fault("reschedule-keeps-running", "kubernetes-session",
          "a rescheduled placement keeps state `running` and its old container_id"),
    Fault("deleted-node-token-accepted", "kubernetes-session",
          "the node token of a deleted or deregistered node still authenticates"),
    Fault("join-token-max-uses-ignored", "kubernetes-session",
          "a join token registers nodes beyond its max_uses"),
    Fault("agent-sees-foreign-assignments", "kubernetes-session",
          "an agent's assignment list holds every placement of the cluster, not only its node's"),
    Fault("report-drops-container-id", "kubernetes-session",
          "a placement report stores the state but not the reported container_id"),
    Fault("heartbeat-echoes-node-token", "kubernetes-session",
          "the heartbeat answer echoes the node token under `debug_info`", secret=True),
    # cluster control plane
    Fault("duplicate-cluster-name-accepted", "cluster-control-plane",
          "a second cluster with an existing name is created instead of refused"),
    # container runtime
    Fault("exec-exit-code-always-zero", "container-runtime",
          "exec answers exit_code 0 whatever the command exited with"),
    Fault("logs-drop-stderr", "container-runtime",
          "container logs contain only what the process wrote to stdout"),
    Fault("kill-leaves-running", "container-runtime",
          "kill answers success but leaves the process (and the state) running"),
    Fault("route-delete-absent-200", "container-runtime",
          "deleting a route the container does not have answers 200"),
    # volumes and archives
    Fault("download-byte-flipped", "volumes",
          "file downloads come back with the first byte flipped"),
    Fault("archive-ignores-strip-components", "volumes",
          "archive upload ignores strip_components"),
    Fault("archive-accepts-dotdot", "volumes",
          "an archive member with `..` is silently skipped and the upload answers 200"),
    # API keys and tenant auth
    Fault("deleted-key-still-authenticates", "api-keys",
          "a deleted API key is only marked revoked and still authenticates"),
    Fault("key-list-shows-full-key", "api-keys",
          "the API key list shows the full secret of keys created since start"),
    Fault("unauthenticated-volume-list", "health",
          "GET /api/volumes answers 200 (an empty list) without credentials"),
    Fault("volume-lookup-ignores-tenant", "tenant-isolation",
          "reading a volume by name finds another tenant's volume"),
    # events
    Fault("events-out-of-order", "events",
          "the event stream delivers events in pairs, the second of each pair first"),
    Fault("events-ignore-container-filter", "events",
          "`?container_id=` is ignored: the stream delivers every event of the tenant"),
    # error handling and secret hygiene
    Fault("malformed-json-500", "negative",
          "a malformed JSON body answers 500 instead of 400"),
    Fault("error-echoes-api-key", "negative",
          "a 401 for an unknown or revoked API key echoes the presented key in its message",
          secret=True),
)
BY_NAME = {fault.name: fault for fault in CATALOGUE}


class UnknownFault(ValueError):
    pass


@dataclass
class Faults:
    """The faults of one server, plus what they need to remember (and what they leaked)."""

    names: frozenset[str] = frozenset()
    memory: dict[str, Any] = field(default_factory=dict)
    leaked: list[str] = field(default_factory=list)  # secrets the faults put into answers
    lock: threading.Lock = field(default_factory=threading.Lock)

    def leak(self, secret: str) -> str:
        with self.lock:
            self.leaked.append(secret)
        return secret


NONE = Faults()
_ACTIVE: ContextVar[Faults] = ContextVar("quilt_reference_faults", default=NONE)


def parse(names: Iterable[str] | None) -> frozenset[str]:
    """Validated fault names; UnknownFault names every unknown one."""
    chosen = frozenset(names or ())
    unknown = sorted(chosen - set(BY_NAME))
    if unknown:
        raise UnknownFault(f"unknown fault(s): {', '.join(unknown)} (known: {', '.join(BY_NAME)})")
    return chosen


def active() -> Faults:
    return _ACTIVE.get()


def on(name: str) -> bool:
    """Whether fault `name` is on for the request being answered."""
    assert name in BY_NAME, name
    return name in _ACTIVE.get().names


class FaultMiddleware:
    """Makes the server's faults visible to the code answering each of its requests."""

    def __init__(self, app: ASGIApp, faults: Faults) -> None:
        self.app = app
        self.faults = faults

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        token = _ACTIVE.set(self.faults)
        try:
            await self.app(scope, receive, send)
        finally:
            _ACTIVE.reset(token)
