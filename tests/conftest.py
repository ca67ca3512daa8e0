import secrets
import subprocess
import sys
from pathlib import Path

import pytest

from quilt_verify.reference.server import ReferenceServer

pytest_plugins = ["pytester"]
REPO = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="session")
def reference_key() -> str:
    return "qvtest_" + secrets.token_urlsafe(24)


@pytest.fixture(scope="session")
def reference_key_2() -> str:
    return "qvtest2_" + secrets.token_urlsafe(24)


@pytest.fixture(scope="session")
def reference(reference_key, reference_key_2, tmp_path_factory):
    """One reference backend for the self-tests, with keys the tests know (two tenants)."""
    server = ReferenceServer(api_keys=[reference_key], tenants={"tenant-b": [reference_key_2]},
                             data_dir=str(tmp_path_factory.mktemp("reference-data")))
    server.start()
    yield server
    server.stop()


def run_cli(*args: str, env: dict[str, str] | None = None, timeout: float = 240):
    """Run ``quilt-verify`` as a user would, in a subprocess; never inherits QUILT_* settings."""
    import os

    clean = {k: v for k, v in os.environ.items() if not k.startswith("QUILT_")}
    clean.update(env or {})
    return subprocess.run([sys.executable, "-m", "quilt_verify", *args], cwd=REPO, env=clean,
                          capture_output=True, text=True, timeout=timeout)


def container_processes(data_dir) -> list[int]:
    """Pids of live container processes of the reference backend whose data dir is given."""
    import os

    root = os.path.realpath(data_dir)
    pids = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/environ", "rb") as fh:
                if b"QUILT_CONTAINER_ID=" not in fh.read():
                    continue
            if os.path.realpath(f"/proc/{entry}/cwd").startswith(root + os.sep):
                pids.append(int(entry))
        except OSError:
            continue
    return pids


def pytest_terminal_summary(terminalreporter):
    """The mutation score of the fault self-test (tests/test_faults.py), when it ran."""
    module = sys.modules.get("tests.test_faults")
    score = getattr(module, "SCORE", None)
    if score:
        caught = sorted(name for name, ok in score.items() if ok)
        missed = sorted(name for name, ok in score.items() if not ok)
        terminalreporter.write_sep("-", "fault catalogue")
        terminalreporter.write_line(f"fault score: {len(caught)}/{len(score)} faults caught"
                                    + (f"; missed: {', '.join(missed)}" if missed else ""))
