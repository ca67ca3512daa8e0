"""Health and authentication: the liveness probe is public, every API route group is not."""

from __future__ import annotations

import pytest

from quilt_verify.checks import expect_error_body, expect_status

pytestmark = [pytest.mark.capability("health"), pytest.mark.mode("smoke")]

ROUTE_GROUPS = ["/api/containers", "/api/api-keys", "/api/volumes", "/api/clusters"]


def test_health_is_public_and_ok(quilt, step):
    """`GET /health` without credentials MUST answer 200 with `{"status": "ok"}`."""
    step("calling /health with no credentials")
    health = quilt.with_credentials().health()
    assert isinstance(health, dict) and health.get("status") == "ok", f"/health said {health!r}"


@pytest.mark.parametrize("path", ROUTE_GROUPS)
def test_api_routes_require_auth(quilt, step, path):
    """A tenant API route called without credentials MUST answer 401 with a JSON error body."""
    step(f"GET {path} with no credentials")
    anonymous = quilt.with_credentials()
    exc = expect_status(lambda: anonymous.call("GET", path), 401)
    expect_error_body(exc)
