"""Small, pure helpers for the figures: percentiles, busy time, rates, formatting."""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Sequence

MIB = 1024 * 1024
_ID_SEGMENT = re.compile(
    r"^(?:[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
    r"|qv-[A-Za-z0-9._-]+|[0-9a-fA-F]{16,})$")


def percentile(values: Sequence[float], pct: float) -> float | None:
    """Nearest-rank percentile (the method of the run's latency.json); None when empty."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, math.ceil(len(ordered) * pct / 100))
    return ordered[min(rank, len(ordered)) - 1]


def latency_figures(durations_ms: Sequence[float]) -> dict[str, float | int | None]:
    """count, p50, p95, p99 and max of request durations, in milliseconds (3 decimals)."""
    def r(value: float | None) -> float | None:
        return None if value is None else round(value, 3)

    return {"count": len(durations_ms), "p50_ms": r(percentile(durations_ms, 50)),
            "p95_ms": r(percentile(durations_ms, 95)), "p99_ms": r(percentile(durations_ms, 99)),
            "max_ms": r(max(durations_ms) if durations_ms else None)}


def busy_time(intervals: Iterable[tuple[float, float]]) -> float:
    """Length of the union of ``(start, end)`` intervals: time with at least one request open.

    Concurrent requests overlap; counting their union (not their sum) gives the wall time
    during which the suite was waiting on the backend."""
    total = 0.0
    current_start = current_end = None
    for start, end in sorted(intervals):
        if current_end is None or start > current_end:
            if current_end is not None:
                total += current_end - current_start
            current_start, current_end = start, end
        elif end > current_end:
            current_end = end
    if current_end is not None:
        total += current_end - current_start
    return total


def path_template(path: str) -> str:
    """``/api/clusters/<uuid>/nodes/<uuid>`` -> ``/api/clusters/:id/nodes/:id`` (query dropped)."""
    path = path.split("?", 1)[0]
    return "/".join(":id" if _ID_SEGMENT.match(seg) else seg for seg in path.split("/"))


def ratio(numerator: float, denominator: float) -> float | None:
    return None if not denominator else numerator / denominator


def median(values: Sequence[float]) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    mid = len(ordered) // 2
    return ordered[mid] if len(ordered) % 2 else (ordered[mid - 1] + ordered[mid]) / 2


def growth_exponent(xs: Sequence[float], ys: Sequence[float]) -> float | None:
    """Least-squares slope of log(y) over log(x): 1.0 is linear growth, 2.0 quadratic."""
    pairs = [(math.log(x), math.log(y)) for x, y in zip(xs, ys, strict=True) if x > 0 and y > 0]
    if len(pairs) < 2:
        return None
    mx = sum(p[0] for p in pairs) / len(pairs)
    my = sum(p[1] for p in pairs) / len(pairs)
    sxx = sum((p[0] - mx) ** 2 for p in pairs)
    if sxx == 0:
        return None
    return sum((p[0] - mx) * (p[1] - my) for p in pairs) / sxx


def table(rows: Sequence[Sequence[object]], header: Sequence[str]) -> str:
    """A plain fixed-width text table."""
    cells = [[str(c) for c in header]] + [["" if c is None else str(c) for c in row]
                                           for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(header))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip()
             for row in cells]
    lines.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(lines)


def fmt(value: float | None, digits: int = 2, unit: str = "") -> str:
    if value is None:
        return "-"
    return f"{value:.{digits}f}{unit}"
