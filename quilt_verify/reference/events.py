"""The event hook: every committed change is announced as (tenant_id, event, data).

The reference emits names from the contract (`cluster_update`, `node_update`,
`placement_update`, `workload_update`, `container_update`). Nothing consumes them yet; the
SSE stream of a later issue subscribes here instead of touching the handlers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

EventHook = Callable[[str, str, dict[str, Any]], None]


def no_events(tenant_id: str, event: str, data: dict[str, Any]) -> None:
    """The default hook: drop the event."""
