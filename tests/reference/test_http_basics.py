"""Transport behaviour: health, request ids, auth, JSON errors for every kind of bad input."""

from __future__ import annotations

import uuid

import httpx
import pytest

from .helpers import Tenant, assert_error


def test_health_needs_no_auth(anon: httpx.Client) -> None:
    response = anon.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    uuid.UUID(response.headers["x-request-id"])


def test_sane_request_id_is_echoed(anon: httpx.Client) -> None:
    rid = "run-42:step.7_" + "x" * 100
    response = anon.get("/api/clusters", headers={"X-Request-ID": rid})
    assert response.headers["x-request-id"] == rid
    assert response.json()["request_id"] == rid


@pytest.mark.parametrize("rid", ["has space", "x" * 129, "semi;colon", "ünï"])
def test_unsafe_request_id_is_replaced(anon: httpx.Client, rid: str) -> None:
    response = anon.get("/health", headers={"X-Request-ID": rid.encode("utf-8")})
    assert response.headers["x-request-id"] != rid
    uuid.UUID(response.headers["x-request-id"])


@pytest.mark.parametrize("method,path", [
    ("GET", "/api/clusters"),
    ("POST", "/api/clusters"),
    ("GET", "/api/clusters/00000000-0000-0000-0000-000000000000/workloads"),
    ("GET", "/api/containers"),
    ("DELETE", "/api/containers/anything"),
    ("POST", "/api/containers/anything/exec"),
    ("GET", "/api/containers/anything/logs"),
    ("POST", "/api/containers/anything/stop"),
    ("DELETE", "/api/containers/anything/routes"),
    ("GET", "/api/api-keys"),
    ("DELETE", "/api/api-keys/anything"),
    ("POST", "/api/volumes"),
    ("GET", "/api/volumes/v/files/a/b"),
    ("POST", "/api/volumes/v/archive"),
    ("GET", "/api/events"),
])
@pytest.mark.parametrize("headers", [{}, {"X-Api-Key": "wrong"},
                                     {"Authorization": "Bearer wrong"},
                                     {"Authorization": "Basic d3Jvbmc6d3Jvbmc="}])
def test_tenant_routes_need_a_valid_key(anon: httpx.Client, method: str, path: str,
                                        headers: dict[str, str]) -> None:
    response = anon.request(method, path, headers=headers, content=b"{not json")
    assert_error(response, 401, "UNAUTHORIZED")
    assert "wrong" not in response.text


def test_bearer_key_is_accepted(anon: httpx.Client, ref_keys: dict[str, str]) -> None:
    response = anon.get("/api/clusters", headers={"Authorization": f"Bearer {ref_keys['main']}"})
    assert response.status_code == 200
    assert isinstance(response.json()["clusters"], list)


def test_unknown_route_is_json_404(api: Tenant) -> None:
    body = assert_error(api.get("/api/definitely-not-a-route"), 404, "NOT_FOUND")
    assert body["details"]["path"] == "/api/definitely-not-a-route"


def test_wrong_method_is_json_405_listing_allowed_methods(api: Tenant) -> None:
    response = api.put("/api/clusters", json={})
    assert_error(response, 405, "METHOD_NOT_ALLOWED")
    assert {"GET", "POST"} <= {m.strip() for m in response.headers["allow"].split(",")}


@pytest.mark.parametrize("content", [b"{bad", b'{"name": NaN}', b"\xff\xfe", b"[" * 50_000,
                                     b'{"name": "\\ud800"}', b'{"a": 1} trailing'])
def test_malformed_json_is_400(api: Tenant, content: bytes) -> None:
    assert_error(api.post("/api/clusters", content=content), 400, "VALIDATION_ERROR", "body")


@pytest.mark.parametrize("content", [b"[]", b'"text"', b"3", b"null", b""])
def test_body_that_is_not_an_object_is_422(api: Tenant, content: bytes) -> None:
    assert_error(api.post("/api/clusters", content=content), 422, "VALIDATION_ERROR", "body")


def test_oversized_body_is_413(api: Tenant) -> None:
    payload = b'{"name": "' + b"a" * (8 * 1024 * 1024) + b'"}'
    assert_error(api.post("/api/clusters", content=payload), 413, "PAYLOAD_TOO_LARGE")


def test_oversized_streamed_body_is_413(api: Tenant) -> None:
    def chunks():  # no Content-Length: counted while streaming
        for _ in range(9):
            yield b" " * (1024 * 1024)

    assert_error(api.post("/api/clusters", content=chunks()), 413, "PAYLOAD_TOO_LARGE")


def test_server_keeps_serving_after_bad_input(api: Tenant) -> None:
    api.post("/api/clusters", content=b"[" * 50_000)
    assert api.get("/api/clusters").status_code == 200
