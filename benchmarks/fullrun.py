"""The default full run, measured: ``quilt-verify run`` against the embedded reference backend.

Two measurements:

- ``cold_cli``: the command a user types, ``python -m quilt_verify run``, in a fresh
  interpreter, timed from outside (interpreter start, imports, backend start, every suite,
  the bundle and the document).
- ``sessions``: the same pytest session run several times inside this process, alternately
  with evidence capture on and off, so the ratio of the two is measured in one process run.
  A probe plugin puts a :class:`~benchmarks.meter.Meter` in front of the client's observers
  (requests, latency, time waiting on the backend) and times the evidence recorder. "Off"
  unplugs the recorder from the client: no exchange is redacted or written (steps, results
  and the manifest are still written; they are small).
"""

from __future__ import annotations

import contextlib
import io
import os
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import pytest

from . import procs
from .meter import Meter, Timed
from .stats import busy_time, median

REPO = Path(__file__).resolve().parent.parent
SUITES = REPO / "suites"
PLUGIN_NAME = "quilt-verify-run"


class _Probe:
    """A pytest plugin that meters the run's client and times its evidence recorder."""

    def __init__(self, evidence: bool) -> None:
        self.evidence = evidence
        self.meter = Meter()
        self.timed: Timed | None = None
        self.config: Any = None
        self.attached = False
        self.before_attach = 0
        self.outcomes: dict[str, int] = {}
        self.t_collected: float | None = None
        self.t_tests_done: float | None = None

    def pytest_configure(self, config: Any) -> None:
        self.config = config

    def _attach(self) -> None:
        if self.attached or self.config is None:
            return
        run = self.config.pluginmanager.get_plugin(PLUGIN_NAME)
        if run is None or run.client is None or run.recorder is None:
            return
        recorder = run.recorder
        self.before_attach = recorder.exchange_count  # the preflight
        self.timed = Timed(recorder)
        observers = run.client.observers  # shared in place with any twin client
        rest = [o for o in observers if o is not recorder]
        observers[:] = [self.meter, *( [self.timed] if self.evidence else []), *rest]
        self.attached = True

    @pytest.hookimpl(trylast=True)
    def pytest_collection_finish(self, session: Any) -> None:
        self.t_collected = time.perf_counter()
        self._attach()

    def pytest_runtest_logstart(self, nodeid: str, location: Any) -> None:
        self._attach()

    def pytest_runtest_logreport(self, report: Any) -> None:
        if report.when == "call" or report.outcome != "passed":
            self.outcomes[report.outcome] = self.outcomes.get(report.outcome, 0) + 1

    @pytest.hookimpl(tryfirst=True)
    def pytest_sessionfinish(self, session: Any) -> None:
        self.t_tests_done = time.perf_counter()


def run_session(evidence: bool, report_dir: Path, extra: list[str] | None = None
                ) -> dict[str, Any]:
    """One full conformance session in this process; its figures."""
    probe = _Probe(evidence)
    args = [str(SUITES), "-q", "-p", "no:cacheprovider", "--quilt-report-dir", str(report_dir),
            "-W", "ignore::pytest.PytestAssertRewriteWarning", *(extra or [])]
    saved = {k: os.environ.pop(k) for k in list(os.environ) if k.startswith("QUILT_")}
    sink = io.StringIO()
    cpu0, t0 = time.process_time(), time.perf_counter()
    try:
        with contextlib.redirect_stdout(sink):
            code = int(pytest.main(args, plugins=[probe]))
    finally:
        os.environ.update(saved)
    wall = time.perf_counter() - t0
    cpu = time.process_time() - cpu0
    meter = probe.meter
    waiting = busy_time(meter.intervals)
    recording = probe.timed.seconds if (probe.timed and evidence) else 0.0
    recording_cpu = probe.timed.cpu_seconds if (probe.timed and evidence) else 0.0
    requests = meter.count + probe.before_attach
    strays = procs.container_processes(meter.container_ids)
    if strays:
        procs.kill_processes(list(strays))
    figures = meter.figures()
    return {
        "evidence": evidence,
        "exit_code": code,
        "outcomes": probe.outcomes,
        "wall_s": round(wall, 4),
        "start_s": round((probe.t_collected or t0) - t0, 4),
        "close_s": round(t0 + wall - (probe.t_tests_done or t0 + wall), 4),
        "requests": requests,
        "requests_per_s": round(requests / wall, 1),
        "latency": figures["latency"],
        "backend_wait_s": round(waiting, 4),
        "backend_wait_share": round(waiting / wall, 4),
        "suite_share": round(1 - waiting / wall, 4),
        "recording_s": round(recording, 4),
        "recording_share": round(recording / wall, 4),
        "recording_cpu_s": round(recording_cpu, 4),
        "recording_cpu_share": round(recording_cpu / wall, 4),
        "process_cpu_s": round(cpu, 3),
        "evidence_bytes": _folder_bytes(report_dir),
        "containers_created": len(meter.container_ids),
        "stray_processes": len(strays),
        "output_tail": sink.getvalue()[-1500:] if code != 0 else None,
    }


