"""Named checks the suites share. Each raises an AssertionError saying what was expected, what
was received, and the request id where there is one."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Any

from quilt_verify.errors import QuiltAPIError


def expect_status(call: Callable[[], Any], *statuses: int) -> QuiltAPIError:
    """The call MUST fail with one of ``statuses``; return the error for further checks."""
    wanted = "/".join(map(str, statuses))
    try:
        result = call()
    except QuiltAPIError as exc:
        assert exc.status in statuses, (
            f"expected HTTP {wanted}, got {exc.status} {exc.error_code or ''} "
            f"(request_id={exc.request_id})")
        return exc
    raise AssertionError(f"expected HTTP {wanted}, the call succeeded: {result!r}"[:500])


def expect_error_body(exc: QuiltAPIError) -> None:
    """An error response MUST carry a JSON body with an ``error`` (or ``message``) string."""
    body = exc.body
    assert isinstance(body, dict), (
        f"{exc.method} {exc.path} -> {exc.status} has no JSON error body "
        f"(request_id={exc.request_id})")
    text = body.get("error", body.get("message"))
    assert isinstance(text, str) and text, (
        f"{exc.method} {exc.path} -> {exc.status} error body has no 'error' or 'message' "
        f"string: {sorted(body)} (request_id={exc.request_id})")


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def find_number(obj: Any, *needles: str) -> float | None:
    """The first numeric value whose key contains one of ``needles`` (any depth)."""
    if isinstance(obj, dict):
        for key, value in obj.items():
            if isinstance(value, (int, float)) and not isinstance(value, bool) and any(
                    n in str(key).lower() for n in needles):
                return float(value)
        for value in obj.values():
            found = find_number(value, *needles)
            if found is not None:
                return found
    return None
