"""The API error type of the reference backend and its JSON body."""

from __future__ import annotations

from typing import Any

# error_code for each status the reference answers with.
CODES: dict[int, str] = {
    400: "VALIDATION_ERROR",
    401: "UNAUTHORIZED",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    409: "CONFLICT",
    413: "PAYLOAD_TOO_LARGE",
    422: "VALIDATION_ERROR",
    500: "INTERNAL",
}


class ApiError(Exception):
    """An error answered to the client as `{error, error_code, request_id, details?, hint?}`."""

    def __init__(
        self,
        status: int,
        error_code: str,
        message: str,
        details: dict[str, Any] | None = None,
        *,
        hint: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.error_code = error_code
        self.message = message
        self.details = details
        self.hint = hint
        self.headers = headers or {}

    def body(self, request_id: str) -> dict[str, Any]:
        """The JSON error body for this error."""
        return error_body(self.message, self.error_code, request_id, self.details, self.hint)


def error_body(
    message: str,
    error_code: str,
    request_id: str,
    details: dict[str, Any] | None = None,
    hint: str | None = None,
) -> dict[str, Any]:
    """Build the canonical error body; optional members are left out when empty."""
    body: dict[str, Any] = {"error": message, "error_code": error_code, "request_id": request_id}
    if details is not None:
        body["details"] = details
    if hint is not None:
        body["hint"] = hint
    return body


def code_for(status: int) -> str:
    """The error_code the reference uses for an HTTP status."""
    return CODES.get(status, "HTTP_ERROR")


def unauthorized(message: str, hint: str | None = None) -> ApiError:
    return ApiError(401, "UNAUTHORIZED", message, hint=hint)


def not_found(kind: str, ident: str | None = None) -> ApiError:
    details = {"resource": kind} if ident is None else {"resource": kind, "id": ident[:128]}
    return ApiError(404, "NOT_FOUND", f"{kind} not found", details)


def conflict(message: str, field: str | None = None) -> ApiError:
    return ApiError(409, "CONFLICT", message, {"field": field} if field else None)


def invalid(
    field: str,
    message: str,
    expected: list[str] | None = None,
    received: str | None = None,
    *,
    status: int = 400,
) -> ApiError:
    """A validation error naming the offending field (400 by default, 422 for shape errors)."""
    details: dict[str, Any] = {"field": field}
    if expected is not None:
        details["expected"] = expected
    if received is not None:
        details["received"] = received
    return ApiError(status, "VALIDATION_ERROR", f"{field}: {message}", details)
