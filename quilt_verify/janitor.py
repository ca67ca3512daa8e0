"""The janitor: find resources left behind by earlier runs (named ``qv-<run-id>-...``) and, only
when asked, delete those whose run is older than a threshold. Never touches anything else."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from quilt_verify.client import QuiltClient
from quilt_verify.errors import QuiltAPIError, QuiltError

RUN_NAME = re.compile(r"^qv-(\d{8}-\d{6})-[0-9a-f]{6}(?:-|$)")
_DURATION = re.compile(r"^(\d+(?:\.\d+)?)([smhd])$")
_UNIT = {"s": 1, "m": 60, "h": 3600, "d": 86400}


def parse_duration(text: str) -> float:
    """``90s``, ``30m``, ``6h``, ``2d`` -> seconds."""
    match = _DURATION.match(text.strip())
    if not match:
        raise ValueError(f"duration {text!r} is not like 90s, 30m, 6h or 2d")
    return float(match.group(1)) * _UNIT[match.group(2)]


def run_started(name: str) -> datetime | None:
    """When the run that named this resource started, from the run id in the name."""
    match = RUN_NAME.match(name)
    if not match:
        return None
    return datetime.strptime(match.group(1), "%Y%m%d-%H%M%S").replace(tzinfo=UTC)


@dataclass(frozen=True)
class Leftover:
    kind: str
    ident: str
    name: str
    started: datetime | None

    def age_s(self, now: datetime) -> float | None:
        return None if self.started is None else (now - self.started).total_seconds()


# Deletion order: containers before clusters (which take nodes, workloads and tokens along).
KINDS: tuple[tuple[str, str, str], ...] = (
    ("container", "list_containers", "delete_container"),
    ("cluster", "list_clusters", "delete_cluster"),
    ("volume", "list_volumes", "delete_volume"),
    ("api_key", "list_api_keys", "delete_api_key"),
)


def _ident(kind: str, item: dict[str, Any]) -> str:
    if kind == "container":
        return str(QuiltClient.container_id(item))
    if kind == "volume":
        return str(item.get("name"))
    return str(item.get("id"))


def scan(client: QuiltClient) -> list[Leftover]:
    """Every resource whose name starts with ``qv-``, in deletion order."""
    found = []
    for kind, lister, _ in KINDS:
        for item in getattr(client, lister)():
            name = str(item.get("name") or "")
            if name.startswith("qv-"):
                found.append(Leftover(kind, _ident(kind, item), name, run_started(name)))
    return found


def sweep(client: QuiltClient, leftovers: list[Leftover], *, older_than_s: float,
          now: datetime | None = None, report: Callable[[str], None] = print) -> int:
    """Delete the leftovers older than the threshold; return how many could not be deleted."""
    now = now or datetime.now(UTC)
    failures = 0
    deleters = {kind: deleter for kind, _, deleter in KINDS}
    for item in leftovers:
        age = item.age_s(now)
        if age is None or age < older_than_s:
            continue
        try:
            getattr(client, deleters[item.kind])(item.ident)
            report(f"deleted {item.kind} {item.ident} {item.name}")
        except QuiltAPIError as exc:
            if exc.status == 404:
                report(f"already gone {item.kind} {item.ident} {item.name}")
                continue
            failures += 1
            report(f"FAILED {item.kind} {item.ident} {item.name}: {exc}")
        except QuiltError as exc:
            failures += 1
            report(f"FAILED {item.kind} {item.ident} {item.name}: {exc}")
    return failures


def describe(item: Leftover, now: datetime, older_than_s: float) -> str:
    age = item.age_s(now)
    if age is None:
        verdict, age_text = "kept (no run id in the name)", "?"
    else:
        verdict = "stale" if age >= older_than_s else "recent, kept"
        age_text = f"{age / 3600:.1f}h"
    return f"{item.kind:9} {item.ident:38} {item.name}  age {age_text}  {verdict}"
