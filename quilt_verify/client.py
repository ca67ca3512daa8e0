"""One httpx-based client for the Quilt API.

It adds tenant and agent auth, a fresh ``X-Request-ID`` per attempt, bounded retries (429 for
any method honouring ``Retry-After``; 5xx only for GET/DELETE), and tolerance for the documented
response variants, which it reports to its observers. It never asserts: it returns what the
target said or raises a :class:`~quilt_verify.errors.QuiltError` carrying method, path, status,
error code and request id; the suites judge.
"""

from __future__ import annotations

import base64
import json
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any
from urllib.parse import quote

import httpx

from quilt_verify.config import Secret
from quilt_verify.errors import QuiltAPIError, QuiltProtocolError, QuiltTransportError
from quilt_verify.polling import wait_for

USER_AGENT = "quilt-verify/0.1.0"
IDEMPOTENT = frozenset({"GET", "HEAD", "DELETE"})
# httpx's own default pool; agents driven concurrently may need a larger one (``limits``).
DEFAULT_LIMITS = httpx.Limits(max_connections=100, max_keepalive_connections=20)
TERMINAL_OPERATION = frozenset({"succeeded", "failed", "cancelled", "canceled", "timed_out"})


@dataclass
class Exchange:
    """One attempt of one request, as sent and as answered (unredacted: observers redact)."""

    method: str
    url: str
    path: str
    request_headers: list[tuple[str, str]]
    request_body: bytes | None
    attempt: int
    request_id: str
    started_at: str
    status: int | None = None
    response_headers: list[tuple[str, str]] = field(default_factory=list)
    response_body: bytes | None = None
    duration_ms: float = 0.0
    error: str | None = None


@dataclass(frozen=True)
class VariantSeen:
    """The target used one of several documented variants (e.g. ``list:clusters`` = ``bare``)."""

    name: str
    value: str


Observer = Callable[[Exchange | VariantSeen], None]


@dataclass(frozen=True)
class Registration:
    """A node registration, normalized from the nested or flat response variant."""

    node_id: str
    node_token: str
    node: dict[str, Any]
    allocation: dict[str, Any]


def _parse_retry_after(value: str | None) -> float | None:
    if not value:
        return None
    value = value.strip()
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - datetime.now(UTC)).total_seconds())


def _seg(value: str) -> str:
    """One URL path segment, percent-encoded."""
    return quote(str(value), safe="")


class Throttle:
    """Client-wide politeness: at most ``max_concurrency`` requests in flight, and (optionally)
    at most ``max_rps`` requests started per second, spaced evenly. Thread-safe."""

    def __init__(self, *, max_concurrency: int = 8, max_rps: float | None = None,
                 clock: Callable[[], float] = time.monotonic,
                 sleep: Callable[[float], None] = time.sleep) -> None:
        if max_concurrency < 1:
            raise ValueError("max_concurrency must be at least 1")
        if max_rps is not None and max_rps <= 0:
            raise ValueError("max_rps must be positive")
        self.slots = threading.BoundedSemaphore(max_concurrency)
        self.interval = 1.0 / max_rps if max_rps else 0.0
        self._next = 0.0
        self._lock = threading.Lock()
        self._clock, self._sleep = clock, sleep

    def acquire(self) -> None:
        self.slots.acquire()
        if self.interval:
            with self._lock:
                now = self._clock()
                start = max(now, self._next)
                self._next = start + self.interval
            if start > now:
                self._sleep(start - now)

    def release(self) -> None:
        self.slots.release()