def cold_cli(workdir: Path) -> dict[str, Any]:
    """``python -m quilt_verify run`` in a fresh interpreter, timed end to end."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUILT_")}
    report_dir = workdir / "cold-cli"
    before = set(procs.container_processes())
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "quilt_verify", "run", "--report-dir",
                           str(report_dir)], cwd=REPO, env=env, capture_output=True, text=True,
                          timeout=600)
    wall = time.perf_counter() - t0
    summary = next((line.strip("= ") for line in reversed(proc.stdout.splitlines())
                    if " in " in line and ("passed" in line or "failed" in line)), "")
    # A container process that outlived this run is a new orphan (reparented to init) that
    # carries the reference runtime's marker. Counted, not killed: its id is not known here.
    strays = {pid: cid for pid, cid in procs.container_processes().items()
              if pid not in before and _orphan(pid)}
    return {"wall_s": round(wall, 3), "exit_code": proc.returncode, "summary": summary,
            "evidence_bytes": _folder_bytes(report_dir), "stray_processes": len(strays),
            "output_tail": None if proc.returncode == 0 else (proc.stdout + proc.stderr)[-1500:]}


def _orphan(pid: int) -> bool:
    try:
        ppid = int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])
    except (OSError, ValueError, IndexError):
        return False
    return ppid == 1


def measure(repeat: int = 3, cold: bool = True, extra: list[str] | None = None
            ) -> dict[str, Any]:
    """The cold CLI run, then a warm-up session and ``repeat`` on/off pairs in this process."""
    workdir = Path(tempfile.mkdtemp(prefix="qv-bench-fullrun-"))
    try:
        result: dict[str, Any] = {"kind": "full_run", "repeat": repeat}
        if cold:
            result["cold_cli"] = cold_cli(workdir)
        sessions = [dict(run_session(True, workdir / "warmup", extra), role="warmup")]
        for i in range(repeat):
            order = (True, False) if i % 2 == 0 else (False, True)
            for evidence in order:
                tag = "on" if evidence else "off"
                sessions.append(dict(run_session(evidence, workdir / f"s{i}-{tag}", extra),
                                     role=f"pair{i}"))
        result["sessions"] = sessions
        result.update(summarize(sessions))
        return result
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def summarize(sessions: list[dict[str, Any]]) -> dict[str, Any]:
    """Medians over the measured (non-warm-up) sessions, and the evidence on/off ratio."""
    measured = [s for s in sessions if s.get("role") != "warmup"]
    on = [s for s in measured if s["evidence"]]
    off = [s for s in measured if not s["evidence"]]
    on_wall = median([s["wall_s"] for s in on])
    off_wall = median([s["wall_s"] for s in off])
    pairs = {}
    for s in measured:
        pairs.setdefault(s["role"], {})["on" if s["evidence"] else "off"] = s["wall_s"]
    pair_ratios = [p["on"] / p["off"] for p in pairs.values() if "on" in p and "off" in p]
    ok = all(s["exit_code"] == 0 for s in sessions)
    on_cpu = median([s["process_cpu_s"] for s in on])
    off_cpu = median([s["process_cpu_s"] for s in off])
    return {
        "all_passed": ok,
        "median_wall_s": {"evidence_on": None if on_wall is None else round(on_wall, 4),
                          "evidence_off": None if off_wall is None else round(off_wall, 4)},
        "overhead_ratio": None if not (on_wall and off_wall) else round(on_wall / off_wall, 4),
        "pair_ratios": [round(r, 4) for r in pair_ratios],
        "median_pair_ratio": None if not pair_ratios else round(median(pair_ratios), 4),
        "cpu_overhead_ratio": None if not (on_cpu and off_cpu) else round(on_cpu / off_cpu, 4),
        "median_recording_share": median([s["recording_share"] for s in on]),
        "median_recording_cpu_share": median([s["recording_cpu_share"] for s in on]),
        "median_requests": median([s["requests"] for s in on]),
        "median_requests_per_s": median([s["requests_per_s"] for s in on]),
        "median_backend_wait_share": median([s["backend_wait_share"] for s in on]),
        "median_latency_p95_ms": median([s["latency"]["p95_ms"] or 0.0 for s in on]),
        "stray_processes": sum(s["stray_processes"] for s in sessions),
    }


def _folder_bytes(root: Path) -> int:
    total = 0
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            with contextlib.suppress(OSError):
                total += (Path(dirpath) / name).stat().st_size
    return total
