"""Property-based input: request bodies generated from the contract's request schemas, valid
and near-valid, for every create and update endpoint. The property: the target never answers
with a server error the contract does not document for the operation, and every answer matches
the contract's response schema for its status.

Bounded: 15 examples per endpoint by default (`--quilt-fuzz-examples N` or
`QUILT_FUZZ_EXAMPLES=N` for nightly runs), the same ones every run unless `QUILT_FUZZ_SEED` is a
number or `random` (a release gate must not flake on a new draw). A failing example is shrunk and printed as a
replayable `curl` command with `$QUILT_BASE_URL` and credential placeholders (ids in its path
belong to this run's resources). Whatever a generated request creates is deleted at once (and
entered in the ledger until it is). Container commands are drawn from harmless programs (sleep,
true, echo), and exec is not fuzzed: generated argv would run on the target.
"""

from __future__ import annotations

import base64
import io
import tarfile
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pytest
from hypothesis import strategies as st

from quilt_verify import fuzz
from quilt_verify.catalogue import ENDPOINTS
from quilt_verify.client import QuiltClient
from quilt_verify.errors import QuiltAPIError

pytestmark = [pytest.mark.capability("property-based"), pytest.mark.mode("full")]

COMMAND = ["sleep", "3600"]
SAFE_COMMANDS = st.one_of(st.sampled_from([["sleep", "30"], ["true"], ["false"]]),
                          st.lists(st.text(max_size=12), max_size=3).map(lambda a: ["echo", *a]))
SAFE_PATH = st.from_regex(r"[a-z0-9_-]{1,12}(/[a-z0-9_-]{1,12}){0,2}", fullmatch=True)


def tar_gz(files: dict[str, bytes]) -> bytes:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for name, content in files.items():
            info = tarfile.TarInfo(name)
            info.size = len(content)
            tar.addfile(info, io.BytesIO(content))
    return buf.getvalue()


ARCHIVES = st.one_of(
    st.dictionaries(SAFE_PATH, st.binary(max_size=32), min_size=1, max_size=3).map(tar_gz),
    st.binary(max_size=64),
).map(lambda data: base64.b64encode(data).decode("ascii"))


@dataclass
class World:
    """The resources the generated requests are aimed at (created before fuzzing)."""

    quilt: QuiltClient
    names: Any
    ledger: Any
    values: dict[str, str] = field(default_factory=dict)
    headers: dict[str, dict[str, str]] = field(default_factory=dict)


def run_name(names: Any, kind: str) -> st.SearchStrategy[str]:
    """A fresh run-scoped name per example (the janitor can always find leftovers)."""
    return st.just(kind).map(names.make)


def remove(world: World, kind: str, ident: str, delete: Callable[[], Any]) -> None:
    """Delete what an accepted request created; the ledger keeps it until that worked."""
    world.ledger.add(kind, ident, delete=delete)
    try:
        delete()
    except QuiltAPIError as exc:
        if exc.status != 404:
            return  # left in the ledger, unwound at the end of the run
    world.ledger.discard(kind, ident)


@dataclass(frozen=True)
class Target:
    key: str                                                   # catalogue key of the operation
    overrides: Callable[[World], dict[str, st.SearchStrategy[Any]]] = lambda w: {}
    undo: Callable[[World, Any, Any], None] | None = None      # (world, answer, payload body)


def _undo_cluster(w: World, answer: Any, body: Any) -> None:
    remove(w, "cluster", answer["id"], lambda: w.quilt.delete_cluster(answer["id"]))


def _undo_workload(w: World, answer: Any, body: Any) -> None:
    cid = w.values["cluster_id"]
    remove(w, "workload", answer["id"], lambda: w.quilt.delete_workload(cid, answer["id"]))


def _undo_container(w: World, answer: Any, body: Any) -> None:
    ident = QuiltClient.container_id(answer) if isinstance(answer, dict) else None
    if not ident and isinstance(body, dict):  # an operation receipt: find it by name
        found = [c for c in w.quilt.list_containers() if c.get("name") == body.get("name")]
        ident = QuiltClient.container_id(found[0]) if found else None
    if ident:
        remove(w, "container", ident, lambda: w.quilt.delete_container(ident))


def _undo_key(w: World, answer: Any, body: Any) -> None:
    remove(w, "api_key", str(answer["id"]), lambda: w.quilt.delete_api_key(str(answer["id"])))


def _undo_volume(w: World, answer: Any, body: Any) -> None:
    name = answer.get("name") or body.get("name")
    remove(w, "volume", name, lambda: w.quilt.delete_volume(name))


def _undo_node(w: World, answer: Any, body: Any) -> None:
    node = answer.get("node") if isinstance(answer.get("node"), dict) else {}
    nid = node.get("id") or answer.get("node_id")
    cid = w.values["cluster_id"]
    remove(w, "node", nid, lambda: w.quilt.delete_node(cid, nid))


