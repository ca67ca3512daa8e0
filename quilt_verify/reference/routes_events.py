"""`GET /api/events` (quilt-api.md 5.7): the tenant's events as a Server-Sent Events stream.

Auth: `X-Api-Key` / `Authorization: Bearer`, or `?token=<api key>` (EventSource cannot set
headers). The stream starts with `event: ready` (`{"tenant_id", "at"}`), then one event per
committed change of that tenant: `id: <monotonic int>`, `event: <name>`, `data: <JSON>`.
`?container_id=X` passes only `container_update` events of X. Without events a comment
`: keep-alive` is sent every `keepalive_s`. The stream ends when the client disconnects or
the server stops.
"""

from __future__ import annotations

import asyncio
import json
from contextlib import suppress

from starlette.concurrency import run_in_threadpool
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.types import Receive, Scope, Send

from . import faults, tenancy
from .clock import iso8601, unix_seconds
from .endpoints import TENANT_HINT, Backend, api_key_of
from .errors import ApiError
from .event_stream import CLOSE, Broker, Item, Subscriber
from .middleware import request_id_of

HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-cache"),
    (b"x-accel-buffering", b"no"),
]


def frame(item: Item) -> bytes:
    return f"id: {item.id}\nevent: {item.event}\ndata: {item.data}\n\n".encode()


def named(event: str, data: dict[str, object]) -> bytes:
    return f"event: {event}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n".encode()


async def wait_for_disconnect(receive: Receive) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass


class EventStream:
    """The ASGI endpoint of the stream."""

    def __init__(self, backend: Backend, broker: Broker, keepalive_s: float) -> None:
        self.backend = backend
        self.broker = broker
        self.keepalive_s = keepalive_s

    def _authenticate(self, key: str | None) -> str:
        tenant_id = None
        if key:
            with self.backend.store.tx() as db:
                tenant_id = tenancy.authenticate(db, key, unix_seconds(self.backend.clock))
        if tenant_id is None:
            raise ApiError(401, "UNAUTHORIZED", "missing or invalid API key",
                           hint=TENANT_HINT + " (or ?token=<key> for event streams)",
                           headers={"WWW-Authenticate": "Bearer"})
        return tenant_id

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        request = Request(scope, receive)
        key = api_key_of(request.headers) or request.query_params.get("token")
        try:
            tenant_id = await run_in_threadpool(self._authenticate, key)
        except ApiError as err:
            response = JSONResponse(err.body(request_id_of(scope)), err.status,
                                    headers=err.headers)
            await response(scope, receive, send)
            return
        await send({"type": "http.response.start", "status": 200, "headers": HEADERS})
        if scope["method"] == "HEAD":
            await send({"type": "http.response.body", "body": b""})
            return
        only = request.query_params.get("container_id") or None
        if faults.on("events-ignore-container-filter"):
            only = None
        subscriber = self.broker.subscribe(tenant_id, only)
        try:
            ready = {"tenant_id": tenant_id, "at": iso8601(self.backend.clock())}
            await send({"type": "http.response.body", "body": named("ready", ready),
                        "more_body": True})
            if await self._forward(subscriber, receive, send):
                await send({"type": "http.response.body", "body": b""})
        except OSError:
            pass  # the client went away while we wrote
        finally:
            self.broker.unsubscribe(subscriber)

    async def _forward(self, subscriber: Subscriber, receive: Receive, send: Send) -> bool:
        """Send events until the broker closes (True) or the client leaves (False)."""
        disconnect = asyncio.ensure_future(wait_for_disconnect(receive))
        getter: asyncio.Future[Item] | None = None
        swap = faults.on("events-out-of-order")
        held: Item | None = None  # with the fault: the first event of a pair, sent second
        try:
            while True:
                if getter is None:
                    getter = asyncio.ensure_future(subscriber.queue.get())
                done, _ = await asyncio.wait({getter, disconnect},
                                             timeout=0.2 if held else self.keepalive_s,
                                             return_when=asyncio.FIRST_COMPLETED)
                if disconnect in done:
                    return False
                if getter not in done:
                    chunk = frame(held) if held else b": keep-alive\n\n"
                    held = None
                else:
                    item, getter = getter.result(), None
                    if item is CLOSE:
                        return True
                    if swap and held is None:
                        held = item
                        continue
                    chunk = frame(item) + (frame(held) if held else b"")
                    held = None
                    dropped = subscriber.take_dropped()
                    if dropped:
                        chunk = named("events_dropped", {"dropped": dropped}) + chunk
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
        finally:
            for task in (getter, disconnect):
                if task is not None:
                    task.cancel()
                    with suppress(asyncio.CancelledError, Exception):
                        await task
