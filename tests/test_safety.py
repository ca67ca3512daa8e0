"""Safe to point at production: cleanup after failure, Ctrl-C and SIGTERM; the janitor; smoke
mode creates nothing; a target that fails or answers garbage gives clear, bounded failures."""

import json
import signal
import subprocess
import sys
import time

import httpx
import pytest

from quilt_verify.client import QuiltClient
from quilt_verify.config import Secret
from quilt_verify.janitor import scan
from tests.conftest import REPO, container_processes, run_cli
from tests.scripted_server import Reply, ScriptedServer


def qv_resources(reference, key):
    with QuiltClient(reference.url, api_key=Secret(key)) as client:
        return [(r.kind, r.name) for r in scan(client)]


CREATING_SESSION = '''
import os
import pathlib
import time

import pytest


pytestmark = [pytest.mark.capability("kubernetes-session"), pytest.mark.session]
MARKER = pathlib.Path(os.environ["QV_TEST_MARKER"])


def test_01_create_everything(quilt, quilt_names, quilt_ledger, make_agent):
    """Creates one of each kind of resource."""
    c = quilt.create_cluster(quilt_names.make("cl"), "10.77.0.0/16", 24)
    quilt_ledger.track(quilt, "cluster", c["id"])
    token = quilt.create_join_token(c["id"], max_uses=1)
    agent = make_agent(c["id"], quilt_names.make("node"))
    agent.register(token["join_token"])
    agent.heartbeat("ready")
    w = quilt.create_workload(c["id"], {"name": quilt_names.make("w"), "replicas": 2,
                                        "command": ["sleep", "3600"]})
    quilt_ledger.track(quilt, "workload", w["id"], cluster_id=c["id"])
    quilt.reconcile(c["id"])
    assert len(agent.sync().started) == 2
    v = quilt.create_volume(quilt_names.make("vol"))
    quilt_ledger.track(quilt, "volume", v["name"])
    k = quilt.create_api_key(quilt_names.make("key"))
    quilt_ledger.track(quilt, "api_key", k["id"])


def test_02_then(quilt):
    """Fails, or waits to be interrupted."""
    MARKER.write_text("created")  # here, so step 1's outcome is already recorded
    if os.environ["QV_TEST_HOW"] == "fail":
        raise AssertionError("deliberate failure after creating resources")
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:  # until the test process is signalled
        time.sleep(0.05)
'''


@pytest.mark.parametrize("how", ["fail", "SIGINT", "SIGTERM"])
def test_run_cleans_up_after_failure_and_signals(tmp_path, reference, reference_key, how):
    suite_dir = tmp_path / "suites"
    suite_dir.mkdir()
    (suite_dir / "test_creating.py").write_text(CREATING_SESSION)
    marker = tmp_path / "marker"
    before = qv_resources(reference, reference_key)
    env = {k: v for k, v in __import__("os").environ.items() if not k.startswith("QUILT_")}
    env.update(QV_TEST_MARKER=str(marker), QV_TEST_HOW=how)
    proc = subprocess.Popen(
        [sys.executable, "-m", "quilt_verify", "run", "--suites", str(suite_dir),
         "--target", reference.url, "--api-key", reference_key,
         "--report-dir", str(tmp_path / "run")],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        deadline = time.monotonic() + 60
        while not marker.exists() and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.02)
        assert marker.exists(), "the session never created its resources"
        if how != "fail":
            proc.send_signal(getattr(signal, how))
        out, _ = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == (1 if how == "fail" else 130), out[-2000:]
    assert "INTERNALERROR" not in out
    assert qv_resources(reference, reference_key) == before == []
    assert container_processes(reference.data_dir) == []
    manifest = json.loads((tmp_path / "run" / "manifest.json").read_text())
    assert manifest["outcome"] == ("failed" if how == "fail" else "interrupted")
    assert not (tmp_path / "run" / "leftovers.json").exists()
    outcomes = {t["name"]: t["outcome"] for t in
                json.loads((tmp_path / "run" / "results.json").read_text())["tests"]}
    assert outcomes == {"test_01_create_everything": "passed",
                        "test_02_then": "failed" if how == "fail" else "not run"}


