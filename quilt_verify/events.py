"""Subscribing to ``GET /api/events``: a background reader and deadline-bound waits.

The stream is read on its own thread into a queue; :meth:`EventStream.wait_for` takes events
until one matches or the deadline passes, and a stalled stream ends in a clear
:class:`~quilt_verify.polling.WaitTimeout` naming what was awaited and the last event seen. When
the stream closes, the whole exchange (request, response headers, the bytes received) goes to
the client's observers like any other exchange, so it is redacted and recorded.
"""

from __future__ import annotations

import codecs
import json
import queue
import socket
import threading
import time
import uuid
from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import httpx

from quilt_verify.client import Exchange, QuiltClient
from quilt_verify.errors import QuiltAPIError, QuiltTransportError
from quilt_verify.polling import WaitTimeout
from quilt_verify.sse import ServerEvent, SSEParser

# How much of the stream is kept as evidence.
MAX_RECORDED_BYTES = 1 << 20


class EventStream:
    """One SSE subscription. Use as a context manager."""

    def __init__(self, client: QuiltClient, *, params: Mapping[str, str] | None = None,
                 connect_timeout: float = 10.0, read_timeout: float = 60.0) -> None:
        self.client = client
        self.params = dict(params or {})
        self.connect_timeout = connect_timeout
        self.read_timeout = read_timeout
        self.events: list[ServerEvent] = []  # every event taken from the queue, in order
        self._queue: queue.Queue[ServerEvent | BaseException | None] = queue.Queue()
        self._connected = threading.Event()
        self._stop = threading.Event()
        self._raw = bytearray()
        self._status: int | None = None
        self._headers: list[tuple[str, str]] = []
        self._error: BaseException | None = None
        self._sock: socket.socket | None = None
        self._thread = threading.Thread(target=self._run, name="quilt-events", daemon=True)
        self._request_id = str(uuid.uuid4())
        self._started_at = datetime.now(UTC).isoformat(timespec="milliseconds")
        self._t0 = 0.0
        self.parser = SSEParser()

    # -- lifecycle -----------------------------------------------------------------------------
    def __enter__(self) -> EventStream:
        self.open()
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def open(self) -> None:
        self._t0 = time.perf_counter()
        self._thread.start()
        if not self._connected.wait(self.connect_timeout):
            self.close()
            raise QuiltTransportError(method="GET", path="/api/events",
                                      request_id=self._request_id,
                                      reason=f"no response within {self.connect_timeout:g}s")
        if self._error is not None:
            error = self._error
            self.close()
            raise error
        if self._status != 200:
            self._thread.join(self.connect_timeout)
            self.close()
            body = _json_or_none(bytes(self._raw))
            code = body.get("error_code") if isinstance(body, dict) else None
            text = body.get("error") if isinstance(body, dict) else None
            raise QuiltAPIError(method="GET", path="/api/events", status=self._status or 0,
                                request_id=self._header("x-request-id") or self._request_id,
                                error_code=code if isinstance(code, str) else None,
                                message=text if isinstance(text, str) else
                                bytes(self._raw[:200]).decode("utf-8", "replace"),
                                body=body)
        content_type = self._header("content-type") or ""
        if not content_type.startswith("text/event-stream"):
            self.close()
            raise QuiltAPIError(method="GET", path="/api/events", status=200,
                                request_id=self._header("x-request-id") or self._request_id,
                                message=f"expected text/event-stream, got {content_type!r}")

    def close(self) -> None:
        if self._stop.is_set():
            return
        self._stop.set()
        if self._sock is not None:
            try:
                self._sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
        self._thread.join(timeout=5)
        self._record()

    def _header(self, name: str) -> str | None:
        for key, value in self._headers:
            if key.lower() == name:
                return value
        return None

    def _run(self) -> None:
        headers = {**self.client._tenant_headers(), "Accept": "text/event-stream",
                   "X-Request-ID": self._request_id}
        timeout = httpx.Timeout(self.read_timeout, connect=self.connect_timeout)
        decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        try:
            with self.client._http.stream("GET", "/api/events", params=self.params,
                                          headers=headers, timeout=timeout) as response:
                self._status = response.status_code
                self._headers = list(response.headers.items())
                stream = response.extensions.get("network_stream")
                if stream is not None:
                    self._sock = stream.get_extra_info("socket")
                self._connected.set()
                for chunk in response.iter_bytes():
                    if self._stop.is_set():
                        break
                    if len(self._raw) < MAX_RECORDED_BYTES:
                        self._raw += chunk[: MAX_RECORDED_BYTES - len(self._raw)]
                    if response.status_code != 200:
                        continue
                    for event in self.parser.feed(decoder.decode(chunk)):
                        self._queue.put(event)
        except (httpx.HTTPError, OSError) as exc:
            if not self._stop.is_set():
                self._error = QuiltTransportError(method="GET", path="/api/events",
                                                  request_id=self._request_id,
                                                  reason=f"{type(exc).__name__}: {exc}")
                self._queue.put(self._error)
        finally:
            self._connected.set()
            self._queue.put(None)  # end of stream

    def _record(self) -> None:
        url = str(self.client._http.build_request("GET", "/api/events", params=self.params).url)
        exchange = Exchange(
            method="GET", url=url, path="/api/events",
            request_headers=[*self.client._tenant_headers().items(),
                             ("Accept", "text/event-stream")],
            request_body=None, attempt=1,
            request_id=self._header("x-request-id") or self._request_id,
            started_at=self._started_at, status=self._status,
            response_headers=self._headers, response_body=bytes(self._raw),
            duration_ms=(time.perf_counter() - self._t0) * 1000,
            error=None if self._error is None else str(self._error),
        )
        self.client._emit(exchange)

    # -- consuming ------------------------------------------------------------------------------
    def wait_for(self, match: Callable[[ServerEvent], bool], *, timeout: float,
                 describe: str) -> ServerEvent:
        """Take events until one matches; every event taken is kept in :attr:`events`."""
        deadline = time.monotonic() + timeout
        while True:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise WaitTimeout(describe, timeout, self._last())
            try:
                item = self._queue.get(timeout=remaining)
            except queue.Empty:
                raise WaitTimeout(describe, timeout, self._last()) from None
            if item is None:
                self._queue.put(None)
                raise AssertionError(f"the event stream ended while waiting for {describe}; "
                                     f"last saw: {self._last()!r}")
            if isinstance(item, BaseException):
                raise item
            self.events.append(item)
            if match(item):
                return item

    def drain(self, *, quiet_for: float = 0.2) -> list[ServerEvent]:
        """Take whatever arrives until the stream is quiet for ``quiet_for`` seconds."""
        taken = []
        while True:
            try:
                item = self._queue.get(timeout=quiet_for)
            except queue.Empty:
                return taken
            if item is None or isinstance(item, BaseException):
                self._queue.put(item)
                return taken
            self.events.append(item)
            taken.append(item)

    def _last(self) -> Any:
        return self.events[-1] if self.events else "no event at all"


def _json_or_none(raw: bytes) -> Any:
    try:
        return json.loads(raw) if raw else None
    except ValueError:
        return None
