"""Tenant isolation: a second tenant cannot list, read, change or delete the first tenant's
clusters, nodes, workloads, placements, containers, volumes or API keys, nor see its events; the
first tenant's resources are intact afterwards.

Needs a second tenant's key (`--quilt-api-key-2` / `QUILT_API_KEY_2`; the embedded reference
has one): without it every test here is skipped, saying so. Tenant A is the run's main
credential (`quilt`), tenant B the second (`quilt_tenant_b`). Each test is independent.
"""

from __future__ import annotations

import base64
import hashlib
import io
import json
import tarfile
from collections.abc import Callable, Iterable
from typing import Any

import pytest

from quilt_verify.checks import Findings
from quilt_verify.client import QuiltClient
from quilt_verify.config import Secret
from quilt_verify.errors import QuiltAPIError
from quilt_verify.events import EventStream

pytestmark = [pytest.mark.capability("tenant-isolation"), pytest.mark.mode("full")]

HIDDEN = (403, 404)
COMMAND = ["sleep", "3600"]
DEADLINE = 20.0


def small_tar() -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        info = tarfile.TarInfo("secret.txt")
        info.size = 13
        tar.addfile(info, io.BytesIO(b"written by B!"))
    return buf.getvalue()


def hidden(findings: Findings, label: str, call: Callable[[], Any], data: Iterable[str],
           undo: Callable[[Any], Any] | None = None) -> None:
    """Tenant B's request MUST be refused with 404 or 403, and the refusal MUST NOT carry any of
    tenant A's `data` (names and other values only A knows)."""
    exc = findings.refused(f"{label} (as tenant B)", call, *HIDDEN, on_accepted=undo)
    if exc is not None and exc.body is not None:
        text = json.dumps(exc.body)
        leaked = [value for value in data if value and value in text]
        if leaked:
            findings.note(f"{label} (as tenant B): the refusal carries tenant A's data {leaked} "
                          f"(request_id={exc.request_id})")


def not_listed(findings: Findings, label: str, items: list[dict[str, Any]],
               data: Iterable[str]) -> None:
    text = json.dumps(items)
    leaked = [value for value in data if value and value in text]
    if leaked:
        findings.note(f"{label} (as tenant B) lists tenant A's {leaked}")


def test_clusters_nodes_workloads_and_placements_are_isolated(
        quilt, quilt_tenant_b, quilt_names, quilt_ledger, make_agent, step):
    """Tenant B MUST NOT find tenant A's cluster in its cluster list, and every read, change and
    delete of A's cluster, its nodes, workloads and placements by id (list nodes, workloads and
    placements; get; update the workload; reconcile; mint a join token; create a workload in
    it; drain and delete the node; delete the workload and the cluster) MUST answer 404 or 403
    without A's data. Afterwards A's cluster, ready node, workload spec and placement MUST be
    unchanged."""
    a, b = quilt, quilt_tenant_b
    name = quilt_names.make("iso-cluster")
    step(f"tenant A creates cluster {name} with a ready node and a placed workload")
    cid = a.create_cluster(name, "10.84.0.0/16", 24)["id"]
    quilt_ledger.track(a, "cluster", cid, name=name)
    agent = make_agent(cid, quilt_names.make("iso-node"))
    agent.register(a.create_join_token(cid, ttl_secs=600, max_uses=1)["join_token"])
    agent.heartbeat("ready")
    spec = {"name": quilt_names.make("iso-web"), "replicas": 1, "command": COMMAND,
            "labels": quilt_names.labels}
    wid = a.create_workload(cid, spec)["id"]
    quilt_ledger.track(a, "workload", wid, name=spec["name"], cluster_id=cid)
    a.reconcile(cid)
    placements = [p for p in a.list_placements(cid) if p.get("workload_id") == wid]
    assert len(placements) == 1 and placements[0].get("node_id") == agent.node_id, placements
    nid, pid = agent.node_id, placements[0]["id"]
    data = [name, agent.name, spec["name"], pid]
    c, n, w = f"/api/clusters/{cid}", f"/api/clusters/{cid}/nodes/{nid}", \
        f"/api/clusters/{cid}/workloads/{wid}"

    findings = Findings()
    step("tenant B lists its clusters")
    not_listed(findings, "GET /api/clusters", b.list_clusters(), [cid, name])
    step("tenant B reads, changes and deletes A's cluster, node and workload by id")
    requests: list[tuple[str, Callable[[], Any], Callable[[Any], Any] | None]] = [
        (f"GET {c}", lambda: b.get_cluster(cid), None),
        (f"GET {c}/nodes", lambda: b.list_nodes(cid), None),
        (f"GET {n}", lambda: b.get_node(cid, nid), None),
        (f"GET {c}/workloads", lambda: b.list_workloads(cid), None),
        (f"GET {w}", lambda: b.get_workload(cid, wid), None),
        (f"GET {c}/placements", lambda: b.list_placements(cid), None),
        (f"PUT {w}", lambda: b.update_workload(cid, wid, {**spec, "replicas": 3}), None),
        (f"POST {c}/reconcile", lambda: b.reconcile(cid), None),
        (f"POST {c}/join-tokens", lambda: b.create_join_token(cid, ttl_secs=600, max_uses=1), None),
        (f"POST {c}/workloads",
         lambda: b.create_workload(cid, {**spec, "name": quilt_names.make("iso-intruder")}),
         lambda created: a.delete_workload(cid, created["id"])),
        (f"POST {n}/drain", lambda: b.drain_node(cid, nid), None),
        (f"DELETE {w}", lambda: b.delete_workload(cid, wid), None),
        (f"DELETE {n}", lambda: b.delete_node(cid, nid), None),
        (f"DELETE {c}", lambda: b.delete_cluster(cid), None),
    ]
    for label, call, undo in requests:
        hidden(findings, label, call, data, undo)
    findings.assert_none("tenant B requests for tenant A's control plane")

    step("tenant A's cluster, node, workload and placement are unchanged")
    assert a.get_cluster(cid).get("name") == name
    assert a.get_node(cid, nid).get("state") == "ready", "A's node is no longer ready"
    assert a.get_workload(cid, wid).get("spec", {}).get("replicas") == 1
    after = [p for p in a.list_placements(cid) if p.get("workload_id") == wid]
    assert [(p["id"], p.get("node_id")) for p in after] == [(pid, nid)], after
    agent.heartbeat("ready")  # its token still works


