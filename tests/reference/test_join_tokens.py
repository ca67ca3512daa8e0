"""Join tokens: bounds, defaults, single use, cluster binding and expiry."""

from __future__ import annotations

import time
from typing import Any

import httpx
import pytest

from quilt_verify.reference import ReferenceServer

from .helpers import Tenant, assert_error, register_body


def register(http: httpx.Client, cid: str, token: str | None, body: Any) -> httpx.Response:
    headers = {} if token is None else {"X-Quilt-Join-Token": token}
    return http.post(f"/api/agent/clusters/{cid}/nodes/register", headers=headers, json=body)


def test_mint_defaults(api: Tenant, cluster: dict) -> None:
    before = int(time.time())
    minted = api.ok(api.post(f"/api/clusters/{cluster['id']}/join-tokens", json={}), 201)
    assert set(minted) == {"token_id", "cluster_id", "join_token", "expires_at", "max_uses"}
    assert minted["cluster_id"] == cluster["id"]
    assert minted["max_uses"] == 1
    assert before + 3600 <= minted["expires_at"] <= int(time.time()) + 3600
    assert minted["join_token"].startswith("qjt_") and len(minted["join_token"]) > 40
    # No body at all is the same as {}.
    assert api.ok(api.post(f"/api/clusters/{cluster['id']}/join-tokens"), 201)["max_uses"] == 1


@pytest.mark.parametrize("body", [{"ttl_secs": 60}, {"ttl_secs": 86400}, {"max_uses": 1},
                                  {"max_uses": 1000}])
def test_bounds_are_inclusive(api: Tenant, cluster: dict, body: dict[str, int]) -> None:
    minted = api.ok(api.post(f"/api/clusters/{cluster['id']}/join-tokens", json=body), 201)
    assert minted["max_uses"] == body.get("max_uses", 1)


@pytest.mark.parametrize("body,status,field", [
    ({"ttl_secs": 59}, 400, "ttl_secs"), ({"ttl_secs": 86401}, 400, "ttl_secs"),
    ({"max_uses": 0}, 400, "max_uses"), ({"max_uses": 1001}, 400, "max_uses"),
    ({"ttl_secs": "600"}, 422, "ttl_secs"), ({"max_uses": True}, 422, "max_uses"),
    ({"ttl_secs": 600.5}, 422, "ttl_secs"),
])
def test_out_of_range_or_wrong_type(api: Tenant, cluster: dict, body: dict[str, Any],
                                    status: int, field: str) -> None:
    response = api.post(f"/api/clusters/{cluster['id']}/join-tokens", json=body)
    assert_error(response, status, "VALIDATION_ERROR", field)


def test_single_use_token_registers_once(api: Tenant, anon: httpx.Client,
                                         cluster: dict) -> None:
    token = api.join_token(cluster["id"])
    assert register(anon, cluster["id"], token, register_body("first")).status_code == 201
    assert_error(register(anon, cluster["id"], token, register_body("second")), 401,
                 "UNAUTHORIZED")


def test_failed_registration_does_not_use_the_token(api: Tenant, anon: httpx.Client,
                                                    cluster: dict) -> None:
    token = api.join_token(cluster["id"], max_uses=2)
    cid = cluster["id"]
    assert_error(register(anon, cid, token, {"name": "n"}), 422, "VALIDATION_ERROR")
    assert register(anon, cid, token, register_body("a")).status_code == 201
    assert_error(register(anon, cid, token, register_body("a")), 409, "CONFLICT")
    assert register(anon, cid, token, register_body("b")).status_code == 201
    assert_error(register(anon, cid, token, register_body("c")), 401, "UNAUTHORIZED")


def test_token_is_bound_to_its_cluster(api: Tenant, anon: httpx.Client, cluster: dict) -> None:
    elsewhere = api.cluster()
    token = api.join_token(elsewhere["id"], max_uses=3)
    assert_error(register(anon, cluster["id"], token, register_body("x")), 401, "UNAUTHORIZED")
    assert register(anon, elsewhere["id"], token, register_body("x")).status_code == 201


@pytest.mark.parametrize("token", [None, "", "qjt_garbage", "Bearer nope"])
def test_missing_or_garbage_token_is_401_before_the_body(anon: httpx.Client, cluster: dict,
                                                         token: str | None) -> None:
    response = anon.post(f"/api/agent/clusters/{cluster['id']}/nodes/register",
                         headers={} if token is None else {"X-Quilt-Join-Token": token},
                         content=b"{malformed")
    assert_error(response, 401, "UNAUTHORIZED")


def test_tenant_key_is_not_a_join_token(anon: httpx.Client, cluster: dict,
                                        ref_keys: dict[str, str]) -> None:
    response = anon.post(f"/api/agent/clusters/{cluster['id']}/nodes/register",
                         headers={"X-Api-Key": ref_keys["main"]}, json=register_body("k"))
    assert_error(response, 401, "UNAUTHORIZED")


class FakeClock:
    def __init__(self) -> None:
        self.now = 1_800_000_000.0

    def __call__(self) -> float:
        return self.now


def test_expired_token_is_401() -> None:
    clock = FakeClock()
    with ReferenceServer(["clock-key"], clock=clock) as server, \
            Tenant(server.url, "clock-key") as tenant:
        cid = tenant.cluster()["id"]
        minted = tenant.ok(tenant.post(f"/api/clusters/{cid}/join-tokens",
                                       json={"ttl_secs": 60, "max_uses": 5}), 201)
        assert minted["expires_at"] == 1_800_000_060
        clock.now += 59
        assert register(tenant.http, cid, minted["join_token"],
                        register_body("early")).status_code == 201
        clock.now += 1
        assert_error(register(tenant.http, cid, minted["join_token"], register_body("late")),
                     401, "UNAUTHORIZED")
