import socket

import pytest

from quilt_verify.client import Exchange, QuiltClient, VariantSeen
from quilt_verify.config import Secret
from quilt_verify.errors import QuiltAPIError, QuiltProtocolError, QuiltTransportError
from tests.scripted_server import Reply, ScriptedServer

KEY = Secret("quilt_sk_test_0123456789abcdef")


@pytest.fixture
def server():
    with ScriptedServer() as srv:
        yield srv


@pytest.fixture
def sleeps():
    return []


@pytest.fixture
def client(server, sleeps):
    events = []
    c = QuiltClient(server.url, api_key=KEY, sleep=sleeps.append, observers=[events.append],
                    max_retry_after=5.0)
    c.events = events
    yield c
    c.close()


def error(status, code, rid="srv-rid", **extra):
    return Reply(status, {"error": f"{code} happened", "error_code": code, "request_id": rid},
                 **extra)


def test_429_is_retried_for_post_honouring_retry_after(server, client, sleeps):
    server.on("POST", "/api/clusters", error(429, "RATE_LIMITED", headers={"Retry-After": "2"}),
              Reply(201, {"id": "c1", "name": "n"}))
    assert client.create_cluster("n", "10.0.0.0/16", 24)["id"] == "c1"
    assert sleeps == [2.0]
    ids = [s.headers["x-request-id"] for s in server.seen]
    assert len(ids) == 2 and len(set(ids)) == 2  # fresh request id per attempt


def test_retry_after_is_capped_and_body_retry_after_is_read(server, client, sleeps):
    server.on("GET", "/api/clusters", error(429, "RATE_LIMITED", headers={"Retry-After": "999"}),
              Reply(429, {"error": "slow", "retry_after": 3}), Reply(200, {"clusters": []}))
    assert client.list_clusters() == []
    assert sleeps == [5.0, 3.0]


def test_5xx_retried_for_get_and_delete_only(server, client, sleeps):
    server.on("GET", "/api/clusters/c1", error(503, "UNAVAILABLE"), Reply(200, {"id": "c1"}))
    assert client.get_cluster("c1") == {"id": "c1"}
    server.on("DELETE", "/api/clusters/c1", error(502, "BAD_GATEWAY"), Reply(200, {"success": True}))
    assert client.delete_cluster("c1") == {"success": True}
    server.on("POST", "/api/clusters/c1/reconcile", error(500, "INTERNAL", rid="rid-post"))
    with pytest.raises(QuiltAPIError) as info:
        client.reconcile("c1")
    assert info.value.status == 500
    posts = [s for s in server.seen if s.method == "POST"]
    assert len(posts) == 1  # a POST is never retried on 5xx
    assert len(sleeps) == 2


def test_attempts_are_bounded(server, client, sleeps):
    server.on("GET", "/api/clusters", error(500, "INTERNAL", rid="last"))
    with pytest.raises(QuiltAPIError) as info:
        client.list_clusters()
    assert len(server.seen) == 3 and len(sleeps) == 2
    assert info.value.request_id == "last"


def test_error_carries_method_path_status_code_and_request_id(server, client):
    server.on("GET", "/api/clusters/nope", error(404, "NOT_FOUND", rid="rid-404"))
    with pytest.raises(QuiltAPIError) as info:
        client.get_cluster("nope")
    exc = info.value
    assert (exc.method, exc.path, exc.status, exc.error_code, exc.request_id) == (
        "GET", "/api/clusters/nope", 404, "NOT_FOUND", "rid-404")
    assert exc.message == "NOT_FOUND happened"
    assert "GET /api/clusters/nope -> 404 NOT_FOUND" in str(exc) and "rid-404" in str(exc)
    assert len(server.seen) == 1  # 4xx is not retried


def test_request_id_falls_back_to_the_one_sent(server, client):
    server.on("GET", "/api/clusters", Reply(401, raw=b"<html>no</html>"))
    with pytest.raises(QuiltAPIError) as info:
        client.list_clusters()
    assert info.value.request_id == server.seen[0].headers["x-request-id"]
    assert "non-JSON" in info.value.message


def test_non_json_success_is_a_protocol_error(server, client):
    server.on("GET", "/api/clusters", Reply(200, raw=b"<html>hello</html>",
                                            headers={"Content-Type": "text/html"}))
    with pytest.raises(QuiltProtocolError, match="expected a JSON body, got text/html"):
        client.list_clusters()


def test_wrong_list_shape_is_a_protocol_error(server, client):
    server.on("GET", "/api/clusters", Reply(200, {"items": []}))
    with pytest.raises(QuiltProtocolError, match="'clusters' list"):
        client.list_clusters()


def test_unreachable_target_is_a_transport_error():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    with QuiltClient(f"http://127.0.0.1:{port}", api_key=KEY) as c:
        with pytest.raises(QuiltTransportError, match="connection failed") as info:
            c.health()
    assert info.value.request_id


