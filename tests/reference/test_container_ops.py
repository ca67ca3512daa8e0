"""Container day-2 routes on real processes: logs, exec, metrics, network and routes."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import pytest

from quilt_verify.reference import ReferenceServer

from .helpers import (
    Tenant,
    assert_error,
    create_container,
    process_gone,
    wait_logs,
    wait_state,
)

PY = sys.executable


@pytest.fixture
def idle(api: Tenant, unique: str) -> Any:
    container = create_container(api, f"ops-{unique}", environment={"GREETING": "hello"},
                                 working_directory="/srv")
    yield container
    api.delete(f"/api/containers/{container['container_id']}")


def test_logs_hold_what_the_process_wrote_per_stream_in_order(api: Tenant, unique: str) -> None:
    script = ("for i in 1 2 3; do echo out-$i; echo err-$i >&2; done; "
              "printf 'no-newline'; printf 'ü 日本\\n' >&2")
    created = create_container(api, f"logs-{unique}", command=["sh", "-c", script])
    cid = created["container_id"]
    wait_state(api, cid, "exited")
    body = api.ok(api.get(f"/api/containers/{cid}/logs"))
    assert body["container_id"] == cid
    entries = body["logs"]
    assert all(set(e) == {"stream", "message"} for e in entries)
    assert [e["message"] for e in entries if e["stream"] == "stdout"] == [
        "out-1", "out-2", "out-3", "no-newline"]
    assert [e["message"] for e in entries if e["stream"] == "stderr"] == [
        "err-1", "err-2", "err-3", "ü 日本"]
    last_two = api.ok(api.get(f"/api/containers/{cid}/logs", params={"limit": 2}))["logs"]
    assert last_two == entries[-2:]
    api.ok(api.delete(f"/api/containers/{cid}"))


def test_logs_of_a_running_container_and_limit_validation(api: Tenant, idle: dict) -> None:
    cid = idle["container_id"]
    assert api.ok(api.get(f"/api/containers/{cid}/logs"))["logs"] == []
    for bad in ("0", "10001", "abc", "-1", "1.5", ""):
        assert_error(api.get(f"/api/containers/{cid}/logs", params={"limit": bad}), 400,
                     "VALIDATION_ERROR", "limit")
    assert_error(api.get("/api/containers/nope/logs"), 404, "NOT_FOUND")


def test_exec_returns_both_streams_and_the_exit_code(api: Tenant, idle: dict) -> None:
    cid = idle["container_id"]
    body = api.ok(api.post(f"/api/containers/{cid}/exec", json={
        "command": ["sh", "-c", "echo OUT-marker; echo ERR-marker >&2; exit 3"]}))
    assert body == {"container_id": cid, "exit_code": 3, "stdout": "OUT-marker\n",
                    "stderr": "ERR-marker\n", "execution_time_ms": body["execution_time_ms"],
                    "timed_out": False}
    assert isinstance(body["execution_time_ms"], int) and body["execution_time_ms"] >= 0


def test_exec_runs_in_the_container_directory_and_environment(api: Tenant, idle: dict,
                                                              ref_server: ReferenceServer) -> None:
    cid = idle["container_id"]
    script = 'pwd; echo "$GREETING $EXTRA"'
    default = api.ok(api.post(f"/api/containers/{cid}/exec", json={
        "command": ["sh", "-c", script], "environment": {"EXTRA": "world"}}))
    assert ref_server.data_dir is not None
    fs = ref_server.data_dir / "containers" / cid / "fs"
    assert default["stdout"].splitlines() == [str(fs / "srv"), "hello world"]
    elsewhere = api.ok(api.post(f"/api/containers/{cid}/exec", json={
        "command": ["sh", "-c", script], "workdir": "/tmp/x", "environment": {"GREETING": "hi"}}))
    assert elsewhere["stdout"].splitlines() == [str(fs / "tmp" / "x"), "hi "]
    assert (fs / "tmp" / "x").is_dir()
    (fs / "a-file").write_text("in the way")
    assert_error(api.post(f"/api/containers/{cid}/exec", json={
        "command": ["true"], "workdir": "/a-file/sub"}), 400, "VALIDATION_ERROR", "workdir")


def test_exec_timeout_kills_the_process_and_keeps_partial_output(api: Tenant,
                                                                 idle: dict) -> None:
    cid = idle["container_id"]
    body = api.ok(api.post(f"/api/containers/{cid}/exec", json={
        "command": ["sh", "-c", "echo $$; echo partial >&2; exec sleep 30"], "timeout_ms": 300}))
    assert body["timed_out"] is True and body["exit_code"] is None
    assert body["stderr"] == "partial\n"
    assert 300 <= body["execution_time_ms"] < 5000
    assert process_gone(int(body["stdout"].strip()))


def test_exec_of_a_missing_program_is_127(api: Tenant, idle: dict) -> None:
    body = api.ok(api.post(f"/api/containers/{idle['container_id']}/exec",
                           json={"command": ["definitely-not-a-program-xyz", "arg"]}))
    assert body["exit_code"] == 127 and body["timed_out"] is False
    assert "definitely-not-a-program-xyz" in body["stderr"] and body["stdout"] == ""


@pytest.mark.parametrize("body,status,field", [
    ({}, 422, "command"),
    ({"command": "echo hi"}, 422, "command"),
    ({"command": []}, 400, "command"),
    ({"command": ["echo", 1]}, 422, "command[1]"),
    ({"command": ["echo"], "workdir": "relative"}, 400, "workdir"),
    ({"command": ["echo"], "timeout_ms": 0}, 400, "timeout_ms"),
    ({"command": ["echo"], "timeout_ms": 600_001}, 400, "timeout_ms"),
    ({"command": ["echo"], "environment": {"A": 1}}, 422, "environment.A"),
])
def test_exec_validation(api: Tenant, idle: dict, body: dict, status: int, field: str) -> None:
    assert_error(api.post(f"/api/containers/{idle['container_id']}/exec", json=body), status,
                 "VALIDATION_ERROR", field)


def test_exec_metrics_need_a_running_container(api: Tenant, unique: str) -> None:
    created = create_container(api, f"done-{unique}", command=["true"])
    cid = created["container_id"]
    wait_state(api, cid, "exited")
    for response in (api.post(f"/api/containers/{cid}/exec", json={"command": ["true"]}),
                     api.get(f"/api/containers/{cid}/metrics")):
        body = assert_error(response, 409, "CONFLICT")
        assert body["details"]["state"] == "exited"
    api.ok(api.delete(f"/api/containers/{cid}"))


def test_metrics_are_read_from_the_live_process(api: Tenant, unique: str) -> None:
    burn = ("import time\nt = time.process_time()\n"
            "while time.process_time() - t < 0.3: pass\n"
            "print('burnt', flush=True)\ntime.sleep(60)")
    created = create_container(api, f"burn-{unique}", command=[PY, "-c", burn])
    cid = created["container_id"]
    wait_logs(api, cid, lambda logs: {"stream": "stdout", "message": "burnt"} in logs)
    metrics = api.ok(api.get(f"/api/containers/{cid}/metrics"))
    assert set(metrics) == {"container_id", "pid", "state", "memory_rss_bytes", "cpu_time_ms",
                            "threads", "uptime_seconds", "read_at"}
    assert metrics["container_id"] == cid and metrics["state"] == "running"
    assert metrics["pid"] == created["pid"]
    assert metrics["memory_rss_bytes"] > 1024 * 1024  # a Python interpreter
    assert 250 <= metrics["cpu_time_ms"] < 60_000
    assert metrics["threads"] >= 1
    assert 0.2 <= metrics["uptime_seconds"] < 60
    assert metrics["read_at"].endswith("Z")
    status = Path(f"/proc/{created['pid']}/status").read_text()
    threads = int(next(line.split()[1] for line in status.splitlines()
                       if line.startswith("Threads:")))
    assert metrics["threads"] == threads
    api.ok(api.delete(f"/api/containers/{cid}"))


def test_network_view_and_routes(api: Tenant, idle: dict) -> None:
    cid = idle["container_id"]
    base = f"/api/containers/{cid}"
    assert api.ok(api.get(f"{base}/network")) == {
        "container_id": cid, "ip_address": idle["ip_address"], "network": "10.42.0.0/16",
        "gateway": "10.42.0.1", "routes": []}
    assert api.ok(api.post(f"{base}/routes", json={"destination": "10.99.0.0/16"})) == {
        "success": True, "message": "Route 10.99.0.0/16 injected inside container network namespace"}
    api.ok(api.post(f"{base}/routes", json={"destination": "fd00:0::/64"}))
    assert_error(api.post(f"{base}/routes", json={"destination": "10.99.0.0/16"}), 409, "CONFLICT")
    assert api.ok(api.get(f"{base}/network"))["routes"] == [
        {"destination": "10.99.0.0/16"}, {"destination": "fd00::/64"}]
    assert api.ok(api.request_delete(f"{base}/routes", {"destination": "10.99.0.0/16"})) == {
        "success": True, "message": "Route 10.99.0.0/16 removed"}
    assert api.ok(api.delete(f"{base}/routes", params={"destination": "fd00::/64"})) == {
        "success": True, "message": "Route fd00::/64 removed"}
    body = assert_error(api.request_delete(f"{base}/routes", {"destination": "10.98.0.0/16"}),
                        404, "NOT_FOUND")
    assert "10.98.0.0/16" in body["error"]
    network = api.ok(api.get(f"{base}/network"))
    assert network["routes"] == [] and network["ip_address"] == idle["ip_address"]


@pytest.mark.parametrize("destination", ["10.0.0.1/8", "10.0.0.0", "banana", "10.0.0.0/33",
                                         "fd00::1/64", " 10.0.0.0/8", "", "10.0.0.0/8/8"])
def test_route_destination_must_be_a_strict_cidr(api: Tenant, idle: dict,
                                                 destination: str) -> None:
    base = f"/api/containers/{idle['container_id']}/routes"
    assert_error(api.post(base, json={"destination": destination}), 400, "VALIDATION_ERROR",
                 "destination")
    assert_error(api.delete(base, params={"destination": destination}), 400, "VALIDATION_ERROR",
                 "destination")


def test_day2_routes_are_tenant_isolated(api: Tenant, other: Tenant, idle: dict) -> None:
    base = f"/api/containers/{idle['container_id']}"
    for response in (other.get(f"{base}/logs"), other.get(f"{base}/metrics"),
                     other.get(f"{base}/network"),
                     other.post(f"{base}/exec", json={"command": ["true"]}),
                     other.post(f"{base}/routes", json={"destination": "10.1.0.0/16"}),
                     other.delete(f"{base}/routes", params={"destination": "10.1.0.0/16"}),
                     other.post(f"{base}/stop", json={}), other.post(f"{base}/kill", json={}),
                     other.post(f"{base}/start", json={})):
        assert_error(response, 404, "NOT_FOUND")
    assert api.ok(api.get(base))["state"] == "running"
