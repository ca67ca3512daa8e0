"""Reading an evidence bundle and computing what it establishes: endpoint coverage from the
recorded exchanges and test outcomes, latency per endpoint, behaviours, digest pairs."""

from __future__ import annotations

import json
from collections import Counter, defaultdict
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from quilt_verify.catalogue import ENDPOINTS, Endpoint, match

PASSING = frozenset({"passed"})
FAILING = frozenset({"failed", "error"})


class BundleError(ValueError):
    """The folder is not a readable evidence bundle; the message names the problem."""


@dataclass
class EndpointCoverage:
    endpoint: Endpoint
    exchanges: int = 0
    ok_in_passed_tests: int = 0
    statuses: Counter[int] = field(default_factory=Counter)
    tests: set[str] = field(default_factory=set)
    failing_tests: set[str] = field(default_factory=set)
    evidence: set[str] = field(default_factory=set)

    @property
    def status(self) -> str:
        """verified: answered 2xx inside a passing test; failed: not verified and used by a
        failing test; not exercised: neither (no exchange, or only error paths)."""
        if self.ok_in_passed_tests:
            return "verified"
        if self.failing_tests:
            return "failed"
        return "not exercised"


def percentile(values: list[float], pct: float) -> float:
    """Nearest-rank percentile of a non-empty list."""
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * pct // 100))
    return ordered[int(rank) - 1]


def latency_summary(durations: dict[str, list[float]]) -> dict[str, dict[str, float]]:
    return {
        key: {"count": len(vals), "p50_ms": round(percentile(vals, 50), 3),
              "p95_ms": round(percentile(vals, 95), 3), "max_ms": round(max(vals), 3)}
        for key, vals in sorted(durations.items()) if vals
    }


class Bundle:
    """A run folder, read-only."""

    def __init__(self, run_dir: Path, manifest: dict[str, Any] | None = None) -> None:
        self.run_dir = Path(run_dir)
        if not self.run_dir.is_dir():
            raise BundleError(f"{self.run_dir} is not a folder")
        self.manifest = manifest if manifest is not None else self._read_json("manifest.json")
        self.run = self._read_json("run.json")
        self.results: list[dict[str, Any]] = self._read_json("results.json").get("tests", [])
        self.digests = {f["path"]: f["sha256"] for f in self.manifest.get("files", [])}

    def _read_json(self, name: str) -> dict[str, Any]:
        path = self.run_dir / name
        try:
            data = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise BundleError(f"{path} is missing: not an evidence bundle") from None
        except (OSError, ValueError) as exc:
            raise BundleError(f"{path} is unreadable: {exc}") from None
        if not isinstance(data, dict):
            raise BundleError(f"{path} is not a JSON object")
        return data

    def optional_json(self, name: str) -> dict[str, Any] | None:
        try:
            return self._read_json(name)
        except BundleError:
            return None

    def exchanges(self) -> Iterator[tuple[str, dict[str, Any]]]:
        """(evidence file, exchange line) for every recorded exchange."""
        for path in sorted((self.run_dir / "exchanges").rglob("*.jsonl")):
            rel = path.relative_to(self.run_dir).as_posix()
            with path.open(encoding="utf-8") as fh:
                for line in fh:
                    try:
                        item = json.loads(line)
                    except ValueError as exc:
                        raise BundleError(f"{rel}: a line is not JSON ({exc})") from None
                    if item.get("kind") == "exchange":
                        yield rel, item

    def outcomes(self) -> dict[str, str]:
        return {r["nodeid"]: r["outcome"] for r in self.results}

    def coverage(self) -> tuple[dict[str, EndpointCoverage], Counter[str]]:
        """Per catalogue endpoint coverage, and exchanges to endpoints not in the catalogue."""
        outcomes = self.outcomes()
        cov = {ep.key: EndpointCoverage(ep) for ep in ENDPOINTS}
        others: Counter[str] = Counter()
        for rel, ex in self.exchanges():
            request = ex.get("request") or {}
            method, url = str(request.get("method", "")), str(request.get("url", ""))
            ep = match(method, url)
            if ep is None:
                others[f"{method} {_path_of(url)}"] += 1
                continue
            test = ex.get("test")
            if test not in outcomes:  # preflight and cleanup do not count as verification
                continue
            entry = cov[ep.key]
            entry.exchanges += 1
            entry.tests.add(test)
            entry.evidence.add(rel)
            status = (ex.get("response") or {}).get("status")
            if isinstance(status, int):
                entry.statuses[status] += 1
            outcome = outcomes[test]
            if outcome in FAILING:
                entry.failing_tests.add(test)
            if outcome in PASSING and isinstance(status, int) and 200 <= status < 300:
                entry.ok_in_passed_tests += 1
        return cov, others

    def latency(self) -> dict[str, dict[str, float]]:
        durations: dict[str, list[float]] = defaultdict(list)
        for _rel, ex in self.exchanges():
            request = ex.get("request") or {}
            ep = match(str(request.get("method", "")), str(request.get("url", "")))
            if ep is not None and isinstance(ex.get("duration_ms"), (int, float)):
                durations[ep.key].append(float(ex["duration_ms"]))
        return latency_summary(durations)


def _path_of(url: str) -> str:
    return urlsplit(url).path
