"""The container runtime session, like `kubectl run/exec/logs/delete`: create, exec, logs,
metrics, network, routes, stop/start/kill and delete, each checked against real values.

Ordered: a failed step blocks the rest of the session.
"""

from __future__ import annotations

import ipaddress
import secrets
from typing import Any

import pytest

from quilt_verify.checks import expect_error_body, expect_status, find_number
from quilt_verify.client import QuiltClient
from quilt_verify.polling import wait_for

pytestmark = [
    pytest.mark.capability("container-runtime"),
    pytest.mark.session,
    pytest.mark.mode("standard"),
]

ROUTE = "10.99.0.0/16"
KILLED = (137, -9)


def log_text(entries: list[Any]) -> str:
    """Log entries as text: objects carry the line in `message`/`line`/`log`, or are strings."""
    lines = []
    for entry in entries:
        if isinstance(entry, dict):
            lines.append(str(entry.get("message", entry.get("line", entry.get("log", entry)))))
        else:
            lines.append(str(entry))
    return "\n".join(lines)


def state_of(quilt: Any, container_id: str) -> dict[str, Any]:
    return quilt.get_container(container_id)


def test_01_create_container(quilt, quilt_names, quilt_ledger, session_state, step):
    """Creating a container with a command MUST return its container_id, and the container MUST
    reach `running`, be readable by id and be listed."""
    s = session_state
    s.marker = "qv-" + secrets.token_hex(6)
    s.name = quilt_names.make("ctr")
    command = ["sh", "-c", f"echo hello-{s.marker}; echo oops-{s.marker} >&2; exec sleep 3600"]
    step(f"creating container {s.name} running a shell that echoes a marker")
    container = quilt.create_container({"name": s.name, "image": "prod", "command": command,
                                        "environment": {"QV_MARKER": s.marker},
                                        "labels": quilt_names.labels})
    s.cid = QuiltClient.container_id(container)
    quilt_ledger.track(quilt, "container", s.cid, name=s.name)
    running = wait_for(lambda: state_of(quilt, s.cid), lambda c: c.get("state") == "running",
                       timeout=30, describe=f"container {s.cid} to be running")
    assert running.get("name") == s.name
    s.pid = running.get("pid")
    s.ip = running.get("ip_address")
    assert s.cid in [QuiltClient.container_id(c) for c in quilt.list_containers()]


def test_02_exec_returns_output_and_exit_code(quilt, session_state, step):
    """Exec MUST run the argv in the container with its environment and return its real stdout,
    stderr and exit code (a command printing a marker and exiting 3 comes back with both)."""
    s = session_state
    step("exec: print the marker from the container environment, write stderr, exit 3")
    result = quilt.container_exec(s.cid, ["sh", "-c", 'echo "m=$QV_MARKER"; echo e >&2; exit 3'])
    assert result.get("exit_code") == 3, f"exit_code {result.get('exit_code')!r}, expected 3"
    assert f"m={s.marker}" in str(result.get("stdout")), f"stdout {result.get('stdout')!r}"
    assert "e" in str(result.get("stderr")), f"stderr {result.get('stderr')!r}"
    if "timed_out" in result:
        assert result["timed_out"] is False
    if "execution_time_ms" in result:
        assert isinstance(result["execution_time_ms"], (int, float)) and result[
            "execution_time_ms"] >= 0


def test_03_exec_timeout(quilt, session_state, step):
    """An exec that outlives its `timeout_ms` MUST be stopped and reported as timed out."""
    s = session_state
    step("exec: sleep 30 with a 300 ms timeout")
    result = quilt.container_exec(s.cid, ["sleep", "30"], timeout_ms=300)
    timed_out = result.get("timed_out") is True or result.get("status") in ("timeout",
                                                                               "timed_out")
    assert timed_out, f"exec past its timeout was not reported as timed out: {result}"


def test_04_logs_contain_what_the_command_wrote(quilt, session_state, step):
    """The container's logs MUST contain what its command wrote to stdout and stderr."""
    s = session_state
    step("reading logs until both marker lines are there")
    wait_for(lambda: log_text(quilt.container_logs(s.cid, limit=100)),
             lambda text: f"hello-{s.marker}" in text and f"oops-{s.marker}" in text,
             timeout=15, describe=f"logs of {s.cid} to show hello-/oops-{s.marker}")


