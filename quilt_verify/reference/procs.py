"""Process-group helpers shared by the container runtime, its output pump and exec.

Every process we start leads its own session (process group). A group is only signalled while
its leader is still unreaped, so the group id cannot have been reused by then.
"""

from __future__ import annotations

import os
import signal
import subprocess
import threading

_REAP_LOCK = threading.Lock()


def exit_code_of(returncode: int) -> int:
    """Shell convention: killed by signal N -> 128 + N."""
    return 128 - returncode if returncode < 0 else returncode


def signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def leader_exited(proc: subprocess.Popen[bytes]) -> bool:
    """Whether the leader has exited, without reaping it (so its pgid stays reserved)."""
    if proc.returncode is not None:
        return True
    if not hasattr(os, "waitid"):  # pragma: no cover - non-Linux fallback
        return proc.poll() is not None
    try:
        info = os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return True
    return info is not None


def signal_if_alive(proc: subprocess.Popen[bytes], sig: int) -> None:
    """Signal the group while the leader is unreaped (never a recycled group id)."""
    with _REAP_LOCK:
        if proc.returncode is None:
            signal_group(proc.pid, sig)


def reap(proc: subprocess.Popen[bytes]) -> int:
    """Kill what is left of the group (only while the unreaped leader still reserves the
    pgid), then collect the leader's exit code. Idempotent."""
    with _REAP_LOCK:
        if proc.returncode is None:
            signal_group(proc.pid, signal.SIGKILL)
        return exit_code_of(proc.wait())
