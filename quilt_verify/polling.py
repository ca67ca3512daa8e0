"""Waiting on a condition with a deadline and backoff; never a fixed sleep."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


class WaitTimeout(AssertionError):
    """A condition did not hold before its deadline; says what was awaited and what was seen."""

    def __init__(self, describe: str, timeout: float, last: object) -> None:
        self.describe = describe
        self.last = last
        super().__init__(f"timed out after {timeout:g}s waiting for {describe}; last saw: {last!r}")


def wait_for(
    probe: Callable[[], T],
    until: Callable[[T], bool],
    *,
    timeout: float,
    describe: str,
    first_delay: float = 0.02,
    max_delay: float = 1.0,
    factor: float = 1.8,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> T:
    """Call ``probe`` until ``until(value)`` holds; return that value.

    The delay between probes starts at ``first_delay`` and grows by ``factor`` up to
    ``max_delay``, never sleeping past the deadline. On expiry raise :class:`WaitTimeout` naming
    ``describe`` and the last value seen.
    """
    deadline = clock() + timeout
    delay = first_delay
    while True:
        value = probe()
        if until(value):
            return value
        remaining = deadline - clock()
        if remaining <= 0:
            raise WaitTimeout(describe, timeout, value)
        sleep(min(delay, remaining))
        delay = min(delay * factor, max_delay)
