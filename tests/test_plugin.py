"""The plugin's session behaviour: blocked steps, secret hygiene in reports, preflight failures."""

import json

import pytest

from tests.conftest import run_cli
from tests.scripted_server import Reply, ScriptedServer

SESSION_MODULE = '''
import pytest

pytestmark = [pytest.mark.capability("demo"), pytest.mark.session]


def test_01_lists(quilt):
    """Listing clusters MUST work."""
    assert isinstance(quilt.list_clusters(), list)


def test_02_breaks(quilt, quilt_config):
    """This step MUST fail, and its failure message carries the API key."""
    key = quilt_config.api_key.reveal()
    print("printing the key", key)
    assert key == "something else"


def test_03_after(quilt):
    """Never runs."""
    quilt.list_clusters()


def test_04_after():
    """Never runs either."""
'''


def run_module(pytester, reference, key, *extra):
    pytester.makepyfile(test_demo_session=SESSION_MODULE)
    run_dir = pytester.path / "bundle"
    result = pytester.runpytest_subprocess(
        "--quilt-url", reference.url, "--quilt-api-key", key,
        "--quilt-report-dir", str(run_dir), "-rs", "-p", "no:cacheprovider", *extra)
    return result, run_dir


@pytest.mark.parametrize("extra", [(), ("-n", "2", "--dist", "loadfile")],
                         ids=["serial", "xdist"])
def test_failed_step_blocks_the_rest_of_the_session(pytester, reference, reference_key, extra):
    result, run_dir = run_module(pytester, reference, reference_key, *extra)
    result.assert_outcomes(passed=1, failed=1, skipped=2)
    result.stdout.fnmatch_lines(["*SKIPPED*blocked by test_02_breaks*"])
    tests = {t["name"]: t for t in json.loads((run_dir / "results.json").read_text())["tests"]}
    assert [tests[n]["outcome"] for n in sorted(tests)] == ["passed", "failed", "blocked",
                                                            "blocked"]
    assert tests["test_03_after"]["blocked_by"] == "test_02_breaks"
    assert tests["test_01_lists"]["behavior"] == "Listing clusters MUST work."
    assert json.loads((run_dir / "manifest.json").read_text())["outcome"] == "failed"


@pytest.mark.parametrize("extra", [(), ("-l", "--tb=long", "-s"), ("--junitxml=out.xml",)])
def test_secrets_in_failures_and_output_are_redacted(pytester, reference, reference_key, extra):
    result, run_dir = run_module(pytester, reference, reference_key, *extra)
    output = "\n".join(result.outlines + result.errlines)
    assert "[REDACTED]" in output
    for path in [*pytester.path.rglob("*")]:
        if path.is_file() and path.suffix in (".xml", ".json", ".jsonl"):
            assert reference_key not in path.read_text(), path
    if "-s" not in extra:  # with -s the test's own print goes straight to the terminal
        assert reference_key not in output


def test_unreachable_target_exits_3_with_one_line(tmp_path):
    import socket

    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    proc = run_cli("run", "--target", f"http://127.0.0.1:{port}", "--api-key", "k" * 20,
                   "--report-dir", str(tmp_path / "r"))
    assert proc.returncode == 3, proc.stdout[-2000:]
    out = proc.stdout + proc.stderr
    assert f"target http://127.0.0.1:{port} unreachable: connection failed" in out
    assert "Traceback" not in out and "INTERNALERROR" not in out


def test_wrong_key_exits_3_naming_authentication(tmp_path, reference):
    proc = run_cli("run", "--target", reference.url, "--api-key", "wrong-key-0123456789",
                   "--report-dir", str(tmp_path / "r"))
    assert proc.returncode == 3
    out = proc.stdout + proc.stderr
    assert f"authentication refused by {reference.url}: 401 UNAUTHORIZED" in out
    assert "wrong-key-0123456789" not in out
    assert "Traceback" not in out and "INTERNALERROR" not in out


