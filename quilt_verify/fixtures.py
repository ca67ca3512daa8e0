"""The pytest fixtures the suites use; registered by the plugin, thin wrappers over the run."""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import TYPE_CHECKING, Any

import pytest

from quilt_verify import config as qconfig
from quilt_verify.agent import SimulatedAgent
from quilt_verify.client import QuiltClient
from quilt_verify.evidence import Recorder
from quilt_verify.ledger import Ledger
from quilt_verify.naming import Names

if TYPE_CHECKING:
    from quilt_verify.plugin import QuiltRun

PLUGIN_NAME = "quilt-verify-run"  # the name the plugin registers its run object under


@pytest.fixture(scope="session")
def quilt_run(request: pytest.FixtureRequest) -> QuiltRun:
    run: QuiltRun = request.config.pluginmanager.get_plugin(PLUGIN_NAME)
    run.start()
    return run


@pytest.fixture(scope="session")
def quilt(quilt_run: QuiltRun) -> QuiltClient:
    """The tenant client, recording into the run's evidence."""
    assert quilt_run.client is not None
    return quilt_run.client


@pytest.fixture(scope="session")
def quilt_tenant_b(quilt_run: QuiltRun) -> QuiltClient:
    """A client for a second tenant (``--quilt-api-key-2``); the test is skipped without one."""
    assert quilt_run.client is not None and quilt_run.cfg is not None
    if quilt_run.cfg.api_key_2 is None:
        pytest.skip(f"no second tenant key: give --quilt-api-key-2 or {qconfig.ENV_API_KEY_2}")
    return quilt_run.client.with_credentials(api_key=quilt_run.cfg.api_key_2)


@pytest.fixture(scope="session")
def quilt_config(quilt_run: QuiltRun) -> qconfig.Config:
    assert quilt_run.cfg is not None
    return quilt_run.cfg


@pytest.fixture(scope="session")
def quilt_recorder(quilt_run: QuiltRun) -> Recorder:
    assert quilt_run.recorder is not None
    return quilt_run.recorder


@pytest.fixture(scope="session")
def quilt_ledger(quilt_run: QuiltRun) -> Ledger:
    return quilt_run.ledger


@pytest.fixture(scope="session")
def quilt_names(quilt_run: QuiltRun) -> Names:
    assert quilt_run.names is not None
    return quilt_run.names


@pytest.fixture
def step(quilt_recorder: Recorder) -> Callable[[str], None]:
    """Narrate a step (``step("creating a workload with 3 replicas")``) into the evidence."""
    return quilt_recorder.step


@pytest.fixture(scope="session")
def register_secret(quilt_run: QuiltRun) -> Callable[[str, str], None]:
    """Register a secret the run obtained (a created API key, a token) for redaction."""

    def register(value: str, label: str = "secret") -> None:
        quilt_run.redactor.registry.add(value, label)

    return register


@pytest.fixture(scope="module")
def session_state() -> SimpleNamespace:
    """State carried from one step of an ordered session to the next."""
    return SimpleNamespace()


@pytest.fixture(scope="session")
def make_agent(quilt_run: QuiltRun) -> Callable[..., SimulatedAgent]:
    """Build a simulated node agent whose secrets are registered and whose resources are ledgered."""

    def factory(cluster_id: str, name: str, **kwargs: Any) -> SimulatedAgent:
        assert quilt_run.client is not None
        return SimulatedAgent(
            quilt_run.client, cluster_id, name, ledger=quilt_run.ledger,
            on_secret=lambda value, label: quilt_run.redactor.registry.add(value, label),
            **kwargs,
        )

    return factory
