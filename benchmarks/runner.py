"""``python -m benchmarks``: measure the suite, print a table, write JSON under benchmarks/results.

Subcommands (default ``all``):

- ``full``: the default full run against the embedded backend (a cold ``quilt-verify run``,
  then sessions in this process with evidence capture on and off);
- ``scale``: one scale session (``--nodes``, ``--replicas``; default 100 and 1000);
- ``curve``: scale sessions at ``--curve`` node counts with replicas = 10 x nodes;
- ``all``: full, then the scale session and the curve (each scale session in its own process,
  so its peak memory is its own).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import asdict
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from .stats import MIB, fmt, growth_exponent, table

REPO = Path(__file__).resolve().parent.parent
RESULTS = Path(__file__).resolve().parent / "results"
TARGETS = {
    "full_run_wall_s": 30.0,          # cold `quilt-verify run`, backend start included
    "evidence_overhead_ratio": 1.10,  # capture on / off, same process
    "scale_convergence_s": 60.0,      # 100 nodes / 1000 replicas: every placement running
    "suite_peak_rss_mib": 500.0,      # the suite process during that session
}


def build_parser(prog: str = "python -m benchmarks") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog, description="Measure quilt-verify itself: the default full run, the cost of "
        "evidence capture, and the control plane at scale; print a table and write JSON.")
    parser.add_argument("what", nargs="?", default="all", choices=("all", "full", "scale", "curve"),
                        help="full: the default run; scale: one scale session; curve: scale "
                        "sessions at several sizes; all (default): all three")
    parser.add_argument("--out", default=str(RESULTS), help="folder for the JSON results")
    parser.add_argument("--no-write", action="store_true", help="print only, write no JSON")
    parser.add_argument("--repeat", type=int, default=5,
                        help="full: evidence on/off session pairs (default 5)")
    parser.add_argument("--no-cold", action="store_true",
                        help="full: skip the cold `quilt-verify run` in a fresh interpreter")
    parser.add_argument("--nodes", type=int, default=100, help="scale: simulated node agents")
    parser.add_argument("--replicas", type=int, default=1000,
                        help="scale: workload replicas (real container processes)")
    parser.add_argument("--workers", type=int, default=16, help="agent threads (default 16)")
    parser.add_argument("--curve", default="10,30,100",
                        help="curve: node counts (replicas = 10 x nodes)")
    parser.add_argument("--backend", choices=("subprocess", "inprocess"), default="subprocess",
                        help="scale: where the reference backend runs (default: a child process)")
    parser.add_argument("--no-evidence", action="store_true",
                        help="scale: do not record evidence")
    parser.add_argument("--tracemalloc", action="store_true",
                        help="scale: also trace Python allocations (slower; peak reported)")
    parser.add_argument("--command", default="sleep 3600",
                        help="scale: the workload's command (default: sleep 3600)")
    parser.add_argument("--timeout", type=float, default=300.0,
                        help="scale: give up waiting for convergence after this many seconds")
    parser.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    parser.add_argument("--result-file", help=argparse.SUPPRESS)  # internal: child sessions
    return parser


def machine() -> dict[str, Any]:
    mem = None
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemTotal:"):
                mem = int(line.split()[1]) * 1024
    except OSError:
        pass
    commit = _git("rev-parse", "--short", "HEAD")
    dirty = bool(_git("status", "--porcelain", "--untracked-files=no"))
    return {"date": datetime.now(UTC).isoformat(timespec="seconds"),
            "cpus": os.cpu_count(), "memory_bytes": mem, "python": platform.python_version(),
            "platform": platform.platform(), "commit": commit, "local_changes": dirty,
            "load_average_before": list(os.getloadavg())}


def _git(*args: str) -> str | None:
    try:
        out = subprocess.run(["git", *args], cwd=REPO, capture_output=True, text=True,
                             timeout=10)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout.strip() if out.returncode == 0 else None


# -- scale sessions ---------------------------------------------------------------------------------
def scale_options(args: argparse.Namespace, nodes: int, replicas: int) -> Any:
    from .scale import ScaleOptions

    return ScaleOptions(nodes=nodes, replicas=replicas, workers=args.workers,
                        command=args.command.split(), evidence=not args.no_evidence,
                        backend=args.backend, timeout_s=args.timeout,
                        tracemalloc=args.tracemalloc)


def scale_in_child(args: argparse.Namespace, nodes: int, replicas: int) -> dict[str, Any]:
    """One scale session in a fresh interpreter (its peak memory is then its own)."""
    with tempfile.TemporaryDirectory(prefix="qv-bench-") as tmp:
        result_file = Path(tmp) / "result.json"
        cmd = [sys.executable, "-m", "benchmarks", "scale", "--nodes", str(nodes),
               "--replicas", str(replicas), "--workers", str(args.workers),
               "--backend", args.backend, "--command", args.command,
               "--timeout", str(args.timeout), "--no-write", "--result-file", str(result_file)]
        cmd += ["--no-evidence"] if args.no_evidence else []
        cmd += ["--tracemalloc"] if args.tracemalloc else []
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        proc = subprocess.run(cmd, cwd=REPO, env=env, capture_output=True, text=True,
                              timeout=args.timeout + 600)
        if not result_file.exists():
            raise RuntimeError(f"scale session {nodes}x{replicas} gave no result (exit "
                               f"{proc.returncode}): {(proc.stdout + proc.stderr)[-2000:]}")
        return json.loads(result_file.read_text())


def curve_summary(points: list[dict[str, Any]]) -> dict[str, Any]:
    """How time and memory grow with the node count (log-log slope: 1.0 = linear)."""
    nodes = [p["options"]["nodes"] for p in points]

    def slope(values: list[float | None]) -> float | None:
        pairs = [(n, v) for n, v in zip(nodes, values, strict=True) if v]
        exponent = growth_exponent([p[0] for p in pairs], [p[1] for p in pairs])
        return None if exponent is None else round(exponent, 3)

    def converge(p: dict[str, Any], key: str) -> float | None:
        return next((ph.get(key) for ph in p["phases"] if ph["phase"] == "converge"), None)

    return {
        "points": [{
            "nodes": p["options"]["nodes"], "replicas": p["options"]["replicas"],
            "outcome": p["outcome"],
            "initial_convergence_s": p.get("initial_convergence_s"),
            "reschedule_convergence_s": p.get("reschedule_convergence_s"),
            "requests": p["requests"],
            "latency_p50_ms": p["latency"]["p50_ms"], "latency_p95_ms": p["latency"]["p95_ms"],
            "latency_p99_ms": p["latency"]["p99_ms"],
            "converge_requests_per_s": converge(p, "requests_per_s"),
            "converge_suite_cpu_cores": converge(p, "suite_cpu_cores"),
            "converge_backend_cpu_cores": converge(p, "backend_cpu_cores"),
            "suite_peak_rss_bytes": p["suite"]["peak_rss_bytes"],
            "suite_cpu_s": p["suite"]["cpu_s"],
            "backend_peak_rss_bytes": (p["backend"].get("at_teardown") or {}).get("peak_rss_bytes"),
            "backend_cpu_s": (p["backend"].get("at_teardown") or {}).get("cpu_s"),
            "recording_cpu_s": p["evidence"].get("recording_cpu_s"),
            "secrets_registered": p["evidence"].get("secrets_registered"),
        } for p in points],
        "growth_exponent_vs_nodes": {
            "initial_convergence_s": slope([p.get("initial_convergence_s") for p in points]),
            "requests": slope([p["requests"] for p in points]),
            "suite_cpu_s": slope([p["suite"]["cpu_s"] for p in points]),
            "backend_cpu_s": slope([(p["backend"].get("at_teardown") or {}).get("cpu_s")
                                    for p in points]),
            "suite_peak_rss_bytes": slope([p["suite"]["peak_rss_bytes"] for p in points]),
            "suite_peak_rss_above_baseline": slope(
                [p["suite"]["peak_rss_bytes"] - (p.get("baseline_rss_bytes") or 0)
                 for p in points]),
        },
    }


# -- targets and printing ---------------------------------------------------------------------------
def verdicts(full: dict[str, Any] | None, scale: dict[str, Any] | None) -> list[dict[str, Any]]:
    out = []

    def add(name: str, value: float | None, target: float, what: str) -> None:
        out.append({"target": name, "what": what, "value": value, "limit": target,
                    "met": None if value is None else value < target})

    if full is not None:
        cold = (full.get("cold_cli") or {}).get("wall_s")
        add("full_run_wall_s", cold, TARGETS["full_run_wall_s"],
            "cold `quilt-verify run`, s")
        add("evidence_overhead_ratio", full.get("overhead_ratio"),
            TARGETS["evidence_overhead_ratio"], "full run wall, evidence on / off")
    if scale is not None:
        n, m = scale["options"]["nodes"], scale["options"]["replicas"]
        worst = max(scale.get("initial_convergence_s") or float("inf"),
                    scale.get("reschedule_convergence_s") or float("inf"))
        add("scale_convergence_s", None if worst == float("inf") else worst,
            TARGETS["scale_convergence_s"], f"{n} nodes / {m} replicas, slower convergence, s")
        add("suite_peak_rss_mib", round(scale["suite"]["peak_rss_bytes"] / MIB, 1),
            TARGETS["suite_peak_rss_mib"], "suite process peak RSS in that session, MiB")
    return out


def print_full(full: dict[str, Any]) -> None:
    cold = full.get("cold_cli") or {}
    med = full["median_wall_s"]
    on = [s for s in full["sessions"] if s["evidence"] and s["role"] != "warmup"]
    rows = [
        ("cold `quilt-verify run` (new interpreter)", fmt(cold.get("wall_s"), 2, " s"),
         cold.get("summary", "")),
        ("session wall, evidence on / off (median)",
         f"{fmt(med['evidence_on'], 3)} / {fmt(med['evidence_off'], 3)} s",
         f"{full['repeat']} pairs after a warm-up session"),
        ("evidence on / off ratio (median walls)", fmt(full["overhead_ratio"], 3),
         "each pair: " + ", ".join(fmt(r, 3) for r in full["pair_ratios"])),
        ("evidence on / off ratio of process CPU", fmt(full.get("cpu_overhead_ratio"), 3),
         "backend thread included (embedded)"),
        ("time inside the evidence recorder",
         f"{fmt((full['median_recording_share'] or 0) * 100, 1)} % wall, "
         f"{fmt((full.get('median_recording_cpu_share') or 0) * 100, 1)} % CPU",
         "of session wall (evidence on)"),
        ("requests / requests per s", f"{full['median_requests']:.0f} / "
         f"{fmt(full['median_requests_per_s'], 1)}", ""),
        ("waiting on the backend / in the suite",
         f"{fmt(full['median_backend_wait_share'] * 100, 0)} % / "
         f"{fmt((1 - full['median_backend_wait_share']) * 100, 0)} %",
         "union of open-request intervals vs the rest"),
        ("request latency p50 / p95 / p99",
         " / ".join(fmt(on[0]["latency"][k], 2) for k in ("p50_ms", "p95_ms", "p99_ms"))
         + " ms" if on else "-", "first measured session"),
        ("container processes left behind", str(full["stray_processes"]), ""),
    ]
    print("\nFull run against the embedded reference backend")
    print(table(rows, ("figure", "value", "note")))


def print_scale(res: dict[str, Any]) -> None:
    o = res["options"]
    print(f"\nScale session: {o['nodes']} nodes, {o['replicas']} replicas, {o['workers']} agent "
          f"threads, backend in a {res['backend']['kind']} ({res['outcome']}"
          f"{': ' + res['error'] if res.get('error') else ''})")
    rows = [(p["phase"], fmt(p["wall_s"], 3), p["requests"], fmt(p["requests_per_s"], 0),
             fmt(p["latency"]["p50_ms"], 1), fmt(p["latency"]["p95_ms"], 1),
             fmt(p["latency"]["p99_ms"], 1), fmt(p["suite_cpu_cores"], 2),
             fmt(p["backend_cpu_cores"], 2)) for p in res["phases"]]
    print(table(rows, ("phase", "wall s", "requests", "req/s", "p50 ms", "p95 ms", "p99 ms",
                       "suite cores", "backend cores")))
    lat = res["latency"]
    ev = res["evidence"]
    backend = res["backend"].get("at_teardown") or {}
    figures = [
        ("initial convergence (workload create -> all running)",
         fmt(res.get("initial_convergence_s"), 2, " s")),
        ("reschedule convergence (node delete -> all running again)",
         fmt(res.get("reschedule_convergence_s"), 2, " s")),
        ("requests, latency p50 / p95 / p99",
         f"{res['requests']}, {fmt(lat['p50_ms'], 1)} / {fmt(lat['p95_ms'], 1)} / "
         f"{fmt(lat['p99_ms'], 1)} ms"),
        ("suite peak RSS (VmHWM)",
         f"{fmt(res['suite']['peak_rss_bytes'] / MIB, 1)} MiB (baseline "
         f"{fmt((res.get('baseline_rss_bytes') or 0) / MIB, 1)} MiB)"),
        ("suite tracemalloc peak", "-" if res.get("suite_tracemalloc_peak_bytes") is None
         else fmt(res["suite_tracemalloc_peak_bytes"] / MIB, 1, " MiB")),
        ("suite / backend CPU", f"{fmt(res['suite']['cpu_s'], 2)} / "
         f"{fmt(backend.get('cpu_s'), 2)} s"),
        ("backend peak RSS", "-" if not backend.get("peak_rss_bytes")
         else fmt(backend["peak_rss_bytes"] / MIB, 1, " MiB")),
        ("evidence", f"{'on' if ev['enabled'] else 'off'}, {fmt(ev['bytes'] / MIB, 1)} MiB, "
         f"recorder CPU {fmt(ev.get('recording_cpu_s'), 2)} s, "
         f"{ev['secrets_registered']} secrets registered, leaks "
         f"{len(res.get('evidence_leaks') or [])}"),
        ("container processes at convergence / left behind",
         f"{res.get('container_processes_at_convergence')} / "
         f"{res['containers']['stray_processes']}"),
    ]
    print(table(figures, ("figure", "value")))


def print_curve(curve: dict[str, Any]) -> None:
    print("\nScaling curve (replicas = 10 x nodes)")
    rows = [(p["nodes"], p["replicas"], fmt(p["initial_convergence_s"], 2),
             fmt(p["reschedule_convergence_s"], 2), p["requests"],
             fmt(p["converge_requests_per_s"], 0), fmt(p["latency_p95_ms"], 1),
             fmt(p["suite_cpu_s"], 2), fmt(p["backend_cpu_s"], 2),
             fmt(p["converge_suite_cpu_cores"], 2), fmt(p["converge_backend_cpu_cores"], 2),
             fmt(p["suite_peak_rss_bytes"] / MIB, 1),
             "-" if not p["backend_peak_rss_bytes"] else fmt(p["backend_peak_rss_bytes"] / MIB, 1))
            for p in curve["points"]]
    print(table(rows, ("nodes", "replicas", "converge s", "reschedule s", "requests",
                       "req/s", "p95 ms", "suite cpu s", "backend cpu s", "suite cores",
                       "backend cores", "suite MiB", "backend MiB")))
    g = curve["growth_exponent_vs_nodes"]
    print("growth exponent vs nodes (1.0 = linear): " + ", ".join(
        f"{k} {fmt(v, 2)}" for k, v in g.items()))


def print_verdicts(rows: list[dict[str, Any]]) -> None:
    if not rows:
        return
    print("\nTargets")
    print(table([(r["what"], r["value"], f"< {r['limit']:g}",
                  "-" if r["met"] is None else ("met" if r["met"] else "MISSED"))
                 for r in rows], ("figure", "measured", "target", "")))


def write(out: Path, name: str, data: dict[str, Any]) -> Path:
    out.mkdir(parents=True, exist_ok=True)
    path = out / name
    path.write_text(json.dumps(data, indent=1, sort_keys=False) + "\n", encoding="utf-8")
    return path


def main(argv: Sequence[str] | None = None, prog: str = "python -m benchmarks") -> int:
    args = build_parser(prog).parse_args(argv)
    if args.nodes < 2 or args.replicas < 1 or args.workers < 1:
        print("benchmarks: --nodes must be >= 2, --replicas and --workers >= 1", file=sys.stderr)
        return 2
    out = Path(args.out)
    info = machine()
    print(f"quilt-verify benchmarks: {info['date']}, {info['cpus']} CPUs, Python "
          f"{info['python']}, commit {info['commit']}"
          f"{' + local changes' if info['local_changes'] else ''}, load "
          f"{' '.join(f'{x:.2f}' for x in info['load_average_before'])}", flush=True)
    full = scale = curve = None
    written: list[Path] = []
    started = time.perf_counter()

    if args.what == "scale" and args.result_file:  # a child session of `all` / `curve`
        from .scale import run_scale

        result = run_scale(scale_options(args, args.nodes, args.replicas))
        Path(args.result_file).write_text(json.dumps(result))
        return 0 if result["outcome"] == "passed" else 1

    if args.what in ("all", "full"):
        from .fullrun import measure

        print(f"full run: cold CLI run, then a warm-up and {args.repeat} evidence on/off pairs "
              f"in this process ...", flush=True)
        full = dict(measure(repeat=args.repeat, cold=not args.no_cold), machine=info)
        print_full(full)
    if args.what == "scale":
        from .scale import run_scale

        print(f"scale session {args.nodes} x {args.replicas} ...", flush=True)
        scale = run_scale(scale_options(args, args.nodes, args.replicas))
        scale["machine"] = info
        print_scale(scale)
    if args.what in ("all", "curve"):
        points = []
        nodes_list = sorted({int(n) for n in args.curve.split(",") if n.strip()})
        if args.what == "all" and args.nodes not in nodes_list:
            nodes_list.append(args.nodes)
        for nodes in nodes_list:
            replicas = args.replicas if nodes == args.nodes else nodes * 10
            print(f"scale session {nodes} x {replicas} (own process) ...", flush=True)
            point = scale_in_child(args, nodes, replicas)
            if args.what == "all" and nodes == args.nodes:
                scale = dict(point, machine=info)
                print_scale(scale)
            points.append(point)
        curve = dict(curve_summary([p for p in points
                                    if p["options"]["replicas"] == p["options"]["nodes"] * 10]),
                     machine=info, options={k: v for k, v in asdict(scale_options(
                         args, 0, 0)).items() if k not in ("nodes", "replicas")})
        print_curve(curve)
    rows = verdicts(full, scale)
    print_verdicts(rows)
    if not args.no_write:
        if full is not None:
            written.append(write(out, "full_run.json", dict(full, targets=[
                r for r in rows if r["target"] in ("full_run_wall_s", "evidence_overhead_ratio")])))
        if scale is not None:
            o = scale["options"]
            name = (f"scale_{o['nodes']}n_{o['replicas']}r"
                    f"{'' if o['evidence'] else '_noevidence'}"
                    f"{'_tracemalloc' if o['tracemalloc'] else ''}"
                    f"{'' if o['backend'] == 'subprocess' else '_' + o['backend']}.json")
            written.append(write(out, name, dict(scale, targets=[
                r for r in rows if r["target"] in ("scale_convergence_s", "suite_peak_rss_mib")])))
        if curve is not None:
            written.append(write(out, "curve.json", curve))
        for path in written:
            print(f"wrote {path.relative_to(REPO) if path.is_relative_to(REPO) else path}")
    print(f"benchmarks took {time.perf_counter() - started:.1f} s")
    failed = (full is not None and not full["all_passed"]) or any(
        r is not None and r.get("outcome") != "passed" for r in (scale,)) or (
        curve is not None and any(p["outcome"] != "passed" for p in curve["points"]))
    if failed:
        print("benchmarks: a measured session did not pass (see above)", file=sys.stderr)
        return 1
    if args.check and any(r["met"] is False for r in rows):
        return 1
    return 0
