"""Process metrics read from /proc (Linux) for a live pid; never invented."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class ProcStats:
    memory_rss_bytes: int
    cpu_time_ms: int
    threads: int
    uptime_seconds: float


def read_stats(pid: int, proc_root: Path = Path("/proc")) -> ProcStats | None:
    """RSS, user+system CPU time, thread count and age of `pid`; None when it is gone (or a
    zombie)."""
    try:
        stat = (proc_root / str(pid) / "stat").read_text()
        statm = (proc_root / str(pid) / "statm").read_text()
        system_uptime = float((proc_root / "uptime").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return None
    # Fields after the command name, which is in parentheses and may contain anything.
    fields = stat.rsplit(")", 1)[1].split()
    if fields[0] == "Z":
        return None
    ticks = os.sysconf("SC_CLK_TCK")
    utime, stime = int(fields[11]), int(fields[12])
    threads = int(fields[17])
    started_ticks = int(fields[19])
    resident_pages = int(statm.split()[1])
    return ProcStats(
        memory_rss_bytes=resident_pages * os.sysconf("SC_PAGE_SIZE"),
        cpu_time_ms=(utime + stime) * 1000 // ticks,
        threads=threads,
        uptime_seconds=round(max(0.0, system_uptime - started_ticks / ticks), 3),
    )
