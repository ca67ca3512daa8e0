"""Generated request bodies (quilt_verify.fuzz): validity, near-validity, replay, and a property
that catches a misbehaving reference, shrinks the example and prints it without credentials."""

from __future__ import annotations

import shlex

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from quilt_verify import contract, fuzz
from quilt_verify.client import QuiltClient
from quilt_verify.config import Secret
from quilt_verify.reference import ReferenceServer
from quilt_verify.schema import validator

BODY_OPERATIONS = [op.key for op in contract.operations() if contract.request_schema(op)]


def request_validator(key: str):
    schema = contract.request_schema(contract.by_key()[key])
    return validator(schema["$ref"][1:])


def test_examples_per_endpoint_option_then_environment_then_default():
    assert fuzz.examples_per_endpoint(None, {}) == fuzz.DEFAULT_EXAMPLES == 15
    assert fuzz.examples_per_endpoint(None, {"QUILT_FUZZ_EXAMPLES": "200"}) == 200
    assert fuzz.examples_per_endpoint(7, {"QUILT_FUZZ_EXAMPLES": "200"}) == 7
    assert fuzz.examples_per_endpoint("", {}) == 15
    for bad in ("many", "0", "-3"):
        with pytest.raises(ValueError, match="QUILT_FUZZ_EXAMPLES"):
            fuzz.examples_per_endpoint(None, {"QUILT_FUZZ_EXAMPLES": bad})
    with pytest.raises(ValueError, match="--quilt-fuzz-examples"):
        fuzz.examples_per_endpoint("x", {})


def test_the_same_examples_every_run_unless_a_seed_is_given():
    assert fuzz.seed_from({}) is None and fuzz.seed_from({"QUILT_FUZZ_SEED": "42"}) == 42
    assert isinstance(fuzz.seed_from({"QUILT_FUZZ_SEED": "random"}), int)
    with pytest.raises(ValueError, match="QUILT_FUZZ_SEED"):
        fuzz.seed_from({"QUILT_FUZZ_SEED": "often"})
    strategy = fuzz.payloads_for("POST /api/clusters/:cluster_id/workloads")

    def draw(seed):
        seen = []
        fuzz.run_property(strategy, lambda p: seen.append(p.content()) or [], examples=12,
                          replay=str, seed=seed)
        return seen

    assert draw(None) == draw(None)
    assert draw(7) == draw(7) != draw(8)


@pytest.mark.parametrize("key", BODY_OPERATIONS)
def test_valid_bodies_are_valid_and_near_valid_ones_are_not(key):
    schema = contract.request_schema(contract.by_key()[key])
    check = request_validator(key)

    @settings(max_examples=25, deadline=None, database=None)
    @given(fuzz.from_schema(schema))
    def valid(body):
        assert check.is_valid(body), body
        for near in fuzz.mutations(schema, body):
            if near.raw is not None:
                assert near.content() != fuzz.Payload("", body).content()
            elif near.label.startswith("an unknown extra field"):
                assert check.is_valid(near.body), near
            else:
                assert not check.is_valid(near.body), near

    valid()


def test_overrides_replace_top_level_fields():
    names = iter(f"qv-run-{i}" for i in range(1000))
    strategy = fuzz.from_schema(contract.request_schema(contract.by_key()["POST /api/clusters"]),
                                {"name": st.just(None).map(lambda _: next(names))})

    @settings(max_examples=10, deadline=None, database=None)
    @given(strategy)
    def named(body):
        assert body["name"].startswith("qv-run-")

    named()


def test_curl_replays_the_exact_body_with_placeholders_only():
    payload = fuzz.Payload("valid", {"name": "it's \u2028 \x00 ünï", "n": [1, None]})
    command = fuzz.curl("POST", "/api/clusters", payload, "tenant")
    assert command.startswith('curl -sS -X POST "$QUILT_BASE_URL/api/clusters" '
                              '-H "X-Api-Key: $QUILT_API_KEY"')
    assert shlex.split(command)[-1] == payload.text() == payload.content().decode()
    assert "X-Quilt-Node-Token: $QUILT_NODE_TOKEN" in fuzz.curl("POST", "/x", payload, "node-token")
    raw = fuzz.Payload("malformed JSON (truncated)", raw=b'{"name": "a')
    assert shlex.split(fuzz.curl("POST", "/x", raw))[-1] == '{"name": "a'


def server_error_on_refusal(method, path, status, body):
    """Test-only misbehaviour: every refused cluster creation becomes a 500."""
    if method == "POST" and path == "/api/clusters" and status in (400, 422):
        return 500, {"error": "boom"}
    return None


def test_the_property_catches_a_server_error_and_prints_a_shrunk_credential_free_replay(tmp_path):
    key = "qvtest_" + "f" * 24
    with ReferenceServer([key], data_dir=str(tmp_path), response_hook=server_error_on_refusal
                         ) as server, QuiltClient(server.url, api_key=Secret(key)) as client:
        attempts = []

        def attempt(payload):
            attempts.append(payload)
            answer = fuzz.send(client, "POST", "/api/clusters", payload)
            if answer.status in (200, 201):
                client.delete_cluster(answer.json()["id"])
            return answer.problems

        with pytest.raises(fuzz.PropertyFailure) as failure:
            fuzz.run_property(fuzz.payloads_for("POST /api/clusters"), attempt, examples=40,
                              replay=lambda p: fuzz.curl("POST", "/api/clusters", p))
    message = str(failure.value)
    assert "server error 500" in message
    assert "replay: curl -sS -X POST \"$QUILT_BASE_URL/api/clusters\"" in message
    assert "$QUILT_API_KEY" in message and key not in message
    assert "(examples drawn with QUILT_FUZZ_SEED unset)" in message
    assert len(attempts) > 1  # examples were generated, and the failure shrunk


def test_the_property_holds_for_a_conforming_reference(tmp_path):
    key = "qvtest_" + "g" * 24
    with ReferenceServer([key], data_dir=str(tmp_path)) as server, \
            QuiltClient(server.url, api_key=Secret(key)) as client:
        created = []

        def attempt(payload):
            answer = fuzz.send(client, "POST", "/api/clusters", payload)
            if answer.status in (200, 201):
                created.append(answer.json()["id"])
                client.delete_cluster(created[-1])
            return answer.problems

        fuzz.run_property(fuzz.payloads_for("POST /api/clusters"), attempt, examples=30,
                          replay=lambda p: fuzz.curl("POST", "/api/clusters", p))
        assert client.list_clusters() == []
