"""The OpenAPI contract, the endpoint catalogue read from it, and the response schema check."""

from __future__ import annotations

import json

import httpx
import pytest
from jsonschema import Draft202012Validator

from quilt_verify import contract
from quilt_verify.catalogue import CAPABILITIES, CAPABILITY_TITLES, ENDPOINTS, by_capability, match
from quilt_verify.client import Exchange, QuiltClient
from quilt_verify.config import Secret
from quilt_verify.reference import ReferenceServer
from quilt_verify.schema import (
    SchemaChecker,
    check_bundle,
    check_exchange,
    check_response,
    format_violations,
    validator,
)
from tests.conftest import run_cli

A = "/api/agent/clusters/:cluster_id/nodes"
# The seed scope as it stood before the catalogue was read from the contract: all must remain.
SEED_ENDPOINTS = {
    "GET /health", "GET /api/containers", "POST /api/containers", "GET /api/containers/:id",
    "GET /api/containers/:id/logs", "POST /api/containers/:id/exec",
    "GET /api/containers/:id/metrics", "GET /api/containers/:id/network",
    "POST /api/containers/:id/start", "POST /api/containers/:id/stop",
    "POST /api/containers/:id/kill", "DELETE /api/containers/:id",
    "POST /api/containers/:id/routes", "DELETE /api/containers/:id/routes",
    "GET /api/api-keys", "POST /api/api-keys", "DELETE /api/api-keys/:id", "GET /api/volumes",
    "POST /api/volumes", "GET /api/volumes/:name", "DELETE /api/volumes/:name",
    "POST /api/volumes/:name/files", "GET /api/volumes/:name/files/*path",
    "DELETE /api/volumes/:name/files/*path", "POST /api/volumes/:name/archive",
    "POST /api/clusters", "GET /api/clusters", "GET /api/clusters/:cluster_id",
    "DELETE /api/clusters/:cluster_id", "POST /api/clusters/:cluster_id/reconcile",
    "POST /api/clusters/:cluster_id/join-tokens", "POST /api/clusters/:cluster_id/workloads",
    "GET /api/clusters/:cluster_id/workloads", "GET /api/clusters/:cluster_id/workloads/:workload_id",
    "PUT /api/clusters/:cluster_id/workloads/:workload_id",
    "DELETE /api/clusters/:cluster_id/workloads/:workload_id",
    "GET /api/clusters/:cluster_id/placements", "GET /api/clusters/:cluster_id/nodes",
    "GET /api/clusters/:cluster_id/nodes/:node_id", "POST /api/clusters/:cluster_id/nodes/:node_id/drain",
    "DELETE /api/clusters/:cluster_id/nodes/:node_id", f"POST {A}/register",
    f"POST {A}/:node_id/heartbeat", f"GET {A}/:node_id/allocation", f"GET {A}/:node_id/placements",
    f"POST {A}/:node_id/placements/:placement_id/report", f"POST {A}/:node_id/deregister",
    "GET /api/events",
}
CLUSTER = {"id": "c1", "name": "qv-a", "pod_cidr": "10.1.0.0/16", "node_cidr_prefix": 24,
           "created_at": 1700000000}


# -- the contract and the catalogue ----------------------------------------------------------------
def test_the_catalogue_is_the_contract_and_keeps_every_seed_endpoint():
    keys = [ep.key for ep in ENDPOINTS]
    assert len(keys) == len(set(keys)) == 48
    assert set(keys) == SEED_ENDPOINTS
    assert keys == [op.key for op in contract.operations()]
    assert contract.document()["openapi"] == "3.1.0"
    assert set(by_capability()) == {c.key for c in CAPABILITIES}
    assert {ep.capability for ep in ENDPOINTS} <= set(CAPABILITY_TITLES)
    auth = {ep.key: ep.auth for ep in ENDPOINTS}
    assert auth["GET /health"] == "none" and auth["GET /api/events"] == "tenant"
    assert auth[f"POST {A}/register"] == "join-token"
    assert {auth[k] for k in SEED_ENDPOINTS if k.startswith(f"POST {A}/:")} == {"node-token"}


