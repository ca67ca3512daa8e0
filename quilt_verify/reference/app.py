"""The ASGI application of the reference backend."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import (
    containers,
    routes_agent,
    routes_api_keys,
    routes_container_ops,
    routes_containers,
    routes_control,
    routes_volumes,
)
from .clock import Clock, system_clock
from .endpoints import Backend, build_routes
from .errors import code_for, error_body
from .event_stream import QUEUE_SIZE, Broker
from .events import EventHook, Events, no_events
from .faults import FaultMiddleware, Faults
from .hooks import ResponseHook, ResponseHookMiddleware
from .middleware import MAX_BODY_BYTES, RequestContextMiddleware, request_id_of
from .routes_events import EventStream
from .runtime import ProcessRuntime
from .store import Store

SSE_KEEPALIVE_S = 15.0
_MESSAGES = {404: "no such route", 405: "method not allowed on this route"}
ROUTE_MODULES = (routes_control, routes_agent, routes_containers, routes_container_ops,
                 routes_api_keys, routes_volumes)

log = logging.getLogger("quilt_verify.reference")


async def health(request: Request) -> Response:
    return JSONResponse({"status": "ok"})


async def http_error(request: Request, exc: Exception) -> Response:
    """Router-level errors (unknown route 404, wrong method 405) as JSON error bodies."""
    assert isinstance(exc, HTTPException)
    status = exc.status_code
    details: dict[str, Any] = {"method": request.method, "path": request.url.path[:256]}
    body = error_body(_MESSAGES.get(status, str(exc.detail)), code_for(status),
                      request_id_of(request.scope), details)
    return JSONResponse(body, status, headers=dict(exc.headers or {}))


def _record_process_exits(backend: Backend) -> None:
    """Record a container's exit as soon as its process ends (not only on the next read)."""

    def ended(container_id: str, pid: int, exit_code: int) -> None:
        try:
            with backend.store.tx() as db:
                containers.process_ended(db, container_id, pid, exit_code, backend.clock(),
                                         backend.events.emit)
        except RuntimeError:  # the store is closed: the server is stopping
            pass
        except Exception:
            log.exception("recording the exit of container %s failed", container_id)

    backend.runtime.set_exit_listener(ended)


def create_app(
    store: Store,
    runtime: ProcessRuntime,
    *,
    clock: Clock = system_clock,
    on_event: EventHook = no_events,
    max_body_bytes: int = MAX_BODY_BYTES,
    data_dir: Path | None = None,
    sse_keepalive_s: float = SSE_KEEPALIVE_S,
    sse_queue_size: int = QUEUE_SIZE,
    response_hook: ResponseHook | None = None,
    faults: Faults | None = None,
) -> Starlette:
    """Build the Starlette app over an open store and runtime (both owned by the caller).

    Volumes live under `data_dir` (default: next to the runtime's container directories).
    `app.state.broker.close()` ends every open event stream. `response_hook` is for tests
    only (see `hooks.py`); `faults` turns deliberate contract violations on (see `faults.py`)."""
    broker = Broker(sse_queue_size)
    events = Events(store, [broker.publish, on_event])
    backend = Backend(store=store, runtime=runtime, clock=clock, events=events,
                      data_dir=runtime.root.parent if data_dir is None else data_dir)
    _record_process_exits(backend)
    routes = [Route("/health", health, methods=["GET"]),
              Route("/api/events", EventStream(backend, broker, sse_keepalive_s), methods=["GET"])]
    for module in ROUTE_MODULES:
        routes += build_routes(backend, module.SPECS)
    app = Starlette(
        routes=routes,
        middleware=[*([Middleware(FaultMiddleware, faults=faults)] if faults and faults.names
                      else []),
                    *([Middleware(ResponseHookMiddleware, hook=response_hook)] if response_hook
                      else []),
                    Middleware(RequestContextMiddleware, max_body_bytes=max_body_bytes)],
        exception_handlers={HTTPException: http_error},
    )
    app.router.redirect_slashes = False
    app.state.backend = backend
    app.state.broker = broker
    return app
