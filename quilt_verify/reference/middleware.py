"""The outermost ASGI layer: request ids, the request-body limit, and the last-resort 500.

- `X-Request-ID`: a sane incoming value (1..128 chars of `[A-Za-z0-9._:-]`) is echoed,
  anything else is replaced by a new UUID v4; it is set on every response and stored in the
  scope for error bodies.
- Bodies over the limit (by Content-Length, or counted while streaming) get 413. The limit is
  `max_body_bytes` (8 MiB), except for uploads into volumes (`POST /api/volumes/<name>/files`
  and `/archive`), which may carry `large_body_bytes` (64 MiB: a 5 MiB file is ~7 MiB as
  base64 JSON, and archives are bigger).
- Any exception that escapes the app becomes a logged 500 JSON error instead of a crash.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from typing import Any

from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .errors import code_for, error_body

REQUEST_ID_KEY = "quilt.request_id"
MAX_BODY_BYTES = 8 * 1024 * 1024
LARGE_BODY_BYTES = 64 * 1024 * 1024
LARGE_BODY_ROUTES = re.compile(r"/api/volumes/[^/]+/(files|archive)")
_SANE_REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
# After a 413 the rest of an oversized body is read and dropped (up to this much) so the
# client sees the answer instead of a reset connection.
_DRAIN_LIMIT = 128 * 1024 * 1024

log = logging.getLogger("quilt_verify.reference")


class BodyTooLarge(Exception):
    pass


def request_id_of(scope: Scope) -> str:
    return scope.get(REQUEST_ID_KEY) or str(uuid.uuid4())


def choose_request_id(scope: Scope) -> str:
    for name, value in scope.get("headers", []):
        if name == b"x-request-id":
            text = value.decode("latin-1")
            return text if _SANE_REQUEST_ID.fullmatch(text) else str(uuid.uuid4())
    return str(uuid.uuid4())


def _content_length(scope: Scope) -> int | None:
    for name, value in scope.get("headers", []):
        if name == b"content-length":
            try:
                return int(value)
            except ValueError:
                return None
    return None


async def send_json(send: Send, status: int, body: dict[str, Any]) -> None:
    payload = json.dumps(body).encode("utf-8")
    await send({
        "type": "http.response.start",
        "status": status,
        "headers": [(b"content-type", b"application/json"),
                    (b"content-length", str(len(payload)).encode("ascii"))],
    })
    await send({"type": "http.response.body", "body": payload})


class RequestContextMiddleware:
    def __init__(self, app: ASGIApp, max_body_bytes: int = MAX_BODY_BYTES,
                 large_body_bytes: int = LARGE_BODY_BYTES) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.large_body_bytes = max(large_body_bytes, max_body_bytes)

    def limit_for(self, scope: Scope) -> int:
        if scope.get("method") == "POST" and LARGE_BODY_ROUTES.fullmatch(scope.get("path", "")):
            return self.large_body_bytes
        return self.max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = choose_request_id(scope)
        scope[REQUEST_ID_KEY] = request_id
        started = False
        received = 0
        body_done = False
        limit = self.limit_for(scope)

        async def send_with_id(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = [(k, v) for k, v in message.get("headers", [])
                           if k.lower() != b"x-request-id"]
                headers.append((b"x-request-id", request_id.encode("ascii")))
                message = {**message, "headers": headers}
            await send(message)

        async def limited_receive() -> Message:
            nonlocal received, body_done
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                body_done = not message.get("more_body", False)
                if received > limit:
                    raise BodyTooLarge
            return message

        async def fail(status: int, message: str, details: dict[str, Any] | None) -> None:
            if not started:
                await send_json(send_with_id, status,
                                error_body(message, code_for(status), request_id, details))

        declared = _content_length(scope)
        try:
            if declared is not None and declared > limit:
                raise BodyTooLarge
            await self.app(scope, limited_receive, send_with_id)
        except BodyTooLarge:
            if not body_done:
                await self._drain(receive, received)
            await fail(413, "request body too large",
                       {"field": "body", "expected": [f"at most {limit} bytes"]})
        except ClientDisconnect:
            return  # nobody is left to answer
        except Exception:
            log.exception("unhandled error on %s %s", scope.get("method"), scope.get("path"))
            await fail(500, "internal error", None)

    @staticmethod
    async def _drain(receive: Receive, already: int) -> None:
        total = already
        while total <= _DRAIN_LIMIT:
            message = await receive()
            if message["type"] != "http.request":
                return
            total += len(message.get("body", b""))
            if not message.get("more_body", False):
                return

