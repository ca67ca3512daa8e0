"""SQLite storage: one connection guarded by a lock, schema created on open.

`after_commit` runs callbacks right after the surrounding transaction commits, still under
the store lock, so whatever they announce is announced in commit order.

Every table carries `seq INTEGER PRIMARY KEY AUTOINCREMENT` (a monotonic sequence that
gives deterministic ordering, e.g. scheduler tie-breaks) and a public `id`. Secrets (API
keys, join tokens, node tokens) are stored only as SHA-256 hex digests plus a short prefix.
"""

from __future__ import annotations

import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager

log = logging.getLogger("quilt_verify.reference")

SCHEMA_VERSION = "1"

SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    key TEXT PRIMARY KEY,
    value TEXT NOT NULL
);
CREATE TABLE IF NOT EXISTS tenants (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    name TEXT NOT NULL UNIQUE,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS api_keys (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    prefix TEXT NOT NULL,
    created_at INTEGER NOT NULL,
    last_used_at INTEGER,
    expires_at INTEGER,
    revoked_at INTEGER
);
CREATE TABLE IF NOT EXISTS clusters (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    pod_cidr TEXT NOT NULL,
    node_cidr_prefix INTEGER NOT NULL,
    created_at INTEGER NOT NULL,
    UNIQUE (tenant_id, name)
);
CREATE TABLE IF NOT EXISTS join_tokens (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    cluster_id TEXT NOT NULL REFERENCES clusters(id) ON DELETE CASCADE,
    tenant_id TEXT NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    prefix TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    max_uses INTEGER NOT NULL,
    uses INTEGER NOT NULL DEFAULT 0,
    last_used_at INTEGER,
    revoked_at INTEGER,
    created_at INTEGER NOT NULL
);
CREATE TABLE IF NOT EXISTS nodes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    cluster_id TEXT NOT NULL REFERENCES clusters(id) ON DELETE CASCADE,
    tenant_id TEXT NOT NULL,
    name TEXT NOT NULL,
    state TEXT NOT NULL
        CHECK (state IN ('registered', 'ready', 'not_ready', 'draining', 'deleted')),
    public_ip TEXT,
    private_ip TEXT,
    agent_version TEXT,
    labels_json TEXT NOT NULL DEFAULT '{}',
    taints_json TEXT NOT NULL DEFAULT '[]',
    gpu_json TEXT NOT NULL DEFAULT '[]',
    pod_cidr TEXT NOT NULL,
    bridge_name TEXT NOT NULL,
    dns_port INTEGER NOT NULL,
    egress_limit_mbit INTEGER NOT NULL,
    allocated_at INTEGER NOT NULL,
    token_hash TEXT NOT NULL UNIQUE,
    token_prefix TEXT NOT NULL,
    revoked_at INTEGER,
    last_heartbeat_at INTEGER,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS nodes_live_name
    ON nodes (cluster_id, name) WHERE state != 'deleted';
CREATE UNIQUE INDEX IF NOT EXISTS nodes_live_cidr
    ON nodes (cluster_id, pod_cidr) WHERE state != 'deleted';
CREATE TABLE IF NOT EXISTS workloads (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    cluster_id TEXT NOT NULL REFERENCES clusters(id) ON DELETE CASCADE,
    tenant_id TEXT NOT NULL,
    name TEXT NOT NULL,
    spec_json TEXT NOT NULL,
    status_json TEXT NOT NULL DEFAULT '{}',
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (cluster_id, name)
);
CREATE TABLE IF NOT EXISTS placements (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    workload_id TEXT NOT NULL REFERENCES workloads(id) ON DELETE CASCADE,
    cluster_id TEXT NOT NULL,
    tenant_id TEXT NOT NULL,
    replica_index INTEGER NOT NULL,
    node_id TEXT NOT NULL,
    container_id TEXT,
    state TEXT NOT NULL,
    message TEXT,
    created_at INTEGER NOT NULL,
    updated_at INTEGER NOT NULL,
    UNIQUE (workload_id, replica_index)
);
CREATE INDEX IF NOT EXISTS placements_node ON placements (node_id);
CREATE TABLE IF NOT EXISTS containers (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    image TEXT,
    command_json TEXT,
    environment_json TEXT NOT NULL DEFAULT '{}',
    labels_json TEXT NOT NULL DEFAULT '{}',
    working_directory TEXT NOT NULL,
    memory_limit_mb INTEGER,
    cpu_limit_percent REAL,
    strict INTEGER NOT NULL DEFAULT 0,
    state TEXT NOT NULL
        CHECK (state IN ('created', 'starting', 'running', 'exited', 'error')),
    pid INTEGER,
    exit_code INTEGER,
    ip_address TEXT NOT NULL UNIQUE,
    created_at REAL NOT NULL,
    started_at REAL,
    exited_at REAL,
    UNIQUE (tenant_id, name)
);
CREATE TABLE IF NOT EXISTS container_routes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    container_id TEXT NOT NULL REFERENCES containers(id) ON DELETE CASCADE,
    destination TEXT NOT NULL,
    created_at REAL NOT NULL,
    UNIQUE (container_id, destination)
);
CREATE TABLE IF NOT EXISTS volumes (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT NOT NULL UNIQUE,
    tenant_id TEXT NOT NULL REFERENCES tenants(id) ON DELETE CASCADE,
    name TEXT NOT NULL,
    driver TEXT NOT NULL,
    labels_json TEXT NOT NULL DEFAULT '{}',
    created_at INTEGER NOT NULL,
    UNIQUE (tenant_id, name)
);
"""


class Store:
    """The reference backend's database. `path=None` gives a fresh in-memory database."""

    def __init__(self, path: str | None = None) -> None:
        self.path = path
        self._lock = threading.RLock()
        self._conn = sqlite3.connect(
            path or ":memory:", check_same_thread=False, isolation_level=None
        )
        self._conn.row_factory = sqlite3.Row
        self._conn.execute("PRAGMA foreign_keys = ON")
        if path:
            self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute("PRAGMA synchronous = NORMAL")
        self._conn.executescript(SCHEMA)
        self._conn.execute(
            "INSERT OR IGNORE INTO meta (key, value) VALUES ('schema_version', ?)",
            (SCHEMA_VERSION,),
        )
        self._closed = False
        self._after_commit: list[Callable[[], None]] = []

    @contextmanager
    def tx(self) -> Iterator[sqlite3.Connection]:
        """One serialized transaction; commits on success, rolls back on any exception.

        Re-entrant: a nested `tx()` on the same thread joins the outer transaction.
        """
        with self._lock:
            if self._closed:
                raise RuntimeError("store is closed")
            if self._conn.in_transaction:
                yield self._conn
                return
            self._conn.execute("BEGIN IMMEDIATE")
            try:
                yield self._conn
            except BaseException:
                self._after_commit.clear()
                self._conn.execute("ROLLBACK")
                raise
            try:
                self._conn.execute("COMMIT")
            except BaseException:
                self._after_commit.clear()
                raise
            self._run_after_commit()

    def after_commit(self, callback: Callable[[], None]) -> None:
        """Run `callback` once the current transaction commits (dropped on rollback); outside
        a transaction it runs at once. Either way it runs under the store lock."""
        with self._lock:
            if self._closed:
                return
            if self._conn.in_transaction:
                self._after_commit.append(callback)
                return
            self._after_commit.append(callback)
            self._run_after_commit()

    def _run_after_commit(self) -> None:
        callbacks, self._after_commit = self._after_commit, []
        for callback in callbacks:
            try:
                callback()
            except Exception:
                log.exception("after-commit callback failed")

    def close(self) -> None:
        with self._lock:
            if not self._closed:
                self._closed = True
                self._conn.close()
