"""The container runtime of the reference backend: each container is a real local process.

A container owns `<data_dir>/containers/<id>/`: `fs/` is its filesystem root (container paths
such as `/app` map to `fs/app`) and `logs.jsonl` is its log (see `pump.py`: one record per
line of stdout or stderr, appended across restarts). The process runs in its own session
(process group), so stopping a container signals the whole group: SIGTERM, then SIGKILL after
a deadline. The leader is only reaped after the group kill, so its process-group id cannot be
reused while it is being signalled. Execs run as separate sessions and are killed with the
container.
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
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .execs import ExecResult, run_exec
from .procs import leader_exited, reap, signal_group, signal_if_alive
from .pump import OutputPump

IDLE_COMMAND = [sys.executable, "-c", "import time\nwhile True: time.sleep(3600)"]
CONTAINER_ID_ENV = "QUILT_CONTAINER_ID"
LOG_FILE = "logs.jsonl"
PUMP_JOIN_S = 2.0

ExitListener = Callable[[str, int, int], None]


class SpawnError(Exception):
    """The container's command could not be started (not found, not executable, ...)."""


@dataclass(frozen=True)
class ProcessStatus:
    running: bool
    exit_code: int | None


class ProcessRuntime:
    """Starts, observes and stops container processes; thread-safe.

    `set_exit_listener(fn)` registers `fn(container_id, pid, exit_code)`, called from the
    process's pump thread once a process has ended and its output is in the log."""

    def __init__(self, data_dir: str | os.PathLike[str], stop_timeout: float = 2.0) -> None:
        self.root = Path(data_dir) / "containers"
        self.stop_timeout = stop_timeout
        self._procs: dict[str, subprocess.Popen[bytes]] = {}
        self._pumps: dict[str, OutputPump] = {}
        self._execs: dict[str, set[subprocess.Popen[bytes]]] = {}
        self._lock = threading.Lock()
        self._exit_listener: ExitListener | None = None

    def set_exit_listener(self, listener: ExitListener | None) -> None:
        self._exit_listener = listener

    def container_dir(self, container_id: str) -> Path:
        return self.root / container_id

    def log_path(self, container_id: str) -> Path:
        return self.container_dir(container_id) / LOG_FILE

    def host_path(self, container_id: str, container_path: str) -> Path:
        """Map an absolute container path into the container's filesystem root."""
        relative = posixpath.normpath("/" + container_path).lstrip("/")
        return self.container_dir(container_id) / "fs" / relative

    def environment(self, container_id: str, environment: dict[str, str]) -> dict[str, str]:
        return {
            "PATH": os.environ.get("PATH", os.defpath),
            "HOME": str(self.container_dir(container_id) / "fs"),
            "LANG": "C.UTF-8",
            **environment,
            CONTAINER_ID_ENV: container_id,
        }

    def start(self, container_id: str, command: list[str] | None, working_directory: str,
              environment: dict[str, str]) -> int:
        """Start (or restart) the container's process and return its pid; SpawnError if it
        cannot start. Output is appended to the container's log."""
        cwd = self.host_path(container_id, working_directory)
        cwd.mkdir(parents=True, exist_ok=True)
        argv = command or IDLE_COMMAND
        try:
            proc = subprocess.Popen(
                argv, cwd=cwd, env=self.environment(container_id, environment),
                stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                start_new_session=True,
            )
        except (OSError, ValueError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
            raise SpawnError(f"cannot start {argv[0]!r}: {reason}") from None
        pump = OutputPump(proc, self.log_path(container_id),
                          lambda: self._process_ended(container_id, proc))
        with self._lock:
            self._procs[container_id] = proc
            self._pumps[container_id] = pump
        pump.start()
        return proc.pid

    def _process_ended(self, container_id: str, proc: subprocess.Popen[bytes]) -> None:
        listener = self._exit_listener
        if listener is not None:
            listener(container_id, proc.pid, reap(proc))

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
        if not leader_exited(proc):
            return ProcessStatus(True, None)
        return ProcessStatus(False, reap(proc))

    def wait_output(self, container_id: str, timeout: float = 1.0) -> None:
        """Wait (bounded) until the output of an ended process is completely in the log."""
        with self._lock:
            pump = self._pumps.get(container_id)
        if pump is not None and pump is not threading.current_thread():
            pump.join(timeout)

    def stop(self, container_id: str, timeout: float | None = None) -> int | None:
        """SIGTERM the container's group, SIGKILL after `timeout` (default: the runtime's);
        returns the exit code (None if this runtime has no process for it)."""
        with self._lock:
            proc = self._procs.get(container_id)
        self._kill_execs(container_id)
        if proc is None:
            return None
        return self._stop_many([proc], self.stop_timeout if timeout is None else timeout)[0]

    def kill(self, container_id: str) -> int | None:
        """SIGKILL the container's group at once; returns the exit code."""
        with self._lock:
            proc = self._procs.get(container_id)
        self._kill_execs(container_id)
        if proc is None:
            return None
        signal_if_alive(proc, signal.SIGKILL)
        return reap(proc)

    def discard(self, container_id: str) -> None:
        """Stop the process (if any) and remove the container's directory."""
        self.stop(container_id)
        with self._lock:
            self._procs.pop(container_id, None)
            self._pumps.pop(container_id, None)
        shutil.rmtree(self.container_dir(container_id), ignore_errors=True)

    def stop_all(self) -> dict[str, int]:
        """Stop every process this runtime started (and their execs); returns their exit codes
        by container id. Waits (bounded) for the pump threads to finish."""
        with self._lock:
            items = list(self._procs.items())
            pumps = list(self._pumps.values())
            exec_owners = list(self._execs)
        for container_id in exec_owners:
            self._kill_execs(container_id)
        codes = self._stop_many([proc for _, proc in items], self.stop_timeout)
        deadline = time.monotonic() + PUMP_JOIN_S
        for pump in pumps:
            pump.join(max(0.0, deadline - time.monotonic()))
        return {cid: code for (cid, _), code in zip(items, codes, strict=True)}

    @staticmethod
    def _stop_many(procs: list[subprocess.Popen[bytes]], timeout: float) -> list[int]:
        for proc in procs:
            signal_if_alive(proc, signal.SIGTERM)
        deadline = time.monotonic() + timeout
        delay = 0.002
        while time.monotonic() < deadline and not all(leader_exited(p) for p in procs):
            time.sleep(delay)
            delay = min(delay * 2, 0.05)
        return [reap(proc) for proc in procs]

    def exec(self, container_id: str, argv: list[str], workdir: str,
             environment: dict[str, str], timeout_s: float) -> ExecResult:
        """Run `argv` in the container's filesystem and environment (see `execs.py`);
        SpawnError when the working directory cannot be made."""
        cwd = self.host_path(container_id, workdir)
        try:
            cwd.mkdir(parents=True, exist_ok=True)
        except OSError as exc:  # e.g. a file is in the way
            raise SpawnError(f"cannot use working directory {workdir!r}: "
                             f"{exc.strerror or exc}") from None

        def track(started: subprocess.Popen[bytes] | None,
                  ended: subprocess.Popen[bytes] | None) -> None:
            with self._lock:
                running = self._execs.setdefault(container_id, set())
                if started is not None:
                    running.add(started)
                if ended is not None:
                    running.discard(ended)
                if not running:
                    del self._execs[container_id]

        return run_exec(argv, cwd, self.environment(container_id, environment), timeout_s,
                        track)

    def _kill_execs(self, container_id: str) -> None:
        with self._lock:
            procs = list(self._execs.get(container_id, ()))
        for proc in procs:
            signal_if_alive(proc, signal.SIGKILL)

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
        signal_group(pid, signal.SIGKILL)
        return True
