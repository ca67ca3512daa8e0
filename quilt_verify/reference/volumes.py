"""Volumes (quilt-api.md 5.8): per-tenant named directories under
`<data_dir>/volumes/<tenant_id>/<name>/`. Timestamps are integer Unix seconds; `size_bytes`
is the total size of the regular files in the volume; `mount_point` is the host directory."""

from __future__ import annotations

import json
import os
import re
import shutil
import sqlite3
from pathlib import Path
from typing import Any

from . import faults
from .errors import conflict, invalid, not_found
from .tokens import new_id
from .validation import Body

NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}")
DRIVERS = ("local",)


def volume_dir(data_dir: Path, tenant_id: str, name: str) -> Path:
    return data_dir / "volumes" / tenant_id / name


def check_name(name: str, field: str = "name") -> str:
    if not NAME.fullmatch(name):
        raise invalid(field, "must match [A-Za-z0-9][A-Za-z0-9_.-]{0,62}",
                      ["[A-Za-z0-9][A-Za-z0-9_.-]{0,62}"], name[:64])
    return name


def size_of(root: Path) -> int:
    total = 0
    for directory, _, files in os.walk(root):
        for name in files:
            path = os.path.join(directory, name)
            if not os.path.islink(path):
                try:
                    total += os.stat(path).st_size
                except OSError:
                    pass
    return total


def view(row: sqlite3.Row, data_dir: Path) -> dict[str, Any]:
    root = volume_dir(data_dir, row["tenant_id"], row["name"])
    return {
        "name": row["name"],
        "driver": row["driver"],
        "labels": json.loads(row["labels_json"]),
        "status": "active",
        "mount_point": str(root),
        "created_at": row["created_at"],
        "size_bytes": size_of(root),
    }


def row_for(db: sqlite3.Connection, tenant_id: str, name: str) -> sqlite3.Row:
    """The tenant's volume; 404 for unknown names and other tenants' volumes."""
    if faults.on("volume-lookup-ignores-tenant"):
        row = db.execute("SELECT * FROM volumes WHERE name = ?", (name,)).fetchone()
    else:
        row = db.execute(
            "SELECT * FROM volumes WHERE tenant_id = ? AND name = ?", (tenant_id, name)
        ).fetchone()
    if row is None:
        raise not_found("volume", name)
    return row


def create(db: sqlite3.Connection, data_dir: Path, tenant_id: str, data: Any,
           now: int) -> dict[str, Any]:
    body = Body(data)
    name = check_name(body.string("name", required=True, max_len=63) or "")
    driver = body.string("driver", max_len=64) or "local"
    if driver not in DRIVERS:
        raise invalid("driver", "only the local driver is supported", list(DRIVERS), driver[:64])
    labels = body.str_map("labels") or {}
    if db.execute("SELECT 1 FROM volumes WHERE tenant_id = ? AND name = ?",
                  (tenant_id, name)).fetchone():
        raise conflict(f"volume already exists: {name}", "name")
    root = volume_dir(data_dir, tenant_id, name)
    shutil.rmtree(root, ignore_errors=True)  # leftovers of an interrupted delete
    root.mkdir(parents=True)
    db.execute(
        "INSERT INTO volumes (id, tenant_id, name, driver, labels_json, created_at)"
        " VALUES (?, ?, ?, ?, ?, ?)",
        (new_id(), tenant_id, name, driver, json.dumps(labels), now),
    )
    return view(row_for(db, tenant_id, name), data_dir)


def list_volumes(db: sqlite3.Connection, data_dir: Path, tenant_id: str) -> list[dict[str, Any]]:
    rows = db.execute("SELECT * FROM volumes WHERE tenant_id = ? ORDER BY seq", (tenant_id,))
    return [view(row, data_dir) for row in rows]


def delete(db: sqlite3.Connection, data_dir: Path, tenant_id: str, name: str) -> None:
    row = row_for(db, tenant_id, name)
    db.execute("DELETE FROM volumes WHERE id = ?", (row["id"],))
    shutil.rmtree(volume_dir(data_dir, tenant_id, name), ignore_errors=True)
