"""The container runtime of the reference backend: each container is a real local process.

A container owns `<data_dir>/containers/<id>/`: `fs/` is its filesystem root (container paths
such as `/app` map to `fs/app`) and `output.log` collects stdout and stderr. The process runs
in its own session (process group), so stopping a container signals the whole group: SIGTERM,
then SIGKILL after a short deadline. The leader is only reaped after the group kill, so its
process-group id cannot be reused while it is being signalled.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass
from pathlib import Path

IDLE_COMMAND = [sys.executable, "-c", "import time\nwhile True: time.sleep(3600)"]
CONTAINER_ID_ENV = "QUILT_CONTAINER_ID"


class SpawnError(Exception):
    """The container's command could not be started (not found, not executable, ...)."""


@dataclass(frozen=True)
class ProcessStatus:
    running: bool
    exit_code: int | None


def exit_code_of(returncode: int) -> int:
    """Shell convention: killed by signal N -> 128 + N."""
    return 128 - returncode if returncode < 0 else returncode


def _signal_group(pgid: int, sig: int) -> None:
    try:
        os.killpg(pgid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _leader_exited(proc: subprocess.Popen[bytes]) -> bool:
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


def _reap(proc: subprocess.Popen[bytes]) -> int:
    """Kill what is left of the group (only while the unreaped leader still reserves the
    pgid), then collect the leader's exit code."""
    with _REAP_LOCK:
        if proc.returncode is None:
            _signal_group(proc.pid, signal.SIGKILL)
        return exit_code_of(proc.wait())


_REAP_LOCK = threading.Lock()


class ProcessRuntime:
    """Starts, observes and stops container processes; thread-safe."""

    def __init__(self, data_dir: str | os.PathLike[str], stop_timeout: float = 2.0) -> None:
        self.root = Path(data_dir) / "containers"
        self.stop_timeout = stop_timeout
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._lock = threading.Lock()

    def container_dir(self, container_id: str) -> Path:
        return self.root / container_id

    def host_path(self, container_id: str, container_path: str) -> Path:
        """Map an absolute container path into the container's filesystem root."""
        relative = posixpath.normpath("/" + container_path).lstrip("/")
        return self.container_dir(container_id) / "fs" / relative

    def start(self, container_id: str, command: list[str] | None, working_directory: str,
              environment: dict[str, str]) -> int:
        """Start the container's process and return its pid; SpawnError if it cannot start."""
        cwd = self.host_path(container_id, working_directory)
        cwd.mkdir(parents=True, exist_ok=True)
        env = {
            "PATH": os.environ.get("PATH", os.defpath),
            "HOME": str(self.container_dir(container_id) / "fs"),
            "LANG": "C.UTF-8",
            **environment,
            CONTAINER_ID_ENV: container_id,
        }
        log_path = self.container_dir(container_id) / "output.log"
        try:
            with open(log_path, "ab") as log:
                proc = subprocess.Popen(
                    command or IDLE_COMMAND, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                    stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                )
        except (OSError, ValueError) as exc:
            self.discard(container_id)
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise SpawnError(f"cannot start {(command or IDLE_COMMAND)[0]!r}: {reason}") from None
        with self._lock:
            self._procs[container_id] = proc
        return proc.pid

    def owns(self, container_id: str) -> bool:
        with self._lock:
            return container_id in self._procs

    def poll(self, container_id: str) -> ProcessStatus | None:
        """The process state, or None when this runtime has no process for the container.

        When the leader has exited, whatever is left of its group is killed (a container ends
        with its main process) and the exit code is collected."""
        with self._lock:
            proc = self._procs.get(container_id)
        if proc is None:
            return None
        if not _leader_exited(proc):
            return ProcessStatus(True, None)
        return ProcessStatus(False, _reap(proc))

    def stop(self, container_id: str) -> int | None:
        """Stop the container's process group; returns its exit code (None if not ours)."""
        with self._lock:
            proc = self._procs.get(container_id)
        if proc is None:
            return None
        return self._stop_many([proc])[0]

    def discard(self, container_id: str) -> None:
        """Stop the process (if any) and remove the container's directory."""
        self.stop(container_id)
        with self._lock:
            self._procs.pop(container_id, None)
        shutil.rmtree(self.container_dir(container_id), ignore_errors=True)

    def stop_all(self) -> dict[str, int]:
        """Stop every process this runtime started; returns their exit codes by container id."""
        with self._lock:
            items = list(self._procs.items())
        codes = self._stop_many([proc for _, proc in items])
        return {cid: code for (cid, _), code in zip(items, codes, strict=True)}

    def _stop_many(self, procs: list[subprocess.Popen[bytes]]) -> list[int]:
        for proc in procs:
            if not _leader_exited(proc):
                _signal_group(proc.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.stop_timeout
        delay = 0.002
        while time.monotonic() < deadline and not all(_leader_exited(p) for p in procs):
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
        return [_reap(proc) for proc in procs]

    @staticmethod
    def kill_stray(container_id: str, pid: int) -> bool:
        """Kill a container process left by an earlier server run, if `pid` is provably it
        (its environment carries our container id). Linux only; returns whether it killed."""
        marker = f"{CONTAINER_ID_ENV}={container_id}".encode()
        try:
            environ = Path(f"/proc/{pid}/environ").read_bytes()
        except OSError:
            return False
        if marker not in environ.split(b"\0"):
            return False
        _signal_group(pid, signal.SIGKILL)
        return True