class QuiltClient:
    """Thin typed layer over :class:`httpx.Client`. Thread-safe like httpx itself."""

    def __init__(
        self,
        base_url: str,
        *,
        api_key: Secret | None = None,
        jwt: Secret | None = None,
        connect_timeout: float = 5.0,
        read_timeout: float = 30.0,
        retries: int = 2,
        max_retry_after: float = 30.0,
        backoff: float = 0.3,
        transport: httpx.BaseTransport | None = None,
        limits: httpx.Limits | None = None,
        sleep: Callable[[float], None] = time.sleep,
        observers: list[Observer] | None = None,
        throttle: Throttle | None = None,
    ) -> None:
        self.base_url = base_url.rstrip("/")
        self._api_key = api_key
        self._jwt = jwt
        self.retries = retries
        self.max_retry_after = max_retry_after
        self.backoff = backoff
        self._sleep = sleep
        self.observers: list[Observer] = list(observers or [])
        self.throttle = throttle or Throttle()
        timeout = httpx.Timeout(read_timeout, connect=connect_timeout)
        self._http = httpx.Client(
            base_url=self.base_url, timeout=timeout, transport=transport,
            headers={"User-Agent": USER_AGENT, "Accept": "application/json"},
            follow_redirects=False, limits=limits or DEFAULT_LIMITS,
        )

    # -- plumbing -------------------------------------------------------------------------
    def close(self) -> None:
        self._http.close()

    def __enter__(self) -> QuiltClient:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    @property
    def auth_method(self) -> str:
        return "bearer-jwt" if self._jwt else ("x-api-key" if self._api_key else "none")

    def with_credentials(self, *, api_key: Secret | None = None,
                         jwt: Secret | None = None) -> QuiltClient:
        """A client for the same target with other tenant credentials and the same observers."""
        twin = QuiltClient.__new__(QuiltClient)
        twin.__dict__.update(self.__dict__)
        twin._api_key, twin._jwt = api_key, jwt
        return twin

    def _emit(self, event: Exchange | VariantSeen) -> None:
        for observer in self.observers:
            observer(event)

    def variant(self, name: str, value: str) -> None:
        self._emit(VariantSeen(name, value))

    def _tenant_headers(self) -> dict[str, str]:
        if self._jwt:
            return {"Authorization": f"Bearer {self._jwt.reveal()}"}
        if self._api_key:
            return {"X-Api-Key": self._api_key.reveal()}
        return {}

    def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        content: bytes | None = None,
        params: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        tenant_auth: bool = True,
    ) -> httpx.Response:
        """Send with retries; return the final response if it is 2xx/3xx, else raise."""
        method = method.upper()
        body = content
        send_headers = dict(self._tenant_headers() if tenant_auth else {})
        if json_body is not None:
            body = json.dumps(json_body, separators=(",", ":")).encode("utf-8")
            send_headers["Content-Type"] = "application/json"
        send_headers.update(headers or {})
        attempt = 0
        while True:
            attempt += 1
            response, exchange = self._send_once(method, path, body, params, send_headers, attempt)
            status = response.status_code
            if attempt <= self.retries and status == 429:
                self._sleep(self._retry_delay(response))
                continue
            if attempt <= self.retries and status >= 500 and method in IDEMPOTENT:
                self._sleep(self.backoff * (2 ** (attempt - 1)))
                continue
            if status >= 400:
                raise self._api_error(method, path, response, exchange.request_id)
            return response

    def _send_once(
        self, method: str, path: str, body: bytes | None, params: Mapping[str, Any] | None,
        headers: Mapping[str, str], attempt: int,
    ) -> tuple[httpx.Response, Exchange]:
        request_id = str(uuid.uuid4())
        hdrs = {**headers, "X-Request-ID": request_id}
        request = self._http.build_request(method, path, content=body, params=params, headers=hdrs)
        exchange = Exchange(
            method=method, url=str(request.url), path=path,
            request_headers=list(request.headers.items()), request_body=body,
            attempt=attempt, request_id=request_id,
            started_at=datetime.now(UTC).isoformat(timespec="milliseconds"),
        )
        self.throttle.acquire()
        started = time.perf_counter()
        try:
            response = self._http.send(request)
            response.read()
        except httpx.HTTPError as exc:
            self.throttle.release()
            exchange.duration_ms = (time.perf_counter() - started) * 1000
            exchange.error = f"{type(exc).__name__}: {exc}"
            self._emit(exchange)
            raise QuiltTransportError(
                method=method, path=path, request_id=request_id, reason=_describe_transport(exc)
            ) from None
        self.throttle.release()
        exchange.duration_ms = (time.perf_counter() - started) * 1000
        exchange.status = response.status_code
        exchange.response_headers = list(response.headers.items())
        exchange.response_body = response.content
        exchange.request_id = response.headers.get("x-request-id") or request_id
        self._emit(exchange)
        return response, exchange

    def _retry_delay(self, response: httpx.Response) -> float:
        delay = _parse_retry_after(response.headers.get("retry-after"))
        if delay is None:
            body = _try_json(response)
            if isinstance(body, dict) and isinstance(body.get("retry_after"), (int, float)):
                delay = float(body["retry_after"])
        return min(self.max_retry_after, 1.0 if delay is None else delay)

    def _api_error(self, method: str, path: str, response: httpx.Response,
                   request_id: str) -> QuiltAPIError:
        body = _try_json(response)
        code = message = None
        if isinstance(body, dict):
            rid = body.get("request_id")
            request_id = rid if isinstance(rid, str) and rid else request_id
            code = body.get("error_code") if isinstance(body.get("error_code"), str) else None
            for key in ("error", "message"):
                if isinstance(body.get(key), str):
                    message = body[key]
                    break
        elif response.content:
            message = f"non-JSON error body ({response.headers.get('content-type', '?')})"
        return QuiltAPIError(
            method=method, path=path, status=response.status_code, request_id=request_id,
            error_code=code, message=message or "", body=body,
            retry_after=_parse_retry_after(response.headers.get("retry-after")),
        )

    def call(self, method: str, path: str, **kwargs: Any) -> Any:
        """Request and decode JSON; an empty body is ``None``; non-JSON is a protocol error."""
        response = self.request(method, path, **kwargs)
        if not response.content:
            return None
        try:
            return response.json()
        except ValueError:
            raise QuiltProtocolError(
                f"expected a JSON body, got {response.headers.get('content-type', 'no type')} "
                f"({len(response.content)} bytes)", method=method.upper(), path=path,
                status=response.status_code,
                request_id=response.headers.get("x-request-id"),
            ) from None

    def _object(self, method: str, path: str, wrapper: str | None = None, **kwargs: Any) -> dict:
        body = self.call(method, path, **kwargs)
        if wrapper and isinstance(body, dict) and isinstance(body.get(wrapper), dict):
            self.variant(f"object:{wrapper}", "wrapped")
            body = body[wrapper]
        elif wrapper:
            self.variant(f"object:{wrapper}", "bare")
        if not isinstance(body, dict):
            raise QuiltProtocolError(f"expected a JSON object, got {type(body).__name__}",
                                     method=method, path=path, status=None, request_id=None)
        return body

    def _list(self, path: str, key: str, **kwargs: Any) -> list[dict[str, Any]]:
        body = self.call("GET", path, **kwargs)
        if isinstance(body, dict) and isinstance(body.get(key), list):
            self.variant(f"list:{key}", "wrapped")
            return body[key]
        if isinstance(body, list):
            self.variant(f"list:{key}", "bare")
            return body
        raise QuiltProtocolError(
            f"expected a list or an object with a {key!r} list, got {_shape(body)}",
            method="GET", path=path, status=None, request_id=None,
        )

    # -- health -------------------------------------------------------------------------------
    def health(self) -> Any:
        return self.call("GET", "/health", tenant_auth=False)

    # -- clusters ------------------------------------------------------------------------------
    def create_cluster(self, name: str, pod_cidr: str, node_cidr_prefix: int) -> dict:
        body = {"name": name, "pod_cidr": pod_cidr, "node_cidr_prefix": node_cidr_prefix}
        return self._object("POST", "/api/clusters", json_body=body)

    def list_clusters(self) -> list[dict]:
        return self._list("/api/clusters", "clusters")

    def get_cluster(self, cluster_id: str) -> dict:
        return self._object("GET", f"/api/clusters/{_seg(cluster_id)}", "cluster")

    def delete_cluster(self, cluster_id: str) -> Any:
        return self.call("DELETE", f"/api/clusters/{_seg(cluster_id)}")

    def reconcile(self, cluster_id: str) -> Any:
        return self.call("POST", f"/api/clusters/{_seg(cluster_id)}/reconcile", json_body={})

    def create_join_token(self, cluster_id: str, *, ttl_secs: int | None = None,
                          max_uses: int | None = None) -> dict:
        body = {k: v for k, v in (("ttl_secs", ttl_secs), ("max_uses", max_uses)) if v is not None}
        token = self._object("POST", f"/api/clusters/{_seg(cluster_id)}/join-tokens",
                             json_body=body)
        if "join_token" not in token and isinstance(token.get("token"), str):
            self.variant("join_token_field", "token")
            token["join_token"] = token["token"]
        return token

    # -- nodes (tenant) ------------------------------------------------------------------------
    def list_nodes(self, cluster_id: str) -> list[dict]:
        return self._list(f"/api/clusters/{_seg(cluster_id)}/nodes", "nodes")

    def get_node(self, cluster_id: str, node_id: str) -> dict:
        return self._object("GET", f"/api/clusters/{_seg(cluster_id)}/nodes/{_seg(node_id)}",
                            "node")

    def drain_node(self, cluster_id: str, node_id: str) -> Any:
        return self.call("POST", f"/api/clusters/{_seg(cluster_id)}/nodes/{_seg(node_id)}/drain",
                         json_body={})

    def delete_node(self, cluster_id: str, node_id: str) -> Any:
        return self.call("DELETE", f"/api/clusters/{_seg(cluster_id)}/nodes/{_seg(node_id)}")

    # -- workloads and placements --------------------------------------------------------------
    def create_workload(self, cluster_id: str, spec: Mapping[str, Any]) -> dict:
        return self._object("POST", f"/api/clusters/{_seg(cluster_id)}/workloads",
                            json_body=dict(spec))

    def list_workloads(self, cluster_id: str) -> list[dict]:
        return self._list(f"/api/clusters/{_seg(cluster_id)}/workloads", "workloads")

    def get_workload(self, cluster_id: str, workload_id: str) -> dict:
        path = f"/api/clusters/{_seg(cluster_id)}/workloads/{_seg(workload_id)}"
        return self._object("GET", path, "workload")

    def update_workload(self, cluster_id: str, workload_id: str,
                        spec: Mapping[str, Any]) -> dict:
        path = f"/api/clusters/{_seg(cluster_id)}/workloads/{_seg(workload_id)}"
        return self._object("PUT", path, "workload", json_body=dict(spec))

    def delete_workload(self, cluster_id: str, workload_id: str) -> Any:
        path = f"/api/clusters/{_seg(cluster_id)}/workloads/{_seg(workload_id)}"
        return self.call("DELETE", path)

    def list_placements(self, cluster_id: str) -> list[dict]:
        return self._list(f"/api/clusters/{_seg(cluster_id)}/placements", "placements")

    # -- agent routes (no tenant auth) ---------------------------------------------------------
    def _agent_path(self, cluster_id: str, node_id: str, rest: str) -> str:
        return f"/api/agent/clusters/{_seg(cluster_id)}/nodes/{_seg(node_id)}/{rest}"

    def agent_register(self, cluster_id: str, join_token: str,
                       body: Mapping[str, Any]) -> Registration:
        path = f"/api/agent/clusters/{_seg(cluster_id)}/nodes/register"
        resp = self._object("POST", path, json_body=dict(body), tenant_auth=False,
                            headers={"X-Quilt-Join-Token": join_token})
        node = resp.get("node")
        if isinstance(node, dict) and node.get("id"):
            self.variant("register_response", "nested")
            node_id = node["id"]
        elif resp.get("node_id"):
            self.variant("register_response", "flat")
            node_id, node = resp["node_id"], {"id": resp["node_id"]}
        else:
            raise QuiltProtocolError("register response has neither node.id nor node_id",
                                     method="POST", path=path, status=None, request_id=None)
        token = resp.get("node_token")
        if not isinstance(token, str) or not token:
            raise QuiltProtocolError("register response has no node_token", method="POST",
                                     path=path, status=None, request_id=None)
        allocation = resp.get("allocation") if isinstance(resp.get("allocation"), dict) else {}
        return Registration(str(node_id), token, node, allocation)

    def agent_heartbeat(self, cluster_id: str, node_id: str, node_token: str,
                        body: Mapping[str, Any]) -> Any:
        return self.call("POST", self._agent_path(cluster_id, node_id, "heartbeat"),
                         json_body=dict(body), tenant_auth=False,
                         headers={"X-Quilt-Node-Token": node_token})

    def agent_allocation(self, cluster_id: str, node_id: str, node_token: str) -> dict:
        return self._object("GET", self._agent_path(cluster_id, node_id, "allocation"),
                            "allocation", tenant_auth=False,
                            headers={"X-Quilt-Node-Token": node_token})

    def agent_assignments(self, cluster_id: str, node_id: str, node_token: str) -> list[dict]:
        """Assignments normalized to ``{"placement": {...}, "workload": {...} | None}``."""
        items = self._list(self._agent_path(cluster_id, node_id, "placements"), "assignments",
                           tenant_auth=False, headers={"X-Quilt-Node-Token": node_token})
        out = []
        for item in items:
            if isinstance(item, dict) and isinstance(item.get("placement"), dict):
                workload = item.get("workload")
                out.append({"placement": item["placement"],
                            "workload": workload if isinstance(workload, dict) else None})
            elif isinstance(item, dict) and item.get("id"):
                self.variant("assignment_shape", "bare-placement")
                out.append({"placement": item, "workload": None})
            else:
                raise QuiltProtocolError(f"assignment item has no placement: {_shape(item)}",
                                         method="GET", path="placements", status=None,
                                         request_id=None)
        return out

    def agent_report(self, cluster_id: str, node_id: str, placement_id: str, node_token: str,
                     *, state: str, container_id: str | None = None,
                     message: str | None = None) -> Any:
        body = {"state": state, "container_id": container_id, "message": message}
        rest = f"placements/{_seg(placement_id)}/report"
        return self.call("POST", self._agent_path(cluster_id, node_id, rest), json_body=body,
                         tenant_auth=False, headers={"X-Quilt-Node-Token": node_token})

    def agent_deregister(self, cluster_id: str, node_id: str, node_token: str) -> Any:
        return self.call("POST", self._agent_path(cluster_id, node_id, "deregister"),
                         json_body={}, tenant_auth=False,
                         headers={"X-Quilt-Node-Token": node_token})

    # -- containers ----------------------------------------------------------------------------
    @staticmethod
    def container_id(container: Mapping[str, Any]) -> str | None:
        value = container.get("container_id") or container.get("id")
        return str(value) if value else None

    def create_container(self, body: Mapping[str, Any], *, timeout: float = 120.0) -> dict:
        """Create and return the container, whichever create variant the target uses."""
        response = self.request("POST", "/api/containers", json_body=dict(body))
        data = _try_json(response)
        if response.status_code == 202 or (isinstance(data, dict) and "operation_id" in data
                                           and not self.container_id(data)):
            self.variant("container_create", "operation")
            cid = self._container_from_operation(data, body.get("name"), timeout)
            return self.get_container(cid)
        if not isinstance(data, dict) or not self.container_id(data):
            raise QuiltProtocolError(
                f"container create answered {_shape(data)} without container_id",
                method="POST", path="/api/containers", status=response.status_code,
                request_id=response.headers.get("x-request-id"))
        self.variant("container_create", "synchronous")
        if "container_id" not in data:
            self.variant("container_id_field", "id")
        return data

    def _container_from_operation(self, receipt: Any, name: Any, timeout: float) -> str:
        op_id = receipt.get("operation_id") if isinstance(receipt, dict) else None
        if not op_id:
            raise QuiltProtocolError("202 without operation_id", method="POST",
                                     path="/api/containers", status=202, request_id=None)
        op = self.wait_operation(str(op_id), timeout=timeout)
        if op.get("status") != "succeeded":
            raise QuiltProtocolError(f"create operation ended {op.get('status')!r}: "
                                     f"{op.get('reason_message') or op.get('error')}",
                                     method="POST", path="/api/containers", status=202,
                                     request_id=None)
        result = op.get("result") if isinstance(op.get("result"), dict) else {}
        for value in (result.get("container_id"), op.get("container_id"),
                      op.get("result_container_id"), op.get("target_resource_id")):
            if value:
                return str(value)
        by_name = self._object("GET", f"/api/containers/by-name/{_seg(str(name))}")
        return str(by_name["container_id"])

    def wait_operation(self, operation_id: str, *, timeout: float = 120.0) -> dict:
        path = f"/api/operations/{_seg(operation_id)}"
        return wait_for(
            lambda: self._object("GET", path, "operation"),
            lambda op: str(op.get("status")) in TERMINAL_OPERATION,
            timeout=timeout, describe=f"operation {operation_id} to finish",
        )

    def get_container(self, container_id: str) -> dict:
        return self._object("GET", f"/api/containers/{_seg(container_id)}", "container")

    def list_containers(self, state: str | None = None) -> list[dict]:
        params = {"state": state} if state else None
        return self._list("/api/containers", "containers", params=params)

    def delete_container(self, container_id: str) -> Any:
        return self.call("DELETE", f"/api/containers/{_seg(container_id)}")

    def _container_path(self, container_id: str, rest: str) -> str:
        return f"/api/containers/{_seg(container_id)}/{rest}"

    def container_logs(self, container_id: str, *, limit: int | None = None) -> list[Any]:
        """Log entries (objects or strings), whichever shape the target uses."""
        params = {"limit": limit} if limit else None
        return self._list(self._container_path(container_id, "logs"), "logs", params=params)

    def container_exec(self, container_id: str, command: list[str], *,
                       workdir: str | None = None, timeout_ms: int | None = None,
                       timeout: float = 120.0) -> dict:
        """Run argv in the container; follows a ``{job_id}`` answer until the job ends."""
        body: dict[str, Any] = {"command": list(command)}
        if workdir is not None:
            body["workdir"] = workdir
        if timeout_ms is not None:
            body["timeout_ms"] = timeout_ms
        path = self._container_path(container_id, "exec")
        result = self._object("POST", path, json_body=body)
        if "exit_code" in result or "stdout" in result:
            self.variant("exec", "synchronous")
            return result
        job_id = result.get("job_id")
        if not job_id:
            raise QuiltProtocolError(f"exec answered {_shape(result)} without exit_code or job_id",
                                     method="POST", path=path, status=None, request_id=None)
        self.variant("exec", "job")
        job_path = self._container_path(container_id, f"jobs/{_seg(str(job_id))}")
        return wait_for(
            lambda: self._object("GET", job_path, "job", params={"include_output": "true"}),
            lambda job: str(job.get("status")) not in ("running", "queued", "pending"),
            timeout=timeout, describe=f"exec job {job_id} to finish",
        )

    def container_metrics(self, container_id: str) -> dict:
        return self._object("GET", self._container_path(container_id, "metrics"), "metrics")

    def container_network(self, container_id: str) -> dict:
        return self._object("GET", self._container_path(container_id, "network"), "network")

    def start_container(self, container_id: str) -> Any:
        return self._lifecycle(container_id, "start")

    def stop_container(self, container_id: str) -> Any:
        return self._lifecycle(container_id, "stop")

    def kill_container(self, container_id: str) -> Any:
        return self._lifecycle(container_id, "kill")

    def _lifecycle(self, container_id: str, action: str) -> Any:
        response = self.request("POST", self._container_path(container_id, action), json_body={})
        data = _try_json(response)
        if response.status_code == 202 and isinstance(data, dict) and data.get("operation_id"):
            self.variant(f"container_{action}", "operation")
            return self.wait_operation(str(data["operation_id"]))
        self.variant(f"container_{action}", "synchronous")
        return data

    def add_route(self, container_id: str, destination: str) -> Any:
        return self.call("POST", self._container_path(container_id, "routes"),
                         json_body={"destination": destination})

    def delete_route(self, container_id: str, destination: str) -> Any:
        return self.call("DELETE", self._container_path(container_id, "routes"),
                         json_body={"destination": destination})

    # -- API keys ------------------------------------------------------------------------------
    def list_api_keys(self) -> list[dict]:
        return self._list("/api/api-keys", "api_keys")

    def create_api_key(self, name: str) -> dict:
        return self._object("POST", "/api/api-keys", "api_key", json_body={"name": name})

    def delete_api_key(self, key_id: str) -> Any:
        return self.call("DELETE", f"/api/api-keys/{_seg(key_id)}")

    # -- volumes -------------------------------------------------------------------------------
    def list_volumes(self) -> list[dict]:
        return self._list("/api/volumes", "volumes")

    def create_volume(self, name: str, *, labels: Mapping[str, str] | None = None) -> dict:
        body: dict[str, Any] = {"name": name, "driver": "local"}
        if labels:
            body["labels"] = dict(labels)
        return self._object("POST", "/api/volumes", "volume", json_body=body)

    def get_volume(self, name: str) -> dict:
        return self._object("GET", f"/api/volumes/{_seg(name)}", "volume")

    def delete_volume(self, name: str) -> Any:
        response = self.request("DELETE", f"/api/volumes/{_seg(name)}")
        data = _try_json(response)
        if isinstance(data, dict) and data.get("operation_id") and response.status_code == 202:
            self.variant("volume_delete", "operation")
            return self.wait_operation(str(data["operation_id"]))
        return data

    @staticmethod
    def file_url_path(path: str) -> str:
        """``a b/ü.txt`` -> ``a%20b/%C3%BC.txt``: each segment percent-encoded, no leading /."""
        return "/".join(_seg(part) for part in path.strip("/").split("/"))

    def upload_file(self, volume: str, path: str, content: bytes, *, mode: int = 420) -> dict:
        body = {"path": path, "content": base64.b64encode(content).decode("ascii"), "mode": mode}
        return self._object("POST", f"/api/volumes/{_seg(volume)}/files", json_body=body)

    def download_file(self, volume: str, path: str) -> bytes:
        url = f"/api/volumes/{_seg(volume)}/files/{self.file_url_path(path)}"
        data = self._object("GET", url)
        content = data.get("content")
        if not isinstance(content, str):
            raise QuiltProtocolError("file download has no base64 content", method="GET",
                                     path=url, status=None, request_id=None)
        try:
            return base64.b64decode(content, validate=True)
        except ValueError:
            raise QuiltProtocolError("file content is not valid base64", method="GET", path=url,
                                     status=None, request_id=None) from None

    def delete_file(self, volume: str, path: str) -> Any:
        return self.call("DELETE", f"/api/volumes/{_seg(volume)}/files/{self.file_url_path(path)}")

    def upload_archive(self, volume: str, archive: bytes, *, path: str = "/",
                       strip_components: int = 0) -> Any:
        body = {"content": base64.b64encode(archive).decode("ascii"), "path": path,
                "strip_components": strip_components}
        response = self.request("POST", f"/api/volumes/{_seg(volume)}/archive", json_body=body)
        data = _try_json(response)
        if response.status_code == 202 and isinstance(data, dict) and data.get("operation_id"):
            self.variant("archive_upload", "operation")
            return self.wait_operation(str(data["operation_id"]))
        self.variant("archive_upload", "synchronous")
        return data


def _try_json(response: httpx.Response) -> Any:
    if not response.content:
        return None
    try:
        return response.json()
    except ValueError:
        return None


def _shape(value: Any) -> str:
    if isinstance(value, dict):
        return "object with keys " + ", ".join(sorted(map(str, value))[:8])
    return type(value).__name__


def _describe_transport(exc: httpx.HTTPError) -> str:
    if isinstance(exc, httpx.ConnectTimeout):
        return "connect timed out"
    if isinstance(exc, httpx.ReadTimeout):
        return "read timed out"
    if isinstance(exc, httpx.ConnectError):
        text = str(exc)
        if "CERTIFICATE" in text.upper() or "SSL" in text.upper():
            return f"TLS error: {text}"
        return f"connection failed: {text}"
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"malformed or truncated response: {exc}"
    return f"{type(exc).__name__}: {exc}"