def test_05_metrics_read_from_the_process(quilt, session_state, step):
    """Metrics of a running container MUST describe its live process: its pid when the
    container reports one, and a memory figure above zero."""
    s = session_state
    step("reading metrics")
    metrics = quilt.container_metrics(s.cid)
    assert metrics, "metrics are empty"
    if s.pid is not None and "pid" in metrics:
        assert metrics["pid"] == s.pid, f"metrics pid {metrics['pid']} != container pid {s.pid}"
    memory = find_number(metrics, "memory", "rss")
    assert memory is not None and memory > 0, f"no positive memory figure in {metrics}"


def test_06_network_reports_the_address(quilt, session_state, step):
    """The network view MUST report the container's IP address, the one the container has."""
    s = session_state
    step("reading the network view")
    net = quilt.container_network(s.cid)
    ip = net.get("ip_address")
    assert ip, f"network view has no ip_address: {net}"
    ipaddress.ip_address(ip)
    if s.ip:
        assert ip == s.ip, f"network ip {ip} != container ip {s.ip}"
    s.ip = ip


def route_destinations(net: dict[str, Any]) -> list[str]:
    routes = net.get("routes") or []
    return [r.get("destination") if isinstance(r, dict) else str(r) for r in routes]


def test_07_routes_appear_and_disappear(quilt, session_state, step):
    """A route added to the container MUST appear in its network view and disappear when
    deleted; an invalid CIDR MUST be refused with 400, and deleting an absent route MUST fail."""
    s = session_state
    step(f"adding route {ROUTE}")
    quilt.add_route(s.cid, ROUTE)
    assert ROUTE in route_destinations(quilt.container_network(s.cid))
    step("adding an invalid CIDR")
    expect_error_body(expect_status(lambda: quilt.add_route(s.cid, "10.99.0.0/33"), 400, 422))
    step(f"deleting route {ROUTE}")
    quilt.delete_route(s.cid, ROUTE)
    assert ROUTE not in route_destinations(quilt.container_network(s.cid))
    step("deleting it again")
    expect_error_body(expect_status(lambda: quilt.delete_route(s.cid, ROUTE), 404, 409))


def test_08_stop_start_kill(quilt, session_state, step):
    """Stop MUST end the process (`exited`), start MUST run it again (`running`, same address),
    and kill MUST end it forcefully (`killed`, or `exited` with exit code 137)."""
    s = session_state
    step("stopping")
    quilt.stop_container(s.cid)
    wait_for(lambda: state_of(quilt, s.cid), lambda c: c.get("state") == "exited",
             timeout=30, describe=f"{s.cid} to be exited after stop")
    step("starting again")
    quilt.start_container(s.cid)
    again = wait_for(lambda: state_of(quilt, s.cid), lambda c: c.get("state") == "running",
                     timeout=30, describe=f"{s.cid} to be running after start")
    if s.pid is not None and again.get("pid") is not None:
        assert again["pid"] != s.pid, "start did not run a new process"
    assert quilt.container_network(s.cid).get("ip_address") == s.ip, "address changed on restart"
    step("killing")
    quilt.kill_container(s.cid)
    killed = wait_for(lambda: state_of(quilt, s.cid),
                      lambda c: c.get("state") in ("killed", "exited"),
                      timeout=30, describe=f"{s.cid} to be killed")
    if killed.get("state") == "exited":
        assert killed.get("exit_code") in KILLED, (
            f"killed container exited with {killed.get('exit_code')!r}, expected 137")


def test_09_delete(quilt, quilt_ledger, session_state, step):
    """A deleted container MUST answer 404 and be gone from the list."""
    s = session_state
    step("deleting the container")
    quilt.delete_container(s.cid)
    expect_error_body(expect_status(lambda: quilt.get_container(s.cid), 404))
    quilt_ledger.discard("container", s.cid)
    assert s.cid not in [QuiltClient.container_id(c) for c in quilt.list_containers()]