def test_non_quilt_server_exits_3(tmp_path):
    with ScriptedServer() as server:
        server.on("GET", "/health", Reply(200, raw=b"<html>It works!</html>",
                                          headers={"Content-Type": "text/html"}))
        proc = run_cli("run", "--target", server.url, "--api-key", "k" * 20,
                       "--report-dir", str(tmp_path / "r"))
    assert proc.returncode == 3
    out = proc.stdout + proc.stderr
    assert f"{server.url} does not look like a Quilt backend: GET /health answered expected a " \
        "JSON body, got text/html" in out


def test_bad_url_is_a_usage_error():
    proc = run_cli("run", "--target", "backend.quilt.sh", "--api-key", "k" * 20)
    assert proc.returncode == 2
    assert "is not an http(s) URL" in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stdout + proc.stderr


def test_unknown_command_is_a_usage_error():
    proc = run_cli("frobnicate")
    assert proc.returncode == 2 and proc.stderr.count("\n") == 1


GATED_MODULE = '''
import pytest


@pytest.mark.capability("health")
def test_good(quilt):
    """MUST pass."""
    quilt.health()


@pytest.mark.capability("events")
def test_bad(quilt):
    """MUST fail."""
    assert False, "events are broken"
'''


@pytest.mark.parametrize("gate, code, verdict", [("health", 0, "passed"),
                                                 ("events", 1, "failed"),
                                                 ("health,events", 1, "failed"),
                                                 ("health,volumes", 1, "failed")])
def test_gate_decides_the_exit_code(pytester, reference, reference_key, gate, code, verdict):
    pytester.makepyfile(test_gated=GATED_MODULE)
    run_dir = pytester.path / "bundle"
    result = pytester.runpytest_subprocess(
        "--quilt-url", reference.url, "--quilt-api-key", reference_key,
        "--quilt-report-dir", str(run_dir), "--quilt-gate", gate, "-p", "no:cacheprovider")
    assert result.ret == code
    run = json.loads((run_dir / "run.json").read_text())
    not_run = ["volumes"] if "volumes" in gate else []  # a gated capability must have run
    assert run["gate"] == {"capabilities": gate.split(","), "verdict": verdict,
                           "not_run": not_run}
    assert json.loads((run_dir / "manifest.json").read_text())["outcome"] == "failed"
    assert f"Release gate on {gate.replace(',', ', ')}: **{verdict}**" in (
        run_dir / "VERIFICATION.md").read_text()


def test_unknown_gate_capability_is_a_usage_error():
    proc = run_cli("run", "--gate", "volumes,nope")
    assert proc.returncode == 2
    assert "unknown capability nope in --gate" in proc.stdout + proc.stderr


def test_allure_results_carry_capability_and_redacted_exchanges(tmp_path, reference,
                                                                reference_key):
    allure_dir = tmp_path / "allure"
    proc = run_cli("run", "--target", reference.url, "--api-key", reference_key,
                   "--report-dir", str(tmp_path / "run"), "--",
                   "--alluredir", str(allure_dir), "-k", "kubernetes")
    assert proc.returncode == 0, proc.stdout[-2000:]
    results = [json.loads(p.read_text()) for p in allure_dir.glob("*-result.json")]
    assert len(results) == 17
    for result in results:
        features = [label["value"] for label in result["labels"] if label["name"] == "feature"]
        assert features == ["kubernetes-session"]
        assert [a["name"] for a in result.get("attachments", [])] == ["exchanges (redacted)"]
    attachments = "".join(p.read_text() for p in allure_dir.glob("*-attachment*"))
    assert '"kind":"exchange"' in attachments and "[REDACTED]" in attachments
    assert reference_key not in attachments and "qnt_" not in attachments


def test_deselected_step_blocks_the_later_steps(pytester, reference, reference_key):
    result, run_dir = run_module(pytester, reference, reference_key, "-k", "not test_01")
    result.assert_outcomes(skipped=3)
    tests = {t["name"]: t for t in json.loads((run_dir / "results.json").read_text())["tests"]}
    assert tests["test_02_breaks"]["blocked_by"] == "test_01_lists (deselected)"
    assert {t["outcome"] for t in tests.values()} == {"blocked"}