def test_templates_match_requests_as_before():
    assert match("GET", "http://x/api/volumes/v1/files/a%20b/c.txt").template == \
        "/api/volumes/:name/files/*path"
    assert match("POST", "/api/agent/clusters/c/nodes/register").key == f"POST {A}/register"
    assert match("POST", "/api/agent/clusters/c/nodes/n/heartbeat").key == \
        f"POST {A}/:node_id/heartbeat"
    assert match("GET", "/api/containers/x/logs?limit=5").key == "GET /api/containers/:id/logs"
    assert match("GET", "/api/snapshots") is None and match("PATCH", "/api/clusters") is None


def test_every_operation_documents_its_answers_and_errors():
    for op in contract.operations():
        statuses = {status for status, _, _ in contract.iter_responses(op)}
        assert any(s.startswith("2") for s in statuses), op.key
        if op.auth != "none":
            assert "401" in statuses and "429" in statuses, op.key
        if ":" in op.template or "*" in op.template:
            assert "404" in statuses, op.key
        body = contract.resolve(op.spec.get("requestBody"))
        if body and body.get("required"):
            assert {"400", "413", "422"} <= statuses, op.key
        assert not any(s.startswith("5") for s in statuses if op.key != "POST /api/containers"
                       and op.key != "GET /health"), op.key


def test_every_reference_resolves_and_every_schema_compiles():
    def refs(node):
        if isinstance(node, dict):
            if isinstance(node.get("$ref"), str):
                yield node["$ref"]
            for value in node.values():
                yield from refs(value)
        elif isinstance(node, list):
            for value in node:
                yield from refs(value)

    found = set(refs(contract.document()))
    assert len(found) > 40
    for ref in found:
        assert ref.startswith("#/") and contract.lookup(ref[1:]) is not None, ref
    for name, schema in contract.document()["components"]["schemas"].items():
        Draft202012Validator.check_schema(schema)
        assert validator(f"/components/schemas/{name}").is_valid({}) in (True, False)


def test_variants_of_section_9_are_in_the_contract():
    schemas = contract.document()["components"]["schemas"]
    assert [v["title"] for v in schemas["Registered"]["oneOf"]] == ["nested (canonical)", "flat"]
    for listing in ("ContainerList", "ClusterList", "NodeList", "WorkloadList", "PlacementList",
                    "VolumeList", "ApiKeyList", "AssignmentList"):
        assert [v["title"] for v in schemas[listing]["oneOf"]] == ["wrapped", "bare array"]
    create = contract.by_key()["POST /api/containers"]
    assert {s for s, _, _ in contract.iter_responses(create)} >= {"200", "201", "202"}
    archive = contract.by_key()["POST /api/volumes/:name/archive"]
    assert {s for s, _, _ in contract.iter_responses(archive)} >= {"200", "202"}


# -- the schema check -----------------------------------------------------------------------------------
def test_one_broken_field_yields_one_violation_naming_it_and_its_pointer():
    found = check_response("POST", "http://t/api/clusters", 201, {**CLUSTER, "pod_cidr": 10},
                           request_id="rid-1")
    assert len(found) == 1
    v = found[0]
    assert (v.pointer, v.status, v.operation, v.request_id) == (
        "/pod_cidr", 201, "POST /api/clusters", "rid-1")
    assert "`pod_cidr`" in v.message and "string" in v.message and "integer" in v.message
    assert str(v) == ("POST /api/clusters -> 201: /pod_cidr: `pod_cidr` must be string, got "
                      "integer 10 (request_id=rid-1)")
    assert "rid-1" in format_violations(found)


def test_a_missing_field_deep_in_a_list_is_named_with_its_variant():
    body = {"clusters": [CLUSTER, {k: v for k, v in CLUSTER.items() if k != "node_cidr_prefix"}]}
    [v] = check_response("GET", "/api/clusters", 200, body)
    assert v.pointer == "/clusters/1/node_cidr_prefix"
    assert v.message == ("missing required field `clusters[1].node_cidr_prefix` "
                         "(closest documented variant: wrapped)")


