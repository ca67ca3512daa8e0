"""The suite provably catches broken backends: one run per fault of the catalogue.

For every fault in `quilt_verify/reference/faults.py` the suite of the fault's capability runs
(through the CLI, as a user would) against a reference backend with exactly that fault on. The
run must fail (exit 1) in that capability, while the same selection passes against a fault-free
reference (one baseline per capability). A secret-hygiene fault must also leave no trace of the
leaked secret anywhere in the run folder. The runs happen once, a few at a time, in a session
fixture; the score (faults caught / faults) is printed at the end of the session.
"""

from __future__ import annotations

import json
import secrets
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from quilt_verify.catalogue import CAPABILITY_TITLES
from quilt_verify.reference import faults
from quilt_verify.reference.server import ReferenceServer
from tests.conftest import run_cli

pytestmark = pytest.mark.faults

# The narrowest selection that exercises each capability (a module of suites/).
SELECTION = {
    "health": "test_10_health",
    "container-runtime": "test_20_container_runtime",
    "api-keys": "test_30_api_keys",
    "volumes": "test_40_volumes",
    "events": "test_50_events",
    "cluster-control-plane": "test_55_cluster_control_plane",
    "kubernetes-session": "test_60_kubernetes_session",
    "negative": "test_70_negative",
    "tenant-isolation": "test_75_tenant_isolation",
}
FAILED = ("failed", "error", "blocked")
SCORE: dict[str, bool] = {}  # fault name -> caught; read by the terminal summary in conftest


@dataclass
class Run:
    returncode: int
    output: str
    run_dir: Path
    tests: list[dict] = field(default_factory=list)
    leaked: list[str] = field(default_factory=list)

    def failed(self) -> list[dict]:
        return [t for t in self.tests if t.get("outcome") in FAILED]


def run_against(tmp: Path, label: str, capability: str, fault: str | None) -> Run:
    key = "qvfault_" + secrets.token_urlsafe(24)
    key_2 = "qvfault2_" + secrets.token_urlsafe(24)
    run_dir = tmp / label / "run"
    with ReferenceServer([key], tenants={"tenant-b": [key_2]}, data_dir=str(tmp / label / "data"),
                         faults=[fault] if fault else None, stop_timeout=0.5) as server:
        proc = run_cli("run", "--target", server.url, "--report-dir", str(run_dir), "--",
                       "-p", "no:randomly", "-k", SELECTION[capability],
                       env={"QUILT_API_KEY": key, "QUILT_API_KEY_2": key_2}, timeout=180)
        leaked = list(server.faults.leaked)
    results = run_dir / "results.json"
    tests = json.loads(results.read_text())["tests"] if results.exists() else []
    return Run(proc.returncode, proc.stdout[-3000:] + proc.stderr[-2000:], run_dir, tests, leaked)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> dict[str, Run]:
    """Every baseline (`baseline:<capability>`) and every fault run, three at a time."""
    tmp = tmp_path_factory.mktemp("faults")
    jobs = {f"baseline:{c}": (c, None) for c in sorted({f.capability for f in faults.CATALOGUE})}
    jobs.update({f.name: (f.capability, f.name) for f in faults.CATALOGUE})
    with ThreadPoolExecutor(max_workers=3) as pool:
        futures = {label: pool.submit(run_against, tmp, label.replace(":", "-"), cap, fault)
                   for label, (cap, fault) in jobs.items()}
        return {label: future.result() for label, future in futures.items()}


def test_the_catalogue_is_well_formed():
    assert len(faults.CATALOGUE) >= 20
    assert len(faults.BY_NAME) == len(faults.CATALOGUE)
    for fault in faults.CATALOGUE:
        assert fault.capability in CAPABILITY_TITLES and fault.capability in SELECTION, fault
        assert fault.description and "\n" not in fault.description
    assert {f.capability for f in faults.CATALOGUE} >= set(SELECTION)
    with pytest.raises(faults.UnknownFault, match="no-such-fault"):
        ReferenceServer(["qvtest_" + "k" * 24], faults=["no-such-fault"])


def test_serve_refuses_an_unknown_fault_and_lists_the_catalogue():
    proc = run_cli("serve", "--port", "0", "--fault", "no-such-fault", timeout=30)
    assert proc.returncode == 2 and "unknown fault(s): no-such-fault" in proc.stderr
    listed = run_cli("serve", "--fault", "list", timeout=30)
    assert listed.returncode == 0
    assert [line.split("\t")[0] for line in listed.stdout.splitlines()] == list(faults.BY_NAME)


@pytest.mark.parametrize("capability", sorted({f.capability for f in faults.CATALOGUE}))
def test_the_selection_passes_without_faults(runs, capability):
    run = runs[f"baseline:{capability}"]
    assert run.returncode == 0 and run.tests and not run.failed(), run.output


@pytest.mark.parametrize("name", list(faults.BY_NAME))
def test_the_suite_catches_the_fault(runs, name):
    fault = faults.BY_NAME[name]
    run = runs[name]
    SCORE[name] = False
    assert run.returncode == 1, f"{name} was not caught (exit {run.returncode}):\n{run.output}"
    if fault.secret:
        assert run.leaked, f"{name} leaked nothing: the fault was not exercised"
        for path in run.run_dir.rglob("*"):
            if path.is_file():
                data = path.read_bytes()
                for secret in set(run.leaked):
                    assert secret.encode() not in data, f"{name}: the secret is in {path}"
        flagged = (run.run_dir / "leak-scan.json").exists() or run.failed()
        assert flagged, f"{name}: neither the leak scan nor a check flagged it:\n{run.output}"
    else:
        failed = run.failed()
        assert failed, f"{name}: the run failed but no test did:\n{run.output}"
        assert {t.get("capability") for t in failed} == {fault.capability}, (
            f"{name}: failures outside {fault.capability}: "
            f"{[(t['nodeid'], t.get('capability')) for t in failed]}")
    SCORE[name] = True
