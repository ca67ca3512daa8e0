"""The session suite, run as a user runs it, against the reference backend over real HTTP."""

import json
import subprocess

import httpx
import pytest

from quilt_verify.evidence import verify_manifest
from quilt_verify.schema import check_bundle
from tests.conftest import container_processes, run_cli

SESSION_STEPS = 17


def load(run_dir, name):
    return json.loads((run_dir / name).read_text())


@pytest.fixture(scope="module")
def serial_run(tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("serial") / "run"
    return run_dir, run_cli("run", "--report-dir", str(run_dir))


def test_default_run_passes_with_a_complete_bundle(serial_run):
    run_dir, proc = serial_run
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-2000:]
    results = load(run_dir, "results.json")["tests"]
    # the only check that cannot run against the reference: its join tokens live >= 60 s
    skipped = [r["name"] for r in results if r["outcome"] == "skipped"]
    assert skipped == ["test_expired_join_token_is_refused"], skipped
    passed = len(results) - len(skipped)
    assert f"{passed} passed, 1 skipped" in proc.stdout and "warning" not in proc.stdout
    session = [r for r in results if r["capability"] == "kubernetes-session"]
    assert len(session) == SESSION_STEPS
    assert {r["capability"] for r in results} == {
        "health", "container-runtime", "api-keys", "volumes", "cluster-control-plane",
        "kubernetes-session", "events", "negative", "tenant-isolation", "property-based"}
    manifest = load(run_dir, "manifest.json")
    assert manifest["outcome"] == "passed"
    assert manifest["target"].startswith("http://127.0.0.1:")
    assert manifest["leak_scan"]["findings"] == []
    assert verify_manifest(run_dir) == []
    assert {r["outcome"] for r in results} == {"passed", "skipped"}
    # every answer of the run, bad requests included, matches the contract
    assert check_bundle(run_dir) == []
    for r in results:
        assert "MUST" in r["behavior"], r["name"]
        evidence = run_dir / r["evidence"]
        assert evidence.is_file(), r["evidence"]
        kinds = {json.loads(line)["kind"] for line in filter(None, evidence.read_text().split("\n"))}
        assert "exchange" in kinds
    run = load(run_dir, "run.json")
    assert run["variants"]["register_response"] == ["nested"]
    assert run["variants"]["container_create"] == ["synchronous"]
    assert not (run_dir / "leftovers.json").exists()


def test_external_target_run_leaves_no_trace_of_its_secrets(tmp_path, reference,
                                                           reference_key):
    run_dir = tmp_path / "run"
    proc = run_cli("run", "--target", reference.url, "--api-key", reference_key,
                   "--report-dir", str(run_dir))
    assert proc.returncode == 0, proc.stdout[-3000:]
    # the README's promise: grep for the key finds nothing in the bundle or the output
    grep = subprocess.run(["grep", "-r", "-l", reference_key, str(run_dir)], capture_output=True)
    assert grep.returncode == 1, grep.stdout
    assert reference_key not in proc.stdout + proc.stderr
    # minted join tokens and node tokens were recorded only redacted
    text = "".join(p.read_text() for p in run_dir.rglob("*.jsonl"))
    assert "qjt_" not in text and "qnt_" not in text
    assert '"join_token":"[REDACTED]"' in text and '"node_token":"[REDACTED]"' in text
    assert load(run_dir, "manifest.json")["leak_scan"]["values_checked"] >= 7
    # every container the run created was deleted, and its process is gone with it
    assert container_processes(reference.data_dir) == []
    created = httpx.get(f"{reference.url}/api/containers",
                        headers={"X-Api-Key": reference_key}).json()["containers"]
    assert created == []


def test_parallel_run_gives_the_same_outcome_and_one_bundle(serial_run, tmp_path):
    serial_dir, _ = serial_run
    run_dir = tmp_path / "parallel"
    proc = run_cli("run", "--report-dir", str(run_dir), "--", "-n", "2")
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "2 workers" in proc.stdout
    outcomes = {r["nodeid"]: r["outcome"] for r in load(run_dir, "results.json")["tests"]}
    assert outcomes == {r["nodeid"]: r["outcome"]
                        for r in load(serial_dir, "results.json")["tests"]}
    assert verify_manifest(run_dir) == []
    manifest = load(run_dir, "manifest.json")
    assert manifest["outcome"] == "passed" and manifest["leak_scan"]["findings"] == []
    # the workers' secrets reached the one leak scan: keys, join and node tokens
    assert manifest["leak_scan"]["values_checked"] >= load(
        serial_dir, "manifest.json")["leak_scan"]["values_checked"]
    assert load(run_dir, "run.json")["variants"] == load(serial_dir, "run.json")["variants"]
    assert "48 of 48 in the catalogue verified" in (run_dir / "VERIFICATION.md").read_text()
