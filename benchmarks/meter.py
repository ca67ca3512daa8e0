"""Measuring a session from the client's side: an observer that keeps numbers, never bodies.

``Meter`` sees every exchange (each attempt of each request) and keeps its latency, the
interval it was open (for the backend-wait figure), its endpoint template and status, plus the
container ids the backend handed out (to check afterwards that no process was left behind).
``Timed`` wraps another observer (the evidence recorder) and adds up the time spent in it.
``Phases`` cuts a session into named, timed phases with their own request counts and CPU.
"""

from __future__ import annotations

import json
import resource
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from quilt_verify.client import Exchange, VariantSeen

from .stats import busy_time, latency_figures, path_template


class Meter:
    """A thread-safe client observer keeping per-exchange numbers only."""

    def __init__(self, clock: Callable[[], float] = time.perf_counter) -> None:
        self._clock = clock
        self._lock = threading.Lock()
        self.durations_ms: list[float] = []
        self.intervals: list[tuple[float, float]] = []
        self.templates: list[str] = []
        self.statuses: Counter[int] = Counter()
        self.transport_errors = 0
        self.bytes_sent = 0
        self.bytes_received = 0
        self.container_ids: set[str] = set()

    def __call__(self, event: Exchange | VariantSeen) -> None:
        if not isinstance(event, Exchange):
            return
        end = self._clock()
        template = f"{event.method} {path_template(event.path)}"
        container_id = None
        if (event.method == "POST" and event.path.rstrip("/") == "/api/containers"
                and event.status is not None and 200 <= event.status < 300):
            container_id = _container_id(event.response_body)
        with self._lock:
            self.durations_ms.append(event.duration_ms)
            self.intervals.append((end - event.duration_ms / 1000.0, end))
            self.templates.append(template)
            if event.status is None:
                self.transport_errors += 1
            else:
                self.statuses[event.status] += 1
            self.bytes_sent += len(event.request_body or b"")
            self.bytes_received += len(event.response_body or b"")
            if container_id:
                self.container_ids.add(container_id)

    @property
    def count(self) -> int:
        with self._lock:
            return len(self.durations_ms)

    def figures(self, start: int = 0, end: int | None = None) -> dict[str, Any]:
        """Request count, latency percentiles and backend-busy time of exchanges[start:end]."""
        with self._lock:
            durations = self.durations_ms[start:end]
            intervals = self.intervals[start:end]
        return {"requests": len(durations), "latency": latency_figures(durations),
                "backend_busy_s": round(busy_time(intervals), 4)}

    def by_endpoint(self, top: int | None = None) -> dict[str, dict[str, Any]]:
        """Latency per endpoint template, most used first."""
        groups: dict[str, list[float]] = {}
        with self._lock:
            for template, duration in zip(self.templates, self.durations_ms, strict=True):
                groups.setdefault(template, []).append(duration)
        ordered = sorted(groups.items(), key=lambda kv: (-len(kv[1]), kv[0]))
        return {key: latency_figures(values) for key, values in ordered[:top]}


def _container_id(body: bytes | None) -> str | None:
    try:
        data = json.loads(body or b"")
    except ValueError:
        return None
    if isinstance(data, dict):
        value = data.get("container_id") or data.get("id")
        return str(value) if value else None
    return None


class Timed:
    """Wraps an observer and adds up the time spent inside it, over all threads.

    ``cpu_seconds`` (thread CPU time) is the cost of the work itself; ``seconds`` (wall) also
    counts waiting for locks and for the GIL while other threads run, so under concurrency
    it overstates the cost."""

    def __init__(self, inner: Callable[[Any], None]) -> None:
        self.inner = inner
        self.seconds = 0.0
        self.cpu_seconds = 0.0
        self.calls = 0
        self._lock = threading.Lock()

    def __call__(self, event: Any) -> None:
        started, cpu = time.perf_counter(), time.thread_time()
        try:
            self.inner(event)
        finally:
            spent_cpu = time.thread_time() - cpu
            spent = time.perf_counter() - started
            with self._lock:
                self.seconds += spent
                self.cpu_seconds += spent_cpu
                self.calls += 1


def process_cpu_s() -> float:
    """User + system CPU seconds of this process so far (all threads)."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def peak_rss_bytes() -> int:
    """Peak resident set size of this process since it started (its own program image).

    Read as ``VmHWM`` from /proc/self/status: ``getrusage().ru_maxrss`` is not used because
    Linux carries it across ``execve`` from the parent (a child started by a 200 MiB runner
    reports at least 200 MiB). Elsewhere ``ru_maxrss`` is the fallback."""
    try:
        for line in open("/proc/self/status", encoding="ascii"):
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


@dataclass
class Phase:
    name: str
    wall_s: float = 0.0
    first_exchange: int = 0
    last_exchange: int = 0
    suite_cpu_s: float = 0.0
    backend_cpu_s: float | None = None
    extra: dict[str, Any] = field(default_factory=dict)


class Phases:
    """Named, sequential phases of a session: wall time, requests and CPU of each."""

    def __init__(self, meter: Meter, backend_cpu: Callable[[], float | None] = lambda: None
                 ) -> None:
        self.meter = meter
        self.backend_cpu = backend_cpu
        self.done: list[Phase] = []

    @contextmanager
    def __call__(self, name: str) -> Iterator[Phase]:
        phase = Phase(name, first_exchange=self.meter.count)
        cpu0, bcpu0, t0 = process_cpu_s(), self.backend_cpu(), time.perf_counter()
        try:
            yield phase
        finally:
            phase.wall_s = time.perf_counter() - t0
            phase.suite_cpu_s = process_cpu_s() - cpu0
            bcpu1 = self.backend_cpu()
            phase.backend_cpu_s = None if bcpu0 is None or bcpu1 is None else bcpu1 - bcpu0
            phase.last_exchange = self.meter.count
            self.done.append(phase)

    def report(self) -> list[dict[str, Any]]:
        out = []
        for p in self.done:
            figures = self.meter.figures(p.first_exchange, p.last_exchange)
            wall = p.wall_s or float("nan")
            out.append({
                "phase": p.name,
                "wall_s": round(p.wall_s, 4),
                "requests": figures["requests"],
                "requests_per_s": round(figures["requests"] / wall, 1) if p.wall_s else None,
                "latency": figures["latency"],
                "suite_cpu_s": round(p.suite_cpu_s, 3),
                "suite_cpu_cores": round(p.suite_cpu_s / wall, 3) if p.wall_s else None,
                "backend_cpu_s": None if p.backend_cpu_s is None else round(p.backend_cpu_s, 3),
                "backend_cpu_cores": (None if p.backend_cpu_s is None or not p.wall_s
                                      else round(p.backend_cpu_s / wall, 3)),
                **p.extra,
            })
        return out