TARGETS = [
    Target("POST /api/clusters", lambda w: {"name": run_name(w.names, "fz-cluster")},
           _undo_cluster),
    Target("POST /api/clusters/:cluster_id/join-tokens"),
    Target("POST /api/clusters/:cluster_id/workloads",
           lambda w: {"name": run_name(w.names, "fz-web")}, _undo_workload),
    Target("PUT /api/clusters/:cluster_id/workloads/:workload_id",
           lambda w: {"name": run_name(w.names, "fz-web-put")}),
    Target("POST /api/containers",
           lambda w: {"name": run_name(w.names, "fz-ctr"), "command": SAFE_COMMANDS,
                      "labels": st.just(w.names.labels)}, _undo_container),
    Target("POST /api/containers/:id/routes"),
    Target("POST /api/api-keys", lambda w: {"name": run_name(w.names, "fz-key")}, _undo_key),
    Target("POST /api/volumes", lambda w: {"name": run_name(w.names, "fz-vol")}, _undo_volume),
    Target("POST /api/volumes/:name/files", lambda w: {"path": SAFE_PATH}),
    Target("POST /api/volumes/:name/archive", lambda w: {"path": SAFE_PATH, "content": ARCHIVES}),
    Target("POST /api/agent/clusters/:cluster_id/nodes/register",
           lambda w: {"name": run_name(w.names, "fz-node")}, _undo_node),
    Target("POST /api/agent/clusters/:cluster_id/nodes/:node_id/heartbeat"),
    Target("POST /api/agent/clusters/:cluster_id/nodes/:node_id/placements/:placement_id/report"),
]


@pytest.fixture(scope="module")
def examples(request) -> int:
    """Examples per endpoint (`--quilt-fuzz-examples`, `QUILT_FUZZ_EXAMPLES`, default 15)."""
    try:
        return fuzz.examples_per_endpoint(request.config.getoption("quilt_fuzz_examples",
                                                                   default=None))
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None


@pytest.fixture(scope="module")
def fuzz_seed() -> int | None:
    """`QUILT_FUZZ_SEED`: unset draws the same examples every run; `random` or a number."""
    try:
        return fuzz.seed_from()
    except ValueError as exc:
        raise pytest.UsageError(str(exc)) from None


@pytest.fixture(scope="module")
def world(quilt, quilt_names, quilt_ledger, make_agent, register_secret) -> World:
    """A cluster with a ready node holding one placement, a workload, a running container and
    a join token with many uses."""
    w = World(quilt, quilt_names, quilt_ledger)
    name = quilt_names.make("fz-cluster-home")
    cid = quilt.create_cluster(name, "10.88.0.0/16", 24)["id"]
    quilt_ledger.track(quilt, "cluster", cid, name=name)
    agent = make_agent(cid, quilt_names.make("fz-node-home"))
    agent.register(quilt.create_join_token(cid, ttl_secs=3600, max_uses=1)["join_token"])
    agent.heartbeat("ready")
    spec = {"name": quilt_names.make("fz-web-home"), "replicas": 1, "command": COMMAND,
            "labels": quilt_names.labels}
    wid = quilt.create_workload(cid, spec)["id"]
    quilt_ledger.track(quilt, "workload", wid, name=spec["name"], cluster_id=cid)
    quilt.reconcile(cid)
    placed = [p for p in quilt.list_placements(cid) if p.get("workload_id") == wid]
    assert placed, "reconcile placed nothing on the ready node"
    cname = quilt_names.make("fz-ctr-home")
    xid = str(QuiltClient.container_id(quilt.create_container(
        {"name": cname, "command": COMMAND, "labels": quilt_names.labels})))
    quilt_ledger.track(quilt, "container", xid, name=cname)
    join = quilt.create_join_token(cid, ttl_secs=3600, max_uses=1000)["join_token"]
    register_secret(join, "join_token")
    w.values.update(cluster_id=cid, node_id=agent.node_id, workload_id=wid,
                    placement_id=placed[0]["id"], id=xid)
    w.headers = {"join-token": {"X-Quilt-Join-Token": join},
                 "node-token": {"X-Quilt-Node-Token": agent.node_token}}
    return w


def concrete(template: str, values: dict[str, str]) -> str:
    return "/" + "/".join(values[s[1:]] if s[:1] in (":", "*") else s
                          for s in template.strip("/").split("/"))


@pytest.mark.parametrize("target", TARGETS, ids=[t.key for t in TARGETS])
def test_generated_bodies_never_break_the_contract(target, quilt, world, examples, fuzz_seed,
                                                   request, step):
    """For generated valid and near-valid bodies, the endpoint MUST NOT answer with a server
    error the contract does not document, and every answer MUST match the contract's response
    schema for its status; whatever a body creates is deleted again."""
    method, template = target.key.split(" ", 1)
    endpoint = {ep.key: ep for ep in ENDPOINTS}.get(target.key)
    assert endpoint is not None, f"{target.key} is not in the catalogue"
    values = dict(world.values)
    if "/api/volumes/:name" in template:
        values["name"] = request.getfixturevalue("fuzz_volume")
    path = concrete(template, values)
    headers = world.headers.get(endpoint.auth, {})
    strategy = fuzz.payloads_for(target.key, target.overrides(world))
    step(f"sending {examples} generated bodies to {method} {path}")

    def attempt(payload: fuzz.Payload) -> list[str]:
        answer = fuzz.send(quilt, method, path, payload, headers=headers,
                           tenant_auth=endpoint.auth == "tenant")
        status = answer.status or 0
        if target.undo is not None and 200 <= status < 300:
            try:
                target.undo(world, answer.json(), payload.body)
            except (KeyError, TypeError, AttributeError) as exc:
                answer.problems.append(f"could not undo what {status} created: {exc!r}")
        return answer.problems

    fuzz.run_property(strategy, attempt, examples=examples, seed=fuzz_seed,
                      replay=lambda p: fuzz.curl(method, path, p, endpoint.auth))


@pytest.fixture(scope="module")
def fuzz_volume(quilt, quilt_names, quilt_ledger) -> str:
    """A volume for the file and archive endpoints (only made when one of them runs)."""
    name = quilt_names.make("fz-vol-home")
    quilt.create_volume(name, labels=quilt_names.labels)
    quilt_ledger.track(quilt, "volume", name, name=name)
    return name
