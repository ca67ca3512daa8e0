"""The resource ledger: everything a run creates, unwound in reverse order at the end."""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from quilt_verify.errors import QuiltAPIError, QuiltError


@dataclass
class LedgerEntry:
    kind: str
    ident: str
    delete: Callable[[], Any]
    exists: Callable[[], bool] | None = None
    name: str | None = None


def gone_on_404(fetch: Callable[[], Any]) -> Callable[[], bool]:
    """An ``exists`` probe: True unless ``fetch`` raises a 404 API error."""

    def probe() -> bool:
        try:
            fetch()
        except QuiltAPIError as exc:
            if exc.status == 404:
                return False
            raise
        return True

    return probe


# Reverse dependency order for unwinding: what depends on something goes first.
UNWIND_ORDER = ("container", "workload", "node", "join_token", "cluster", "volume", "api_key")


def _unwind_rank(kind: str) -> int:
    return UNWIND_ORDER.index(kind) if kind in UNWIND_ORDER else len(UNWIND_ORDER)


class Ledger:
    """Thread-safe, ordered record of created resources."""

    def __init__(self) -> None:
        self._entries: list[LedgerEntry] = []
        self._lock = threading.Lock()

    def add(self, kind: str, ident: str, *, delete: Callable[[], Any],
            exists: Callable[[], bool] | None = None, name: str | None = None) -> None:
        with self._lock:
            self._entries.append(LedgerEntry(kind, ident, delete, exists, name))

    def track(self, client: Any, kind: str, ident: str, *, name: str | None = None,
              cluster_id: str | None = None) -> None:
        """Record a resource the run created through ``client`` (a QuiltClient), with the
        delete call and the read that confirms it is gone; workloads and nodes need their
        cluster."""
        c = client
        calls: dict[str, tuple[Callable[[], Any], Callable[[], Any] | None]] = {
            "cluster": (lambda: c.delete_cluster(ident), lambda: c.get_cluster(ident)),
            "workload": (lambda: c.delete_workload(cluster_id, ident),
                         lambda: c.get_workload(cluster_id, ident)),
            "node": (lambda: c.delete_node(cluster_id, ident),
                     lambda: c.get_node(cluster_id, ident)),
            "container": (lambda: c.delete_container(ident), lambda: c.get_container(ident)),
            "volume": (lambda: c.delete_volume(ident), lambda: c.get_volume(ident)),
            "api_key": (lambda: c.delete_api_key(ident), None),
        }
        if kind not in calls:
            raise ValueError(f"the ledger cannot track a {kind!r}")
        if kind in ("workload", "node") and not cluster_id:
            raise ValueError(f"a {kind} is tracked with its cluster_id")
        delete, read = calls[kind]
        if kind == "api_key":
            exists: Callable[[], bool] = lambda: ident in {  # noqa: E731 - keys have no GET
                str(k.get("id")) for k in c.list_api_keys()}
        else:
            assert read is not None
            exists = gone_on_404(read)
        self.add(kind, ident, delete=delete, exists=exists, name=name)

    def discard(self, kind: str, ident: str) -> None:
        """The run deleted this itself (and confirmed it); nothing left to unwind."""
        with self._lock:
            self._entries = [e for e in self._entries if (e.kind, e.ident) != (kind, ident)]

    def __len__(self) -> int:
        return len(self._entries)

    def entries(self) -> list[LedgerEntry]:
        with self._lock:
            return list(self._entries)

    def unwind(self) -> list[dict[str, str]]:
        """Delete everything still recorded in reverse dependency order (containers, workloads,
        nodes, join tokens, clusters, volumes, keys), newest first within a kind; each deletion
        is confirmed with a read. Return what could not be deleted."""
        with self._lock:
            entries, self._entries = list(reversed(self._entries)), []
        entries.sort(key=lambda e: _unwind_rank(e.kind))  # stable: newest first per kind
        leftovers = []
        for entry in entries:
            problem = _delete(entry)
            if problem:
                leftovers.append({"kind": entry.kind, "id": entry.ident,
                                  "name": entry.name or "", "problem": problem})
        return leftovers


def _delete(entry: LedgerEntry) -> str | None:
    try:
        entry.delete()
    except QuiltAPIError as exc:
        if exc.status != 404:
            return str(exc)
    except QuiltError as exc:
        return str(exc)
    if entry.exists is None:
        return None
    try:
        return "still present after delete" if entry.exists() else None
    except QuiltError as exc:
        return f"could not confirm deletion: {exc}"