def test_janitor_lists_and_deletes_only_stale_qv_resources(reference, reference_key):
    headers = {"X-Api-Key": reference_key}
    old, recent = "qv-20200101-000000-abcdef", f"qv-{time.strftime('%Y%m%d-%H%M%S', time.gmtime())}-0a0b0c"
    for name in (f"{old}-vol", f"{recent}-vol", "production-data"):
        assert httpx.post(f"{reference.url}/api/volumes", headers=headers,
                          json={"name": name}).status_code == 201
    assert httpx.post(f"{reference.url}/api/clusters", headers=headers,
                      json={"name": f"{old}-cl", "pod_cidr": "10.88.0.0/16",
                            "node_cidr_prefix": 24}).status_code == 201
    try:
        args = ["janitor", "--target", reference.url, "--api-key", reference_key]
        listed = run_cli(*args)
        assert listed.returncode == 0, listed.stderr
        assert "3 qv- resources, 2 older than 6h" in listed.stdout
        assert "production-data" not in listed.stdout
        assert "add --yes" in listed.stdout
        assert len(qv_resources(reference, reference_key)) == 3  # nothing deleted
        swept = run_cli(*args, "--yes")
        assert swept.returncode == 0, swept.stdout
        assert "deleted cluster" in swept.stdout and f"{old}-vol" in swept.stdout
        assert qv_resources(reference, reference_key) == [("volume", f"{recent}-vol")]
        names = [v["name"] for v in httpx.get(f"{reference.url}/api/volumes",
                                              headers=headers).json()["volumes"]]
        assert "production-data" in names
    finally:
        for name in (f"{recent}-vol", "production-data", f"{old}-vol"):
            httpx.delete(f"{reference.url}/api/volumes/{name}", headers=headers)


def test_janitor_needs_a_target_and_a_sane_age():
    assert run_cli("janitor").returncode == 2
    bad = run_cli("janitor", "--target", "http://127.0.0.1:9", "--api-key", "k" * 20,
                  "--older-than", "soon")
    assert bad.returncode == 2 and "not like 90s" in bad.stderr


def test_smoke_mode_creates_nothing(tmp_path, reference, reference_key):
    proc = run_cli("run", "--mode", "smoke", "--target", reference.url, "--api-key",
                   reference_key, "--report-dir", str(tmp_path / "run"))
    assert proc.returncode == 0, proc.stdout[-2000:]
    methods = set()
    for path in (tmp_path / "run" / "exchanges").rglob("*.jsonl"):
        for line in path.read_text().splitlines():
            item = json.loads(line)
            if item["kind"] == "exchange":
                methods.add(item["request"]["method"])
    assert methods == {"GET"}
    assert json.loads((tmp_path / "run" / "run.json").read_text())["mode"] == "smoke"


def quilt_like(server, overrides):
    """A scripted target that passes preflight; chosen routes answer garbage."""
    server.on("GET", "/health", Reply(200, {"status": "ok"}))
    server.on("GET", "/api/clusters", Reply(200, {"clusters": []}))
    for (method, path), reply in overrides.items():
        server.on(method, path, reply)


@pytest.mark.parametrize("reply, expect", [
    (Reply(200, raw=b"<html>oops</html>", headers={"Content-Type": "text/html"}),
     "expected a JSON body, got text/html"),
    (Reply(500, {"error": "boom", "error_code": "INTERNAL", "request_id": "rid-500"}),
     "500 INTERNAL: boom (request_id=rid-500)"),
    (Reply(200, raw=b'{"containers": [', headers={"Content-Type": "application/json"}),
     "expected a JSON body"),
])
def test_garbage_mid_run_fails_that_check_with_the_request_id(tmp_path, reply, expect):
    with ScriptedServer() as server:
        quilt_like(server, {("GET", "/api/containers"): reply})
        proc = run_cli("run", "--mode", "smoke", "--target", server.url, "--api-key", "k" * 20,
                       "--report-dir", str(tmp_path / "run"), "--", "-k", "containers")
    out = proc.stdout + proc.stderr
    assert proc.returncode == 1, out[-2000:]
    assert expect in out and "request_id=" in out
    assert "INTERNALERROR" not in out
    results = json.loads((tmp_path / "run" / "results.json").read_text())["tests"]
    failed = [r for r in results if r["outcome"] == "failed"]
    assert failed and all("request_id=" in r["message"] for r in failed)
    assert (tmp_path / "run" / "manifest.json").is_file()


def test_health_404_means_not_a_quilt_backend(tmp_path):
    with ScriptedServer() as server:  # answers 404 JSON for everything
        proc = run_cli("run", "--target", server.url, "--api-key", "k" * 20,
                       "--report-dir", str(tmp_path / "run"))
    assert proc.returncode == 3
    assert f"{server.url} does not look like a Quilt backend: GET /health answered 404" in (
        proc.stdout + proc.stderr)


def test_tls_error_exits_3(tmp_path):
    with ScriptedServer() as server:  # plain HTTP spoken to with https://
        url = server.url.replace("http://", "https://")
        proc = run_cli("run", "--target", url, "--api-key", "k" * 20,
                       "--report-dir", str(tmp_path / "run"))
    out = proc.stdout + proc.stderr
    assert proc.returncode == 3, out[-1500:]
    assert f"target {url} unreachable: TLS error" in out
    assert "Traceback" not in out and "INTERNALERROR" not in out
