"""Run-scoped resource names: every resource the run creates is named ``qv-<run-id>-...``."""

from __future__ import annotations

import re
import threading

PREFIX = "qv-"


class Names:
    """Hands out unique, run-scoped names (lower case, dashes, at most 63 characters)."""

    def __init__(self, run_id: str) -> None:
        self.run_id = run_id
        self.prefix = f"{PREFIX}{run_id}-"
        self._used: dict[str, int] = {}
        self._lock = threading.Lock()

    def make(self, kind: str) -> str:
        base = self.prefix + re.sub(r"[^a-z0-9-]+", "-", kind.lower()).strip("-")
        with self._lock:
            count = self._used.get(base, 0) + 1
            self._used[base] = count
        name = base if count == 1 else f"{base}-{count}"
        return name[:63]

    @property
    def labels(self) -> dict[str, str]:
        """Labels that tie a resource to this run, for APIs that take labels."""
        return {"quilt-verify/run": self.run_id}

    def owns(self, name: str) -> bool:
        return name.startswith(self.prefix)
