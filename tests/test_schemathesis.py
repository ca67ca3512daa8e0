"""A peer check by an independent tool: Schemathesis, driven by the contract file, finds no server
error and no response that breaks the contract in the reference backend; and it does find a
response field the reference was made to break (so the check is not vacuous).

Skipped, saying so, when Schemathesis is not installed (it is in the `dev` extra)."""

from __future__ import annotations

import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from quilt_verify.contract import OPENAPI_PATH
from quilt_verify.reference import ReferenceServer

CONFIG = OPENAPI_PATH.with_name("schemathesis.toml")
pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("schemathesis") is None,
    reason="schemathesis is not installed (pip install -e '.[dev]')")

CHECKS = ("not_a_server_error,status_code_conformance,content_type_conformance,"
          "response_schema_conformance")
# Left out of generated traffic, each for a reason:
EXCLUDED = {
    "createContainer": "generated commands would run as processes on this machine",
    "startContainer": "restarts a container's (generated) command",
    "execInContainer": "generated argv would run on this machine",
    "deleteApiKey": "Schemathesis deletes the very key it authenticates with",
    "events": "an endless event stream",
}


def schemathesis(cwd: Path, url: str, key: str, *extra: str) -> subprocess.CompletedProcess[str]:
    """The command the README documents. Run in `cwd`, where Schemathesis keeps its cache
    (`.schemathesis/`, failures it replays next time), so runs do not share state."""
    command = [sys.executable, "-m", "schemathesis.cli", "--no-color", "--config-file",
               str(CONFIG), "run", str(OPENAPI_PATH), "--url", url, "--checks", CHECKS,
               "--seed", "1", "--workers", "1"]
    for operation_id in EXCLUDED:
        command += ["--exclude-operation-id", operation_id]
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUILT_")}
    env["QUILT_API_KEY"] = key  # read by the config file: never on the command line
    return subprocess.run([*command, *extra], cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=300)


def test_schemathesis_finds_no_server_error_or_schema_violation(tmp_path, reference_key):
    with ReferenceServer([reference_key], data_dir=str(tmp_path / "data"),
                         stop_timeout=0.5) as server:
        proc = schemathesis(tmp_path, server.url, reference_key, "--phases", "examples,coverage,fuzzing",
                            "--max-examples", "3")
    assert proc.returncode == 0, proc.stdout[-4000:] + proc.stderr[-2000:]
    assert "43 selected / 48 total" in proc.stdout and reference_key not in proc.stdout
    # the key from the config file was used: only the agent routes (node tokens) got 401s only
    assert "Authentication failed: 6 operations" in proc.stdout
    generated = re.search(r"(\d+) generated, (\d+) passed\n", proc.stdout)
    assert generated and generated[1] == generated[2] and int(generated[1]) > 500, proc.stdout[-800:]


def break_prefix(method, path, status, body):
    """Test-only misbehaviour: cluster creation answers `node_cidr_prefix` as a string."""
    if method == "POST" and path == "/api/clusters" and status == 201:
        return status, {**body, "node_cidr_prefix": str(body["node_cidr_prefix"])}
    return None


def test_schemathesis_reports_a_broken_response_field(tmp_path, reference_key):
    with ReferenceServer([reference_key], data_dir=str(tmp_path / "data"), stop_timeout=0.5,
                         response_hook=break_prefix) as server:
        proc = schemathesis(tmp_path, server.url, reference_key, "--phases", "examples,fuzzing",
                            "--max-examples", "20", "--include-operation-id", "createCluster",
                            "--max-failures", "1")
    assert proc.returncode == 1, proc.stdout[-4000:]
    assert "Response violates schema" in proc.stdout and "node_cidr_prefix" in proc.stdout