def test_containers_are_isolated(quilt, quilt_tenant_b, quilt_names, quilt_ledger, step):
    """Tenant B MUST NOT find tenant A's container in its container list, and reading it, its
    logs, metrics and network, exec in it, adding or removing a route, stopping, killing,
    starting and deleting it as B MUST answer 404 or 403 without A's data. Afterwards A's
    container MUST still run the same process with no route added."""
    a, b = quilt, quilt_tenant_b
    name = quilt_names.make("iso-ctr")
    step(f"tenant A creates container {name}")
    created = a.create_container({"name": name, "command": COMMAND, "labels": quilt_names.labels})
    xid = str(QuiltClient.container_id(created))
    quilt_ledger.track(a, "container", xid, name=name)
    before = a.get_container(xid)
    routes_before = a.container_network(xid).get("routes")
    data = [name, str(before.get("ip_address") or "")]
    x = f"/api/containers/{xid}"

    findings = Findings()
    step("tenant B lists its containers")
    not_listed(findings, "GET /api/containers", b.list_containers(), [xid, name])
    step("tenant B reads, uses, changes and deletes A's container by id")
    requests: list[tuple[str, Callable[[], Any]]] = [
        (f"GET {x}", lambda: b.get_container(xid)),
        (f"GET {x}/logs", lambda: b.container_logs(xid)),
        (f"GET {x}/metrics", lambda: b.container_metrics(xid)),
        (f"GET {x}/network", lambda: b.container_network(xid)),
        (f"POST {x}/exec", lambda: b.call("POST", f"{x}/exec", json_body={"command": ["true"]})),
        (f"POST {x}/routes", lambda: b.add_route(xid, "10.85.0.0/16")),
        (f"DELETE {x}/routes", lambda: b.delete_route(xid, "10.85.0.0/16")),
        (f"POST {x}/stop", lambda: b.call("POST", f"{x}/stop", json_body={})),
        (f"POST {x}/kill", lambda: b.call("POST", f"{x}/kill", json_body={})),
        (f"POST {x}/start", lambda: b.call("POST", f"{x}/start", json_body={})),
        (f"DELETE {x}", lambda: b.delete_container(xid)),
    ]
    for label, call in requests:
        hidden(findings, label, call, data)
    findings.assert_none("tenant B requests for tenant A's container")

    step("tenant A's container still runs the same process, with its routes unchanged")
    after = a.get_container(xid)
    assert after.get("state") == "running", f"A's container is {after.get('state')!r}"
    if before.get("pid") is not None:
        assert after.get("pid") == before.get("pid"), "A's container was restarted"
    assert a.container_network(xid).get("routes") == routes_before


