"""Events: every committed change is announced as (tenant_id, event, data).

Handlers and domain functions call `Events.emit` inside the transaction that makes the
change; delivery happens right after that transaction commits, under the store lock, so every
sink sees events in commit order (and never sees a rolled-back change). Sinks must be quick
and must not touch the store: the SSE broker only queues, and a user hook given to
`ReferenceServer(on_event=...)` is called the same way. A failing sink is logged, never the
request's error.

Event names and data (quilt-api.md 5.7):
- `container_update` `{container_id, name, state, exit_code}` (state `deleted` on delete)
- `cluster_update` `{cluster_id, action: created|deleted}`
- `node_update` `{cluster_id, node_id, state, action}` (only when the state changes)
- `workload_update` `{cluster_id, workload_id, action: created|updated|deleted, replicas}`
- `placement_update` `{cluster_id, placement_id, workload_id, node_id, state, container_id,
  action: created|moved|deleted|reported}` (state `deleted` when it is removed)
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Sequence
from typing import Any

from .store import Store

EventHook = Callable[[str, str, dict[str, Any]], None]
Emit = EventHook  # what domain functions are given: emit(tenant_id, event, data)

log = logging.getLogger("quilt_verify.reference")


def no_events(tenant_id: str, event: str, data: dict[str, Any]) -> None:
    """The default hook: drop the event."""


class Events:
    """Fans committed events out to the sinks."""

    def __init__(self, store: Store, sinks: Sequence[EventHook]) -> None:
        self._store = store
        self._sinks = list(sinks)

    def emit(self, tenant_id: str, event: str, data: dict[str, Any]) -> None:
        """Announce a change made in the current transaction (at once outside one)."""
        self._store.after_commit(functools.partial(self._deliver, tenant_id, event, data))

    def _deliver(self, tenant_id: str, event: str, data: dict[str, Any]) -> None:
        for sink in self._sinks:
            try:
                sink(tenant_id, event, data)
            except Exception:
                log.exception("event sink failed for %s", event)