def test_tenant_auth_headers(server, client):
    server.on("GET", "/api/clusters", Reply(200, {"clusters": []}))
    client.list_clusters()
    assert server.seen[-1].headers["x-api-key"] == KEY.reveal()
    assert "authorization" not in server.seen[-1].headers
    jwt_client = client.with_credentials(jwt=Secret("eyJ.header.sig"))
    jwt_client.list_clusters()
    assert server.seen[-1].headers["authorization"] == "Bearer eyJ.header.sig"
    assert "x-api-key" not in server.seen[-1].headers


def test_agent_routes_carry_only_the_agent_credential(server, client):
    server.on("POST", "/api/agent/clusters/c1/nodes/register",
              Reply(201, {"node_id": "n1", "node_token": "qnt_flat_token_value"}))
    reg = client.agent_register("c1", "qjt_join", {"name": "n"})
    assert (reg.node_id, reg.node_token) == ("n1", "qnt_flat_token_value")
    seen = server.seen[-1].headers
    assert seen["x-quilt-join-token"] == "qjt_join" and "x-api-key" not in seen
    server.on("POST", "/api/agent/clusters/c1/nodes/n1/heartbeat", Reply(200, {"success": True}))
    client.agent_heartbeat("c1", "n1", reg.node_token, {"state": "ready"})
    seen = server.seen[-1].headers
    assert seen["x-quilt-node-token"] == "qnt_flat_token_value" and "x-api-key" not in seen
    assert VariantSeen("register_response", "flat") in client.events


def test_variants_are_normalized_and_reported(server, client):
    server.on("GET", "/api/clusters", Reply(200, [{"id": "c1"}]))
    assert client.list_clusters() == [{"id": "c1"}]
    server.on("POST", "/api/agent/clusters/c1/nodes/register",
              Reply(201, {"node": {"id": "n2", "state": "registered"},
                          "allocation": {"pod_cidr": "10.0.1.0/24"}, "node_token": "qnt_x"}))
    reg = client.agent_register("c1", "qjt", {})
    assert reg.node_id == "n2" and reg.allocation["pod_cidr"] == "10.0.1.0/24"
    server.on("GET", "/api/clusters/c1/nodes/n2", Reply(200, {"node": {"id": "n2"}}))
    assert client.get_node("c1", "n2") == {"id": "n2"}
    variants = {(e.name, e.value) for e in client.events if isinstance(e, VariantSeen)}
    assert {("list:clusters", "bare"), ("register_response", "nested"),
            ("object:node", "wrapped")} <= variants


def test_operation_driven_container_create_is_followed(server, client, sleeps):
    server.on("POST", "/api/containers",
              Reply(202, {"success": True, "operation_id": "op1", "status_url": "/api/operations/op1"}))
    server.on("GET", "/api/operations/op1", Reply(200, {"operation_id": "op1", "status": "running"}),
              Reply(200, {"operation_id": "op1", "status": "succeeded",
                          "result": {"container_id": "ctr9"}}))
    server.on("GET", "/api/containers/ctr9", Reply(200, {"container_id": "ctr9", "state": "running"}))
    container = client.create_container({"name": "x"})
    assert container["container_id"] == "ctr9"
    assert VariantSeen("container_create", "operation") in client.events


def test_failed_create_operation_is_reported(server, client):
    server.on("POST", "/api/containers", Reply(202, {"operation_id": "op2"}))
    server.on("GET", "/api/operations/op2", Reply(200, {"status": "failed",
                                                       "reason_message": "no capacity"}))
    with pytest.raises(QuiltProtocolError, match="ended 'failed': no capacity"):
        client.create_container({"name": "x"})


def test_every_attempt_is_observed(server, client):
    server.on("GET", "/api/clusters", error(503, "X"), Reply(200, {"clusters": []}))
    client.list_clusters()
    exchanges = [e for e in client.events if isinstance(e, Exchange)]
    assert [(e.attempt, e.status) for e in exchanges] == [(1, 503), (2, 200)]
    assert all(e.duration_ms > 0 for e in exchanges)


def test_throttle_spaces_requests_and_caps_concurrency():
    from quilt_verify.client import Throttle

    now = [100.0]
    slept = []

    def sleep(seconds):
        slept.append(round(seconds, 6))
        now[0] += seconds

    throttle = Throttle(max_concurrency=2, max_rps=4, clock=lambda: now[0], sleep=sleep)
    for _ in range(3):
        throttle.acquire()
        throttle.release()
    assert slept == [0.25, 0.25]  # 4 rps: starts spaced 250 ms apart, the first at once
    throttle.acquire()
    throttle.acquire()
    assert throttle.slots.acquire(blocking=False) is False  # a third request would wait
    throttle.release()
    throttle.release()


def test_throttle_limits_a_real_client(server, sleeps):
    import time as _time

    from quilt_verify.client import Throttle

    server.on("GET", "/health", Reply(200, {"status": "ok"}))
    with QuiltClient(server.url, throttle=Throttle(max_rps=20)) as c:
        started = _time.monotonic()
        for _ in range(5):
            c.health()
        assert _time.monotonic() - started >= 0.19  # 5 starts at 20 rps span >= 200 ms


def test_bad_throttle_settings_are_refused():
    from quilt_verify.client import Throttle

    with pytest.raises(ValueError):
        Throttle(max_concurrency=0)
    with pytest.raises(ValueError):
        Throttle(max_rps=0)