def test_extra_fields_and_every_documented_variant_are_accepted():
    ok = [
        ("POST", "/api/clusters", 201, {**CLUSTER, "unknown": {"x": [1]}}),
        ("GET", "/api/clusters", 200, [CLUSTER]),
        ("GET", "/api/clusters", 200, {"clusters": []}),
        ("POST", "/api/agent/clusters/c/nodes/register", 201,
         {"node": {"id": "n", "state": "registered"}, "node_token": "t" * 20,
          "allocation": {"pod_cidr": "10.1.0.0/24", "bridge_name": "b"}}),
        ("POST", "/api/agent/clusters/c/nodes/register", 200, {"node_id": "n", "node_token": "t" * 20}),
        ("POST", "/api/containers", 201, {"container_id": "x", "name": "n", "state": "running"}),
        ("POST", "/api/containers", 200, {"id": "x", "name": "n", "state": "running"}),
        ("POST", "/api/containers", 202, {"success": True, "operation_id": "op",
                                          "status_url": "/api/operations/op"}),
        ("POST", "/api/containers/x/exec", 200, {"exit_code": 0, "stdout": "", "stderr": ""}),
        ("POST", "/api/containers/x/exec", 200, {"job_id": "j"}),
        ("POST", "/api/volumes/v/archive", 200, {"success": True, "files_extracted": 2}),
        ("POST", "/api/volumes/v/archive", 202, {"operation_id": "op"}),
        ("GET", "/api/containers/x/logs", 200, {"logs": [{"message": "m"}, "plain line"]}),
        ("GET", "/api/clusters", 401, {"error": "unauthorized", "error_code": "UNAUTHORIZED"}),
        ("GET", "/api/clusters", 401, {"message": "no", "hint": None}),
        ("DELETE", "/api/api-keys/k", 200, None),
        ("DELETE", "/api/clusters/c", 204, None),
    ]
    for method, path, status, body in ok:
        assert check_response(method, path, status, body) == [], (method, path, status, body)


def test_statuses_bodies_and_content_types_the_contract_does_not_allow():
    def messages(*args, **kwargs):
        return [(v.pointer, v.message) for v in check_response(*args, **kwargs)]

    assert messages("GET", "/api/clusters", 500, {"error": "boom"}) == [
        ("", "status 500 is not documented for GET /api/clusters (documented: 200, 401, 403, 429)")]
    assert messages("GET", "/api/clusters", 401, {"error_code": "X"}) == [
        ("", "`body` needs one of the fields `error`, `message`")]
    assert messages("GET", "/api/clusters/c", 404, None) == [
        ("", "the body is empty, a JSON body is documented")]
    assert messages("GET", "/api/clusters", 401, None, content_type="text/html") == [
        ("", "the body is not JSON (content type text/html), a JSON body is documented")]
    assert messages("DELETE", "/api/clusters/c", 200, None) == [
        ("", "the body is empty, a JSON body is documented")]
    assert messages("POST", "/api/agent/clusters/c/nodes/register", 201,
                    {"node": {"name": "n"}, "node_token": "t" * 20}) == [
        ("/node/id", "missing required field `node.id` (closest documented variant: "
                     "nested (canonical))")]
    assert messages("GET", "/api/clusters/c/nodes/n", 200, {"node": {"id": "n", "state": "up"}}) == [
        ("/node/state", '`node.state` must be one of "registered", "ready", "not_ready", '
                        '"draining", "deleted", got "up"')]
    assert messages("GET", "/health", 200, {"status": "fine"}) == [
        ("/status", '`status` must be one of "ok", got "fine"')]


def test_the_event_stream_is_judged_by_status_and_content_type_and_unknown_paths_not_at_all():
    assert check_response("GET", "/api/events", 200, None, content_type="text/event-stream") == []
    [v] = check_response("GET", "/api/events", 200, {"x": 1}, content_type="application/json")
    assert "text/event-stream" in v.message
    assert check_response("GET", "/api/events", 401, {"error": "no"}) == []
    assert check_response("GET", "/api/snapshots", 500, None) == []


def test_validators_are_compiled_once():
    assert validator("/components/schemas/Cluster") is validator("/components/schemas/Cluster")


