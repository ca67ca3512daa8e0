"""The output pump of a container process: one thread per process run.

It copies the process's stdout and stderr pipes into the container's log, one JSON record per
line, `{"stream": "stdout"|"stderr", "message": "<line without newline>"}` (bytes decoded as
UTF-8 with replacement; a line longer than 64 KiB is split). Lines of the two streams are
interleaved in the order the pump reads them, and each stream keeps its own order.

It also notices when the process leader exits: it then kills what is left of the group,
drains the pipes (briefly), and calls `on_exit` so the container's state is recorded at once.

The exit is seen through a pidfd (Linux 5.3+) waited on together with the pipes, so an idle
container costs no CPU: the thread sleeps in `poll` until there is output or the process ends.
Without pidfds it falls back to looking every `TICK_S` (1000 idle containers then cost
20 000 wake-ups a second, most of a core, and slow every request of the backend down).
"""

from __future__ import annotations

import json
import logging
import os
import select
import selectors
import subprocess
import threading
import time
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

from .procs import leader_exited, reap

MAX_LINE = 64 * 1024
TICK_S = 0.05
DRAIN_S = 1.0

log = logging.getLogger("quilt_verify.reference")


def open_pidfd(proc: subprocess.Popen[bytes]) -> int | None:
    """A descriptor that becomes readable when `proc` exits, or None (not Linux, too old, or
    already reaped)."""
    if proc.returncode is not None or not hasattr(os, "pidfd_open"):
        return None
    try:
        return os.pidfd_open(proc.pid)
    except OSError:
        return None


def wait_readable(fd: int | None, fallback: float) -> None:
    """Block until `fd` is readable (a pidfd: until the process exits); without one, sleep
    `fallback` seconds."""
    if fd is None:
        time.sleep(fallback)
        return
    poller = select.poll()
    poller.register(fd, select.POLLIN)
    poller.poll()


def record(stream: str, line: bytes) -> bytes:
    message = line.decode("utf-8", "replace")
    return (json.dumps({"stream": stream, "message": message}, ensure_ascii=False) + "\n").encode()


class OutputPump(threading.Thread):
    def __init__(self, proc: subprocess.Popen[bytes], log_path: Path,
                 on_exit: Callable[[], None]) -> None:
        super().__init__(name=f"quilt-pump-{proc.pid}", daemon=True)
        self.proc = proc
        self.log_path = log_path
        self.on_exit = on_exit

    def run(self) -> None:
        pidfd = open_pidfd(self.proc)
        try:
            with open(self.log_path, "ab") as out:
                self._copy(out, pidfd)
        except Exception:
            log.exception("output pump of pid %s failed", self.proc.pid)
        finally:
            for pipe in (self.proc.stdout, self.proc.stderr):
                if pipe is not None:
                    pipe.close()
            try:
                while not leader_exited(self.proc):  # pipes closed, process still running
                    wait_readable(pidfd, TICK_S)
                reap(self.proc)
            finally:
                if pidfd is not None:
                    os.close(pidfd)
                self.on_exit()

    def _copy(self, out: BinaryIO, pidfd: int | None = None) -> None:
        assert self.proc.stdout is not None and self.proc.stderr is not None
        names = {self.proc.stdout.fileno(): "stdout", self.proc.stderr.fileno(): "stderr"}
        partial = dict.fromkeys(names.values(), b"")
        drain_until: float | None = None
        with selectors.PollSelector() as sel:  # poll: no extra descriptor per container
            for fd in names:
                sel.register(fd, selectors.EVENT_READ)
            if pidfd is not None:
                sel.register(pidfd, selectors.EVENT_READ)  # readable once the process exits
            while any(fd in sel.get_map() for fd in names):
                if drain_until is not None:
                    wait: float | None = max(0.0, drain_until - time.monotonic())
                else:
                    wait = None if pidfd is not None and pidfd in sel.get_map() else TICK_S
                records: list[bytes] = []
                for key, _ in sel.select(wait):
                    if key.fd == pidfd:
                        sel.unregister(pidfd)  # the exit is handled below
                        continue
                    stream = names[key.fd]
                    chunk = os.read(key.fd, 65536)
                    if not chunk:
                        sel.unregister(key.fd)
                        if partial[stream]:
                            records.append(record(stream, partial[stream]))
                            partial[stream] = b""
                        continue
                    lines = (partial[stream] + chunk).split(b"\n")
                    rest = lines.pop()
                    while len(rest) > MAX_LINE:
                        lines.append(rest[:MAX_LINE])
                        rest = rest[MAX_LINE:]
                    partial[stream] = rest
                    records.extend(record(stream, line) for line in lines)
                if records:
                    out.write(b"".join(records))
                    out.flush()
                if drain_until is None:
                    if leader_exited(self.proc):
                        reap(self.proc)  # the group ends with its leader; pipes then close
                        drain_until = time.monotonic() + DRAIN_S
                elif time.monotonic() >= drain_until:
                    break
        tail = [record(stream, rest) for stream, rest in partial.items() if rest]
        if tail:
            out.write(b"".join(tail))
            out.flush()
