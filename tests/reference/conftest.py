"""Fixtures for the reference backend's own tests: real servers on loopback, real HTTP."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from quilt_verify.reference import ReferenceServer

from .helpers import Tenant


@pytest.fixture(scope="session")
def ref_keys() -> dict[str, str]:
    return {"main": "qvref_" + secrets.token_urlsafe(18),
            "other": "qvref_" + secrets.token_urlsafe(18)}


@pytest.fixture(scope="session")
def ref_server(ref_keys: dict[str, str], tmp_path_factory: pytest.TempPathFactory
               ) -> Iterator[ReferenceServer]:
    """One shared backend with two tenants (`main` is the bootstrap tenant)."""
    server = ReferenceServer([ref_keys["main"]], tenants={"other": [ref_keys["other"]]},
                             data_dir=str(tmp_path_factory.mktemp("ref-data")), stop_timeout=0.5,
                             sse_keepalive_s=0.2)
    server.start()
    yield server
    server.stop()


@pytest.fixture
def anon(ref_server: ReferenceServer) -> Iterator[httpx.Client]:
    """A client without credentials."""
    with httpx.Client(base_url=ref_server.url, timeout=10) as client:
        yield client


@pytest.fixture
def api(ref_server: ReferenceServer, ref_keys: dict[str, str]) -> Iterator[Tenant]:
    """The main tenant's client."""
    with Tenant(ref_server.url, ref_keys["main"]) as tenant:
        yield tenant


@pytest.fixture
def other(ref_server: ReferenceServer, ref_keys: dict[str, str]) -> Iterator[Tenant]:
    """A second tenant's client."""
    with Tenant(ref_server.url, ref_keys["other"]) as tenant:
        yield tenant


@pytest.fixture
def cluster(api: Tenant) -> dict[str, Any]:
    """A fresh cluster 10.200.0.0/16 with /24 node subnets."""
    return api.cluster()


@pytest.fixture
def unique() -> str:
    return uuid.uuid4().hex[:8]
