"""`quilt-verify serve` as a user runs it: a key printed once, a real server, clean shutdown."""

import os
import re
import signal
import subprocess
import sys
import time

import httpx

from tests.conftest import REPO


def start_serve(*args):
    env = {k: v for k, v in os.environ.items() if not k.startswith("QUILT_")}
    return subprocess.Popen([sys.executable, "-m", "quilt_verify", "serve", "--port", "0", *args],
                            cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True)


def read_until(proc, pattern, deadline_s=20.0):
    deadline = time.monotonic() + deadline_s
    lines = []
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        lines.append(line)
        match = re.search(pattern, line)
        if match:
            return match, lines
    raise AssertionError(f"no line matching {pattern!r} in {lines}")


def stop(proc):
    proc.send_signal(signal.SIGINT)
    try:
        return proc.wait(timeout=20)
    finally:
        if proc.poll() is None:
            proc.kill()


def test_serve_generates_a_key_prints_it_once_and_stops_cleanly(tmp_path):
    proc = start_serve("--db", str(tmp_path / "state.sqlite"))
    try:
        key_match, _ = read_until(proc, r"generated API key \(shown once\): (\S+)")
        url_match, _ = read_until(proc, r"listening on (http://127\.0\.0\.1:\d+)")
        key, url = key_match.group(1), url_match.group(1)
        assert httpx.get(f"{url}/health").json() == {"status": "ok"}
        assert httpx.get(f"{url}/api/clusters").status_code == 401
        made = httpx.post(f"{url}/api/clusters", headers={"X-Api-Key": key},
                          json={"name": "persisted", "pod_cidr": "10.9.0.0/16",
                                "node_cidr_prefix": 24})
        assert made.status_code == 201
    finally:
        assert stop(proc) == 0
    rest = proc.stdout.read() + proc.stderr.read()
    assert key not in rest and "Traceback" not in rest
    # state survives a restart on the same --db, with the same key
    again = start_serve("--db", str(tmp_path / "state.sqlite"), "--api-key", key)
    try:
        url = read_until(again, r"listening on (http://127\.0\.0\.1:\d+)")[0].group(1)
        names = [c["name"] for c in httpx.get(f"{url}/api/clusters",
                                              headers={"X-Api-Key": key}).json()["clusters"]]
        assert names == ["persisted"]
    finally:
        assert stop(again) == 0


def test_serve_refuses_a_bad_port():
    proc = subprocess.run([sys.executable, "-m", "quilt_verify", "serve", "--port", "70000"],
                          cwd=REPO, capture_output=True, text=True, timeout=30)
    assert proc.returncode == 2 and "out of range" in proc.stderr
