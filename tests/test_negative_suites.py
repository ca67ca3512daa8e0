"""The negative and tenant-isolation suites can fail: run as a user runs them against a reference
that accepts what it must refuse, every check fails and names the accepted requests. (Against
the plain reference they pass: see test_session_suite.py.)"""

from __future__ import annotations

import json
import re

from quilt_verify.reference import ReferenceServer
from tests.conftest import run_cli

NEGATIVE_CHECKS = 12
ISOLATION_CHECKS = 5
# A response hook cannot make one tenant's events reach another's stream, so that one check
# still passes against this misbehaving backend.
UNBREAKABLE_BY_HOOK = {"test_event_streams_are_isolated"}


def accept_everything(method, path, status, body):
    """Test-only misbehaviour: every refusal (any 4xx, the body limit's 413 too) is a 200."""
    if 400 <= status < 500:
        return 200, {"success": True}
    return None


def test_every_refusal_check_fails_against_a_backend_that_accepts_bad_requests(
        tmp_path, reference_key, reference_key_2):
    run_dir = tmp_path / "run"
    with ReferenceServer([reference_key], tenants={"tenant-b": [reference_key_2]},
                         data_dir=str(tmp_path / "data"), stop_timeout=0.5,
                         response_hook=accept_everything) as server:
        proc = run_cli("run", "--target", server.url, "--api-key", reference_key,
                       "--api-key-2", reference_key_2, "--report-dir", str(run_dir),
                       "--", "-k", "test_70_negative or test_75_tenant_isolation")
    assert proc.returncode == 1, proc.stdout[-3000:]
    results = json.loads((run_dir / "results.json").read_text())["tests"]
    by_capability = {}
    for r in results:
        by_capability.setdefault(r["capability"], []).append(r)
    assert len(by_capability["negative"]) == NEGATIVE_CHECKS
    assert len(by_capability["tenant-isolation"]) == ISOLATION_CHECKS
    outcomes = {r["name"]: r["outcome"] for r in results}
    expected = {name: "passed" if name in UNBREAKABLE_BY_HOOK else "failed" for name in outcomes}
    assert outcomes == expected
    # the failures name what was accepted, with the request that should have been refused
    accepted = re.findall(r"^E\s+(\S+ \S+) \((.*)\): expected HTTP ([0-9/]+), the request was "
                          r"accepted", proc.stdout, re.M)
    assert len(accepted) > 200
    kinds = {what for _, what, _ in accepted}
    for what in ("no credentials", "malformed X-Api-Key", "deleted key", "another node's token",
                 "a deleted node's token", "join token used up (max_uses 2, third use)",
                 "join token of another cluster", "truncated object", "node_cidr_prefix 15",
                 "replicas 0", "ttl_secs 86401", "oversize body", "file content not base64",
                 "as tenant B"):
        assert what in kinds, what
    assert reference_key not in proc.stdout and reference_key_2 not in proc.stdout
