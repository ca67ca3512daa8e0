"""`GET /api/events`: a real SSE stream of the tenant's committed changes."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest

from quilt_verify.reference import ReferenceServer
from quilt_verify.reference.event_stream import CLOSE, Broker

from .helpers import END, EventReader, Tenant, assert_error, create_container, wait_for


def container_events(reader: EventReader, cid: str, count: int) -> list[dict[str, Any]]:
    return [reader.until(lambda e: e.get("event") == "container_update"
                         and e["data"]["container_id"] == cid) for _ in range(count)]


def drain(reader: EventReader, seconds: float) -> list[dict[str, Any]]:
    """Whatever arrives within `seconds` (comments included)."""
    items = []
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            items.append(reader.next(left, comments=True))
        except AssertionError:
            break
    return items


def test_ready_first_then_container_events_in_order(api: Tenant, ref_server: ReferenceServer,
                                                    ref_keys: dict[str, str], unique: str) -> None:
    with EventReader(ref_server.url, headers={"X-Api-Key": ref_keys["main"]}) as reader:
        assert reader.response is not None and reader.response.status_code == 200
        assert reader.response.headers["content-type"].startswith("text/event-stream")
        assert reader.response.headers["cache-control"] == "no-cache"
        ready = reader.next()
        assert ready["event"] == "ready" and "id" not in ready
        created = create_container(api, f"ev-{unique}", command=["sleep", "60"])
        assert ready["data"]["tenant_id"] == created["tenant_id"]
        assert ready["data"]["at"].endswith("Z")
        cid = created["container_id"]
        base = f"/api/containers/{cid}"
        api.ok(api.post(f"{base}/stop", json={"timeout_s": 1}))
        api.ok(api.post(f"{base}/start"))
        api.ok(api.post(f"{base}/kill"))
        api.ok(api.delete(base))
        events = container_events(reader, cid, 5)
    assert [(e["data"]["state"], e["data"]["exit_code"]) for e in events] == [
        ("running", None), ("exited", 143), ("running", None), ("exited", 137),
        ("deleted", 137)]
    assert all(e["data"]["name"] == f"ev-{unique}" for e in events)
    ids = [int(e["id"]) for e in events]
    assert ids == sorted(ids) and len(set(ids)) == 5


def test_natural_exit_is_announced_without_a_read(api: Tenant, ref_server: ReferenceServer,
                                                  ref_keys: dict[str, str], unique: str) -> None:
    with EventReader(ref_server.url, params={"token": ref_keys["main"]}) as reader:
        assert reader.next()["event"] == "ready"
        cid = create_container(api, f"brief-{unique}", command=["sh", "-c", "exit 5"])[
            "container_id"]
        running, exited = container_events(reader, cid, 2)
    assert (running["data"]["state"], exited["data"]["state"]) == ("running", "exited")
    assert exited["data"]["exit_code"] == 5
    api.ok(api.delete(f"/api/containers/{cid}"))


def test_container_filter_and_tenant_isolation(api: Tenant, other: Tenant,
                                               ref_server: ReferenceServer,
                                               ref_keys: dict[str, str], unique: str) -> None:
    watched = create_container(api, f"watched-{unique}", command=["sleep", "60"])
    cid = watched["container_id"]
    with EventReader(ref_server.url, params={"container_id": cid},
                     headers={"X-Api-Key": ref_keys["main"]}) as filtered, \
            EventReader(ref_server.url, headers={"X-Api-Key": ref_keys["other"]}) as theirs:
        assert filtered.next()["event"] == "ready" and theirs.next()["event"] == "ready"
        noise = create_container(api, f"noise-{unique}", command=["sleep", "60"])
        api.cluster()
        api.ok(api.post(f"/api/containers/{cid}/kill"))
        got = filtered.next()
        assert (got["event"], got["data"]["container_id"], got["data"]["state"]) == (
            "container_update", cid, "exited")
        mine = create_container(other, f"theirs-{unique}", command=["sleep", "60"])
        seen = theirs.next()
        assert seen["data"]["container_id"] == mine["container_id"]  # not one of api's events
        assert [e for e in drain(filtered, 0.3) if "comment" not in e] == []
    for client, c in ((api, watched), (api, noise), (other, mine)):
        client.ok(client.delete(f"/api/containers/{c['container_id']}"))


def test_control_plane_events(api: Tenant, ref_server: ReferenceServer,
                              ref_keys: dict[str, str]) -> None:
    with EventReader(ref_server.url, headers={"X-Api-Key": ref_keys["main"]}) as reader:
        assert reader.next()["event"] == "ready"
        cluster = api.cluster()
        cid = cluster["id"]
        agent = api.node(cid)
        workload = api.workload(cid, 1)
        api.reconcile(cid)
        (placement,) = api.placements(cid)
        agent.ok(agent.report(placement["id"], state="running", container_id="ctr-1"))
        api.ok(api.post(f"/api/clusters/{cid}/nodes/{agent.node_id}/drain", json={}))
        api.ok(api.delete(f"/api/clusters/{cid}/workloads/{workload['id']}"))
        api.ok(api.delete(f"/api/clusters/{cid}"))
        seen = []
        while not seen or seen[-1]["event"] != "cluster_update" or seen[-1]["data"][
                "action"] != "deleted":
            seen.append(reader.next())
    expected = [
        ("cluster_update", {"cluster_id": cid, "action": "created"}),
        ("node_update", {"cluster_id": cid, "node_id": agent.node_id, "state": "registered"}),
        ("node_update", {"cluster_id": cid, "node_id": agent.node_id, "state": "ready"}),
        ("workload_update", {"cluster_id": cid, "workload_id": workload["id"],
                             "action": "created", "replicas": 1}),
        ("placement_update", {"placement_id": placement["id"], "workload_id": workload["id"],
                              "node_id": agent.node_id, "state": "assigned",
                              "container_id": None}),
        ("placement_update", {"placement_id": placement["id"], "state": "running",
                              "container_id": "ctr-1"}),
        ("node_update", {"node_id": agent.node_id, "state": "draining"}),
        ("workload_update", {"workload_id": workload["id"], "action": "deleted"}),
        ("placement_update", {"placement_id": placement["id"], "state": "deleted"}),
        ("cluster_update", {"cluster_id": cid, "action": "deleted"}),
    ]
    relevant = [e for e in seen if e["event"] != "container_update"]
    assert [e["event"] for e in relevant] == [name for name, _ in expected]
    for event, (_, subset) in zip(relevant, expected, strict=True):
        assert subset.items() <= event["data"].items(), (event, subset)
    ids = [int(e["id"]) for e in relevant]
    assert ids == sorted(ids)


def test_keep_alive_comments(ref_server: ReferenceServer, ref_keys: dict[str, str]) -> None:
    with EventReader(ref_server.url, params={"token": ref_keys["main"]}) as reader:
        assert reader.next()["event"] == "ready"
        began = time.monotonic()
        comments = [reader.next(2, comments=True) for _ in range(2)]
        assert all(c.get("comment") == "keep-alive" for c in comments)
        assert time.monotonic() - began < 2  # every 0.2 s on the test server


@pytest.mark.parametrize("how", [{}, {"params": {"token": "wrong"}},
                                 {"headers": {"X-Api-Key": "wrong"}},
                                 {"headers": {"Authorization": "Bearer wrong"}}])
def test_events_need_a_valid_key(anon: httpx.Client, how: dict[str, Any]) -> None:
    response = anon.get("/api/events", timeout=5, **how)
    body = assert_error(response, 401, "UNAUTHORIZED")
    assert "token" in body["hint"]


def test_disconnect_frees_the_subscriber(ref_server: ReferenceServer,
                                         ref_keys: dict[str, str]) -> None:
    before = ref_server.open_event_streams
    reader = EventReader(ref_server.url, params={"token": ref_keys["main"]})
    assert reader.next()["event"] == "ready"
    assert ref_server.open_event_streams == before + 1
    reader.close()
    wait_for(lambda: ref_server.open_event_streams == before, "the subscriber to be freed")


def test_server_stop_ends_open_streams_promptly() -> None:
    server = ReferenceServer(["stop-key"], sse_keepalive_s=30).start()
    readers = [EventReader(server.url, params={"token": "stop-key"}) for _ in range(3)]
    for reader in readers:
        assert reader.next()["event"] == "ready"
    began = time.monotonic()
    server.stop()
    assert time.monotonic() - began < 1.5
    for reader in readers:
        assert reader.next(2) is END
        reader.close()
        assert not reader.thread.is_alive()


def test_slow_subscriber_drops_its_oldest_events() -> None:
    async def scenario() -> tuple[list[int], int, bool]:
        broker = Broker(queue_size=3)
        subscriber = broker.subscribe("t1", None)
        for index in range(10):
            broker.publish("t1", "container_update", {"container_id": str(index)})
        broker.publish("t2", "container_update", {"container_id": "elsewhere"})
        await asyncio.sleep(0.05)  # let the thread-safe callbacks run
        kept = [subscriber.queue.get_nowait().id for _ in range(3)]
        dropped = subscriber.take_dropped()
        broker.close()
        await asyncio.sleep(0.05)
        return kept, dropped, subscriber.queue.get_nowait() is CLOSE

    kept, dropped, closed = asyncio.run(scenario())
    assert kept == [8, 9, 10] and dropped == 7 and closed
