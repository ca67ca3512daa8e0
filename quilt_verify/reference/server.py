"""Running the reference backend: in a background thread (`ReferenceServer`) or in the
foreground until SIGINT/SIGTERM (`serve_forever`)."""

from __future__ import annotations

import logging
import shutil
import signal
import socket
import sys
import tempfile
import threading
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType

import uvicorn
from starlette.applications import Starlette

from . import containers, tenancy
from .app import SSE_KEEPALIVE_S, create_app
from .clock import Clock, system_clock
from .event_stream import QUEUE_SIZE
from .events import EventHook, no_events
from .faults import Faults, parse
from .hooks import ResponseHook
from .runtime import ProcessRuntime
from .store import Store

log = logging.getLogger("quilt_verify.reference")

START_DEADLINE_S = 10.0
STOP_DEADLINE_S = 5.0


def bind_listening_socket(host: str, port: int) -> socket.socket:
    """A listening TCP socket (port 0 picks a free one).

    The protocol is given explicitly as IPPROTO_TCP: asyncio only sets TCP_NODELAY on
    accepted sockets whose `proto` says TCP, and without it every keep-alive response after
    the first waits ~40 ms for a delayed ACK."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(128)
    except BaseException:
        sock.close()
        raise
    return sock


class ReferenceServer:
    """The embedded reference backend on a loopback port.

    `api_keys` belong to the bootstrap tenant (named `default`); `tenants` adds further
    tenants by name, each with its own keys. `db_path=None` gives a fresh in-memory database;
    with a path, state survives a restart on the same file. Container and volume directories
    live under `data_dir` (default: a temporary directory removed on stop, or `<db_path>-data`
    when a database path is given, so a persistent database keeps its files).

    `on_event(tenant_id, event, data)` sees every committed change (in commit order, see
    `events.py`); it runs under the store lock, so it must be quick and must not call the
    server. `stop_timeout` is how long stopping the server (or deleting a container)
    waits between SIGTERM and SIGKILL. Event streams (`GET /api/events`) send a keep-alive
    comment after `sse_keepalive_s` without events and buffer at most `sse_queue_size`
    events per slow client (the oldest are dropped beyond that).

    `response_hook` is for tests only: it may rewrite any JSON answer to make the backend
    misbehave on purpose (see `hooks.py`). `faults` names deliberate contract violations to
    turn on (see `faults.py`; an unknown name raises `faults.UnknownFault`, a ValueError);
    `self.faults.leaked` lists the secrets the secret-hygiene faults put into answers.
    """

    def __init__(
        self,
        api_keys: list[str],
        db_path: str | None = None,
        host: str = "127.0.0.1",
        port: int = 0,
        data_dir: str | None = None,
        *,
        tenants: Mapping[str, list[str]] | None = None,
        clock: Clock = system_clock,
        on_event: EventHook = no_events,
        stop_timeout: float = 2.0,
        sse_keepalive_s: float = SSE_KEEPALIVE_S,
        sse_queue_size: int = QUEUE_SIZE,
        response_hook: ResponseHook | None = None,
        faults: list[str] | tuple[str, ...] | None = None,
    ) -> None:
        self.faults = Faults(parse(faults))
        self._response_hook = response_hook
        self._tenant_keys: dict[str, list[str]] = {tenancy.DEFAULT_TENANT: list(api_keys)}
        for name, keys in (tenants or {}).items():
            self._tenant_keys.setdefault(name, []).extend(keys)
        self.db_path = db_path
        self.host = host
        self._requested_port = port
        self._data_dir_arg = data_dir
        self._clock = clock
        self._on_event = on_event
        self._stop_timeout = stop_timeout
        if not sse_keepalive_s > 0:
            raise ValueError("sse_keepalive_s must be > 0")
        self._sse_keepalive_s = sse_keepalive_s
        self._sse_queue_size = sse_queue_size
        self._app: Starlette | None = None
        self.tenant_ids: dict[str, str] = {}
        self.data_dir: Path | None = None
        self._owns_data_dir = False
        self._store: Store | None = None
        self._runtime: ProcessRuntime | None = None
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self._socket: socket.socket | None = None
        self._port: int | None = None

    @property
    def port(self) -> int:
        if self._port is None:
            raise RuntimeError("the reference server is not started")
        return self._port

    @property
    def url(self) -> str:
        """Base URL such as `http://127.0.0.1:54321`."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}"

    @property
    def open_event_streams(self) -> int:
        """How many `GET /api/events` streams are subscribed right now."""
        return 0 if self._app is None else self._app.state.broker.subscriber_count

    def start(self) -> ReferenceServer:
        """Open the store, bind the socket, serve in a background thread; returns when ready."""
        if self._thread is not None:
            raise RuntimeError("the reference server is already started")
        try:
            self._open_state()
            self._serve_in_thread()
        except BaseException:
            self.stop()
            raise
        return self

    def _open_state(self) -> None:
        if self._data_dir_arg is not None:
            self.data_dir = Path(self._data_dir_arg)
        elif self.db_path is not None:
            self.data_dir = Path(f"{self.db_path}-data")
        else:
            self.data_dir = Path(tempfile.mkdtemp(prefix="quilt-reference-"))
            self._owns_data_dir = True
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._store = Store(self.db_path)
        self._runtime = ProcessRuntime(self.data_dir, stop_timeout=self._stop_timeout)
        now = self._clock()
        with self._store.tx() as db:
            for name, keys in self._tenant_keys.items():
                self.tenant_ids[name] = tenancy.ensure_tenant(db, name, keys, int(now))
            marked = containers.recover(db, self._runtime, now)
        if marked:
            log.info("marked %d container(s) of an earlier run as exited", marked)

    def _serve_in_thread(self) -> None:
        assert self._store is not None and self._runtime is not None
        app = create_app(self._store, self._runtime, clock=self._clock, on_event=self._on_event,
                         data_dir=self.data_dir, sse_keepalive_s=self._sse_keepalive_s,
                         sse_queue_size=self._sse_queue_size, response_hook=self._response_hook,
                         faults=self.faults)
        self._app = app
        self._socket = bind_listening_socket(self.host, self._requested_port)
        self._port = self._socket.getsockname()[1]
        config = uvicorn.Config(app, log_level="warning", access_log=False, lifespan="off",
                                log_config=None, timeout_graceful_shutdown=2)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [self._socket]},
                                        name="quilt-reference-server", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + START_DEADLINE_S
        delay = 0.001
        while not self._server.started:
            if not self._thread.is_alive():
                raise RuntimeError("the reference server failed to start (see the log)")
            if time.monotonic() > deadline:
                raise RuntimeError(f"the reference server did not start in {START_DEADLINE_S}s")
            time.sleep(delay)
            delay = min(delay * 2, 0.05)

    def stop(self) -> None:
        """End open event streams, stop serving, stop every container process, close the
        database. Idempotent."""
        if self._app is not None:
            self._app.state.broker.close()
            self._app = None
        if self._server is not None and self._thread is not None:
            self._server.should_exit = True
            self._thread.join(STOP_DEADLINE_S)
            if self._thread.is_alive():
                self._server.force_exit = True
                self._thread.join(STOP_DEADLINE_S)
        self._server = self._thread = None
        if self._socket is not None:
            self._socket.close()
            self._socket = None
        if self._runtime is not None:
            codes = self._runtime.stop_all()
            if self._store is not None and codes:
                with self._store.tx() as db:
                    containers.record_stopped(db, codes, self._clock())
            self._runtime = None
        if self._store is not None:
            self._store.close()
            self._store = None
        if self._owns_data_dir and self.data_dir is not None:
            shutil.rmtree(self.data_dir, ignore_errors=True)
            self._owns_data_dir = False

    def __enter__(self) -> ReferenceServer:
        return self.start()

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        self.stop()


def serve_forever(
    host: str,
    port: int,
    api_keys: list[str],
    db_path: str | None = None,
    data_dir: str | None = None,
    on_ready: Callable[[str], None] | None = None,
    faults: list[str] | None = None,
) -> None:
    """Serve in the foreground until SIGINT or SIGTERM, then clean up (main thread only).

    `on_ready` receives the base URL once the server accepts connections; by default the
    URL is written to stderr. `faults` turns deliberate contract violations on (`faults.py`)."""
    stopping = threading.Event()

    def request_stop(signum: int, frame: object) -> None:
        stopping.set()

    previous = {sig: signal.signal(sig, request_stop) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        with ReferenceServer(api_keys, db_path, host, port, data_dir, faults=faults) as server:
            if on_ready is None:
                print(f"quilt reference backend listening on {server.url}", file=sys.stderr)
            else:
                on_ready(server.url)
            while not stopping.wait(1.0):
                pass
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
