"""Before any suite runs: is the target a Quilt backend, and does it accept the credential?"""

from __future__ import annotations

import json

from quilt_verify.client import QuiltClient
from quilt_verify.errors import QuiltAPIError, QuiltError, QuiltProtocolError, QuiltTransportError


class PreflightFailure(Exception):
    """The run cannot start; ``kind`` is unreachable, not-quilt or refused."""

    def __init__(self, kind: str, reason: str) -> None:
        super().__init__(reason)
        self.kind = kind
        self.reason = reason


def preflight(client: QuiltClient, url: str, auth_method: str) -> None:
    """``GET /health`` must say ok; an authenticated ``GET /api/clusters`` must not be refused."""
    try:
        health = client.health()
        if not (isinstance(health, dict) and health.get("status") == "ok"):
            raise PreflightFailure(
                "not-quilt", f"{url} does not look like a Quilt backend: GET /health answered "
                f"{json.dumps(health)[:80]} instead of {{\"status\":\"ok\"}}")
        client.list_clusters()
    except QuiltAPIError as exc:
        if exc.path == "/health":
            raise PreflightFailure("not-quilt", f"{url} does not look like a Quilt backend: GET "
                                   f"/health answered {exc.status} (request_id={exc.request_id})"
                                   ) from None
        if exc.status in (401, 403):
            raise PreflightFailure("refused", f"authentication refused by {url}: {exc.status} "
                                   f"{exc.error_code or ''} with {auth_method} "
                                   f"(request_id={exc.request_id})") from None
        raise PreflightFailure("unreachable", f"preflight failed: {exc}") from None
    except QuiltProtocolError as exc:
        raise PreflightFailure("not-quilt", f"{url} does not look like a Quilt backend: "
                               f"{exc.method} {exc.path} answered {exc.problem}") from None
    except QuiltTransportError as exc:
        raise PreflightFailure("unreachable", f"target {url} unreachable: {exc.reason}") from None
    except QuiltError as exc:
        raise PreflightFailure("unreachable", f"preflight failed: {exc}") from None
