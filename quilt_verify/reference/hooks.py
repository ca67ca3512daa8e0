"""A test-only response transform: lets a test make the reference backend misbehave on purpose.

`ReferenceServer(response_hook=fn)` wraps the whole app (outermost, so it also sees the 413 and
500 answers of the request middleware). For every JSON answer, `fn(method, path, status, body)`
returns `(status, body)` to send instead, or None to leave the answer alone. Streaming answers
(the SSE route) pass through untouched. Never used by the product itself.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from starlette.types import ASGIApp, Message, Receive, Scope, Send

ResponseHook = Callable[[str, str, int, Any], tuple[int, Any] | None]


class ResponseHookMiddleware:
    def __init__(self, app: ASGIApp, hook: ResponseHook) -> None:
        self.app = app
        self.hook = hook

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start: Message | None = None
        chunks: list[bytes] = []
        passthrough = False

        async def capture(message: Message) -> None:
            nonlocal start, passthrough
            if passthrough:
                await send(message)
                return
            if message["type"] == "http.response.start":
                content_type = dict(message.get("headers", [])).get(b"content-type", b"")
                if not content_type.startswith(b"application/json"):
                    passthrough = True
                    await send(message)
                    return
                start = message
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                await self._answer(scope, start, b"".join(chunks), send)

        await self.app(scope, receive, capture)

    async def _answer(self, scope: Scope, start: Message | None, raw: bytes, send: Send) -> None:
        assert start is not None
        status = start["status"]
        try:
            body = json.loads(raw) if raw else None
        except ValueError:
            body = None
        changed = self.hook(scope.get("method", ""), scope.get("path", ""), status, body)
        if changed is not None:
            status, body = changed
            raw = b"" if body is None else json.dumps(body).encode("utf-8")
        headers = [(k, v) for k, v in start.get("headers", []) if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(raw)).encode("ascii")))
        await send({**start, "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": raw})
