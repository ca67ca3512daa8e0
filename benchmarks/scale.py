"""The scale session: N simulated node agents and a workload of M replicas, driven over HTTP.

Phases, each timed with its own request count, latency and CPU:

- ``setup``: create a cluster and the join tokens.
- ``join``: every agent registers (join token), heartbeats ``ready`` and reads its allocation.
- ``schedule``: create the workload (M replicas of ``sleep 3600``: real processes) and reconcile.
- ``converge``: agent rounds (heartbeat, fetch assignments, start containers through the
  runtime API, report ``running``) until the tenant sees every placement running with the
  container its agent started.
- ``reschedule``: delete the most loaded node, reconcile, agent rounds until every placement
  is running again (on the remaining nodes).
- ``teardown``: delete the workload, every container and the cluster; close the evidence
  bundle (leak scan, manifest); stop the backend; check that no container process is left.

Agents run concurrently on a thread pool sharing one client (one connection pool). Every
exchange is recorded as evidence by the real recorder (redacted, with every node token
registered as a secret) unless ``evidence=False``.
"""

from __future__ import annotations

import os
import secrets
import shutil
import tempfile
import threading
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx

from quilt_verify.agent import SimulatedAgent
from quilt_verify.client import QuiltClient, Throttle
from quilt_verify.config import Secret
from quilt_verify.evidence import Recorder
from quilt_verify.polling import WaitTimeout
from quilt_verify.redaction import Redactor

from . import procs
from .backend import start_backend
from .meter import Meter, Phases, Timed, peak_rss_bytes, process_cpu_s

T = TypeVar("T")
R = TypeVar("R")
MAX_USES = 1000  # the contract's largest join-token max_uses


@dataclass
class ScaleOptions:
    nodes: int = 100
    replicas: int = 1000
    workers: int = 16
    command: list[str] = field(default_factory=lambda: ["sleep", "3600"])
    evidence: bool = True
    backend: str = "subprocess"
    timeout_s: float = 300.0
    tracemalloc: bool = False
    keep_evidence: str | None = None


class ScaleError(RuntimeError):
    pass


def parallel(pool: ThreadPoolExecutor, fn: Callable[[T], R], items: Iterable[T]) -> list[R]:
    """Run ``fn`` over ``items`` on the pool; raise one error naming how many failed."""
    futures = [pool.submit(fn, item) for item in items]
    results: list[R] = []
    errors: list[BaseException] = []
    for future in futures:
        try:
            results.append(future.result())
        except Exception as exc:  # noqa: BLE001 - collected and re-raised below
            errors.append(exc)
    if errors:
        raise ScaleError(f"{len(errors)} of {len(futures)} agent tasks failed; first: "
                         f"{type(errors[0]).__name__}: {errors[0]}") from errors[0]
    return results


def _rss_now() -> int | None:
    return procs.status_bytes(os.getpid(), "VmRSS")


