from quilt_verify.errors import QuiltAPIError, QuiltTransportError
from quilt_verify.ledger import Ledger, gone_on_404


def not_found():
    raise QuiltAPIError(method="GET", path="/x", status=404, request_id="r")


def test_unwind_follows_dependency_order_then_newest_first():
    deleted = []
    ledger = Ledger()
    for kind, ident in [("cluster", "c1"), ("api_key", "k1"), ("workload", "w1"),
                        ("container", "x1"), ("volume", "v1"), ("node", "n1"),
                        ("container", "x2")]:
        ledger.add(kind, ident, delete=lambda i=ident: deleted.append(i))
    assert ledger.unwind() == []
    assert deleted == ["x2", "x1", "w1", "n1", "c1", "v1", "k1"]
    assert len(ledger) == 0


def test_deletion_is_confirmed_and_failures_are_listed_with_ids():
    ledger = Ledger()
    ledger.add("container", "gone", delete=lambda: None, exists=gone_on_404(not_found))
    ledger.add("container", "stuck", name="qv-r-ctr", delete=lambda: None,
               exists=lambda: True)

    def refuse():
        raise QuiltAPIError(method="DELETE", path="/api/volumes/v", status=409, request_id="r9")

    ledger.add("volume", "busy", delete=refuse)
    ledger.add("cluster", "down", delete=lambda: (_ for _ in ()).throw(
        QuiltTransportError(method="DELETE", path="/c", request_id="r", reason="refused")))
    ledger.add("api_key", "already", delete=not_found)  # 404 on delete counts as deleted
    left = {e["id"]: e for e in ledger.unwind()}
    assert set(left) == {"stuck", "busy", "down"}
    assert left["stuck"] == {"kind": "container", "id": "stuck", "name": "qv-r-ctr",
                             "problem": "still present after delete"}
    assert "409" in left["busy"]["problem"] and "r9" in left["busy"]["problem"]
    assert "refused" in left["down"]["problem"]


def test_discard_forgets_what_the_run_deleted_itself():
    ledger = Ledger()
    ledger.add("cluster", "c", delete=lambda: (_ for _ in ()).throw(AssertionError("no")))
    ledger.discard("cluster", "c")
    assert ledger.unwind() == []


class FakeClient:
    """Records calls; everything is gone after its delete."""

    def __init__(self):
        self.calls, self.deleted = [], set()

    def __getattr__(self, name):
        def call(*args):
            self.calls.append((name, *args))
            if name.startswith("delete_"):
                self.deleted.add(args[-1])
            elif name.startswith("get_") and args[-1] in self.deleted:
                not_found()
            elif name == "list_api_keys":
                return [{"id": i} for i in ("k-live",) if i not in self.deleted]
            return {}
        return call


def test_track_knows_how_to_delete_and_confirm_each_kind():
    client, ledger = FakeClient(), Ledger()
    ledger.track(client, "cluster", "c1", name="qv-c")
    ledger.track(client, "workload", "w1", cluster_id="c1")
    ledger.track(client, "node", "n1", cluster_id="c1")
    ledger.track(client, "container", "x1")
    ledger.track(client, "volume", "v1")
    ledger.track(client, "api_key", "k-live")
    assert ledger.unwind() == []
    deletes = [c for c in client.calls if c[0].startswith("delete_")]
    assert deletes == [("delete_container", "x1"), ("delete_workload", "c1", "w1"),
                       ("delete_node", "c1", "n1"), ("delete_cluster", "c1"),
                       ("delete_volume", "v1"), ("delete_api_key", "k-live")]
    assert ("get_workload", "c1", "w1") in client.calls and ("list_api_keys",) in client.calls


def test_track_refuses_what_it_cannot_clean_up():
    import pytest

    with pytest.raises(ValueError, match="cluster_id"):
        Ledger().track(FakeClient(), "workload", "w1")
    with pytest.raises(ValueError, match="cannot track"):
        Ledger().track(FakeClient(), "snapshot", "s1")
