"""Stop, kill and start act on the real process, and every transition is visible on GET."""

from __future__ import annotations

import sys

from .helpers import (
    Tenant,
    assert_error,
    create_container,
    process_gone,
    wait_logs,
    wait_state,
)

PY = sys.executable


def test_stop_start_kill_transitions(api: Tenant, unique: str) -> None:
    created = create_container(api, f"life-{unique}", command=["sh", "-c", "echo run; exec sleep 60"])
    cid, first_pid = created["container_id"], created["pid"]
    base = f"/api/containers/{cid}"

    assert api.ok(api.post(f"{base}/stop", json={})) == {
        "success": True, "container_id": cid, "state": "exited", "exit_code": 143}
    assert process_gone(first_pid)
    stopped = api.ok(api.get(base))
    assert (stopped["state"], stopped["exit_code"], stopped["pid"]) == ("exited", 143, None)
    assert_error(api.post(f"{base}/stop"), 409, "CONFLICT")
    body = assert_error(api.post(f"{base}/kill", json={}), 409, "CONFLICT")
    assert body["details"]["state"] == "exited"

    started = api.ok(api.post(f"{base}/start", json={}))
    assert set(started) == {"success", "container_id", "state", "pid"}
    assert (started["success"], started["container_id"], started["state"]) == (True, cid, "running")
    assert started["pid"] != first_pid and not process_gone(started["pid"])
    running = api.ok(api.get(base))
    assert (running["state"], running["pid"], running["exit_code"]) == ("running", started["pid"], None)
    assert running["ip_address"] == created["ip_address"]
    assert running["exited_at"] is None
    assert_error(api.post(f"{base}/start"), 409, "CONFLICT")

    assert api.ok(api.post(f"{base}/kill")) == {
        "success": True, "container_id": cid, "state": "exited", "exit_code": 137}
    assert process_gone(started["pid"])
    killed = api.ok(api.get(base))
    assert (killed["state"], killed["exit_code"]) == ("exited", 137)
    # The second run appended to the log.
    logs = wait_logs(api, cid, lambda entries: len(entries) >= 2)
    assert [e["message"] for e in logs] == ["run", "run"]
    api.ok(api.delete(base))


def test_stop_is_graceful_first(api: Tenant, unique: str) -> None:
    script = ("import signal, sys, time\n"
              "def bye(*_):\n    print('got TERM', flush=True)\n    sys.exit(0)\n"
              "signal.signal(signal.SIGTERM, bye)\nprint('up', flush=True)\ntime.sleep(60)")
    cid = create_container(api, f"graceful-{unique}", command=[PY, "-c", script])["container_id"]
    wait_logs(api, cid, lambda entries: len(entries) == 1)
    assert api.ok(api.post(f"/api/containers/{cid}/stop"))["exit_code"] == 0
    assert [e["message"] for e in api.ok(api.get(f"/api/containers/{cid}/logs"))["logs"]] == [
        "up", "got TERM"]
    api.ok(api.delete(f"/api/containers/{cid}"))


def test_stop_escalates_to_sigkill_after_the_timeout(api: Tenant, unique: str) -> None:
    created = create_container(api, f"stubborn-{unique}",
                               command=["sh", "-c", "trap '' TERM; echo ready; sleep 60"])
    cid = created["container_id"]
    wait_logs(api, cid, lambda entries: len(entries) == 1)
    body = api.ok(api.post(f"/api/containers/{cid}/stop", json={"timeout_s": 0}))
    assert body["exit_code"] == 137
    assert process_gone(created["pid"])
    for bad in (-1, 61, "5", 1.5):
        assert_error(api.post(f"/api/containers/{cid}/stop", json={"timeout_s": bad}),
                     422 if not isinstance(bad, int) else 400, "VALIDATION_ERROR", "timeout_s")
    api.ok(api.delete(f"/api/containers/{cid}"))


def test_a_process_that_ends_by_itself_is_recorded_and_can_start_again(api: Tenant,
                                                                       unique: str) -> None:
    cid = create_container(api, f"short-{unique}", command=["sh", "-c", "exit 4"])["container_id"]
    assert wait_state(api, cid, "exited")["exit_code"] == 4
    again = api.ok(api.post(f"/api/containers/{cid}/start"))
    assert again["state"] == "running"
    assert wait_state(api, cid, "exited")["exit_code"] == 4
    api.ok(api.delete(f"/api/containers/{cid}"))
