"""Time: an injectable clock and the two timestamp formats of the API."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

Clock = Callable[[], float]

system_clock: Clock = time.time


def unix_seconds(clock: Clock) -> int:
    """Integer Unix seconds (control-plane objects)."""
    return int(clock())


def iso8601(ts: float | None) -> str | None:
    """ISO-8601 UTC string with millisecond precision (container objects), or None."""
    if ts is None:
        return None
    return datetime.fromtimestamp(ts, UTC).isoformat(timespec="milliseconds").replace(
        "+00:00", "Z"
    )
