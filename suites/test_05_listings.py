"""Read-only listings (smoke mode): each collection answers with a list, and creates nothing."""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.mode("smoke")]

LISTINGS = [
    pytest.param("list_clusters", "cluster-control-plane", id="clusters",
                 marks=pytest.mark.capability("cluster-control-plane")),
    pytest.param("list_containers", "container-runtime", id="containers",
                 marks=pytest.mark.capability("container-runtime")),
    pytest.param("list_volumes", "volumes", id="volumes", marks=pytest.mark.capability("volumes")),
    pytest.param("list_api_keys", "api-keys", id="api-keys",
                 marks=pytest.mark.capability("api-keys")),
]


@pytest.mark.parametrize("method, capability", LISTINGS)
def test_listing(quilt, step, method, capability):
    """A tenant collection listing MUST answer 200 with a list (wrapped or bare) whose items
    are objects."""
    step(f"{method} as the tenant")
    items = getattr(quilt, method)()
    assert isinstance(items, list)
    assert all(isinstance(item, dict) for item in items), f"{method} items are not objects"
