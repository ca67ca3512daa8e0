"""The client's error hierarchy: every failure carries method, path and the request id."""

from __future__ import annotations

from typing import Any


class QuiltError(Exception):
    """Base of everything the client raises about a request."""

    def __init__(self, message: str, *, method: str, path: str, request_id: str | None) -> None:
        super().__init__(message)
        self.message = message
        self.method = method
        self.path = path
        self.request_id = request_id


class QuiltAPIError(QuiltError):
    """The target answered with a 4xx/5xx status."""

    def __init__(
        self,
        *,
        method: str,
        path: str,
        status: int,
        request_id: str | None,
        error_code: str | None = None,
        message: str = "",
        body: Any = None,
        retry_after: float | None = None,
    ) -> None:
        self.status = status
        self.error_code = error_code
        self.body = body
        self.retry_after = retry_after
        text = f"{method} {path} -> {status}"
        if error_code:
            text += f" {error_code}"
        if message:
            text += f": {message}"
        text += f" (request_id={request_id})"
        super().__init__(text, method=method, path=path, request_id=request_id)
        self.message = message


class QuiltTransportError(QuiltError):
    """No HTTP answer: connection refused, DNS, TLS, timeout."""

    def __init__(self, *, method: str, path: str, request_id: str | None, reason: str) -> None:
        self.reason = reason
        super().__init__(
            f"{method} {path} failed before a response: {reason} (request_id={request_id})",
            method=method, path=path, request_id=request_id,
        )


class QuiltProtocolError(QuiltError):
    """The target answered, but not with what the contract allows (e.g. non-JSON, wrong shape)."""

    def __init__(
        self, problem: str, *, method: str, path: str, status: int | None, request_id: str | None
    ) -> None:
        self.status = status
        self.problem = problem
        super().__init__(
            f"{method} {path} -> {status}: {problem} (request_id={request_id})",
            method=method, path=path, request_id=request_id,
        )
