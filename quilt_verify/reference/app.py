"""The ASGI application of the reference backend."""

from __future__ import annotations

from typing import Any

from starlette.applications import Starlette
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.routing import Route

from . import routes_agent, routes_containers, routes_control
from .clock import Clock, system_clock
from .endpoints import Backend, build_routes
from .errors import code_for, error_body
from .events import EventHook, no_events
from .middleware import MAX_BODY_BYTES, RequestContextMiddleware, request_id_of
from .runtime import ProcessRuntime
from .store import Store

_MESSAGES = {404: "no such route", 405: "method not allowed on this route"}


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


def create_app(
    store: Store,
    runtime: ProcessRuntime,
    *,
    clock: Clock = system_clock,
    on_event: EventHook = no_events,
    max_body_bytes: int = MAX_BODY_BYTES,
) -> Starlette:
    """Build the Starlette app over an open store and runtime (both owned by the caller)."""
    backend = Backend(store=store, runtime=runtime, clock=clock, emit_hook=on_event)
    routes = [Route("/health", health, methods=["GET"])]
    for module in (routes_control, routes_agent, routes_containers):
        routes += build_routes(backend, module.SPECS)
    app = Starlette(
        routes=routes,
        middleware=[Middleware(RequestContextMiddleware, max_body_bytes=max_body_bytes)],
        exception_handlers={HTTPException: http_error},
    )
    app.router.redirect_slashes = False
    app.state.backend = backend
    return app
