"""Containers are real local processes: state follows the process, delete kills it."""

from __future__ import annotations

import ipaddress
import os
import signal
import sys
from pathlib import Path
from typing import Any

import pytest

from quilt_verify.reference import ReferenceServer

from .helpers import Tenant, assert_error, process_gone, wait_for

PY = sys.executable


def create(api: Tenant, name: str, **body: Any) -> dict[str, Any]:
    return api.ok(api.post("/api/containers", json={"name": name, **body}), 201)


def wait_exited(api: Tenant, cid: str) -> dict[str, Any]:
    def exited() -> dict[str, Any] | None:
        container = api.ok(api.get(f"/api/containers/{cid}"))
        return container if container["state"] == "exited" else None

    return wait_for(exited, f"container {cid} to exit")


def test_command_runs_in_its_working_directory(api: Tenant, ref_server: ReferenceServer,
                                               unique: str) -> None:
    script = ("import os, pathlib; pathlib.Path('out.txt').write_text("
              "os.getcwd() + '|' + os.environ['GREETING']); raise SystemExit(7)")
    created = create(api, f"writer-{unique}", command=[PY, "-c", script],
                     working_directory="/app", environment={"GREETING": "hello"},
                     labels={"k": "v"}, memory_limit_mb=64, cpu_limit_percent=25, strict=True)
    assert created["name"] == f"writer-{unique}"
    assert created["working_directory"] == "/app"
    assert (created["labels"], created["memory_limit_mb"], created["cpu_limit_percent"],
            created["strict"], created["gpu_count"], created["gpu_ids"]) == (
        {"k": "v"}, 64, 25, True, 0, [])
    assert created["command"] == [PY, "-c", script]
    assert created["created_at"].endswith("Z") and created["started_at"].endswith("Z")
    done = wait_exited(api, created["container_id"])
    assert done["exit_code"] == 7 and done["pid"] is None
    assert done["exited_at"] is not None
    assert ref_server.data_dir is not None
    out = ref_server.data_dir / "containers" / created["container_id"] / "fs" / "app" / "out.txt"
    cwd, greeting = out.read_text().split("|")
    assert Path(cwd) == out.parent and greeting == "hello"


def test_long_lived_process_and_delete(api: Tenant, unique: str) -> None:
    created = create(api, f"idle-{unique}")
    assert created["state"] == "running" and created["command"] is None
    pid = created["pid"]
    assert isinstance(pid, int) and not process_gone(pid)
    cid = created["container_id"]
    listed = api.ok(api.get("/api/containers", params={"state": "running"}))["containers"]
    assert cid in [c["container_id"] for c in listed]
    assert cid not in [c["container_id"] for c in
                       api.ok(api.get("/api/containers", params={"state": "exited"}))[
                           "containers"]]
    assert api.ok(api.delete(f"/api/containers/{cid}")) == {
        "success": True, "message": "Container removed successfully"}
    assert process_gone(pid)  # gone by the time delete answered
    assert_error(api.get(f"/api/containers/{cid}"), 404, "NOT_FOUND")
    assert_error(api.delete(f"/api/containers/{cid}"), 404, "NOT_FOUND")
    # The name is free again.
    api.ok(api.delete(f"/api/containers/{create(api, f'idle-{unique}')['container_id']}"))


def test_delete_kills_the_whole_process_group(api: Tenant, ref_server: ReferenceServer,
                                              unique: str) -> None:
    script = "trap '' TERM; sleep 300 & echo $! > child.pid; wait"
    created = create(api, f"group-{unique}", command=["sh", "-c", script])
    assert ref_server.data_dir is not None
    pid_file = ref_server.data_dir / "containers" / created["container_id"] / "fs" / "child.pid"
    child = int(wait_for(lambda: pid_file.exists() and pid_file.read_text().strip(),
                         "the child to write its pid"))
    assert not process_gone(child)
    api.ok(api.delete(f"/api/containers/{created['container_id']}"))
    assert process_gone(created["pid"])
    wait_for(lambda: process_gone(child), f"child {child} to be gone", timeout=3)


def test_signal_exit_code_follows_shell_convention(api: Tenant, unique: str) -> None:
    created = create(api, f"sig-{unique}")
    os.kill(created["pid"], signal.SIGTERM)
    done = wait_exited(api, created["container_id"])
    assert done["exit_code"] == 128 + signal.SIGTERM
    api.ok(api.delete(f"/api/containers/{created['container_id']}"))


def test_ip_addresses_are_unique_and_in_the_pool(api: Tenant, unique: str) -> None:
    made = [create(api, f"ip{i}-{unique}") for i in range(3)]
    addresses = [ipaddress.ip_address(c["ip_address"]) for c in made]
    assert len(set(addresses)) == 3
    assert all(a in ipaddress.ip_network("10.42.0.0/16") and int(a) & 0xFFFF >= 2
               for a in addresses)
    again = api.ok(api.get(f"/api/containers/{made[0]['container_id']}"))
    assert again["ip_address"] == made[0]["ip_address"]
    for c in made:
        api.ok(api.delete(f"/api/containers/{c['container_id']}"))


def test_names_are_unique_per_tenant_and_tenants_are_isolated(api: Tenant, other: Tenant,
                                                              unique: str) -> None:
    mine = create(api, f"shared-{unique}")
    assert_error(api.post("/api/containers", json={"name": f"shared-{unique}"}), 409,
                 "CONFLICT", "name")
    theirs = create(other, f"shared-{unique}")
    assert theirs["tenant_id"] != mine["tenant_id"]
    assert_error(other.get(f"/api/containers/{mine['container_id']}"), 404, "NOT_FOUND")
    assert_error(other.delete(f"/api/containers/{mine['container_id']}"), 404, "NOT_FOUND")
    assert mine["container_id"] not in [
        c["container_id"] for c in other.ok(other.get("/api/containers"))["containers"]]
    assert not process_gone(mine["pid"])
    for client, c in ((api, mine), (other, theirs)):
        client.ok(client.delete(f"/api/containers/{c['container_id']}"))


@pytest.mark.parametrize("body,status,field", [
    ({}, 422, "name"),
    ({"name": ""}, 400, "name"),
    ({"name": "a/b"}, 400, "name"),
    ({"name": "x", "command": []}, 400, "command"),
    ({"name": "x", "command": ["definitely-not-a-program-xyz"]}, 400, "command"),
    ({"name": "x", "command": ["echo", "a\u0000b"]}, 400, "command[1]"),
    ({"name": "x", "command": "echo"}, 422, "command"),
    ({"name": "x", "working_directory": "relative/dir"}, 400, "working_directory"),
    ({"name": "x", "environment": {"A": 1}}, 422, "environment.A"),
    ({"name": "x", "memory_limit_mb": True}, 422, "memory_limit_mb"),
    ({"name": "x", "strict": 1}, 422, "strict"),
])
def test_create_validation(api: Tenant, body: dict[str, Any], status: int, field: str) -> None:
    assert_error(api.post("/api/containers", json=body), status, "VALIDATION_ERROR", field)
    assert all(c["name"] != "x" for c in api.ok(api.get("/api/containers"))["containers"])


def test_gpu_request_is_capacity_full(api: Tenant) -> None:
    response = api.post("/api/containers", json={"name": "gpu", "gpu_count": 1})
    body = assert_error(response, 503, "CAPACITY_FULL")
    assert body["hint"]
