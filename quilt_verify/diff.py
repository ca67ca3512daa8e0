"""Comparing two runs (nightly): behaviours newly failing or passing, endpoints newly verified or
lost, and per-endpoint latency changes beyond a threshold."""

from __future__ import annotations

from dataclasses import dataclass, field

from quilt_verify.bundle import Bundle


@dataclass
class RunDiff:
    newly_failing: list[tuple[str, str, str]] = field(default_factory=list)  # id, old, new
    newly_passing: list[tuple[str, str, str]] = field(default_factory=list)
    removed_behaviors: list[str] = field(default_factory=list)
    added_behaviors: list[str] = field(default_factory=list)
    endpoints_lost: list[tuple[str, str]] = field(default_factory=list)  # key, new status
    endpoints_gained: list[str] = field(default_factory=list)
    slower: list[tuple[str, float, float]] = field(default_factory=list)  # key, old p95, new p95
    faster: list[tuple[str, float, float]] = field(default_factory=list)

    @property
    def regressed(self) -> bool:
        return bool(self.newly_failing or self.endpoints_lost or self.slower
                     or self.removed_behaviors)


def _outcomes(bundle: Bundle) -> dict[str, str]:
    return {r.get("behavior_id", r["nodeid"]): r["outcome"] for r in bundle.results}


def compare(old: Bundle, new: Bundle, *, latency_ratio: float = 1.0,
            latency_min_ms: float = 20.0, latency_min_count: int = 5) -> RunDiff:
    """A p95 counts as slower when it grew by more than ``latency_ratio`` (1.0 = doubled) and
    by more than ``latency_min_ms``, on endpoints with at least ``latency_min_count`` samples in
    both runs (a p95 of one or two requests is noise, not a measurement)."""
    diff = RunDiff()
    before, after = _outcomes(old), _outcomes(new)
    for bid in sorted(before.keys() & after.keys()):
        was, now = before[bid], after[bid]
        if was == "passed" and now != "passed":
            diff.newly_failing.append((bid, was, now))
        elif was != "passed" and now == "passed":
            diff.newly_passing.append((bid, was, now))
    diff.removed_behaviors = sorted(before.keys() - after.keys())
    diff.added_behaviors = sorted(after.keys() - before.keys())
    old_cov, _ = old.coverage()
    new_cov, _ = new.coverage()
    for key in sorted(old_cov):
        was, now = old_cov[key].status, new_cov[key].status
        if was == "verified" and now != "verified":
            diff.endpoints_lost.append((key, now))
        elif was != "verified" and now == "verified":
            diff.endpoints_gained.append(key)
    old_lat = old.optional_json("latency.json") or {}
    new_lat = new.optional_json("latency.json") or {}
    for key in sorted(old_lat.keys() & new_lat.keys()):
        if min(old_lat[key]["count"], new_lat[key]["count"]) < latency_min_count:
            continue
        was, now = float(old_lat[key]["p95_ms"]), float(new_lat[key]["p95_ms"])
        if now - was > latency_min_ms and now > was * (1 + latency_ratio):
            diff.slower.append((key, was, now))
        elif was - now > latency_min_ms and was > now * (1 + latency_ratio):
            diff.faster.append((key, was, now))
    return diff


def render(diff: RunDiff, old: Bundle, new: Bundle) -> str:
    lines = [f"comparing {old.run.get('run_id')} -> {new.run.get('run_id')}"]

    def section(title: str, rows: list[str]) -> None:
        if rows:
            lines.append(f"{title}:")
            lines.extend(f"  {row}" for row in rows)

    section("newly failing", [f"{b}: {w} -> {n}" for b, w, n in diff.newly_failing])
    section("behaviours gone from the new run", diff.removed_behaviors)
    section("endpoints no longer verified", [f"{k} (now {s})" for k, s in diff.endpoints_lost])
    section("slower (p95)", [f"{k}: {w:.1f} ms -> {n:.1f} ms" for k, w, n in diff.slower])
    section("newly passing", [f"{b}: {w} -> {n}" for b, w, n in diff.newly_passing])
    section("new behaviours", diff.added_behaviors)
    section("endpoints newly verified", diff.endpoints_gained)
    section("faster (p95)", [f"{k}: {w:.1f} ms -> {n:.1f} ms" for k, w, n in diff.faster])
    lines.append("verdict: " + ("REGRESSED" if diff.regressed else "no regression"))
    return "\n".join(lines)
