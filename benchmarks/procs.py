"""Looking at processes through /proc (Linux): container processes left alive, and the
memory and CPU of the backend process."""

from __future__ import annotations

import os
import signal
from collections.abc import Collection
from pathlib import Path

CONTAINER_ID_ENV = b"QUILT_CONTAINER_ID="  # set by the reference runtime in every container
_TICKS = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100


def container_processes(container_ids: Collection[str] | None = None) -> dict[int, str]:
    """Live (non-zombie) processes started as reference containers: pid -> container id.

    With ``container_ids`` only those containers' processes are returned, so processes of
    other reference backends running on the machine are never counted (or touched)."""
    found: dict[int, str] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            environ = Path(f"/proc/{entry}/environ").read_bytes()
            if CONTAINER_ID_ENV not in environ or _is_zombie(int(entry)):
                continue
        except OSError:
            continue
        for item in environ.split(b"\0"):
            if item.startswith(CONTAINER_ID_ENV):
                cid = item[len(CONTAINER_ID_ENV):].decode("utf-8", "replace")
                if container_ids is None or cid in container_ids:
                    found[int(entry)] = cid
                break
    return found


def _is_zombie(pid: int) -> bool:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return True
    return stat.rsplit(")", 1)[1].split()[0] in ("Z", "X")


def kill_processes(pids: Collection[int]) -> None:
    """SIGKILL the given pids (only ever called with pids of our own container ids)."""
    for pid in pids:
        try:
            os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass


def status_bytes(pid: int, field: str) -> int | None:
    """A ``kB`` field of /proc/<pid>/status (VmRSS, VmHWM) in bytes."""
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(field + ":"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError, IndexError):
        return None
    return None


def thread_count(pid: int) -> int | None:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("Threads:"):
                return int(line.split()[1])
    except (OSError, ValueError):
        return None
    return None


def cpu_seconds(pid: int) -> float | None:
    """User + system CPU seconds of a process (its own threads, not its children)."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / _TICKS
