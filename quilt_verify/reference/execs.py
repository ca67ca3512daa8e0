"""Exec: run an argv as a new process next to a container's process, synchronously.

The process leads its own session. When the deadline passes its whole group is killed and
the result says `timed_out: true, exit_code: null` with the output read so far. When the
leader exits, anything it left in its group is killed too (an exec ends with its process), the
pipes are drained briefly, and its exit code is returned (signal N -> 128 + N).

A program that cannot be executed is answered like a shell would: exit code 127 with
`<program>: command not found` on stderr when it does not exist, 126 otherwise. At most
`MAX_OUTPUT` bytes of each stream are kept (the rest is read and dropped); output is decoded as
UTF-8 with replacement characters.
"""

from __future__ import annotations

import os
import selectors
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from .procs import leader_exited, reap

MAX_OUTPUT = 16 * 1024 * 1024
TICK_S = 0.02
DRAIN_S = 1.0


@dataclass(frozen=True)
class ExecResult:
    exit_code: int | None
    stdout: str
    stderr: str
    execution_time_ms: int
    timed_out: bool


def _elapsed_ms(started: float) -> int:
    return int((time.monotonic() - started) * 1000)


def run_exec(argv: list[str], cwd: Path, env: dict[str, str], timeout_s: float,
             track: Callable[[subprocess.Popen[bytes] | None, subprocess.Popen[bytes] | None],
                             None]) -> ExecResult:
    """Run `argv`; `track(proc, None)` is called once it runs, `track(None, proc)` when done
    (so the runtime can kill it if its container stops meanwhile)."""
    started = time.monotonic()
    try:
        proc = subprocess.Popen(argv, cwd=cwd, env=env, stdin=subprocess.DEVNULL,
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                                start_new_session=True)
    except FileNotFoundError:
        return ExecResult(127, "", f"{argv[0]}: command not found\n", _elapsed_ms(started), False)
    except OSError as exc:
        reason = exc.strerror or str(exc)
        return ExecResult(126, "", f"{argv[0]}: {reason}\n", _elapsed_ms(started), False)
    track(proc, None)
    try:
        out, err, timed_out = _collect(proc, started + timeout_s)
        code = reap(proc)
    finally:
        track(None, proc)
    return ExecResult(None if timed_out else code, out.decode("utf-8", "replace"),
                      err.decode("utf-8", "replace"), _elapsed_ms(started), timed_out)


def _collect(proc: subprocess.Popen[bytes], deadline: float) -> tuple[bytes, bytes, bool]:
    """Read both pipes until the leader has exited and they are drained, or the deadline."""
    assert proc.stdout is not None and proc.stderr is not None
    out, err = bytearray(), bytearray()
    buffers = {proc.stdout.fileno(): out, proc.stderr.fileno(): err}
    timed_out = False
    drain_until: float | None = None
    try:
        with selectors.DefaultSelector() as sel:
            for fd in buffers:
                sel.register(fd, selectors.EVENT_READ)
            while True:
                now = time.monotonic()
                if drain_until is None and (now >= deadline or leader_exited(proc)):
                    timed_out = now >= deadline and not leader_exited(proc)
                    reap(proc)  # kills whatever is left of the group
                    drain_until = now + DRAIN_S
                if drain_until is not None and (not sel.get_map() or now >= drain_until):
                    break
                if not sel.get_map():
                    time.sleep(min(TICK_S, max(0.0, deadline - now)))
                    continue
                limit = deadline if drain_until is None else drain_until
                for key, _ in sel.select(min(TICK_S, max(0.0, limit - now))):
                    chunk = os.read(key.fd, 65536)
                    if not chunk:
                        sel.unregister(key.fd)
                        continue
                    buffer = buffers[key.fd]
                    buffer += chunk[: max(0, MAX_OUTPUT - len(buffer))]
    finally:
        proc.stdout.close()
        proc.stderr.close()
    return bytes(out), bytes(err), timed_out
