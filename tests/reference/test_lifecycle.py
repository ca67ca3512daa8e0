"""Server lifecycle: fast start, persistence across restarts, no stray processes, secrets
stored only as hashes, and the foreground `serve_forever` entry point."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx

from quilt_verify.reference import ReferenceServer

from .helpers import Tenant, assert_error, process_gone, wait_for

KEY = "qvref_lifecycle_key_0123456789"


def test_start_is_fast_and_stop_is_idempotent() -> None:
    began = time.monotonic()
    server = ReferenceServer([KEY]).start()
    try:
        assert time.monotonic() - began < 1.0
        assert httpx.get(server.url + "/health").json() == {"status": "ok"}
        assert server.url == f"http://127.0.0.1:{server.port}"
    finally:
        server.stop()
    server.stop()
    data_dir = server.data_dir
    assert data_dir is not None and not data_dir.exists()  # its own temp dir is removed


def test_stop_leaves_no_container_processes() -> None:
    with ReferenceServer([KEY], stop_timeout=0.5) as server, Tenant(server.url, KEY) as api:
        pids = [api.ok(api.post("/api/containers", json={"name": f"c{i}"}), 201)["pid"]
                for i in range(3)]
        assert not any(process_gone(pid) for pid in pids)
    assert all(process_gone(pid) for pid in pids)


def test_state_survives_a_restart(tmp_path: Path) -> None:
    db = str(tmp_path / "ref.db")
    with ReferenceServer([KEY], db_path=db) as server, Tenant(server.url, KEY) as api:
        cluster = api.cluster()
        cid = cluster["id"]
        join_token = api.join_token(cid, max_uses=2)
        agent = api.agent(cid)
        agent.register(join_token, "persistent")
        agent.ok(agent.heartbeat("ready"))
        workload = api.workload(cid, 2)
        api.reconcile(cid)
        placements = api.placements(cid)
        container = api.ok(api.post("/api/containers", json={"name": "survivor"}), 201)
        node_token = agent.token
    assert process_gone(container["pid"])

    with ReferenceServer([KEY], db_path=db) as server, Tenant(server.url, KEY) as api:
        assert api.ok(api.get(f"/api/clusters/{cid}")) == cluster
        assert api.ok(api.get(f"/api/clusters/{cid}/workloads/{workload['id']}")) == workload
        assert api.placements(cid) == placements
        nodes = api.ok(api.get(f"/api/clusters/{cid}/nodes"))["nodes"]
        assert [n["name"] for n in nodes] == ["persistent"]
        # The node token and the remaining join-token use still work after the restart.
        again = api.agent(cid)
        again.node_id, again.token = agent.node_id, node_token
        again.ok(again.heartbeat("ready"))
        assert len(again.assignments()) == 2
        api.agent(cid).register(join_token, "second")
        # The container's process did not survive; its record says so.
        after = api.ok(api.get(f"/api/containers/{container['container_id']}"))
        assert after["state"] == "exited" and after["pid"] is None
        assert after["ip_address"] == container["ip_address"]

    raw = b"".join(p.read_bytes() for p in tmp_path.glob("ref.db*") if p.is_file())
    for secret in (KEY, join_token, node_token):
        assert secret.encode() not in raw, "a secret was stored in clear"


def test_api_key_of_another_server_is_refused(tmp_path: Path) -> None:
    with ReferenceServer(["someone-else"]) as server:
        response = httpx.get(server.url + "/api/clusters", headers={"X-Api-Key": KEY})
        assert_error(response, 401, "UNAUTHORIZED")


def test_serve_forever_stops_cleanly_on_sigterm(tmp_path: Path) -> None:
    code = ("import sys; from quilt_verify.reference import serve_forever; "
            f"serve_forever('127.0.0.1', 0, [{KEY!r}], "
            "on_ready=lambda url: print(url, flush=True))")
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True,
                            cwd=Path(__file__).resolve().parents[2])
    try:
        assert proc.stdout is not None
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        with Tenant(url, KEY) as api:
            pid = api.ok(api.post("/api/containers", json={"name": "fg"}), 201)["pid"]
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(timeout=10) == 0
        wait_for(lambda: process_gone(pid), f"container process {pid} to be gone", timeout=3)
    finally:
        if proc.poll() is None:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
