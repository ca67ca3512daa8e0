"""The SSE subscription against a real loopback server that misbehaves: a stalled stream, a
non-SSE answer, an error status."""

import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from quilt_verify.client import Exchange, QuiltClient
from quilt_verify.config import Secret
from quilt_verify.errors import QuiltAPIError
from quilt_verify.events import EventStream
from quilt_verify.polling import WaitTimeout

KEY = Secret("quilt_sk_events_test_0123456789")


class StallingServer:
    """Sends `ready` (CRLF line endings, a comment, multi-line data), then nothing."""

    def __init__(self, mode="stall"):
        self.release = threading.Event()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def do_GET(self):
                if mode == "html":
                    body = b"<html>not a stream</html>"
                    self.send_response(200)
                    self.send_header("Content-Type", "text/html")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                if mode == "401":
                    body = b'{"error":"no","error_code":"UNAUTHORIZED","request_id":"r-401"}'
                    self.send_response(401)
                    self.send_header("Content-Type", "application/json")
                    self.send_header("Content-Length", str(len(body)))
                    self.end_headers()
                    self.wfile.write(body)
                    return
                self.send_response(200)
                self.send_header("Content-Type", "text/event-stream")
                self.send_header("Cache-Control", "no-cache")
                self.end_headers()
                self.wfile.write(b": hello\r\nevent: ready\r\ndata: {\"a\":\r\ndata: 1}\r\n\r\n")
                self.wfile.flush()
                outer.release.wait(30)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.release.set()
        self.httpd.shutdown()
        self.httpd.server_close()


def test_stalled_stream_times_out_naming_what_it_waited_for():
    events = []
    with StallingServer() as server, QuiltClient(server.url, api_key=KEY,
                                                 observers=[events.append]) as client:
        stream = EventStream(client, read_timeout=30)
        with stream:
            ready = stream.wait_for(lambda e: True, timeout=5, describe="ready")
            assert ready.event == "ready" and ready.json() == {"a": 1}
            started = time.monotonic()
            with pytest.raises(WaitTimeout) as info:
                stream.wait_for(lambda e: e.event == "container_update", timeout=0.5,
                                describe="a container_update event")
            assert time.monotonic() - started < 3
        assert "waiting for a container_update event" in str(info.value)
        assert "ServerEvent(event='ready'" in str(info.value)  # the last thing it saw
    (exchange,) = [e for e in events if isinstance(e, Exchange)]
    assert exchange.status == 200 and b"event: ready" in exchange.response_body


def test_non_sse_answer_is_a_clear_error():
    with StallingServer("html") as server, QuiltClient(server.url, api_key=KEY) as client:
        with pytest.raises(QuiltAPIError, match="expected text/event-stream, got 'text/html'"):
            EventStream(client).open()


def test_error_status_carries_the_request_id():
    with StallingServer("401") as server, QuiltClient(server.url, api_key=KEY) as client:
        with pytest.raises(QuiltAPIError) as info:
            EventStream(client).open()
    assert info.value.status == 401
