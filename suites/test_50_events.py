"""Events: the SSE stream announces itself with `ready`, then reports the run's own actions in
the order they happened, and honours the `container_id` filter.

Ordered: a failed step blocks the rest of the session.
"""

from __future__ import annotations

import pytest

from quilt_verify.client import QuiltClient
from quilt_verify.events import EventStream
from quilt_verify.polling import wait_for
from quilt_verify.sse import ServerEvent

pytestmark = [pytest.mark.capability("events"), pytest.mark.session, pytest.mark.mode("standard")]

DEADLINE = 20.0
COMMAND = ["sleep", "3600"]


def mentions(event: ServerEvent, ident: str) -> bool:
    return ident in event.data


def state_in(event: ServerEvent) -> str | None:
    data = event.json()
    if isinstance(data, dict):
        for key in ("state", "status", "action"):
            if isinstance(data.get(key), str):
                return data[key]
    return None


@pytest.fixture
def stream(quilt):
    """A subscription opened before the test acts, closed (and recorded) when it ends."""
    with EventStream(quilt) as events:
        events.wait_for(lambda e: True, timeout=DEADLINE, describe="the first event")
        yield events


def make_container(quilt, quilt_names, quilt_ledger, label: str) -> str:
    name = quilt_names.make(label)
    body = {"name": name, "command": COMMAND, "labels": quilt_names.labels}
    cid = QuiltClient.container_id(quilt.create_container(body))
    quilt_ledger.track(quilt, "container", cid, name=name)
    return cid


def remove_container(quilt, quilt_ledger, cid: str) -> None:
    quilt.delete_container(cid)
    quilt_ledger.discard("container", cid)


def test_01_ready_first(stream, step):
    """A new event stream MUST send a `ready` event before any other event, with JSON data."""
    first = stream.events[0]
    assert first.event == "ready", f"first event is {first.event!r}, expected 'ready'"
    assert first.json() is not None or first.data == "", f"ready data is not JSON: {first.data!r}"


def test_02_own_actions_arrive_in_order(quilt, quilt_names, quilt_ledger, stream, step):
    """Events for the run's own actions MUST arrive within the deadline and in the order the
    actions happened: the container's `running` before its `exited`, and all of the container's
    events before those of a cluster created afterwards."""
    step("creating a container, stopping it, deleting it")
    cid = make_container(quilt, quilt_names, quilt_ledger, "evt-ctr")
    quilt.stop_container(cid)
    wait_for(lambda: quilt.get_container(cid), lambda c: c.get("state") == "exited",
             timeout=DEADLINE, describe=f"{cid} to stop")
    remove_container(quilt, quilt_ledger, cid)
    step("creating a cluster and deleting it")
    cluster = quilt.create_cluster(quilt_names.make("evt-cluster"), "10.250.0.0/16", 24)
    quilt.delete_cluster(cluster["id"])
    step("waiting for the container's exit and the cluster's events")
    stream.wait_for(lambda e: mentions(e, cid) and state_in(e) == "exited", timeout=DEADLINE,
                    describe=f"an event saying container {cid} exited")
    stream.wait_for(lambda e: mentions(e, cluster["id"]), timeout=DEADLINE,
                    describe=f"an event for cluster {cluster['id']}")
    stream.drain()
    names = [(e.event, state_in(e)) for e in stream.events]
    own = [i for i, e in enumerate(stream.events) if mentions(e, cid)]
    states = [state_in(stream.events[i]) for i in own]
    assert "running" in states, f"no running event for {cid}; its events: {states}"
    assert states.index("running") < states.index("exited"), (
        f"container {cid} events out of order: {states}")
    first_cluster = next(i for i, e in enumerate(stream.events) if mentions(e, cluster["id"]))
    assert max(own) < first_cluster, f"cluster event arrived before container events: {names}"


def test_03_container_filter(quilt, quilt_names, quilt_ledger, step):
    """A stream opened with `container_id=X` MUST deliver events about X and MUST NOT deliver
    events about another container."""
    step("creating two containers, subscribing to one")
    watched = make_container(quilt, quilt_names, quilt_ledger, "evt-watched")
    other = make_container(quilt, quilt_names, quilt_ledger, "evt-other")
    with EventStream(quilt, params={"container_id": watched}) as filtered:
        filtered.wait_for(lambda e: e.event == "ready", timeout=DEADLINE, describe="ready")
        step("stopping both")
        quilt.stop_container(other)
        quilt.stop_container(watched)
        filtered.wait_for(lambda e: mentions(e, watched) and state_in(e) == "exited",
                          timeout=DEADLINE, describe=f"the exit of {watched}")
        filtered.drain()
        leaked = [e for e in filtered.events if mentions(e, other)]
        assert not leaked, f"filtered stream delivered events of {other}: {leaked}"
        unrelated = [e for e in filtered.events if e.event != "ready" and not mentions(e, watched)]
        assert not unrelated, f"filtered stream delivered unrelated events: {unrelated}"
    for cid in (watched, other):
        remove_container(quilt, quilt_ledger, cid)


