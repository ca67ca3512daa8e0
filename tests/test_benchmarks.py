"""The benchmark code itself: its figures are computed correctly, and a tiny scale session
runs end to end and cleans up. (Benchmarks are measurements; nothing here asserts a time.)"""

from __future__ import annotations

import json

import pytest

from benchmarks import runner
from benchmarks.fullrun import summarize
from benchmarks.meter import Meter, Phases, Timed
from benchmarks.scale import ScaleOptions, run_scale
from benchmarks.stats import busy_time, growth_exponent, path_template, percentile, table
from quilt_verify.client import Exchange, VariantSeen


def test_percentile_is_nearest_rank():
    values = list(range(1, 101))  # 1..100
    assert percentile(values, 50) == 50
    assert percentile(values, 95) == 95
    assert percentile(values, 99) == 99
    assert percentile(values, 100) == 100
    assert percentile([7.0], 99) == 7.0
    assert percentile([3, 1, 2], 50) == 2
    assert percentile([], 50) is None


def test_busy_time_is_the_union_of_intervals():
    assert busy_time([]) == 0
    assert busy_time([(0, 1), (2, 3)]) == 2
    assert busy_time([(0, 2), (1, 3), (5, 6)]) == 4  # overlap counted once
    assert busy_time([(0, 10), (2, 3), (4, 5)]) == 10  # nested
    assert busy_time([(3, 4), (0, 1), (1, 2)]) == 3  # unsorted, touching


def test_path_template_hides_ids():
    cid, nid = "3f2b9a4e-1c2d-4e5f-8a9b-0c1d2e3f4a5b", "0a1b2c3d-4e5f-4a5b-8c9d-0e1f2a3b4c5d"
    assert path_template(f"/api/clusters/{cid}/nodes/{nid}/heartbeat?x=1") == \
        "/api/clusters/:id/nodes/:id/heartbeat"
    assert path_template("/api/volumes/qv-20260101-abc-vol/files") == "/api/volumes/:id/files"
    assert path_template("/health") == "/health"


def test_growth_exponent():
    xs = [10, 30, 100]
    assert growth_exponent(xs, [3 * x for x in xs]) == pytest.approx(1.0)
    assert growth_exponent(xs, [x * x for x in xs]) == pytest.approx(2.0)
    assert growth_exponent(xs, [5, 5, 5]) == pytest.approx(0.0)
    assert growth_exponent([10], [1]) is None


def test_table_aligns_columns():
    text = table([("a", 1), ("bbb", None)], ("name", "n"))
    assert text.splitlines() == ["name  n", "----  -", "a     1", "bbb"]


def _exchange(method, path, status, ms, body=b""):
    return Exchange(method=method, url="http://x" + path, path=path, request_headers=[],
                    request_body=b"{}", attempt=1, request_id="r", started_at="t",
                    status=status, response_body=body, duration_ms=ms)


def test_meter_counts_latency_endpoints_and_containers():
    clock = iter([1.0, 2.0, 2.5, 10.0]).__next__
    meter = Meter(clock=clock)
    meter(_exchange("POST", "/api/containers", 201, 100.0, b'{"container_id":"c-1"}'))
    meter(VariantSeen("list:clusters", "wrapped"))  # not an exchange: ignored
    meter(_exchange("GET", "/api/containers/c-1", 200, 500.0))
    meter(_exchange("POST", "/api/containers", 400, 50.0, b'{"container_id":"no"}'))
    meter(_exchange("GET", "/health", None, 1000.0))
    figures = meter.figures()
    assert figures["requests"] == 4
    assert figures["latency"]["p50_ms"] == 100.0 and figures["latency"]["max_ms"] == 1000.0
    # intervals: [0.9,1.0] [1.5,2.0] [2.45,2.5] [9.0,10.0]
    assert figures["backend_busy_s"] == pytest.approx(0.1 + 0.5 + 0.05 + 1.0)
    assert meter.container_ids == {"c-1"}  # only 2xx creates count
    assert meter.statuses == {201: 1, 200: 1, 400: 1} and meter.transport_errors == 1
    assert meter.figures(1, 3)["requests"] == 2
    assert next(iter(meter.by_endpoint())) == "POST /api/containers"


def test_timed_and_phases():
    seen = []
    timed = Timed(seen.append)
    timed("x")
    assert seen == ["x"] and timed.calls == 1 and timed.seconds >= 0 and timed.cpu_seconds >= 0
    meter = Meter()
    phases = Phases(meter, backend_cpu=lambda: 1.5)
    with phases("one") as phase:
        meter(_exchange("GET", "/health", 200, 1.0))
        phase.extra["note"] = 7
    (report,) = phases.report()
    assert report["phase"] == "one" and report["requests"] == 1 and report["note"] == 7
    assert report["backend_cpu_s"] == 0.0


