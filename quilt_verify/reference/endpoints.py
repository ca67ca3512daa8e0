"""How a route runs: authenticate, then parse the body, then the handler, in a worker thread.

Handlers are plain synchronous functions `handler(call) -> Reply`; they open their own store
transactions, so slow work (stopping a process) never holds the database lock. The order is
fixed: authentication is checked before the body is looked at, so a bad credential always
answers 401, whatever the body.
"""

from __future__ import annotations

import enum
import logging
import sqlite3
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import faults, nodes, tenancy
from .clock import Clock, unix_seconds
from .errors import ApiError
from .events import Emit, Events
from .middleware import request_id_of
from .runtime import ProcessRuntime
from .store import Store
from .validation import parse_json

log = logging.getLogger("quilt_verify.reference")

TENANT_HINT = "send X-Api-Key: <key> or Authorization: Bearer <key>"


class Auth(enum.Enum):
    NONE = "none"      # public, or the handler checks a credential itself (join token)
    TENANT = "tenant"  # X-Api-Key or Authorization: Bearer
    NODE = "node"      # X-Quilt-Node-Token of exactly the node in the path


@dataclass
class Backend:
    """What handlers work with."""

    store: Store
    runtime: ProcessRuntime
    clock: Clock
    events: Events
    data_dir: Path


@dataclass
class Reply:
    status: int
    body: Any


@dataclass
class Call:
    """One request as a handler sees it."""

    backend: Backend
    params: Mapping[str, str]
    query: Mapping[str, str]
    headers: Mapping[str, str]
    raw_body: bytes
    tenant_id: str = ""
    node: sqlite3.Row | None = None
    raw_path: bytes = b""

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        with self.backend.store.tx() as db:
            yield db

    def now(self) -> int:
        return unix_seconds(self.backend.clock)

    def now_float(self) -> float:
        return self.backend.clock()

    def json(self, default: Any = None) -> Any:
        """The decoded body; `default` when the body is empty."""
        if not self.raw_body.strip():
            return default
        return parse_json(self.raw_body)

    def emit(self, event: str, data: dict[str, Any]) -> None:
        """Announce a change of this tenant made in the current transaction (delivered after
        it commits, in commit order; see `events.py`)."""
        self.backend.events.emit(self.tenant_id, event, data)

    @property
    def emitter(self) -> Emit:
        """`emit(tenant_id, event, data)` for domain functions."""
        return self.backend.events.emit


Handler = Callable[[Call], Reply]


def api_key_of(headers: Mapping[str, str]) -> str | None:
    """`X-Api-Key` wins; otherwise `Authorization: Bearer <key>`."""
    key = headers.get("x-api-key")
    if key:
        return key
    scheme, _, value = headers.get("authorization", "").partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def authenticate(call: Call, auth: Auth) -> None:
    if auth is Auth.TENANT:
        key = api_key_of(call.headers)
        tenant_id = None
        if key:
            with call.tx() as db:
                tenant_id = tenancy.authenticate(db, key, call.now())
        if tenant_id is None and not key and call.raw_path == b"/api/volumes" \
                and faults.on("unauthenticated-volume-list"):
            return  # no tenant: the list comes back empty
        if tenant_id is None:
            message = "missing or invalid API key"
            if key and faults.on("error-echoes-api-key"):
                message = f"invalid API key {faults.active().leak(key)}"
            raise ApiError(401, "UNAUTHORIZED", message, hint=TENANT_HINT,
                           headers={"WWW-Authenticate": "Bearer"})
        call.tenant_id = tenant_id
    elif auth is Auth.NODE:
        with call.tx() as db:
            call.node = nodes.authenticate(
                db, call.params["cid"], call.params["nid"], call.headers.get("x-quilt-node-token")
            )
        call.tenant_id = call.node["tenant_id"]


def _run(call: Call, handler: Handler, auth: Auth) -> Reply:
    authenticate(call, auth)
    return handler(call)


@dataclass(frozen=True)
class Spec:
    method: str
    path: str
    handler: Handler
    auth: Auth


def endpoint(backend: Backend, by_method: dict[str, Spec]) -> Callable[[Request], Any]:
    """One ASGI endpoint per path, dispatching on the method (so 405 lists every method)."""

    async def run(request: Request) -> Response:
        spec = by_method[request.method if request.method != "HEAD" else "GET"]
        raw = await request.body()
        call = Call(backend, dict(request.path_params), dict(request.query_params),
                    request.headers, raw, raw_path=request.scope.get("raw_path") or b"")
        try:
            reply = await run_in_threadpool(_run, call, spec.handler, spec.auth)
        except ApiError as err:
            return JSONResponse(err.body(request_id_of(request.scope)), err.status,
                                headers=err.headers)
        return JSONResponse(reply.body, reply.status)

    return run


def build_routes(backend: Backend, specs: list[Spec]) -> list[Route]:
    by_path: dict[str, dict[str, Spec]] = {}
    for spec in specs:
        by_path.setdefault(spec.path, {})[spec.method] = spec
    return [Route(path, endpoint(backend, methods), methods=list(methods))
            for path, methods in by_path.items()]
