"""The reference backend for a benchmark: in a child process (default, so the suite's memory
and CPU are measured apart from the backend's) or in this process (as ``quilt-verify run``
embeds it).

As a child it is ``python -m benchmarks.backend``: the API key comes in the environment (never
on a command line), the URL goes out as one JSON line on stdout, and it stops (every container
process with it) when its stdin closes or on SIGTERM.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

from . import procs

REPO = Path(__file__).resolve().parent.parent
KEY_ENV = "QV_BENCH_API_KEY"
START_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 60.0


class ChildBackend:
    """A reference backend in a child process."""

    kind = "subprocess"

    def __init__(self, api_key: str, *, stop_timeout: float = 2.0) -> None:
        env = {k: v for k, v in os.environ.items() if not k.startswith("QUILT_")}
        env[KEY_ENV] = api_key
        env["QV_BENCH_STOP_TIMEOUT"] = str(stop_timeout)
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
        started = time.perf_counter()
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "benchmarks.backend"], cwd=REPO, env=env,
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
        try:
            line = _read_line(self.proc, START_TIMEOUT_S)
            info = json.loads(line)
        except BaseException:
            self.stop()
            raise
        self.url: str = info["url"]
        self.pid = self.proc.pid
        self.start_s = time.perf_counter() - started
        self.stopped: dict[str, Any] | None = None

    def cpu_seconds(self) -> float | None:
        return procs.cpu_seconds(self.pid)

    def snapshot(self) -> dict[str, Any]:
        """Memory, threads and CPU of the backend process right now."""
        return {"peak_rss_bytes": procs.status_bytes(self.pid, "VmHWM"),
                "rss_bytes": procs.status_bytes(self.pid, "VmRSS"),
                "threads": procs.thread_count(self.pid),
                "cpu_s": self.cpu_seconds()}

    def stop(self) -> dict[str, Any]:
        """Close its stdin (it then stops every container and exits); kill it if it hangs."""
        if self.stopped is not None:
            return self.stopped
        started = time.perf_counter()
        try:
            if self.proc.stdin:
                self.proc.stdin.close()
        except OSError:
            pass
        try:
            self.proc.wait(STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait()
        if self.proc.stdout:
            self.proc.stdout.close()
        self.stopped = {"exit_code": self.proc.returncode,
                        "stop_s": round(time.perf_counter() - started, 3)}
        return self.stopped


class InProcessBackend:
    """The reference backend in a thread of this process (the ``quilt-verify run`` way)."""

    kind = "inprocess"

    def __init__(self, api_key: str, *, stop_timeout: float = 2.0) -> None:
        from quilt_verify.reference.server import ReferenceServer

        started = time.perf_counter()
        self.server = ReferenceServer(api_keys=[api_key], stop_timeout=stop_timeout).start()
        self.url = self.server.url
        self.pid = os.getpid()
        self.start_s = time.perf_counter() - started
        self.stopped: dict[str, Any] | None = None

    def cpu_seconds(self) -> float | None:
        return None  # the same process as the suite: not separable

    def snapshot(self) -> dict[str, Any]:
        return {"peak_rss_bytes": None, "rss_bytes": None, "threads": procs.thread_count(self.pid),
                "cpu_s": None}

    def stop(self) -> dict[str, Any]:
        if self.stopped is None:
            started = time.perf_counter()
            self.server.stop()
            self.stopped = {"exit_code": 0, "stop_s": round(time.perf_counter() - started, 3)}
        return self.stopped


def start_backend(kind: str, api_key: str, *, stop_timeout: float = 2.0
                  ) -> ChildBackend | InProcessBackend:
    if kind == "subprocess":
        return ChildBackend(api_key, stop_timeout=stop_timeout)
    if kind == "inprocess":
        return InProcessBackend(api_key, stop_timeout=stop_timeout)
    raise ValueError(f"unknown backend kind {kind!r} (subprocess or inprocess)")


def _read_line(proc: subprocess.Popen[str], timeout: float) -> str:
    assert proc.stdout is not None
    ready, _, _ = select.select([proc.stdout], [], [], timeout)
    if not ready:
        raise RuntimeError(f"the benchmark backend did not start in {timeout:g}s")
    line = proc.stdout.readline()
    if not line:
        raise RuntimeError(f"the benchmark backend exited early (code {proc.wait()})")
    return line


def main() -> int:
    """Child side: serve until stdin closes or SIGTERM, then stop every container."""
    from quilt_verify.reference.server import ReferenceServer

    key = os.environ.pop(KEY_ENV, "")
    if not key:
        print(f"{KEY_ENV} is not set", file=sys.stderr)
        return 2
    stop_timeout = float(os.environ.get("QV_BENCH_STOP_TIMEOUT", "2.0"))
    stopping = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stopping.set())
    signal.signal(signal.SIGINT, lambda *_: stopping.set())
    server = ReferenceServer(api_keys=[key], stop_timeout=stop_timeout).start()
    try:
        print(json.dumps({"url": server.url, "pid": os.getpid()}), flush=True)

        def watch_stdin() -> None:
            sys.stdin.read()
            stopping.set()

        threading.Thread(target=watch_stdin, daemon=True).start()
        while not stopping.wait(1.0):
            pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