def test_summarize_full_run_sessions():
    def session(role, evidence, wall, cpu):
        return {"role": role, "evidence": evidence, "wall_s": wall, "exit_code": 0,
                "process_cpu_s": cpu, "recording_share": 0.05 if evidence else 0.0,
                "recording_cpu_share": 0.04 if evidence else 0.0, "requests": 10,
                "requests_per_s": 5.0, "backend_wait_share": 0.5, "latency": {"p95_ms": 2.0},
                "stray_processes": 0}

    sessions = [session("warmup", True, 9.0, 9.0),
                session("pair0", True, 2.2, 2.0), session("pair0", False, 2.0, 1.6),
                session("pair1", False, 2.5, 1.8), session("pair1", True, 2.6, 2.4)]
    out = summarize(sessions)
    assert out["median_wall_s"] == {"evidence_on": 2.4, "evidence_off": 2.25}
    assert out["overhead_ratio"] == pytest.approx(2.4 / 2.25, abs=1e-4)
    assert out["pair_ratios"] == [round(2.2 / 2.0, 4), round(2.6 / 2.5, 4)]
    assert out["cpu_overhead_ratio"] == pytest.approx(2.2 / 1.7, abs=1e-4)
    assert out["all_passed"] is True


def test_curve_summary_and_verdicts():
    def point(nodes, converge, rss):
        return {"options": {"nodes": nodes, "replicas": nodes * 10}, "outcome": "passed",
                "initial_convergence_s": converge, "reschedule_convergence_s": 1.0,
                "requests": nodes * 37, "latency": {"p50_ms": 1, "p95_ms": 2, "p99_ms": 3},
                "phases": [{"phase": "converge", "requests_per_s": 100.0,
                            "suite_cpu_cores": 0.3, "backend_cpu_cores": 0.9}],
                "suite": {"peak_rss_bytes": rss, "cpu_s": nodes / 10},
                "baseline_rss_bytes": 0, "backend": {"at_teardown": {"cpu_s": nodes / 5,
                                                                      "peak_rss_bytes": 1}},
                "evidence": {"recording_cpu_s": 0.1, "secrets_registered": nodes + 2}}

    curve = runner.curve_summary([point(10, 1.0, 100), point(100, 10.0, 1000)])
    growth = curve["growth_exponent_vs_nodes"]
    assert growth["initial_convergence_s"] == 1.0 and growth["requests"] == 1.0
    assert growth["suite_peak_rss_bytes"] == 1.0
    assert [p["nodes"] for p in curve["points"]] == [10, 100]
    scale = dict(point(100, 12.0, 100 * 1024 * 1024), reschedule_convergence_s=61.0)
    rows = {r["target"]: r for r in runner.verdicts(
        {"cold_cli": {"wall_s": 5.0}, "overhead_ratio": 1.2}, scale)}
    assert rows["full_run_wall_s"]["met"] is True
    assert rows["evidence_overhead_ratio"]["met"] is False
    assert rows["scale_convergence_s"]["value"] == 61.0 and rows["scale_convergence_s"]["met"] is False
    assert rows["suite_peak_rss_mib"]["value"] == 100.0 and rows["suite_peak_rss_mib"]["met"] is True


def test_tiny_scale_session_end_to_end():
    """2 nodes, 6 replicas: every figure is consistent and nothing is left running."""
    result = run_scale(ScaleOptions(nodes=2, replicas=6, workers=2, backend="inprocess",
                                    timeout_s=60))
    assert result["outcome"] == "passed", result["error"]
    assert [p["phase"] for p in result["phases"]] == [
        "setup", "join", "schedule", "converge", "reschedule", "teardown"]
    assert sum(p["requests"] for p in result["phases"]) == result["requests"]
    assert result["latency"]["count"] == result["requests"]
    assert sum(result["statuses"].values()) == result["requests"]
    assert result["container_processes_at_convergence"] == 6
    phases = {p["phase"]: p for p in result["phases"]}
    assert phases["converge"]["placements"] == {"running": 6}
    moved = phases["reschedule"]["reconcile"]["moved"]
    assert moved == phases["reschedule"]["deleted_node_placements"] == 3  # round-robin: 3 each
    assert phases["reschedule"]["placements"] == {"running": 6}
    # 6 containers, then 3 more for the rescheduled replicas; all deleted at teardown
    assert result["containers"] == {"created": 9, "stray_processes": 0}
    assert result["evidence"]["secrets_registered"] >= 4  # api key, join token, 2 node tokens
    assert result["evidence_leaks"] == [] and result["problems"] == []
    assert result["initial_convergence_s"] > 0 and result["reschedule_convergence_s"] > 0
    assert result["suite"]["peak_rss_bytes"] > result["baseline_rss_bytes"] > 0


def test_runner_scale_with_a_child_backend_writes_json(tmp_path, capsys):
    code = runner.main(["scale", "--nodes", "2", "--replicas", "2", "--workers", "2",
                        "--out", str(tmp_path), "--no-evidence"])
    out = capsys.readouterr().out
    assert code == 0, out
    data = json.loads((tmp_path / "scale_2n_2r_noevidence.json").read_text())
    assert data["backend"]["kind"] == "subprocess" and data["backend"]["stop"]["exit_code"] == 0
    assert data["evidence"]["enabled"] is False and data["evidence"]["bytes"] == 0
    assert data["containers"]["stray_processes"] == 0
    assert {t["target"] for t in data["targets"]} == {"scale_convergence_s", "suite_peak_rss_mib"}
    assert "initial convergence" in out and "Targets" in out
    assert data["containers"]["created"] == 3  # 2 replicas, then 1 rescheduled