def test_volumes_and_files_are_isolated(quilt, quilt_tenant_b, quilt_names, quilt_ledger, step):
    """Tenant B MUST NOT find tenant A's volume in its volume list, and reading it, downloading,
    overwriting or deleting its file, uploading an archive into it and deleting it as B MUST
    answer 404 or 403 without A's data (the file content never). Afterwards A's file MUST hold
    the same bytes."""
    a, b = quilt, quilt_tenant_b
    name = quilt_names.make("iso-vol")
    content = b"tenant A's secret bytes " + name.encode()
    step(f"tenant A creates volume {name} with one file")
    a.create_volume(name, labels=quilt_names.labels)
    quilt_ledger.track(a, "volume", name, name=name)
    a.upload_file(name, "secret.txt", content)
    data = [base64.b64encode(content).decode(), content.decode()]
    v = f"/api/volumes/{name}"

    findings = Findings()
    step("tenant B lists its volumes")
    not_listed(findings, "GET /api/volumes", b.list_volumes(), [name])
    step("tenant B reads, writes and deletes A's volume and file by name")
    requests: list[tuple[str, Callable[[], Any]]] = [
        (f"GET {v}", lambda: b.get_volume(name)),
        (f"GET {v}/files/secret.txt", lambda: b.download_file(name, "secret.txt")),
        (f"POST {v}/files", lambda: b.upload_file(name, "secret.txt", b"overwritten by B")),
        (f"POST {v}/archive", lambda: b.upload_archive(name, small_tar(), path="/")),
        (f"DELETE {v}/files/secret.txt", lambda: b.delete_file(name, "secret.txt")),
        (f"DELETE {v}", lambda: b.delete_volume(name)),
    ]
    for label, call in requests:
        hidden(findings, label, call, data)
    findings.assert_none("tenant B requests for tenant A's volume")

    step("tenant A's file holds the same bytes")
    got = a.download_file(name, "secret.txt")
    assert hashlib.sha256(got).hexdigest() == hashlib.sha256(content).hexdigest(), (
        "A's file changed")


def test_api_keys_are_isolated(quilt, quilt_tenant_b, quilt_names, quilt_ledger, register_secret,
                               step):
    """Tenant B's key list MUST NOT show any of tenant A's keys (by id, name or prefix), and
    deleting A's key by id as B MUST answer 404 or 403; afterwards A's key MUST still work."""
    a, b = quilt, quilt_tenant_b
    name = quilt_names.make("iso-key")
    step(f"tenant A creates API key {name}")
    created = a.create_api_key(name)
    secret = created.get("key") or created.get("api_key") or created.get("secret")
    assert isinstance(secret, str) and secret, "create returned no key"
    register_secret(secret, "created api key")
    key_id = str(created["id"])
    quilt_ledger.track(a, "api_key", key_id, name=name)
    a_ids = {str(k.get("id")) for k in a.list_api_keys()}

    findings = Findings()
    step("tenant B lists its API keys")
    b_keys = b.list_api_keys()
    shared = a_ids & {str(k.get("id")) for k in b_keys}
    if shared:
        findings.note(f"GET /api/api-keys (as tenant B) lists tenant A's key ids {sorted(shared)}")
    not_listed(findings, "GET /api/api-keys", b_keys, [name, secret])
    step("tenant B deletes A's key by id")
    hidden(findings, f"DELETE /api/api-keys/{key_id}", lambda: b.delete_api_key(key_id),
           [name, secret])
    findings.assert_none("tenant B requests for tenant A's API keys")

    step("tenant A's key still authenticates")
    assert isinstance(a.with_credentials(api_key=Secret(secret)).list_clusters(), list)


def test_event_streams_are_isolated(quilt, quilt_tenant_b, quilt_names, quilt_ledger, step):
    """Tenant B's event stream MUST NOT carry tenant A's events: A creates a cluster, then B
    creates one; by the time B's stream announces B's own cluster (events arrive in commit
    order), it MUST NOT have mentioned A's."""
    a, b = quilt, quilt_tenant_b
    with EventStream(b) as stream:
        stream.wait_for(lambda e: True, timeout=DEADLINE, describe="tenant B's first event")
        created = {}
        for who, client, cidr in (("a", a, "10.86.0.0/16"), ("b", b, "10.87.0.0/16")):
            name = quilt_names.make(f"iso-events-{who}")
            step(f"tenant {who.upper()} creates cluster {name}")
            cid = client.create_cluster(name, cidr, 24)["id"]
            quilt_ledger.track(client, "cluster", cid, name=name)
            created[who] = (cid, name)
        step("waiting for tenant B's own event")
        stream.wait_for(lambda e: created["b"][0] in e.data, timeout=DEADLINE,
                        describe=f"the event of tenant B's cluster {created['b'][0]}")
    leaked = [e for e in stream.events if created["a"][0] in e.data or created["a"][1] in e.data]
    assert not leaked, f"tenant B's stream carried tenant A's events: {[e.data for e in leaked]}"
    for who, client in (("a", a), ("b", b)):
        cid = created[who][0]
        try:
            client.delete_cluster(cid)
        except QuiltAPIError as exc:
            if exc.status != 404:
                raise
        quilt_ledger.discard("cluster", cid)