def test_exchanges_are_checked_from_their_bytes_and_kept_per_test():
    def exchange(status, body: bytes, content_type="application/json"):
        return Exchange(method="POST", url="http://t/api/clusters", path="/api/clusters",
                        request_headers=[], request_body=b"{}", attempt=1, request_id="rid-9",
                        started_at="", status=status,
                        response_headers=[("content-type", content_type)], response_body=body)

    assert check_exchange(exchange(201, json.dumps(CLUSTER).encode())) == []
    [v] = check_exchange(exchange(201, b"<html>", "text/html"))
    assert v.request_id == "rid-9" and "not JSON" in v.message
    test_of = {"now": "suite::t1"}
    checker = SchemaChecker(test_of=lambda: test_of["now"])
    checker(exchange(201, json.dumps({**CLUSTER, "id": 5}).encode()))
    test_of["now"] = "suite::t2"
    checker(exchange(201, json.dumps(CLUSTER).encode()))
    checker(exchange(None, b""))  # no answer: nothing to judge
    assert checker.checked == 2
    [v] = checker.take("suite::t1")
    assert v.pointer == "/id" and checker.take("suite::t1") == [] and checker.take("suite::t2") == []


# -- against the reference -------------------------------------------------------------------------------
def break_prefix(method, path, status, body):
    """Test-only misbehaviour: cluster creation answers `node_cidr_prefix` as a string."""
    if method == "POST" and path == "/api/clusters" and status == 201:
        return status, {**body, "node_cidr_prefix": str(body["node_cidr_prefix"])}
    return None


def test_breaking_one_response_field_in_the_reference_fails_the_check_naming_it(tmp_path):
    key = "qvtest_" + "k" * 24
    with ReferenceServer([key], data_dir=str(tmp_path), response_hook=break_prefix) as server:
        checker = SchemaChecker()
        checker.begin_test("t")
        with QuiltClient(server.url, api_key=Secret(key), observers=[checker]) as client:
            cluster = client.create_cluster("qv-broken", "10.5.0.0/16", 24)  # the client takes it
            assert cluster["node_cidr_prefix"] == "24"
            assert client.get_cluster(cluster["id"])["node_cidr_prefix"] == 24
            client.list_clusters()
        found = checker.take("t")
        assert [(v.method, v.status, v.pointer) for v in found] == [
            ("POST", 201, "/node_cidr_prefix")]
        assert found[0].message == '`node_cidr_prefix` must be integer, got string "24"'
        echoed = httpx.get(f"{server.url}/health").headers["x-request-id"]
        assert found[0].request_id and found[0].request_id != echoed


def test_a_run_against_a_broken_reference_leaves_the_violation_in_its_bundle(tmp_path,
                                                                             reference_key):
    with ReferenceServer([reference_key], data_dir=str(tmp_path / "data"),
                         response_hook=break_prefix) as server:
        run_dir = tmp_path / "run"
        proc = run_cli("run", "--target", server.url, "--api-key", reference_key,
                       "--report-dir", str(run_dir), "--", "-k", "test_55_cluster_control_plane")
    assert proc.returncode == 1, proc.stdout[-2000:]
    found = {(v.operation, v.pointer, v.message) for v in check_bundle(run_dir)}
    message = '`node_cidr_prefix` must be integer, got string "26"'  # test_55 uses /26
    assert found == {("POST /api/clusters", "/node_cidr_prefix", message)}
    # the run itself failed the check that saw it, naming the field, and recorded it
    assert message in proc.stdout and "request_id" in proc.stdout
    results = {r["name"]: r for r in json.loads((run_dir / "results.json").read_text())["tests"]}
    assert results["test_01_create_and_read_cluster"]["outcome"] == "failed"
    evidence = (run_dir / results["test_01_create_and_read_cluster"]["evidence"]).read_text()
    assert '"kind":"contract_violation"' in evidence and "/node_cidr_prefix" in evidence


@pytest.mark.parametrize("operation", [op.key for op in contract.operations()])
def test_request_schemas_and_parameters_are_well_formed(operation):
    op = contract.by_key()[operation]
    schema = contract.request_schema(op)
    if schema is not None:
        Draft202012Validator.check_schema(contract.resolve(schema))
    names = [p["name"] for p in op.spec["parameters"] if p["in"] == "path"]
    assert names == [s[1:] for s in op.template.split("/") if s[:1] in (":", "*")], operation
