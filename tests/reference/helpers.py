"""Helpers for the reference backend tests: a thin tenant/agent client and waiting."""

from __future__ import annotations

import http.client
import json
import os
import queue
import threading
import time
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

import httpx

T = TypeVar("T")


def wait_for(condition: Callable[[], T], describe: str, timeout: float = 5.0) -> T:
    """Poll `condition` with short backoff until it returns a truthy value; on timeout fail
    saying what was awaited and what was last seen."""
    deadline = time.monotonic() + timeout
    delay = 0.005
    last: T = condition()
    while not last:
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {describe}; "
                                 f"last saw {last!r}")
        time.sleep(delay)
        delay = min(delay * 2, 0.1)
        last = condition()
    return last


def process_gone(pid: int) -> bool:
    """True when no live process has this pid (a zombie counts as gone)."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return True
        except PermissionError:
            return False
        return False
    return stat.rsplit(")", 1)[1].split()[0] == "Z"


def assert_error(response: httpx.Response, status: int, code: str,
                 field: str | None = None) -> dict[str, Any]:
    """The response is the canonical JSON error body with this status, code (and field)."""
    assert response.status_code == status, response.text
    body = response.json()
    assert body["error_code"] == code, body
    assert isinstance(body["error"], str) and body["error"]
    assert body["request_id"] == response.headers["x-request-id"]
    if field is not None:
        assert body["details"]["field"] == field, body
    return body


class Tenant:
    """A tenant-authenticated client with shortcuts for the common set-up steps."""

    def __init__(self, url: str, key: str) -> None:
        self.http = httpx.Client(base_url=url, headers={"X-Api-Key": key}, timeout=10)
        self.url = url
        self.agents: list[Agent] = []

    def __enter__(self) -> Tenant:
        return self

    def __exit__(self, *exc: object) -> None:
        for agent in self.agents:
            agent.http.close()
        self.http.close()

    def get(self, path: str, **kw: Any) -> httpx.Response:
        return self.http.get(path, **kw)

    def post(self, path: str, **kw: Any) -> httpx.Response:
        return self.http.post(path, **kw)

    def put(self, path: str, **kw: Any) -> httpx.Response:
        return self.http.put(path, **kw)

    def delete(self, path: str, **kw: Any) -> httpx.Response:
        return self.http.delete(path, **kw)

    def request_delete(self, path: str, body: Any) -> httpx.Response:
        """DELETE with a JSON body."""
        return self.http.request("DELETE", path, json=body)

    def ok(self, response: httpx.Response, status: int = 200) -> Any:
        assert response.status_code == status, response.text
        return response.json()

    def cluster(self, pod_cidr: str = "10.200.0.0/16", prefix: int = 24) -> dict[str, Any]:
        body = {"name": f"c-{uuid.uuid4().hex[:8]}", "pod_cidr": pod_cidr,
                "node_cidr_prefix": prefix}
        return self.ok(self.post("/api/clusters", json=body), 201)

    def join_token(self, cluster_id: str, **body: Any) -> str:
        minted = self.ok(self.post(f"/api/clusters/{cluster_id}/join-tokens", json=body), 201)
        return minted["join_token"]

    def node(self, cluster_id: str, name: str | None = None, ready: bool = True) -> Agent:
        """Register a node with a fresh join token (and heartbeat it `ready`)."""
        agent = self.agent(cluster_id)
        agent.register(self.join_token(cluster_id), name or f"n-{uuid.uuid4().hex[:8]}")
        if ready:
            agent.ok(agent.heartbeat("ready"))
        return agent

    def agent(self, cluster_id: str) -> Agent:
        """An unregistered agent for the cluster (closed with this tenant client)."""
        agent = Agent(self.url, cluster_id)
        self.agents.append(agent)
        return agent

    def workload(self, cluster_id: str, replicas: int, **extra: Any) -> dict[str, Any]:
        spec = {"name": f"w-{uuid.uuid4().hex[:8]}", "replicas": replicas,
                "command": ["echo", "hi"], **extra}
        return self.ok(self.post(f"/api/clusters/{cluster_id}/workloads", json=spec), 201)

    def reconcile(self, cluster_id: str) -> dict[str, Any]:
        return self.ok(self.post(f"/api/clusters/{cluster_id}/reconcile", json={}))

    def placements(self, cluster_id: str, workload_id: str | None = None) -> list[dict[str, Any]]:
        items = self.ok(self.get(f"/api/clusters/{cluster_id}/placements"))["placements"]
        return [p for p in items if workload_id is None or p["workload_id"] == workload_id]


def register_body(name: str, **extra: Any) -> dict[str, Any]:
    return {"name": name, "bridge_name": "qbr0", "dns_port": 1053, "egress_limit_mbit": 100,
            **extra}


class Agent:
    """A node agent speaking the agent routes with its own node token."""

    def __init__(self, url: str, cluster_id: str) -> None:
        self.http = httpx.Client(base_url=url, timeout=10)
        self.cluster_id = cluster_id
        self.node_id = ""
        self.token = ""
        self.registered: dict[str, Any] = {}

    @property
    def base(self) -> str:
        return f"/api/agent/clusters/{self.cluster_id}/nodes/{self.node_id}"

    def register(self, join_token: str, name: str, **extra: Any) -> dict[str, Any]:
        response = self.http.post(f"/api/agent/clusters/{self.cluster_id}/nodes/register",
                                  headers={"X-Quilt-Join-Token": join_token},
                                  json=register_body(name, **extra))
        assert response.status_code == 201, response.text
        self.registered = response.json()
        self.node_id = self.registered["node"]["id"]
        self.token = self.registered["node_token"]
        return self.registered

    def call(self, method: str, suffix: str, token: str | None = None,
             node_id: str | None = None, **kw: Any) -> httpx.Response:
        base = f"/api/agent/clusters/{self.cluster_id}/nodes/{node_id or self.node_id}"
        headers = {"X-Quilt-Node-Token": self.token if token is None else token}
        return self.http.request(method, base + suffix, headers=headers, **kw)

    def heartbeat(self, state: str, **extra: Any) -> httpx.Response:
        return self.call("POST", "/heartbeat", json={"state": state, **extra})

    def assignments(self) -> list[dict[str, Any]]:
        return self.ok(self.call("GET", "/placements"))["assignments"]

    def report(self, placement_id: str, **body: Any) -> httpx.Response:
        return self.call("POST", f"/placements/{placement_id}/report", json=body)

    def ok(self, response: httpx.Response, status: int = 200) -> Any:
        assert response.status_code == status, response.text
        return response.json()


def raw_request(url: str, method: str, path: str, key: str | None = None,
                body: bytes | None = None) -> tuple[int, dict[str, Any]]:
    """Send `path` exactly as given (httpx would normalize `..` segments away)."""
    parsed = httpx.URL(url)
    conn = http.client.HTTPConnection(parsed.host, parsed.port, timeout=10)
    try:
        headers = {"X-Api-Key": key} if key else {}
        if body is not None:
            headers["Content-Type"] = "application/json"
        conn.request(method, path, body=body, headers=headers)
        response = conn.getresponse()
        return response.status, json.loads(response.read() or b"null")
    finally:
        conn.close()


END = {"end": True}


class EventReader:
    """Reads `GET /api/events` in a background thread; events and comments are queued as
    dicts (`{"event", "id", "data"}` with `data` decoded from JSON, or `{"comment"}`)."""

    def __init__(self, url: str, params: dict[str, str] | None = None,
                 headers: dict[str, str] | None = None) -> None:
        self.client = httpx.Client(base_url=url, timeout=httpx.Timeout(10, read=5))
        self.items: queue.Queue[dict[str, Any]] = queue.Queue()
        self.response: httpx.Response | None = None
        self._opened = threading.Event()
        self._stop = threading.Event()
        self.thread = threading.Thread(target=self._run, args=(params, headers), daemon=True)
        self.thread.start()
        assert self._opened.wait(10), "the event stream did not open"

    def _run(self, params: dict[str, str] | None, headers: dict[str, str] | None) -> None:
        try:
            with self.client.stream("GET", "/api/events", params=params,
                                    headers=headers) as response:
                self.response = response
                self._opened.set()
                if response.status_code != 200:
                    response.read()
                    return
                event: dict[str, Any] = {}
                for line in response.iter_lines():
                    if self._stop.is_set():
                        return
                    if not line:
                        if event:
                            event["data"] = json.loads(event.get("data", "null"))
                            self.items.put(event)
                        event = {}
                    elif line.startswith(":"):
                        self.items.put({"comment": line[1:].strip()})
                    else:
                        name, _, value = line.partition(":")
                        event[name] = value[1:] if value.startswith(" ") else value
        except httpx.HTTPError:
            pass
        finally:
            self._opened.set()
            self.items.put(END)

    def next(self, timeout: float = 5.0, comments: bool = False) -> dict[str, Any]:
        """The next event (skipping comments unless asked); END when the stream ended."""
        deadline = time.monotonic() + timeout
        while True:
            try:
                item = self.items.get(timeout=max(0.0, deadline - time.monotonic()))
            except queue.Empty:
                raise AssertionError(f"no event within {timeout}s") from None
            if comments or "comment" not in item:
                return item

    def until(self, predicate: Callable[[dict[str, Any]], bool],
              timeout: float = 5.0) -> dict[str, Any]:
        """Skip events until one matches."""
        deadline = time.monotonic() + timeout
        while True:
            item = self.next(max(0.0, deadline - time.monotonic()))
            assert item is not END, "the stream ended"
            if predicate(item):
                return item

    def close(self) -> None:
        self._stop.set()
        self.thread.join(5)
        self.client.close()

    def __enter__(self) -> EventReader:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def create_container(api: Tenant, name: str, **body: Any) -> dict[str, Any]:
    return api.ok(api.post("/api/containers", json={"name": name, **body}), 201)


def wait_state(api: Tenant, cid: str, state: str, timeout: float = 5.0) -> dict[str, Any]:
    def reached() -> dict[str, Any] | None:
        container = api.ok(api.get(f"/api/containers/{cid}"))
        return container if container["state"] == state else None

    return wait_for(reached, f"container {cid} to be {state}", timeout)


def wait_logs(api: Tenant, cid: str, expected: Callable[[list[dict[str, Any]]], bool],
              **params: Any) -> list[dict[str, Any]]:
    def logs() -> list[dict[str, Any]] | None:
        entries = api.ok(api.get(f"/api/containers/{cid}/logs", params=params))["logs"]
        return entries if expected(entries) else None

    return wait_for(logs, f"the logs of {cid}")