class _Session:
    def __init__(self, opts: ScaleOptions) -> None:
        self.opts = opts
        self.run_id = time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)
        self.key = "qvbench_" + secrets.token_urlsafe(24)
        self.redactor = Redactor()
        self.redactor.registry.add(self.key, "benchmark api key")
        self.meter = Meter()
        self.recorder: Recorder | None = None
        self.timed: Timed | None = None
        self.evidence_dir: Path | None = None
        self.backend: Any = None
        self.client: QuiltClient | None = None
        self.agents: list[SimulatedAgent] = []
        self.cluster_id: str | None = None
        self.workload_id: str | None = None
        self.result: dict[str, Any] = {}

    # -- the agent side ---------------------------------------------------------------------------
    def _join(self, item: tuple[SimulatedAgent, str]) -> None:
        agent, token = item
        agent.register(token)
        agent.heartbeat("ready")
        agent.allocation()

    @staticmethod
    def _round(agent: SimulatedAgent) -> None:
        agent.heartbeat("ready")
        agent.sync()

    def _check(self, live: list[SimulatedAgent]) -> tuple[bool, dict[str, int]]:
        """The tenant's view: is every replica running with the container its agent started?"""
        assert self.client is not None and self.cluster_id is not None
        owners = {a.node_id: a for a in live}
        placements = [p for p in self.client.list_placements(self.cluster_id)
                      if p.get("workload_id") == self.workload_id]
        seen: Counter[str] = Counter()
        indices = set()
        for p in placements:
            owner = owners.get(p.get("node_id"))
            ok = (p.get("state") == "running" and owner is not None
                  and p.get("container_id") == owner.containers.get(p["id"]))
            seen["running" if ok else str(p.get("state"))] += 1
            indices.add(p.get("replica_index"))
        done = (seen["running"] == self.opts.replicas == len(placements)
                and indices == set(range(self.opts.replicas)))
        return done, dict(seen)

    def _converge(self, live: list[SimulatedAgent], pool: ThreadPoolExecutor,
                  deadline: float, what: str) -> dict[str, Any]:
        rounds, delay = 0, 0.02
        while True:
            rounds += 1
            parallel(pool, self._round, live)
            done, seen = self._check(live)
            if done:
                return {"rounds": rounds, "placements": seen}
            if time.monotonic() > deadline:
                raise WaitTimeout(what, self.opts.timeout_s, seen)
            time.sleep(delay)
            delay = min(delay * 2, 1.0)

    # -- the session ------------------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        opts = self.opts
        if opts.nodes < 2 or opts.replicas < 1:
            raise ScaleError("a scale session needs at least 2 nodes and 1 replica")
        baseline_rss = _rss_now()
        if opts.tracemalloc:
            tracemalloc.start()
        self.evidence_dir = Path(tempfile.mkdtemp(prefix="qv-bench-evidence-"))
        if opts.evidence:
            self.recorder = Recorder(self.evidence_dir, self.redactor)
            self.timed = Timed(self.recorder)
        phases = Phases(self.meter, lambda: self.backend.cpu_seconds() if self.backend else None)
        pool = ThreadPoolExecutor(opts.workers, thread_name_prefix="qv-bench-agent")
        deadline = time.monotonic() + opts.timeout_s
        outcome = "failed"
        error: str | None = None
        try:
            self.backend = start_backend(opts.backend, self.key)
            pool_size = opts.workers + 4  # every agent thread and the driver, with room to spare
            observers: list[Any] = [self.meter] + ([self.timed] if self.timed else [])
            self.client = QuiltClient(
                self.backend.url, api_key=Secret(self.key), read_timeout=120, observers=observers,
                throttle=Throttle(max_concurrency=pool_size),
                limits=httpx.Limits(max_connections=pool_size, max_keepalive_connections=pool_size))
            self._session(phases, pool, deadline)
            outcome = "passed"
        except Exception as exc:  # noqa: BLE001 - reported in the result, then cleaned up
            error = f"{type(exc).__name__}: {self.redactor.scrub_text(str(exc))}"
        finally:
            self._teardown(phases, pool, outcome)
        if opts.tracemalloc:
            self.result["suite_tracemalloc_peak_bytes"] = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
        self.result.update(outcome=outcome, error=error, phases=phases.report(),
                           baseline_rss_bytes=baseline_rss)
        return self.result

    def _session(self, phases: Phases, pool: ThreadPoolExecutor, deadline: float) -> None:
        opts, client = self.opts, self.client
        assert client is not None
        with phases("setup"):
            self._begin("setup")
            cluster = client.create_cluster(f"qv-bench-{self.run_id}", "10.0.0.0/8", 24)
            self.cluster_id = cid = cluster["id"]
            tokens = []
            for first in range(0, opts.nodes, MAX_USES):
                uses = min(MAX_USES, opts.nodes - first)
                token = client.create_join_token(cid, ttl_secs=3600, max_uses=uses)
                self.redactor.registry.add(token["join_token"], "join_token")
                tokens.append(token["join_token"])
        self.agents = [
            SimulatedAgent(client, cid, f"qv-bench-{self.run_id}-n{i:04d}",
                           on_secret=self.redactor.registry.add, container_timeout=60)
            for i in range(opts.nodes)
        ]
        with phases("join"):
            self._begin("join")
            parallel(pool, self._join,
                     [(a, tokens[i // MAX_USES]) for i, a in enumerate(self.agents)])
        with phases("schedule") as p:
            self._begin("schedule")
            schedule_started = time.perf_counter()
            spec = {"name": f"qv-bench-{self.run_id}-w", "replicas": opts.replicas,
                    "command": list(opts.command), "labels": {"quilt-verify/bench": self.run_id}}
            self.workload_id = client.create_workload(cid, spec)["id"]
            p.extra["reconcile"] = client.reconcile(cid)
        with phases("converge") as p:
            self._begin("converge")
            p.extra.update(self._converge(self.agents, pool, deadline,
                                          f"all {opts.replicas} placements running"))
        self.result["initial_convergence_s"] = round(time.perf_counter() - schedule_started, 3)
        ids = {c for a in self.agents for c in a.containers.values()}
        self.result["container_processes_at_convergence"] = len(procs.container_processes(ids))
        self.result["suite_rss_at_convergence_bytes"] = _rss_now()
        load = Counter({a.node_id: len(a.containers) for a in self.agents})
        victim = max(self.agents, key=lambda a: (load[a.node_id], a.name))
        live = [a for a in self.agents if a is not victim]
        with phases("reschedule") as p:
            self._begin("reschedule")
            started = time.perf_counter()
            client.delete_node(cid, victim.node_id)
            p.extra["reconcile"] = client.reconcile(cid)
            p.extra["deleted_node_placements"] = len(victim.containers)
            p.extra.update(self._converge(live, pool, deadline,
                                          f"all {opts.replicas} placements running again"))
        self.result["reschedule_convergence_s"] = round(time.perf_counter() - started, 3)
        self.result["backend_during_session"] = self.backend.snapshot()

    def _begin(self, phase: str) -> None:
        if self.recorder is not None:
            self.recorder.begin_test(f"benchmarks/scale.py::{phase}")

    def _teardown(self, phases: Phases, pool: ThreadPoolExecutor, outcome: str) -> None:
        problems: list[str] = []
        client = self.client
        backend_last: dict[str, Any] = {}
        stopped = None
        with phases("teardown") as p:
            self._begin("teardown")
            try:
                if client is not None and self.cluster_id is not None:
                    try:
                        if self.workload_id:
                            client.delete_workload(self.cluster_id, self.workload_id)
                        parallel(pool, lambda a: a.remove_local_containers(), self.agents)
                        client.delete_cluster(self.cluster_id)
                    except Exception as exc:  # noqa: BLE001 - stopping the backend cleans up
                        problems.append(self.redactor.scrub_text(
                            f"teardown: {type(exc).__name__}: {exc}"))
                pool.shutdown(wait=True)
                if self.recorder is not None:
                    started = time.perf_counter()
                    _, leaks = self.recorder.finish(
                        run_info={"run_id": self.run_id, "kind": "benchmark"}, outcome=outcome)
                    p.extra["evidence_close_s"] = round(time.perf_counter() - started, 3)
                    self.result["evidence_leaks"] = [f.path for f in leaks]
            finally:
                if self.backend is not None:
                    backend_last = self.backend.snapshot()
                if client is not None:
                    client.close()
                if self.backend is not None:
                    stopped = self.backend.stop()
        created = {c for a in self.agents for c in a.created} | self.meter.container_ids
        strays = procs.container_processes(created)
        if strays:
            procs.kill_processes(list(strays))
            problems.append(f"{len(strays)} container process(es) outlived the backend")
        evidence_bytes, evidence_files = _folder_size(self.evidence_dir)
        if self.opts.keep_evidence and self.evidence_dir is not None:
            shutil.copytree(self.evidence_dir, self.opts.keep_evidence, dirs_exist_ok=True)
        if self.evidence_dir is not None:
            shutil.rmtree(self.evidence_dir, ignore_errors=True)
        meter = self.meter
        total = meter.figures()
        self.result.update({
            "kind": "scale",
            "options": asdict(self.opts),
            "requests": total["requests"],
            "latency": total["latency"],
            "latency_by_endpoint": meter.by_endpoint(top=12),
            "statuses": {str(k): v for k, v in sorted(meter.statuses.items())},
            "transport_errors": meter.transport_errors,
            "bytes_sent": meter.bytes_sent,
            "bytes_received": meter.bytes_received,
            "suite": {"peak_rss_bytes": peak_rss_bytes(), "cpu_s": round(process_cpu_s(), 3),
                      "threads_now": threading.active_count()},
            "backend": {"kind": self.backend.kind if self.backend else None,
                        "start_s": round(self.backend.start_s, 3) if self.backend else None,
                        "at_teardown": backend_last, "stop": stopped},
            "evidence": {"enabled": self.recorder is not None, "bytes": evidence_bytes,
                         "files": evidence_files,
                         "recording_cpu_s": round(self.timed.cpu_seconds, 3) if self.timed else 0.0,
                         "recording_wall_s": round(self.timed.seconds, 3) if self.timed else 0.0,
                         "secrets_registered": len(self.redactor.registry)},
            "containers": {"created": len(created), "stray_processes": len(strays)},
            "problems": problems,
        })


def _folder_size(root: Path | None) -> tuple[int, int]:
    if root is None or not root.exists():
        return 0, 0
    total = files = 0
    for dirpath, _dirs, names in os.walk(root):
        for name in names:
            total += (Path(dirpath) / name).stat().st_size
            files += 1
    return total, files


def run_scale(opts: ScaleOptions) -> dict[str, Any]:
    """Run one scale session and return its figures (see the module docstring)."""
    return _Session(opts).run()
